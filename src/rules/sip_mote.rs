//! `sip_mote` (SPEC §4.8, Västerbotten): the SIP meeting not held in time
//! (seed 002: "SIP mötet alternativt uppföljning ska genomföras utan
//! dröjsmål, senast inom 4 veckor efter utskrivning").

use chrono::Duration;

use super::case::{utc, CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::calendar::{end_of_day, local_date};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("sip_mote");

pub const RULE: Rule = Rule {
    id: ID,
    title: "SIP-möte inte hållet inom fyra veckor efter utskrivning",
    risk: Risk::new(2, 3),
    recommendation: false,
    unit_in_obligation: false,
    on_by_default: false,
    sip_chain: true,
    template: include_str!("../../templates/rules/sip_mote.hbs"),
    judge: Judge::Case(judge),
};

/// A case whose first utskrivning is at U, with a UK that is not withdrawn,
/// when SIP is needed as of U: due at the end of U's date + `sip_mote.days`
/// (28); met by any `sip_mote` at or before it (one held in hospital counts).
/// Responsible: as §4.2 with due U.
fn judge(v: &CaseView, units: &Units, profile: &Profile, out: &mut Vec<Finding>) {
    let Some(ut) = v.first(EventType::Utskrivning) else {
        return;
    };
    let u = utc(ut);
    if !v.sip_needed_at(profile, u) {
        return;
    }
    let due = end_of_day(local_date(u) + Duration::days(profile.sip_mote_days));
    if !v.of(EventType::Utskrivningsklar).any(|uk| !v.withdrawn(uk, due)) {
        return;
    }
    let duty = Duty {
        rule: ID,
        unit: v.sip_responsible(units, u),
        affected: v.kommun_parties(units, None),
        due,
    };
    v.judge_and_file(out, duty, v.of(EventType::SipMote));
}
