//! `kallelse_sip` (SPEC §4.2): the kallelse till SIP too late.

use super::case::{CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};

pub const ID: RuleId = RuleId::new("kallelse_sip");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Kallelse till SIP för sent",
    risk: Risk::new(3, 3),
    recommendation: false,
    unit_in_obligation: false,
    on_by_default: true,
    sip_chain: true,
    template: include_str!("../../templates/rules/kallelse_sip.hbs"),
    judge: Judge::Case(judge),
};

/// Each UK not withdrawn, when SIP is needed; due end of day D + N; met by
/// any kallelse with at <= due (one before the UK counts) sent by a unit
/// outside slutenvården: the fast vårdkontakt's, not the ward's. Responsible:
/// the fast vårdkontakt at the due, else the latest, else the first
/// öppenvård recipient of the first IM.
fn judge(v: &CaseView, units: &Units, profile: &Profile, out: &mut Vec<Finding>) {
    for (uk, due) in v.sip_uks(profile) {
        let duty = Duty {
            rule: ID,
            unit: v.sip_responsible(units, due),
            affected: v.kommun_parties(units, Some(uk)),
            due,
        };
        v.judge_and_file(out, duty, v.kallelser(units));
    }
}
