//! `behov_av_sip_dokumenterat` (SPEC §4.8, Östergötland): the Ja/Nej on
//! Behov av SIP not documented during the stay (seed 000: the fast
//! vårdkontakt "säkerställer att frågan om 'Behov av SIP' har lyfts och att
//! dokumentationen av Ja eller Nej för 'Behov av SIP' är utförd under
//! planering under vårdtid").

use super::case::{utc, CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("behov_av_sip_dokumenterat");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Behov av SIP inte dokumenterat under vårdtiden",
    risk: Risk::new(2, 3),
    recommendation: false,
    unit_in_obligation: false,
    on_by_default: false,
    sip_chain: true,
    template: include_str!("../../templates/rules/behov_av_sip_dokumenterat.hbs"),
    judge: Judge::Case(judge),
};

/// A case with an utskrivning (the first, at U) that has a fast vårdkontakt
/// (not a removal), or whose first IM went to an öppenvård unit. Due U; met
/// by a `behov_av_sip` (Ja or Nej) by a unit outside slutenvården at or
/// before U. Responsible: as §4.2 with due U.
fn judge(v: &CaseView, units: &Units, _: &Profile, out: &mut Vec<Finding>) {
    let Some(ut) = v.first(EventType::Utskrivning) else {
        return;
    };
    if v.fast_vardkontakter().next().is_none() && v.first_im_oppenvard(units).is_none() {
        return;
    }
    let due = utc(ut);
    let duty = Duty {
        rule: ID,
        unit: v.sip_responsible(units, due),
        affected: v.kommun_parties(units, None),
        due,
    };
    let documented = v.of(EventType::BehovAvSip).filter(|e| !units.is_slutenvard(&e.unit));
    v.judge_and_file(out, duty, documented);
}
