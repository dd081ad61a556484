//! `kallelse_sip` (SPEC §4.2): the kallelse till SIP too late.

use super::case::{utc, CaseView};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("kallelse_sip");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Kallelse till SIP för sent",
    risk: Risk::new(3, 3),
    recommendation: false,
    unit_in_obligation: false,
    on_by_default: true,
    template: include_str!("../../templates/rules/kallelse_sip.hbs"),
    judge: Judge::Case(judge),
};

/// Each UK not withdrawn, when SIP is needed; due end of day D + N; met by
/// any kallelse with at <= due (one before the UK counts). Responsible: the
/// fast vårdkontakt at the due, else the latest, else the first öppenvård
/// recipient of the first IM.
fn judge(v: &CaseView, units: &Units, profile: &Profile, out: &mut Vec<Finding>) {
    for (_, due) in v.sip_uks(profile) {
        let unit = v
            .of(EventType::FastVardkontakt)
            .filter(|f| utc(f) <= due)
            .last()
            .or_else(|| v.latest(EventType::FastVardkontakt))
            .map(|f| &f.unit)
            .or_else(|| v.first_im_oppenvard(units));
        v.judge_and_file(out, ID, unit, due, v.of(EventType::KallelseSip));
    }
}
