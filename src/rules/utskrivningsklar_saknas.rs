//! `utskrivningsklar_saknas` (SPEC §4.6): "utskrivningsklar skickas alltid".

use super::case::{utc, CaseView};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("utskrivningsklar_saknas");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Utskrivning utan utskrivningsklar",
    risk: Risk::new(2, 3),
    recommendation: false,
    unit_in_obligation: true,
    on_by_default: true,
    template: include_str!("../../templates/rules/utskrivningsklar_saknas.hbs"),
    judge: Judge::Case(judge),
};

/// A UK at or before the first utskrivning; responsible: its ward.
fn judge(v: &CaseView, _: &Units, _: &Profile, out: &mut Vec<Finding>) {
    let Some(ut) = v.first(EventType::Utskrivning) else {
        return;
    };
    v.judge_and_file(out, ID, Some(&ut.unit), utc(ut), v.of(EventType::Utskrivningsklar));
}
