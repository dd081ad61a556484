//! The batches of one file's import, stored as they come: on SQLite
//! [`GROUP`] of them to a write transaction, each its own ingest batch.
//!
//! The transaction stays open while the next batches are read and parsed,
//! so the storing thread never waits for a whole group to be parsed after a
//! commit (it waited for the last batch of every group), and memory holds
//! the open group and the few batches parsed ahead. A shared commit writes
//! each page the group's batches changed once, where a commit per batch
//! wrote the same index and timeline pages again for every batch (half of
//! an import's writes with ids out of order). A batch that turns out to
//! hold only stored events takes its batch row out again in the
//! transaction, as a batch of its own rolls back. A conflict stores nothing
//! of the group; a unique id another writer took meanwhile (or a
//! serialization failure) stores the group batch by batch instead; any
//! other failure, the write lock not had within the busy timeout among
//! them, fails it as it fails a batch. PostgreSQL stores batch by batch
//! (each batch locks its cases in id order, and a transaction holding
//! several batches' locks would deadlock with a concurrent sender), with
//! what the file's batches share as on SQLite: no id lookup while pass one's
//! finding holds, unit days recorded before not sent again.

mod beside;

use diesel::prelude::*;

use self::beside::Beside;
use super::events::{dedupe, store_batch, store_in_tx, store_with, Abort, BatchOutcome, FileContext, StoreBatchError};
use super::schema::ingest_batches;
use super::{backend, DbConn, PooledConn};
use crate::domain::IngestEvent;

/// Batches of one file stored in one write transaction on SQLite.
pub const GROUP: usize = 5;

/// How long an import holds SQLite's write lock, group after group, before
/// it lets go for [`GAP`]: the next group's batches are parsed while one is
/// stored, so without a pause the lock is free only for the instant between
/// a commit and the next `BEGIN`, and the API, the drop folder or a scan
/// waiting in SQLite's busy handler (which sleeps up to 100 ms between
/// tries) would wait out its whole timeout behind a large file.
const HOLD: std::time::Duration = std::time::Duration::from_secs(2);

/// Longer than the busy handler's longest sleep, so every waiting writer
/// gets its turn: at most about [`HOLD`] plus its own work.
const GAP: std::time::Duration = std::time::Duration::from_millis(110);

/// Stores a file's batches in the order given; hands every batch's outcome
/// to the caller once it is committed. Dropped with a transaction open, it
/// rolls it back.
pub struct FileBatches<'c> {
    conn: &'c mut DbConn,
    ctx: FileContext<'c>,
    /// The batches of the open transaction, kept to be stored one by one
    /// should it fail retryably, and what each did in it.
    open: Vec<Vec<IngestEvent>>,
    outcomes: Vec<BatchOutcome>,
    in_tx: bool,
    /// Since when this import has held the write lock without a [`GAP`].
    holding: Option<std::time::Instant>,
    /// PostgreSQL: the second connection storing every other batch.
    beside: Option<Beside>,
    /// SQLite: where committed batches go to be dropped.
    spent: Spent,
}

