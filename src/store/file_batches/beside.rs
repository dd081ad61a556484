//! PostgreSQL: a file's batches on two connections at once. Stored one
//! after the other, the import's thread and the server took turns and each
//! waited for the other (perf: two cores 40 % idle through an import); a
//! second connection on a thread of its own stores every other batch while
//! the import's own stores the next. Each batch keeps its transaction and
//! its cases' locks in id order; two batches that share a case are never
//! stored at once (both would make a new case and the later would fail on
//! its key and store its batch again), and the outcomes are handed on in
//! the file's order.

use std::collections::HashSet;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::domain::IngestEvent;
use crate::store::events::{store_with, BatchOutcome, FileContext, StoreBatchError};
use crate::store::PooledConn;

type Stored = Result<BatchOutcome, StoreBatchError>;

pub(super) struct Beside {
    to: Option<mpsc::Sender<Vec<IngestEvent>>>,
    from: mpsc::Receiver<Stored>,
    thread: Option<JoinHandle<()>>,
    /// The cases of the batch it is storing, while it stores one.
    busy: Option<HashSet<String>>,
}

impl Beside {
    /// Starts the thread on `conn`; `ids_new` as the file's pass one found.
    pub(super) fn start(mut conn: PooledConn, source: &str, ids_new: bool) -> std::io::Result<Beside> {
        let (to, jobs) = mpsc::channel::<Vec<IngestEvent>>();
        let (done, from) = mpsc::channel();
        let source = source.to_string();
        let thread = std::thread::Builder::new().name("svu-lagring".into()).spawn(move || {
            let mut ctx = FileContext::new(&source);
            ctx.ids_new = ids_new;
            for batch in jobs {
                if done.send(store_with(&mut conn, &batch, &mut ctx)).is_err() {
                    return;
                }
            }
        })?;
        Ok(Beside {
            to: Some(to),
            from,
            thread: Some(thread),
            busy: None,
        })
    }

    /// Whether the batch it is storing shares a case with `batch`; `None`
    /// when it stores none.
    pub(super) fn shares(&self, batch: &[IngestEvent]) -> Option<bool> {
        let busy = self.busy.as_ref()?;
        Some(cases(batch).any(|c| busy.contains(c)))
    }

    /// Hands it `batch` (it must be idle: [`Beside::wait`] first).
    pub(super) fn send(&mut self, batch: Vec<IngestEvent>) {
        debug_assert!(self.busy.is_none());
        self.busy = Some(cases(&batch).map(str::to_string).collect());
        if let Some(to) = &self.to {
            // A thread that is gone shows in `wait`.
            let _ = to.send(batch);
        }
    }

    /// The outcome of the batch it was storing, once committed or rolled
    /// back; `None` when it stored none. A thread that panicked fails the
    /// import as a database failure does: what was committed stays and a
    /// re-run stores the rest (its connection, left in a transaction, is
    /// not taken back into the pool).
    pub(super) fn wait(&mut self) -> Option<Stored> {
        self.busy.take()?;
        match self.from.recv() {
            Ok(stored) => Some(stored),
            Err(_) => {
                self.end();
                Some(Err(diesel::result::Error::QueryBuilderError(
                    "lagringstråden för inläsningen avbröts".into(),
                )
                .into()))
            }
        }
    }

    /// Ends the thread after the batch it stores.
    fn end(&mut self) {
        self.to = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("lagringstråden för inläsningen avbröts (panik)");
            }
        }
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.end();
    }
}

fn cases(batch: &[IngestEvent]) -> impl Iterator<Item = &str> {
    batch.iter().filter_map(|ev| ev.event.case.as_ref()).map(|c| c.as_str())
}
