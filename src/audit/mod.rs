//! The scan: load the cases that changed or fell due, run the rules (the very
//! functions `check` runs), and file, update or withdraw deviations. One
//! scan at a time: a PostgreSQL advisory lock, or a lease row on SQLite.
//! Each chunk of cases is one transaction, so a scan killed midway leaves
//! whole chunks and the next scan finishes the job; fingerprints are unique,
//! so nothing is ever filed twice. Every run is recorded in `scan_runs`.

mod chunks;
pub mod filing;
pub mod plan;
mod queue;
// What a report says lives with the mail that says it.
pub use crate::mail::report;
pub mod schedule;
mod staffing;
mod summary;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::Serialize;

use crate::config::ScanConfig;
use crate::mail::templates::Templates;
use crate::mail::MailConfig;
use crate::rules::{case, Finding, Profile, RuleId, Units};
use crate::store::candidates::Candidate;
use crate::store::day_counts;
use crate::store::followup;
use crate::store::scans;
use crate::store::timelines;
use crate::store::{backend, cases, deviations, now, DbConn, Pool};
use summary::summarise;

/// How long a scan holds the SQLite lease before it must renew it.
const LEASE_MINUTES: i64 = 30;

/// Everything a scan needs, shared by `serve`, `scan` and the API.
pub struct Auditor {
    pub pool: Pool,
    pub profile: Profile,
    pub scan: ScanConfig,
    pub mail: MailConfig,
    pub templates: Arc<Templates>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub cases_evaluated: usize,
    pub findings: usize,
    pub filed: usize,
    pub updated: usize,
    pub withdrawn: usize,
    /// Filed but not mailed: due longer ago than `mail.max_age_days`.
    pub unmailed: usize,
    #[serde(skip)]
    pub unmailed_by_unit: BTreeMap<String, usize>,
    /// Cases whose scan columns the scan wrote (`cases::note_judged`).
    #[serde(skip)]
    pub cases_noted: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanSummary {
    pub id: i64,
    pub as_of: String,
    pub full: bool,
    #[serde(flatten)]
    pub counts: Counts,
}

pub use crate::store::scans::{recent_runs, RunRow};

/// How far ahead of the clock an operator's `as_of` may lie (clock skew).
pub const FUTURE_SKEW_MINUTES: i64 = 5;

/// An `as_of` asked for by a person (CLI, API): not in the future. A scan
/// as of a future instant would file obligations that are not yet due.
pub fn requested_as_of(as_of: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if as_of > Utc::now() + Duration::minutes(FUTURE_SKEW_MINUTES) {
        return Err(format!(
            "as_of {} ligger i framtiden: en granskning bedömer det som har hänt",
            crate::calendar::in_stockholm(as_of).to_rfc3339()
        ));
    }
    Ok(as_of)
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("en annan granskning pågår")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

struct LockGuard {
    conn: crate::store::PooledConn,
    holder: String,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Err(e) = backend::release_scan_lock(&mut self.conn, &self.holder) {
            tracing::error!(error = %e, "granskningslåset kunde inte släppas");
        }
    }
}

fn nonce() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::getrandom(&mut b);
    hex::encode(b)
}

impl Auditor {
    pub fn new(pool: Pool, config: &crate::config::Config) -> anyhow::Result<Auditor> {
        let profile = config.profile()?;
        let templates = Templates::load(config.mail.templates_dir.as_deref())?.citing(&profile.routine);
        Ok(Auditor {
            pool,
            profile,
            scan: config.scan.clone(),
            mail: config.mail.clone().validated()?,
            templates: Arc::new(templates),
        })
    }

