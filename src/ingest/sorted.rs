//! A JSON Lines file whose events come out of case order, sorted by case
//! for pass two of an import (an external merge sort).
//!
//! Stored in the order they came, a million cases' events in a random or
//! time order touch a random page of every per-case structure (the events'
//! case index, each case's packed timeline and row) for every event, and
//! each commit writes those pages again: an import five to ten times slower
//! than the same file grouped by case. Sorted by case id (and, within a
//! case, by line) a batch touches each of its cases once.
//!
//! The lines are kept in runs of [`RUN_BYTES`], each sorted in memory and
//! written to a temporary directory (`TMPDIR`), then merged as pass two
//! reads them: memory holds one run while sorting and one record of every
//! run while merging, never the file. The directory goes when the import
//! ends, whichever way. Every line keeps its number in the file, so an error
//! or conflict found in pass two names the line an editor shows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::file::{for_each_batch, Lines, IMPORT_BATCH};

/// The text of the lines sorted in memory at a time.
const RUN_BYTES: usize = 64 << 20;

/// The sorted runs of one file, removed when dropped.
pub struct Runs {
    dir: tempfile::TempDir,
    count: usize,
}

/// The case a line belongs to, read without the rest of the event (pass
/// one has validated every line already).
#[derive(serde::Deserialize)]
struct CaseOf<'a> {
    #[serde(borrow, default)]
    case: Option<std::borrow::Cow<'a, str>>,
}

/// One line in a run: sorted by case (lines without a case first), then by
/// its number in the file.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    case: Option<String>,
    line: u64,
    text: String,
}

/// Sorts the lines of `path` into runs.
pub fn sort_file(path: &Path) -> anyhow::Result<Runs> {
    let dir = tempfile::Builder::new()
        .prefix("svu-vakt-sortering")
        .tempdir()
        .map_err(|e| anyhow::anyhow!("kan inte skapa en tillfällig katalog för sorteringen: {e}"))?;
    let mut runs = Runs { dir, count: 0 };
    let mut run: Vec<Record> = Vec::new();
    let mut bytes = 0;
    for_each_batch(path, &mut |lines| {
        for (line, text) in lines.map_err(|e| anyhow::anyhow!("filen ändrades under inläsningen: {}", e.summary()))? {
            let case = serde_json::from_str::<CaseOf>(&text)
                .map_err(|e| anyhow::anyhow!("filen ändrades under inläsningen: rad {line}: {e}"))?
                .case
                .map(|c| c.into_owned());
            bytes += text.len() + case.as_ref().map_or(0, String::len) + 64;
            run.push(Record {
                case,
                line: line as u64,
                text,
            });
            if bytes >= RUN_BYTES {
                runs.write(&mut run)?;
                bytes = 0;
            }
        }
        Ok(())
    })?;
    runs.write(&mut run)?;
    Ok(runs)
}

impl Runs {
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

    /// The lines in case order, [`IMPORT_BATCH`] at a time.
    pub fn for_each_batch(&self, f: &mut dyn FnMut(Lines) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let mut readers = Vec::with_capacity(self.count);
        let mut heads = BinaryHeap::with_capacity(self.count);
        for n in 0..self.count {
            let path = self.path(n);
            let file =
                std::fs::File::open(&path).map_err(|e| anyhow::anyhow!("kan inte läsa {}: {e}", path.display()))?;
            let mut r = BufReader::with_capacity(256 << 10, file);
            if let Some(rec) = read_record(&mut r)? {
                heads.push(Reverse((rec, n)));
            }
            readers.push(r);
        }
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        while let Some(Reverse((rec, n))) = heads.pop() {
            if let Some(next) = read_record(&mut readers[n])? {
                heads.push(Reverse((next, n)));
            }
            batch.push((rec.line as usize, rec.text));
            if batch.len() == IMPORT_BATCH {
                f(Ok(std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH))))?;
            }
        }
        if !batch.is_empty() {
            f(Ok(batch))?;
        }
        Ok(())
    }
}

/// A line without a case is written with this case length.
const NO_CASE: u32 = u32::MAX;

fn write_record(out: &mut impl Write, r: &Record) -> std::io::Result<()> {
    let case = r.case.as_deref().unwrap_or("");
    out.write_all(&r.line.to_le_bytes())?;
    out.write_all(&r.case.as_ref().map_or(NO_CASE, |c| c.len() as u32).to_le_bytes())?;
    out.write_all(&(r.text.len() as u32).to_le_bytes())?;
    out.write_all(case.as_bytes())?;
    out.write_all(r.text.as_bytes())
}

fn read_record(r: &mut impl BufRead) -> anyhow::Result<Option<Record>> {
    let fail = |e: std::io::Error| anyhow::anyhow!("kan inte läsa sorteringens tillfälliga fil: {e}");
    if r.fill_buf().map_err(fail)?.is_empty() {
        return Ok(None);
    }
    let mut line = [0u8; 8];
    let (mut case_len, mut text_len) = ([0u8; 4], [0u8; 4]);
    for part in [&mut line[..], &mut case_len[..], &mut text_len[..]] {
        r.read_exact(part).map_err(fail)?;
    }
    let line = u64::from_le_bytes(line);
    let case_len = u32::from_le_bytes(case_len);
    let text_len = u32::from_le_bytes(text_len) as usize;
    let case = match case_len {
        NO_CASE => None,
        n => Some(read_string(r, n as usize)?),
    };
    Ok(Some(Record {
        case,
        line,
        text: read_string(r, text_len)?,
    }))
}

fn read_string(r: &mut impl Read, len: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)
        .map_err(|e| anyhow::anyhow!("kan inte läsa sorteringens tillfälliga fil: {e}"))?;
    String::from_utf8(buf).map_err(|_| anyhow::anyhow!("sorteringens tillfälliga fil är skadad"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(runs: &Runs) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        runs.for_each_batch(&mut |b| {
            out.extend(b.unwrap());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_come_back_by_case_then_line_with_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let lines = [
            r#"{"id":"b1","case":"B"}"#,
            r#"{"id":"a1","case":"A","x":"ä\"}"}"#,
            "",
            r#"{"id":"s1","unit":"U"}"#,
            r#"{"case":"A","id":"a2"}"#,
            r#"{"id":"b2","case":"B"}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let runs = sort_file(&path).unwrap();
        let got: Vec<usize> = merged(&runs).into_iter().map(|(n, _)| n).collect();
        assert_eq!(got, vec![4, 2, 5, 1, 6]);
        assert_eq!(merged(&runs)[1].1, lines[1]);
    }

    #[test]
    fn many_runs_merge_in_order_and_their_files_go_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        // Lines of a few hundred bytes, enough for several runs of RUN_BYTES.
        let pad = "x".repeat(400);
        let n = 3 * RUN_BYTES / 400;
        let text: String = (0..n)
            .map(|i| {
                format!(
                    "{{\"id\":\"e{i}\",\"case\":\"C{:05}\",\"p\":\"{pad}\"}}\n",
                    (i * 7919) % 1000
                )
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        let runs = sort_file(&path).unwrap();
        assert!(runs.count >= 3, "{} runs", runs.count);
        let kept = runs.dir.path().to_path_buf();
        let got = merged(&runs);
        assert_eq!(got.len(), n);
        let key = |(line, _): &(usize, String)| (((line - 1) * 7919) % 1000, *line);
        assert!(got.windows(2).all(|w| key(&w[0]) < key(&w[1])), "not in case order");
        drop(runs);
        assert!(!kept.exists(), "the runs are left in {}", kept.display());
    }
}
