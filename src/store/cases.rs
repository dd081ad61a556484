//! The case register: one row per coordination case, kept current as events
//! arrive. `changed_at` (arrival time of the case's newest event) is what an
//! incremental scan looks at.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::events::utc_seconds;
use super::schema::cases;
use super::{backend, DbConn};
use crate::domain::IngestEvent;

#[derive(Insertable)]
#[diesel(table_name = cases, treat_none_as_default_value = false)]
pub struct NewCase<'a> {
    pub id: &'a str,
    pub patient_hash: Option<&'a str>,
    pub age_band: Option<&'static str>,
    pub first_at: NaiveDateTime,
    pub last_at: NaiveDateTime,
    pub changed_at: NaiveDateTime,
}

struct Span<'a> {
    patient: Option<&'a str>,
    age_band: Option<&'static str>,
    first: NaiveDateTime,
    last: NaiveDateTime,
}

/// Registers the cases of newly stored events, or widens their span.
pub fn touch(conn: &mut DbConn, fresh: &[&IngestEvent], changed_at: NaiveDateTime) -> QueryResult<()> {
    // In id order, as the scan updates them: two writers never wait on each other in a cycle.
    let mut spans: BTreeMap<&str, Span> = BTreeMap::new();
    for ev in fresh {
        let Some(case) = ev.event.case.as_ref() else { continue };
        let at = utc_seconds(&ev.event.at);
        let patient = ev.event.patient.as_ref().map(|p| p.0.as_str());
        let age_band = ev.event.age_band.map(|b| b.as_str());
        let span = spans.entry(case.as_str()).or_insert(Span {
            patient,
            age_band,
            first: at,
            last: at,
        });
        span.first = span.first.min(at);
        span.last = span.last.max(at);
        span.patient = span.patient.or(patient);
        span.age_band = span.age_band.or(age_band);
    }
    let ids: Vec<&str> = spans.keys().copied().collect();
    type Known = (Option<String>, Option<String>, NaiveDateTime, NaiveDateTime);
    let mut existing: HashMap<String, Known> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, Known)> = cases::table
            .filter(cases::id.eq_any(chunk))
            .select((
                cases::id,
                (cases::patient_hash, cases::age_band, cases::first_at, cases::last_at),
            ))
            .load(conn)?;
        existing.extend(rows);
    }
    let mut new_rows = Vec::new();
    for (id, span) in &spans {
        match existing.get(*id) {
            Some((patient, band, first, last)) => {
                diesel::update(cases::table.find(*id))
                    .set((
                        cases::first_at.eq(span.first.min(*first)),
                        cases::last_at.eq(span.last.max(*last)),
                        cases::changed_at.eq(changed_at),
                        cases::patient_hash.eq(patient.as_deref().or(span.patient)),
                        cases::age_band.eq(band.as_deref().or(span.age_band)),
                    ))
                    .execute(conn)?;
            }
            None => new_rows.push(NewCase {
                id,
                patient_hash: span.patient,
                age_band: span.age_band,
                first_at: span.first,
                last_at: span.last,
                changed_at,
            }),
        }
    }
    backend::insert_cases(conn, &new_rows)?;
    Ok(())
}

/// After events of the cases `ids` were removed (a bad export taken back):
/// each case's span from the events it has left, and its patient only as
/// they still name it. A patient that the removed events alone gave is
/// cleared, so that a corrected export sets it (`touch` keeps a patient it
/// finds); its age band goes with it, as it cannot be told again without
/// the number, which is never kept.
pub fn recompute(conn: &mut DbConn, ids: &[String]) -> QueryResult<()> {
    use super::schema::events;
    let rows: Vec<(String, NaiveDateTime, Option<String>)> = events::table
        .filter(events::case_id.eq_any(ids))
        .select((events::case_id.assume_not_null(), events::at, events::patient_hash))
        .order((events::case_id, events::at, events::id))
        .load(conn)?;
    let mut left: HashMap<&str, (NaiveDateTime, NaiveDateTime, Vec<&str>)> = HashMap::new();
    for (case, at, patient) in &rows {
        let e = left.entry(case.as_str()).or_insert((*at, *at, Vec::new()));
        e.0 = e.0.min(*at);
        e.1 = e.1.max(*at);
        if let Some(p) = patient.as_deref().filter(|p| !e.2.contains(p)) {
            e.2.push(p);
        }
    }
    let current: Vec<(String, Option<String>)> = cases::table
        .filter(cases::id.eq_any(ids))
        .select((cases::id, cases::patient_hash))
        .order(cases::id)
        .load(conn)?;
    for (id, patient) in current {
        let (span, patients) = match left.get(id.as_str()) {
            Some((first, last, p)) => (Some((*first, *last)), p.as_slice()),
            None => (None, &[][..]),
        };
        if !patient.as_deref().is_some_and(|p| patients.contains(&p)) {
            diesel::update(cases::table.find(&id))
                .set((
                    cases::patient_hash.eq(patients.first().copied()),
                    cases::age_band.eq(None::<&str>),
                ))
                .execute(conn)?;
        }
        // A case with no event left keeps its span: its deviations are
        // withdrawn by the next scan, which finds it by id.
        if let Some((first, last)) = span {
            diesel::update(cases::table.find(&id))
                .set((cases::first_at.eq(first), cases::last_at.eq(last)))
                .execute(conn)?;
        }
    }
    Ok(())
}

