//! Importing an events file, all or nothing: used by `svu-vakt import` and
//! by the drop folder (`feed`).
//!
//! Pass one reads the file as a stream, validates every line and compares
//! every id with what is stored (none when no event is stored at all): a
//! bad line or a conflicting id anywhere stores nothing. Pass two stores
//! it in batches of 10 000 lines, sorted by case first when the file is
//! out of case order (`sorted`), five batches to a write transaction on
//! SQLite (memory holds those batches and the few parsed ahead, never the
//! file; the feed waits for one transaction, never for the length of a
//! file). Should a conflict still surface there (an id repeated with other
//! content further apart in the file than one batch, or stored by another
//! writer between the passes or, into a database that held no event,
//! during pass one), the batches this import stored are removed again. A crash or a database failure between batches
//! leaves whole batches (never taken back: another sender may have been
//! told they are stored); a re-run stores only what is missing.

use std::path::Path;

use super::csv_mapping::CsvMapping;
use super::lines::{read_line_capped, LineCap, NumberedLine, Tell, MAX_LINE_BYTES};
use super::sorted::{Place, Runs, Sorter};
use super::{IngestError, IngestEvent};
use crate::domain::ingested::Conflict;
use crate::domain::{FieldError, FieldErrors, PatientHasher};
use crate::store::events::{BatchOutcome, FileContext, StoreBatchError};
use crate::store::file_batches::FileBatches;
use crate::store::{DbConn, Pool};

pub const IMPORT_BATCH: usize = 10_000;

/// A file that stored this many events gets fresh planner statistics
/// (PostgreSQL); a drop folder's small files leave them to autovacuum.
const ANALYZE_AFTER: usize = 50_000;

/// The largest file read whole as one JSON array; larger exports are JSON
/// Lines, which are read a batch at a time.
pub const MAX_ARRAY_BYTES: u64 = 256 << 20;

/// Why a file was not imported. Nothing of it is stored in any case.
#[derive(Debug)]
pub enum FileError {
    /// Lines that are not valid events (the first [`FieldErrors::LISTED`]
    /// kept, all counted: a file of a million bad lines is reported in a
    /// page, not a gigabyte).
    Invalid(FieldErrors),
    /// Event ids stored before with other content: the first
    /// [`FieldErrors::LISTED`], and how many there were in all.
    Conflict(Vec<Conflict>, usize),
    /// The file could not be read, or the database failed.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for FileError {
    fn from(e: anyhow::Error) -> FileError {
        FileError::Failed(e)
    }
}

/// Imports the events file at `path` (JSON Lines or a JSON array; CSV with
/// `mapping`), its batches marked with `source`.
pub fn import_events(
    conn: &mut DbConn,
    pool: Option<&Pool>,
    hasher: &PatientHasher,
    path: &Path,
    mapping: Option<&CsvMapping>,
    source: &str,
) -> Result<BatchOutcome, FileError> {
    use crate::store::bulk::{set_bulk_cache, Checkpoints};
    set_bulk_cache(conn, true).map_err(|e| FileError::Failed(e.into()))?;
    let checkpoints = Checkpoints::beside(conn);
    let result = import_events_in((conn, pool), hasher, path, mapping, source);
    drop(checkpoints);
    let _ = set_bulk_cache(conn, false);
    if result.as_ref().is_ok_and(|o| o.stored >= ANALYZE_AFTER) {
        // A failure leaves the statistics to autovacuum: nothing is lost.
        if let Err(e) = crate::store::bulk::analyze_after_load(conn) {
            tracing::warn!("statistiken efter inläsningen kunde inte uppdateras: {e}");
        }
    }
    result
}

/// What pass one learnt of a valid file with no conflict.
struct PassOne {
    /// Its lines' places sorted by case, when it is JSON Lines out of case
    /// order (events without a case may stand anywhere).
    runs: Option<Runs>,
    /// Some of its ids are stored already.
    any_stored: bool,
}

