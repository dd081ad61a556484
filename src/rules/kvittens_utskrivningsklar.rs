//! `kvittens_utskrivningsklar` (SPEC §4.3): the UK not acknowledged by the
//! end of its dag 0.

use super::case::CaseView;
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("kvittens_utskrivningsklar");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Utskrivningsklar inte kvitterad i tid",
    risk: Risk::new(3, 2),
    recommendation: false,
    unit_in_obligation: true,
    on_by_default: true,
    sip_chain: false,
    template: include_str!("../../templates/rules/kvittens_utskrivningsklar.hbs"),
    judge: Judge::Case(judge),
};

/// Each recipient acknowledges each UK not withdrawn by the end of dag 0.
fn judge(v: &CaseView, _: &Units, _: &Profile, out: &mut Vec<Finding>) {
    v.kvittens(out, EventType::Utskrivningsklar, ID);
}
