//! `beraknat_datum_passerat` (SPEC §4.8, Västerbotten): the beräknat
//! utskrivningsdatum passed and no new IM said when (seed 002: "Vid ändrat
//! beräknat utskrivningsdatum måste slutenvården ändra/skicka om
//! inskrivningsmeddelande med nytt preliminärt utskrivningsdatum").

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::case::{utc, CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::calendar::end_of_day;
use crate::domain::{Event, EventType, EventValue, UnitId};

pub const ID: RuleId = RuleId::new("beraknat_datum_passerat");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Beräknat utskrivningsdatum passerat utan nytt inskrivningsmeddelande",
    risk: Risk::new(2, 2),
    recommendation: false,
    unit_in_obligation: false,
    on_by_default: false,
    sip_chain: false,
    template: include_str!("../../templates/rules/beraknat_datum_passerat.hbs"),
    judge: Judge::Case(judge),
};

/// Each date D given by an IM (the first IM that gave it): due at the end
/// of D; met by a later IM, a UK not withdrawn at the due, or an
/// utskrivning. Responsible: the ward that holds the patient at the due.
fn judge(v: &CaseView, _: &Units, _: &Profile, out: &mut Vec<Finding>) {
    let mut dates = HashSet::new();
    for im in v.of(EventType::Inskrivningsmeddelande) {
        let Some(EventValue::Date(d)) = im.value else {
            continue;
        };
        if !dates.insert(d) {
            continue;
        }
        let due = end_of_day(d);
        let duty = Duty {
            rule: ID,
            unit: Some(ward_at(v, im, due)),
            affected: v.im_recipients(),
            due,
        };
        let later_im = v
            .of(EventType::Inskrivningsmeddelande)
            .filter(|other| utc(other) > utc(im));
        let uks = v.of(EventType::Utskrivningsklar).filter(|uk| !v.withdrawn(uk, due));
        let fulfilling: Vec<&Event> = later_im.chain(uks).chain(v.of(EventType::Utskrivning)).collect();
        v.judge_and_file(out, duty, fulfilling);
    }
}

/// The unit of the latest överflyttning at or before `due`, else of the
/// inskrivning, else of the IM.
fn ward_at<'a>(v: &CaseView<'a>, im: &'a Event, due: DateTime<Utc>) -> &'a UnitId {
    v.of(EventType::Overflyttning)
        .filter(|o| utc(o) <= due)
        .last()
        .or_else(|| v.first(EventType::Inskrivning))
        .map_or(&im.unit, |e| &e.unit)
}