/// Pass one: every line validated, every id compared with what is stored
/// (when anything is), each line's place and case handed to the sort.
fn pass_one(
    conn: &mut DbConn,
    hasher: &PatientHasher,
    path: &Path,
    mapping: Option<&CsvMapping>,
) -> Result<PassOne, FileError> {
    let mut errors = FieldErrors::default();
    let mut conflicts = Vec::new();
    let mut conflicts_total = 0;
    let mut order = CaseOrder::default();
    // Only JSON Lines are sorted (CSV exports are stored as they come).
    let mut sorter = mapping.is_none().then(Sorter::default);
    let mut any_stored = false;
    // Into a database with no event yet (a region's first load of its
    // history) no id can conflict and none is looked up: an id another
    // writer stores meanwhile is found in pass two, as one stored between
    // the passes is (the batches' unique key): with other content the
    // import is refused and what it stored removed; the same is a duplicate.
    let compare = !crate::store::events::none_stored(conn).map_err(|e| FileError::Failed(e.into()))?;
    each_chunk(path, mapping, hasher, None, &mut |chunk, places| {
        match chunk {
            Err(e) => errors.append(e),
            Ok(events) if errors.is_empty() => {
                order.see(&events);
                match (&mut sorter, places) {
                    (Some(s), Some(places)) if places.len() == events.len() => {
                        for (ev, place) in events.iter().zip(places) {
                            s.push(ev.event.case.as_ref().map(|c| c.as_str()), *place)?;
                        }
                    }
                    // A JSON array: stored as it comes.
                    _ => sorter = None,
                }
                if !compare {
                    return Ok(());
                }
                let (found, stored) = crate::store::events::compare_with_stored(conn, &events)?;
                any_stored |= stored > 0;
                conflicts_total += found.len();
                let room = FieldErrors::LISTED.saturating_sub(conflicts.len());
                conflicts.extend(found.into_iter().take(room));
            }
            Ok(_) => {}
        }
        Ok(())
    })?;
    if !errors.is_empty() {
        return Err(FileError::Invalid(errors));
    }
    if !conflicts.is_empty() {
        return Err(FileError::Conflict(conflicts, conflicts_total));
    }
    let runs = match (sorter, order.sorted) {
        (Some(s), false) => Some(s.finish()?),
        _ => None,
    };
    Ok(PassOne { runs, any_stored })
}

fn import_events_in(
    (conn, pool): (&mut DbConn, Option<&Pool>),
    hasher: &PatientHasher,
    path: &Path,
    mapping: Option<&CsvMapping>,
    source: &str,
) -> Result<BatchOutcome, FileError> {
    let PassOne { runs, any_stored } = pass_one(conn, hasher, path, mapping)?;
    // PostgreSQL stores every other batch on a second connection when the
    // pool has one idle, taken only now that the file is known good.
    let spare = match conn {
        DbConn::Pg(_) => pool.and_then(Pool::try_get),
        DbConn::Sqlite(_) => None,
    };
    let mut storing = Storing {
        writer: FileBatches::new(
            conn,
            match any_stored {
                true => FileContext::new(source),
                false => FileContext::of_new_ids(source),
            },
        )
        .with_spare(spare),
        total: BatchOutcome::default(),
        stored_batches: Vec::new(),
        refused: None,
    };
    let result = each_chunk(path, mapping, hasher, runs.as_ref(), &mut |chunk, _| {
        storing.take(chunk)
    })
    .and_then(|()| storing.finish());
    if let Err(e) = result {
        let Storing {
            mut writer,
            mut stored_batches,
            mut total,
            refused,
        } = storing;
        // The open group is rolled back whichever way.
        let conn = writer.rolled_back(&mut counted(&mut total, &mut stored_batches));
        // A database failure leaves whole batches: a re-run stores the rest,
        // and what was stored may already have been acknowledged to another
        // sender as a duplicate. Only a refusal takes this import back.
        if refused.is_none() {
            return Err(FileError::Failed(e.context(format!(
                "avbruten efter {} batcher; kör igen för att spara resten",
                stored_batches.len()
            ))));
        }
        crate::store::events::remove_batches(conn, &stored_batches).map_err(|e| FileError::Failed(e.into()))?;
        return Err(match refused {
            Some(IngestError::Invalid(errors)) => FileError::Invalid(errors),
            // Found in pass two: the batch it stopped in, counted, its
            // first ones listed.
            Some(IngestError::Conflict(mut c)) => {
                let total = c.len();
                c.truncate(FieldErrors::LISTED);
                FileError::Conflict(c, total)
            }
            _ => FileError::Failed(e.context(format!(
                "inget sparades (de {} batcher som hann sparas är borttagna)",
                stored_batches.len()
            ))),
        });
    }
    Ok(storing.total)
}

