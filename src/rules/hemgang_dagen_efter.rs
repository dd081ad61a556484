//! `hemgang_dagen_efter` (SPEC §4.8, Västerbotten): a patient with a stable
//! plan not home by the day after utskrivningsklar (seed 002, blått och
//! grönt spår: "hemgång så snart som möjligt efter utskrivningsklar, dock
//! senast dagen efter utskrivningsklar").

use chrono::Duration;

use super::case::{recipients, utc, CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::calendar::{dag0, end_of_day};
use crate::domain::{EventType, EventValue, Sparfarg};

pub const ID: RuleId = RuleId::new("hemgang_dagen_efter");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Hemgång inte senast dagen efter utskrivningsklar (blått/grönt spår)",
    risk: Risk::new(2, 3),
    recommendation: false,
    unit_in_obligation: true,
    on_by_default: false,
    sip_chain: false,
    template: include_str!("../../templates/rules/hemgang_dagen_efter.hbs"),
    judge: Judge::Case(judge),
};

/// Each UK, not withdrawn, whose latest spårfärg at or before it is blå or
/// grön: due at the end of the day after the UK's dag 0 (a UK sent after
/// 12:00 "räknas som inkommen nästföljande dag", seed 002); met by an
/// utskrivning. Responsible: the first kommun unit in the UK's `to`.
fn judge(v: &CaseView, units: &Units, _: &Profile, out: &mut Vec<Finding>) {
    for uk in v.of(EventType::Utskrivningsklar) {
        let track = v.of(EventType::Sparfarg).filter(|s| utc(s) <= utc(uk)).last();
        let stable =
            track.is_some_and(|s| matches!(s.value, Some(EventValue::Sparfarg(Sparfarg::Bla | Sparfarg::Gron))));
        let due = end_of_day(dag0(utc(uk)) + Duration::days(1));
        if !stable || v.withdrawn(uk, due) {
            continue;
        }
        let duty = Duty {
            rule: ID,
            unit: uk.to.iter().find(|u| units.kommun_of(u).is_some()),
            affected: recipients(v, uk),
            due,
        };
        v.judge_and_file(out, duty, v.of(EventType::Utskrivning));
    }
}
