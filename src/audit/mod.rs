//! The scan: load the cases that changed or fell due, run the rules (the very
//! functions `check` runs), and file, update or withdraw deviations. One
//! scan at a time: a PostgreSQL advisory lock, or a lease row on SQLite.
//! Each chunk of cases is one transaction, so a scan killed midway leaves
//! whole chunks and the next scan finishes the job; fingerprints are unique,
//! so nothing is ever filed twice. Every run is recorded in `scan_runs`.

pub mod filing;
pub mod report;
pub mod schedule;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use sha2::Digest as _;

use crate::calendar::{local_date, local_instant, Calendar};
use crate::config::ScanConfig;
use crate::mail::routing::Recipients;
use crate::mail::templates::Templates;
use crate::mail::{MailConfig, MailMode};
use crate::rules::{case, Finding, Profile, RuleId, Status, Units};
use crate::store::events::{EventRow, EVENT_COLUMNS};
use crate::store::schema::{cases, events, scan_runs};
use crate::store::{backend, deviations, now, DbConn, Pool};

/// Cases per transaction.
const CHUNK: i64 = 500;
/// How long a scan holds the SQLite lease before it must renew it.
const LEASE_MINUTES: i64 = 30;
/// Events that arrive while a scan reads are caught by the next one.
const ARRIVAL_MARGIN_MINUTES: i64 = 10;

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
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanSummary {
    pub id: i64,
    pub as_of: String,
    pub full: bool,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("another scan is running")]
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
            tracing::error!(error = %e, "could not release the scan lock");
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
        Ok(Auditor {
            pool,
            profile: config.profile()?,
            scan: config.scan.clone(),
            mail: config.mail.clone(),
            templates: Arc::new(Templates::load(config.mail.templates_dir.as_deref())?),
        })
    }

    /// One scan as of `as_of` (default now). `full` re-evaluates every case.
    #[tracing::instrument(skip(self), fields(full))]
    pub fn run_scan(&self, as_of: Option<DateTime<Utc>>, full: bool) -> Result<ScanSummary, ScanError> {
        let holder = format!("{}:{}:{}", backend::this_host(), std::process::id(), nonce());
        let mut lock_conn = self.pool.get().map_err(|e| anyhow::anyhow!(e))?;
        let lease = now() + Duration::minutes(LEASE_MINUTES);
        if !backend::try_scan_lock(&mut lock_conn, &holder, lease).map_err(|e| anyhow::anyhow!(e))? {
            return Err(ScanError::Busy);
        }
        let _guard = LockGuard {
            conn: lock_conn,
            holder: holder.clone(),
        };
        let mut conn = self.pool.get().map_err(|e| anyhow::anyhow!(e))?;
        let as_of = as_of.unwrap_or_else(Utc::now);
        let as_of = DateTime::from_timestamp(as_of.timestamp(), 0).unwrap_or(as_of);
        let previous = last_good_run(&mut conn).map_err(|e| anyhow::anyhow!(e))?;
        let full = full || previous.is_none();
        let run_id: i64 = diesel::insert_into(scan_runs::table)
            .values((
                scan_runs::started_at.eq(now()),
                scan_runs::as_of.eq(as_of.naive_utc()),
                scan_runs::full_scan.eq(full),
                scan_runs::status.eq("pagar"),
            ))
            .returning(scan_runs::id)
            .get_result(&mut conn)
            .map_err(|e| anyhow::anyhow!(e))?;
        let mut counts = Counts::default();
        let result = self.scan_body(&mut conn, run_id, as_of, full, previous, &holder, &mut counts);
        let (status, error) = match &result {
            Ok(()) => ("klar", None),
            Err(e) => ("fel", Some(format!("{e:#}"))),
        };
        diesel::update(scan_runs::table.find(run_id))
            .set((
                scan_runs::finished_at.eq(now()),
                scan_runs::cases_evaluated.eq(counts.cases_evaluated as i32),
                scan_runs::findings.eq(counts.findings as i32),
                scan_runs::filed.eq(counts.filed as i32),
                scan_runs::updated.eq(counts.updated as i32),
                scan_runs::withdrawn.eq(counts.withdrawn as i32),
                scan_runs::errors.eq(i32::from(error.is_some())),
                scan_runs::error_text.eq(error.as_deref()),
                scan_runs::status.eq(status),
            ))
            .execute(&mut conn)
            .map_err(|e| anyhow::anyhow!(e))?;
        result?;
        tracing::info!(
            run = run_id,
            cases = counts.cases_evaluated,
            filed = counts.filed,
            updated = counts.updated,
            withdrawn = counts.withdrawn,
            "scan done"
        );
        Ok(ScanSummary {
            id: run_id,
            as_of: crate::calendar::in_stockholm(as_of).to_rfc3339(),
            full,
            counts,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_body(
        &self,
        conn: &mut DbConn,
        run_id: i64,
        as_of: DateTime<Utc>,
        full: bool,
        previous: Option<PreviousRun>,
        holder: &str,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let units = Units::new(crate::store::units::all(conn)?);
        let active: HashSet<RuleId> = self.profile.enabled.iter().copied().collect();
        let case_rules: Vec<RuleId> = self
            .profile
            .enabled
            .iter()
            .copied()
            .filter(|r| *r != RuleId::BemanningStorhelg)
            .collect();
        let filing = filing::Filing {
            auditor: self,
            units: &units,
            scan_id: run_id,
            as_of,
            active: &active,
        };
        let since = if full {
            None
        } else {
            previous
                .as_ref()
                .map(|p| p.started_at - Duration::minutes(ARRIVAL_MARGIN_MINUTES))
        };
        let mut after = String::new();
        let mut chunk_no = 0;
        loop {
            let chunk = candidates(conn, &after, since, as_of.naive_utc())?;
            let Some((last, _)) = chunk.last() else { break };
            after = last.clone();
            conn.transaction(|conn| self.scan_chunk(conn, &chunk, &case_rules, &filing, as_of, counts))?;
            backend::renew_scan_lock(conn, holder, now() + Duration::minutes(LEASE_MINUTES))?;
            chunk_no += 1;
            fault_injection(chunk_no);
        }
        if active.contains(&RuleId::BemanningStorhelg) {
            // Staffing is judged from the first day the data covers (as `check` does).
            let earliest = earliest_event_date(conn)?.unwrap_or_else(|| local_date(as_of));
            // Incrementally: the lookback window, widened back to the oldest
            // event that arrived since the last scan (a backfill of old data).
            let from = match (&previous, since) {
                (Some(p), Some(since)) => {
                    let window = local_date(p.as_of.and_utc()) - Duration::days(self.scan.staffing_lookback_days);
                    let arrived = earliest_arrival_date(conn, since)?.unwrap_or(window);
                    earliest.max(window.min(arrived))
                }
                _ => earliest,
            };
            conn.transaction(|conn| self.scan_staffing(conn, &units, &filing, from, as_of, counts))?;
        }
        if self.mail.mode == MailMode::Sammanstallning {
            conn.transaction(|conn| self.queue_digests(conn, &units, run_id, as_of))?;
        }
        Ok(())
    }

    fn scan_chunk(
        &self,
        conn: &mut DbConn,
        chunk: &[(String, Option<NaiveDateTime>)],
        rules: &[RuleId],
        filing: &filing::Filing,
        as_of: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        let rows: Vec<EventRow> = events::table
            .filter(events::case_id.eq_any(&ids))
            .order((events::case_id, events::at, events::id))
            .select(EVENT_COLUMNS)
            .load(conn)?;
        let mut by_case: BTreeMap<String, Vec<crate::domain::Event>> = BTreeMap::new();
        for row in rows {
            let e = row.into_event()?;
            if let Some(c) = e.case.clone() {
                by_case.entry(c.0).or_default().push(e);
            }
        }
        let mut due_findings = Vec::new();
        for (id, old_next) in chunk {
            let events = by_case.get(id).map(Vec::as_slice).unwrap_or_default();
            let (findings, next_due) = case::evaluate(events, filing.units, &self.profile, rules, as_of);
            let (ready, next) = self.split_by_grace(findings, next_due, as_of);
            counts.cases_evaluated += 1;
            counts.findings += ready.len();
            due_findings.extend(ready);
            let next = next.map(|t| t.naive_utc());
            if next != *old_next {
                diesel::update(cases::table.find(id))
                    .set(cases::next_check.eq(next))
                    .execute(conn)?;
            }
        }
        let existing = deviations::by_cases(conn, &ids)?;
        filing.apply(conn, &due_findings, existing, counts)
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

    fn scan_staffing(
        &self,
        conn: &mut DbConn,
        units: &Units,
        filing: &filing::Filing,
        from: chrono::NaiveDate,
        as_of: DateTime<Utc>,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        let days = Calendar::new().staffing_days(from, local_date(as_of), &self.profile.staffing_tables);
        let until = NaiveTime::from_hms_opt(15, 0, 0).unwrap_or_default();
        let mut findings = Vec::new();
        let mut window: Option<(NaiveDateTime, NaiveDateTime)> = None;
        for day in days {
            let due = local_instant(day.date, until);
            if due + self.scan.grace > as_of {
                continue;
            }
            let staffed = staffed_units(conn, day.date, as_of)?;
            for u in units.storhelg_units() {
                if !staffed.contains(u.id.as_str()) {
                    findings.push(crate::rules::finding(
                        RuleId::BemanningStorhelg,
                        None,
                        Some(&u.id),
                        due,
                        (Status::Missing, None, None),
                    ));
                }
            }
            let d = due.naive_utc();
            window = Some(window.map_or((d, d), |(a, b)| (a.min(d), b.max(d))));
        }
        let Some((lo, hi)) = window else { return Ok(()) };
        counts.findings += findings.len();
        let existing = deviations::by_rule_due(conn, RuleId::BemanningStorhelg.as_str(), lo, hi)?;
        filing.apply(conn, &findings, existing, counts)
    }

    /// Sammanställning: one mail per recipient for every deviation not yet in a mail.
    fn queue_digests(&self, conn: &mut DbConn, units: &Units, run_id: i64, as_of: DateTime<Utc>) -> anyhow::Result<()> {
        let mut groups: BTreeMap<String, Vec<deviations::DeviationRow>> = BTreeMap::new();
        for d in deviations::unqueued(conn)? {
            groups.entry(d.recipients.clone()).or_default().push(d);
        }
        for (recipients_json, list) in groups {
            let data: Vec<serde_json::Value> = list
                .iter()
                .map(|d| report::data(d, units, &self.mail, &self.templates, as_of))
                .collect::<anyhow::Result<_>>()?;
            let mail = self.templates.render(
                "sammanstallning",
                &serde_json::json!({"antal": list.len(), "avvikelser": data}),
            )?;
            let recipients = Recipients::from_json(&recipients_json);
            let key = hex::encode(sha2::Sha256::digest(recipients_json.as_bytes()));
            let mid = format!("<sammanstallning-{run_id}-{}@{}>", &key[..16], self.mail.domain());
            let ids: Vec<i64> = list.iter().map(|d| d.id).collect();
            filing::enqueue(conn, &mid, "sammanstallning", &ids, &recipients, &mail, None)?;
            deviations::mark_queued(conn, &ids)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct PreviousRun {
    started_at: NaiveDateTime,
    as_of: NaiveDateTime,
}

fn last_good_run(conn: &mut DbConn) -> QueryResult<Option<PreviousRun>> {
    let row: Option<(NaiveDateTime, NaiveDateTime)> = scan_runs::table
        .filter(scan_runs::status.eq("klar"))
        .order(scan_runs::id.desc())
        .select((scan_runs::started_at, scan_runs::as_of))
        .first(conn)
        .optional()?;
    Ok(row.map(|(started_at, as_of)| PreviousRun { started_at, as_of }))
}

/// The next chunk of cases to evaluate, after `after` in id order: all of
/// them, or those with new events or a due that has come.
fn candidates(
    conn: &mut DbConn,
    after: &str,
    since: Option<NaiveDateTime>,
    as_of: NaiveDateTime,
) -> QueryResult<Vec<(String, Option<NaiveDateTime>)>> {
    let mut q = cases::table
        .select((cases::id, cases::next_check))
        .filter(cases::id.gt(after))
        .order(cases::id)
        .limit(CHUNK)
        .into_boxed();
    if let Some(s) = since {
        q = q.filter(cases::changed_at.gt(s).or(cases::next_check.le(as_of)));
    }
    q.load(conn)
}

/// The local date of the earliest event that arrived after `since`.
fn earliest_arrival_date(conn: &mut DbConn, since: NaiveDateTime) -> QueryResult<Option<chrono::NaiveDate>> {
    let t: Option<NaiveDateTime> = events::table
        .filter(events::received_at.gt(since))
        .select(diesel::dsl::min(events::at))
        .first(conn)?;
    Ok(t.map(|t| local_date(t.and_utc())))
}

fn earliest_event_date(conn: &mut DbConn) -> QueryResult<Option<chrono::NaiveDate>> {
    let t: Option<NaiveDateTime> = events::table.select(diesel::dsl::min(events::at)).first(conn)?;
    Ok(t.map(|t| local_date(t.and_utc())))
}

/// Units staffed on `day`: a `bemanning` dated that day, or any act between
/// 08:00:00 and 15:00:00 local time (SPEC §4.4), that had happened by T.
fn staffed_units(conn: &mut DbConn, day: chrono::NaiveDate, as_of: DateTime<Utc>) -> QueryResult<HashSet<String>> {
    let start = local_instant(day, NaiveTime::MIN).naive_utc();
    let end = local_instant(day + Duration::days(1), NaiveTime::MIN).naive_utc();
    let from = local_instant(day, NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default()).naive_utc();
    let until = local_instant(day, NaiveTime::from_hms_opt(15, 0, 0).unwrap_or_default()).naive_utc();
    let t = as_of.naive_utc();
    let rows: Vec<(String, String, NaiveDateTime)> = events::table
        .filter(events::at.ge(start))
        .filter(events::at.lt(end))
        .filter(events::at.le(t))
        .select((events::unit, events::event_type, events::at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, kind, at)| kind == "bemanning" || (*at >= from && *at <= until))
        .map(|(u, _, _)| u)
        .collect())
}

/// For the crash tests: `SVU_VAKT_FAULT_ABORT_AFTER_CHUNKS=N` kills the
/// process right after the N-th chunk is committed, as a power cut would.
fn fault_injection(chunk_no: usize) {
    if let Ok(n) = std::env::var("SVU_VAKT_FAULT_ABORT_AFTER_CHUNKS") {
        if n.parse() == Ok(chunk_no) {
            eprintln!("fault injection: aborting after chunk {chunk_no}");
            std::process::abort();
        }
    }
}
