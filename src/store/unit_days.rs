//! The unit-day register (`unit_days`): per unit and local day, its first
//! act and its first act of each kind that shows storhelg staffing
//! (`rules::bemanning::UnitDay`). Ingest keeps it in the batch's
//! transaction; removing a batch rebuilds the days it touched; the
//! migration that made it fills it from the stored events. The scan's
//! staffing judgement, the förvarning and the list of unknown units read it
//! instead of the events. Each entry says when it last changed (the
//! `received_at` of the batch that changed it): an incremental scan judges
//! again the older staffing days whose entries changed since the last scan
//! (`changed_since`), never the events that arrived.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamp};

use super::schema::{events, unit_days};
use super::stamp::Stamp;
use super::DbConn;
use crate::calendar::local_instant;
use crate::domain::EventType;
use crate::rules::bemanning::UnitDay;

/// Events read per page when the register is rebuilt from them.
const PAGE: i64 = 50_000;

/// An entry as read (its columns but `changed_at`, which only
/// `changed_since` reads).
#[derive(Queryable, Selectable)]
#[diesel(table_name = unit_days)]
struct Row {
    unit: String,
    day: String,
    first_at: NaiveDateTime,
    bemanning_at: Option<NaiveDateTime>,
    morning_at: Option<NaiveDateTime>,
    afternoon_at: Option<NaiveDateTime>,
}

impl Row {
    fn of(d: &UnitDay) -> Row {
        Row {
            unit: d.unit.clone(),
            day: d.day.format("%Y-%m-%d").to_string(),
            first_at: d.first.naive_utc(),
            bemanning_at: d.bemanning.map(|t| t.naive_utc()),
            morning_at: d.morning.map(|t| t.naive_utc()),
            afternoon_at: d.afternoon.map(|t| t.naive_utc()),
        }
    }

    fn into_day(self) -> Option<UnitDay> {
        Some(UnitDay {
            unit: self.unit,
            day: NaiveDate::parse_from_str(&self.day, "%Y-%m-%d").ok()?,
            first: self.first_at.and_utc(),
            bemanning: self.bemanning_at.map(|t| t.and_utc()),
            morning: self.morning_at.map(|t| t.and_utc()),
            afternoon: self.afternoon_at.map(|t| t.and_utc()),
        })
    }
}

/// Entries per statement: 7 parameters each, within both databases' limits.
const CHUNK: usize = 1000;

/// Each instant of an entry that is there already becomes the earlier of
/// the stored and the new; an entry that brings nothing earlier writes
/// nothing (on PostgreSQL an update that changes nothing still writes a
/// new row version: most entries of a batch are such), its `changed_at`
/// included: an entry's `changed_at` moves only when its instants do, and
/// never back (a batch whose transaction began before another's and
/// commits after it keeps the later time the other wrote).
const MERGE: &str = " ON CONFLICT (unit, day) DO UPDATE SET \
     changed_at = CASE WHEN unit_days.changed_at IS NULL OR excluded.changed_at > unit_days.changed_at \
       THEN excluded.changed_at ELSE unit_days.changed_at END, \
     first_at = CASE WHEN excluded.first_at < unit_days.first_at THEN excluded.first_at ELSE unit_days.first_at END, \
     bemanning_at = CASE WHEN unit_days.bemanning_at IS NULL OR excluded.bemanning_at < unit_days.bemanning_at \
       THEN excluded.bemanning_at ELSE unit_days.bemanning_at END, \
     morning_at = CASE WHEN unit_days.morning_at IS NULL OR excluded.morning_at < unit_days.morning_at \
       THEN excluded.morning_at ELSE unit_days.morning_at END, \
     afternoon_at = CASE WHEN unit_days.afternoon_at IS NULL OR excluded.afternoon_at < unit_days.afternoon_at \
       THEN excluded.afternoon_at ELSE unit_days.afternoon_at END \
     WHERE excluded.first_at < unit_days.first_at \
       OR (excluded.bemanning_at IS NOT NULL AND (unit_days.bemanning_at IS NULL OR excluded.bemanning_at < unit_days.bemanning_at)) \
       OR (excluded.morning_at IS NOT NULL AND (unit_days.morning_at IS NULL OR excluded.morning_at < unit_days.morning_at)) \
       OR (excluded.afternoon_at IS NOT NULL AND (unit_days.afternoon_at IS NULL OR excluded.afternoon_at < unit_days.afternoon_at))";

/// `INSERT … VALUES` of `n` entries with `MERGE`; `$1`… on PostgreSQL.
fn record_sql(n: usize, numbered: bool) -> String {
    let mut q = String::from(
        "INSERT INTO unit_days (unit, day, first_at, bemanning_at, morning_at, afternoon_at, changed_at) VALUES ",
    );
    for i in 0..n {
        q.push_str(if i == 0 { "(" } else { ", (" });
        for j in 0..7 {
            if j > 0 {
                q.push_str(", ");
            }
            if numbered {
                q.push_str(&format!("${}", i * 7 + j + 1));
            } else {
                q.push('?');
            }
        }
        q.push(')');
    }
    q.push_str(MERGE);
    q
}

