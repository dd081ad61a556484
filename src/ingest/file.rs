//! Importing an events file, all or nothing: used by `svu-vakt import` and
//! by the drop folder (`feed`).
//!
//! Pass one reads the file as a stream, validates every line and compares
//! every id with what is stored: a bad line or a conflicting id anywhere
//! stores nothing. Pass two stores it in batches of 10 000 lines (memory
//! holds one batch, never the file; the feed is never locked out for the
//! length of a file). Should a conflict still surface there (an id repeated
//! with other content further apart in the file than one batch, or stored
//! by another writer between the passes), the batches this import stored
//! are removed again. A crash or a database failure between batches
//! leaves whole batches (never taken back: another sender may have been
//! told they are stored); a re-run stores only what is missing.

use std::path::Path;

use super::csv_mapping::CsvMapping;
use super::{IngestError, IngestEvent};
use crate::domain::ingested::Conflict;
use crate::domain::{FieldError, FieldErrors, PatientHasher};
use crate::store::events::BatchOutcome;
use crate::store::DbConn;

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
    hasher: &PatientHasher,
    path: &Path,
    mapping: Option<&CsvMapping>,
    source: &str,
) -> Result<BatchOutcome, FileError> {
    crate::store::backend::set_bulk_cache(conn, true).map_err(|e| FileError::Failed(e.into()))?;
    let result = import_events_in(conn, hasher, path, mapping, source);
    let _ = crate::store::backend::set_bulk_cache(conn, false);
    if result.as_ref().is_ok_and(|o| o.stored >= ANALYZE_AFTER) {
        // A failure leaves the statistics to autovacuum: nothing is lost.
        if let Err(e) = crate::store::backend::analyze_after_load(conn) {
            tracing::warn!("statistiken efter inläsningen kunde inte uppdateras: {e}");
        }
    }
    result
}

