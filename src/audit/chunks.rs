//! The scan's chunks on every core: the scan's thread files chunks, worker
//! threads unpack and judge them (`crate::parallel::ordered_map_ahead`).
//! Judging needs no database (the rules on the events read); each chunk is
//! filed in its own transaction and its outcome taken in the order read. A
//! full scan on PostgreSQL files every other chunk on a second writing
//! connection on a thread of its own ([`Beside`]), the first chunk alone.
//! The chunks are read on a thread and connection of their own when the
//! pool has one to spare, else on the scan's thread between its
//! transactions; a filed chunk is dropped on a thread of its own.

use std::cell::RefCell;
use std::sync::mpsc;

use super::{Counts, Judged};
use crate::store::candidates::{Candidate, CandidateWalk};
use crate::store::{timelines, DbConn, PooledConn};

/// Chunks read and not yet filed (`parallel::ordered_map_ahead`): while
/// one is filed, the next is judged. Filing is the slow part of a first
/// full scan, so more only held more memory (each chunk of 5 000 cases
/// with its judgement, tens of MB); a full re-scan, which judges and files
/// little, took the same time with two and with three.
const CHUNKS_AHEAD: usize = 2;

/// A chunk's cases and their events, as read.
type Chunk = (Vec<Candidate>, timelines::Read);

/// Reads the walk's next chunk and its events, from the database's latest
/// commit, without the write lock (ingest goes on). An event that arrives
/// after the read has a newer `changed_at`: the next scan judges it.
fn read_chunk(conn: &mut DbConn, walk: &mut CandidateWalk) -> anyhow::Result<Option<Chunk>> {
    let Some(chunk) = walk.next_chunk(conn)? else {
        return Ok(None);
    };
    let ids: Vec<&str> = chunk.iter().map(|c| c.id.as_str()).collect();
    let read = if walk.whole() {
        timelines::read_run(conn, &ids)?
    } else {
        timelines::read(conn, &ids)?
    };
    Ok(Some((chunk, read)))
}

/// Where the chunks come from: read on the scan's thread, or received from
/// the reading thread (which holds one chunk read ahead of what the
/// workers were given).
enum Source {
    Here(CandidateWalk),
    Thread(mpsc::Receiver<anyhow::Result<Option<Chunk>>>),
}

impl Source {
    /// Reading on `reader` on a thread of `scope`, or here without one. The
    /// thread ends at the walk's end or error, or when the scan stops
    /// taking chunks (the receiver dropped).
    fn start<'s>(scope: &'s std::thread::Scope<'s, '_>, reader: Option<PooledConn>, mut walk: CandidateWalk) -> Source {
        let Some(mut reader) = reader else {
            return Source::Here(walk);
        };
        // Handed over when asked for: the thread holds the one chunk it read
        // ahead, none queued.
        let (read, read_rx) = mpsc::sync_channel(0);
        scope.spawn(move || loop {
            let next = read_chunk(&mut reader, &mut walk);
            let more = matches!(next, Ok(Some(_)));
            if read.send(next).is_err() || !more {
                // It read the whole county: its cache goes back before the
                // connection goes back to the pool.
                crate::store::bulk::release_cache(&mut reader);
                return;
            }
        });
        Source::Thread(read_rx)
    }

    /// The next chunk: read here on `conn`, or from the reading thread.
    fn next(&mut self, conn: &mut DbConn) -> anyhow::Result<Option<Chunk>> {
        match self {
            Source::Here(walk) => read_chunk(conn, walk),
            // Asked again only while the thread has not said it ended.
            Source::Thread(rx) => rx
                .recv()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("läsningen av ärendena avbröts"))),
        }
    }
}

/// PostgreSQL, a full scan: a second connection that files every other
/// chunk on a thread of its own while the scan's thread files the next.
/// The server took turns with the scan's one writing connection: a first
/// full scan of 100 000 cases kept the two cores a third idle. Chunks hold
/// other cases, so the two transactions lock no row in common but the
/// run's: its `days_owed` mark is set by the first chunk whose day counts
/// move (the first chunk, filed alone, in a first scan), as the last
/// statement of its transaction, so a chunk that sets it too beside it
/// waits for that commit, never in a cycle.
struct Beside {
    to: Option<mpsc::Sender<(Vec<Candidate>, Judged)>>,
    from: mpsc::Receiver<Filed>,
    busy: bool,
}

