//! Synthetic county data for demos and benchmarks: Region Östergötland's
//! hospitals and vårdcentraler and its 13 kommuner, and N cases with
//! realistic timings and a realistic share of late or missing steps. The
//! same seed gives the same output, byte for byte. Patients get synthetic,
//! checksum-valid numbers; nothing here describes a real person.

mod case;
mod county;
mod jsonl;

pub use county::{huvudman_of, units, units_json, KOMMUNER};

use case::plan_case;
use county::wards;
use jsonl::push_line;

use std::fmt::Write as _;
use std::io::Write;

use chrono::{DateTime, NaiveDate, SecondsFormat};
use chrono_tz::Europe::Stockholm;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub cases: usize,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// SplitMix64: tiny, fast, and stable across platforms and versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(1) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

pub(crate) struct Ev {
    pub(crate) n: u8,
    pub(crate) kind: &'static str,
    pub(crate) at: i64,
    pub(crate) unit: String,
    pub(crate) to: Vec<String>,
    pub(crate) reference: Option<u8>,
    pub(crate) value: Option<String>,
    pub(crate) patient: Option<String>,
    /// The patient's kommun, on the inskrivning (SPEC §3.2).
    pub(crate) kommun: Option<String>,
}

pub(crate) const HOUR: i64 = 3600;
pub(crate) const DAY: i64 = 86_400;

/// Writes every case as JSON Lines, then the staffing events; returns the
/// number of events written.
pub fn write_events<W: Write>(opts: &DemoOptions, out: &mut W) -> std::io::Result<usize> {
    let n = write_case_range(opts, 0, opts.cases, out)?;
    Ok(n + write_staffing(opts, out)?)
}

/// `bemanning` events on the storhelg staffing days between `from` and `to`:
/// most units register that they are staffed, some forget, some are closed.
pub fn write_staffing<W: Write>(opts: &DemoOptions, out: &mut W) -> std::io::Result<usize> {
    let cal = crate::calendar::Calendar::new();
    let mut r = Rng(opts.seed ^ 0x5354_4146_4649_4E47);
    let mut buf = String::new();
    let mut n = 0;
    let units = units();
    for day in cal.staffing_days(opts.from, opts.to, &std::collections::BTreeMap::new()) {
        for u in &units {
            if !r.chance(0.8) {
                continue;
            }
            let secs = r.range(7 * HOUR + 30 * 60, 9 * HOUR);
            let t = crate::calendar::local_instant(day.date, chrono::NaiveTime::MIN).timestamp() + secs;
            let at = DateTime::from_timestamp(t, 0)
                .unwrap_or_default()
                .with_timezone(&Stockholm);
            let _ = writeln!(
                buf,
                "{{\"id\":\"BEM-{}-{}\",\"type\":\"bemanning\",\"at\":\"{}\",\"unit\":\"{}\"}}",
                day.date,
                u.id,
                at.to_rfc3339_opts(SecondsFormat::Secs, false),
                u.id
            );
            n += 1;
        }
    }
    out.write_all(buf.as_bytes())?;
    Ok(n)
}

/// Writes cases `start..start + n`: each case depends only on the seed and
/// its number, so any range comes out the same as in the whole file.
pub fn write_case_range<W: Write>(opts: &DemoOptions, start: usize, n: usize, out: &mut W) -> std::io::Result<usize> {
    let wards = wards();
    let from = opts.from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp();
    let to = opts
        .to
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp()
        .max(from + DAY);
    let mut buf = String::with_capacity(1 << 20);
    let mut count = 0;
    for i in start..start + n {
        count += case_lines(opts.seed, i, from, to, &wards, &mut buf);
        if buf.len() > (1 << 20) - 8192 {
            out.write_all(buf.as_bytes())?;
            buf.clear();
        }
    }
    out.write_all(buf.as_bytes())?;
    Ok(count)
}

fn case_lines(seed: u64, i: usize, from: i64, to: i64, wards: &[String], buf: &mut String) -> usize {
    let mut r = Rng(seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let case = format!("SVU-{seed}-{i:07}");
    let mut evs = plan_case(&mut r, from, to, wards);
    // A readmission's events (numbered from 201) are a case of their own,
    // written after the first: the file stays grouped by case.
    evs.sort_by_key(|e| (e.n > 200, e.at, e.n));
    let again = format!("{case}-R");
    for e in &mut evs {
        if e.n > 200 {
            e.n -= 200;
            e.reference = e.reference.map(|r| r - 200);
            push_line(buf, &again, e);
        } else {
            push_line(buf, &case, e);
        }
    }
    evs.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PatientHasher, Secret, UnitKind};

    fn opts(seed: u64) -> DemoOptions {
        DemoOptions {
            seed,
            cases: 300,
            from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        write_events(&opts(7), &mut a).unwrap();
        write_events(&opts(7), &mut b).unwrap();
        write_events(&opts(8), &mut c).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_generated_event_passes_validation() {
        let mut out = Vec::new();
        let n = write_events(&opts(3), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let hasher = PatientHasher::new(Secret::new(b"k".to_vec()));
        let events = crate::ingest::parse_events(&text, &hasher).unwrap();
        assert_eq!(events.len(), n);
        assert!(n > 300 * 8, "a case has about ten events, got {n} for 300");
        let units = crate::ingest::parse_units(&units_json(), false).unwrap();
        assert_eq!(
            units
                .iter()
                .filter(|u| u.kind == UnitKind::Kommun && u.parent.is_none())
                .count(),
            13
        );
    }
}
