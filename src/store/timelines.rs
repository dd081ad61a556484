//! `case_timelines`: every case's events packed in one row
//! (`store::packed`), so a scan reads one row per case. The rows are
//! derived from `events` and kept in the same transaction that changes a
//! case's events: a batch packs its new cases' rows and makes its known
//! cases' rows again ([`append`]), a removed batch has its cases' rows made again from what
//! is left ([`rebuild_cases`]). What holds: a case's row, where there is
//! one, is exactly its events. A case without one (the table was made
//! after the events, or `copy` has not finished it) is read from `events`,
//! as before the table, and gets its row the next time a batch touches it
//! or `svu-vakt migrate` runs ([`pack_missing`]).

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;

use super::event_rows::{self, EventRow};
use super::packed::{self, Fields};
use super::schema::{case_timelines as t, cases};
use super::{backend, DbConn};
use crate::domain::Event;

/// Cases per statement.
const CHUNK: usize = 500;

/// The events of some cases, per case, each in time order (ties in `at`
/// by id): from their packed rows, and from `events` for a case that has
/// none.
pub fn of_cases(conn: &mut DbConn, ids: &[&str]) -> anyhow::Result<BTreeMap<String, Vec<Event>>> {
    read(conn, ids)?.unpack()
}

/// Some cases' stored events as read, not yet unpacked: a scan reads the
/// next chunk while another thread unpacks and judges this one.
pub struct Read {
    packed: Vec<(String, Vec<u8>)>,
    /// The rows of the cases without a packed row, case by case.
    unpacked: Vec<EventRow>,
}

/// Reads the packed rows of `ids`, and the events of those without one.
pub fn read(conn: &mut DbConn, ids: &[&str]) -> QueryResult<Read> {
    let mut packed = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        packed.extend(packed_rows(conn, chunk)?);
    }
    with_unpacked(conn, ids, packed)
}

/// As [`read`], for `ids` that are every case from the first to the last
/// in the key's order, as a chunk of a walk over all cases is: the packed
/// rows read as one range of the key, not a probe of the key per case
/// (PostgreSQL's time for the reads of a first full scan of 100 000 cases
/// 557 → 466 ms; the rest is the rows themselves). Rows of cases stored
/// since the chunk was listed are left out: the next scan judges them.
pub fn read_run(conn: &mut DbConn, ids: &[&str]) -> QueryResult<Read> {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return Ok(Read {
            packed: Vec::new(),
            unpacked: Vec::new(),
        });
    };
    let q = t::table
        .filter(t::case_id.ge(*first).and(t::case_id.le(*last)))
        .select((t::case_id, t::packed));
    let rows: Vec<(String, Vec<u8>)> = match conn {
        DbConn::Sqlite(c) => q.load(c)?,
        DbConn::Pg(c) => q.load(c)?,
    };
    let listed: HashSet<&str> = ids.iter().copied().collect();
    let packed = rows
        .into_iter()
        .filter(|(case, _)| listed.contains(case.as_str()))
        .collect();
    with_unpacked(conn, ids, packed)
}

/// `packed` with the events of those of `ids` that have no packed row.
fn with_unpacked(conn: &mut DbConn, ids: &[&str], packed: Vec<(String, Vec<u8>)>) -> QueryResult<Read> {
    let have: HashSet<&str> = packed.iter().map(|(c, _)| c.as_str()).collect();
    let missing: Vec<&str> = ids.iter().copied().filter(|id| !have.contains(id)).collect();
    let mut unpacked = Vec::new();
    for chunk in missing.chunks(CHUNK) {
        unpacked.extend(event_rows::of_cases(conn, chunk)?);
    }
    Ok(Read { packed, unpacked })
}

impl Read {
    /// The events per case, each case's in time order (ties in `at` by id).
    pub fn unpack(self) -> anyhow::Result<BTreeMap<String, Vec<Event>>> {
        let mut out = BTreeMap::new();
        for (case, bytes) in self.packed {
            let events = packed::unpack(&case, &bytes).map_err(|e| anyhow::anyhow!(e))?;
            out.insert(case, events);
        }
        for (case, rows) in by_case(self.unpacked) {
            let events = rows
                .into_iter()
                .map(EventRow::into_event)
                .collect::<anyhow::Result<_>>()?;
            out.insert(case, events);
        }
        Ok(out)
    }
}

/// Inside a batch's transaction, after its events were inserted and
/// before its cases are registered (`cases::touch`): a new case's row
/// packed from the batch's events; a case known before the batch has its
/// row made again from all its stored events, the batch's among them
/// (read by the `(case_id, at)` index: a few rows a case, where unpacking
/// and merging the old row would cost as much).
pub fn append<'a>(conn: &mut DbConn, fresh: impl Iterator<Item = (&'a str, Fields<'a>)>) -> QueryResult<()> {
    let mut by_case: BTreeMap<&str, Vec<Fields>> = BTreeMap::new();
    for (case, f) in fresh {
        by_case.entry(case).or_default().push(f);
    }
    let ids: Vec<&str> = by_case.keys().copied().collect();
    lock(conn, &ids)?;
    let mut known: HashSet<String> = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let q = cases::table.filter(cases::id.eq_any(chunk)).select(cases::id);
        known.extend(q.load::<String>(conn)?);
    }
    let mut write: Vec<(&str, Vec<u8>)> = Vec::with_capacity(ids.len());
    for (case, mut events) in by_case {
        if !known.contains(case) {
            write.push((case, packed::pack(&mut events)));
        }
    }
    insert(conn, &write)?;
    // In id order, as the cases are touched: two writers never wait on each other in a cycle.
    let mut known: Vec<String> = known.into_iter().collect();
    known.sort_unstable();
    rebuild_cases(conn, &known)
}