/// A chunk filed, or why not, with what its filing counted.
type Filed = (Vec<Candidate>, anyhow::Result<Judged>, Counts);

impl Beside {
    fn start<'s, F>(scope: &'s std::thread::Scope<'s, '_>, conn: Option<PooledConn>, file: &'s F) -> Option<Beside>
    where
        F: Fn(&mut DbConn, &[Candidate], &mut Judged, &mut Counts) -> anyhow::Result<()> + Sync,
    {
        let mut conn = conn?;
        let (to, chunks) = mpsc::channel::<(Vec<Candidate>, Judged)>();
        let (done, from) = mpsc::channel();
        scope.spawn(move || {
            for (chunk, mut judged) in chunks {
                let mut counts = Counts::default();
                let filed = file(&mut conn, &chunk, &mut judged, &mut counts).map(|()| judged);
                if done.send((chunk, filed, counts)).is_err() {
                    return;
                }
            }
        });
        Some(Beside {
            to: Some(to),
            from,
            busy: false,
        })
    }

    /// The chunk it was filing, once committed or rolled back.
    fn wait(&mut self) -> Option<Filed> {
        if !std::mem::take(&mut self.busy) {
            return None;
        }
        Some(self.from.recv().unwrap_or_else(|_| {
            let gone = anyhow::anyhow!("granskningens andra skrivande anslutning avbröts");
            (Vec::new(), Err(gone), Counts::default())
        }))
    }
}

impl Counts {
    fn absorb(&mut self, other: Counts) {
        self.cases_evaluated += other.cases_evaluated;
        self.findings += other.findings;
        self.filed += other.filed;
        self.updated += other.updated;
        self.withdrawn += other.withdrawn;
        self.unmailed += other.unmailed;
        self.cases_noted += other.cases_noted;
        for (unit, n) in other.unmailed_by_unit {
            *self.unmailed_by_unit.entry(unit).or_default() += n;
        }
    }
}

/// The chunks' filings, taken in the order read: a committed chunk is
/// counted and handed on to be dropped; a failure stops the walk.
struct Settled<'f> {
    spent: mpsc::SyncSender<(Vec<Candidate>, Judged)>,
    chunk_no: usize,
    failed: &'f RefCell<Option<anyhow::Error>>,
}

impl Settled<'_> {
    fn take(&mut self, (chunk, result, n): Filed, counts: &mut Counts) -> bool {
        match result {
            Ok(judged) => {
                counts.absorb(n);
                self.chunk_no += 1;
                fault_injection(self.chunk_no);
                let _ = self.spent.send((chunk, judged));
                true
            }
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                false
            }
        }
    }
}