    /// One scan as of `as_of` (default now). `full` re-evaluates every case.
    #[tracing::instrument(skip(self), fields(full))]
    pub fn run_scan(&self, as_of: Option<DateTime<Utc>>, full: bool) -> Result<ScanSummary, ScanError> {
        let mut holder = format!("{}:{}:{}", backend::this_host(), std::process::id(), nonce());
        let mut lock_conn = self.pool.get().map_err(|e| anyhow::anyhow!(e))?;
        let lease = now() + Duration::minutes(LEASE_MINUTES);
        match backend::try_scan_lock(&mut lock_conn, &holder, lease).map_err(|e| anyhow::anyhow!(e))? {
            Some(h) => holder = h,
            None => return Err(ScanError::Busy),
        }
        let _guard = LockGuard {
            conn: lock_conn,
            holder: holder.clone(),
        };
        let mut conn = self.pool.get().map_err(|e| anyhow::anyhow!(e))?;
        let as_of = as_of.unwrap_or_else(Utc::now);
        let as_of = DateTime::from_timestamp(as_of.timestamp(), 0).unwrap_or(as_of);
        // Holding the lock, any run still marked running was killed.
        let opened = scans::open(&mut conn, as_of.naive_utc(), full).map_err(|e| anyhow::anyhow!(e))?;
        let (run_id, full) = (opened.id, opened.full);
        let mut counts = Counts::default();
        let run = Run {
            id: run_id,
            as_of,
            full,
            backfill: opened.backfill,
            reference: opened.high_water.map_or(as_of, |h| h.max(as_of)),
            previous: opened.previous,
            days_owed: opened.days_owed,
            holder,
        };
        // A full scan rewrites the follow-up's rows of many cases: the larger
        // page cache of a bulk load keeps their indexes' upper levels.
        if full {
            crate::store::bulk::set_bulk_cache(&mut conn, true).map_err(|e| anyhow::anyhow!(e))?;
        }
        let result = self.scan_body(&mut conn, &run, &mut counts);
        if full {
            // The run is recorded whatever this says (a broken connection
            // after a failed body is the body's error).
            if let Err(e) = crate::store::bulk::set_bulk_cache(&mut conn, false) {
                tracing::warn!("sidcachen kunde inte återställas efter granskningen: {e}");
            }
        }
        let (status, error) = match &result {
            Ok(()) => (scans::ScanStatus::Klar, None),
            Err(e) => (scans::ScanStatus::Fel, Some(format!("{e:#}"))),
        };
        let tally = scans::Tally {
            cases_evaluated: counts.cases_evaluated as i32,
            findings: counts.findings as i32,
            filed: counts.filed as i32,
            updated: counts.updated as i32,
            withdrawn: counts.withdrawn as i32,
            unmailed: counts.unmailed as i32,
        };
        scans::finish(&mut conn, run_id, &tally, status, error.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
        result?;
        crate::store::bulk::tidy_after_scan(&mut conn, full, (counts.cases_evaluated, counts.cases_noted));
        tracing::info!(
            run = run_id,
            cases = counts.cases_evaluated,
            filed = counts.filed,
            updated = counts.updated,
            withdrawn = counts.withdrawn,
            unmailed = counts.unmailed,
            backfill = run.backfill,
            "granskning klar"
        );
        Ok(ScanSummary {
            id: run_id,
            as_of: crate::calendar::in_stockholm(as_of).to_rfc3339(),
            full,
            counts,
        })
    }

    fn scan_body(&self, conn: &mut DbConn, run: &Run, counts: &mut Counts) -> anyhow::Result<()> {
        recount_owed_days(conn, run)?;
        let units = Units::new(crate::store::units::all(conn)?);
        let active: HashSet<RuleId> = self.profile.enabled.iter().copied().collect();
        let case_rules = self.profile.case_rules();
        let filing = filing::Filing {
            auditor: self,
            units: &units,
            scan_id: run.id,
            backfill: run.backfill,
            whole: run.full,
            mail_cutoff: self.mail_cutoff(run),
            active: &active,
        };
        let since = if run.full {
            None
        } else {
            run.previous.as_ref().map(|p| p.started_at - self.scan.arrival_margin)
        };
        let walk =
            crate::store::candidates::CandidateWalk::start(conn, self.scan.chunk_cases, since, run.as_of.naive_utc())?;
        // A backfill files every case in full (it never notes a hash).
        let seed = (!run.backfill).then(|| summary::findings_seed(&active));
        let judge = |chunk: &[Candidate], read: timelines::Read| -> anyhow::Result<Judged> {
            let by_case = read.unpack()?;
            Ok(self.judge_chunk(chunk, &by_case, &case_rules, &units, (run.as_of, seed)))
        };
        // The day counts the committed chunks moved, added when the walk
        // ends, whole or not (store::day_counts); the first chunk that moves
        // any marks the run as owing them.
        let mut owed = day_counts::Owed::default();
        let owing = std::sync::atomic::AtomicBool::new(false);
        let statistics = crate::store::bulk::FilingStatistics::new(conn);
        let file = |conn: &mut DbConn, chunk: &[Candidate], judged: &mut Judged, counts: &mut Counts| {
            use std::sync::atomic::Ordering::Relaxed;
            let filed = counts.filed;
            let moved = backend::write_tx(conn, |conn| {
                self.keep_lease(conn, &run.holder)?;
                let moved = self.file_chunk(conn, chunk, judged, &filing, counts)?;
                // A chunk that moves no count owes none: a scan whose chunks
                // all judged as before (an idle one) neither marks its run
                // nor adds counts when it ends.
                if !moved.is_empty() && !owing.load(Relaxed) {
                    day_counts::owe(conn, run.id)?;
                }
                anyhow::Ok(moved)
            })?;
            if !moved.is_empty() {
                owing.store(true, Relaxed);
            }
            statistics.after_chunk(conn, counts.filed > filed);
            judged.judged_days = moved;
            Ok(())
        };
        // On the thread that drops the filed chunks (a twentieth of the
        // writing thread's time: tens of thousands of keys a chunk).
        let owe_moved = |judged: Judged| owed.merge(judged.judged_days);
        let spares = self.spares(conn, run.full);
        let walked = chunks::pipelined(conn, spares, walk, judge, (file, owe_moved), counts);
        if owing.into_inner() {
            if let Err(e) = day_counts::settle(conn, run.id, owed) {
                // The walk's own error says why the scan stopped; the run
                // stays marked and the next scan counts the days again.
                if walked.is_ok() {
                    return Err(e.into());
                }
                tracing::warn!("dagräkningarna kunde inte föras in efter felet ({e}): nästa granskning räknar om dem");
            }
        }
        walked?;
        if active.contains(&RuleId::BemanningStorhelg) {
            self.judge_staffing(conn, run, since, &units, &filing, counts)?;
        }
        self.queue_after_scan(conn, &units, run, counts)
    }

    /// Deviations due before this are filed without mail; with
    /// `mail.max_age_days` 0 there is no age limit, everything is mailed.
    fn mail_cutoff(&self, run: &Run) -> DateTime<Utc> {
        if self.mail.max_age_days == 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            run.reference - Duration::days(self.mail.max_age_days)
        }
    }

