//! A JSON Lines file whose events come out of case order, sorted by case
//! for pass two of an import (an external merge sort of the lines' places).
//!
//! Stored in the order they came, a million cases' events in a random or
//! time order touch a random page of every per-case structure (the events'
//! case index, each case's packed timeline and row) for every event, and
//! each commit writes those pages again: an import five to ten times slower
//! than the same file grouped by case. Sorted by case id (and, within a
//! case, by line) a batch touches each of its cases once.
//!
//! What is sorted is each line's case id, number and place in the file,
//! never its text: a line of an `inskrivning` holds a personnummer in
//! clear, which is not copied anywhere. Pass one, which parses every line
//! anyway, hands each line's place and case to a [`Sorter`]; the places
//! are sorted in runs of [`RUN_BYTES`] in memory and written to a temporary
//! directory (`TMPDIR`, a few dozen bytes a line), then merged as pass two
//! reads them, each line read again from the file at its place. Memory
//! holds one run while sorting and one record of every run while merging,
//! never the file. The directory is removed when the import returns,
//! whichever way. A JSON array (at most 256 MiB, read whole) is stored in
//! the order it comes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::file::{LineBatch, Lines, IMPORT_BATCH};

/// The memory the lines' places take while a run is sorted.
const RUN_BYTES: usize = 32 << 20;

/// Why a file read again no longer matches what pass one read.
const CHANGED: &str = "filen ändrades under inläsningen";

/// Where a line of the file is: its number, the byte it starts at (after a
/// BOM) and its length without the line break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub line: u64,
    pub offset: u64,
    pub len: u32,
}

/// The sorted runs of one file, removed when dropped.
pub struct Runs {
    dir: tempfile::TempDir,
    count: usize,
}

/// One line's place, sorted by case (lines without a case first), then by
/// its number in the file.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    case: Option<String>,
    line: u64,
    offset: u64,
    len: u32,
}

/// Takes the lines' places and cases in any order and sorts them into
/// [`Runs`]; the temporary directory is made when the first run is written.
#[derive(Default)]
pub struct Sorter {
    runs: Option<Runs>,
    run: Vec<Record>,
    bytes: usize,
}

impl Sorter {
    pub fn push(&mut self, case: Option<&str>, place: Place) -> anyhow::Result<()> {
        self.bytes += case.map_or(0, str::len) + std::mem::size_of::<Record>();
        self.run.push(Record {
            case: case.map(str::to_owned),
            line: place.line,
            offset: place.offset,
            len: place.len,
        });
        if self.bytes >= RUN_BYTES {
            self.write_run()?;
        }
        Ok(())
    }

    fn write_run(&mut self) -> anyhow::Result<()> {
        self.bytes = 0;
        let runs = match &mut self.runs {
            Some(runs) => runs,
            None => self.runs.insert(Runs::new()?),
        };
        runs.write(&mut self.run)
    }

    /// The runs of every line pushed.
    pub fn finish(mut self) -> anyhow::Result<Runs> {
        self.write_run()?;
        self.runs.take().map_or_else(Runs::new, Ok)
    }
}

impl Runs {
    fn new() -> anyhow::Result<Runs> {
        let dir = tempfile::Builder::new()
            .prefix("svu-vakt-sortering")
            .tempdir()
            .map_err(|e| anyhow::anyhow!("kan inte skapa en tillfällig katalog för sorteringen: {e}"))?;
        Ok(Runs { dir, count: 0 })
    }

