//! What a scan asks of the case register and the batches: the candidate
//! cases, chunk by chunk, and the earliest event that arrived since the last
//! scan. Incrementally every question is answered from an index that
//! follows what is new (`cases.changed_at`, `cases.next_check`,
//! `ingest_batches.received_at` with each batch's earliest `at`), so an
//! idle or a small scan reads no history (tests/scan_reads.rs holds the
//! plans to that).
//!
//! A case without a summary needs no question of its own: whatever leaves
//! a case unsummarised — its first event, a removed batch, a reshaped unit
//! register — marks it changed then (`changed_at`), as any change is
//! marked; the margin that covers an ingest committed after a scan read
//! (`scan.arrival_margin_seconds`) covers these too. Its own index
//! (`summary_hash IS NULL`) was one every first scan had to update for
//! every case, and kept PostgreSQL from noting a scan in place (migration
//! `scan_notes_in_place`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{cases, ingest_batches};
use super::DbConn;

/// A case a scan looks at, with what the last scan kept of it.
#[derive(Debug, Clone, Queryable)]
pub struct Candidate {
    pub id: String,
    pub next_check: Option<NaiveDateTime>,
    pub summary_hash: Option<String>,
    /// What the last scan noted of the case's findings (`cases.findings_hash`).
    pub findings_hash: Option<String>,
    pub patient_hash: Option<String>,
    pub age_band: Option<String>,
}

/// More candidates than this and an incremental scan walks the cases in id
/// order instead of listing them (it is nearly a full scan then).
const LISTED_MAX: i64 = 200_000;

/// The cases a scan evaluates, chunk by chunk in id order. Incrementally,
/// the candidates are listed first from two indexes that follow what is
/// new (`changed_at`, `next_check`), so an incremental
/// scan costs what changed, never the county's history.
pub struct CandidateWalk {
    chunk: i64,
    since: Option<NaiveDateTime>,
    as_of: NaiveDateTime,
    listed: Option<Listed>,
    after: String,
}

/// What an incremental scan listed: the candidates themselves when they
/// fit in one chunk (an idle scan's or a day's feed: the rows come with
/// the listing, not read a second time through the key), else their ids,
/// read chunk by chunk.
enum Listed {
    /// Taken whole by the first chunk.
    Rows(Option<Vec<Candidate>>),
    Ids(std::vec::IntoIter<String>),
}

impl CandidateWalk {
    pub fn start(
        conn: &mut DbConn,
        chunk: i64,
        since: Option<NaiveDateTime>,
        as_of: NaiveDateTime,
    ) -> QueryResult<CandidateWalk> {
        let listed = match since {
            Some(s) => listed(conn, chunk, s, as_of)?,
            None => None,
        };
        Ok(CandidateWalk {
            chunk,
            since,
            as_of,
            listed,
            after: String::new(),
        })
    }

    /// Whether every chunk holds every case between its first and its last
    /// (a walk over all cases, not a listing nor a filtered walk).
    pub fn whole(&self) -> bool {
        self.since.is_none() && self.listed.is_none()
    }

    /// Whether the listing came with the candidates' rows: one chunk, not
    /// read again by id.
    pub fn in_one_chunk(&self) -> bool {
        matches!(self.listed, Some(Listed::Rows(_)))
    }

    pub fn next_chunk(&mut self, conn: &mut DbConn) -> QueryResult<Option<Vec<Candidate>>> {
        let rows = match &mut self.listed {
            Some(Listed::Rows(rows)) => match rows.take() {
                Some(rows) if !rows.is_empty() => rows,
                _ => return Ok(None),
            },
            Some(Listed::Ids(ids)) => {
                let part: Vec<String> = ids.by_ref().take(self.chunk as usize).collect();
                if part.is_empty() {
                    return Ok(None);
                }
                candidates_by_id(conn, &part)?
            }
            None => candidates(conn, self.chunk, &self.after, self.since, self.as_of)?,
        };
        match rows.last() {
            Some(last) => self.after = last.id.clone(),
            None if self.listed.is_none() => return Ok(None),
            // Listed cases gone meanwhile (a removed export): the next part.
            None => return self.next_chunk(conn),
        }
        Ok(Some(rows))
    }
}

