//! Storing an ingest batch all or nothing, idempotent by event id, and
//! reading events back.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use super::event_rows::EventRow;
use super::packed::Fields;
use super::schema::{events, ingest_batches};
use super::stamp::Stamp;
use super::{backend, cases, now, timelines, DbConn};
use crate::calendar::local_date;
pub use crate::domain::Conflict;
use crate::domain::{Event, EventType, EventValue};
use crate::domain::{FieldErrors, IngestError, IngestEvent};
use crate::rules::bemanning::UnitDay;

#[derive(Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub case_id: Option<&'a str>,
    pub event_type: &'a str,
    pub at: Stamp,
    pub at_offset: i32,
    pub unit: &'a str,
    pub to_units: String,
    pub ref_id: Option<&'a str>,
    pub value: Option<String>,
    pub patient_hash: Option<&'a str>,
    pub content_hash: &'a str,
    pub raw: &'a str,
    pub batch_id: i64,
    pub received_at: Stamp,
    pub kommun: Option<&'a str>,
}

/// What a stored batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchOutcome {
    /// The batch id, or none when nothing in it was new.
    pub batch: Option<i64>,
    pub received: usize,
    pub stored: usize,
    pub duplicates: usize,
}

impl BatchOutcome {
    /// A batch whose every event was stored already.
    pub(super) fn nothing_new(received: usize) -> BatchOutcome {
        BatchOutcome {
            batch: None,
            received,
            stored: 0,
            duplicates: received,
        }
    }

