//! Rule profiles (SPEC §4.7): `nationell`, `ostergotland`, `vasterbotten`,
//! and the overrides an installation's config file may make to any of them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    #[serde(rename = "inskrivningsmeddelande_24h")]
    Inskrivningsmeddelande24h,
    KallelseSip,
    KvittensUtskrivningsklar,
    KvittensInskrivningsmeddelande,
    FastVardkontaktSaknas,
    UtskrivningsklarSaknas,
    BemanningStorhelg,
}

impl RuleId {
    pub const ALL: [RuleId; 7] = [
        RuleId::Inskrivningsmeddelande24h,
        RuleId::KallelseSip,
        RuleId::KvittensUtskrivningsklar,
        RuleId::KvittensInskrivningsmeddelande,
        RuleId::FastVardkontaktSaknas,
        RuleId::UtskrivningsklarSaknas,
        RuleId::BemanningStorhelg,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::Inskrivningsmeddelande24h => "inskrivningsmeddelande_24h",
            RuleId::KallelseSip => "kallelse_sip",
            RuleId::KvittensUtskrivningsklar => "kvittens_utskrivningsklar",
            RuleId::KvittensInskrivningsmeddelande => "kvittens_inskrivningsmeddelande",
            RuleId::FastVardkontaktSaknas => "fast_vardkontakt_saknas",
            RuleId::UtskrivningsklarSaknas => "utskrivningsklar_saknas",
            RuleId::BemanningStorhelg => "bemanning_storhelg",
        }
    }

    pub fn parse(s: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sannolikhet 1–4 × konsekvens 1–4 (the county routine's risk matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Risk {
    pub sannolikhet: u8,
    pub konsekvens: u8,
}

impl Risk {
    pub fn value(self) -> u8 {
        self.sannolikhet * self.konsekvens
    }

    /// 1–3 låg, 4–6 måttlig, 8–9 hög, 12–16 mycket hög.
    pub fn class(self) -> &'static str {
        match self.value() {
            0..=3 => "låg",
            4..=6 => "måttlig",
            7..=9 => "hög",
            _ => "mycket hög",
        }
    }
}

/// Which documented facts make SIP needed for `kallelse_sip` (SPEC §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SipSource {
    BehovAvSip,
    Sparfarg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub enabled: BTreeSet<RuleId>,
    /// N of "end of day D + N" for the kallelse till SIP.
    pub kallelse_days: i64,
    /// Whether D is dag 0 after the 12:00 brytpunkt instead of the UK's date.
    pub kallelse_brytpunkt: bool,
    pub sip_sources: BTreeSet<SipSource>,
    /// Published staffing tables per year (replace the computed days of their blocks).
    pub staffing_tables: BTreeMap<i32, Vec<NaiveDate>>,
    pub risk: BTreeMap<RuleId, Risk>,
}

pub const PROFILES: [&str; 3] = ["nationell", "ostergotland", "vasterbotten"];

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

fn default_risk() -> BTreeMap<RuleId, Risk> {
    let r = |sannolikhet, konsekvens| Risk {
        sannolikhet,
        konsekvens,
    };
    BTreeMap::from([
        (RuleId::Inskrivningsmeddelande24h, r(3, 3)),
        (RuleId::KallelseSip, r(3, 3)),
        (RuleId::KvittensUtskrivningsklar, r(3, 2)),
        (RuleId::KvittensInskrivningsmeddelande, r(2, 2)),
        (RuleId::FastVardkontaktSaknas, r(3, 3)),
        (RuleId::UtskrivningsklarSaknas, r(2, 3)),
        // A recommendation, not law: lower by default (SPEC §4.4).
        (RuleId::BemanningStorhelg, r(2, 1)),
    ])
}

impl Profile {
    /// The enabled rules that judge one case at a time (all but staffing).
    pub fn case_rules(&self) -> Vec<RuleId> {
        self.enabled
            .iter()
            .copied()
            .filter(|r| *r != RuleId::BemanningStorhelg)
            .collect()
    }

