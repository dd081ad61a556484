//! Synthetic county data for demos and benchmarks: Region Östergötland's
//! hospitals and vårdcentraler and its 13 kommuner, and N cases with
//! realistic timings and a realistic share of late or missing steps. The
//! same seed gives the same output, byte for byte. Patients get synthetic,
//! checksum-valid numbers; nothing here describes a real person.

mod jsonl;

use jsonl::push_line;

use std::fmt::Write as _;
use std::io::Write;

use chrono::{DateTime, NaiveDate, SecondsFormat};
use chrono_tz::Europe::Stockholm;

use crate::domain::{Unit, UnitId, UnitKind};

pub const KOMMUNER: [(&str, &str); 13] = [
    ("BOXHOLM", "Boxholm"),
    ("FINSPANG", "Finspång"),
    ("KINDA", "Kinda"),
    ("LINKOPING", "Linköping"),
    ("MJOLBY", "Mjölby"),
    ("MOTALA", "Motala"),
    ("NORRKOPING", "Norrköping"),
    ("SODERKOPING", "Söderköping"),
    ("VADSTENA", "Vadstena"),
    ("VALDEMARSVIK", "Valdemarsvik"),
    ("YDRE", "Ydre"),
    ("ATVIDABERG", "Åtvidaberg"),
    ("ODESHOG", "Ödeshög"),
];

const REGION: &str = "Region Östergötland";
const SJUKHUS: [(&str, &str); 3] = [
    ("US", "Universitetssjukhuset i Linköping"),
    ("VIN", "Vrinnevisjukhuset i Norrköping"),
    ("LIM", "Lasarettet i Motala"),
];
const KLINIKER: [(&str, &str); 3] = [
    ("MED", "Medicinkliniken"),
    ("GER", "Geriatriska kliniken"),
    ("ORT", "Ortopedkliniken"),
];

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

fn unit(id: String, name: String, kind: UnitKind, huvudman: &str, parent: Option<&str>, email: Option<String>) -> Unit {
    Unit {
        id: UnitId(id),
        name,
        kind,
        huvudman: huvudman.into(),
        parent: parent.map(|p| UnitId(p.into())),
        email,
        storhelg: true,
        email_given: true,
        chef_email: None,
        chef_email_given: true,
    }
}

/// The synthetic county's units; the same for every seed.
pub fn units() -> Vec<Unit> {
    let mut out = vec![
        unit(
            "RO-SJUKVARD".into(),
            "Centrum för sjukhusvård".into(),
            UnitKind::Slutenvard,
            REGION,
            None,
            Some("avvikelse.sjukhusvard@example.se".into()),
        ),
        unit(
            "RO-PRIMARVARD".into(),
            "Primärvårdscentrum".into(),
            UnitKind::Oppenvard,
            REGION,
            None,
            Some("avvikelse.primarvard@example.se".into()),
        ),
    ];
    for (s, sname) in SJUKHUS {
        out.push(unit(
            format!("RO-{s}"),
            sname.into(),
            UnitKind::Slutenvard,
            REGION,
            Some("RO-SJUKVARD"),
            None,
        ));
        for (k, kname) in KLINIKER {
            let klinik = format!("RO-{s}-{k}");
            out.push(unit(
                klinik.clone(),
                format!("{kname}, {sname}"),
                UnitKind::Slutenvard,
                REGION,
                Some(&format!("RO-{s}")),
                Some(format!("{}@example.se", klinik.to_lowercase())),
            ));
            for a in 1..=2 {
                out.push(unit(
                    format!("{klinik}-AVD{a}"),
                    format!("Avdelning {a}, {kname}, {sname}"),
                    UnitKind::Slutenvard,
                    REGION,
                    Some(&klinik),
                    None,
                ));
            }
        }
    }
    for (code, name) in KOMMUNER {
        out.push(unit(
            format!("VC-{code}"),
            format!("Vårdcentralen {name}"),
            UnitKind::Oppenvard,
            REGION,
            Some("RO-PRIMARVARD"),
            Some(format!("vc.{}@example.se", code.to_lowercase())),
        ));
        let root = format!("K-{code}");
        let huvudman = huvudman_of(name);
        out.push(unit(
            root.clone(),
            format!("{huvudman}, socialförvaltningen"),
            UnitKind::Kommun,
            &huvudman,
            None,
            Some(format!("avvikelse@{}.example.se", code.to_lowercase())),
        ));
        out.push(unit(
            format!("{root}-HT"),
            format!("Hemtjänst {name}"),
            UnitKind::Kommun,
            &huvudman,
            Some(&root),
            None,
        ));
        out.push(unit(
            format!("{root}-HSV"),
            format!("Hemsjukvård {name}"),
            UnitKind::Kommun,
            &huvudman,
            Some(&root),
            None,
        ));
    }
    out
}

