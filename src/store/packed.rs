//! A case's stored events packed in one value (`case_timelines.packed`),
//! so a scan reads one row per case instead of one row, and ten decoded
//! values, per event. What is packed are the columns the scan reads from
//! `events` ([`EventRow`]), exactly as stored there: unpacked, a row is
//! what `events` gives, and turns into the domain event the same way.
//!
//! The layout (version 1): a version byte, the number of events, then per
//! event id, type, UTC seconds, nanoseconds, offset, unit, recipient units,
//! reference, value, patient hash and kommun. Integers are LEB128 varints
//! (the seconds and the offset zigzagged); a text is its length then its
//! bytes; an optional text is 0 for none, 1 for the same as the event
//! before, else its length + 2 then its bytes (a case's unit, patient and
//! kommun repeat from event to event).

use chrono::NaiveDateTime;

use super::event_rows::EventRow;
use super::stamp::Stamp;

const VERSION: u8 = 1;

/// The columns of one stored event, borrowed (from a row being inserted
/// or one read back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub at: NaiveDateTime,
    pub at_offset: i32,
    pub unit: &'a str,
    pub to_units: &'a str,
    pub ref_id: Option<&'a str>,
    pub value: Option<&'a str>,
    pub patient_hash: Option<&'a str>,
    pub kommun: Option<&'a str>,
}

