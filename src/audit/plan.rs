//! What filing does with a chunk's findings, decided with no database:
//! [`plan`] compares the findings past due + grace with the deviations
//! already filed for the same cases (or staffing days) and returns the
//! actions; `filing` then applies them in the chunk's transaction. The
//! reconciliation rules of SPEC §6 live here, each unit-tested:
//! - a finding no deviation has is filed (`File`), mailed unless its due
//!   lies before the mail cutoff;
//! - a finding whose facts changed (a missing that turned late) updates the
//!   deviation quietly (`UpdateFacts`);
//! - a withdrawn deviation whose finding is back is reopened (`Reopen`);
//! - an open deviation of an active rule that no finding supports any more
//!   is withdrawn (`Withdraw`): only evidence withdraws;
//! - a backfill (a scan as of an earlier instant than one before it) only
//!   files obligations no deviation covers yet, and changes nothing else.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use foldhash::fast::RandomState as Fast;
use sha2::{Digest, Sha256};

use crate::domain::handling::DeviationStatus;
use crate::rules::{Finding, RuleId};
use crate::store::deviations::{DeviationRow, OPEN};

/// One thing filing does.
#[derive(Debug, Clone)]
pub enum Action<'f> {
    File {
        finding: &'f Finding,
        fingerprint: String,
        /// Due before the mail cutoff: filed and counted, not mailed.
        unmailed: bool,
    },
    UpdateFacts {
        deviation: DeviationRow,
        finding: &'f Finding,
    },
    Reopen {
        deviation: DeviationRow,
        /// Due before the mail cutoff: mailed again only if it was mailed.
        too_old: bool,
    },
    Withdraw(DeviationRow),
}

/// What a plan is made under.
pub struct Terms<'a> {
    pub backfill: bool,
    /// Deviations due before this are filed without mail.
    pub mail_cutoff: DateTime<Utc>,
    /// The rules the profile has on: a deviation of a rule switched off is
    /// left as it is, never withdrawn.
    pub active: &'a HashSet<RuleId>,
}

pub fn fingerprint(f: &Finding) -> String {
    let key = format!(
        "{}|{}|{}|{}",
        f.rule.as_str(),
        f.case.as_ref().map_or("", |c| c.as_str()),
        f.unit.as_ref().map_or("", |u| u.as_str()),
        f.due.timestamp()
    );
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The obligation a deviation is about. The unit is part of it where the
/// rule says so (`Rule::unit_in_obligation`: staffing, a recipient's
/// kvittens, the ward); not where the responsible unit is found from data
/// that an earlier instant may not show yet (the fast vårdkontakt).
type Obligation = (String, Option<String>, Option<String>, NaiveDateTime);

fn obligation_of(rule: &str, case: Option<&str>, unit: Option<&str>, due: NaiveDateTime) -> Obligation {
    let unit_varies = RuleId::parse(rule).is_some_and(|r| !r.rule().unit_in_obligation);
    (
        rule.to_string(),
        case.map(String::from),
        if unit_varies { None } else { unit.map(String::from) },
        due,
    )
}

fn obligation(f: &Finding) -> Obligation {
    obligation_of(
        f.rule.as_str(),
        f.case.as_ref().map(|c| c.as_str()),
        f.unit.as_ref().map(|u| u.as_str()),
        f.due_utc().naive_utc(),
    )
}

/// The actions for `findings` (those past due + grace) against `existing`
/// (every deviation of the same cases or days), in the order to apply them.
pub fn plan<'f>(findings: &'f [Finding], existing: Vec<DeviationRow>, terms: &Terms) -> Vec<Action<'f>> {
    let covered: HashSet<Obligation, Fast> = existing
        .iter()
        .map(|d| obligation_of(&d.rule, d.case_id.as_deref(), d.unit.as_deref(), d.due))
        .collect();
    let mut by_fp: HashMap<String, DeviationRow, Fast> =
        existing.into_iter().map(|d| (d.fingerprint.clone(), d)).collect();
    let mut seen = HashSet::with_hasher(Fast::default());
    let mut actions = Vec::new();
    for f in findings {
        let fp = fingerprint(f);
        if !seen.insert(fp.clone()) {
            continue;
        }
        match by_fp.remove(&fp) {
            None if terms.backfill && covered.contains(&obligation(f)) => {}
            None => actions.push(Action::File {
                finding: f,
                unmailed: f.due_utc() < terms.mail_cutoff,
                fingerprint: fp,
            }),
            Some(_) if terms.backfill => {}
            Some(d) if d.status == DeviationStatus::Aterkallad => actions.push(Action::Reopen {
                too_old: d.due.and_utc() < terms.mail_cutoff,
                deviation: d,
            }),
            Some(d) if facts_changed(&d, f) => actions.push(Action::UpdateFacts {
                deviation: d,
                finding: f,
            }),
            Some(_) => {}
        }
    }
    if !terms.backfill {
        let mut gone: Vec<DeviationRow> = by_fp
            .into_values()
            .filter(|d| RuleId::parse(&d.rule).is_some_and(|r| terms.active.contains(&r)))
            .filter(|d| OPEN.contains(&d.status))
            .collect();
        gone.sort_by_key(|d| d.id);
        actions.extend(gone.into_iter().map(Action::Withdraw));
    }
    actions
}

/// The finding's status, done and minutes late, as stored.
pub fn facts(f: &Finding) -> (&'static str, Option<NaiveDateTime>, Option<i64>) {
    (
        f.status.as_str(),
        f.done.map(|t| t.with_timezone(&Utc).naive_utc()),
        f.late_minutes,
    )
}

fn facts_changed(d: &DeviationRow, f: &Finding) -> bool {
    let (status, done, late) = facts(f);
    d.finding_status != status || d.done_at != done || d.late_minutes != late
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
