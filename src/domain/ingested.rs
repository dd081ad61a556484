//! What ingest hands to storage: a validated event with its raw line and
//! content hash, and why a batch was refused. Shared by `ingest` (which
//! parses) and `store` (which stores), so neither imports the other.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Event, FieldErrors};

/// One validated event with what storage needs besides it.
#[derive(Debug, Clone)]
pub struct IngestEvent {
    pub line: usize,
    pub event: Event,
    /// The line as received, the patient number replaced by its hash.
    pub raw: String,
    /// SHA-256 over the normalised content: equal for the same event in JSON or CSV.
    pub content_hash: String,
}

/// The identity of an event's content, independent of its source format:
/// SHA-256 over its fields, each ended by 0x1e, in hex. Every stored
/// event's hash was made so; the pieces are fed to the hash as they lie
/// (a third of the parsing of a line went to copying them first).
pub fn content_hash(e: &Event) -> String {
    fn part(h: &mut Sha256, p: &[u8]) {
        h.update(p);
        h.update([0x1e]);
    }
    let mut h = Sha256::new();
    part(&mut h, e.kind.as_str().as_bytes());
    part(&mut h, e.case.as_ref().map_or(&b""[..], |c| c.0.as_bytes()));
    // The instant, not its spelling: 10:00Z and 12:00+02:00 are the same event.
    let mut at = [0u8; 20];
    match utc_seconds(&e.at, &mut at) {
        Some(text) => part(&mut h, text),
        None => part(
            &mut h,
            e.at.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .as_bytes(),
        ),
    }
    part(&mut h, e.unit.0.as_bytes());
    for (i, u) in e.to.iter().enumerate() {
        if i > 0 {
            h.update("\u{1f}".as_bytes());
        }
        h.update(u.as_str().as_bytes());
    }
    h.update([0x1e]);
    part(&mut h, e.reference.as_ref().map_or(&b""[..], |r| r.0.as_bytes()));
    match &e.value {
        Some(v) => part(&mut h, v.to_stored().as_bytes()),
        None => part(&mut h, b""),
    }
    part(&mut h, e.patient.as_ref().map_or(&b""[..], |p| p.0.as_bytes()));
    // Only when given, so the hash of every event stored before the field
    // existed stays what it was.
    if let Some(k) = &e.kommun {
        h.update(b"kommun");
        part(&mut h, k.as_bytes());
    }
    let mut out = String::with_capacity(64);
    for b in h.finalize() {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// `at` in UTC as RFC 3339 to the second with a `Z`, written into `buf`
/// (what chrono's `AutoSi` gives an instant on a whole second); `None` for
/// a fraction of a second or a year outside 0–9999, which chrono spells.
fn utc_seconds<'b>(at: &chrono::DateTime<chrono::FixedOffset>, buf: &'b mut [u8; 20]) -> Option<&'b [u8]> {
    use chrono::{Datelike, Timelike};
    let t = at.naive_utc();
    if t.nanosecond() != 0 || !(0..=9999).contains(&t.year()) {
        return None;
    }
    let digits = |buf: &mut [u8; 20], at: usize, n: u32, width: usize| {
        let mut n = n;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    digits(buf, 0, t.year() as u32, 4);
    digits(buf, 5, t.month(), 2);
    digits(buf, 8, t.day(), 2);
    digits(buf, 11, t.hour(), 2);
    digits(buf, 14, t.minute(), 2);
    digits(buf, 17, t.second(), 2);
    for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'Z')] {
        buf[i] = c;
    }
    Some(&buf[..])
}

