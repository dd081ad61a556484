//! `utskrivningsklar_saknas` (SPEC §4.6): "utskrivningsklar skickas alltid".

use super::case::{utc, CaseView, Duty};
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
    sip_chain: false,
    template: include_str!("../../templates/rules/utskrivningsklar_saknas.hbs"),
    judge: Judge::Case(judge),
};

/// A UK at or before the first utskrivning; responsible: its ward. The
/// berörd part: the UK's recipients, else the IMs'.
fn judge(v: &CaseView, _: &Units, _: &Profile, out: &mut Vec<Finding>) {
    let Some(ut) = v.first(EventType::Utskrivning) else {
        return;
    };
    let affected = match v.first(EventType::Utskrivningsklar) {
        Some(uk) => super::case::recipients(v, uk),
        None => v.im_recipients(),
    };
    let duty = Duty {
        rule: ID,
        unit: Some(&ut.unit),
        affected,
        due: utc(ut),
    };
    v.judge_and_file(out, duty, v.of(EventType::Utskrivningsklar));
}
