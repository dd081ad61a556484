//! Rule profiles (SPEC §4.9): `nationell`, `ostergotland`, `vasterbotten`,
//! and the overrides an installation's config file may make to any of them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

pub use super::registry::{Risk, RuleId};

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
    /// Days after the utskrivning's date by which the SIP meeting is held (`sip_mote`).
    pub sip_mote_days: i64,
    /// The routine the report's händelse cites (SPEC §4.9).
    pub routine: String,
    /// Published staffing tables per year (replace the computed days of their blocks).
    pub staffing_tables: BTreeMap<i32, Vec<NaiveDate>>,
    pub risk: BTreeMap<RuleId, Risk>,
}

pub const PROFILES: [&str; 3] = ["nationell", "ostergotland", "vasterbotten"];

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// Each rule's own default risk (its file in `src/rules/`).
fn default_risk() -> BTreeMap<RuleId, Risk> {
    RuleId::ALL.into_iter().map(|r| (r, r.rule().risk)).collect()
}

impl Profile {
    /// The enabled rules that judge one case at a time (all but staffing).
    pub fn case_rules(&self) -> Vec<RuleId> {
        self.enabled
            .iter()
            .copied()
            .filter(|r| matches!(r.rule().judge, super::registry::Judge::Case(_)))
            .collect()
    }

    pub fn nationell() -> Profile {
        Profile {
            name: "nationell".into(),
            enabled: RuleId::ALL.into_iter().filter(|r| r.rule().on_by_default).collect(),
            kallelse_days: 3,
            kallelse_brytpunkt: false,
            sip_sources: BTreeSet::from([SipSource::BehovAvSip, SipSource::Sparfarg]),
            sip_mote_days: 28,
            routine: "Lag (2017:612) om samverkan vid utskrivning från sluten hälso- och sjukvård".into(),
            staffing_tables: BTreeMap::new(),
            risk: default_risk(),
        }
    }

    /// As nationell, with the 2026 staffing table of the SVOP newsletter
    /// (Första maj: söndag 3/5, Kristi himmelfärd: fredag 15/5, Midsommar: söndag 21/6).
    /// No planning tracks since the 2025 revision (seed 001: "Planeringsspår
    /// tas bort"): SIP is needed by the documented Behov av SIP alone; Behov
    /// av SIP and Samtycke till SIP audited (seed 000).
    pub fn ostergotland() -> Profile {
        let mut p = Profile {
            name: "ostergotland".into(),
            staffing_tables: BTreeMap::from([(2026, vec![date(2026, 5, 3), date(2026, 5, 15), date(2026, 6, 21)])]),
            sip_sources: BTreeSet::from([SipSource::BehovAvSip]),
            routine: "Länsgemensam riktlinje Samordnad vård- och omsorgsplanering i samband med sluten vård".into(),
            ..Profile::nationell()
        };
        p.enabled
            .extend([RuleId::BehovAvSipDokumenterat, RuleId::SamtyckeSipInskrivning]);
        p
    }

    /// Länsrutin SVU Västerbotten: kallelse till SIP at the latest on dag 0;
    /// IMs acknowledged "alla dagar"; the SIP meeting within four weeks, a
    /// new IM after a withdrawn UK and when the beräknat datum passes, and
    /// hemgång on blått and grönt spår by the day after the UK.
    pub fn vasterbotten() -> Profile {
        let mut p = Profile {
            name: "vasterbotten".into(),
            kallelse_days: 0,
            kallelse_brytpunkt: true,
            routine: "Samverkan mellan regionen och kommunerna i Västerbottens län vid utskrivning från sluten hälso- och sjukvård".into(),
            ..Profile::nationell()
        };
        p.enabled.extend([
            RuleId::KvittensInskrivningsmeddelande,
            RuleId::SipMote,
            RuleId::ImEfterAtertag,
            RuleId::BeraknatDatumPasserat,
            RuleId::HemgangDagenEfter,
        ]);
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
        if let Some(days) = o.sip_mote.as_ref().and_then(|m| m.days) {
            anyhow::ensure!((0..=365).contains(&days), "rules.sip_mote.days ska vara 0–365");
            self.sip_mote_days = days;
        }
        if let Some(r) = &o.routine {
            anyhow::ensure!(
                !r.trim().is_empty() && r.len() <= 300,
                "rules.routine ska vara rutinens namn, 1–300 tecken"
            );
            self.routine = r.trim().to_string();
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
    pub sip_mote: Option<SipMoteOverrides>,
    /// The routine the report's händelse cites, replacing the profile's.
    pub routine: Option<String>,
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipMoteOverrides {
    /// Days after the utskrivning's date (default 28).
    pub days: Option<i64>,
}
