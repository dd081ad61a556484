//! The storhelg staffing obligations (SPEC §4.4, §7): a unit's staffing
//! day is an obligation without a case (`case_id` empty) of the rule
//! `bemanning_storhelg`, due at 15:00 local. A scan judges the lookback
//! window's days whole every time and most of them as it did before, so
//! [`replace`] writes only what changed: an idle scan rewrote the same
//! rows each time (a delete and a `COPY` of some 80 rows at 100 000 cases,
//! and as many dead row versions on PostgreSQL).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::deviations::DeviationRow;
use super::followup::NewObligation;
use super::schema::{deviations, obligations};
use super::DbConn;
use crate::rules::RuleId;

/// Ids per statement (below either database's limit of variables).
const CHUNK: usize = 500;

/// The staffing obligations: no case, the staffing rule.
type Staffing = diesel::dsl::Filter<
    diesel::dsl::Filter<obligations::table, diesel::dsl::Eq<obligations::case_id, &'static str>>,
    diesel::dsl::Eq<obligations::rule, &'static str>,
>;

fn staffing() -> Staffing {
    obligations::table
        .filter(obligations::case_id.eq(""))
        .filter(obligations::rule.eq(RuleId::BemanningStorhelg.as_str()))
}

/// A staffing obligation's row, as a scan writes it.
type Key<'a> = (&'a str, Option<&'a str>, NaiveDateTime, &'a str, Option<NaiveDateTime>);

fn key(row: &NewObligation) -> Key<'_> {
    (&row.rule, row.unit.as_deref(), row.due, &row.outcome, row.done_at)
}

/// Makes the staffing obligations with dues in `[lo, hi]` those of `rows`:
/// a held row that `rows` has as it is stays, the other held rows go, and
/// the rows not held are inserted. On PostgreSQL the staffing lock and
/// the read when nothing changed, at most a delete and an insert more.
pub fn replace(conn: &mut DbConn, lo: NaiveDateTime, hi: NaiveDateTime, rows: &[NewObligation]) -> QueryResult<()> {
    type Held = (
        i64,
        String,
        Option<String>,
        NaiveDateTime,
        String,
        Option<NaiveDateTime>,
    );
    super::backend::lock_staffing(conn)?;
    let held: Vec<Held> = staffing()
        .filter(obligations::due.between(lo, hi))
        .select((
            obligations::id,
            obligations::rule,
            obligations::unit,
            obligations::due,
            obligations::outcome,
            obligations::done_at,
        ))
        .load(conn)?;
    let mut wanted: HashMap<Key<'_>, usize> = HashMap::new();
    for row in rows {
        *wanted.entry(key(row)).or_default() += 1;
    }
    let mut gone = Vec::new();
    for (id, rule, unit, due, outcome, done_at) in &held {
        match wanted.get_mut(&(rule.as_str(), unit.as_deref(), *due, outcome.as_str(), *done_at)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => gone.push(*id),
        }
    }
    for chunk in gone.chunks(CHUNK) {
        diesel::delete(obligations::table.filter(obligations::id.eq_any(chunk))).execute(conn)?;
    }
    let mut new = Vec::new();
    for row in rows {
        if let Some(n) = wanted.get_mut(&key(row)).filter(|n| **n > 0) {
            *n -= 1;
            new.push(row);
        }
    }
    super::followup::insert_obligations(conn, &new)
}

/// Of the staffing dues `dues`, those a scan has judged (it left their
/// obligations): one lookup in the `due` index.
pub fn judged(conn: &mut DbConn, dues: &[NaiveDateTime]) -> QueryResult<std::collections::HashSet<NaiveDateTime>> {
    let mut out = std::collections::HashSet::new();
    for chunk in dues.chunks(CHUNK) {
        let found: Vec<NaiveDateTime> = staffing()
            .filter(obligations::due.eq_any(chunk))
            .select(obligations::due)
            .distinct()
            .load(conn)?;
        out.extend(found);
    }
    Ok(out)
}

/// Forgets the staffing judgement of the days due in `[lo, hi]` (all days
/// without bounds): what could change an old staffing day other than new
/// events — removed events, a unit's storhelg flag — makes the next scan
/// judge those days whole again. Their adherence is empty until it has.
pub fn forget(conn: &mut DbConn, span: Option<(NaiveDateTime, NaiveDateTime)>) -> QueryResult<usize> {
    super::backend::lock_staffing(conn)?;
    let staffing = staffing();
    match span {
        Some((lo, hi)) => diesel::delete(staffing.filter(obligations::due.between(lo, hi))).execute(conn),
        None => diesel::delete(staffing).execute(conn),
    }
}

/// Replaces the staffing obligations due at `due` of `units` only: the
/// (unit, day) pairs an incremental scan judged again.
pub fn replace_of(conn: &mut DbConn, due: NaiveDateTime, units: &[&str], rows: &[NewObligation]) -> QueryResult<()> {
    for chunk in units.chunks(CHUNK) {
        diesel::delete(
            staffing()
                .filter(obligations::due.eq(due))
                .filter(obligations::unit.assume_not_null().eq_any(chunk)),
        )
        .execute(conn)?;
    }
    let rows: Vec<&NewObligation> = rows.iter().collect();
    super::followup::insert_obligations(conn, &rows)
}

/// The staffing deviations (no case, the staffing rule) due in `[from,
/// to]`, read through the partial index `deviations_staffing_due`
/// (migration 000021). `lock`: on PostgreSQL locked as they are read, in
/// id order, as `Filing::apply` would lock them, for a scan that reads one
/// span and files them without a second statement to lock them
/// (`Filing::apply_locked`). A scan that reads several spans locks none
/// here: locked span by span, ids of a later span below those of an
/// earlier one would be locked out of order (a sender locks them in
/// order: a deadlock), so `Filing::apply` locks them all at once.
pub fn deviations_due(
    conn: &mut DbConn,
    (from, to): (NaiveDateTime, NaiveDateTime),
    lock: bool,
) -> QueryResult<Vec<DeviationRow>> {
    let of_span = deviations::table
        .filter(deviations::case_id.is_null())
        .filter(deviations::rule.eq(RuleId::BemanningStorhelg.as_str()))
        .filter(deviations::due.ge(from))
        .filter(deviations::due.le(to));
    match conn {
        DbConn::Pg(c) if lock => of_span.order(deviations::id).for_update().load(c),
        _ => of_span.load(conn),
    }
}