    /// A full scan reads its chunks on a second connection and, on
    /// PostgreSQL, files every other one on a third (`chunks`; SQLite has
    /// one writer), when the pool has them idle; an incremental one reads
    /// and files on its own.
    fn spares(
        &self,
        conn: &DbConn,
        full: bool,
    ) -> (Option<crate::store::PooledConn>, Option<crate::store::PooledConn>) {
        let reader = if full { self.spare_connection() } else { None };
        // Only with another left idle for the pages, the API and the mail.
        let beside = match (full, conn) {
            (true, DbConn::Pg(_)) if self.pool.state().idle_connections >= 2 => self.spare_connection(),
            _ => None,
        };
        (reader, beside)
    }

    /// A connection of the pool that is idle now (r2d2 keeps the pool's
    /// size open), never a wait for one: none when every one is in use.
    fn spare_connection(&self) -> Option<crate::store::PooledConn> {
        self.pool.try_get()
    }

    /// Inside a chunk's transaction: the chunk commits only while this scan
    /// still holds its lock — the SQLite lease, or on PostgreSQL the advisory
    /// lock of its lock session (a scan that lost it stops).
    fn keep_lease(&self, conn: &mut DbConn, holder: &str) -> anyhow::Result<()> {
        let renewed = backend::renew_scan_lock(conn, holder, now() + Duration::minutes(LEASE_MINUTES))?;
        anyhow::ensure!(
            renewed,
            "granskningen tappade sitt lås (lånet gick ut och en annan granskning tog över, eller låsets databassession avslutades); den avbryts utan att registrera fler avvikelser"
        );
        Ok(())
    }