    fn path(&self, n: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("{n}.run"))
    }

    /// Sorts `run` and writes it as the next run file; leaves it empty.
    fn write(&mut self, run: &mut Vec<Record>) -> anyhow::Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        run.sort_unstable();
        let path = self.path(self.count);
        let fail = |e: std::io::Error| anyhow::anyhow!("kan inte skriva {}: {e}", path.display());
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).map_err(fail)?);
        for r in run.drain(..) {
            write_record(&mut out, &r).map_err(fail)?;
        }
        out.flush().map_err(fail)?;
        self.count += 1;
        Ok(())
    }

    /// The lines of `path` in case order, about [`IMPORT_BATCH`] at a time: a
    /// batch ends where a case does.
    pub fn for_each_batch(&self, path: &Path, f: &mut dyn FnMut(Lines) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
        let mut readers = Vec::with_capacity(self.count);
        let mut heads = BinaryHeap::with_capacity(self.count);
        for n in 0..self.count {
            let run = self.path(n);
            let run = std::fs::File::open(&run).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", run.display()))?;
            let mut r = BufReader::with_capacity(64 << 10, run);
            if let Some(rec) = read_record(&mut r)? {
                heads.push(Reverse((rec, n)));
            }
            readers.push(r);
        }
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        // A batch ends where a case does, once it holds IMPORT_BATCH lines
        // (lines without a case end it anywhere): no two batches share a
        // case, so PostgreSQL stores two at once without either waiting for
        // the other's new case (`store::file_batches`), and no case is
        // packed twice. A case of more than MAX_BATCH lines (a broken
        // export) is cut anyway: memory and a transaction stay bounded.
        let mut last_case: Option<String> = None;
        while let Some(Reverse((rec, n))) = heads.pop() {
            let at_case_end = rec.case.is_none() || rec.case != last_case;
            if batch.len() >= MAX_BATCH || (batch.len() >= IMPORT_BATCH && at_case_end) {
                f(Ok(LineBatch::unplaced(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(IMPORT_BATCH),
                ))))?;
            }
            if let Some(next) = read_record(&mut readers[n])? {
                heads.push(Reverse((next, n)));
            }
            let mut text = vec![0u8; rec.len as usize];
            file.read_exact_at(&mut text, rec.offset)
                .map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
            let text = String::from_utf8(text).map_err(|_| anyhow::anyhow!("{CHANGED}: rad {}", rec.line))?;
            batch.push((rec.line as usize, text));
            last_case = rec.case;
        }
        if !batch.is_empty() {
            f(Ok(LineBatch::unplaced(batch)))?;
        }
        Ok(())
    }
}

/// The most lines a batch holds when one case runs on past [`IMPORT_BATCH`].
const MAX_BATCH: usize = 4 * IMPORT_BATCH;

/// A line without a case is written with this case length.
const NO_CASE: u32 = u32::MAX;

fn write_record(out: &mut impl Write, r: &Record) -> std::io::Result<()> {
    out.write_all(&r.line.to_le_bytes())?;
    out.write_all(&r.offset.to_le_bytes())?;
    out.write_all(&r.len.to_le_bytes())?;
    out.write_all(&r.case.as_ref().map_or(NO_CASE, |c| c.len() as u32).to_le_bytes())?;
    out.write_all(r.case.as_deref().unwrap_or("").as_bytes())
}

