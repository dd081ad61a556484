//! The reconciliation cases of SPEC §6, decided without a database.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::domain::{CaseId, UnitId};
use crate::rules::Status;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 0, 0, 0).single().unwrap_or_default() + Duration::hours(h)
}

fn finding(rule: RuleId, case: &str, due: DateTime<Utc>, done: Option<DateTime<Utc>>) -> Finding {
    Finding {
        rule,
        case: Some(CaseId(case.into())),
        unit: Some(UnitId("AVD1".into())),
        due: due.fixed_offset(),
        status: if done.is_some() { Status::Late } else { Status::Missing },
        done: done.map(|d| d.fixed_offset()),
        late_minutes: done.map(|d| (d - due).num_minutes()),
        affected: Vec::new(),
    }
}

fn filed(f: &Finding, id: i64, status: &str) -> DeviationRow {
    let (finding_status, done_at, late_minutes) = facts(f);
    DeviationRow {
        id,
        fingerprint: fingerprint(f),
        rule: f.rule.as_str().into(),
        case_id: f.case.as_ref().map(|c| c.0.clone()),
        unit: f.unit.as_ref().map(|u| u.0.clone()),
        due: f.due_utc().naive_utc(),
        finding_status: finding_status.into(),
        done_at,
        late_minutes,
        status: status.parse().unwrap(),
        sannolikhet: 3,
        konsekvens: 3,
        recipients: "{}".into(),
        queued_at: None,
        scan_id: 1,
        created_at: t(0).naive_utc(),
    }
}

fn terms(active: &HashSet<RuleId>, backfill: bool) -> Terms<'_> {
    Terms {
        backfill,
        mail_cutoff: t(0),
        active,
    }
}

fn all() -> HashSet<RuleId> {
    RuleId::ALL.into_iter().collect()
}

#[test]
fn a_new_finding_is_filed_once_and_an_old_one_unmailed() {
    let active = all();
    let recent = finding(RuleId::Inskrivningsmeddelande24h, "C1", t(24), None);
    let old = finding(RuleId::Inskrivningsmeddelande24h, "C2", t(-24), None);
    let list = [recent.clone(), recent.clone(), old.clone()];
    let actions = plan(&list, Vec::new(), &terms(&active, false));
    assert_eq!(actions.len(), 2, "the same fingerprint twice files once: {actions:?}");
    assert!(matches!(&actions[0], Action::File { unmailed: false, .. }));
    assert!(matches!(&actions[1], Action::File { unmailed: true, .. }));
}

#[test]
fn a_missing_that_turns_late_updates_quietly_and_the_same_facts_do_nothing() {
    let active = all();
    let missing = finding(RuleId::KallelseSip, "C1", t(24), None);
    let late = finding(RuleId::KallelseSip, "C1", t(24), Some(t(30)));
    let existing = vec![filed(&missing, 1, "skickad")];
    let actions = plan(std::slice::from_ref(&late), existing.clone(), &terms(&active, false));
    assert!(matches!(&actions[..], [Action::UpdateFacts { deviation, .. }] if deviation.id == 1));
    assert!(plan(std::slice::from_ref(&missing), existing, &terms(&active, false)).is_empty());
}

#[test]
fn only_evidence_withdraws_and_only_an_open_deviation_of_an_active_rule() {
    let active = all();
    let gone = finding(RuleId::KvittensUtskrivningsklar, "C1", t(24), None);
    let closed = finding(RuleId::KvittensUtskrivningsklar, "C2", t(24), None);
    let existing = vec![filed(&gone, 1, "skickad"), filed(&closed, 2, "avslutad")];
    let actions = plan(&[], existing.clone(), &terms(&active, false));
    assert!(
        matches!(&actions[..], [Action::Withdraw(d)] if d.id == 1),
        "{actions:?}"
    );
    let none: HashSet<RuleId> = HashSet::new();
    assert!(
        plan(&[], existing, &terms(&none, false)).is_empty(),
        "a rule switched off withdraws nothing"
    );
}

#[test]
fn a_withdrawn_deviation_whose_finding_is_back_is_reopened() {
    let active = all();
    let back = finding(RuleId::Inskrivningsmeddelande24h, "C1", t(-48), None);
    let actions = plan(
        std::slice::from_ref(&back),
        vec![filed(&back, 7, "aterkallad")],
        &terms(&active, false),
    );
    assert!(matches!(&actions[..], [Action::Reopen { deviation, too_old: true }] if deviation.id == 7));
}

#[test]
fn a_backfill_files_what_nothing_covers_and_changes_nothing_else() {
    let active = all();
    let f = finding(RuleId::KallelseSip, "C1", t(24), None);
    let gone = finding(RuleId::KallelseSip, "C2", t(24), None);
    let mut other_unit = f.clone();
    other_unit.unit = Some(UnitId("VC2".into()));
    let existing = vec![filed(&f, 1, "aterkallad"), filed(&gone, 2, "skickad")];
    // The same obligation under another responsible unit is covered (the
    // fast vårdkontakt an earlier instant did not show yet); a new case is not.
    let new_case = finding(RuleId::KallelseSip, "C3", t(24), None);
    let list = [f, other_unit, new_case];
    let actions = plan(&list, existing, &terms(&active, true));
    assert!(
        matches!(&actions[..], [Action::File { finding, .. }] if finding.case.as_ref().map(|c| c.as_str()) == Some("C3")),
        "{actions:?}"
    );
}
