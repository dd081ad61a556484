//! What every per-case rule reads: one [`CaseView`] per case (events up to
//! T, in time order) with the notions SPEC §4 shares between rules (the
//! withdrawn UK, SIP needed, the kallelse due, recipients, kvittens), and
//! the evaluation of a case by the registry's rules. The rules themselves
//! are one file each (`rules::registry`).

use std::cell::RefCell;
use std::collections::HashSet;

use foldhash::fast::RandomState as Fast;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};

use super::profile::SipSource;
use super::registry::Judge;
use super::{finding, judge, outcome, Finding, Obligation, Profile, RuleId, Units};
use crate::calendar::{dag0, end_of_day, local_date};
use crate::domain::{CaseId, Event, EventType, EventValue, Sparfarg, UnitId};

/// A case's events that have happened by T, in time order (stable).
pub struct CaseView<'a> {
    case: Option<&'a CaseId>,
    events: Vec<&'a Event>,
    /// The first `avslut`: every obligation due after it is cancelled.
    avslut: Option<DateTime<Utc>>,
    /// The first `avslut` that also cancels the SIP chain (§4.6): not one
    /// by a unit outside slutenvården after the first UK, unless `avliden`.
    sip_avslut: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
    /// The earliest due not yet reached: when the case must be looked at again.
    next_due: std::cell::Cell<Option<DateTime<Utc>>>,
    /// Every obligation judged, when the caller keeps them (the scan does, `check` does not).
    record: Option<RefCell<Vec<Obligation>>>,
}

/// One obligation as a rule hands it over: which rule, who must act, whose
/// work a breach hurts (the berörd part, SPEC §6), and when it is due.
pub(crate) struct Duty<'a> {
    pub rule: RuleId,
    pub unit: Option<&'a UnitId>,
    pub affected: Vec<&'a UnitId>,
    pub due: DateTime<Utc>,
}

pub(crate) fn utc(e: &Event) -> DateTime<Utc> {
    DateTime::from_timestamp(e.at.timestamp(), 0).unwrap_or_default()
}

/// The event's own `at` at whole seconds, with the offset it was sent with.
fn at_secs(e: &Event) -> DateTime<FixedOffset> {
    utc(e).with_timezone(e.at.offset())
}

impl<'a> CaseView<'a> {
    fn new(events: &'a [Event], units: &Units, as_of: DateTime<Utc>, record: bool) -> CaseView<'a> {
        let mut evs: Vec<&Event> = events
            .iter()
            .filter(|e| e.at.timestamp() <= as_of.timestamp())
            .collect();
        // Ties broken by id: a file and the database give the same order.
        evs.sort_by(|a, b| a.at.timestamp().cmp(&b.at.timestamp()).then_with(|| a.id.cmp(&b.id)));
        let avslut = evs.iter().find(|e| e.kind == EventType::Avslut).map(|e| utc(e));
        let first_uk = evs
            .iter()
            .find(|e| e.kind == EventType::Utskrivningsklar)
            .map(|e| utc(e));
        let sip_avslut = evs
            .iter()
            .filter(|e| e.kind == EventType::Avslut)
            .find(|e| {
                units.is_slutenvard(&e.unit)
                    || e.value == Some(EventValue::Text("avliden".into()))
                    || first_uk.is_none_or(|uk| utc(e) <= uk)
            })
            .map(|e| utc(e));
        CaseView {
            case: events.first().and_then(|e| e.case.as_ref()),
            events: evs,
            avslut,
            sip_avslut,
            as_of,
            next_due: std::cell::Cell::new(None),
            record: record.then(|| RefCell::new(Vec::new())),
        }
    }

    pub(crate) fn of(&self, kind: EventType) -> impl Iterator<Item = &'a Event> + '_ {
        self.events.iter().copied().filter(move |e| e.kind == kind)
    }

    pub(crate) fn first(&self, kind: EventType) -> Option<&'a Event> {
        self.of(kind).next()
    }

