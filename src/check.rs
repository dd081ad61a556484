//! `svu-vakt check`: the rules on files, with no database (SPEC §8). The
//! events file is read as a stream, in blocks of lines that worker threads
//! parse (`crate::parallel`). When the file is grouped by case (as exports
//! and `svu-vakt demo` write it) a worker evaluates the cases whole within
//! its block and notes the block's staffing; the caller's thread joins the
//! cases cut between blocks, so memory holds a few blocks. If a case comes back
//! later in the file, the check starts over in a spill mode that partitions
//! the lines by case into temporary files and evaluates one part at a time.
//! Every line is validated; any bad line fails the whole check.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::calendar::Calendar;
use crate::domain::{CaseId, Event, FieldError, PatientHasher, Secret, Unit};
use crate::parallel::LineBlock;
use crate::rules::bemanning::StaffingTracker;
use crate::rules::{evaluate_case, Finding, Profile, RuleId, Units};

/// Most errors reported for one input file; the count is still exact.
const MAX_ERRORS: usize = 200;
/// Partitions in spill mode.
const SPILL_PARTS: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{file}: {count} fel")]
    Input {
        file: String,
        count: usize,
        errors: Vec<FieldError>,
    },
    #[error("{0}")]
    Io(String),
}

impl CheckError {
    fn io(path: &Path, e: impl std::fmt::Display) -> CheckError {
        CheckError::Io(format!("{}: {e}", path.display()))
    }
}

pub struct CheckOptions {
    pub profile: Profile,
    pub rules: Vec<RuleId>,
    pub as_of: DateTime<Utc>,
}

/// Reads the units file: a JSON array, JSON Lines, or CSV (by extension).
pub fn load_units(path: &Path) -> Result<Units, CheckError> {
    let text = std::fs::read_to_string(path).map_err(|e| CheckError::io(path, e))?;
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let list: Vec<Unit> = crate::ingest::parse_units(&text, is_csv).map_err(|errors| CheckError::Input {
        file: path.display().to_string(),
        count: errors.total(),
        errors: errors.listed().iter().take(MAX_ERRORS).cloned().collect(),
    })?;
    Ok(Units::new(list))
}

struct Run<'a> {
    opts: &'a CheckOptions,
    units: &'a Units,
    case_rules: Vec<RuleId>,
    findings: Vec<Finding>,
    staffing: StaffingTracker,
    errors: Vec<FieldError>,
    error_count: usize,
}

impl<'a> Run<'a> {
    fn new(opts: &'a CheckOptions, units: &'a Units) -> Run<'a> {
        Run {
            opts,
            units,
            case_rules: case_rules(opts),
            findings: Vec::new(),
            staffing: StaffingTracker::default(),
            errors: Vec::new(),
            error_count: 0,
        }
    }

    /// The event of a parsed line, or its errors counted and (the first
    /// [`MAX_ERRORS`]) kept.
    fn take(&mut self, parsed: Result<Event, Vec<FieldError>>) -> Option<Event> {
        match parsed {
            Ok(e) => Some(e),
            Err(errs) => {
                self.error_count += errs.len();
                keep_first(&mut self.errors, errs);
                None
            }
        }
    }

    fn case_done(&mut self, events: &[Event]) {
        if !events.is_empty() && self.error_count == 0 {
            let f = evaluate_case(
                events,
                self.units,
                &self.opts.profile,
                &self.case_rules,
                self.opts.as_of,
            );
            self.findings.extend(f);
        }
    }

    fn observe(&mut self, e: &Event) {
        self.staffing.observe(e, self.units, self.opts.as_of);
    }
}

/// Adds errors to a list that keeps the first [`MAX_ERRORS`].
fn keep_first(list: &mut Vec<FieldError>, errs: Vec<FieldError>) {
    let room = MAX_ERRORS.saturating_sub(list.len());
    list.extend(errs.into_iter().take(room));
}

/// The rules judged per case: all but the unit's staffing.
fn case_rules(opts: &CheckOptions) -> Vec<RuleId> {
    opts.rules
        .iter()
        .copied()
        .filter(|r| *r != RuleId::BemanningStorhelg)
        .collect()
}

/// Patient numbers are validated, never kept: a throwaway key suffices.
fn throwaway_hasher() -> PatientHasher {
    let mut key = [0u8; 32];
    let _ = getrandom::getrandom(&mut key);
    PatientHasher::new(Secret::new(key.to_vec()))
}

