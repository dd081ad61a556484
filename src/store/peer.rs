//! The database side of `svu-vakt bench`'s plain-SQL peer
//! (`ops/bench/peer-*.sql`, the four core rules as a region's analysis unit
//! would write them): its helper tables, the peer's query per backend, and
//! the deviations the scan filed for the same rules, to compare. The
//! backend-specific parts (placeholders, the peer's SQL, `SET jit`) are here.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text, Timestamp};

use super::schema::{deviations, events};
use super::DbConn;

const PEER_SQLITE: &str = include_str!("../../ops/bench/peer-sqlite.sql");
const PEER_POSTGRES: &str = include_str!("../../ops/bench/peer-postgres.sql");

/// A bind placeholder in this backend's syntax.
fn param(conn: &DbConn, i: usize) -> String {
    if matches!(conn, DbConn::Pg(_)) {
        format!("${i}")
    } else {
        "?".to_string()
    }
}

/// (Re)creates the peer's helper tables with T and Stockholm's UTC offsets
/// (`[start, end)`, seconds); the staffing days follow in `add_staffing_days`.
pub fn prepare(
    conn: &mut DbConn,
    as_of: NaiveDateTime,
    offsets: &[(NaiveDateTime, NaiveDateTime, i32)],
) -> QueryResult<()> {
    let statements = [
        "DROP TABLE IF EXISTS peer_params",
        "DROP TABLE IF EXISTS peer_tz",
        "DROP TABLE IF EXISTS peer_staffing_days",
        "CREATE TABLE peer_params (as_of TIMESTAMP NOT NULL)",
        "CREATE TABLE peer_tz (start_utc TIMESTAMP NOT NULL, end_utc TIMESTAMP NOT NULL, offset_seconds INTEGER NOT NULL)",
        "CREATE TABLE peer_staffing_days (day TEXT NOT NULL)",
    ];
    for s in statements {
        diesel::sql_query(s).execute(conn)?;
    }
    diesel::sql_query(format!("INSERT INTO peer_params (as_of) VALUES ({})", param(conn, 1)))
        .bind::<Timestamp, _>(as_of)
        .execute(conn)?;
    let insert_tz = format!(
        "INSERT INTO peer_tz (start_utc, end_utc, offset_seconds) VALUES ({}, {}, {})",
        param(conn, 1),
        param(conn, 2),
        param(conn, 3)
    );
    for (start, end, offset) in offsets {
        diesel::sql_query(&insert_tz)
            .bind::<Timestamp, _>(*start)
            .bind::<Timestamp, _>(*end)
            .bind::<Integer, _>(*offset)
            .execute(conn)?;
    }
    Ok(())
}

/// The index on `events (at)` the peer's SQL reads staffing days through
/// (the service keeps a unit-day register instead): made before the peer
/// runs, dropped after, so the peer is measured at its best.
pub fn index_events_at(conn: &mut DbConn, on: bool) -> QueryResult<()> {
    let sql = if on {
        "CREATE INDEX IF NOT EXISTS peer_events_at ON events (at)"
    } else {
        "DROP INDEX IF EXISTS peer_events_at"
    };
    diesel::sql_query(sql).execute(conn).map(|_| ())
}

/// The earliest event at or before `until`.
pub fn earliest_event(conn: &mut DbConn, until: NaiveDateTime) -> QueryResult<Option<NaiveDateTime>> {
    events::table
        .filter(events::at.le(until))
        .select(diesel::dsl::min(events::at))
        .first(conn)
}

/// The staffing days the peer judges (`YYYY-MM-DD`).
pub fn add_staffing_days(conn: &mut DbConn, days: &[String]) -> QueryResult<()> {
    let insert_day = format!("INSERT INTO peer_staffing_days (day) VALUES ({})", param(conn, 1));
    for day in days {
        diesel::sql_query(&insert_day).bind::<Text, _>(day).execute(conn)?;
    }
    Ok(())
}

/// A breach: (rule, case, unit, due, status).
pub type Breach = (String, Option<String>, Option<String>, NaiveDateTime, String);

#[derive(QueryableByName)]
struct PeerRow {
    #[diesel(sql_type = Text)]
    rule: String,
    #[diesel(sql_type = Nullable<Text>)]
    case_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    unit: Option<String>,
    #[diesel(sql_type = Timestamp)]
    due: NaiveDateTime,
    #[diesel(sql_type = Text)]
    status: String,
}

/// The breaches the peer's SQL finds.
pub fn peer_breaches(conn: &mut DbConn) -> QueryResult<Vec<Breach>> {
    let sql = match conn {
        DbConn::Pg(_) => {
            // The peer's best case: PostgreSQL's JIT would spend seconds
            // compiling a plan this large for data this size.
            diesel::sql_query("SET jit = off").execute(conn)?;
            PEER_POSTGRES
        }
        DbConn::Sqlite(_) => PEER_SQLITE,
    };
    let rows: Vec<PeerRow> = diesel::sql_query(sql.trim().trim_end_matches(';')).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.rule, r.case_id, r.unit, r.due, r.status))
        .collect())
}

/// The deviations the scan filed for `rules`, as breaches.
pub fn filed_breaches(conn: &mut DbConn, rules: &[&str]) -> QueryResult<Vec<Breach>> {
    use crate::domain::handling::DeviationStatus;
    deviations::table
        .filter(deviations::rule.eq_any(rules))
        // What later data withdrew is no breach as of the last scan.
        .filter(deviations::status.ne_all([DeviationStatus::Aterkallad, DeviationStatus::Makulerad]))
        .select((
            deviations::rule,
            deviations::case_id,
            deviations::unit,
            deviations::due,
            deviations::finding_status,
        ))
        .load(conn)
}
