//! `fast_vardkontakt_saknas` (SPEC §4.6): no fast vårdkontakt by the
//! kallelse due.

use super::case::{CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};

pub const ID: RuleId = RuleId::new("fast_vardkontakt_saknas");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Fast vårdkontakt saknas",
    risk: Risk::new(3, 3),
    recommendation: false,
    unit_in_obligation: false,
    on_by_default: true,
    sip_chain: true,
    template: include_str!("../../templates/rules/fast_vardkontakt_saknas.hbs"),
    judge: Judge::Case(judge),
};

/// A fast vårdkontakt must exist by the kallelse due of every UK for which
/// §4.2 applies; a removal (`value: false`) is none. Responsible: the first
/// öppenvård recipient of the first IM.
fn judge(v: &CaseView, units: &Units, profile: &Profile, out: &mut Vec<Finding>) {
    for (uk, due) in v.sip_uks(profile) {
        let duty = Duty {
            rule: ID,
            unit: v.first_im_oppenvard(units),
            affected: v.kommun_parties(units, Some(uk)),
            due,
        };
        v.judge_and_file(out, duty, v.fast_vardkontakter());
    }
}
