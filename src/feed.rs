//! The drop folder (`[feed] directory`, docs/OPERATIONS.md): exports the
//! coordination system leaves as files become events.
//!
//! `serve` looks into the folder every `poll_seconds`. A file is taken when
//! it is complete: not named `*.part` (a sender writes `x.jsonl.part` and
//! renames it) nor hidden, and unchanged for `settle_seconds` (a sender
//! that writes in place). Its format is chosen by its name: a `[[feed.csv]]`
//! pattern gives a CSV mapping, else `*.jsonl`, `*.ndjson` and `*.json` are
//! JSON Lines; anything else fails with a report saying so.
//!
//! A file is imported all or nothing (`ingest::file`) with its batches
//! marked `mapp:NAME`, logged in `feed_files`, and only then moved:
//! imported files to `done/`, files with bad lines to `failed/` with a
//! report `NAME.fel.txt` beside it naming every bad line and field.
//! Content imported before (the same SHA-256) is a no-op and moves to
//! `done/`. A crash at any point leaves the file where it was, and the next
//! look imports it again: stored events are duplicates then, so nothing is
//! stored twice and nothing is lost. A failure of the database leaves the
//! file in place to be tried again; it never sends a file to `failed/`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::domain::PatientHasher;
use crate::ingest::csv_mapping::CsvMapping;
use crate::ingest::file::{import_events, FileError};
use crate::metrics::Metrics;
use crate::store::feed::{self, NewFeedFile};
use crate::store::{DbConn, Pool};

pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
const JSON_LINES: &[&str] = &["jsonl", "ndjson", "json"];

/// A CSV export: files whose name matches `pattern` are read through `mapping`.
#[derive(Debug, Clone)]
pub struct CsvSource {
    pub pattern: String,
    pub mapping_path: PathBuf,
    pub mapping: CsvMapping,
}

/// The drop folder's settings, checked at start.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub directory: PathBuf,
    pub settle: Duration,
    pub poll: Duration,
    pub csv: Vec<CsvSource>,
}

/// How a file is read.
#[derive(Debug, Clone, Copy)]
pub enum Format<'a> {
    JsonLines,
    Csv(&'a CsvSource),
}

impl FeedConfig {
    /// The format for a file name: the first matching CSV pattern, else
    /// JSON Lines by extension (case ignored).
    pub fn format(&self, name: &str) -> Option<Format<'_>> {
        if let Some(c) = self.csv.iter().find(|c| glob(&c.pattern, name)) {
            return Some(Format::Csv(c));
        }
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
        JSON_LINES.contains(&ext.as_str()).then_some(Format::JsonLines)
    }

    /// What the folder accepts, for a report.
    fn accepted(&self) -> String {
        let mut list: Vec<String> = self.csv.iter().map(|c| format!("{} (CSV)", c.pattern)).collect();
        list.extend(JSON_LINES.iter().map(|e| format!("*.{e} (JSON Lines)")));
        list.join(", ")
    }
}

