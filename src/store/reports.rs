//! What the follow-up reports read (SPEC §7), as named queries: the day
//! counts and staffing obligations behind adherence, the deviations' history
//! behind handling times and the effect of an åtgärd, the counts of the
//! quarterly report and the pending cases förvarning judges again. The rows
//! come back as they are stored; `followup` filters by scope and computes.
//! The cases' facts (lead times, readmissions) are read in `store::followup`.

use crate::domain::handling::DeviationStatus;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::count_star;
use diesel::prelude::*;

use super::schema::{deviation_history, deviations, obligation_days, obligations, staffing_reminders};
use super::{backend, DbConn};
use crate::store::outbox::{self, NewMail};

/// A day count: (rule, unit — empty for none, met, late, missing).
pub type DayCount = (String, String, i64, i64, i64);

/// A grouped count: (rule, unit, outcome or status, how many).
pub type GroupCount = (String, Option<String>, String, i64);

/// The day counts of the local days `from..=to`, optionally of one rule and unit.
pub fn obligation_days(
    conn: &mut DbConn,
    from: NaiveDate,
    to: NaiveDate,
    rule: Option<&str>,
    unit: Option<&str>,
) -> QueryResult<Vec<DayCount>> {
    let mut q = obligation_days::table
        .filter(obligation_days::day.ge(from.to_string()))
        .filter(obligation_days::day.le(to.to_string()))
        .select((
            obligation_days::rule,
            obligation_days::unit,
            obligation_days::met,
            obligation_days::late,
            obligation_days::missing,
        ))
        .into_boxed();
    if let Some(r) = rule {
        q = q.filter(obligation_days::rule.eq(r));
    }
    if let Some(u) = unit {
        q = q.filter(obligation_days::unit.eq(u));
    }
    q.load(conn)
}

/// The judged staffing obligations due in `[start, end)`, counted per
/// (rule, unit, outcome), optionally of one rule and unit.
pub fn staffing_counts(
    conn: &mut DbConn,
    start: NaiveDateTime,
    end: NaiveDateTime,
    rule: Option<&str>,
    unit: Option<&str>,
) -> QueryResult<Vec<GroupCount>> {
    let mut q = obligations::table
        .filter(obligations::case_id.eq(""))
        .filter(obligations::due.ge(start))
        .filter(obligations::due.lt(end))
        .filter(obligations::outcome.ne("pending"))
        .group_by((obligations::rule, obligations::unit, obligations::outcome))
        .select((obligations::rule, obligations::unit, obligations::outcome, count_star()))
        .into_boxed();
    if let Some(r) = rule {
        q = q.filter(obligations::rule.eq(r));
    }
    if let Some(u) = unit {
        q = q.filter(obligations::unit.eq(u));
    }
    q.load(conn)
}