/// Evaluates the rules on an events file; the findings, sorted.
pub fn check_file(events: &Path, units: &Units, opts: &CheckOptions) -> Result<Vec<Finding>, CheckError> {
    let run = match stream_grouped(events, units, opts)? {
        Some(run) => run,
        None => spill(events, units, opts)?,
    };
    finish(run, events)
}

fn finish(mut run: Run, path: &Path) -> Result<Vec<Finding>, CheckError> {
    if run.error_count > 0 {
        return Err(CheckError::Input {
            file: path.display().to_string(),
            count: run.error_count,
            errors: run.errors,
        });
    }
    if run.opts.rules.contains(&RuleId::BemanningStorhelg) {
        let calendar = Calendar::new();
        let f = run
            .staffing
            .findings(run.units, &calendar, &run.opts.profile, run.opts.as_of);
        run.findings.extend(f);
    }
    let mut findings = run.findings;
    findings.sort_by(|a, b| {
        (a.case.is_none(), &a.case, a.due_utc(), a.rule, &a.unit).cmp(&(
            b.case.is_none(),
            &b.case,
            b.due_utc(),
            b.rule,
            &b.unit,
        ))
    });
    Ok(findings)
}

fn open(path: &Path) -> Result<BufReader<File>, CheckError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(|e| CheckError::io(path, e))
}

/// Lines parsed per block on the worker threads (`crate::parallel`).
const BLOCK_LINES: usize = 4096;

type Parsed = Result<Event, Vec<FieldError>>;

/// Every line of the file with its number and its parse, in file order.
/// `f` returns `false` to stop.
fn for_each_event(
    path: &Path,
    hasher: &PatientHasher,
    mut f: impl FnMut(usize, &str, Parsed) -> bool,
) -> Result<(), CheckError> {
    for_each_block(
        path,
        |block| {
            let parsed: Vec<Parsed> = block
                .lines()
                .map(|(n, text)| Event::from_line(text, n, hasher))
                .collect();
            (block, parsed)
        },
        |(block, parsed)| block.lines().zip(parsed).all(|((n, text), p)| f(n, text, p)),
    )
}

/// `work` of every block of [`BLOCK_LINES`] numbered lines, on the worker
/// threads, handed to `sink` in file order; `sink` returns `false` to
/// stop. A JSON array is read whole and cut into blocks of its objects.
fn for_each_block<R: Send>(
    path: &Path,
    work: impl Fn(LineBlock) -> R + Sync,
    sink: impl FnMut(R) -> bool,
) -> Result<(), CheckError> {
    let mut reader = open(path)?;
    let mut first = String::new();
    let mut n = 0;
    while first.trim().is_empty() {
        first.clear();
        // The first line as `LineBlock::fill` reads the rest: bad UTF-8 named by its line.
        let read = reader.read_line(&mut first).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => CheckError::io(path, crate::parallel::not_utf8(n + 1)),
            _ => CheckError::io(path, e),
        })?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
    }
    if first.trim_start().starts_with('[') {
        let mut items = whole_array(path)?.into_iter();
        let source = || {
            let mut block = LineBlock::default();
            for (n, text) in items.by_ref().take(BLOCK_LINES) {
                block.push(n, &text);
            }
            (!block.is_empty()).then_some(block)
        };
        crate::parallel::ordered_map(source, work, sink);
        return Ok(());
    }
    let mut pending = Some((n, first));
    let mut failed = None;
    // Each block sized as the one before, so its text is not grown (and
    // copied) from empty line by line.
    let mut size = 0;
    let source = || {
        let mut block = LineBlock::with_capacity(size + size / 8, BLOCK_LINES);
        if let Some((n, text)) = pending.take() {
            block.push(n, &text);
        }
        match block.fill(&mut reader, &mut n, BLOCK_LINES) {
            Ok(()) if block.is_empty() => None,
            Ok(()) => {
                size = block.text_len();
                Some(block)
            }
            Err(e) => {
                failed = Some(e);
                None
            }
        }
    };
    crate::parallel::ordered_map(source, work, sink);
    match failed {
        Some(e) => Err(CheckError::io(path, e)),
        None => Ok(()),
    }
}

