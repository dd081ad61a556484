//! The one list of rules. Each rule is one file under `src/rules/` that
//! declares a [`Rule`]: its id, Swedish title, default risk, whether it is a
//! recommendation, whether its responsible unit is part of the obligation,
//! whether profiles have it on by default, the texts of its report (its
//! template beside the others in `templates/rules/`), and how it is judged.
//! Filing, mail, pages and reports ask this registry; none of them names a
//! rule. Adding a rule: one file, one line in [`REGISTRY`], one template
//! (docs/ARCHITECTURE.md).

use serde::{Deserialize, Serialize};

use super::case::CaseView;
use super::{Finding, Profile, Units};

/// A rule's id, as SPEC names it (`kallelse_sip`). Ordered as the registry
/// lists the rules, which is the order `check` prints findings in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleId(&'static str);

/// Sannolikhet 1–4 × konsekvens 1–4 (the county routine's risk matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Risk {
    pub sannolikhet: u8,
    pub konsekvens: u8,
}

impl Risk {
    pub const fn new(sannolikhet: u8, konsekvens: u8) -> Risk {
        Risk {
            sannolikhet,
            konsekvens,
        }
    }

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

/// How a rule is judged.
#[derive(Clone, Copy)]
pub enum Judge {
    /// On one case's events: the rule adds its findings (and, through the
    /// view, every obligation it judged).
    Case(fn(&CaseView, &Units, &Profile, &mut Vec<Finding>)),
    /// On one unit's staffing day (`rules::bemanning`), not per case.
    Staffing,
}

/// Everything about one rule.
pub struct Rule {
    pub id: RuleId,
    /// The report's title (Swedish).
    pub title: &'static str,
    pub risk: Risk,
    /// A breach of a recommendation, not of the law (its text says so).
    pub recommendation: bool,
    /// Whether the responsible unit is part of the obligation a deviation is
    /// about (a recipient's kvittens, the ward) or found from data an earlier
    /// instant may not show yet (the fast vårdkontakt of a kallelse).
    pub unit_in_obligation: bool,
    /// On in the `nationell` profile (the others start from it).
    pub on_by_default: bool,
    /// Part of the SIP chain (SPEC §4.6): not cancelled by an `avslut` that
    /// the öppenvård made after the first UK (unless `avliden`).
    pub sip_chain: bool,
    /// The report's sections (`--- handelse` … `--- grund`), compiled in;
    /// a file of the same name in the templates directory overrides it.
    pub template: &'static str,
    pub judge: Judge,
}

/// The rules, in the order findings are judged and printed.
pub const REGISTRY: [&Rule; 14] = [
    &super::inskrivningsmeddelande_24h::RULE,
    &super::kallelse_sip::RULE,
    &super::kvittens_utskrivningsklar::RULE,
    &super::kvittens_inskrivningsmeddelande::RULE,
    &super::fast_vardkontakt_saknas::RULE,
    &super::utskrivningsklar_saknas::RULE,
    &super::bemanning_storhelg::RULE,
    &super::samordning_stangd::RULE,
    &super::behov_av_sip_dokumenterat::RULE,
    &super::samtycke_sip_inskrivning::RULE,
    &super::sip_mote::RULE,
    &super::im_efter_atertag::RULE,
    &super::beraknat_datum_passerat::RULE,
    &super::hemgang_dagen_efter::RULE,
];

/// The ids of [`REGISTRY`], in its order.
const fn ids() -> [RuleId; REGISTRY.len()] {
    let mut out = [RuleId(""); REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        out[i] = REGISTRY[i].id;
        i += 1;
    }
    out
}

#[allow(non_upper_case_globals)]
impl RuleId {
    pub const ALL: [RuleId; REGISTRY.len()] = ids();

    // The rules by name, for the code that must single one out (tests,
    // the staffing rule's own path, the bench's core set).
    pub const Inskrivningsmeddelande24h: RuleId = super::inskrivningsmeddelande_24h::ID;
    pub const KallelseSip: RuleId = super::kallelse_sip::ID;
    pub const KvittensUtskrivningsklar: RuleId = super::kvittens_utskrivningsklar::ID;
    pub const KvittensInskrivningsmeddelande: RuleId = super::kvittens_inskrivningsmeddelande::ID;
    pub const FastVardkontaktSaknas: RuleId = super::fast_vardkontakt_saknas::ID;
    pub const UtskrivningsklarSaknas: RuleId = super::utskrivningsklar_saknas::ID;
    pub const BemanningStorhelg: RuleId = super::bemanning_storhelg::ID;
    pub const SamordningStangd: RuleId = super::samordning_stangd::ID;
    pub const BehovAvSipDokumenterat: RuleId = super::behov_av_sip_dokumenterat::ID;
    pub const SamtyckeSipInskrivning: RuleId = super::samtycke_sip_inskrivning::ID;
    pub const SipMote: RuleId = super::sip_mote::ID;
    pub const ImEfterAtertag: RuleId = super::im_efter_atertag::ID;
    pub const BeraknatDatumPasserat: RuleId = super::beraknat_datum_passerat::ID;
    pub const HemgangDagenEfter: RuleId = super::hemgang_dagen_efter::ID;

    /// For a rule file's `ID`.
    pub const fn new(id: &'static str) -> RuleId {
        RuleId(id)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    pub fn parse(s: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.0 == s.trim())
    }

    /// The rule's declaration.
    pub fn rule(self) -> &'static Rule {
        REGISTRY[self.position()]
    }

    fn position(self) -> usize {
        // Every RuleId comes from a rule file, so it is in the registry.
        RuleId::ALL.iter().position(|r| r.0 == self.0).unwrap_or(usize::MAX)
    }
}

impl PartialOrd for RuleId {
    fn partial_cmp(&self, other: &RuleId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RuleId {
    fn cmp(&self, other: &RuleId) -> std::cmp::Ordering {
        self.position().cmp(&other.position())
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Debug for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RuleId, D::Error> {
        let s = String::deserialize(d)?;
        RuleId::parse(&s).ok_or_else(|| {
            let known: Vec<&str> = RuleId::ALL.iter().map(|r| r.0).collect();
            serde::de::Error::custom(format!("okänd regel `{s}`: välj bland {}", known.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_whole_ordered_and_each_rule_knows_itself() {
        let ids: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "an id twice: {ids:?}");
        for (i, id) in RuleId::ALL.iter().enumerate() {
            assert_eq!(id.rule().id, *id);
            assert_eq!(RuleId::parse(id.as_str()), Some(*id));
            assert!(!id.rule().title.is_empty() && id.rule().template.contains("--- grund"));
            if i > 0 {
                assert!(RuleId::ALL[i - 1] < *id, "ordered as listed");
            }
        }
        assert_eq!(RuleId::parse("nope"), None);
        let parsed: Vec<RuleId> = serde_json::from_str(r#"["kallelse_sip", "bemanning_storhelg"]"#).unwrap();
        assert_eq!(parsed, [RuleId::KallelseSip, RuleId::BemanningStorhelg]);
        assert!(serde_json::from_str::<RuleId>(r#""nope""#).is_err());
    }
}
