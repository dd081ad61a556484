//! `svu-vakt bench`: the county-scale benchmark. It generates demo data,
//! imports it, runs a first full scan, a full re-scan that files nothing, an
//! incremental scan after 10 000 new events across the year, one after
//! 10 000 events of the last ten days, one with nothing new and the median
//! of 21 more, and `check` on the files; then
//! runs the plain-SQL peer of the four core rules (`ops/bench/peer-*.sql`,
//! as a region's analysis unit would write them) on the same database,
//! checks that it finds the very breaches the scan filed, and prints a
//! table: time, rate and peak memory per step, and the peer beside our scan.
//!
//! Peak memory is the process's resident high-water mark, reset before each
//! step (Linux `/proc/self/clear_refs`), so each step is measured alone.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::QueryResult;

use crate::config::Config;
use crate::demo::{self, DemoOptions};
use crate::rules::RuleId;
use crate::service::Services;
use crate::store::{peer, DbConn, DbUrl};

const CORE_RULES: [RuleId; 4] = [
    RuleId::Inskrivningsmeddelande24h,
    RuleId::KallelseSip,
    RuleId::KvittensUtskrivningsklar,
    RuleId::BemanningStorhelg,
];
/// New events for the incremental step.
const NEW_EVENTS: usize = 10_000;

pub struct BenchOptions {
    pub cases: usize,
    pub seed: u64,
    /// An empty database to run in; default a new SQLite file in a temp directory.
    pub database_url: Option<String>,
    /// Run the plain-SQL peer and compare.
    pub peer: bool,
    /// Import the demo's file as written, grouped by case in case id
    /// order; by default its lines are imported in a random order, as the
    /// import target is set.
    pub case_order: bool,
}

struct Step {
    name: &'static str,
    work: String,
    secs: f64,
    rate: String,
    peak_mb: f64,
}

/// The instant every step judges as of: after the demo year, so every
/// obligation of the data is due.
fn as_of() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-01-10T00:00:00+01:00")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Synthetic data gets a throwaway patient key made for this run (never a
/// key in the source), and no key file is written anywhere; a key already
/// set in `SVU_VAKT_PATIENT_KEY` is used as it is. Call before the config
/// is loaded, which reads it.
pub fn throwaway_key() -> anyhow::Result<()> {
    if std::env::var_os("SVU_VAKT_PATIENT_KEY").is_none() {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| anyhow::anyhow!("ingen slumpkälla: {e}"))?;
        std::env::set_var("SVU_VAKT_PATIENT_KEY", hex::encode(key));
    }
    Ok(())
}

pub fn run(base: &Config, opts: &BenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = opts
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let services = Services::build(&bench_config(base, &url)?)?;
    anyhow::ensure!(
        crate::store::events::count(&mut *services.pool.get()?)? == 0,
        "bench kräver en tom databas: {} innehåller händelser",
        crate::store::redact_url(&url)
    );
    let mut steps = Vec::new();
    let files = Files {
        units: dir.path().join("units.json"),
        events: dir.path().join("events.jsonl"),
        shuffled: dir.path().join("shuffled.jsonl"),
        new_events: dir.path().join("new.jsonl"),
        recent_events: dir.path().join("recent.jsonl"),
    };
    let events = demo_step(&mut steps, opts, &files)?;
    let imported = match opts.case_order {
        true => &files.events,
        false => {
            measure(&mut steps, "shuffle", || {
                shuffle(&files.events, &files.shuffled, opts.seed)
            })?;
            label(&mut steps, format!("{events} lines in a random order"), events, "lines");
            &files.shuffled
        }
    };
    let stored = measure(&mut steps, "import", || {
        crate::cli::import_quiet(&services, Some(&files.units), Some(imported), None)
    })?;
    let order = if opts.case_order {
        "in case order"
    } else {
        "in random order"
    };
    label(&mut steps, format!("{stored} events, {order}"), stored, "events");
    let later = scan_steps(&mut steps, &services, opts.seed, &files)?;
    let checked = measure(&mut steps, "check (files)", || {
        check(&files.units, &files.events, as_of())
    })?;
    label(
        &mut steps,
        format!("{events} events, {checked} findings"),
        events,
        "events",
    );
    if !opts.peer {
        print_table(&steps, &url);
        return Ok(());
    }
    peer_step(&mut steps, &services, later, events, &url)
}