/// An event id already stored (or repeated in the batch) with other content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub line: usize,
    pub id: String,
    pub message: String,
}

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{}", .0.summary())]
    Invalid(FieldErrors),
    #[error("{} händelse-id finns redan med annat innehåll", .0.len())]
    Conflict(Vec<Conflict>),
    #[error(transparent)]
    Db(#[from] anyhow::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PatientHasher, Secret};

    /// The hash as it was first written, field by field into strings: every
    /// stored event's hash was made so, and a file sent again must find them.
    fn as_first_written(e: &Event) -> String {
        let mut h = Sha256::new();
        let to: Vec<&str> = e.to.iter().map(|u| u.as_str()).collect();
        let parts = [
            e.kind.as_str().to_string(),
            e.case.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
            e.at.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            e.unit.0.clone(),
            to.join("\u{1f}"),
            e.reference.as_ref().map(|r| r.0.clone()).unwrap_or_default(),
            e.value.as_ref().map(|v| v.to_stored()).unwrap_or_default(),
            e.patient.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
        ];
        for p in parts {
            h.update(p.as_bytes());
            h.update([0x1e]);
        }
        if let Some(k) = &e.kommun {
            h.update(b"kommun");
            h.update(k.as_bytes());
            h.update([0x1e]);
        }
        hex::encode(h.finalize())
    }

    #[test]
    fn the_hash_is_the_one_stored_events_have() {
        let hasher = PatientHasher::new(Secret::new(b"k".to_vec()));
        let lines = [
            r#"{"id":"e1","case":"C1","type":"bedomning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
            r#"{"id":"e2","case":"C1","type":"bedomning","at":"2026-05-04T06:00:00Z","unit":"AVD1"}"#,
            r#"{"id":"e3","case":"C1","type":"bedomning","at":"2026-05-04T08:00:00.250+02:00","unit":"AVD1"}"#,
            r#"{"id":"e4","case":"C1","type":"bedomning","at":"2026-05-04T08:00:00.000001+02:00","unit":"AVD1"}"#,
            r#"{"id":"e5","case":"C1","type":"inskrivningsmeddelande","at":"2026-01-01T00:30:00+01:00","unit":"AVD1","to":["VC1","KOM1"],"value":"2026-01-05"}"#,
            r#"{"id":"e6","case":"C1","type":"kvittens","at":"2026-03-29T02:30:00+01:00","unit":"VC1","ref":"e5"}"#,
            r#"{"id":"e7","case":"C1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","patient":"19121212-1212","kommun":"0180"}"#,
            r#"{"id":"e8","type":"bemanning","at":"2026-12-26T07:00:00+01:00","unit":"AVD1"}"#,
        ];
        let mut hashes = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            let e = Event::from_line(line, n + 1, &hasher).unwrap_or_else(|e| panic!("line {}: {e:?}", n + 1));
            assert_eq!(content_hash(&e), as_first_written(&e), "line {}", n + 1);
            hashes.push(content_hash(&e));
        }
        assert_eq!(hashes[0], hashes[1], "the same instant spelt two ways");
        assert_ne!(hashes[0], hashes[2], "a fraction of a second counts");
    }

    #[test]
    fn the_instant_is_spelt_as_chrono_spells_it() {
        use chrono::{FixedOffset, NaiveDate, TimeZone};
        let at = |y, mo, d, h, mi, s, nano, off: i32| {
            let t = NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_nano_opt(h, mi, s, nano)
                .unwrap();
            FixedOffset::east_opt(off).unwrap().from_local_datetime(&t).unwrap()
        };
        let instants = [
            at(2026, 5, 4, 8, 0, 0, 0, 7200),
            // A negative offset across midnight and the year.
            at(2026, 12, 31, 22, 30, 5, 0, -5 * 3600),
            at(999, 1, 1, 0, 0, 0, 0, 0),
            at(1, 1, 1, 12, 0, 0, 0, 0),
            at(9999, 12, 31, 23, 59, 59, 0, 0),
            // A leap second and fractions are left to chrono.
            at(2016, 12, 31, 23, 59, 59, 1_000_000_000, 0),
            at(2026, 5, 4, 8, 0, 0, 250_000_000, 3600),
        ];
        for t in instants {
            let chrono = t
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            let mut buf = [0u8; 20];
            if let Some(ours) = utc_seconds(&t, &mut buf) {
                assert_eq!(std::str::from_utf8(ours).unwrap(), chrono, "{t}");
            } else {
                assert!(
                    chrono.contains('.') || chrono.contains(":60"),
                    "{chrono} left to chrono"
                );
            }
        }
    }
}