fn read_record(r: &mut impl BufRead) -> anyhow::Result<Option<Record>> {
    let fail = |e: std::io::Error| anyhow::anyhow!("kan inte läsa sorteringens tillfälliga fil: {e}");
    if r.fill_buf().map_err(fail)?.is_empty() {
        return Ok(None);
    }
    let (mut line, mut offset) = ([0u8; 8], [0u8; 8]);
    let (mut len, mut case_len) = ([0u8; 4], [0u8; 4]);
    for part in [&mut line[..], &mut offset[..], &mut len[..], &mut case_len[..]] {
        r.read_exact(part).map_err(fail)?;
    }
    let case = match u32::from_le_bytes(case_len) {
        NO_CASE => None,
        n => {
            let mut buf = vec![0u8; n as usize];
            r.read_exact(&mut buf).map_err(fail)?;
            Some(String::from_utf8(buf).map_err(|_| anyhow::anyhow!("sorteringens tillfälliga fil är skadad"))?)
        }
    };
    Ok(Some(Record {
        case,
        line: u64::from_le_bytes(line),
        offset: u64::from_le_bytes(offset),
        len: u32::from_le_bytes(len),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pass one hands the sorter: each line's place as the import's
    /// reader gives it, its case (here read from the JSON, as the event
    /// parser reads it: a repeated key counts last).
    fn sort(path: &Path) -> Option<Runs> {
        let mut sorter = Sorter::default();
        let mut placed = true;
        super::super::file::for_each_batch(path, &mut |b| {
            let b = b.unwrap();
            let Some(places) = b.places else {
                placed = false;
                return Ok(());
            };
            for ((_, text), place) in b.lines.iter().zip(places) {
                let v: serde_json::Value = serde_json::from_str(text).unwrap();
                sorter.push(v["case"].as_str(), place)?;
            }
            Ok(())
        })
        .unwrap();
        placed.then(|| sorter.finish().unwrap())
    }

    fn merged(runs: &Runs, path: &Path) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        runs.for_each_batch(path, &mut |b| {
            out.extend(b.unwrap().lines);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_come_back_by_case_then_line_with_their_numbers_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let lines = [
            r#"{"id":"b1","case":"B"}"#,
            r#"{"id":"a1","case":"A","x":"ä\"}"}"#,
            "  ",
            r#"{"id":"s1","unit":"U"}"#,
            r#"{"case":"A","id":"a2"}"#,
            r#"{"id":"b2","case":"X","c\u0061se":"B"}"#,
        ];
        // A BOM, CRLF line ends, a blank line.
        std::fs::write(&path, format!("\u{feff}{}\r\n", lines.join("\r\n"))).unwrap();
        let runs = sort(&path).unwrap();
        let got = merged(&runs, &path);
        let numbers: Vec<usize> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, vec![4, 2, 5, 1, 6]);
        for (n, text) in got {
            assert_eq!(text, lines[n - 1], "line {n}");
        }
    }

    /// 11 000 lines without a case and three cases of 4 000 lines,
    /// interleaved: the case-less lines are cut at IMPORT_BATCH, the next
    /// batch runs on to its last case's end, no two batches share a case.
    #[test]
    fn a_batch_ends_where_a_case_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let mut lines: Vec<String> = (0..11_000).map(|i| format!(r#"{{"id":"u{i}","unit":"U"}}"#)).collect();
        for i in 0..12_000 {
            let line = format!(r#"{{"id":"e{i}","case":"K{}"}}"#, i % 3);
            lines.insert(i * 23 / 12, line);
        }
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let runs = sort(&path).unwrap();
        let mut batches: Vec<Vec<Option<String>>> = Vec::new();
        runs.for_each_batch(&path, &mut |b| {
            let b = b.unwrap();
            let cases = b.lines.iter().map(|(_, t)| {
                let v: serde_json::Value = serde_json::from_str(t).unwrap();
                v["case"].as_str().map(str::to_string)
            });
            batches.push(cases.collect());
            Ok(())
        })
        .unwrap();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![IMPORT_BATCH, 1_000 + 3 * 4_000], "{sizes:?}");
        for pair in batches.windows(2) {
            let last = pair[0].last().unwrap();
            assert!(
                last.is_none() || !pair[1].contains(last),
                "a case in two batches: {last:?}"
            );
        }
    }

    /// One case of 45 000 lines (a broken export): cut at MAX_BATCH.
    #[test]
    fn a_case_too_long_for_a_batch_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let lines: Vec<String> = (0..45_000)
            .rev()
            .map(|i| format!(r#"{{"id":"e{i}","case":"K"}}"#))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let runs = sort(&path).unwrap();
        let mut sizes = Vec::new();
        runs.for_each_batch(&path, &mut |b| {
            sizes.push(b.unwrap().lines.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, vec![MAX_BATCH, 45_000 - MAX_BATCH]);
    }

    #[test]
    fn a_json_array_has_no_places_and_is_not_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.json");
        std::fs::write(
            &path,
            "\u{feff} [{\"id\":\"b\",\"case\":\"B\"},{\"id\":\"a\",\"case\":\"A\"}]",
        )
        .unwrap();
        assert!(sort(&path).is_none());
    }

    #[test]
    fn no_personnummer_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let text = "{\"id\":\"b1\",\"case\":\"B\",\"patient\":\"19121212-1212\"}\n{\"id\":\"a1\",\"case\":\"A\"}\n";
        std::fs::write(&path, text).unwrap();
        let runs = sort(&path).unwrap();
        for entry in std::fs::read_dir(runs.dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("1212"),
                "a personnummer in a run"
            );
        }
        assert_eq!(merged(&runs, &path)[1].1, text.lines().next().unwrap());
    }

    #[test]
    fn many_runs_merge_in_order_and_their_files_go_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        // Enough lines for several runs of RUN_BYTES.
        let n = 3 * RUN_BYTES / (std::mem::size_of::<Record>() + 6);
        let text: String = (0..n)
            .map(|i| format!("{{\"id\":\"e{i}\",\"case\":\"C{:05}\"}}\n", (i * 7919) % 1000))
            .collect();
        std::fs::write(&path, text).unwrap();
        let runs = sort(&path).unwrap();
        assert!(runs.count >= 3, "{} runs", runs.count);
        let kept = runs.dir.path().to_path_buf();
        let got = merged(&runs, &path);
        assert_eq!(got.len(), n);
        let key = |(line, _): &(usize, String)| (((line - 1) * 7919) % 1000, *line);
        assert!(got.windows(2).all(|w| key(&w[0]) < key(&w[1])), "not in case order");
        assert!(got[17].1.contains(&format!("\"e{}\"", got[17].0 - 1)));
        drop(runs);
        assert!(!kept.exists(), "the runs are left in {}", kept.display());
    }

    #[test]
    fn an_empty_sort_merges_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        std::fs::write(&path, "").unwrap();
        let runs = Sorter::default().finish().unwrap();
        assert!(merged(&runs, &path).is_empty());
    }
}
