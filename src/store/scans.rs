//! The scan's log `scan_runs` and what a scan reads besides its candidate
//! cases (`store::candidates`): runs begun, finished and left behind by a
//! killed process, the latest good run and the high-water mark, the cases'
//! next checks, the acts of a staffing day and the earliest event.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::scan_runs;
use super::{now, DbConn};
use crate::domain::state::words;

/// Where a scan run is (`scan_runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum ScanStatus {
    /// Begun and not ended: running, or left by a killed process until the
    /// next scan takes the lock.
    Pagar,
    Klar,
    Fel,
    /// Found running by the next scan: the process was killed.
    Avbruten,
}

impl ScanStatus {
    pub const ALL: [ScanStatus; 4] = [
        ScanStatus::Pagar,
        ScanStatus::Klar,
        ScanStatus::Fel,
        ScanStatus::Avbruten,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::Pagar => "pagar",
            ScanStatus::Klar => "klar",
            ScanStatus::Fel => "fel",
            ScanStatus::Avbruten => "avbruten",
        }
    }

    /// In Swedish, for the pages.
    pub fn label(self) -> &'static str {
        match self {
            ScanStatus::Pagar => "pågår",
            ScanStatus::Klar => "klar",
            ScanStatus::Fel => "fel",
            ScanStatus::Avbruten => "avbruten",
        }
    }
}

words!(ScanStatus, "granskningsstatus");

/// One row of `scan_runs`, as the API and the scan-runs page show it.
#[derive(Debug, Clone, Queryable)]
pub struct RunRow {
    pub id: i64,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub as_of: NaiveDateTime,
    pub full_scan: bool,
    pub backfill: bool,
    pub cases_evaluated: i32,
    pub findings: i32,
    pub filed: i32,
    pub updated: i32,
    pub withdrawn: i32,
    pub errors: i32,
    pub error_text: Option<String>,
    pub status: ScanStatus,
    pub unmailed: i32,
    /// The run committed chunks and has not yet added the day counts they
    /// moved (`store::day_counts`): it is running, or it stopped.
    pub days_owed: bool,
}

/// The latest `limit` scan runs, newest first.
pub fn recent_runs(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<RunRow>> {
    scan_runs::table.order(scan_runs::id.desc()).limit(limit).load(conn)
}

/// What a finished run counted.
pub struct Tally {
    pub cases_evaluated: i32,
    pub findings: i32,
    pub filed: i32,
    pub updated: i32,
    pub withdrawn: i32,
    pub unmailed: i32,
}

/// The last run that finished (not a backfill): where an incremental scan
/// starts from.
#[derive(Debug, Clone)]
pub struct PreviousRun {
    pub started_at: NaiveDateTime,
    pub as_of: NaiveDateTime,
}

/// What a run left behind by a killed process says on the scan-runs page.
const INTERRUPTED: &str =
    "granskningen avbröts innan den blev klar (processen stoppades eller förbindelsen med databasen bröts)";

/// Holding the scan lock, any run still marked running was killed.
fn mark_interrupted(conn: &mut DbConn) -> QueryResult<usize> {
    diesel::update(scan_runs::table.filter(scan_runs::status.eq(ScanStatus::Pagar)))
        .set((
            scan_runs::status.eq(ScanStatus::Avbruten),
            scan_runs::error_text.eq(INTERRUPTED),
        ))
        .execute(conn)
}

/// A run begun ([`open`]) and what the log said when it began.
#[derive(Debug, Clone)]
pub struct Opened {
    pub id: i64,
    /// Where an incremental scan starts from ([`last_good_run`]).
    pub previous: Option<PreviousRun>,
    /// The latest instant a run judged as of ([`high_water`]).
    pub high_water: Option<DateTime<Utc>>,
    /// Asked for, or no good run before it.
    pub full: bool,
    /// Judged as of an instant before the high-water mark.
    pub backfill: bool,
    /// Some run left its day counts owed (`store::day_counts`).
    pub days_owed: bool,
}

/// Holding the scan lock: marks the runs a killed process left running
/// ([`mark_interrupted`]), reads the last good run and the high-water mark
/// and begins a run ([`begin`]), full when asked for or when no run was
/// good. On PostgreSQL in one statement (five were five round trips of an
/// idle scan's few dozen); on SQLite in one transaction.
pub fn open(conn: &mut DbConn, as_of: NaiveDateTime, full: bool) -> QueryResult<Opened> {
    match conn {
        DbConn::Pg(c) => open_pg(c, as_of, full),
        DbConn::Sqlite(_) => super::backend::write_tx(conn, |conn| {
            mark_interrupted(conn)?;
            let previous = last_good_run(conn)?;
            let high_water = high_water(conn)?;
            let full = full || previous.is_none();
            let backfill = high_water.is_some_and(|h| as_of < h.naive_utc());
            let id = begin(conn, as_of, full, backfill)?;
            let days_owed =
                diesel::select(diesel::dsl::exists(scan_runs::table.filter(scan_runs::days_owed))).get_result(conn)?;
            Ok(Opened {
                id,
                previous,
                high_water,
                full,
                backfill,
                days_owed,
            })
        }),
    }
}

/// [`open`] on PostgreSQL. The statement's parts see the log as it was
/// before it: the high-water mark is the latest `as_of` of every run
/// (those marked interrupted by it included, as [`high_water`] reads them
/// after [`mark_interrupted`]). A run left running may still be
/// committing a chunk that marks it owing (a scan that lost its lock):
/// the marking waits for that commit and returns the row as committed,
/// which the snapshot's read of the marks does not see, so its mark is
/// taken from the marked rows too.
const OPEN_PG: &str = "WITH gone AS (\
       UPDATE scan_runs SET status = 'avbruten', error_text = $1 WHERE status = 'pagar' \
       RETURNING id, days_owed), \
     prev AS (SELECT started_at, as_of FROM scan_runs WHERE status = 'klar' AND NOT backfill \
       ORDER BY id DESC LIMIT 1), \
     hw AS (SELECT max(as_of) AS at FROM scan_runs), \
     run AS (INSERT INTO scan_runs (started_at, as_of, full_scan, backfill, status) \
       SELECT $2, $3, $4 OR NOT EXISTS (SELECT 1 FROM prev), coalesce($3 < hw.at, false), 'pagar' FROM hw \
       RETURNING id, full_scan, backfill) \
     SELECT run.id, run.full_scan, run.backfill, prev.started_at AS prev_started_at, prev.as_of AS prev_as_of, \
       hw.at AS high_water, \
       EXISTS (SELECT 1 FROM scan_runs WHERE days_owed) OR EXISTS (SELECT 1 FROM gone WHERE days_owed) AS days_owed \
     FROM run CROSS JOIN hw LEFT JOIN prev ON true";

#[derive(diesel::QueryableByName)]
struct OpenRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    full_scan: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    backfill: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    prev_started_at: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    prev_as_of: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    high_water: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    days_owed: bool,
}