/// The rows of `ids` made again from their stored events (a case with
/// none left gets no row). Inside the caller's transaction.
pub fn rebuild_cases(conn: &mut DbConn, ids: &[String]) -> QueryResult<()> {
    lock(conn, &ids.iter().map(String::as_str).collect::<Vec<_>>())?;
    for chunk in ids.chunks(CHUNK) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        delete(conn, &chunk)?;
        let cases = by_case(event_rows::of_cases(conn, &chunk)?);
        let write: Vec<(&str, Vec<u8>)> = cases
            .iter()
            .map(|(case, rows)| {
                let mut fields: Vec<Fields> = rows.iter().map(Fields::of_row).collect();
                (case.as_str(), packed::pack(&mut fields))
            })
            .collect();
        insert(conn, &write)?;
    }
    Ok(())
}

/// Every case's row made from its stored events, a page of cases per
/// transaction (the page's cases locked first: a batch stored meanwhile
/// lands before or after a page's packing, whole): when the table is made,
/// and after `copy`. The number of cases.
pub fn rebuild_all(conn: &mut DbConn) -> QueryResult<usize> {
    in_pages(conn, false)
}

/// The cases that have no row packed, as [`rebuild_all`] does: what a
/// packing cut short left (`svu-vakt migrate` runs it). The number of
/// cases looked at (a case whose events were all removed gets no row).
pub fn pack_missing(conn: &mut DbConn) -> QueryResult<usize> {
    in_pages(conn, true)
}

fn in_pages(conn: &mut DbConn, missing_only: bool) -> QueryResult<usize> {
    use diesel::dsl::{exists, not};
    let mut after = String::new();
    let mut n = 0;
    loop {
        let page = cases::table
            .filter(cases::id.gt(&after))
            .order(cases::id)
            .select(cases::id)
            .limit(CHUNK as i64);
        let page: Vec<String> = if missing_only {
            page.filter(not(exists(t::table.filter(t::case_id.eq(cases::id)))))
                .load(conn)?
        } else {
            page.load(conn)?
        };
        let Some(last) = page.last().cloned() else {
            return Ok(n);
        };
        backend::write_tx(conn, |c| rebuild_cases(c, &page))?;
        n += page.len();
        after = last;
    }
}

/// On PostgreSQL the cases' rows locked in id order before their events
/// are read to be packed: a batch, a removed batch and a rebuild that pack
/// one case take turns, and the later reads what the earlier committed
/// (without it, READ COMMITTED lets each read the events as they were
/// before the other's change, and the row of the one that commits last
/// misses the other's). SQLite has one writer at a time.
fn lock(conn: &mut DbConn, ids: &[&str]) -> QueryResult<()> {
    match conn {
        DbConn::Pg(c) if !ids.is_empty() => super::cases::lock_in_id_order(c, ids),
        _ => Ok(()),
    }
}

fn packed_rows(conn: &mut DbConn, ids: &[&str]) -> QueryResult<Vec<(String, Vec<u8>)>> {
    let q = t::table.filter(t::case_id.eq_any(ids)).select((t::case_id, t::packed));
    match conn {
        DbConn::Sqlite(c) => q.load(c),
        DbConn::Pg(c) => q.load(c),
    }
}

/// Rows that come case by case, grouped.
fn by_case(rows: Vec<EventRow>) -> Vec<(String, Vec<EventRow>)> {
    let mut out: Vec<(String, Vec<EventRow>)> = Vec::new();
    for row in rows {
        let Some(case) = row.case_id.clone() else { continue };
        match out.last_mut() {
            Some((id, rows)) if *id == case => rows.push(row),
            _ => out.push((case, vec![row])),
        }
    }
    out
}

fn delete(conn: &mut DbConn, ids: &[&str]) -> QueryResult<()> {
    for chunk in ids.chunks(CHUNK) {
        diesel::delete(t::table.filter(t::case_id.eq_any(chunk))).execute(conn)?;
    }
    Ok(())
}

/// A case's packed row as SQLite's multi-row inserts bind it.
impl super::cached::Row for (&str, Vec<u8>) {
    fn bind<'b>(&'b self, out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{Binary, Text};
        super::cached::bind!(out; Text => &self.0, Binary => &self.1)
    }
}

/// On SQLite in multi-row statements prepared once (as `events`);
/// PostgreSQL takes a chunk of rows a statement.
fn insert(conn: &mut DbConn, rows: &[(&str, Vec<u8>)]) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            super::cached::insert_rows!(c, "INSERT INTO case_timelines (case_id, packed) VALUES ", rows)?;
        }
        DbConn::Pg(c) => {
            for chunk in rows.chunks(CHUNK) {
                let values: Vec<_> = chunk
                    .iter()
                    .map(|(case, bytes)| (t::case_id.eq(*case), t::packed.eq(bytes)))
                    .collect();
                diesel::insert_into(t::table).values(values).execute(c)?;
            }
        }
    }
    Ok(())
}