    /// Runs the rules on a chunk of cases: the findings past due + grace
    /// of the cases whose findings hash (`seed`'s) is not the one noted,
    /// and each case's next check where it changed. No database: it runs
    /// on the scan's worker threads (`chunks::pipelined`).
    fn judge_chunk(
        &self,
        chunk: &[Candidate],
        by_case: &BTreeMap<String, Vec<crate::domain::Event>>,
        rules: &[RuleId],
        units: &Units,
        (as_of, seed): (DateTime<Utc>, Option<u64>),
    ) -> Judged {
        let mut judged = Judged::default();
        for c in chunk {
            let events = by_case.get(&c.id).map(Vec::as_slice).unwrap_or_default();
            let outcome = case::evaluate_recorded(events, units, &self.profile, rules, as_of);
            judged.summaries.extend(summarise(c, &outcome, as_of, self.scan.grace));
            let (ready, next) = self.split_by_grace(outcome.findings, outcome.next_due, as_of);
            let next = earliest(next, upcoming(events, as_of));
            judged.cases += 1;
            judged.found += ready.len();
            let hash = seed.map(|s| summary::findings_hash(s, &ready));
            if hash.is_none() || hash != c.findings_hash {
                judged.findings.extend(ready);
                judged.to_file.push((c.id.clone(), hash));
            }
            let next = next.map(|t| t.naive_utc());
            if next != c.next_check {
                judged.next_checks.push((c.id.clone(), next));
            }
        }
        judged.judged_days = followup::judged_days(&judged.summaries);
        judged
    }

    /// Inside the chunk's write transaction: the follow-up's rows, the
    /// deviations, then what the scan notes of the cases. What the day
    /// counts move by, for the scan to add when it ends.
    fn file_chunk(
        &self,
        conn: &mut DbConn,
        chunk: &[Candidate],
        judged: &mut Judged,
        filing: &filing::Filing,
        counts: &mut Counts,
    ) -> anyhow::Result<followup::Delta> {
        // A backfill leaves the follow-up's rows as the latest instant
        // judged them.
        let mut moved = followup::Delta::new();
        if !filing.backfill {
            moved = followup::replace_cases(conn, &judged.summaries, std::mem::take(&mut judged.judged_days))?;
        }
        counts.cases_evaluated += judged.cases;
        counts.findings += judged.found;
        let ids: Vec<&str> = judged.to_file.iter().map(|(id, _)| id.as_str()).collect();
        let mut reopened = HashSet::new();
        if !ids.is_empty() {
            let existing = deviations::by_cases(conn, &ids, filing.run_of(chunk.len(), &ids))?;
            reopened = filing.apply_locked(conn, &judged.findings, existing, counts)?;
        }
        // The cases' rows after the deviations', in the order a person's
        // change of status takes them: no lock cycle on PostgreSQL.
        let noted = noted(chunk, judged, filing.backfill, &reopened);
        counts.cases_noted += noted.len();
        cases::note_judged(conn, &noted)?;
        Ok(moved)
    }