/// Drops committed groups of batches on a thread of its own, started with
/// the first: their events were allocated on the parsing threads, and
/// freeing their strings took a fourteenth of the storing thread of an
/// import. Handed over, not queued: memory holds at most one group more
/// than before (one being dropped while the next waits to be handed over).
#[derive(Default)]
struct Spent {
    to: Option<std::sync::mpsc::SyncSender<Vec<Vec<IngestEvent>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spent {
    fn drop_beside(&mut self, group: Vec<Vec<IngestEvent>>) {
        if self.to.is_none() {
            let (to, from) = std::sync::mpsc::sync_channel::<Vec<Vec<IngestEvent>>>(0);
            self.thread = std::thread::Builder::new()
                .name("import-spent".into())
                .spawn(move || from.into_iter().for_each(drop))
                .ok();
            self.to = self.thread.is_some().then_some(to);
        }
        // Without the thread (it could not start, or is gone), dropped here.
        if let Some(to) = &self.to {
            let _ = to.send(group);
        }
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        drop(self.to.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<'c> FileBatches<'c> {
    pub fn new(conn: &'c mut DbConn, ctx: FileContext<'c>) -> FileBatches<'c> {
        FileBatches {
            conn,
            ctx,
            open: Vec::with_capacity(GROUP),
            outcomes: Vec::with_capacity(GROUP),
            in_tx: false,
            holding: None,
            beside: None,
            spent: Spent::default(),
        }
    }

    /// On PostgreSQL, stores every other batch on `spare` (a connection
    /// idle in the pool), on a thread of its own, while this connection
    /// stores the next ([`beside`]). Without one, or on SQLite (one writer
    /// at a time), batches are stored on this connection alone.
    pub fn with_spare(mut self, spare: Option<PooledConn>) -> FileBatches<'c> {
        let spare = spare.filter(|s| matches!(**s, DbConn::Pg(_)) && matches!(self.conn, DbConn::Pg(_)));
        if let Some(conn) = spare {
            match Beside::start(conn, self.ctx.source, self.ctx.ids_new) {
                Ok(beside) => self.beside = Some(beside),
                Err(e) => tracing::warn!("inläsningen lagrar på en anslutning: ingen tråd för den andra ({e})"),
            }
        }
        self
    }

    /// Stores `batch` (in the open group on SQLite, committed with the
    /// group's last); `stored` hears of every batch committed.
    pub fn store(
        &mut self,
        batch: Vec<IngestEvent>,
        stored: &mut dyn FnMut(BatchOutcome),
    ) -> Result<(), StoreBatchError> {
        if matches!(self.conn, DbConn::Pg(_)) {
            return self.store_pg(batch, stored);
        }
        let outcome = match self.store_in_group(&batch) {
            Ok(outcome) => outcome,
            Err(Abort::Conflict(mut c)) => {
                self.rollback();
                c.sort_by_key(|c| c.line);
                return Err(StoreBatchError::Conflict(c));
            }
            Err(e) => {
                self.rollback();
                self.open.push(batch);
                return self.after_failure(e, stored);
            }
        };
        self.open.push(batch);
        self.outcomes.push(outcome);
        match self.open.len() < GROUP {
            true => Ok(()),
            false => self.commit(stored, false),
        }
    }

    /// PostgreSQL: `batch` in a transaction of its own, on the connection
    /// beside when it is idle, else on this one while it stores its own.
    fn store_pg(
        &mut self,
        batch: Vec<IngestEvent>,
        stored: &mut dyn FnMut(BatchOutcome),
    ) -> Result<(), StoreBatchError> {
        let Some(beside) = self.beside.as_mut() else {
            stored(store_with(self.conn, &batch, &mut self.ctx)?);
            return Ok(());
        };
        match beside.shares(&batch) {
            None => {}
            // A case of both: this one waits for that one.
            Some(true) => {
                if let Some(earlier) = beside.wait() {
                    stored(earlier?);
                }
            }
            Some(false) => {
                let here = store_with(self.conn, &batch, &mut self.ctx);
                // In the file's order; a refusal before a failure, so that
                // what was committed is taken back; else the first failure.
                let earlier = beside.wait().map_or(Ok(()), |r| r.map(&mut *stored));
                return match (earlier, here.map(stored)) {
                    (Err(e @ StoreBatchError::Conflict(_)), _) | (_, Err(e @ StoreBatchError::Conflict(_))) => Err(e),
                    (earlier, here) => earlier.and(here),
                };
            }
        }
        beside.send(batch);
        Ok(())
    }

    /// The batch beside, if one is being stored, waited for.
    fn settle(&mut self, stored: &mut dyn FnMut(BatchOutcome)) -> Result<(), StoreBatchError> {
        match self.beside.as_mut().and_then(Beside::wait) {
            Some(earlier) => earlier.map(stored),
            None => Ok(()),
        }
    }

    /// Commits the open group (on PostgreSQL: waits for the batch beside).
    pub fn finish(&mut self, stored: &mut dyn FnMut(BatchOutcome)) -> Result<(), StoreBatchError> {
        self.settle(stored)?;
        match self.in_tx {
            true => self.commit(stored, true),
            false => Ok(()),
        }
    }

    /// Rolls back the open group (nothing of it stored) and lends the
    /// connection, to take back what the import stored before it; the batch
    /// being stored beside is waited for, and `stored` hears of it when it
    /// was committed.
    pub fn rolled_back(&mut self, stored: &mut dyn FnMut(BatchOutcome)) -> &mut DbConn {
        let _ = self.settle(stored);
        self.rollback();
        self.conn
    }

    fn store_in_group(&mut self, batch: &[IngestEvent]) -> Result<BatchOutcome, Abort> {
        let (unique, in_batch_dups, conflicts) = dedupe(batch);
        if !conflicts.is_empty() {
            return Err(Abort::Conflict(conflicts));
        }
        if !self.in_tx {
            backend::begin_write(self.conn)?;
            self.in_tx = true;
            self.holding.get_or_insert_with(std::time::Instant::now);
        }
        match store_in_tx(self.conn, &unique, batch.len(), in_batch_dups, &mut self.ctx) {
            Err(Abort::NothingNew(batch_id)) => {
                diesel::delete(ingest_batches::table.find(batch_id)).execute(self.conn)?;
                Ok(BatchOutcome::nothing_new(batch.len()))
            }
            other => other,
        }
    }

    /// Commits the open group; lets go of the lock for a [`GAP`] when it
    /// was held [`HOLD`] and more is to come (not `last`).
    fn commit(&mut self, stored: &mut dyn FnMut(BatchOutcome), last: bool) -> Result<(), StoreBatchError> {
        self.in_tx = false;
        match backend::commit(self.conn) {
            Ok(()) => {
                self.spent.drop_beside(std::mem::take(&mut self.open));
                self.outcomes.drain(..).for_each(stored);
                if !last && self.holding.is_some_and(|since| since.elapsed() >= HOLD) {
                    std::thread::sleep(GAP);
                    self.holding = None;
                }
                Ok(())
            }
            Err(e) => {
                self.in_tx = true;
                self.rollback();
                self.after_failure(Abort::Db(e), stored)
            }
        }
    }

    /// After the open group rolled back: a unique id another writer took
    /// meanwhile, or a serialization failure, stores its batches one by
    /// one, looking up every id; anything else fails the import.
    fn after_failure(&mut self, e: Abort, stored: &mut dyn FnMut(BatchOutcome)) -> Result<(), StoreBatchError> {
        let batches = std::mem::take(&mut self.open);
        match e {
            Abort::Db(e) if super::retryable(&e) => {
                for batch in &batches {
                    stored(store_batch(self.conn, batch, self.ctx.source)?);
                }
                Ok(())
            }
            Abort::Db(e) => Err(e.into()),
            Abort::Conflict(c) => Err(StoreBatchError::Conflict(c)),
            // Taken out inside the group, never returned by it.
            Abort::NothingNew(_) => Err(diesel::result::Error::RollbackTransaction.into()),
        }
    }

    /// Rolls back the open transaction: what it recorded of the unit days
    /// is forgotten, and an id it took for new was perhaps not, so the rest
    /// of the file looks every id up.
    fn rollback(&mut self) {
        if self.in_tx {
            backend::rollback(self.conn);
            self.in_tx = false;
        }
        self.outcomes.clear();
        self.ctx.recorded.forget();
        self.ctx.ids_new = false;
    }
}

impl Drop for FileBatches<'_> {
    fn drop(&mut self) {
        self.rollback();
    }
}