/// "Linköpings kommun", but "Motala kommun": a name ending in a vowel takes no s.
pub fn huvudman_of(kommun: &str) -> String {
    if kommun.ends_with(['a', 'e', 'y', 'o']) {
        format!("{kommun} kommun")
    } else {
        format!("{kommun}s kommun")
    }
}

fn wards() -> Vec<String> {
    let mut w = Vec::new();
    for (s, _) in SJUKHUS {
        for (k, _) in KLINIKER {
            for a in 1..=2 {
                w.push(format!("RO-{s}-{k}-AVD{a}"));
            }
        }
    }
    w
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

fn plan_case(r: &mut Rng, from: i64, to: i64, wards: &[String]) -> Vec<Ev> {
    let mut evs: Vec<Ev> = Vec::with_capacity(16);
    let push = |evs: &mut Vec<Ev>, kind, at, unit: &str, to: Vec<String>, reference, value: Option<String>| {
        let n = evs.len() as u8 + 1;
        evs.push(Ev {
            n,
            kind,
            at,
            unit: unit.to_string(),
            to,
            reference,
            value,
            patient: None,
        });
        n
    };
    let k = KOMMUNER[r.below(13) as usize].0;
    let mut ward = wards[r.below(wards.len() as u64) as usize].clone();
    let vc = format!("VC-{k}");
    let recipients = vec![format!("K-{k}-HT"), format!("K-{k}-HSV"), vc.clone()];
    let admit = r.range(from, to);
    push(&mut evs, "inskrivning", admit, &ward, vec![], None, None);
    evs[0].patient = Some(personnummer(r));
    let mut start = admit;
    if r.chance(0.10) {
        start = admit + r.range(4 * HOUR, 48 * HOUR);
        push(&mut evs, "bedomning", start, &ward, vec![], None, None);
    }
    let im_at = pick(
        r,
        &[
            (0.86, start + 600, start + 20 * HOUR),
            (0.10, start + 24 * HOUR + 1, start + 60 * HOUR),
        ],
    );
    if let Some(at) = im_at {
        let im = push(
            &mut evs,
            "inskrivningsmeddelande",
            at,
            &ward,
            recipients.clone(),
            None,
            None,
        );
        for rc in &recipients {
            if let Some(k_at) = pick(
                r,
                &[(0.90, at + 300, at + 18 * HOUR), (0.06, at + 24 * HOUR, at + 72 * HOUR)],
            ) {
                push(&mut evs, "kvittens", k_at, rc, vec![], Some(im), None);
            }
        }
    }
    if r.chance(0.85) {
        push(
            &mut evs,
            "fast_vardkontakt",
            im_at.unwrap_or(start) + r.range(HOUR, 48 * HOUR),
            &vc,
            vec![],
            None,
            None,
        );
    }
    let behov = r.below(100);
    let sip_needed = behov < 45;
    if behov < 75 {
        push(
            &mut evs,
            "behov_av_sip",
            admit + r.range(HOUR, 72 * HOUR),
            &vc,
            vec![],
            None,
            Some(sip_needed.to_string()),
        );
    }
    let samtycke = r.below(100);
    if samtycke < 97 {
        push(
            &mut evs,
            "samtycke_sip",
            admit + r.range(HOUR, 12 * HOUR),
            &ward,
            vec![],
            None,
            Some((samtycke < 93).to_string()),
        );
    }
    let mut sip_by_track = false;
    if r.chance(0.5) {
        let c = ["bla", "gron", "gron", "gul", "gul", "rod"][r.below(6) as usize];
        sip_by_track = matches!(c, "gul" | "rod");
        push(
            &mut evs,
            "sparfarg",
            admit + r.range(2 * HOUR, 48 * HOUR),
            &ward,
            vec![],
            None,
            Some(c.into()),
        );
    }
    if r.chance(0.08) {
        ward = wards[r.below(wards.len() as u64) as usize].clone();
        push(
            &mut evs,
            "overflyttning",
            admit + r.range(6 * HOUR, 72 * HOUR),
            &ward,
            vec![],
            None,
            None,
        );
    }
    if r.chance(0.02) {
        push(
            &mut evs,
            "avslut",
            admit + r.range(DAY, 8 * DAY),
            &ward,
            vec![],
            None,
            Some("avliden".into()),
        );
        return evs;
    }
    let mut uk_at = admit + r.range(20 * HOUR, 10 * DAY);
    let mut uk = None;
    if r.chance(0.95) {
        let mut n = push(
            &mut evs,
            "utskrivningsklar",
            uk_at,
            &ward,
            recipients.clone(),
            None,
            None,
        );
        if r.chance(0.03) {
            let back = uk_at + r.range(HOUR, 20 * HOUR);
            push(&mut evs, "atertag_utskrivningsklar", back, &ward, vec![], Some(n), None);
            uk_at = back + r.range(DAY, 3 * DAY);
            n = push(
                &mut evs,
                "utskrivningsklar",
                uk_at,
                &ward,
                recipients.clone(),
                None,
                None,
            );
        }
        uk = Some(n);
    }
    if let Some(n) = uk {
        let dag0_end = end_of_dag0(uk_at);
        for rc in &recipients {
            if let Some(at) = pick(
                r,
                &[
                    (0.88, uk_at + 60, dag0_end),
                    (0.07, dag0_end + 60, dag0_end + 30 * HOUR),
                ],
            ) {
                push(&mut evs, "kvittens", at, rc, vec![], Some(n), None);
            }
        }
        // The fast vårdkontakt calls to SIP whenever the rules would need one
        // (the documented need, or a yellow or red track).
        if sip_needed || sip_by_track {
            if let Some(at) = pick(
                r,
                &[
                    (0.80, uk_at - 2 * DAY, uk_at + 3 * DAY),
                    (0.12, uk_at + 4 * DAY, uk_at + 7 * DAY),
                ],
            ) {
                push(&mut evs, "kallelse_sip", at, &vc, recipients[..2].to_vec(), None, None);
            }
        }
    }
    let ut = discharge(r, uk_at, k);
    push(&mut evs, "utskrivning", ut, &ward, vec![], None, None);
    // A share of patients comes back within 30 days (SKR: about 10–13 % of
    // those 65 and older): a new case of the same patient.
    if let Some(p) = evs[0].patient.clone() {
        let age = 2026 - p[..4].parse::<i64>().unwrap_or(1950);
        if r.chance(if age >= 65 { 0.13 } else { 0.06 }) {
            let back = ut + r.range(DAY, 30 * DAY);
            evs.extend(readmission(r, back, &ward, &recipients, p));
        }
    }
    evs
}

/// When the patient goes home: about two thirds on dag 0, the others after
/// two to eight days; two kommuner have months when home care lags
/// (Norrköping March–June, Motala September–November) and cross the 3-day
/// line for several months in a row.
fn discharge(r: &mut Rng, uk_at: i64, kommun: &str) -> i64 {
    let month = DateTime::from_timestamp(uk_at, 0)
        .map(|t| chrono::Datelike::month(&t.with_timezone(&Stockholm)))
        .unwrap_or(1);
    let slow =
        (kommun == "NORRKOPING" && (3..=6).contains(&month)) || (kommun == "MOTALA" && (9..=11).contains(&month));
    let days = if slow {
        if r.chance(0.35) {
            0
        } else {
            r.range(3, 14)
        }
    } else if r.chance(0.61) {
        0
    } else {
        r.range(2, 9)
    };
    let start_of_dag0 = end_of_dag0(uk_at) + 1 - DAY;
    (start_of_dag0 + days * DAY + r.range(10 * HOUR, 16 * HOUR)).max(uk_at + 2 * HOUR)
}

/// A short second stay of the same patient, as its own case: admitted,
/// announced, utskrivningsklar, acknowledged, home. Its events carry case
/// marker 200+ so `push_line` files them under the readmission's case id.
fn readmission(r: &mut Rng, admit: i64, ward: &str, recipients: &[String], patient: String) -> Vec<Ev> {
    let mut evs = Vec::with_capacity(8);
    let mut n = 200u8;
    let mut push = |kind: &'static str, at: i64, unit: &str, to: Vec<String>, reference: Option<u8>| {
        n += 1;
        evs.push(Ev {
            n,
            kind,
            at,
            unit: unit.to_string(),
            to,
            reference,
            value: None,
            patient: None,
        });
        n
    };
    push("inskrivning", admit, ward, vec![], None);
    let im = push(
        "inskrivningsmeddelande",
        admit + r.range(HOUR, 20 * HOUR),
        ward,
        recipients.to_vec(),
        None,
    );
    for rc in recipients {
        push("kvittens", admit + r.range(21 * HOUR, 30 * HOUR), rc, vec![], Some(im));
    }
    let uk_at = admit + r.range(DAY, 4 * DAY);
    let uk = push("utskrivningsklar", uk_at, ward, recipients.to_vec(), None);
    for rc in recipients {
        push("kvittens", uk_at + r.range(60, 6 * HOUR), rc, vec![], Some(uk));
    }
    push("utskrivning", uk_at + r.range(3 * HOUR, 20 * HOUR), ward, vec![], None);
    evs[0].patient = Some(patient);
    evs
}

