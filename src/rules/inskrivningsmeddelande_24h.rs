//! `inskrivningsmeddelande_24h` (SPEC §4.1): the IM later than 24 hours
//! after admission, or after the later assessment.

use super::case::{CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("inskrivningsmeddelande_24h");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Inskrivningsmeddelande senare än 24 timmar",
    risk: Risk::new(3, 3),
    recommendation: false,
    unit_in_obligation: true,
    on_by_default: true,
    sip_chain: false,
    template: include_str!("../../templates/rules/inskrivningsmeddelande_24h.hbs"),
    judge: Judge::Case(judge),
};

/// 24 h (elapsed) from the first inskrivning, or from the first bedömning
/// when later; met by the case's first IM. An överflyttning never restarts
/// the clock. Responsible: the ward of the inskrivning; the berörd part the
/// IMs' recipients.
fn judge(v: &CaseView, _: &Units, _: &Profile, out: &mut Vec<Finding>) {
    let Some((ins, due)) = v.im_due() else {
        return;
    };
    let duty = Duty {
        rule: ID,
        unit: Some(&ins.unit),
        affected: v.im_recipients(),
        due,
    };
    v.judge_and_file(out, duty, v.first(EventType::Inskrivningsmeddelande));
}