fn whole_array(path: &Path) -> Result<Vec<(usize, String)>, CheckError> {
    let text = std::fs::read_to_string(path).map_err(|e| CheckError::io(path, e))?;
    crate::ingest::json_objects(&text).map_err(|errors| CheckError::Input {
        file: path.display().to_string(),
        count: errors.len(),
        errors,
    })
}

/// What a worker makes of a block of a file grouped by case: the errors of
/// its lines, the staffing its acts show, and its runs of events of one
/// case in the order met. The first and the last run may go on in the
/// blocks around; the runs between are whole, evaluated on the worker
/// (their findings here, their events dropped).
#[derive(Default)]
struct Block {
    errors: Vec<FieldError>,
    error_count: usize,
    staffing: StaffingTracker,
    runs: Vec<(CaseId, Vec<Event>)>,
    findings: Vec<Finding>,
}

fn grouped_block(
    block: &LineBlock,
    hasher: &PatientHasher,
    units: &Units,
    opts: &CheckOptions,
    rules: &[RuleId],
) -> Block {
    let mut out = Block::default();
    let mut events: Vec<Event> = Vec::with_capacity(BLOCK_LINES);
    // Where each run begins in `events`, and its case.
    let mut starts: Vec<(usize, CaseId)> = Vec::new();
    for (n, text) in block.lines() {
        match Event::from_line(text, n, hasher) {
            Ok(e) => {
                out.staffing.observe(&e, units, opts.as_of);
                let Some(case) = &e.case else { continue };
                if starts.last().is_none_or(|(_, c)| c != case) {
                    starts.push((events.len(), case.clone()));
                }
                events.push(e);
            }
            Err(errs) => {
                out.error_count += errs.len();
                keep_first(&mut out.errors, errs);
            }
        }
    }
    let ends: Vec<usize> = starts.iter().skip(1).map(|(i, _)| *i).chain([events.len()]).collect();
    let last = starts.len().saturating_sub(1);
    if out.error_count == 0 {
        for i in 1..last {
            let run = &events[starts[i].0..ends[i]];
            out.findings
                .extend(evaluate_case(run, units, &opts.profile, rules, opts.as_of));
        }
    }
    // The first and the last run go to the caller; the events between
    // are dropped here.
    let tail = events.split_off(starts.last().map_or(0, |(i, _)| *i));
    events.truncate(ends.first().copied().unwrap_or(0));
    for (i, (_, case)) in starts.into_iter().enumerate() {
        let run = if i == 0 && last > 0 {
            std::mem::take(&mut events)
        } else {
            Vec::new()
        };
        out.runs.push((case, run));
    }
    if let Some(r) = out.runs.last_mut() {
        r.1 = tail;
    }
    out
}

/// One pass, one case at a time in the caller's memory, the cases whole
/// within a block evaluated on the workers. `None` when a case reappears
/// after others.
fn stream_grouped<'a>(path: &Path, units: &'a Units, opts: &'a CheckOptions) -> Result<Option<Run<'a>>, CheckError> {
    let mut run = Run::new(opts, units);
    let mut current: Vec<Event> = Vec::new();
    let mut current_case: Option<CaseId> = None;
    let mut finished: HashSet<CaseId, foldhash::fast::RandomState> = HashSet::default();
    let mut regrouped = false;
    let (hasher, rules) = (throwaway_hasher(), case_rules(opts));
    let work = |block: LineBlock| grouped_block(&block, &hasher, units, opts, &rules);
    for_each_block(path, work, |block| {
        run.error_count += block.error_count;
        keep_first(&mut run.errors, block.errors);
        run.staffing.absorb(block.staffing);
        run.findings.extend(block.findings);
        for (i, (case, events)) in block.runs.into_iter().enumerate() {
            if i == 0 && current_case.as_ref() == Some(&case) {
                current.extend(events);
                continue;
            }
            if finished.contains(&case) {
                regrouped = true;
                return false;
            }
            let done = std::mem::replace(&mut current, events);
            run.case_done(&done);
            if let Some(prev) = current_case.replace(case) {
                finished.insert(prev);
            }
        }
        true
    })?;
    if regrouped {
        return Ok(None);
    }
    run.case_done(&current);
    Ok(Some(run))
}

