//! Deviations and their history. Every write here happens inside the
//! caller's transaction, so a deviation, its history line and its mail (in
//! `store::outbox`) are stored together or not at all.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

mod insert;
mod list;

pub use list::{log_encode, open_counts, page, ListFilter};

use super::backend::{self, CHUNK};
use super::schema::{deviation_comments, deviation_handling, deviation_history, deviation_parties, deviations};
use super::stamp::Stamp;
use super::{now, DbConn};
use crate::domain::handling::DeviationStatus;

/// Statuses in which evidence still withdraws a deviation and a scan may
/// update its facts: before anyone recorded an åtgärd.
pub const OPEN: [DeviationStatus; 4] = [
    DeviationStatus::Ny,
    DeviationStatus::Skickad,
    DeviationStatus::Mottagen,
    DeviationStatus::Utreds,
];

#[derive(Debug, Clone, Queryable, QueryableByName, Serialize)]
#[diesel(table_name = deviations)]
pub struct DeviationRow {
    pub id: i64,
    pub fingerprint: String,
    pub rule: String,
    pub case_id: Option<String>,
    pub unit: Option<String>,
    pub due: NaiveDateTime,
    pub finding_status: String,
    pub done_at: Option<NaiveDateTime>,
    pub late_minutes: Option<i64>,
    pub status: DeviationStatus,
    pub sannolikhet: i32,
    pub konsekvens: i32,
    pub recipients: String,
    pub queued_at: Option<NaiveDateTime>,
    pub scan_id: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = deviations, treat_none_as_default_value = false)]
pub struct NewDeviation<'a> {
    pub fingerprint: &'a str,
    pub rule: &'a str,
    pub case_id: Option<&'a str>,
    pub unit: Option<&'a str>,
    pub due: Stamp,
    pub finding_status: &'a str,
    pub done_at: Option<Stamp>,
    pub late_minutes: Option<i64>,
    pub status: DeviationStatus,
    pub sannolikhet: i32,
    pub konsekvens: i32,
    pub recipients: String,
    pub queued_at: Option<Stamp>,
    pub scan_id: i64,
    pub created_at: Stamp,
}

impl NewDeviation<'_> {
    /// The stored row, once the database has given it `id`.
    pub fn to_row(&self, id: i64) -> DeviationRow {
        DeviationRow {
            id,
            fingerprint: self.fingerprint.to_string(),
            rule: self.rule.to_string(),
            case_id: self.case_id.map(String::from),
            unit: self.unit.map(String::from),
            due: self.due.0,
            finding_status: self.finding_status.to_string(),
            done_at: self.done_at.map(|t| t.0),
            late_minutes: self.late_minutes,
            status: self.status,
            sannolikhet: self.sannolikhet,
            konsekvens: self.konsekvens,
            recipients: self.recipients.clone(),
            queued_at: self.queued_at.map(|t| t.0),
            scan_id: self.scan_id,
            created_at: self.created_at.0,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = deviation_history, treat_none_as_default_value = false)]
pub struct NewHistory<'a> {
    pub deviation_id: i64,
    pub at: Stamp,
    pub actor: &'a str,
    pub from_status: Option<DeviationStatus>,
    pub to_status: DeviationStatus,
    pub note: Option<&'a str>,
}

/// Files many deviations (on SQLite statements of 32 rows and of one, each
/// prepared once; COPY on PostgreSQL, `store::loaded`): their ids with their
/// fingerprints.
pub fn insert_many(conn: &mut DbConn, rows: &[NewDeviation]) -> QueryResult<Vec<(i64, String)>> {
    insert::insert_many(conn, rows)
}

/// Notes each deviation's berörd part (SPEC §6): `(deviation id, unit)`.
pub fn insert_parties(conn: &mut DbConn, parties: &[(i64, String)]) -> QueryResult<()> {
    match conn {
        // Statements of a fixed number of rows, prepared once.
        DbConn::Sqlite(c) => {
            super::cached::insert_rows!(c, "INSERT INTO deviation_parties (deviation_id, unit) VALUES ", parties)?;
        }
        DbConn::Pg(c) => {
            super::loaded::parties(c, parties)?;
        }
    }
    Ok(())
}

