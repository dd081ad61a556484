//! `kvittens_inskrivningsmeddelande` (SPEC §4.6): the IM not acknowledged by
//! the end of its dag 0 (Västerbotten: "alla dagar").

use super::case::CaseView;
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("kvittens_inskrivningsmeddelande");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Inskrivningsmeddelande inte kvitterat i tid",
    risk: Risk::new(2, 2),
    recommendation: false,
    unit_in_obligation: true,
    on_by_default: false,
    sip_chain: false,
    template: include_str!("../../templates/rules/kvittens_inskrivningsmeddelande.hbs"),
    judge: Judge::Case(judge),
};

/// Each recipient acknowledges each IM by the end of its dag 0.
fn judge(v: &CaseView, _: &Units, _: &Profile, out: &mut Vec<Finding>) {
    v.kvittens(out, EventType::Inskrivningsmeddelande, ID);
}