impl<'a> Fields<'a> {
    pub fn of_row(r: &'a EventRow) -> Fields<'a> {
        Fields {
            id: &r.id,
            event_type: &r.event_type,
            at: r.at.0,
            at_offset: r.at_offset,
            unit: &r.unit,
            to_units: &r.to_units,
            ref_id: r.ref_id.as_deref(),
            value: r.value.as_deref(),
            patient_hash: r.patient_hash.as_deref(),
            kommun: r.kommun.as_deref(),
        }
    }

    /// The order of a case's events in the packed value: by instant, ties by id.
    fn key(&self) -> (NaiveDateTime, &'a str) {
        (self.at, self.id)
    }
}

/// Packs a case's events, sorted by instant and id.
pub fn pack(events: &mut [Fields<'_>]) -> Vec<u8> {
    events.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
    let mut out = Vec::with_capacity(16 + events.len() * 96);
    out.push(VERSION);
    put_uint(&mut out, events.len() as u64);
    let mut prev: Option<&Fields> = None;
    for e in events.iter() {
        put_str(&mut out, e.id);
        put_str(&mut out, e.event_type);
        put_uint(&mut out, zigzag(e.at.and_utc().timestamp()));
        put_uint(&mut out, u64::from(e.at.and_utc().timestamp_subsec_nanos()));
        put_uint(&mut out, zigzag(i64::from(e.at_offset)));
        put_opt(&mut out, Some(e.unit), prev.map(|p| Some(p.unit)));
        put_opt(&mut out, Some(e.to_units), prev.map(|p| Some(p.to_units)));
        put_opt(&mut out, e.ref_id, None);
        put_opt(&mut out, e.value, None);
        put_opt(&mut out, e.patient_hash, prev.map(|p| p.patient_hash));
        put_opt(&mut out, e.kommun, prev.map(|p| p.kommun));
        prev = Some(e);
    }
    out
}

/// The events of `case` packed by [`pack`], as `events` rows, in order.
pub fn unpack(case: &str, bytes: &[u8]) -> Result<Vec<EventRow>, String> {
    let broken = |what: &str| format!("ärendet {case}: den packade tidslinjen är skadad ({what})");
    let mut r = Reader { bytes, at: 0 };
    if r.byte() != Some(VERSION) {
        return Err(broken("okänd version"));
    }
    let n = r.uint().ok_or_else(|| broken("antal"))?;
    // At least 11 bytes an event: a count beyond that is damage, not a size to reserve.
    if n > (bytes.len() / 11) as u64 + 1 {
        return Err(broken("antal"));
    }
    let mut rows: Vec<EventRow> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let row = r.row(case, rows.last()).ok_or_else(|| broken("händelse"))?;
        rows.push(row);
    }
    if r.at != bytes.len() {
        return Err(broken("överskott"));
    }
    Ok(rows)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn uint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn text(&mut self, len: usize) -> Option<String> {
        let end = self.at.checked_add(len)?;
        let s = std::str::from_utf8(self.bytes.get(self.at..end)?).ok()?;
        self.at = end;
        Some(s.to_owned())
    }

    fn str(&mut self) -> Option<String> {
        let len = usize::try_from(self.uint()?).ok()?;
        self.text(len)
    }

    /// An optional text; `prev` is the event before's (none for the first).
    fn opt(&mut self, prev: Option<Option<&str>>) -> Option<Option<String>> {
        match self.uint()? {
            0 => Some(None),
            1 => prev.map(|p| p.map(str::to_owned)),
            n => Some(Some(self.text(usize::try_from(n - 2).ok()?)?)),
        }
    }

    fn row(&mut self, case: &str, prev: Option<&EventRow>) -> Option<EventRow> {
        let id = self.str()?;
        let event_type = self.str()?;
        let secs = unzigzag(self.uint()?);
        let nanos = u32::try_from(self.uint()?).ok()?;
        let at = chrono::DateTime::from_timestamp(secs, nanos)?.naive_utc();
        let at_offset = i32::try_from(unzigzag(self.uint()?)).ok()?;
        let unit = self.opt(prev.map(|p| Some(p.unit.as_str())))??;
        let to_units = self.opt(prev.map(|p| Some(p.to_units.as_str())))??;
        Some(EventRow {
            id,
            case_id: Some(case.to_owned()),
            event_type,
            at: Stamp(at),
            at_offset,
            unit,
            to_units,
            ref_id: self.opt(None)?,
            value: self.opt(None)?,
            patient_hash: self.opt(prev.map(|p| p.patient_hash.as_deref()))?,
            kommun: self.opt(prev.map(|p| p.kommun.as_deref()))?,
        })
    }
}

fn put_uint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// `prev` is the event before's value (`None` for the first event, or a
/// field that is never written as a repeat).
fn put_opt(out: &mut Vec<u8>, v: Option<&str>, prev: Option<Option<&str>>) {
    match v {
        None => out.push(0),
        Some(s) if prev == Some(Some(s)) => out.push(1),
        Some(s) => {
            put_uint(out, s.len() as u64 + 2);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    fn fields<'a>(id: &'a str, when: &str, unit: &'a str, patient: Option<&'a str>) -> Fields<'a> {
        Fields {
            id,
            event_type: "inskrivning",
            at: at(when),
            at_offset: 3600,
            unit,
            to_units: "[]",
            ref_id: None,
            value: None,
            patient_hash: patient,
            kommun: Some("0580"),
        }
    }

    /// Unpacked, every column is what was packed, the events in instant
    /// order with ties by id; repeats and absences survive, and texts
    /// outside ASCII, empty texts and instants before 1970 too.
    #[test]
    fn a_packed_case_unpacks_to_the_rows_it_was_made_of() {
        let mut events = vec![
            fields("e3", "2026-03-02 10:00:00", "avd-1", Some("ph")),
            Fields {
                to_units: r#"["vc-1","kommun-ä"]"#,
                ref_id: Some("e1"),
                value: Some("2026-03-05"),
                at_offset: -7200,
                kommun: None,
                ..fields("e2", "2026-03-01 09:00:00.5", "avd-1", Some("ph"))
            },
            fields("e1", "2026-03-01 09:00:00.5", "vc-Å", None),
            fields("", "1969-12-31 23:59:59", "", Some("")),
        ];
        let packed = pack(&mut events);
        let rows = unpack("c1", &packed).unwrap();
        assert_eq!(rows.len(), 4);
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["", "e1", "e2", "e3"]);
        for (row, want) in rows.iter().zip(&events) {
            assert_eq!(Fields::of_row(row), *want);
            assert_eq!(row.case_id.as_deref(), Some("c1"));
        }
    }

    #[test]
    fn a_damaged_value_is_an_error_naming_its_case_never_a_panic() {
        let mut events = vec![fields("e1", "2026-03-01 09:00:00", "avd-1", Some("ph"))];
        let packed = pack(&mut events);
        for cut in 0..packed.len() {
            let e = unpack("c9", &packed[..cut]).unwrap_err();
            assert!(e.starts_with("ärendet c9: den packade tidslinjen är skadad"), "{e}");
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack("c9", &longer).is_err());
        assert!(unpack("c9", &[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(unpack("c9", &[2, 0]).is_err());
        assert_eq!(unpack("c9", &[1, 0]).unwrap().len(), 0);
    }
}