/// Partitions the lines by case into temporary files, then evaluates each part.
fn spill<'a>(path: &Path, units: &'a Units, opts: &'a CheckOptions) -> Result<Run<'a>, CheckError> {
    let dir = tempfile::tempdir().map_err(|e| CheckError::io(path, e))?;
    let part_path = |i: u64| -> PathBuf { dir.path().join(format!("part-{i}.jsonl")) };
    let mut parts = Vec::new();
    for i in 0..SPILL_PARTS {
        let f = File::create(part_path(i)).map_err(|e| CheckError::io(path, e))?;
        parts.push(BufWriter::new(f));
    }
    let mut run = Run::new(opts, units);
    let hasher = throwaway_hasher();
    let mut write_error = None;
    for_each_event(path, &hasher, |n, line, parsed| {
        let Some(e) = run.take(parsed) else { return true };
        run.observe(&e);
        if let Some(case) = &e.case {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            case.hash(&mut h);
            let part = &mut parts[(h.finish() % SPILL_PARTS) as usize];
            if let Err(err) = writeln!(part, "{n}\t{line}") {
                write_error = Some(err);
                return false;
            }
        }
        true
    })?;
    if let Some(e) = write_error {
        return Err(CheckError::io(dir.path(), e));
    }
    for mut p in parts {
        p.flush().map_err(|e| CheckError::io(dir.path(), e))?;
    }
    if run.error_count > 0 {
        return Ok(run);
    }
    for i in 0..SPILL_PARTS {
        evaluate_part(&part_path(i), &mut run, &hasher)?;
    }
    Ok(run)
}

fn evaluate_part(part: &Path, run: &mut Run, hasher: &PatientHasher) -> Result<(), CheckError> {
    let mut cases: HashMap<CaseId, Vec<Event>> = HashMap::new();
    for line in open(part)?.lines() {
        let line = line.map_err(|e| CheckError::io(part, e))?;
        let Some((n, text)) = line.split_once('\t') else {
            continue;
        };
        let e = Event::from_line(text, n.parse().unwrap_or(0), hasher)
            .map_err(|_| CheckError::io(part, "en redan kontrollerad rad går inte längre att läsa"))?;
        if let Some(c) = e.case.clone() {
            cases.entry(c).or_default().push(e);
        }
    }
    let mut ids: Vec<CaseId> = cases.keys().cloned().collect();
    ids.sort();
    for id in ids {
        if let Some(events) = cases.remove(&id) {
            run.case_done(&events);
        }
    }
    Ok(())
}

/// The JSON contract of SPEC §8: an array of findings.
pub fn to_json(findings: &[Finding]) -> String {
    let mut out = String::from("[");
    for (i, f) in findings.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        out.push_str(&serde_json::to_string(f).unwrap_or_default());
    }
    out.push_str(if findings.is_empty() { "]\n" } else { "\n]\n" });
    out
}

/// A table for a person to read, in Swedish.
pub fn to_text(findings: &[Finding], as_of: DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let fmt = |t: &chrono::DateTime<chrono::FixedOffset>| t.format("%Y-%m-%d %H:%M:%S %:z").to_string();
    let mut out = format!(
        "{:<32} {:<20} {:<20} {:<26} {:<8} {:<26} {:>9}\n",
        "Regel", "Ärende", "Ansvarig enhet", "Senast", "Status", "Utfört", "Min. sent"
    );
    for f in findings {
        let _ = writeln!(
            out,
            "{:<32} {:<20} {:<20} {:<26} {:<8} {:<26} {:>9}",
            f.rule.as_str(),
            f.case.as_ref().map_or("–", |c| c.as_str()),
            f.unit.as_ref().map_or("(ingen)", |u| u.as_str()),
            fmt(&f.due),
            match f.status {
                crate::rules::Status::Late => "sen",
                crate::rules::Status::Missing => "saknas",
            },
            f.done.as_ref().map_or("–".to_string(), fmt),
            f.late_minutes.map_or("–".to_string(), |m| m.to_string()),
        );
    }
    let late = findings
        .iter()
        .filter(|f| f.status == crate::rules::Status::Late)
        .count();
    let _ = writeln!(
        out,
        "\n{} avvikelser ({} sena, {} saknas) per {}",
        findings.len(),
        late,
        findings.len() - late,
        crate::calendar::in_stockholm(as_of).format("%Y-%m-%d %H:%M:%S %:z")
    );
    out
}