    /// Findings past due + grace are filed now; the rest, and dues still to
    /// come, decide when the case must be looked at again.
    fn split_by_grace(
        &self,
        findings: Vec<Finding>,
        next_due: Option<DateTime<Utc>>,
        as_of: DateTime<Utc>,
    ) -> (Vec<Finding>, Option<DateTime<Utc>>) {
        let grace = self.scan.grace;
        let mut next = next_due.map(|d| d + grace);
        let mut ready = Vec::new();
        for f in findings {
            let at = f.due_utc() + grace;
            if at <= as_of {
                ready.push(f);
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (ready, next)
    }
}

/// What the rules said about a chunk of cases.
#[derive(Default)]
struct Judged {
    /// Cases judged.
    cases: usize,
    /// Findings past due + grace, of every case judged.
    found: usize,
    /// The findings of the cases in `to_file`.
    findings: Vec<Finding>,
    /// The cases filing must look at, with the hash of their findings to
    /// note (`None` in a backfill): not those whose hash is the one noted.
    to_file: Vec<(String, Option<String>)>,
    next_checks: Vec<(String, Option<NaiveDateTime>)>,
    /// The cases whose obligations or facts changed since the last scan.
    summaries: Vec<followup::CaseSummary>,
    /// What their judged obligations add to the day counts; once the chunk
    /// is filed, what filing moved the counts by (the cases' rows before
    /// subtracted), for the scan to owe.
    judged_days: followup::Delta,
}

/// What filing a chunk notes of its cases (`cases::note_judged`). A
/// backfill notes nothing it judged — its next checks and summaries are as
/// of an earlier instant, and a later scan set them — and empties the
/// findings hash of the chunk's cases: what it files from that instant,
/// the next scan must file in full. Nor is a hash noted for a case with a
/// deviation reopened: its facts may still be updated by the next plan.
fn noted<'a>(
    chunk: &'a [Candidate],
    judged: &'a Judged,
    backfill: bool,
    reopened: &HashSet<String>,
) -> Vec<cases::Noted<'a>> {
    fn at<'m, 'a>(by_id: &'m mut BTreeMap<&'a str, cases::Noted<'a>>, id: &'a str) -> &'m mut cases::Noted<'a> {
        by_id.entry(id).or_insert_with(|| cases::Noted {
            id,
            ..Default::default()
        })
    }
    let mut by_id = BTreeMap::new();
    if backfill {
        for c in chunk.iter().filter(|c| c.findings_hash.is_some()) {
            at(&mut by_id, &c.id).findings_hash = Some(None);
        }
    } else {
        for (id, next) in &judged.next_checks {
            at(&mut by_id, id).next_check = Some(*next);
        }
        for s in &judged.summaries {
            at(&mut by_id, &s.case_id).summary_hash = Some(&s.hash);
        }
        for (id, hash) in &judged.to_file {
            let hash = hash.as_deref().filter(|_| !reopened.contains(id));
            at(&mut by_id, id).findings_hash = Some(hash);
        }
    }
    by_id.into_values().collect()
}

/// One scan's settings, decided when it starts.
struct Run {
    id: i64,
    as_of: DateTime<Utc>,
    full: bool,
    /// As of an earlier instant than an earlier scan: it may file what is
    /// new, but it never withdraws, updates or re-files what a scan
    /// established (SPEC §6: only evidence withdraws).
    backfill: bool,
    /// "Now" for the mail age limit: the latest instant any scan judged.
    reference: DateTime<Utc>,
    previous: Option<scans::PreviousRun>,
    /// A run before it left its day counts owed: counted again first.
    days_owed: bool,
    holder: String,
}

/// The first stored event of a case that has not happened by T (received
/// ahead of its time, or a scan judging as of an earlier instant): when it
/// happens it can change the judgement (a missing turns late), so the case
/// is looked at again then.
/// When a run before this one left its day counts owed (`scans::open`
/// saw its mark): counted again from every case's facts first.
fn recount_owed_days(conn: &mut DbConn, run: &Run) -> anyhow::Result<()> {
    if !run.days_owed {
        return Ok(());
    }
    let behind = day_counts::recount_owed(conn)?;
    if !behind.is_empty() {
        tracing::warn!(
            "dagräkningarna räknades om från ärendenas bedömda skyldigheter: granskning {behind:?} avbröts innan den förde in sina"
        );
    }
    Ok(())
}

fn upcoming(events: &[crate::domain::Event], as_of: DateTime<Utc>) -> Option<DateTime<Utc>> {
    events
        .iter()
        .map(|e| e.at.timestamp())
        .filter(|t| *t > as_of.timestamp())
        .min()
        .and_then(|t| DateTime::from_timestamp(t, 0))
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