    pub(crate) fn latest(&self, kind: EventType) -> Option<&'a Event> {
        self.of(kind).last()
    }

    fn cancelled(&self, rule: RuleId, due: DateTime<Utc>) -> bool {
        let avslut = if rule.rule().sip_chain {
            self.sip_avslut
        } else {
            self.avslut
        };
        avslut.is_some_and(|c| due > c)
    }

    /// Whether a UK was withdrawn by the instant `at` (a withdrawal at or before it).
    pub(crate) fn withdrawn_by(&self, uk: &Event, at: DateTime<Utc>) -> bool {
        self.withdrawn(uk, at + Duration::seconds(1))
    }

    /// A UK is withdrawn for an obligation when a withdrawal of it came before the due.
    pub(crate) fn withdrawn(&self, uk: &Event, due: DateTime<Utc>) -> bool {
        self.of(EventType::AtertagUtskrivningsklar)
            .any(|w| w.reference.as_ref() == Some(&uk.id) && utc(w) < due)
    }

    pub(crate) fn judge_and_file(
        &self,
        out: &mut Vec<Finding>,
        duty: Duty<'a>,
        fulfilling: impl IntoIterator<Item = &'a Event>,
    ) {
        let Duty {
            rule,
            unit,
            affected,
            due,
        } = duty;
        if self.cancelled(rule, due) {
            return;
        }
        if due >= self.as_of {
            self.next_due.set(Some(self.next_due.get().map_or(due, |n| n.min(due))));
        }
        let verdict = match &self.record {
            None => judge(due, self.as_of, fulfilling.into_iter().map(at_secs)),
            Some(record) => {
                let fulfilling: Vec<&Event> = fulfilling.into_iter().collect();
                let (outcome, done) = outcome(due, self.as_of, fulfilling.iter().map(|e| utc(e)));
                record.borrow_mut().push(Obligation {
                    rule,
                    unit: unit.cloned(),
                    due,
                    outcome,
                    done,
                });
                judge(due, self.as_of, fulfilling.into_iter().map(at_secs))
            }
        };
        if let Some(v) = verdict {
            let mut f = finding(rule, self.case, unit, due, v);
            f.affected = affected.into_iter().cloned().collect();
            out.push(f);
        }
    }

    /// Recipients of the case's IMs, in order of first appearance.
    pub(crate) fn im_recipients(&self) -> Vec<&'a UnitId> {
        let mut seen = HashSet::with_hasher(Fast::default());
        self.of(EventType::Inskrivningsmeddelande)
            .flat_map(|e| e.to.iter())
            .filter(|u| seen.insert(*u))
            .collect()
    }

    pub(crate) fn first_im_oppenvard(&self, units: &Units) -> Option<&'a UnitId> {
        self.first(EventType::Inskrivningsmeddelande)?
            .to
            .iter()
            .find(|u| units.is_oppenvard(u))
    }

    /// SPEC §4.2: the latest behov_av_sip is true or the latest spårfärg gul
    /// or röd (by the profile's sources), and the latest samtycke is not false.
    pub(crate) fn sip_needed(&self, profile: &Profile) -> bool {
        self.sip_needed_at(profile, self.as_of)
    }

    /// The same, judged on what had happened by `at`.
    pub(crate) fn sip_needed_at(&self, profile: &Profile, at: DateTime<Utc>) -> bool {
        let latest = |kind| self.of(kind).filter(|e| utc(e) <= at).last();
        let behov = profile.sip_sources.contains(&SipSource::BehovAvSip)
            && latest(EventType::BehovAvSip).is_some_and(|e| e.value == Some(EventValue::Bool(true)));
        let spar = profile.sip_sources.contains(&SipSource::Sparfarg)
            && latest(EventType::Sparfarg)
                .is_some_and(|e| matches!(e.value, Some(EventValue::Sparfarg(Sparfarg::Gul | Sparfarg::Rod))));
        let refused = latest(EventType::SamtyckeSip).is_some_and(|e| e.value == Some(EventValue::Bool(false)));
        (behov || spar) && !refused
    }

    /// Kallelser till SIP that meet §4.2: sent by a unit outside
    /// slutenvården (an unknown unit may be the vårdcentral).
    pub(crate) fn kallelser(&self, units: &Units) -> Vec<&'a Event> {
        self.of(EventType::KallelseSip)
            .filter(|k| !units.is_slutenvard(&k.unit))
            .collect()
    }

    /// `fast_vardkontakt` events that make one (not a removal, `value: false`).
    pub(crate) fn fast_vardkontakter(&self) -> impl Iterator<Item = &'a Event> + '_ {
        self.of(EventType::FastVardkontakt)
            .filter(|f| f.value != Some(EventValue::Bool(false)))
    }

    /// §4.2's responsible unit for a SIP obligation due at `due`: the latest
    /// fast vårdkontakt (a removal names its unit too) at or before due,
    /// else the latest at all, else the first öppenvård recipient of the first IM.
    pub(crate) fn sip_responsible(&self, units: &Units, due: DateTime<Utc>) -> Option<&'a UnitId> {
        self.of(EventType::FastVardkontakt)
            .filter(|f| utc(f) <= due)
            .last()
            .or_else(|| self.latest(EventType::FastVardkontakt))
            .map(|f| &f.unit)
            .or_else(|| self.first_im_oppenvard(units))
    }

    /// The berörd part of a SIP obligation (SPEC §6): the kommun units among
    /// the recipients of `uk` (every UK when none) and of the IMs.
    pub(crate) fn kommun_parties(&self, units: &Units, uk: Option<&'a Event>) -> Vec<&'a UnitId> {
        let uks: Vec<&'a Event> = match uk {
            Some(uk) => vec![uk],
            None => self.of(EventType::Utskrivningsklar).collect(),
        };
        let mut seen = HashSet::with_hasher(Fast::default());
        uks.into_iter()
            .flat_map(|uk| uk.to.iter())
            .chain(self.im_recipients())
            .filter(|u| units.kommun_of(u).is_some() && seen.insert(*u))
            .collect()
    }

    /// The first inskrivning and the IM's due (§4.1): 24 h (elapsed) from
    /// it, or from the first bedömning when that is later.
    pub(crate) fn im_due(&self) -> Option<(&'a Event, DateTime<Utc>)> {
        let ins = self.first(EventType::Inskrivning)?;
        let start = match self.first(EventType::Bedomning) {
            Some(b) => utc(ins).max(utc(b)),
            None => utc(ins),
        };
        Some((ins, start + Duration::hours(24)))
    }

    pub(crate) fn kallelse_due(&self, uk: &Event, profile: &Profile) -> DateTime<Utc> {
        let d = if profile.kallelse_brytpunkt {
            dag0(utc(uk))
        } else {
            local_date(utc(uk))
        };
        end_of_day(d + Duration::days(profile.kallelse_days))
    }
}