/// The berörd part of each of the deviations, in unit order.
pub fn parties_of(conn: &mut DbConn, ids: &[i64]) -> QueryResult<std::collections::BTreeMap<i64, Vec<String>>> {
    let mut out: std::collections::BTreeMap<i64, Vec<String>> = std::collections::BTreeMap::new();
    for chunk in ids.chunks(10_000) {
        let rows: Vec<(i64, String)> = deviation_parties::table
            .filter(deviation_parties::deviation_id.eq_any(chunk))
            .order((deviation_parties::deviation_id, deviation_parties::unit))
            .load(conn)?;
        for (id, unit) in rows {
            out.entry(id).or_default().push(unit);
        }
    }
    Ok(out)
}

/// Those of `ids` that were ever mailed to their recipient.
pub fn mailed_among(conn: &mut DbConn, ids: &[i64]) -> QueryResult<HashSet<i64>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mailed: Vec<i64> = deviation_history::table
            .filter(deviation_history::deviation_id.eq_any(chunk))
            .filter(deviation_history::to_status.eq("skickad"))
            .select(deviation_history::deviation_id)
            .distinct()
            .load(conn)?;
        out.extend(mailed);
    }
    Ok(out)
}

/// On the backend's own connection (every scan chunk reads these; through
/// `MultiConnection` each value took one more dispatch). Inside a write
/// transaction: on PostgreSQL the rows are locked in id order as they are
/// read, so the filing plan sees a person's change committed a moment
/// before, never the status it had (on SQLite the transaction holds the
/// write lock already).
///
/// `run`: the first and the last of `cases` in the order of a walk over
/// every case (the database's), which holds every case between them
/// (`Filing::run_of`). PostgreSQL then reads and locks the deviations of
/// that range of the key, those of cases not in `cases` left out here: one
/// descent of `(case_id, fingerprint)` where a list of 5 000 ids was 5 000,
/// most finding nothing in a first full scan (13.6 s of the server's time
/// at 1 M cases, and no statistics to go wrong: docs/PERFORMANCE.md,
/// fifteenth round). The bounds are the walk's, never a sort of `cases`
/// here: under a collation other than C the two orders differ. The extra
/// rows locked belong to the chunk's cases, which no other writer of the
/// scan holds.
pub fn by_cases(conn: &mut DbConn, cases: &[&str], run: Option<(&str, &str)>) -> QueryResult<Vec<DeviationRow>> {
    match (conn, run) {
        (DbConn::Sqlite(c), _) => deviations::table.filter(deviations::case_id.eq_any(cases)).load(c),
        (DbConn::Pg(c), Some((first, last))) => {
            let rows: Vec<DeviationRow> = deviations::table
                .filter(deviations::case_id.between(first, last))
                .order(deviations::id)
                .for_update()
                .load(c)?;
            let listed: HashSet<&str> = cases.iter().copied().collect();
            Ok(rows
                .into_iter()
                .filter(|d| d.case_id.as_deref().is_some_and(|c| listed.contains(c)))
                .collect())
        }
        (DbConn::Pg(c), None) => super::cases::in_id_order(c, |c| {
            diesel::sql_query(BY_CASE_LIST)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(cases)
                .load(c)
        }),
    }
}

/// The deviations of a list of cases, locked in id order (PostgreSQL,
/// under `cases::IN_ID_ORDER`): a nested loop from each listed case into
/// `(case_id, fingerprint)`, then sorted by id. As `case_id = ANY(list)`
/// the planner weighed the list against the whole table and took a
/// sequential scan of every deviation for a few hundred cases (13.9 ms
/// at 100 000 cases, ten times that at a million: most of what an
/// incremental scan on PostgreSQL spent beyond SQLite's), or, without
/// statistics, a walk of the whole primary key; a join admits neither.
pub const BY_CASE_LIST: &str = "SELECT d.* FROM (SELECT DISTINCT unnest($1::text[]) AS id) AS u \
     JOIN deviations d ON d.case_id = u.id ORDER BY d.id FOR UPDATE OF d";

pub fn get(conn: &mut DbConn, id: i64) -> QueryResult<Option<DeviationRow>> {
    deviations::table.find(id).first(conn).optional()
}