type Chunk = Result<Vec<IngestEvent>, FieldErrors>;

/// Takes each chunk of a file, with its lines' places when it has them.
type ChunkSink<'a> = dyn FnMut(Chunk, Option<&[Place]>) -> anyhow::Result<()> + 'a;

/// Whether a file's events come grouped by case in case id order (events
/// without a case may stand anywhere).
struct CaseOrder {
    last: Option<String>,
    sorted: bool,
}

impl Default for CaseOrder {
    fn default() -> CaseOrder {
        CaseOrder {
            last: None,
            sorted: true,
        }
    }
}

impl CaseOrder {
    fn see(&mut self, events: &[IngestEvent]) {
        for case in events.iter().filter_map(|ev| ev.event.case.as_ref()) {
            if !self.sorted {
                return;
            }
            match &self.last {
                Some(last) if last.as_str() > case.as_str() => self.sorted = false,
                Some(last) if last.as_str() == case.as_str() => {}
                _ => self.last = Some(case.as_str().to_string()),
            }
        }
    }
}

/// Adds each committed batch's counts to `total` and its id to `ids`.
fn counted<'a>(total: &'a mut BatchOutcome, ids: &'a mut Vec<i64>) -> impl FnMut(BatchOutcome) + 'a {
    |o| {
        ids.extend(o.batch);
        total.add(o);
    }
}

/// Pass two: the parsed batches stored as they come
/// (`store::file_batches`), each its own ingest batch.
struct Storing<'c> {
    writer: FileBatches<'c>,
    total: BatchOutcome,
    /// The batches committed so far, to take back after a refusal.
    stored_batches: Vec<i64>,
    /// Why the import stopped, when the file itself was at fault.
    refused: Option<IngestError>,
}

impl Storing<'_> {
    fn take(&mut self, chunk: Chunk) -> anyhow::Result<()> {
        let events = match chunk {
            Ok(events) => events,
            Err(e) => {
                self.refused = Some(IngestError::Invalid(e));
                anyhow::bail!("avbruten")
            }
        };
        let result = self
            .writer
            .store(events, &mut counted(&mut self.total, &mut self.stored_batches));
        self.outcome(result)
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        let result = self
            .writer
            .finish(&mut counted(&mut self.total, &mut self.stored_batches));
        self.outcome(result)
    }

    fn outcome(&mut self, result: Result<(), StoreBatchError>) -> anyhow::Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(StoreBatchError::Conflict(c)) => {
                self.refused = Some(IngestError::Conflict(c));
                anyhow::bail!("avbruten")
            }
            Err(StoreBatchError::Db(e)) => Err(e.into()),
        }
    }
}

/// The file's events, validated, `IMPORT_BATCH` at a time: JSON Lines (a
/// file holding one JSON array is read whole), or CSV through `mapping`.
/// JSON Lines read in file order come with each line's place.
fn each_chunk(
    path: &Path,
    mapping: Option<&CsvMapping>,
    hasher: &PatientHasher,
    sorted: Option<&Runs>,
    f: &mut ChunkSink<'_>,
) -> anyhow::Result<()> {
    match mapping {
        Some(m) => {
            let file =
                std::fs::File::open(path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
            m.for_each_chunk(
                LineCap::new(std::io::BufReader::with_capacity(1 << 20, file)),
                hasher,
                IMPORT_BATCH,
                &mut |chunk| f(chunk.map_err(FieldErrors::from), None),
            )
        }
        None => parsed_ahead(path, sorted, hasher, f),
    }
}

/// JSON Lines batches read on one thread and parsed on the workers of
/// `crate::parallel`, handed to `f` in file order: the caller stores one
/// batch while the next ones are read and validated.
fn parsed_ahead(
    path: &Path,
    sorted: Option<&Runs>,
    hasher: &PatientHasher,
    f: &mut ChunkSink<'_>,
) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Lines>(2);
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let send = &mut |lines| tx.send(lines).map_err(|_| anyhow::anyhow!("avbruten"));
            match sorted {
                Some(runs) => runs.for_each_batch(path, send),
                None => for_each_batch(path, send),
            }
        });
        let mut stored = Ok(());
        // The storing thread takes each batch as it comes, inside its open
        // group: the few read ahead by default suffice.
        crate::parallel::ordered_map(
            move || rx.recv().ok(),
            |lines: Lines| match lines {
                Ok(b) => (super::parse_lines(&b.lines, hasher), b.places),
                Err(e) => (Err(e), None),
            },
            |(chunk, places)| match f(chunk, places.as_deref()) {
                Ok(()) => true,
                Err(e) => {
                    stored = Err(e);
                    false
                }
            },
        );
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("läsningen av filen avbröts")));
        // The caller's error first: the reader then only saw the channel close.
        stored.and(read)
    })
}