pub fn exists(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(cases::table.find(id))).get_result(conn)
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    cases::table.count().get_result(conn)
}

/// What a scan noted of one case; `None` leaves that column as it is.
#[derive(Debug, Clone, Default)]
pub struct Noted<'a> {
    pub id: &'a str,
    /// When the case must be judged again.
    pub next_check: Option<Option<NaiveDateTime>>,
    /// The hash of what the follow-up keeps of it (`audit::summary`).
    pub summary_hash: Option<&'a str>,
    /// The hash of its findings as filed; `Some(None)` has the next scan
    /// file the case in full.
    pub findings_hash: Option<Option<&'a str>>,
}

/// A scan's notes of up to [`SET_CHUNK`] cases, one statement (PostgreSQL).
/// Its rows are taken in id order, as ingest takes them (two writers that
/// take the same rows in different orders deadlock): under [`IN_ID_ORDER`]
/// the only plan is a nested loop whose outer side is the notes sorted by
/// id, each case found by its key and locked as it is found
/// (`tests/api/scan_notes.rs` holds the plan to that). A `SELECT … ORDER
/// BY id FOR UPDATE` before it took the same locks once more: 5.9 s of the
/// server's time in a first full scan of 1 M cases.
pub const NOTE_JUDGED: &str = "UPDATE cases SET next_check = CASE WHEN v.sn THEN v.n ELSE cases.next_check END, \
     summary_hash = COALESCE(v.s, cases.summary_hash), \
     findings_hash = CASE WHEN v.sf THEN v.f ELSE cases.findings_hash END \
     FROM (SELECT * FROM unnest($1::text[], $2::bool[], $3::timestamp[], $4::text[], $5::bool[], $6::text[]) \
     AS u(id, sn, n, s, sf, f) ORDER BY u.id) AS v WHERE cases.id = v.id";

/// The planner settings [`NOTE_JUDGED`] runs under, for the rest of the
/// chunk's transaction or until [`ANY_ORDER`]: no hash join, no merge
/// join and no sequential scan of `cases` (a nested loop over the table
/// in its pages' order), which take the rows in another order. A chunk's
/// deviations by the list of its cases are read under them too
/// (`deviations::BY_CASE_LIST`).
pub const IN_ID_ORDER: &str =
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_seqscan = off";

/// The planner's own settings again.
const ANY_ORDER: &str =
    "SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT; SET LOCAL enable_seqscan TO DEFAULT";