/// One multi-row statement on either backend (the binds are typed per backend).
macro_rules! record_rows {
    ($c:expr, $db:ty, $numbered:expr, $rows:expr, $changed_at:expr) => {{
        let mut q = diesel::sql_query(record_sql($rows.len(), $numbered)).into_boxed::<$db>();
        for r in $rows {
            q = q
                .bind::<Text, _>(&r.unit)
                .bind::<Text, _>(&r.day)
                .bind::<Timestamp, _>(Stamp(r.first_at))
                .bind::<Nullable<Timestamp>, _>(r.bemanning_at.map(Stamp))
                .bind::<Nullable<Timestamp>, _>(r.morning_at.map(Stamp))
                .bind::<Nullable<Timestamp>, _>(r.afternoon_at.map(Stamp))
                .bind::<Timestamp, _>(Stamp($changed_at));
        }
        q.execute($c)
    }};
}

/// What one import has added to the register so far: for each (unit, day)
/// the earliest instants it recorded, which the stored entry's are at or
/// before (the register only ever takes the earlier, and a batch removed
/// meanwhile is rebuilt from the events left, this import's among them).
/// An entry of a later batch that brings nothing earlier than these would
/// change nothing stored and is not sent: most of a file's entries, since
/// its batches fall on the same days. A transaction that recorded into it
/// and rolled back must [`Recorded::forget`] it.
#[derive(Debug, Default)]
pub struct Recorded(HashMap<String, HashMap<NaiveDate, UnitDay>>);

impl Recorded {
    /// Forgets everything: the next batch sends all its entries.
    pub fn forget(&mut self) {
        self.0.clear();
    }

    /// The entries of `days` that bring something earlier than recorded,
    /// taken in. Keyed by unit, then day: a lookup copies nothing.
    fn news<'a>(&mut self, days: &'a [UnitDay]) -> Vec<&'a UnitDay> {
        let earlier = |new: Option<chrono::DateTime<chrono::Utc>>, known: Option<chrono::DateTime<chrono::Utc>>| {
            new.is_some_and(|n| known.is_none_or(|k| n < k))
        };
        let mut out = Vec::new();
        for d in days {
            let unit = match self.0.get_mut(d.unit.as_str()) {
                Some(unit) => unit,
                None => self.0.entry(d.unit.clone()).or_default(),
            };
            match unit.get_mut(&d.day) {
                Some(k)
                    if !(d.first < k.first
                        || earlier(d.bemanning, k.bemanning)
                        || earlier(d.morning, k.morning)
                        || earlier(d.afternoon, k.afternoon)) => {}
                Some(k) => {
                    k.merge(d);
                    out.push(d);
                }
                None => {
                    unit.insert(d.day, d.clone());
                    out.push(d);
                }
            }
        }
        out
    }
}

/// Adds acts to the register (in the caller's transaction): each day's
/// instants become the earlier of the stored and the new, and an entry so
/// changed is marked changed at `changed_at` (the batch's `received_at`).
/// `days` holds each (unit, day) once, as `UnitDay::of_acts` gives them;
/// those that bring nothing earlier than `recorded` are left out.
pub fn record(
    conn: &mut DbConn,
    days: &[UnitDay],
    recorded: &mut Recorded,
    changed_at: NaiveDateTime,
) -> QueryResult<()> {
    let rows: Vec<Row> = recorded.news(days).into_iter().map(Row::of).collect();
    for chunk in rows.chunks(CHUNK) {
        match conn {
            DbConn::Sqlite(c) => record_rows!(c, diesel::sqlite::Sqlite, false, chunk, changed_at)?,
            DbConn::Pg(c) => record_rows!(c, diesel::pg::Pg, true, chunk, changed_at)?,
        };
    }
    Ok(())
}

/// Rebuilds the register's entries of the local days `from..=to` (every
/// day when `None`) from the stored events: after a batch is removed, and
/// once when the register is made. The events are read a page at a time by
/// id, so memory holds the register's days, not the events.
pub fn rebuild(conn: &mut DbConn, days: Option<(NaiveDate, NaiveDate)>) -> QueryResult<usize> {
    super::backend::write_tx(conn, |conn| rebuild_in(conn, days))
}