/// The case's findings, and the earliest due that has not come yet (after
/// which the case must be evaluated again even if no event arrives).
pub fn evaluate(
    events: &[Event],
    units: &Units,
    profile: &Profile,
    rules: &[RuleId],
    as_of: DateTime<Utc>,
) -> (Vec<Finding>, Option<DateTime<Utc>>) {
    let view = CaseView::new(events, units, as_of, false);
    let out = run_rules(&view, units, profile, rules);
    (out, view.next_due.get())
}

/// What the scan keeps of a case: its findings and next due as [`evaluate`]
/// gives them, every obligation judged, and the facts of the follow-up.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    pub findings: Vec<Finding>,
    pub next_due: Option<DateTime<Utc>>,
    pub obligations: Vec<Obligation>,
    pub facts: CaseFacts,
}

pub fn evaluate_recorded(
    events: &[Event],
    units: &Units,
    profile: &Profile,
    rules: &[RuleId],
    as_of: DateTime<Utc>,
) -> CaseOutcome {
    let view = CaseView::new(events, units, as_of, true);
    let findings = run_rules(&view, units, profile, rules);
    let facts = facts(&view, units, profile);
    CaseOutcome {
        findings,
        next_due: view.next_due.get(),
        obligations: view.record.map(RefCell::into_inner).unwrap_or_default(),
        facts,
    }
}

/// What the lead times, betalningsansvar and readmissions (SPEC §7) need of
/// a case, as of T.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CaseFacts {
    /// The huvudmän of the kommun units the counting UK went to (else the IMs), sorted.
    pub kommuner: Vec<String>,
    /// The patient's kommun: the inskrivning's `kommun`, else the first
    /// kommun among the counting UK's recipients (else the IMs').
    pub kommun: Option<String>,
    pub inskrivning_at: Option<DateTime<Utc>>,
    /// The UK that counts: the latest not withdrawn at or before the utskrivning.
    pub uk_at: Option<DateTime<Utc>>,
    pub dag0: Option<NaiveDate>,
    pub utskrivning_at: Option<DateTime<Utc>>,
    /// The case was closed (`avslut`, e.g. the patient died): no days count after it.
    pub avslut_at: Option<DateTime<Utc>>,
    /// The IM went within 24 h (§4.1); `None` without an inskrivning.
    pub im_in_time: Option<bool>,
    pub sip_needed: bool,
    /// Where SIP was needed: a kallelse by a unit outside slutenvården by
    /// the end of the third day after the UK's date (the law's prerequisite,
    /// whatever the profile); else `None`.
    pub kallelse_in_time: Option<bool>,
}

