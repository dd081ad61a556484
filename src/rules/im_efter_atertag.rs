//! `im_efter_atertag` (SPEC §4.8, Västerbotten): no new IM after a UK was
//! withdrawn (seed 002: "I samband med att utskrivningsklar återtas, sätts
//! ett nytt beräknat utskrivningsdatum genom att man ändrar/skickar om
//! inskrivningsmeddelande").

use std::collections::HashSet;

use super::case::{utc, CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::calendar::{end_of_day, local_date};
use crate::domain::EventType;

pub const ID: RuleId = RuleId::new("im_efter_atertag");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Inget nytt inskrivningsmeddelande efter återtagen utskrivningsklar",
    risk: Risk::new(2, 2),
    recommendation: false,
    unit_in_obligation: true,
    on_by_default: false,
    sip_chain: false,
    template: include_str!("../../templates/rules/im_efter_atertag.hbs"),
    judge: Judge::Case(judge),
};

/// Each `atertag_utskrivningsklar` at W: due at the end of W's day; met by
/// an IM at or after W. Responsible: the unit of the återtag (two återtag
/// by one unit on one day are one obligation).
fn judge(v: &CaseView, _: &Units, _: &Profile, out: &mut Vec<Finding>) {
    let mut seen = HashSet::new();
    for w in v.of(EventType::AtertagUtskrivningsklar) {
        let due = end_of_day(local_date(utc(w)));
        if !seen.insert((due, &w.unit)) {
            continue;
        }
        let duty = Duty {
            rule: ID,
            unit: Some(&w.unit),
            affected: v.im_recipients(),
            due,
        };
        let new_im = v
            .of(EventType::Inskrivningsmeddelande)
            .filter(move |im| utc(im) >= utc(w));
        v.judge_and_file(out, duty, new_im);
    }
}