/// The cases changed since the last scan (new events, no summary yet) or
/// with a due that has come: their rows, sorted, when there are no more
/// than `chunk` of them; else their ids, sorted; `None` when there are
/// more than [`LISTED_MAX`]. On PostgreSQL each listed case costs a visit
/// of its heap page (no index-only scan without a visibility map), and
/// the rows read then are the candidates: reading them again by id cost
/// a walk down the key per case (a third of an idle scan of 1 M cases).
/// Both listings are read before the chunk, as the ids were: what changes
/// after it is marked changed and judged by the next scan.
fn listed(conn: &mut DbConn, chunk: i64, since: NaiveDateTime, as_of: NaiveDateTime) -> QueryResult<Option<Listed>> {
    // One statement, one round trip: more than `chunk` due or changed
    // cases make more than `chunk` cases in all. A case in both comes twice,
    // as one row (one snapshot).
    let both = cases::table
        .select(COLUMNS)
        .filter(cases::next_check.le(as_of))
        .limit(chunk + 1)
        .union_all(
            cases::table
                .select(COLUMNS)
                .filter(cases::changed_at.gt(since))
                .limit(chunk + 1),
        );
    let mut all: Vec<Candidate> = match conn {
        DbConn::Pg(c) => both.load(c)?,
        DbConn::Sqlite(c) => both.load(c)?,
    };
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all.dedup_by(|later, kept| later.id == kept.id);
    if all.len() as i64 <= chunk {
        return Ok(Some(Listed::Rows(Some(all))));
    }
    Ok(incremental_ids(conn, since, as_of)?.map(|ids| Listed::Ids(ids.into_iter())))
}

/// The ids of the cases changed since the last scan or with a due that has
/// come, sorted; `None` when there are more than [`LISTED_MAX`].
fn incremental_ids(conn: &mut DbConn, since: NaiveDateTime, as_of: NaiveDateTime) -> QueryResult<Option<Vec<String>>> {
    let changed: Vec<String> = cases::table
        .filter(cases::changed_at.gt(since))
        .select(cases::id)
        .limit(LISTED_MAX + 1)
        .load(conn)?;
    let due: Vec<String> = cases::table
        .filter(cases::next_check.le(as_of))
        .select(cases::id)
        .limit(LISTED_MAX + 1)
        .load(conn)?;
    let mut all: Vec<String> = changed.into_iter().chain(due).collect();
    all.sort_unstable();
    all.dedup();
    Ok((all.len() as i64 <= LISTED_MAX).then_some(all))
}

/// The columns of a [`Candidate`], in its order.
const COLUMNS: (
    cases::id,
    cases::next_check,
    cases::summary_hash,
    cases::findings_hash,
    cases::patient_hash,
    cases::age_band,
) = (
    cases::id,
    cases::next_check,
    cases::summary_hash,
    cases::findings_hash,
    cases::patient_hash,
    cases::age_band,
);

fn candidates_by_id(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<Candidate>> {
    cases::table
        .select(COLUMNS)
        .filter(cases::id.eq_any(ids))
        .order(cases::id)
        .load(conn)
}

/// The next chunk of cases to evaluate, after `after` in id order: all of
/// them, or those changed since the last scan or with a due that has come.
fn candidates(
    conn: &mut DbConn,
    chunk: i64,
    after: &str,
    since: Option<NaiveDateTime>,
    as_of: NaiveDateTime,
) -> QueryResult<Vec<Candidate>> {
    let mut q = cases::table
        .select(COLUMNS)
        .filter(cases::id.gt(after))
        .order(cases::id)
        .limit(chunk)
        .into_boxed();
    if let Some(s) = since {
        q = q.filter(cases::changed_at.gt(s).or(cases::next_check.le(as_of)));
    }
    q.load(conn)
}

/// The earliest `at` of the events that arrived after `since`: from
/// the batches received since (each keeps its events' earliest `at`), so
/// the cost follows what is new, never the history.
pub fn earliest_arrival_date(conn: &mut DbConn, since: NaiveDateTime) -> QueryResult<Option<NaiveDateTime>> {
    let t: Option<NaiveDateTime> = ingest_batches::table
        .filter(ingest_batches::received_at.gt(since))
        .select(diesel::dsl::min(ingest_batches::earliest_at))
        .first(conn)?;
    Ok(t)
}
