//! The day counts (`obligation_days`) a scan owes until it ends.
//!
//! Each chunk of a scan replaces its cases' facts and judged obligations
//! (`followup::replace_cases`) and the counts move by the difference. A
//! chunk's difference touches nearly every (day, rule, unit) of the year
//! again: adding it per chunk was four upserts a case, a fifth of a first
//! full scan. So the scan sums its chunks' differences and adds them once,
//! when it ends ([`settle`]). Its first chunk that moves them marks the
//! run as owing them ([`owe`], in the chunk's transaction; a scan whose
//! chunks move nothing, an idle one, marks nothing and adds nothing);
//! [`settle`] clears the mark in the transaction that adds them. Until then the counts are those of the last
//! scan that settled: adherence read during a scan sees none of it.
//!
//! A run still marked — the process died, or the database went away before
//! the end — left the counts behind the cases' facts. The next scan, before
//! it judges anything, counts them again from every case's judged
//! obligations ([`recount_owed`], when the scan's `scans::open` saw a
//! mark; [`catch_up`] looks for one itself). Only scans write the facts and the counts;
//! a scan that lost its lock to the one counting them again cannot commit
//! a chunk meanwhile, and adds nothing after (its mark is gone); one
//! adding them as the recount begins is waited for on PostgreSQL, and its
//! run, then no longer marked, is not counted again.
//!
//! Only the day counts wait for the end: the cases' facts (lead times,
//! betalningsansvar) and the deviations change per chunk, as before.

use std::collections::HashMap;

use diesel::prelude::*;

use super::followup::{self, Delta};
use super::schema::{case_facts, obligation_days, scan_runs};
use super::{backend, DbConn};

/// Cases read per page when the counts are made again.
const PAGE: i64 = 5_000;

/// What a scan's committed chunks moved the day counts by, summed as they
/// commit. A hash map: each chunk's move is tens of thousands of (day,
/// rule, unit) keys, and adding them to an ordered map of three strings
/// was a twentieth of the writing thread of a first full scan (string
/// comparisons along its search paths); the keys are ordered once, when
/// [`settle`] adds them.
#[derive(Default)]
pub struct Owed(HashMap<(String, String, String), [i64; 3], foldhash::fast::RandomState>);

impl Owed {
    /// Adds a committed chunk's move.
    pub fn merge(&mut self, moved: Delta) {
        for (key, n) in moved {
            let slot = self.0.entry(key).or_default();
            for (total, by) in slot.iter_mut().zip(n) {
                *total += by;
            }
        }
    }
}

/// In the transaction of a scan's first chunk that moves the day counts,
/// its last statement: the run owes them.
pub fn owe(conn: &mut DbConn, run: i64) -> QueryResult<()> {
    diesel::update(scan_runs::table.find(run))
        .set(scan_runs::days_owed.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Adds what the scan's committed chunks moved and clears its mark, only
/// while the mark is there: a scan that lost its lock may find another scan
/// has counted them again from the facts, its own chunks included
/// ([`catch_up`]). Whether it added them.
pub fn settle(conn: &mut DbConn, run: i64, owed: Owed) -> QueryResult<bool> {
    let owed: Delta = owed.0.into_iter().collect();
    backend::write_tx(conn, |conn| -> QueryResult<bool> {
        let cleared = diesel::update(scan_runs::table.find(run).filter(scan_runs::days_owed))
            .set(scan_runs::days_owed.eq(false))
            .execute(conn)?;
        if cleared == 1 {
            followup::add_days(conn, &owed)?;
        }
        Ok(cleared == 1)
    })
}

/// The runs whose day counts are owed, in id order.
fn owing(conn: &mut DbConn) -> QueryResult<Vec<i64>> {
    scan_runs::table
        .filter(scan_runs::days_owed)
        .select(scan_runs::id)
        .order(scan_runs::id)
        .load(conn)
}

/// When a run left its counts owed: counts them again from every case's
/// judged obligations and clears every mark, in one write transaction that
/// no chunk of a scan can commit into (SQLite's write lock; on PostgreSQL
/// `case_facts` held in SHARE mode: a chunk of a scan that lost its lock
/// and is still committing is waited for, and one after it waits). The runs
/// that owed them, none when the counts were whole.
pub fn catch_up(conn: &mut DbConn) -> QueryResult<Vec<i64>> {
    if owing(conn)?.is_empty() {
        return Ok(Vec::new());
    }
    recount_owed(conn)
}

/// [`catch_up`] once a run was seen owing (`scans::Opened::days_owed`):
/// the marked runs are read again inside the transaction.
pub fn recount_owed(conn: &mut DbConn) -> QueryResult<Vec<i64>> {
    backend::write_tx(conn, |conn| -> QueryResult<Vec<i64>> {
        let runs = match conn {
            DbConn::Pg(c) => {
                diesel::sql_query("LOCK TABLE case_facts IN SHARE MODE").execute(c)?;
                // A scan adding its counts ([`settle`]) holds its run's
                // row from clearing the mark until it commits, and the
                // keys it inserts meanwhile are invisible to the DELETE
                // below, which would leave them to be counted again on
                // top. Locking the marked runs waits for such a scan;
                // its run, no longer marked, is then not counted again.
                scan_runs::table
                    .filter(scan_runs::days_owed)
                    .select(scan_runs::id)
                    .order(scan_runs::id)
                    .for_update()
                    .load(c)?
            }
            DbConn::Sqlite(_) => owing(conn)?,
        };
        if runs.is_empty() {
            return Ok(runs);
        }
        let counts = from_facts(conn)?;
        diesel::delete(obligation_days::table).execute(conn)?;
        followup::add_days(conn, &counts)?;
        diesel::update(scan_runs::table.filter(scan_runs::id.eq_any(&runs)))
            .set(scan_runs::days_owed.eq(false))
            .execute(conn)?;
        Ok(runs)
    })
}

/// The day counts from scratch: every case's judged obligations counted.
pub fn from_facts(conn: &mut DbConn) -> QueryResult<Delta> {
    let mut counts = Delta::new();
    let mut after = String::new();
    loop {
        let page: Vec<(String, String)> = case_facts::table
            .filter(case_facts::case_id.gt(&after))
            .order(case_facts::case_id)
            .select((case_facts::case_id, case_facts::judged))
            .limit(PAGE)
            .load(conn)?;
        let Some((last, _)) = page.last() else {
            return Ok(counts);
        };
        after = last.clone();
        for (_, judged) in &page {
            let days = followup::unpack(judged).map_err(|e| diesel::result::Error::DeserializationError(e.into()))?;
            for j in &days {
                followup::count(&mut counts, j, 1);
            }
        }
    }
}

/// The day counts as stored, without the keys whose counts are all zero.
pub fn stored(conn: &mut DbConn) -> QueryResult<Delta> {
    let rows: Vec<(String, String, String, i64, i64, i64)> = obligation_days::table
        .select((
            obligation_days::day,
            obligation_days::rule,
            obligation_days::unit,
            obligation_days::met,
            obligation_days::late,
            obligation_days::missing,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|r| r.3 != 0 || r.4 != 0 || r.5 != 0)
        .map(|(day, rule, unit, met, late, missing)| ((day, rule, unit), [met, late, missing]))
        .collect())
}