fn open_pg(c: &mut diesel::PgConnection, as_of: NaiveDateTime, full: bool) -> QueryResult<Opened> {
    use diesel::sql_types::{Bool, Text, Timestamp};
    let row: OpenRow = diesel::sql_query(OPEN_PG)
        .bind::<Text, _>(INTERRUPTED)
        .bind::<Timestamp, _>(now())
        .bind::<Timestamp, _>(as_of)
        .bind::<Bool, _>(full)
        .get_result(c)?;
    let previous = match (row.prev_started_at, row.prev_as_of) {
        (Some(started_at), Some(as_of)) => Some(PreviousRun { started_at, as_of }),
        _ => None,
    };
    Ok(Opened {
        id: row.id,
        previous,
        high_water: row.high_water.map(|t| t.and_utc()),
        full: row.full_scan,
        backfill: row.backfill,
        days_owed: row.days_owed,
    })
}

/// Records a run begun now (`pagar`); its id.
fn begin(conn: &mut DbConn, as_of: NaiveDateTime, full: bool, backfill: bool) -> QueryResult<i64> {
    diesel::insert_into(scan_runs::table)
        .values((
            scan_runs::started_at.eq(now()),
            scan_runs::as_of.eq(as_of),
            scan_runs::full_scan.eq(full),
            scan_runs::backfill.eq(backfill),
            scan_runs::status.eq(ScanStatus::Pagar),
        ))
        .returning(scan_runs::id)
        .get_result(conn)
}

/// Records how a run ended (`klar`, or `fel` with the error).
pub fn finish(conn: &mut DbConn, id: i64, t: &Tally, status: ScanStatus, error: Option<&str>) -> QueryResult<usize> {
    diesel::update(scan_runs::table.find(id))
        .set((
            scan_runs::finished_at.eq(now()),
            scan_runs::cases_evaluated.eq(t.cases_evaluated),
            scan_runs::findings.eq(t.findings),
            scan_runs::filed.eq(t.filed),
            scan_runs::updated.eq(t.updated),
            scan_runs::withdrawn.eq(t.withdrawn),
            scan_runs::unmailed.eq(t.unmailed),
            scan_runs::errors.eq(i32::from(error.is_some())),
            scan_runs::error_text.eq(error),
            scan_runs::status.eq(status),
        ))
        .execute(conn)
}

/// A backfill judged as of an earlier instant: what it did not look at
/// again (it leaves `next_check` alone) the next scan must still see.
fn last_good_run(conn: &mut DbConn) -> QueryResult<Option<PreviousRun>> {
    let row: Option<(NaiveDateTime, NaiveDateTime)> = scan_runs::table
        .filter(scan_runs::status.eq(ScanStatus::Klar))
        .filter(scan_runs::backfill.eq(false))
        .order(scan_runs::id.desc())
        .select((scan_runs::started_at, scan_runs::as_of))
        .first(conn)
        .optional()?;
    Ok(row.map(|(started_at, as_of)| PreviousRun { started_at, as_of }))
}

/// The latest instant a scan (finished or failed midway) judged as of.
fn high_water(conn: &mut DbConn) -> QueryResult<Option<DateTime<Utc>>> {
    let t: Option<NaiveDateTime> = scan_runs::table
        .filter(scan_runs::status.ne(ScanStatus::Pagar))
        .select(diesel::dsl::max(scan_runs::as_of))
        .first(conn)?;
    Ok(t.map(|t| t.and_utc()))
}
