//! The scan's chunks on every core: the scan's thread files chunks, worker
//! threads unpack and judge them (`crate::parallel::ordered_map_ahead`).
//! Judging needs no database (the rules on the events read), so the writing
//! connection stays on the scan's thread; the chunks are filed in the order
//! they were read, each in its own transaction, as on one thread. The
//! chunks are read on a thread and connection of their own when the pool
//! has one to spare, else on the scan's thread between its transactions;
//! a filed chunk is dropped on a thread of its own.

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
    let read = timelines::read(conn, &ids)?;
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
}

/// Walks the candidates a chunk at a time: reads each chunk's events (on
/// `reader`, a second connection, on a thread of its own; on `conn`
/// between the filings without one), `judge`s them on the workers,
/// `file`s each judgement here in the chunks' order, then hands it to
/// `filed` on a thread of its own, which drops it. The reading took a
/// twelfth of the writing thread of a first full scan, the dropping of
/// filed chunks (allocated on the judging threads) a thirtieth. Memory
/// holds the few chunks read ahead (`crate::parallel`). An error reading
/// stops the walk after the chunks already read are filed; an error
/// judging or filing stops it at once, the chunks read ahead dropped
/// unfiled (a chunk not filed is judged by the next scan). A panic in
/// `judge` fails the scan as it did on one thread.
pub(super) fn pipelined(
    conn: &mut DbConn,
    reader: Option<PooledConn>,
    walk: CandidateWalk,
    judge: impl Fn(&[Candidate], timelines::Read) -> anyhow::Result<Judged> + Sync,
    (mut file, mut filed): (
        impl FnMut(&mut DbConn, &[Candidate], &mut Judged, &mut Counts) -> anyhow::Result<()>,
        impl FnMut(Judged) + Send,
    ),
    counts: &mut Counts,
) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        // Handed over, not queued: memory holds no more filed chunks than
        // the one being summed and dropped.
        let (spent, spent_rx) = mpsc::sync_channel::<(Vec<Candidate>, Judged)>(0);
        s.spawn(move || spent_rx.into_iter().for_each(|(_, judged)| filed(judged)));
        let mut source = Source::start(s, reader, walk);
        // The source and the sink both run on this thread, one at a time.
        let conn = RefCell::new(conn);
        let failed: RefCell<Option<anyhow::Error>> = RefCell::new(None);
        let fail = |e: anyhow::Error| {
            failed.borrow_mut().get_or_insert(e);
        };
        let mut read_next = || -> anyhow::Result<Option<Chunk>> {
            match &mut source {
                Source::Here(walk) => read_chunk(&mut conn.borrow_mut(), walk),
                // Asked again only while the thread has not said it ended.
                Source::Thread(rx) => rx
                    .recv()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("läsningen av ärendena avbröts"))),
            }
        };
        let mut chunk_no = 0;
        crate::parallel::ordered_map_ahead(
            CHUNKS_AHEAD,
            || {
                read_next().unwrap_or_else(|e| {
                    fail(e);
                    None
                })
            },
            |(chunk, read): Chunk| {
                let judged = judge(&chunk, read);
                (chunk, judged)
            },
            |(chunk, judged)| {
                // Filed in a short write transaction of its own.
                let filed = judged.and_then(|mut j| {
                    file(&mut conn.borrow_mut(), &chunk, &mut j, counts)?;
                    Ok(j)
                });
                match filed {
                    Ok(j) => {
                        chunk_no += 1;
                        fault_injection(chunk_no);
                        let _ = spent.send((chunk, j));
                        true
                    }
                    Err(e) => {
                        fail(e);
                        false
                    }
                }
            },
        );
        // A reading thread still reading ahead, and the dropping thread,
        // end when their channels close; the scope waits for both.
        drop(source);
        drop(spent);
        match failed.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

/// For the crash tests: `SVU_VAKT_FAULT_ABORT_AFTER_CHUNKS=N` kills the
/// process right after the N-th chunk is committed, as a power cut would.
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