    /// Adds another batch's counts (the batch id stays this one's).
    pub fn add(&mut self, o: BatchOutcome) {
        self.received += o.received;
        self.stored += o.stored;
        self.duplicates += o.duplicates;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreBatchError {
    #[error("{} händelse-id finns redan med annat innehåll", .0.len())]
    Conflict(Vec<Conflict>),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Why a transaction stops without committing.
pub(super) enum Abort {
    Conflict(Vec<Conflict>),
    /// Every event was stored already; the batch row it began with.
    NothingNew(i64),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Db(e)
    }
}

/// Stores a validated batch. The same events again are counted as
/// duplicates and change nothing; an id with other content stores nothing.
pub fn store_batch(conn: &mut DbConn, batch: &[IngestEvent], source: &str) -> Result<BatchOutcome, StoreBatchError> {
    store_with(conn, batch, &mut FileContext::new(source))
}

/// Stores `batch` in a transaction of its own with what the file's batches
/// share: the id lookup left out while `ctx` says every id is new, the unit
/// days recorded before not sent again. A unique id another writer took
/// meanwhile, or a deadlock, rolls it back and it is stored again looking
/// up every id (the rest of the file too).
pub(super) fn store_with(
    conn: &mut DbConn,
    batch: &[IngestEvent],
    ctx: &mut FileContext<'_>,
) -> Result<BatchOutcome, StoreBatchError> {
    let (unique, in_batch_dups, mut conflicts) = dedupe(batch);
    if !conflicts.is_empty() {
        conflicts.sort_by_key(|c| c.line);
        return Err(StoreBatchError::Conflict(conflicts));
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = backend::write_tx(conn, |c| store_in_tx(c, &unique, batch.len(), in_batch_dups, ctx));
        if result.is_err() {
            // Rolled back: what it recorded was not kept, and an id it took for new perhaps was not.
            ctx.recorded.forget();
            ctx.ids_new = false;
        }
        match result {
            Ok(outcome) => return Ok(outcome),
            Err(Abort::NothingNew(_)) => return Ok(BatchOutcome::nothing_new(batch.len())),
            Err(Abort::Conflict(c)) => return Err(StoreBatchError::Conflict(c)),
            // Another writer stored one of these ids meanwhile, or PostgreSQL
            // chose this transaction as a deadlock victim: look again.
            Err(Abort::Db(e)) if attempt < 5 && super::retryable(&e) => continue,
            Err(Abort::Db(e)) => return Err(e.into()),
        }
    }
}

/// What the batches of one file's import share.
pub struct FileContext<'a> {
    pub(super) source: &'a str,
    /// Pass one found none of the file's ids stored: the batches' lookup of
    /// stored ids is left out (an id another writer stores meanwhile fails
    /// the group on its unique key, and the group is stored again batch by
    /// batch, looking).
    pub(super) ids_new: bool,
    pub(super) recorded: super::unit_days::Recorded,
}

impl<'a> FileContext<'a> {
    pub fn new(source: &'a str) -> FileContext<'a> {
        FileContext {
            source,
            ids_new: false,
            recorded: Default::default(),
        }
    }

    /// For a file none of whose ids pass one found stored.
    pub fn of_new_ids(source: &'a str) -> FileContext<'a> {
        FileContext {
            ids_new: true,
            ..FileContext::new(source)
        }
    }
}

/// Why a stored id with other content is refused.
const STORED_OTHER: &str = "en händelse med detta id finns redan sparad med annat innehåll";

/// Drops repeats inside the batch; a repeat with other content is a conflict.
pub(super) fn dedupe(batch: &[IngestEvent]) -> (Vec<&IngestEvent>, usize, Vec<Conflict>) {
    let mut first: HashMap<&str, &IngestEvent> = HashMap::with_capacity(batch.len());
    let mut unique = Vec::with_capacity(batch.len());
    let mut dups = 0;
    let mut conflicts = Vec::new();
    for ev in batch {
        match first.get(ev.event.id.as_str()) {
            Some(prev) if prev.content_hash == ev.content_hash => dups += 1,
            Some(prev) => conflicts.push(Conflict {
                line: ev.line,
                id: ev.event.id.0.clone(),
                message: format!("samma id som rad {} men annat innehåll", prev.line),
            }),
            None => {
                first.insert(ev.event.id.as_str(), ev);
                unique.push(ev);
            }
        }
    }
    (unique, dups, conflicts)
}

pub(super) fn store_in_tx(
    conn: &mut DbConn,
    unique: &[&IngestEvent],
    received: usize,
    in_batch_dups: usize,
    ctx: &mut FileContext<'_>,
) -> Result<BatchOutcome, Abort> {
    let source = ctx.source;
    let received_at = now();
    // Writing first takes SQLite's write lock at once, so two concurrent
    // batches serialise instead of failing to upgrade a read lock.
    let batch_id: i64 = diesel::insert_into(ingest_batches::table)
        .values((
            ingest_batches::received_at.eq(received_at),
            ingest_batches::source.eq(source),
            ingest_batches::lines.eq(received as i32),
            ingest_batches::stored.eq(0),
            ingest_batches::duplicates.eq(0),
        ))
        .returning(ingest_batches::id)
        .get_result(conn)?;
    let stored = match ctx.ids_new {
        true => HashMap::new(),
        false => existing_hashes(conn, unique)?,
    };
    let mut conflicts = Vec::new();
    let mut fresh = Vec::with_capacity(unique.len());
    for ev in unique {
        match stored.get(ev.event.id.as_str()) {
            Some(h) if *h == ev.content_hash => {}
            Some(_) => conflicts.push(Conflict {
                line: ev.line,
                id: ev.event.id.0.clone(),
                message: STORED_OTHER.into(),
            }),
            None => fresh.push(*ev),
        }
    }
    if !conflicts.is_empty() {
        return Err(Abort::Conflict(conflicts));
    }
    if fresh.is_empty() {
        return Err(Abort::NothingNew(batch_id));
    }
    // In id order: concurrent batches lock the same keys in the same order.
    fresh.sort_by(|a, b| a.event.id.cmp(&b.event.id));
    let rows: Vec<NewEvent> = fresh.iter().map(|ev| new_event(ev, batch_id, received_at)).collect();
    backend::insert_events(conn, &rows)?;
    timelines::append(conn, rows.iter().filter_map(|r| Some((r.case_id?, fields(r)))))?;
    cases::touch(conn, &fresh, received_at)?;
    // Last: two batches of one file stored at once on PostgreSQL share
    // their unit days, and the later waits here for the earlier to commit,
    // its own events and cases written meanwhile.
    let acts = rows
        .iter()
        .filter_map(|r| Some((r.unit, EventType::parse(r.event_type)?, r.at.0.and_utc())));
    super::unit_days::record(conn, &UnitDay::of_acts(acts), &mut ctx.recorded, received_at)?;
    let duplicates = received - fresh.len();
    diesel::update(ingest_batches::table.find(batch_id))
        .set((
            ingest_batches::stored.eq(fresh.len() as i32),
            ingest_batches::duplicates.eq(duplicates as i32),
            ingest_batches::earliest_at.eq(fresh.iter().map(|ev| ev.event.at.naive_utc()).min()),
        ))
        .execute(conn)?;
    debug_assert!(duplicates >= in_batch_dups);
    Ok(BatchOutcome {
        batch: Some(batch_id),
        received,
        stored: fresh.len(),
        duplicates,
    })
}

/// Whether no event is stored at all (a new database before its first
/// load): no id of a file can then conflict with a stored one.
pub fn none_stored(conn: &mut DbConn) -> QueryResult<bool> {
    let any: bool = diesel::select(diesel::dsl::exists(events::table.select(events::id))).get_result(conn)?;
    Ok(!any)
}

/// The events of `batch` whose id is stored with other content, and how
/// many of its ids are stored at all.
pub fn compare_with_stored(conn: &mut DbConn, batch: &[IngestEvent]) -> QueryResult<(Vec<Conflict>, usize)> {
    let refs: Vec<&IngestEvent> = batch.iter().collect();
    let stored = existing_hashes(conn, &refs)?;
    let conflicts = batch
        .iter()
        .filter(|ev| stored.get(ev.event.id.as_str()).is_some_and(|h| *h != ev.content_hash))
        .map(|ev| Conflict {
            line: ev.line,
            id: ev.event.id.0.clone(),
            message: STORED_OTHER.into(),
        })
        .collect();
    Ok((conflicts, stored.len()))
}

/// Removes what the given ingest batches stored (an import that failed
/// after some of its batches were stored takes them back; an operator
/// removes a bad export). The cases whose events go are marked changed and
/// unsummarised, so the next scan judges them again: a deviation that no
/// longer holds is withdrawn, and the follow-up's counts follow. So are
/// the staffing days the events fell on (`staffing::forget`). Their span
/// and patient are taken again from the events they have left.
pub fn remove_batches(conn: &mut DbConn, batches: &[i64]) -> QueryResult<usize> {
    backend::write_tx(conn, |conn| {
        let mut removed = 0;
        for chunk in batches.chunks(500) {
            let touched: Vec<String> = events::table
                .filter(events::batch_id.eq_any(chunk))
                .filter(events::case_id.is_not_null())
                .select(events::case_id.assume_not_null())
                .distinct()
                .load(conn)?;
            // Locked in id order before they change, as a batch locks them.
            let touched = {
                let mut t = touched;
                t.sort_unstable();
                t
            };
            if let DbConn::Pg(c) = conn {
                cases::lock_in_id_order(c, &touched.iter().map(String::as_str).collect::<Vec<_>>())?;
            }
            let span: (Option<NaiveDateTime>, Option<NaiveDateTime>) = events::table
                .filter(events::batch_id.eq_any(chunk))
                .select((diesel::dsl::min(events::at), diesel::dsl::max(events::at)))
                .first(conn)?;
            // The staffing days the removed events fell on (a local day
            // lies within a day of its UTC instants) are judged again whole.
            if let (Some(lo), Some(hi)) = span {
                let day = chrono::Duration::days(1);
                super::staffing::forget(conn, Some((lo - day, hi + day)))?;
            }
            removed += diesel::delete(events::table.filter(events::batch_id.eq_any(chunk))).execute(conn)?;
            // The register's days of the removed events, from what is left.
            if let (Some(lo), Some(hi)) = span {
                let days = (local_date(lo.and_utc()), local_date(hi.and_utc()));
                super::unit_days::rebuild(conn, Some(days))?;
            }
            diesel::delete(ingest_batches::table.filter(ingest_batches::id.eq_any(chunk))).execute(conn)?;
            for ids in touched.chunks(500) {
                diesel::update(super::schema::cases::table.filter(super::schema::cases::id.eq_any(ids)))
                    .set((
                        super::schema::cases::changed_at.eq(now()),
                        super::schema::cases::summary_hash.eq(None::<String>),
                    ))
                    .execute(conn)?;
                cases::recompute(conn, ids)?;
                timelines::rebuild_cases(conn, ids)?;
            }
        }
        Ok(removed)
    })
}

/// An ingest batch as the log shows it.
#[derive(Debug, Clone, Queryable)]
pub struct BatchRow {
    pub id: i64,
    pub received_at: NaiveDateTime,
    pub source: String,
    pub lines: i32,
    pub stored: i32,
    pub duplicates: i32,
}

/// The latest `limit` batches, newest first; with `source`, only those
/// whose source contains it (`mapp:export-1124.jsonl`, `import`, `api`).
pub fn recent_batches(conn: &mut DbConn, source: Option<&str>, limit: i64) -> QueryResult<Vec<BatchRow>> {
    let mut q = ingest_batches::table
        .order(ingest_batches::id.desc())
        .limit(limit)
        .select((
            ingest_batches::id,
            ingest_batches::received_at,
            ingest_batches::source,
            ingest_batches::lines,
            ingest_batches::stored,
            ingest_batches::duplicates,
        ))
        .into_boxed();
    if let Some(s) = source {
        let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        q = q.filter(ingest_batches::source.like(format!("%{escaped}%")).escape('\\'));
    }
    q.load(conn)
}

/// What a batch holds now: its events, and the cases they belong to.
pub fn batch_content(conn: &mut DbConn, batch: i64) -> QueryResult<(i64, Vec<String>)> {
    let n = events::table
        .filter(events::batch_id.eq(batch))
        .count()
        .get_result(conn)?;
    let cases = events::table
        .filter(events::batch_id.eq(batch))
        .filter(events::case_id.is_not_null())
        .select(events::case_id.assume_not_null())
        .distinct()
        .order(events::case_id.assume_not_null())
        .load(conn)?;
    Ok((n, cases))
}

fn existing_hashes(conn: &mut DbConn, unique: &[&IngestEvent]) -> QueryResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in unique.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|e| e.event.id.as_str()).collect();
        let rows: Vec<(String, String)> = events::table
            .filter(events::id.eq_any(&ids))
            .select((events::id, events::content_hash))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

fn new_event<'a>(ev: &'a IngestEvent, batch_id: i64, received_at: NaiveDateTime) -> NewEvent<'a> {
    let e = &ev.event;
    let to: Vec<&str> = e.to.iter().map(|u| u.as_str()).collect();
    NewEvent {
        id: e.id.as_str(),
        case_id: e.case.as_ref().map(|c| c.as_str()),
        event_type: e.kind.as_str(),
        at: Stamp(utc_seconds(&e.at)),
        at_offset: e.at.offset().local_minus_utc(),
        unit: e.unit.as_str(),
        to_units: serde_json::Value::from(to).to_string(),
        ref_id: e.reference.as_ref().map(|r| r.as_str()),
        value: e.value.as_ref().map(EventValue::to_stored),
        patient_hash: e.patient.as_ref().map(|p| p.0.as_str()),
        content_hash: &ev.content_hash,
        raw: &ev.raw,
        batch_id,
        received_at: Stamp(received_at),
        kommun: e.kommun.as_deref(),
    }
}