/// The deviations `ids` as they are now, in id order.
pub fn get_many(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<DeviationRow>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        out.extend(
            deviations::table
                .filter(deviations::id.eq_any(chunk))
                .order(deviations::id)
                .load::<DeviationRow>(conn)?,
        );
    }
    out.sort_by_key(|d| d.id);
    Ok(out)
}

/// The ids of the deviations in one of `statuses`, in id order.
pub fn ids_in_status(conn: &mut DbConn, statuses: &[DeviationStatus]) -> QueryResult<Vec<i64>> {
    deviations::table
        .filter(deviations::status.eq_any(statuses))
        .select(deviations::id)
        .order(deviations::id)
        .load(conn)
}

pub fn all(conn: &mut DbConn) -> QueryResult<Vec<DeviationRow>> {
    deviations::table.order(deviations::id).load(conn)
}

/// The same change of status for many deviations, each with its history
/// line from the status it had: one UPDATE per 500 deviations, the history
/// lines as `backend::insert_history` writes them.
pub fn set_status_many(
    conn: &mut DbConn,
    rows: &[&DeviationRow],
    to: DeviationStatus,
    actor: &str,
    note: Option<&str>,
) -> QueryResult<()> {
    let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
    for chunk in ids.chunks(CHUNK) {
        diesel::update(deviations::table.filter(deviations::id.eq_any(chunk)))
            .set(deviations::status.eq(to))
            .execute(conn)?;
    }
    let at = now();
    let history: Vec<NewHistory> = rows
        .iter()
        .map(|d| NewHistory {
            deviation_id: d.id,
            at: Stamp(at),
            actor,
            from_status: Some(d.status),
            to_status: to,
            note,
        })
        .collect();
    backend::insert_history(conn, &history)?;
    Ok(())
}

/// Records a status change with who made it.
pub fn set_status(
    conn: &mut DbConn,
    d: &DeviationRow,
    to: DeviationStatus,
    actor: &str,
    note: Option<&str>,
) -> QueryResult<()> {
    diesel::update(deviations::table.find(d.id))
        .set(deviations::status.eq(to))
        .execute(conn)?;
    history(conn, d.id, actor, Some(d.status), to, note)
}

pub fn history(
    conn: &mut DbConn,
    id: i64,
    actor: &str,
    from: Option<DeviationStatus>,
    to: DeviationStatus,
    note: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(deviation_history::table)
        .values((
            deviation_history::deviation_id.eq(id),
            deviation_history::at.eq(now()),
            deviation_history::actor.eq(actor),
            deviation_history::from_status.eq(from),
            deviation_history::to_status.eq(to),
            deviation_history::note.eq(note),
        ))
        .execute(conn)?;
    Ok(())
}

/// New facts for a deviation whose finding changed (a `missing` that
/// turned `late`); its status stays as it is.
pub struct FactsUpdate<'a> {
    pub id: i64,
    /// The deviation's status, which its history line repeats.
    pub status: DeviationStatus,
    pub finding_status: &'a str,
    pub done_at: Option<NaiveDateTime>,
    pub late_minutes: Option<i64>,
}

/// The facts of deviations whose findings changed, with a history line
/// each: a multi-row UPDATE per 500 deviations, the history lines as
/// `backend::insert_history` writes them.
pub fn update_facts(conn: &mut DbConn, updates: &[FactsUpdate]) -> QueryResult<()> {
    backend::update_facts(conn, updates)?;
    let notes: Vec<String> = updates
        .iter()
        .map(|u| match u.late_minutes {
            Some(m) => format!("uppgifterna uppdaterade: utfört, {m} minuter efter tidsgränsen"),
            None => "uppgifterna uppdaterade".to_string(),
        })
        .collect();
    let at = now();
    let history: Vec<NewHistory> = updates
        .iter()
        .zip(&notes)
        .map(|(u, note)| NewHistory {
            deviation_id: u.id,
            at: Stamp(at),
            actor: "svu-vakt",
            from_status: Some(u.status),
            to_status: u.status,
            note: Some(note),
        })
        .collect();
    backend::insert_history(conn, &history)?;
    Ok(())
}