fn import_events_in(
    conn: &mut DbConn,
    hasher: &PatientHasher,
    path: &Path,
    mapping: Option<&CsvMapping>,
    source: &str,
) -> Result<BatchOutcome, FileError> {
    let mut errors = FieldErrors::default();
    let mut conflicts = Vec::new();
    let mut conflicts_total = 0;
    each_chunk(path, mapping, hasher, &mut |chunk| {
        match chunk {
            Err(e) => errors.append(e),
            Ok(events) if errors.is_empty() => {
                let found = crate::store::events::conflicts_with_stored(conn, &events)?;
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
    let mut total = BatchOutcome::default();
    let mut stored_batches = Vec::new();
    let mut refused = None;
    let result = each_chunk(
        path,
        mapping,
        hasher,
        &mut |chunk| match crate::store::events::store_parsed(conn, chunk, source) {
            Ok(outcome) => {
                stored_batches.extend(outcome.batch);
                total.add(outcome);
                Ok(())
            }
            Err(IngestError::Db(e)) => Err(e),
            Err(e) => {
                refused = Some(e);
                anyhow::bail!("avbruten")
            }
        },
    );
    if let Err(e) = result {
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
    Ok(total)
}

type Chunk = Result<Vec<IngestEvent>, FieldErrors>;

/// The file's events, validated, `IMPORT_BATCH` at a time: JSON Lines (a
/// file holding one JSON array is read whole), or CSV through `mapping`.
fn each_chunk(
    path: &Path,
    mapping: Option<&CsvMapping>,
    hasher: &PatientHasher,
    f: &mut dyn FnMut(Chunk) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match mapping {
        Some(m) => {
            let file =
                std::fs::File::open(path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
            m.for_each_chunk(
                LineCap::new(std::io::BufReader::with_capacity(1 << 20, file)),
                hasher,
                IMPORT_BATCH,
                &mut |chunk| f(chunk.map_err(FieldErrors::from)),
            )
        }
        None => parsed_ahead(path, hasher, f),
    }
}

/// JSON Lines batches read on one thread and parsed on the workers of
/// `crate::parallel`, handed to `f` in file order: the caller stores one
/// batch while the next ones are read and validated.
fn parsed_ahead(
    path: &Path,
    hasher: &PatientHasher,
    f: &mut dyn FnMut(Chunk) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Lines>(1);
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            for_each_batch(path, &mut |lines| {
                tx.send(lines).map_err(|_| anyhow::anyhow!("avbruten"))
            })
        });
        let mut stored = Ok(());
        crate::parallel::ordered_map(
            move || rx.recv().ok(),
            |lines: Lines| lines.and_then(|l| super::parse_lines(&l, hasher)),
            |chunk| match f(chunk) {
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

type NumberedLine = (usize, String);

/// The longest line read: an event is well under a kilobyte; a longer line
/// is reported, never held in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One line into `buf` (without its line break), at most `cap` bytes kept:
/// `None` at the end of the input, `Some(false)` when the line was longer
/// (the rest is skipped).
fn read_line_capped(r: &mut impl std::io::BufRead, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if fits && buf.len() + part.len() <= cap {
            buf.extend_from_slice(part);
        } else {
            fits = false;
            buf.clear();
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(fits));
        }
    }
}

/// A line of a CSV export longer than [`MAX_LINE_BYTES`], by number: the
/// error [`LineCap`] stops the CSV reader with.
#[derive(Debug)]
pub struct LongLine(pub usize);

impl std::fmt::Display for LongLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rad {} är längre än {MAX_LINE_BYTES} byte", self.0)
    }
}

impl std::error::Error for LongLine {}

/// Passes a CSV export through with CRLF and lone CR line ends made LF,
/// failing with [`LongLine`] once a line runs past [`MAX_LINE_BYTES`]: the
/// CSV reader holds a whole record in memory, and a gigabyte without a line
/// break must not become one. (The CSV reader numbers the lines of a CRLF
/// or CR file wrongly; with LF it names the line an editor shows.)
pub struct LineCap<R> {
    inner: R,
    line: usize,
    run: usize,
    /// A `\r` that ended the last read: dropped if a `\n` follows, a line
    /// end of its own otherwise.
    pending_cr: bool,
    /// The second byte of a read into a one-byte buffer.
    spill: Option<u8>,
}

impl<R> LineCap<R> {
    pub fn new(inner: R) -> LineCap<R> {
        LineCap {
            inner,
            line: 1,
            run: 0,
            pending_cr: false,
            spill: None,
        }
    }
}

impl<R: std::io::Read> std::io::Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(b) = self.spill.take() {
            buf[0] = b;
            return Ok(1);
        }
        if buf.len() == 1 {
            // The line-end work below needs room for two bytes.
            let mut two = [0u8; 2];
            let n = self.read(&mut two)?;
            if n == 2 {
                self.spill = Some(two[1]);
            }
            buf[0] = two[0];
            return Ok(n.min(1));
        }
        loop {
            let held = usize::from(self.pending_cr);
            let n = self.inner.read(&mut buf[held..])?;
            if held == 1 {
                buf[0] = b'\r';
            }
            self.pending_cr = false;
            let total = held + n;
            if n == 0 {
                if held == 1 {
                    // A CR at the very end: a line end.
                    buf[0] = b'\n';
                    self.line += 1;
                    self.run = 0;
                }
                return Ok(total);
            }
            let mut kept = 0;
            for i in 0..total {
                let mut b = buf[i];
                if b == b'\r' {
                    if i + 1 == total {
                        self.pending_cr = true;
                        continue;
                    }
                    if buf[i + 1] == b'\n' {
                        continue;
                    }
                    b = b'\n';
                }
                if b == b'\n' {
                    self.line += 1;
                    self.run = 0;
                } else {
                    self.run += 1;
                    if self.run > MAX_LINE_BYTES {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            LongLine(self.line),
                        ));
                    }
                }
                buf[kept] = b;
                kept += 1;
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

type Lines = Result<Vec<NumberedLine>, FieldErrors>;

/// Numbered lines of a JSON Lines file, `IMPORT_BATCH` at a time; a file
/// holding one JSON array is read whole. A line that is not UTF-8 or is
/// longer than [`MAX_LINE_BYTES`] is given as an error naming it.
fn for_each_batch(path: &Path, f: &mut dyn FnMut(Lines) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    // A JSON array (often on one long line) is read whole, before the line cap.
    {
        use std::io::BufRead as _;
        let head = reader
            .fill_buf()
            .map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
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
            let text =
                std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
            return match super::json_objects(text.trim_start_matches('\u{feff}')) {
                Ok(lines) => lines.chunks(IMPORT_BATCH).try_for_each(|c| f(Ok(c.to_vec()))),
                Err(errors) => f(Err(errors.into())),
            };
        }
    }
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut buf = Vec::new();
    let mut n = 0;
    while let Some(fits) = read_line_capped(&mut reader, &mut buf, MAX_LINE_BYTES)
        .map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?
    {
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
        let bytes = if n == 1 {
            buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf)
        } else {
            &buf[..]
        };
        let Ok(line) = std::str::from_utf8(bytes) else {
            f(Err(FieldError::new(n, "rad", "är inte giltig UTF-8").into()))?;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        batch.push((n, line.to_string()));
        if batch.len() == IMPORT_BATCH {
            f(Ok(std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH))))?;
        }
    }
    if !batch.is_empty() {
        f(Ok(batch))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_skipped_and_the_next_read_whole() {
        let input = format!("kort\r\n{}\nnästa\nsista", "x".repeat(100));
        let mut r = std::io::BufReader::with_capacity(16, input.as_bytes());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(fits) = read_line_capped(&mut r, &mut buf, 50).unwrap() {
            got.push((fits, String::from_utf8(buf.clone()).unwrap()));
        }
        assert_eq!(
            got,
            vec![
                (true, "kort".to_string()),
                (false, String::new()),
                (true, "nästa".to_string()),
                (true, "sista".to_string())
            ]
        );
    }

    /// Reads through a reader that hands out one byte at a time, so that a
    /// `\r` and its `\n` fall in different reads.
    struct Trickle<'a>(&'a [u8]);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn crlf_and_a_lone_cr_become_lf_whatever_the_reads() {
        let input = b"a;b\r\nc\rd;e\r\n\r\nf\r";
        let expected = b"a;b\nc\nd;e\n\nf\n";
        for whole in [true, false] {
            let mut out = Vec::new();
            if whole {
                std::io::Read::read_to_end(&mut LineCap::new(&input[..]), &mut out).unwrap();
            } else {
                std::io::Read::read_to_end(&mut LineCap::new(Trickle(input)), &mut out).unwrap();
            }
            assert_eq!(out, expected, "whole reads: {whole}");
        }
        // A reader asking one byte at a time gets the same.
        let mut cap = LineCap::new(&input[..]);
        let mut out = Vec::new();
        let mut one = [0u8; 1];
        while std::io::Read::read(&mut cap, &mut one).unwrap() == 1 {
            out.push(one[0]);
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn an_old_mac_file_is_read_line_by_line_not_capped_as_one_line() {
        let rows = 2 * MAX_LINE_BYTES / 1000;
        let input = format!("{}\r", "x".repeat(1000)).repeat(rows);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut LineCap::new(input.as_bytes()), &mut out).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), rows);
    }

    #[test]
    fn one_byte_reads_still_hit_the_cap() {
        let input = "x".repeat(MAX_LINE_BYTES + 1);
        let mut cap = LineCap::new(input.as_bytes());
        let mut one = [0u8; 1];
        let e = loop {
            match std::io::Read::read(&mut cap, &mut one) {
                Ok(1) => continue,
                Ok(_) => panic!("read to the end past the cap"),
                Err(e) => break e,
            }
        };
        assert!(e.get_ref().is_some_and(|i| i.is::<LongLine>()));
    }

    #[test]
    fn a_line_past_the_cap_is_named_by_its_number() {
        let input = format!("kort\r\nkort\n{}\n", "x".repeat(MAX_LINE_BYTES + 1));
        let mut out = Vec::new();
        let e = std::io::Read::read_to_end(&mut LineCap::new(input.as_bytes()), &mut out).unwrap_err();
        let long = e.get_ref().and_then(|i| i.downcast_ref::<LongLine>()).map(|l| l.0);
        assert_eq!(long, Some(3));
    }
}