/// The bench's files, in its temporary directory.
struct Files {
    units: std::path::PathBuf,
    events: std::path::PathBuf,
    /// The same lines in a random order.
    shuffled: std::path::PathBuf,
    /// The events of the incremental steps: new cases across the year, and
    /// new cases of the last ten days.
    new_events: std::path::PathBuf,
    recent_events: std::path::PathBuf,
}

/// The installation's config on `url`, with no mail, no schedule and the
/// national profile.
fn bench_config(base: &Config, url: &str) -> anyhow::Result<Config> {
    let mut config = base.clone();
    config.database_url = DbUrl::parse(url)?;
    config.database_url_text = url.to_string();
    config.mail.smtp_url = crate::mail::SmtpUrl(String::new());
    config.scan.schedule = None;
    // Nothing is ingested while the bench scans, so no arrival can commit
    // after a scan began: an incremental step sees exactly what arrived
    // after the scan before it. (A service's margin reaches back 10 minutes
    // before the last scan, for stamps that commit late; with the bench's
    // steps seconds apart it would make every step see the one before.)
    config.scan.arrival_margin = chrono::Duration::zero();
    // The peer is written for the national profile.
    config.rules = Default::default();
    Ok(config)
}

/// The demo county written to files: the events written.
fn demo_step(steps: &mut Vec<Step>, opts: &BenchOptions, files: &Files) -> anyhow::Result<usize> {
    let demo_opts = DemoOptions {
        seed: opts.seed,
        cases: opts.cases,
        from: year_of_2026().0,
        to: year_of_2026().1,
    };
    let events = measure(steps, "demo", || {
        std::fs::write(&files.units, demo::units_json())?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&files.events)?);
        let n = demo::write_events(&demo_opts, &mut out)?;
        on_disk(out)?;
        Ok(n)
    })?;
    label(
        steps,
        format!("{} cases, {events} events to files", opts.cases),
        events,
        "events",
    );
    Ok(events)
}