/// The staffing obligations of `rule` due in `[start, end)`: (unit, due, outcome).
pub fn staffing_obligations(
    conn: &mut DbConn,
    rule: &str,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> QueryResult<Vec<(Option<String>, NaiveDateTime, String)>> {
    obligations::table
        .filter(obligations::rule.eq(rule))
        .filter(obligations::case_id.eq(""))
        .filter(obligations::due.ge(start))
        .filter(obligations::due.lt(end))
        .select((obligations::unit, obligations::due, obligations::outcome))
        .load(conn)
}

/// A step of a deviation's history: (deviation, rule, unit, when).
pub type Step = (i64, String, Option<String>, NaiveDateTime);

/// Every change to `atgardad` before `end` of a deviation with a unit
/// (optionally one unit and rule), oldest first.
pub fn atgarder_before(
    conn: &mut DbConn,
    end: NaiveDateTime,
    unit: Option<&str>,
    rule: Option<&str>,
) -> QueryResult<Vec<Step>> {
    let mut q = deviation_history::table
        .inner_join(deviations::table)
        .filter(deviation_history::to_status.eq(DeviationStatus::Atgardad))
        .filter(deviation_history::at.lt(end))
        .filter(deviations::unit.is_not_null())
        .select((
            deviations::id,
            deviations::rule,
            deviations::unit,
            deviation_history::at,
        ))
        .order(deviation_history::at)
        .into_boxed();
    if let Some(u) = unit {
        q = q.filter(deviations::unit.eq(u));
    }
    if let Some(r) = rule {
        q = q.filter(deviations::rule.eq(r));
    }
    q.load(conn)
}

/// Every change to `skickad` in `[start, end)`.
pub fn sent_between(conn: &mut DbConn, start: NaiveDateTime, end: NaiveDateTime) -> QueryResult<Vec<Step>> {
    deviation_history::table
        .inner_join(deviations::table)
        .filter(deviation_history::to_status.eq(DeviationStatus::Skickad))
        .filter(deviation_history::at.ge(start))
        .filter(deviation_history::at.lt(end))
        .select((
            deviations::id,
            deviations::rule,
            deviations::unit,
            deviation_history::at,
        ))
        .load(conn)
}

/// The changes of the deviations `ids` to one of `statuses`: (deviation, status, when).
pub fn steps_to(
    conn: &mut DbConn,
    ids: &[i64],
    statuses: &[DeviationStatus],
) -> QueryResult<Vec<(i64, DeviationStatus, NaiveDateTime)>> {
    deviation_history::table
        .filter(deviation_history::deviation_id.eq_any(ids))
        .filter(deviation_history::to_status.eq_any(statuses))
        .select((
            deviation_history::deviation_id,
            deviation_history::to_status,
            deviation_history::at,
        ))
        .load(conn)
}

/// The deviations in one of `statuses`: (unit, created).
pub fn created_in_status(
    conn: &mut DbConn,
    statuses: &[DeviationStatus],
) -> QueryResult<Vec<(Option<String>, NaiveDateTime)>> {
    deviations::table
        .filter(deviations::status.eq_any(statuses))
        .select((deviations::unit, deviations::created_at))
        .load(conn)
}

/// Deviations due in `[start, end)`, counted per (rule, unit, status).
pub fn deviation_counts(conn: &mut DbConn, start: NaiveDateTime, end: NaiveDateTime) -> QueryResult<Vec<GroupCount>> {
    deviations::table
        .filter(deviations::due.ge(start))
        .filter(deviations::due.lt(end))
        .group_by((deviations::rule, deviations::unit, deviations::status))
        .select((deviations::rule, deviations::unit, deviations::status, count_star()))
        .load(conn)
}

/// The cases with an obligation still pending, not done, due in `(after, until]`.
pub fn pending_cases(conn: &mut DbConn, after: NaiveDateTime, until: NaiveDateTime) -> QueryResult<Vec<String>> {
    obligations::table
        .filter(obligations::outcome.eq("pending"))
        .filter(obligations::done_at.is_null())
        .filter(obligations::due.gt(after))
        .filter(obligations::due.le(until))
        .filter(obligations::case_id.ne(""))
        .select(obligations::case_id)
        .distinct()
        .load(conn)
}

/// Queues the staffing reminder `mail` of `unit` for the local day `day`,
/// once: in one transaction, unless one was queued before. 1 when queued.
pub fn queue_staffing_reminder(conn: &mut DbConn, unit: &str, day: &str, mail: NewMail) -> QueryResult<usize> {
    backend::write_tx(conn, |conn| {
        let done: i64 = staffing_reminders::table
            .filter(staffing_reminders::unit_id.eq(unit))
            .filter(staffing_reminders::day.eq(day))
            .count()
            .get_result(conn)?;
        if done > 0 {
            return Ok(0);
        }
        diesel::insert_into(staffing_reminders::table)
            .values((
                staffing_reminders::unit_id.eq(unit),
                staffing_reminders::day.eq(day),
                staffing_reminders::queued_at.eq(super::now()),
            ))
            .execute(conn)?;
        outbox::enqueue(conn, &[mail])?;
        Ok(1)
    })
}
