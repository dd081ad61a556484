//! The scan's chunks on every core: the scan's thread reads each chunk's
//! events and files chunks; worker threads unpack and judge them
//! (`crate::parallel::ordered_map`). Judging needs no database (the rules
//! on the events read), so the connection stays on the scan's thread; the
//! chunks are filed in the order they were read, each in its own
//! transaction, as on one thread.

use std::cell::RefCell;

use super::{Counts, Judged};
use crate::store::candidates::{Candidate, CandidateWalk};
use crate::store::{timelines, DbConn};

/// Chunks read and not yet filed (`parallel::ordered_map_ahead`): while
/// one is filed, the next is judged. Filing is the slow part of a first
/// full scan, so more only held more memory (each chunk of 5 000 cases
/// with its judgement, tens of MB); a full re-scan, which judges and files
/// little, took the same time with two and with three.
const CHUNKS_AHEAD: usize = 2;

/// Walks the candidates a chunk at a time: reads each chunk's events,
/// `judge`s them on the workers, `file`s each judgement here in the
/// chunks' order. Memory holds the few chunks read ahead
/// (`crate::parallel`). An error reading stops the walk after the chunks
/// already read are filed; an error judging or filing stops it at once,
/// the chunks read ahead dropped unfiled (a chunk not filed is judged by
/// the next scan). A panic in `judge` fails the scan as it did on one thread.
pub(super) fn pipelined(
    conn: &mut DbConn,
    mut walk: CandidateWalk,
    judge: impl Fn(&[Candidate], timelines::Read) -> anyhow::Result<Judged> + Sync,
    mut file: impl FnMut(&mut DbConn, &[Candidate], Judged, &mut Counts) -> anyhow::Result<()>,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    // The source and the sink both run on this thread, one at a time.
    let conn = RefCell::new(conn);
    let failed: RefCell<Option<anyhow::Error>> = RefCell::new(None);
    let fail = |e: anyhow::Error| {
        failed.borrow_mut().get_or_insert(e);
    };
    let mut read_next = || -> anyhow::Result<Option<(Vec<Candidate>, timelines::Read)>> {
        let mut conn = conn.borrow_mut();
        let Some(chunk) = walk.next_chunk(&mut conn)? else {
            return Ok(None);
        };
        // Read from the database's latest commit, without the write lock
        // (ingest goes on). An event that arrives after the read has a
        // newer `changed_at`: the next scan judges it.
        let ids: Vec<&str> = chunk.iter().map(|c| c.id.as_str()).collect();
        let read = timelines::read(&mut conn, &ids)?;
        Ok(Some((chunk, read)))
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
        |(chunk, read): (Vec<Candidate>, timelines::Read)| {
            let judged = judge(&chunk, read);
            (chunk, judged)
        },
        |(chunk, judged)| {
            // Filed in a short write transaction of its own.
            match judged.and_then(|j| file(&mut conn.borrow_mut(), &chunk, j, counts)) {
                Ok(()) => {
                    chunk_no += 1;
                    fault_injection(chunk_no);
                    true
                }
                Err(e) => {
                    fail(e);
                    false
                }
            }
        },
    );
    match failed.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