/// `f` under [`IN_ID_ORDER`], inside the caller's transaction (on an
/// error the transaction's rollback undoes the settings too).
pub(super) fn in_id_order<T>(
    c: &mut diesel::PgConnection,
    f: impl FnOnce(&mut diesel::PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    use diesel::connection::SimpleConnection;
    c.batch_execute(IN_ID_ORDER)?;
    let out = f(c)?;
    c.batch_execute(ANY_ORDER)?;
    Ok(out)
}

/// `f` under [`IN_ID_ORDER`] to the end of the caller's transaction, which
/// commits after it with nothing that needs the planner's own settings
/// back (each statement left is by a key): one round trip less than
/// [`in_id_order`]. Only in a transaction of its own, never a savepoint
/// inside another (`SET LOCAL` lasts to the outer transaction's end).
fn in_id_order_to_commit<T>(
    c: &mut diesel::PgConnection,
    f: impl FnOnce(&mut diesel::PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    use diesel::connection::SimpleConnection;
    c.batch_execute(IN_ID_ORDER)?;
    f(c)
}

/// Notes what a scan judged of each case — its next check, its summary's
/// hash, its findings' hash — in one UPDATE per case: one new row version,
/// not one per column. On PostgreSQL one `UPDATE … FROM unnest` per 5 000
/// cases (a statement per case was a round trip per case, most of a first
/// full scan's time there); SQLite runs in the process, where a single-row
/// UPDATE of fixed text costs microseconds and is prepared once.
pub fn note_judged(conn: &mut DbConn, rows: &[Noted]) -> QueryResult<()> {
    use diesel::sql_types::{Array, Bool, Nullable, Text, Timestamp};
    if rows.is_empty() {
        return Ok(());
    }
    match conn {
        // The rows are locked in id order, as ingest locks them, by the
        // UPDATE itself: [`NOTE_JUDGED`] under [`IN_ID_ORDER`], the last of
        // a scan's chunk but for the run's mark (`day_counts::owe`, by key).
        DbConn::Pg(c) => in_id_order_to_commit(c, |c| {
            for part in rows.chunks(SET_CHUNK) {
                let ids: Vec<&str> = part.iter().map(|r| r.id).collect();
                diesel::sql_query(NOTE_JUDGED)
                    .bind::<Array<Text>, _>(ids)
                    .bind::<Array<Bool>, _>(part.iter().map(|r| r.next_check.is_some()).collect::<Vec<_>>())
                    .bind::<Array<Nullable<Timestamp>>, _>(
                        part.iter().map(|r| r.next_check.flatten()).collect::<Vec<_>>(),
                    )
                    .bind::<Array<Nullable<Text>>, _>(part.iter().map(|r| r.summary_hash).collect::<Vec<_>>())
                    .bind::<Array<Bool>, _>(part.iter().map(|r| r.findings_hash.is_some()).collect::<Vec<_>>())
                    .bind::<Array<Nullable<Text>>, _>(
                        part.iter().map(|r| r.findings_hash.flatten()).collect::<Vec<_>>(),
                    )
                    .execute(c)?;
            }
            Ok(())
        })?,
        DbConn::Sqlite(c) => {
            // Prepared once (`Cached`), bound and stepped per case.
            use super::cached::{cached, param};
            for r in rows {
                cached!(
                    "UPDATE cases SET next_check = CASE WHEN ? THEN ? ELSE next_check END, \
                     summary_hash = COALESCE(?, summary_hash), \
                     findings_hash = CASE WHEN ? THEN ? ELSE findings_hash END WHERE id = ?",
                    &[
                        &param::<Bool, _>(r.next_check.is_some()),
                        &param::<Nullable<Timestamp>, _>(r.next_check.flatten()),
                        &param::<Nullable<Text>, _>(r.summary_hash),
                        &param::<Bool, _>(r.findings_hash.is_some()),
                        &param::<Nullable<Text>, _>(r.findings_hash.flatten()),
                        &param::<Text, _>(r.id),
                    ],
                )
                .execute(c)?;
            }
        }
    }
    Ok(())
}

/// A person changed a deviation of `case`: the next scan files the case in
/// full (its plan may act on the new status, `audit::plan`).
pub fn forget_findings(conn: &mut DbConn, case: &str) -> QueryResult<()> {
    diesel::update(cases::table.find(case))
        .set(cases::findings_hash.eq(None::<String>))
        .execute(conn)
        .map(drop)
}

/// Takes the rows' locks in id order, as ingest does (`touch`): an UPDATE
/// … FROM takes them in the order of its plan, and two writers taking the
/// same rows in different orders deadlock.
pub(super) fn lock_in_id_order(c: &mut diesel::PgConnection, ids: &[&str]) -> QueryResult<()> {
    use diesel::sql_types::{Array, Text};
    diesel::sql_query("SELECT 1 FROM (SELECT id FROM cases WHERE id = ANY($1) ORDER BY id FOR UPDATE) AS locked")
        .bind::<Array<Text>, _>(ids)
        .execute(c)?;
    Ok(())
}

/// Cases per set-based statement.
const SET_CHUNK: usize = 5_000;