/// The lines of `from` written to `to` in a random order fixed by `seed`,
/// with memory for a 64th of the file: each line dealt to one of 64 files at
/// random, each of those shuffled whole and appended.
fn shuffle(from: &Path, to: &Path, seed: u64) -> anyhow::Result<usize> {
    use std::io::BufRead;
    const PILES: u64 = 64;
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let dir = tempfile::tempdir_in(to.parent().unwrap_or(Path::new(".")))?;
    let pile = |i: u64| dir.path().join(format!("{i}.jsonl"));
    let mut piles = (0..PILES)
        .map(|i| Ok(std::io::BufWriter::new(std::fs::File::create(pile(i))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut n = 0;
    for line in std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(from)?).lines() {
        writeln!(piles[(next() % PILES) as usize], "{}", line?)?;
        n += 1;
    }
    // Not synced: they are read back at once and removed, and a removed
    // file's unwritten pages are dropped, never written.
    for p in &mut piles {
        p.flush()?;
    }
    drop(piles);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(to)?);
    for i in 0..PILES {
        let text = std::fs::read_to_string(pile(i))?;
        let mut lines: Vec<&str> = text.lines().collect();
        for k in (1..lines.len()).rev() {
            lines.swap(k, (next() % (k as u64 + 1)) as usize);
        }
        for l in lines {
            writeln!(out, "{l}")?;
        }
    }
    on_disk(out)?;
    Ok(n)
}

/// The first full scan, a full re-scan, then three incremental scans an
/// hour apart: after the bench's feed (new cases across the year, which
/// reach back to January), after a realistic feed (the cases of the last
/// ten days, as a coordination system's export brings them) and with
/// nothing new, then [`IDLE_SCANS`] more with nothing new. Returns the
/// instant the last one judged as of.
fn scan_steps(steps: &mut Vec<Step>, services: &Services, seed: u64, files: &Files) -> anyhow::Result<DateTime<Utc>> {
    let t = as_of();
    let first = measure(steps, "first full scan", || scan(services, t, true))?;
    label(
        steps,
        format!("{} cases, {} deviations filed", first.cases_evaluated, first.filed),
        first.cases_evaluated,
        "cases",
    );
    let again = measure(steps, "full re-scan", || scan(services, t, true))?;
    label(
        steps,
        format!("{} cases, {} filed", again.cases_evaluated, again.filed),
        again.cases_evaluated,
        "cases",
    );
    let year = feed(seed.wrapping_add(1_000_003), year_of_2026(), &files.new_events)?;
    let later = t + chrono::Duration::hours(1);
    incremental(
        steps,
        services,
        "incremental, year feed",
        Some((&files.new_events, year)),
        later,
    )?;
    let ten_days = (
        t.date_naive() - chrono::Duration::days(10),
        t.date_naive() - chrono::Duration::days(1),
    );
    let recent = feed(seed.wrapping_add(2_000_003), ten_days, &files.recent_events)?;
    let later = later + chrono::Duration::hours(1);
    incremental(
        steps,
        services,
        "incremental, 10 days",
        Some((&files.recent_events, recent)),
        later,
    )?;
    let later = later + chrono::Duration::hours(1);
    incremental(steps, services, "incremental, nothing", None, later)?;
    idle_median(steps, services, later)
}

/// Idle scans measured after the single one, a minute apart.
const IDLE_SCANS: i64 = 21;

/// [`IDLE_SCANS`] scans with nothing new, a minute apart, and their
/// median: one takes milliseconds, no more than the machine's own noise
/// from one run to the next. Returns the instant the last judged as of.
fn idle_median(steps: &mut Vec<Step>, services: &Services, from: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let name = "nothing, median of 21";
    reset_peak();
    eprintln!("bench: {name} …");
    let mut secs = Vec::new();
    let mut cases = 0;
    for i in 1..=IDLE_SCANS {
        let started = Instant::now();
        cases += scan(services, from + chrono::Duration::minutes(i), false)?.cases_evaluated;
        secs.push(started.elapsed().as_secs_f64());
    }
    secs.sort_by(f64::total_cmp);
    steps.push(Step {
        name,
        work: String::new(),
        secs: secs[secs.len() / 2],
        rate: String::new(),
        peak_mb: peak_mb(),
    });
    let per_scan = cases / IDLE_SCANS as usize;
    label(
        steps,
        format!("{IDLE_SCANS} scans a minute apart, {per_scan} cases each"),
        per_scan,
        "cases",
    );
    Ok(from + chrono::Duration::minutes(IDLE_SCANS))
}

/// Imports `feed` (a file and its event count), if any, then measures an
/// incremental scan as of `at`.
fn incremental(
    steps: &mut Vec<Step>,
    services: &Services,
    name: &'static str,
    feed: Option<(&Path, usize)>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    if let Some((file, _)) = feed {
        crate::cli::import_quiet(services, None, Some(file), None)?;
    }
    let inc = measure(steps, name, || scan(services, at, false))?;
    let new = feed.map_or(0, |(_, n)| n);
    label(
        steps,
        format!(
            "after {new} new events: {} cases, {} filed",
            inc.cases_evaluated, inc.filed
        ),
        inc.cases_evaluated,
        "cases",
    );
    Ok(())
}

/// The plain-SQL peer on the same database, its breaches compared with the
/// deviations the scans filed.
fn peer_step(
    steps: &mut Vec<Step>,
    services: &Services,
    later: DateTime<Utc>,
    events: usize,
    url: &str,
) -> anyhow::Result<()> {
    let mut conn = services.pool.get()?;
    // As of the last scan's instant: the deviations hold what it saw. Its
    // grace (60 minutes) leaves out dues in the last hour, and the demo has none.
    measure(steps, "SQL peer's index on events (at)", || {
        Ok(peer::index_events_at(&mut conn, true)?)
    })?;
    label(steps, "made for the peer alone".into(), events, "events");
    prepare_peer(&mut conn, later)?;
    let peer = measure(steps, "SQL peer, 4 rules", || Ok(peer_breaches(&mut conn)?))?;
    label(steps, format!("{} breaches", peer.len()), events, "events");
    peer::index_events_at(&mut conn, false)?;
    let ours = our_breaches(&mut conn)?;
    print_table(steps, url);
    compare(&peer, &ours, steps)
}

fn scan(services: &Services, t: DateTime<Utc>, full: bool) -> anyhow::Result<crate::audit::Counts> {
    services
        .scan(Some(t), full)
        .map(|s| s.counts)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn check(units: &Path, events: &Path, t: DateTime<Utc>) -> anyhow::Result<usize> {
    let profile = crate::rules::Profile::by_name("nationell")?;
    let rules = profile.enabled.iter().copied().collect();
    let opts = crate::check::CheckOptions {
        profile,
        rules,
        as_of: t,
    };
    let units = crate::check::load_units(units).map_err(|e| anyhow::anyhow!("{e}"))?;
    let findings = crate::check::check_file(events, &units, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(findings.len())
}

fn year_of_2026() -> (chrono::NaiveDate, chrono::NaiveDate) {
    (
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
    )
}

/// About 10 000 events of cases the database has not seen (their own seed),
/// admitted between the two dates.
fn feed(seed: u64, (from, to): (chrono::NaiveDate, chrono::NaiveDate), path: &Path) -> anyhow::Result<usize> {
    let opts = DemoOptions {
        seed,
        cases: NEW_EVENTS / 13 + 1,
        from,
        to,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let n = demo::write_case_range(&opts, 0, opts.cases, &mut out)?;
    on_disk(out)?;
    Ok(n)
}

/// A file the bench wrote, flushed and on the disk before the step that
/// wrote it ends. Left to the kernel's writeback, the 5 GB of the demo
/// and its shuffled copy at 1 M cases were written while the import and
/// the first scan ran, and every commit's `fsync` waited behind them
/// (ext4 orders a journal commit after the data it covers): the bench's
/// first full scan took 30.5 s where the same scan as a process of its
/// own, the files already on disk, took 26.6 s.
fn on_disk(out: std::io::BufWriter<std::fs::File>) -> anyhow::Result<()> {
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

fn measure<T>(steps: &mut Vec<Step>, name: &'static str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    reset_peak();
    eprintln!("bench: {name} …");
    let started = Instant::now();
    let out = f()?;
    steps.push(Step {
        name,
        work: String::new(),
        secs: started.elapsed().as_secs_f64(),
        rate: String::new(),
        peak_mb: peak_mb(),
    });
    Ok(out)
}

fn label(steps: &mut [Step], work: String, n: usize, unit: &str) {
    if let Some(s) = steps.last_mut() {
        s.rate = format!("{:.0} {unit}/s", n as f64 / s.secs.max(1e-9));
        s.work = work;
        eprintln!(
            "bench: {} {:.4} s, {}, peak {:.0} MB: {}",
            s.name, s.secs, s.rate, s.peak_mb, s.work
        );
    }
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn print_table(steps: &[Step], url: &str) {
    println!("svu-vakt bench on {}", crate::store::redact_url(url));
    println!(
        "{:<24} {:>10} {:>18} {:>10}  work",
        "step", "time (s)", "rate", "peak MB"
    );
    for s in steps {
        println!(
            "{:<24} {:>10.4} {:>18} {:>10.0}  {}",
            s.name, s.secs, s.rate, s.peak_mb, s.work
        );
    }
}

/// The peer's helper tables: T, Stockholm's UTC offsets, and the staffing
/// days to judge (from the earliest event's local date up to T).
fn prepare_peer(conn: &mut DbConn, t: DateTime<Utc>) -> anyhow::Result<()> {
    peer::prepare(conn, t.naive_utc(), &stockholm_offsets(1990, 2100))?;
    let Some(earliest) = peer::earliest_event(conn, t.naive_utc())? else {
        return Ok(());
    };
    let profile = crate::rules::Profile::by_name("nationell")?;
    let days = crate::rules::bemanning::staffing_dues(
        crate::calendar::local_date(earliest.and_utc()),
        &crate::calendar::Calendar::new(),
        &profile,
        t,
    );
    let days: Vec<String> = days
        .into_iter()
        .map(|(day, _)| day.format("%Y-%m-%d").to_string())
        .collect();
    peer::add_staffing_days(conn, &days)?;
    Ok(())
}

/// [start, end) UTC intervals with Stockholm's offset, found hour by hour.
fn stockholm_offsets(from_year: i32, to_year: i32) -> Vec<(NaiveDateTime, NaiveDateTime, i32)> {
    use chrono::Offset;
    let offset_at = |t: DateTime<Utc>| {
        t.with_timezone(&chrono_tz::Europe::Stockholm)
            .offset()
            .fix()
            .local_minus_utc()
    };
    let start = chrono::NaiveDate::from_ymd_opt(from_year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
        .and_utc();
    let end = chrono::NaiveDate::from_ymd_opt(to_year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
        .and_utc();
    let mut out = Vec::new();
    let (mut from, mut current) = (start, offset_at(start));
    let mut t = start;
    while t < end {
        t += chrono::Duration::hours(1);
        let o = offset_at(t);
        if o != current || t >= end {
            out.push((from.naive_utc(), t.naive_utc(), current));
            (from, current) = (t, o);
        }
    }
    out
}

type Breach = (String, Option<String>, Option<String>, i64, String);

/// Dues compared as whole seconds since the epoch.
fn breaches(rows: Vec<peer::Breach>) -> BTreeSet<Breach> {
    rows.into_iter()
        .map(|(r, c, u, due, s)| (r, c, u, due.and_utc().timestamp(), s))
        .collect()
}

fn peer_breaches(conn: &mut DbConn) -> QueryResult<BTreeSet<Breach>> {
    Ok(breaches(peer::peer_breaches(conn)?))
}

fn our_breaches(conn: &mut DbConn) -> QueryResult<BTreeSet<Breach>> {
    let names: Vec<&str> = CORE_RULES.iter().map(|r| r.as_str()).collect();
    Ok(breaches(peer::filed_breaches(conn, &names)?))
}

fn compare(peer: &BTreeSet<Breach>, ours: &BTreeSet<Breach>, steps: &[Step]) -> anyhow::Result<()> {
    let secs = |name: &str| steps.iter().find(|s| s.name == name).map_or(0.0, |s| s.secs);
    let (peer_s, scan_s) = (secs("SQL peer, 4 rules"), secs("first full scan"));
    println!(
        "\nSQL peer {peer_s:.2} s for {} breaches; our first full scan {scan_s:.2} s (all rules, filing and routing): peer/scan = {:.2}",
        peer.len(),
        peer_s / scan_s.max(1e-9)
    );
    let only_peer: Vec<&Breach> = peer.difference(ours).take(5).collect();
    let only_ours: Vec<&Breach> = ours.difference(peer).take(5).collect();
    if only_peer.is_empty() && only_ours.is_empty() {
        println!(
            "Same breaches: the peer and the scan agree on all {} of the four core rules.",
            ours.len()
        );
        Ok(())
    } else {
        anyhow::bail!(
            "the peer and the scan disagree: {} only in the peer (e.g. {only_peer:?}), {} only in the scan (e.g. {only_ours:?})",
            peer.difference(ours).count(),
            ours.difference(peer).count()
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shuffle_keeps_every_line_once_in_another_order() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a"), dir.path().join("b"));
        let lines: Vec<String> = (0..5000).map(|i| format!("{{\"id\":\"e{i}\"}}")).collect();
        std::fs::write(&from, lines.join("\n") + "\n").unwrap();
        assert_eq!(super::shuffle(&from, &to, 7).unwrap(), 5000);
        let text = std::fs::read_to_string(&to).unwrap();
        let got: Vec<&str> = text.lines().collect();
        assert_ne!(
            got,
            lines.iter().map(String::as_str).collect::<Vec<_>>(),
            "not shuffled"
        );
        let (mut a, mut b) = (got.clone(), lines.iter().map(String::as_str).collect::<Vec<_>>());
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "every line once");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "the piles are removed"
        );
    }
}