fn rebuild_in(conn: &mut DbConn, days: Option<(NaiveDate, NaiveDate)>) -> QueryResult<usize> {
    // Every day: from year 1 to 9999, which both databases hold.
    let (from, to) = days.unwrap_or((
        NaiveDate::from_ymd_opt(1, 1, 2).unwrap_or_default(),
        NaiveDate::from_ymd_opt(9999, 12, 30).unwrap_or_default(),
    ));
    let (lo, hi) = (
        local_instant(from, chrono::NaiveTime::MIN).naive_utc(),
        local_instant(to + chrono::Duration::days(1), chrono::NaiveTime::MIN).naive_utc(),
    );
    // Folded page by page: memory holds (unit, day) entries, not events.
    let mut folded: HashMap<(String, NaiveDate), UnitDay> = HashMap::new();
    let mut after = String::new();
    loop {
        let page: Vec<(String, String, String, NaiveDateTime)> = events::table
            .filter(events::id.gt(&after))
            .filter(events::at.ge(lo))
            .filter(events::at.lt(hi))
            .order(events::id)
            .select((events::id, events::unit, events::event_type, events::at))
            .limit(PAGE)
            .load(conn)?;
        let Some(last) = page.last().map(|r| r.0.clone()) else {
            break;
        };
        let acts = page
            .iter()
            .filter_map(|(_, unit, kind, at)| Some((unit.as_str(), EventType::parse(kind)?, at.and_utc())));
        for d in UnitDay::of_acts(acts) {
            match folded.get_mut(&(d.unit.clone(), d.day)) {
                Some(have) => have.merge(&d),
                None => {
                    folded.insert((d.unit.clone(), d.day), d);
                }
            }
        }
        after = last;
    }
    diesel::delete(unit_days::table)
        .filter(unit_days::day.ge(from.format("%Y-%m-%d").to_string()))
        .filter(unit_days::day.le(to.format("%Y-%m-%d").to_string()))
        .execute(conn)?;
    let mut days: Vec<UnitDay> = folded.into_values().collect();
    days.sort_by(|a, b| (&a.unit, a.day).cmp(&(&b.unit, b.day)));
    // Rebuilt entries count as changed now: a scan judges their days again.
    record(conn, &days, &mut Recorded::default(), crate::store::now())?;
    Ok(days.len())
}

/// The entries of the local days `from..=to`.
pub fn between(conn: &mut DbConn, from: NaiveDate, to: NaiveDate) -> QueryResult<Vec<UnitDay>> {
    let q = unit_days::table
        .filter(unit_days::day.ge(from.format("%Y-%m-%d").to_string()))
        .filter(unit_days::day.le(to.format("%Y-%m-%d").to_string()));
    let rows: Vec<Row> = match conn {
        DbConn::Sqlite(c) => q.select(Row::as_select()).load(c)?,
        DbConn::Pg(c) => q.select(Row::as_select()).load(c)?,
    };
    Ok(rows.into_iter().filter_map(Row::into_day).collect())
}

/// The entries of some units on one local day.
pub fn of_units(conn: &mut DbConn, day: NaiveDate, units: &[&str]) -> QueryResult<Vec<UnitDay>> {
    let q = unit_days::table
        .filter(unit_days::day.eq(day.format("%Y-%m-%d").to_string()))
        .filter(unit_days::unit.eq_any(units));
    let rows: Vec<Row> = match conn {
        DbConn::Sqlite(c) => q.select(Row::as_select()).load(c)?,
        DbConn::Pg(c) => q.select(Row::as_select()).load(c)?,
    };
    Ok(rows.into_iter().filter_map(Row::into_day).collect())
}

/// The (unit, day) of every entry changed after `since`, read through its
/// index: the staffing an incremental scan must judge again of the days
/// it judged before. `None` when more than `limit` changed (a reload of
/// history: the scan judges whole days then).
pub fn changed_since(
    conn: &mut DbConn,
    since: NaiveDateTime,
    limit: i64,
) -> QueryResult<Option<Vec<(String, NaiveDate)>>> {
    // The order keeps PostgreSQL on the index while the table has no
    // statistics yet (it guessed a third of a table for a range).
    let rows: Vec<(String, String)> = unit_days::table
        .filter(unit_days::changed_at.gt(since))
        .order(unit_days::changed_at)
        .select((unit_days::unit, unit_days::day))
        .limit(limit + 1)
        .load(conn)?;
    if rows.len() as i64 > limit {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .filter_map(|(unit, day)| Some((unit, NaiveDate::parse_from_str(&day, "%Y-%m-%d").ok()?)))
            .collect(),
    ))
}

/// The earliest act that had happened by `as_of`.
pub fn earliest(conn: &mut DbConn, as_of: NaiveDateTime) -> QueryResult<Option<NaiveDateTime>> {
    unit_days::table
        .filter(unit_days::first_at.le(as_of))
        .select(diesel::dsl::min(unit_days::first_at))
        .first(conn)
}

/// Every unit an event names as performer.
pub fn units(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    unit_days::table
        .select(unit_days::unit)
        .distinct()
        .order(unit_days::unit)
        .load(conn)
}