/// Numbered lines and, when read in file order from JSON Lines, where each
/// of them is in the file (for the sort).
pub(super) struct LineBatch {
    pub lines: Vec<NumberedLine>,
    pub places: Option<Vec<Place>>,
}

impl LineBatch {
    pub fn unplaced(lines: Vec<NumberedLine>) -> LineBatch {
        LineBatch { lines, places: None }
    }
}

pub(super) type Lines = Result<LineBatch, FieldErrors>;

/// Numbered lines of a JSON Lines file, `IMPORT_BATCH` at a time; a file
/// holding one JSON array is read whole. A line that is not UTF-8 or is
/// longer than [`MAX_LINE_BYTES`] is given as an error naming it.
pub(super) fn for_each_batch(path: &Path, f: &mut dyn FnMut(Lines) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
    let mut reader = Tell {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        pos: 0,
    };
    // A JSON array (often on one long line) is read whole, before the line cap.
    {
        use std::io::BufRead as _;
        let head = reader
            .fill_buf()
            .map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return array(path, f);
        }
    }
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut places = Vec::with_capacity(IMPORT_BATCH);
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        let start = reader.pos;
        let Some(fits) = read_line_capped(&mut reader, &mut buf, MAX_LINE_BYTES)
            .map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?
        else {
            break;
        };
        n += 1;
        if !fits {
            f(Err(FieldError::new(
                n,
                "rad",
                &format!("är längre än {MAX_LINE_BYTES} byte"),
            )
            .into()))?;
            continue;
        }
        let (bytes, offset) = match (n, buf.strip_prefix(b"\xEF\xBB\xBF")) {
            (1, Some(rest)) => (rest, start + 3),
            _ => (&buf[..], start),
        };
        let Ok(line) = std::str::from_utf8(bytes) else {
            f(Err(FieldError::new(n, "rad", "är inte giltig UTF-8").into()))?;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        places.push(Place {
            line: n as u64,
            offset,
            len: bytes.len() as u32,
        });
        batch.push((n, line.to_string()));
        if batch.len() == IMPORT_BATCH {
            f(Ok(LineBatch {
                lines: std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH)),
                places: Some(std::mem::replace(&mut places, Vec::with_capacity(IMPORT_BATCH))),
            }))?;
        }
    }
    if !batch.is_empty() {
        f(Ok(LineBatch {
            lines: batch,
            places: Some(places),
        }))?;
    }
    Ok(())
}

/// A file holding one JSON array, read whole (at most [`MAX_ARRAY_BYTES`]).
fn array(path: &Path, f: &mut dyn FnMut(Lines) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if size > MAX_ARRAY_BYTES {
        return f(Err(FieldErrors::from(FieldError::new(
            1,
            "fil",
            &format!(
                "är en JSON-array på {} MiB; en array läses hel och får vara högst {} MiB: skicka JSON Lines (en händelse per rad) i stället",
                size >> 20,
                MAX_ARRAY_BYTES >> 20
            ),
        ))));
    }
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
    match super::json_objects(text.trim_start_matches('\u{feff}')) {
        Ok(lines) => lines
            .chunks(IMPORT_BATCH)
            .try_for_each(|c| f(Ok(LineBatch::unplaced(c.to_vec())))),
        Err(errors) => f(Err(errors.into())),
    }
}
