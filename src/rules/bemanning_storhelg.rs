//! `bemanning_storhelg` (SPEC §4.4): a covered unit not staffed on a
//! storhelg staffing day. Judged per unit and day by `rules::bemanning`
//! (the same tracker for `check` and the scan), not per case.

use super::registry::{Judge, Risk, Rule, RuleId};

pub const ID: RuleId = RuleId::new("bemanning_storhelg");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Ingen bemanning på storhelgens bemanningsdag (rekommendation)",
    // A recommendation, not law: lower by default.
    risk: Risk::new(2, 1),
    recommendation: true,
    unit_in_obligation: true,
    on_by_default: true,
    sip_chain: false,
    template: include_str!("../../templates/rules/bemanning_storhelg.hbs"),
    judge: Judge::Staffing,
};
