//! What the follow-up keeps of each case a scan judged: its obligations
//! (met, late, missing, or pending within due + grace) and its facts, as
//! the rows `store::followup` replaces when a hash over them changed; and
//! the hash over its findings that lets a scan skip filing a case whose
//! findings did not change (`findings_hash`).

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use super::plan;
use crate::calendar::local_date;
use crate::rules::{case, Finding, Obligation, Outcome, RuleId};
use crate::store::candidates::Candidate;
use crate::store::followup::{self, NewObligation};

/// An obligation late or missing within the grace is not judged yet, as no
/// deviation is filed for it yet (feed latency): it stays pending.
fn graced(o: &Obligation, as_of: DateTime<Utc>, grace: Duration) -> (Outcome, Option<NaiveDateTime>) {
    match o.outcome {
        Outcome::Late | Outcome::Missing if o.due + grace > as_of => (Outcome::Pending, None),
        outcome => (outcome, o.done.map(|t| t.naive_utc())),
    }
}

/// The seed of the summary hash; changing it rewrites every case's rows once.
const SUMMARY_SEED: u64 = 0x5356_552d_7661_6b74;

pub(super) fn obligation_row(case_id: &str, o: &Obligation, as_of: DateTime<Utc>, grace: Duration) -> NewObligation {
    let (outcome, done_at) = graced(o, as_of, grace);
    NewObligation {
        case_id: case_id.to_string(),
        rule: o.rule.as_str().to_string(),
        unit: o.unit.as_ref().map(|u| u.0.clone()),
        due: o.due.naive_utc(),
        outcome: outcome.as_str().to_string(),
        done_at,
    }
}

/// The rows the follow-up keeps of one case, when a hash over what they
/// hold differs from the one the last scan noted (`None`: unchanged, and
/// no row is built). The hash is only ever compared with one this build
/// wrote; a new build rewrites each case once. foldhash with a fixed seed
/// (the same in every process of a build): SipHash was 2 % of a full scan.
pub(super) fn summarise(
    c: &Candidate,
    outcome: &case::CaseOutcome,
    as_of: DateTime<Utc>,
    grace: Duration,
) -> Option<followup::CaseSummary> {
    use std::hash::{BuildHasher, Hash, Hasher};
    let f = &outcome.facts;
    let mut h = foldhash::quality::FixedState::with_seed(SUMMARY_SEED).build_hasher();
    for o in &outcome.obligations {
        (o.rule, &o.unit, o.due, graced(o, as_of, grace)).hash(&mut h);
    }
    f.hash(&mut h);
    (&c.patient_hash, &c.age_band).hash(&mut h);
    let hash = format!("{:016x}", h.finish());
    if c.summary_hash.as_deref() == Some(hash.as_str()) {
        return None;
    }
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let (pending, judged): (Vec<_>, Vec<_>) = outcome
        .obligations
        .iter()
        .map(|o| (o, graced(o, as_of, grace).0))
        .partition(|(_, outcome)| *outcome == Outcome::Pending);
    let pending: Vec<&Obligation> = pending.into_iter().map(|(o, _)| o).collect();
    let judged: Vec<followup::JudgedDay> = judged
        .iter()
        .map(|(o, outcome)| followup::JudgedDay {
            day: local_date(o.due),
            rule: o.rule.as_str().to_string(),
            unit: o.unit.as_ref().map_or_else(String::new, |u| u.0.clone()),
            outcome: *outcome,
        })
        .collect();
    Some(followup::CaseSummary {
        case_id: c.id.clone(),
        hash,
        // Packed here, on a judging thread, not on the one that files.
        packed: followup::pack(&judged),
        judged,
        pending: pending
            .into_iter()
            .map(|o| obligation_row(&c.id, o, as_of, grace))
            .collect(),
        facts: followup::FactsRow {
            case_id: c.id.clone(),
            kommuner: serde_json::to_string(&f.kommuner).unwrap_or_else(|_| "[]".into()),
            patient_hash: c.patient_hash.clone(),
            age_band: c.age_band.clone(),
            inskrivning_at: f.inskrivning_at.map(|t| t.naive_utc()),
            uk_at: f.uk_at.map(|t| t.naive_utc()),
            dag0: f.dag0.map(day),
            utskrivning_at: f.utskrivning_at.map(|t| t.naive_utc()),
            utskrivning_date: f.utskrivning_at.map(|t| day(local_date(t))),
            avslut_date: f.avslut_at.map(|t| day(local_date(t))),
            im_in_time: f.im_in_time,
            sip_needed: f.sip_needed,
            kallelse_in_time: f.kallelse_in_time,
            kommun: f.kommun.clone(),
        },
    })
}

/// Changing it makes every case's filing run in full once (do when `plan`
/// changes what it does with the same findings and deviations).
const FINDINGS_VERSION: u64 = 1;

/// The seed of every case's findings hash in a scan: the rules the profile
/// has on, as `plan` withdraws only deviations of a rule that is on — a
/// rule switched on again must have every case's filing run once.
pub(super) fn findings_seed(active: &HashSet<RuleId>) -> u64 {
    use std::hash::BuildHasher;
    let mut on: Vec<&str> = active.iter().map(|r| r.as_str()).collect();
    on.sort_unstable();
    foldhash::quality::FixedState::with_seed(SUMMARY_SEED).hash_one(&(FINDINGS_VERSION, on))
}

/// A hash over a case's findings past due + grace as `plan` compares them
/// with its deviations: the obligation (its fingerprint's parts) and the
/// facts. Equal to what the scan that last filed the case noted, its
/// deviations say what these findings say (nothing but a person's change
/// of status touches them in between, and that forgets the hash), so
/// filing would do nothing: the case's deviations are not even read.
pub(super) fn findings_hash(seed: u64, ready: &[Finding]) -> String {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::quality::FixedState::with_seed(seed).build_hasher();
    for f in ready {
        let (status, done, late) = plan::facts(f);
        (f.rule.as_str(), f.case.as_ref().map(|c| c.as_str())).hash(&mut h);
        (f.unit.as_ref().map(|u| u.as_str()), f.due.timestamp()).hash(&mut h);
        (status, done, late).hash(&mut h);
    }
    format!("{:016x}", h.finish())
}