    pub fn nationell() -> Profile {
        Profile {
            name: "nationell".into(),
            enabled: RuleId::ALL
                .into_iter()
                .filter(|r| *r != RuleId::KvittensInskrivningsmeddelande)
                .collect(),
            kallelse_days: 3,
            kallelse_brytpunkt: false,
            sip_sources: BTreeSet::from([SipSource::BehovAvSip, SipSource::Sparfarg]),
            staffing_tables: BTreeMap::new(),
            risk: default_risk(),
        }
    }

    /// As nationell, with the 2026 staffing table of the SVOP newsletter
    /// (Första maj: söndag 3/5, Kristi himmelfärd: fredag 15/5, Midsommar: söndag 21/6).
    pub fn ostergotland() -> Profile {
        Profile {
            name: "ostergotland".into(),
            staffing_tables: BTreeMap::from([(2026, vec![date(2026, 5, 3), date(2026, 5, 15), date(2026, 6, 21)])]),
            ..Profile::nationell()
        }
    }

    /// Länsrutin SVU Västerbotten: kallelse till SIP at the latest on dag 0;
    /// IMs acknowledged "alla dagar" (kvittens_inskrivningsmeddelande on).
    pub fn vasterbotten() -> Profile {
        let mut p = Profile {
            name: "vasterbotten".into(),
            kallelse_days: 0,
            kallelse_brytpunkt: true,
            ..Profile::nationell()
        };
        p.enabled.insert(RuleId::KvittensInskrivningsmeddelande);
        p
    }

    pub fn by_name(name: &str) -> anyhow::Result<Profile> {
        match name {
            "nationell" => Ok(Profile::nationell()),
            "ostergotland" => Ok(Profile::ostergotland()),
            "vasterbotten" => Ok(Profile::vasterbotten()),
            other => anyhow::bail!("okänd profil `{other}`: välj en av {}", PROFILES.join(", ")),
        }
    }

    pub fn risk_of(&self, rule: RuleId) -> Risk {
        self.risk.get(&rule).copied().unwrap_or(Risk {
            sannolikhet: 2,
            konsekvens: 2,
        })
    }

    /// Applies a config file's `[rules]` overrides.
    pub fn apply(&mut self, o: &ProfileOverrides) -> anyhow::Result<()> {
        if let Some(list) = &o.enabled {
            self.enabled = list.iter().copied().collect();
        }
        if let Some(k) = &o.kallelse_sip {
            if let Some(d) = k.days {
                anyhow::ensure!((0..=60).contains(&d), "rules.kallelse_sip.days ska vara 0–60");
                self.kallelse_days = d;
            }
            if let Some(b) = k.brytpunkt {
                self.kallelse_brytpunkt = b;
            }
            if let Some(s) = &k.sip_need_sources {
                self.sip_sources = s.iter().copied().collect();
            }
        }
        for (year, dates) in &o.staffing_tables {
            let y: i32 = year
                .parse()
                .map_err(|_| anyhow::anyhow!("rules.staffing_tables: `{year}` är inget årtal"))?;
            anyhow::ensure!(
                dates.iter().all(|d| d.year_ce().1 as i32 == y),
                "rules.staffing_tables.{year}: varje datum måste ligga i {year}"
            );
            self.staffing_tables.insert(y, dates.clone());
        }
        for (rule, risk) in &o.risk {
            anyhow::ensure!(
                (1..=4).contains(&risk.sannolikhet) && (1..=4).contains(&risk.konsekvens),
                "rules.risk.{rule}: sannolikhet och konsekvens ska vara 1–4"
            );
            self.risk.insert(*rule, *risk);
        }
        Ok(())
    }
}

/// The `[rules]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileOverrides {
    /// nationell, ostergotland or vasterbotten (default nationell)
    pub profile: Option<String>,
    /// Exactly the rules to run, replacing the profile's list.
    pub enabled: Option<Vec<RuleId>>,
    pub kallelse_sip: Option<KallelseOverrides>,
    /// Year -> published staffing days, e.g. `2027 = ["2027-05-02"]`.
    #[serde(default)]
    pub staffing_tables: BTreeMap<String, Vec<NaiveDate>>,
    #[serde(default)]
    pub risk: BTreeMap<RuleId, Risk>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KallelseOverrides {
    pub days: Option<i64>,
    pub brytpunkt: Option<bool>,
    pub sip_need_sources: Option<Vec<SipSource>>,
}