/// `*` any run of characters, `?` one; case ignored.
pub fn glob(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| m(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && m(rest, &n[1..]),
            Some((c, rest)) => n.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && m(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub name: String,
    pub outcome: &'static str,
    pub stored: usize,
    pub errors: usize,
    pub moved_to: PathBuf,
}

/// The files of the folder that are complete at `now`, oldest first.
pub fn complete_files(cfg: &FeedConfig, now: SystemTime) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(&cfg.directory)
        .with_context(|| format!("kan inte läsa inkorgen {}", cfg.directory.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".part") {
            continue;
        }
        // Gone since the listing (another instance took it): not an error.
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        // An empty file is a sender that has only just opened it.
        if !meta.is_file() || meta.len() == 0 {
            continue;
        }
        let modified = meta.modified()?;
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if age >= cfg.settle {
            files.push((modified, entry.path()));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// Looks into the folder once and takes every complete file.
pub fn poll_once(
    pool: &Pool,
    hasher: &PatientHasher,
    cfg: &FeedConfig,
    metrics: &Metrics,
) -> anyhow::Result<Vec<Taken>> {
    for dir in [DONE, FAILED] {
        std::fs::create_dir_all(cfg.directory.join(dir))?;
    }
    let mut taken = Vec::new();
    for path in complete_files(cfg, SystemTime::now())? {
        // The database unreachable: the look ends, every file waits.
        let mut conn = pool.get()?;
        // Any other failure is this file's: logged, the file left for the
        // next look, and the newer files go on.
        // PostgreSQL stores every other batch on a second connection when one is idle.
        let t = match take(&mut conn, Some(pool), hasher, cfg, &path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %format!("{e:#}"), "inkorgen: filen lämnas kvar och prövas igen");
                continue;
            }
        };
        match t.outcome {
            feed::IMPORTED => Metrics::add(&metrics.feed_files_imported, 1),
            feed::FAILED => Metrics::add(&metrics.feed_files_failed, 1),
            _ => Metrics::add(&metrics.feed_files_repeated, 1),
        }
        Metrics::add(&metrics.feed_events_stored, t.stored);
        Metrics::add(&metrics.events_ingested, t.stored);
        taken.push(t);
    }
    Ok(taken)
}

fn sha256_file(path: &Path) -> anyhow::Result<(String, i64)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("kan inte läsa {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0i64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as i64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), bytes))
}

/// A failed file's report: one line per listed error, and how many more
/// there were when not all are listed.
fn report_lines(listed: impl Iterator<Item = String>, total: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for line in listed {
        out.push_str(&line);
        out.push('\n');
        shown += 1;
    }
    if total > shown {
        out.push_str(&format!("… och {} fel till (de första {shown} visas)\n", total - shown));
    }
    out
}

/// A free name in `dir` for `name`, marked with the time it was taken.
fn destination(dir: &Path, stamp: &str, name: &str) -> PathBuf {
    let mut candidate = dir.join(format!("{stamp}-{name}"));
    let mut n = 2;
    while candidate.exists() || report_path(&candidate).exists() {
        candidate = dir.join(format!("{stamp}-{n}-{name}"));
        n += 1;
    }
    candidate
}

fn report_path(moved: &Path) -> PathBuf {
    let mut p = moved.as_os_str().to_owned();
    p.push(".fel.txt");
    PathBuf::from(p)
}

/// Writes a file whole: through `.part`, synced, renamed.
fn write_whole(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    std::fs::write(&part, text)?;
    std::fs::File::open(&part)?.sync_all()?;
    std::fs::rename(&part, path)?;
    Ok(())
}

/// Imports one file and moves it.
pub fn take(
    conn: &mut DbConn,
    pool: Option<&Pool>,
    hasher: &PatientHasher,
    cfg: &FeedConfig,
    path: &Path,
) -> anyhow::Result<Taken> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (hash, bytes) = sha256_file(path)?;
    let received_at = crate::store::now();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let read = read_in((conn, pool), hasher, cfg, path, &name, &hash)?;

    let dir = cfg
        .directory
        .join(if read.outcome == feed::FAILED { FAILED } else { DONE });
    let moved = destination(&dir, &stamp, &name);
    let moved_name = moved
        .strip_prefix(&cfg.directory)
        .unwrap_or(&moved)
        .to_string_lossy()
        .into_owned();
    let mut row = NewFeedFile {
        content_hash: &hash,
        name: &name,
        bytes,
        received_at,
        outcome: read.outcome,
        events_received: read.received as i64,
        events_stored: read.stored as i64,
        duplicates: read.duplicates as i64,
        errors: 0,
        moved_to: &moved_name,
    };
    if let Some((count, lines)) = &read.report {
        row.errors = *count as i64;
        let text = format!(
            "Filen {name} lästes inte in: {count} fel, inget sparades.\n\
             Mottagen {} (svensk tid), {bytes} byte, SHA-256 {hash}.\n\
             Rätta felen och lägg filen i inkorgen igen; rader som redan finns blir dubbletter, inte nya händelser.\n\n{lines}",
            crate::audit::report::local_text(received_at)
        );
        write_whole(&report_path(&moved), &text)?;
    }
    feed::record(conn, &row)?;
    let errors = row.errors as usize;
    std::fs::rename(path, &moved)
        .with_context(|| format!("kan inte flytta {} till {}", path.display(), moved.display()))?;
    match read.outcome {
        feed::IMPORTED => tracing::info!(file = %name, stored = read.stored, "inkorgen: fil inläst"),
        feed::FAILED => tracing::warn!(file = %name, errors = errors, "inkorgen: fil med fel, flyttad till failed/"),
        _ => tracing::info!(file = %name, "inkorgen: samma innehåll redan inläst"),
    }
    Ok(Taken {
        name,
        outcome: read.outcome,
        stored: read.stored,
        errors,
        moved_to: moved,
    })
}

/// What reading a file came to, before it is moved.
#[derive(Default)]
struct Read {
    outcome: &'static str,
    received: usize,
    stored: usize,
    duplicates: usize,
    /// A failed file's errors: how many, and the report's lines.
    report: Option<(usize, String)>,
}

impl Read {
    fn failed(count: usize, lines: String) -> Read {
        Read {
            outcome: feed::FAILED,
            report: Some((count, lines)),
            ..Read::default()
        }
    }
}

/// Imports the file unless its content was imported before. The database
/// or the disk failing is an error: the file stays to be tried again.
fn read_in(
    (conn, pool): (&mut DbConn, Option<&Pool>),
    hasher: &PatientHasher,
    cfg: &FeedConfig,
    path: &Path,
    name: &str,
    hash: &str,
) -> anyhow::Result<Read> {
    if feed::imported(conn, hash)? {
        return Ok(Read {
            outcome: feed::REPEATED,
            ..Read::default()
        });
    }
    let Some(format) = cfg.format(name) else {
        let why = format!(
            "filnamnet anger inget format som inkorgen läser. Godtas: {}.\n",
            cfg.accepted()
        );
        return Ok(Read::failed(1, why));
    };
    let mapping = match format {
        Format::Csv(c) => Some(&c.mapping),
        Format::JsonLines => None,
    };
    match import_events(conn, pool, hasher, path, mapping, &format!("mapp:{name}")) {
        Ok(o) => Ok(Read {
            outcome: feed::IMPORTED,
            received: o.received,
            stored: o.stored,
            duplicates: o.duplicates,
            report: None,
        }),
        Err(FileError::Invalid(errors)) => {
            let listed = errors.listed();
            let lines = report_lines(
                listed
                    .iter()
                    .map(|e| format!("rad {}, fält {}: {}", e.line, e.field, e.message)),
                errors.total(),
            );
            Ok(Read::failed(errors.total(), lines))
        }
        Err(FileError::Conflict(conflicts, total)) => {
            let lines = report_lines(
                conflicts
                    .iter()
                    .map(|c| format!("rad {}, fält id ({}): {}", c.line, c.id, c.message)),
                total,
            );
            Ok(Read::failed(total, lines))
        }
        Err(FileError::Failed(e)) => Err(e.context(format!("inkorgen: {name} lämnas kvar"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_complete_when_settled_and_neither_part_nor_hidden() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.jsonl", "b.jsonl.part", ".c.jsonl"] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        std::fs::create_dir(dir.path().join("done")).unwrap();
        let cfg = FeedConfig {
            directory: dir.path().to_path_buf(),
            settle: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            csv: Vec::new(),
        };
        let now = SystemTime::now();
        assert!(
            complete_files(&cfg, now).unwrap().is_empty(),
            "written just now: not settled"
        );
        let later = complete_files(&cfg, now + Duration::from_secs(31)).unwrap();
        assert_eq!(later, vec![dir.path().join("a.jsonl")]);
        assert_eq!(
            cfg.format("a.JSONL").map(|f| matches!(f, Format::JsonLines)),
            Some(true)
        );
        assert!(cfg.format("a.txt").is_none());
    }

    #[test]
    fn patterns_match_whole_names_case_ignored() {
        assert!(glob("cosmic-*.csv", "cosmic-2026-11-24.CSV"));
        assert!(glob("export-????.csv", "export-1124.csv"));
        assert!(!glob("export-????.csv", "export-11245.csv"));
        assert!(!glob("cosmic-*.csv", "xcosmic-1.csv"));
        assert!(glob("*", ""));
    }
}