pub fn mark_queued(conn: &mut DbConn, ids: &[i64]) -> QueryResult<()> {
    set_queued_at(conn, ids, Some(now()))
}

/// Puts deviations back among those a digest must carry (they were reopened).
pub fn mark_unqueued(conn: &mut DbConn, ids: &[i64]) -> QueryResult<()> {
    set_queued_at(conn, ids, None)
}

fn set_queued_at(conn: &mut DbConn, ids: &[i64], at: Option<NaiveDateTime>) -> QueryResult<()> {
    for chunk in ids.chunks(CHUNK) {
        diesel::update(deviations::table.filter(deviations::id.eq_any(chunk)))
            .set(deviations::queued_at.eq(at))
            .execute(conn)?;
    }
    Ok(())
}

/// Deviations filed but not yet put in any mail (digest mode): id and
/// recipients only, so a large backlog costs little memory.
pub fn unqueued(conn: &mut DbConn) -> QueryResult<Vec<(i64, String)>> {
    deviations::table
        .filter(deviations::queued_at.is_null())
        .filter(deviations::status.eq(DeviationStatus::Ny))
        .order(deviations::id)
        .select((deviations::id, deviations::recipients))
        .load(conn)
}

#[derive(Debug, Clone, Queryable, Serialize)]
pub struct HistoryRow {
    pub id: i64,
    pub deviation_id: i64,
    pub at: NaiveDateTime,
    pub actor: String,
    pub from_status: Option<DeviationStatus>,
    pub to_status: DeviationStatus,
    pub note: Option<String>,
}

/// How many history lines a deviation has (numbers its re-sent mails).
pub fn history_count(conn: &mut DbConn, id: i64) -> QueryResult<usize> {
    let n: i64 = deviation_history::table
        .filter(deviation_history::deviation_id.eq(id))
        .count()
        .get_result(conn)?;
    Ok(usize::try_from(n).unwrap_or_default())
}

/// How many history lines each of `ids` has (those with none are left out).
pub fn history_counts(conn: &mut DbConn, ids: &[i64]) -> QueryResult<HashMap<i64, usize>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let counts: Vec<(i64, i64)> = deviation_history::table
            .filter(deviation_history::deviation_id.eq_any(chunk))
            .group_by(deviation_history::deviation_id)
            .select((deviation_history::deviation_id, diesel::dsl::count_star()))
            .load(conn)?;
        out.extend(
            counts
                .into_iter()
                .map(|(id, n)| (id, usize::try_from(n).unwrap_or_default())),
        );
    }
    Ok(out)
}

pub fn history_of(conn: &mut DbConn, id: i64) -> QueryResult<Vec<HistoryRow>> {
    deviation_history::table
        .filter(deviation_history::deviation_id.eq(id))
        .order(deviation_history::id)
        .load(conn)
}

/// What people recorded while handling a deviation.
#[derive(Debug, Clone, Default, Queryable, Serialize)]
pub struct HandlingRow {
    pub deviation_id: i64,
    pub assigned_to: Option<i64>,
    pub atgard: Option<String>,
    pub reason: Option<String>,
    pub changed_at: NaiveDateTime,
    pub reminded_at: Option<NaiveDateTime>,
    pub escalated_at: Option<NaiveDateTime>,
}

pub fn handling_of(conn: &mut DbConn, id: i64) -> QueryResult<Option<HandlingRow>> {
    deviation_handling::table.find(id).first(conn).optional()
}