fn facts(v: &CaseView, units: &Units, profile: &Profile) -> CaseFacts {
    let inskrivning = v.first(EventType::Inskrivning);
    let utskrivning = v.first(EventType::Utskrivning);
    let until = utskrivning.map_or(v.as_of, utc);
    let uk = v
        .of(EventType::Utskrivningsklar)
        .filter(|uk| utc(uk) <= until)
        .filter(|uk| !v.withdrawn(uk, until + Duration::seconds(1)))
        .last();
    let im_in_time = v.im_due().map(|(_, due)| {
        v.first(EventType::Inskrivningsmeddelande)
            .is_some_and(|im| utc(im) <= due)
    });
    let sip_needed = v.sip_needed(profile);
    let kallelse_in_time = match (sip_needed, uk) {
        (true, Some(uk)) => {
            let due = end_of_day(local_date(utc(uk)) + Duration::days(3));
            Some(v.kallelser(units).iter().any(|k| utc(k) <= due))
        }
        _ => None,
    };
    let recipients: Vec<&UnitId> = match uk {
        Some(uk) => recipients(v, uk),
        None => v.im_recipients(),
    };
    let mut kommuner: Vec<String> = recipients
        .into_iter()
        .filter_map(|r| units.kommun_of(r))
        .map(String::from)
        .collect();
    // §7: the inskrivning's kommun where given, else the first kommun
    // recipient's huvudman (before sorting: the first in the message).
    let kommun = inskrivning
        .and_then(|i| i.kommun.clone())
        .or_else(|| kommuner.first().cloned());
    kommuner.sort();
    kommuner.dedup();
    CaseFacts {
        kommuner,
        kommun,
        inskrivning_at: inskrivning.map(utc),
        uk_at: uk.map(utc),
        dag0: uk.map(|uk| dag0(utc(uk))),
        utskrivning_at: utskrivning.map(utc),
        avslut_at: v.avslut,
        im_in_time,
        sip_needed,
        kallelse_in_time,
    }
}

fn run_rules(view: &CaseView, units: &Units, profile: &Profile, rules: &[RuleId]) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in rules {
        if let Judge::Case(judge) = rule.rule().judge {
            judge(view, units, profile, &mut out);
        }
    }
    out
}

impl<'a> CaseView<'a> {
    /// The UKs for which §4.2 applies (SIP needed, not withdrawn before the
    /// kallelse due), each with that due.
    pub(crate) fn sip_uks(&self, profile: &Profile) -> Vec<(&'a Event, DateTime<Utc>)> {
        if !self.sip_needed(profile) {
            return Vec::new();
        }
        self.of(EventType::Utskrivningsklar)
            .map(|uk| (uk, self.kallelse_due(uk, profile)))
            .filter(|(uk, due)| !self.withdrawn(uk, *due))
            .collect()
    }

    /// Each recipient of each `kind` message acknowledges it by the end of
    /// its dag 0 (brytpunkt 12:00). Only a UK can be withdrawn.
    pub(crate) fn kvittens(&self, out: &mut Vec<Finding>, kind: EventType, rule: RuleId) {
        for msg in self.of(kind) {
            let due = end_of_day(dag0(utc(msg)));
            if kind == EventType::Utskrivningsklar && self.withdrawn(msg, due) {
                continue;
            }
            for r in recipients(self, msg) {
                let duty = Duty {
                    rule,
                    unit: Some(r),
                    affected: vec![&msg.unit],
                    due,
                };
                self.judge_and_file(out, duty, kvittenser(self, msg, r));
            }
        }
    }
}

/// Recipients of a message, each once; for a UK with an empty `to`, the IMs' recipients.
pub(crate) fn recipients<'a>(v: &CaseView<'a>, msg: &'a Event) -> Vec<&'a UnitId> {
    if msg.to.is_empty() && msg.kind == EventType::Utskrivningsklar {
        return v.im_recipients();
    }
    let mut seen = HashSet::with_hasher(Fast::default());
    msg.to.iter().filter(|u| seen.insert(*u)).collect()
}

/// A kvittens of `msg` by `r`.
fn kvittenser<'a>(v: &'a CaseView<'a>, msg: &'a Event, r: &'a UnitId) -> impl Iterator<Item = &'a Event> + 'a {
    v.of(EventType::Kvittens)
        .filter(move |k| &k.unit == r && k.reference.as_ref() == Some(&msg.id))
}