/// The columns of a row being stored, as a case's packed timeline holds them.
fn fields<'a>(r: &'a NewEvent<'_>) -> Fields<'a> {
    Fields {
        id: r.id,
        event_type: r.event_type,
        at: r.at.0,
        at_offset: r.at_offset,
        unit: r.unit,
        to_units: &r.to_units,
        ref_id: r.ref_id,
        value: r.value.as_deref(),
        patient_hash: r.patient_hash,
        kommun: r.kommun,
    }
}

/// The instant in UTC at whole seconds, as stored and compared.
pub fn utc_seconds(at: &DateTime<FixedOffset>) -> NaiveDateTime {
    DateTime::from_timestamp(at.timestamp(), 0)
        .unwrap_or_default()
        .naive_utc()
}

/// A case's events in time order (ties by id).
pub fn case_events(conn: &mut DbConn, case: &str) -> anyhow::Result<Vec<Event>> {
    let rows: Vec<EventRow> = events::table
        .filter(events::case_id.eq(case))
        .order((events::at.asc(), events::id.asc()))
        .select(EventRow::as_select())
        .load(conn)?;
    rows.into_iter().map(EventRow::into_event).collect()
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    events::table.count().get_result(conn)
}

/// Stores a parsed batch: all of it, or nothing.
pub fn store_parsed(
    conn: &mut DbConn,
    parsed: Result<Vec<IngestEvent>, FieldErrors>,
    source: &str,
) -> Result<BatchOutcome, IngestError> {
    let events = parsed.map_err(IngestError::Invalid)?;
    match store_batch(conn, &events, source) {
        Ok(outcome) => Ok(outcome),
        Err(StoreBatchError::Conflict(c)) => Err(IngestError::Conflict(c)),
        Err(StoreBatchError::Db(e)) => Err(IngestError::Db(e.into())),
    }
}
