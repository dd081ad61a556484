//! `samordning_stangd` (SPEC §4.8): the fast vårdkontakt closed the case or
//! removed itself before the kallelse till SIP (seed 001: "fast vårdkontakt
//! inte ska koppla bort sig eller stänga samordningsärendet vid utskrivning").

use super::case::{utc, CaseView, Duty};
use super::registry::{Judge, Risk, Rule, RuleId};
use super::{Finding, Profile, Units};
use crate::domain::{Event, EventType, EventValue};

pub const ID: RuleId = RuleId::new("samordning_stangd");

pub const RULE: Rule = Rule {
    id: ID,
    title: "Samordningsärendet stängt före kallelse till SIP",
    risk: Risk::new(3, 3),
    recommendation: false,
    unit_in_obligation: true,
    on_by_default: true,
    sip_chain: false,
    template: include_str!("../../templates/rules/samordning_stangd.hbs"),
    judge: Judge::Case(judge),
};

/// Each closing act at C — an `avslut` (not `avliden`) by a unit outside
/// slutenvården, or a `fast_vardkontakt` removal — when at C a UK is not
/// withdrawn, SIP is needed as of C, and no kallelse by a unit outside
/// slutenvården has come. Due C; never met: the act is the breach.
/// Responsible: the unit that acted.
fn judge(v: &CaseView, units: &Units, profile: &Profile, out: &mut Vec<Finding>) {
    for act in closing_acts(v, units) {
        let c = utc(act);
        let open_uk = v
            .of(EventType::Utskrivningsklar)
            .any(|uk| utc(uk) <= c && !v.withdrawn_by(uk, c));
        if !open_uk || !v.sip_needed_at(profile, c) || v.kallelser(units).iter().any(|k| utc(k) <= c) {
            continue;
        }
        let duty = Duty {
            rule: ID,
            unit: Some(&act.unit),
            affected: v.kommun_parties(units, None),
            due: c,
        };
        v.judge_and_file(out, duty, std::iter::empty::<&Event>());
    }
}

fn closing_acts<'a>(v: &CaseView<'a>, units: &Units) -> Vec<&'a Event> {
    let avliden = Some(EventValue::Text("avliden".into()));
    v.of(EventType::Avslut)
        .filter(|a| !units.is_slutenvard(&a.unit) && a.value != avliden)
        .chain(
            v.of(EventType::FastVardkontakt)
                .filter(|f| f.value == Some(EventValue::Bool(false))),
        )
        .collect()
}