/// A person's change of status (already checked against SPEC §6.1 by
/// `domain::handling`), with its history line and the åtgärd or reason kept.
pub fn apply_change(
    conn: &mut DbConn,
    d: &DeviationRow,
    to: DeviationStatus,
    actor: &str,
    note: Option<&str>,
    atgard: Option<&str>,
    reason: Option<&str>,
) -> QueryResult<()> {
    set_status(conn, d, to, actor, note)?;
    // The scan's plan acts on statuses (a reopened deviation whose finding
    // is gone is withdrawn): the next scan files the case in full.
    if let Some(case) = &d.case_id {
        super::cases::forget_findings(conn, case)?;
    }
    let t = now();
    let existing = handling_of(conn, d.id)?;
    let atgard = atgard
        .map(String::from)
        .or(existing.as_ref().and_then(|h| h.atgard.clone()));
    let reason = reason
        .map(String::from)
        .or(existing.as_ref().and_then(|h| h.reason.clone()));
    if existing.is_some() {
        diesel::update(deviation_handling::table.find(d.id))
            .set((
                deviation_handling::atgard.eq(atgard),
                deviation_handling::reason.eq(reason),
                deviation_handling::changed_at.eq(t),
            ))
            .execute(conn)?;
    } else {
        diesel::insert_into(deviation_handling::table)
            .values((
                deviation_handling::deviation_id.eq(d.id),
                deviation_handling::assigned_to.eq(None::<i64>),
                deviation_handling::atgard.eq(atgard),
                deviation_handling::reason.eq(reason),
                deviation_handling::changed_at.eq(t),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Notes that a reminder (or an escalation) for `id` was queued now.
pub fn mark_reminded(conn: &mut DbConn, id: i64, escalation: bool) -> QueryResult<()> {
    let t = now();
    if handling_of(conn, id)?.is_none() {
        diesel::insert_into(deviation_handling::table)
            .values((
                deviation_handling::deviation_id.eq(id),
                deviation_handling::changed_at.eq(t),
            ))
            .execute(conn)?;
    }
    let target = deviation_handling::table.find(id);
    if escalation {
        diesel::update(target)
            .set(deviation_handling::escalated_at.eq(Some(t)))
            .execute(conn)?;
    } else {
        diesel::update(target)
            .set(deviation_handling::reminded_at.eq(Some(t)))
            .execute(conn)?;
    }
    Ok(())
}

/// When each deviation last changed status (its last handling step, the
/// mail that sent it included), for the given ids.
pub fn last_steps(conn: &mut DbConn, ids: &[i64]) -> QueryResult<std::collections::HashMap<i64, NaiveDateTime>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(i64, Option<NaiveDateTime>)> = deviation_history::table
            .filter(deviation_history::deviation_id.eq_any(chunk))
            .filter(
                deviation_history::from_status
                    .is_null()
                    .or(deviation_history::from_status.ne(deviation_history::to_status.nullable())),
            )
            .group_by(deviation_history::deviation_id)
            .select((deviation_history::deviation_id, diesel::dsl::max(deviation_history::at)))
            .load(conn)?;
        out.extend(rows.into_iter().filter_map(|(id, at)| at.map(|a| (id, a))));
    }
    Ok(out)
}

#[derive(Debug, Clone, Queryable, Serialize)]
pub struct CommentRow {
    pub id: i64,
    pub deviation_id: i64,
    pub at: NaiveDateTime,
    pub actor: String,
    pub text: String,
}

pub fn add_comment(conn: &mut DbConn, id: i64, actor: &str, text: &str) -> QueryResult<()> {
    diesel::insert_into(deviation_comments::table)
        .values((
            deviation_comments::deviation_id.eq(id),
            deviation_comments::at.eq(now()),
            deviation_comments::actor.eq(actor),
            deviation_comments::text.eq(text),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn comments_of(conn: &mut DbConn, id: i64) -> QueryResult<Vec<CommentRow>> {
    deviation_comments::table
        .filter(deviation_comments::deviation_id.eq(id))
        .order(deviation_comments::id)
        .load(conn)
}

/// Assigns the deviation to a user (or to nobody), with a history line.
pub fn assign(conn: &mut DbConn, d: &DeviationRow, user: Option<(i64, &str)>, actor: &str) -> QueryResult<()> {
    let t = now();
    if handling_of(conn, d.id)?.is_none() {
        diesel::insert_into(deviation_handling::table)
            .values((
                deviation_handling::deviation_id.eq(d.id),
                deviation_handling::changed_at.eq(t),
            ))
            .execute(conn)?;
    }
    diesel::update(deviation_handling::table.find(d.id))
        .set(deviation_handling::assigned_to.eq(user.map(|(id, _)| id)))
        .execute(conn)?;
    let note = match user {
        Some((_, name)) => format!("tilldelad {name}"),
        None => "ingen tilldelad".to_string(),
    };
    history(conn, d.id, actor, Some(d.status), d.status, Some(&note))
}