/// One of the weighted windows, or none (the step never happened).
fn pick(r: &mut Rng, windows: &[(f64, i64, i64)]) -> Option<i64> {
    let mut x = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
    for (p, lo, hi) in windows {
        if x < *p {
            return Some(r.range(*lo, *hi));
        }
        x -= p;
    }
    None
}

/// End of dag 0 in local time for a UK sent at `t` (brytpunkt 12:00).
fn end_of_dag0(t: i64) -> i64 {
    let local = DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .with_timezone(&Stockholm);
    let hour = chrono::Timelike::hour(&local);
    let extra = if hour < 12 { 0 } else { DAY };
    let secs_into_day = i64::from(chrono::Timelike::num_seconds_from_midnight(&local));
    t - secs_into_day + extra + DAY - 1
}

fn personnummer(r: &mut Rng) -> String {
    let y = 1925 + r.below(40);
    let m = 1 + r.below(12);
    let d = 1 + r.below(28);
    let serial = 980 + r.below(20);
    let nine = format!("{:02}{m:02}{d:02}{serial:03}", y % 100);
    format!("{y}{m:02}{d:02}-{serial:03}{}", crate::domain::patient::luhn(&nine))
}

/// The units as a JSON array, as `import --units` and `check --units` read them.
pub fn units_json() -> String {
    serde_json::to_string_pretty(&units()).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PatientHasher, Secret};

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