/// Walks the candidates a chunk at a time: reads each chunk's events (on
/// `reader`, a second connection, on a thread of its own; on `conn`
/// between the filings without one), `judge`s them on the workers,
/// `file`s each judgement here in the chunks' order (every other one on
/// `beside`, a third connection, when there is one: [`Beside`]), then
/// hands each committed chunk, in the chunks' order, to `filed` on a
/// thread of its own, which drops it. The reading took a twelfth of the
/// writing thread of a first full scan, the dropping of filed chunks
/// (allocated on the judging threads) a thirtieth. Memory holds the few
/// chunks read ahead (`crate::parallel`). An error reading stops the walk
/// after the chunks already read are filed; an error judging or filing
/// stops it at once, the chunks read ahead dropped unfiled (a chunk not
/// filed is judged by the next scan; one filed beside meanwhile is kept and
/// counted). A panic in `judge` fails the scan as it did on one thread.
/// A walk listed whole in one chunk, with no second connection, is
/// [`at_once`], on this thread alone.
pub(super) fn pipelined<F>(
    conn: &mut DbConn,
    (reader, beside): (Option<PooledConn>, Option<PooledConn>),
    walk: CandidateWalk,
    judge: impl Fn(&[Candidate], timelines::Read) -> anyhow::Result<Judged> + Sync,
    (file, mut filed): (F, impl FnMut(Judged) + Send),
    counts: &mut Counts,
) -> anyhow::Result<()>
where
    F: Fn(&mut DbConn, &[Candidate], &mut Judged, &mut Counts) -> anyhow::Result<()> + Sync,
{
    if reader.is_none() && beside.is_none() && walk.in_one_chunk() {
        return at_once(conn, walk, judge, (file, filed), counts);
    }
    std::thread::scope(|s| {
        // Handed over, not queued: memory holds no more filed chunks than
        // the one being summed and dropped.
        let (spent, spent_rx) = mpsc::sync_channel::<(Vec<Candidate>, Judged)>(0);
        s.spawn(move || spent_rx.into_iter().for_each(|(_, judged)| filed(judged)));
        let mut source = Source::start(s, reader, walk);
        let mut beside = Beside::start(s, beside, &file);
        // The source and the sink both run on this thread, one at a time.
        let conn = RefCell::new(conn);
        let failed: RefCell<Option<anyhow::Error>> = RefCell::new(None);
        let mut settled = Settled {
            spent,
            chunk_no: 0,
            failed: &failed,
        };
        crate::parallel::ordered_map_ahead(
            CHUNKS_AHEAD,
            || {
                source.next(&mut conn.borrow_mut()).unwrap_or_else(|e| {
                    failed.borrow_mut().get_or_insert(e);
                    None
                })
            },
            |(chunk, read): Chunk| {
                let judged = judge(&chunk, read);
                (chunk, judged)
            },
            |(chunk, judged)| {
                // The first chunk alone: it most often sets the run's
                // `days_owed` mark (a first scan's), which the next would
                // wait for.
                let idle = beside.as_mut().filter(|b| !b.busy && settled.chunk_no > 0);
                let here = match (judged, idle) {
                    (Ok(judged), Some(b)) => {
                        b.busy = true;
                        return b.to.as_ref().is_some_and(|to| to.send((chunk, judged)).is_ok());
                    }
                    (Ok(mut judged), None) => {
                        let mut n = Counts::default();
                        let here = file(&mut conn.borrow_mut(), &chunk, &mut judged, &mut n).map(|()| judged);
                        (chunk, here, n)
                    }
                    (Err(e), _) => (chunk, Err(e), Counts::default()),
                };
                // The chunk beside came first.
                let earlier = beside
                    .as_mut()
                    .and_then(Beside::wait)
                    .is_none_or(|f| settled.take(f, counts));
                settled.take(here, counts) && earlier
            },
        );
        // The chunk beside, if one is being filed, ends the walk with it;
        // then the threads end as their channels close, and the scope waits.
        if let Some(f) = beside.as_mut().and_then(Beside::wait) {
            settled.take(f, counts);
        }
        drop(beside);
        drop(source);
        drop(settled);
        match failed.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

/// [`pipelined`] for a walk listed whole in one chunk (an idle scan's few
/// due cases, a day's feed): read, judged, filed and dropped on the
/// scan's thread. One chunk leaves the threads nothing to overlap — one
/// worker judged it while this thread waited — and starting them (a
/// dropping thread and a worker per core, each with its allocator's heap)
/// cost an idle scan more than its rules.
fn at_once<F>(
    conn: &mut DbConn,
    mut walk: CandidateWalk,
    judge: impl Fn(&[Candidate], timelines::Read) -> anyhow::Result<Judged>,
    (file, mut filed): (F, impl FnMut(Judged)),
    counts: &mut Counts,
) -> anyhow::Result<()>
where
    F: Fn(&mut DbConn, &[Candidate], &mut Judged, &mut Counts) -> anyhow::Result<()>,
{
    let Some((chunk, read)) = read_chunk(conn, &mut walk)? else {
        return Ok(());
    };
    let mut judged = judge(&chunk, read)?;
    let mut n = Counts::default();
    file(conn, &chunk, &mut judged, &mut n)?;
    counts.absorb(n);
    fault_injection(1);
    filed(judged);
    Ok(())
}

/// For the crash tests: `SVU_VAKT_FAULT_ABORT_AFTER_CHUNKS=N` kills the
/// process right after the N-th chunk's commit is taken, as a power cut
/// would (on PostgreSQL with a chunk beside, the next may be committed too:
/// at least N are).
/// Only in a build with the `fault-injection` feature, which `cargo test`
/// turns on and a release build does not have (Cargo.toml).
#[cfg(feature = "fault-injection")]
fn fault_injection(chunk_no: usize) {
    if let Ok(n) = std::env::var("SVU_VAKT_FAULT_ABORT_AFTER_CHUNKS") {
        if n.parse() == Ok(chunk_no) {
            eprintln!("fault injection: aborting after chunk {chunk_no}");
            std::process::abort();
        }
    }
}

/// Without the `fault-injection` feature no environment variable can abort a scan.
#[cfg(not(feature = "fault-injection"))]
fn fault_injection(_chunk_no: usize) {}
