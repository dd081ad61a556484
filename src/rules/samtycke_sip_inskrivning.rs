//! `samtycke_sip_inskrivning` (SPEC §4.8, Östergötland): Samtycke till SIP
//! not asked at inskrivning (seed 000: slutenvården "behöver fråga patienten
//! om dennes inställning till behov av SIP och inhämta 'Samtycke till SIP' i
//! samband med inskrivningen").

use super::case::{CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("samtycke_sip_inskrivning");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Samtycke till SIP inte inhämtat vid inskrivningen",
    risk: Risk::new(2, 2),
    recommendation: false,
    unit_in_obligation: true,
    on_by_default: false,
    sip_chain: false,
    template: include_str!("../../templates/rules/samtycke_sip_inskrivning.hbs"),
    judge: Judge::Case(judge),
};

/// A case with an inskrivning and an IM: due as the IM's (§4.1, 24 h); met
/// by a `samtycke_sip` (either answer) by a slutenvård unit at or before
/// it. Responsible: the ward of the inskrivning; the berörd part the IM's
/// recipients, whose planning needs the consent.
fn judge(v: &CaseView, units: &Units, _: &Profile, out: &mut Vec<Finding>) {
    let Some((ins, due)) = v.im_due() else {
        return;
    };
    if v.first(EventType::Inskrivningsmeddelande).is_none() {
        return;
    }
    let duty = Duty {
        rule: ID,
        unit: Some(&ins.unit),
        affected: v.im_recipients(),
        due,
    };
    let asked = v.of(EventType::SamtyckeSip).filter(|e| units.is_slutenvard(&e.unit));
    v.judge_and_file(out, duty, asked);
}
