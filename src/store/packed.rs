//! A case's stored events packed in one value (`case_timelines.packed`),
//! so a scan reads one row per case instead of one row, and ten decoded
//! values, per event. What is packed are the columns the scan reads from
//! `events` ([`EventRow`]), exactly as stored there: unpacked, a case's
//! events are what its rows in `events` give (`EventRow::into_event`).
//!
//! The layout (version 1): a version byte, the number of events, then per
//! event id, type, UTC seconds, nanoseconds, offset, unit, recipient units,
//! reference, value, patient hash and kommun. The type is one byte, its
//! position in `EventType::ALL` (255 and then its text for a type not in
//! it); integers are LEB128 varints (the seconds and the offset
//! zigzagged); a text is its length then its bytes; an optional text is 0
//! for none, 1 for the same as the event before, else its length + 2 then
//! its bytes (a case's unit, recipients, patient and kommun repeat from
//! event to event, and a repeat is not read again).

use chrono::NaiveDateTime;

use super::event_rows::{self, EventRow};
use crate::domain::{CaseId, Event, EventId, EventType, EventValue, PatientHash, UnitId};

const VERSION: u8 = 1;
/// The type code of a type outside `EventType::ALL`: its text follows.
const OTHER_TYPE: u8 = 255;

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
        match EventType::ALL.iter().position(|t| t.as_str() == e.event_type) {
            Some(code) => out.push(code as u8),
            None => {
                out.push(OTHER_TYPE);
                put_str(&mut out, e.event_type);
            }
        }
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

/// The events of `case` packed by [`pack`], in order.
pub fn unpack(case: &str, bytes: &[u8]) -> Result<Vec<Event>, String> {
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
    let case_id = CaseId(case.to_owned());
    let mut events: Vec<Event> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let e = r.event(&case_id, events.last()).map_err(|e| broken(&e))?;
        events.push(e);
    }
    if r.at != bytes.len() {
        return Err(broken("överskott"));
    }
    Ok(events)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// What an optional text was packed as.
enum Opt {
    None,
    Same,
    Text(String),
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

    fn opt(&mut self) -> Option<Opt> {
        Some(match self.uint()? {
            0 => Opt::None,
            1 => Opt::Same,
            n => Opt::Text(self.text(usize::try_from(n - 2).ok()?)?),
        })
    }

    /// An optional text that may repeat the event before's (`prev`, none
    /// for the first event).
    fn opt_or<T: Clone>(&mut self, prev: Option<&Option<T>>, make: impl Fn(String) -> T) -> Option<Option<T>> {
        match self.opt()? {
            Opt::None => Some(None),
            Opt::Same => prev.cloned(),
            Opt::Text(s) => Some(Some(make(s))),
        }
    }

    fn kind(&mut self) -> Option<EventType> {
        match self.byte()? {
            OTHER_TYPE => EventType::parse(&self.str()?),
            code => EventType::ALL.get(usize::from(code)).copied(),
        }
    }

    fn event(&mut self, case: &CaseId, prev: Option<&Event>) -> Result<Event, String> {
        let field = |what: &str| what.to_string();
        let id = self.str().ok_or_else(|| field("id"))?;
        let kind = self.kind().ok_or_else(|| field("typ"))?;
        let secs = unzigzag(self.uint().ok_or_else(|| field("tid"))?);
        let nanos = self
            .uint()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| field("tid"))?;
        let at = chrono::DateTime::from_timestamp(secs, nanos).ok_or_else(|| field("tid"))?;
        let seconds = self
            .uint()
            .and_then(|o| i32::try_from(unzigzag(o)).ok())
            .ok_or_else(|| field("tidszon"))?;
        let offset = event_rows::offset(&id, seconds).map_err(|e| e.to_string())?;
        let unit = match self.opt().ok_or_else(|| field("enhet"))? {
            Opt::Text(s) => UnitId(s),
            Opt::Same => prev.map(|p| p.unit.clone()).ok_or_else(|| field("enhet"))?,
            Opt::None => return Err(field("enhet")),
        };
        let to = match self.opt().ok_or_else(|| field("mottagare"))? {
            Opt::Text(s) => event_rows::recipients(&s).map_err(|_| field("mottagare"))?,
            Opt::Same => prev.map(|p| p.to.clone()).ok_or_else(|| field("mottagare"))?,
            Opt::None => return Err(field("mottagare")),
        };
        let reference = self.opt_or(None, EventId).ok_or_else(|| field("ref"))?;
        let value = self
            .opt_or(None, |v| EventValue::from_stored(kind, &v))
            .ok_or_else(|| field("värde"))?;
        let patient = self
            .opt_or(prev.map(|p| &p.patient), PatientHash)
            .ok_or_else(|| field("patient"))?;
        let kommun = self
            .opt_or(prev.map(|p| &p.kommun), |k| k)
            .ok_or_else(|| field("kommun"))?;
        Ok(Event {
            id: EventId(id),
            case: Some(case.clone()),
            kind,
            at: at.with_timezone(&offset),
            unit,
            to,
            reference,
            value,
            patient,
            kommun,
            age_band: None,
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
    use crate::store::stamp::Stamp;

    fn row(id: &str, when: &str, unit: &str, patient: Option<&str>) -> EventRow {
        EventRow {
            id: id.into(),
            case_id: Some("c1".into()),
            event_type: "inskrivning".into(),
            at: Stamp(NaiveDateTime::parse_from_str(when, "%Y-%m-%d %H:%M:%S%.f").unwrap()),
            at_offset: 3600,
            unit: unit.into(),
            to_units: "[]".into(),
            ref_id: None,
            value: None,
            patient_hash: patient.map(Into::into),
            kommun: Some("Kommun K1".into()),
        }
    }

    /// Unpacked, a case's events are what its rows in `events` give, in
    /// instant order with ties by id; repeats and absences survive, and
    /// texts outside ASCII, empty texts, a type outside the known ones'
    /// codes and instants before 1970 too.
    #[test]
    fn a_packed_case_unpacks_to_the_events_its_rows_give() {
        let rows = vec![
            row("e3", "2026-03-02 10:00:00", "avd-1", Some("ph")),
            EventRow {
                event_type: "inskrivningsmeddelande".into(),
                to_units: r#"["vc-1","kommun-ä"]"#.into(),
                ref_id: Some("e1".into()),
                value: Some("2026-03-05".into()),
                at_offset: -7200,
                kommun: None,
                ..row("e2", "2026-03-01 09:00:00.5", "avd-1", Some("ph"))
            },
            EventRow {
                event_type: "behov_av_sip".into(),
                value: Some("true".into()),
                ..row("e1", "2026-03-01 09:00:00.5", "vc-Å", None)
            },
            EventRow {
                to_units: r#"["vc-1","kommun-ä"]"#.into(),
                ..row("e4", "2026-03-03 09:00:00", "vc-Å", None)
            },
            row("", "1969-12-31 23:59:59", "", Some("")),
        ];
        let mut fields: Vec<Fields> = rows.iter().map(Fields::of_row).collect();
        let packed = pack(&mut fields);
        let got = unpack("c1", &packed).unwrap();
        let mut want: Vec<Event> = rows.into_iter().map(|r| r.into_event().unwrap()).collect();
        want.sort_by(|a, b| (a.at, &a.id.0).cmp(&(b.at, &b.id.0)));
        assert_eq!(got, want);
        let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["", "e1", "e2", "e3", "e4"]);
    }

    /// The type codes are positions in `EventType::ALL`: stored rows read
    /// right only while the list keeps its order (new types go last).
    #[test]
    fn the_type_codes_keep_their_order() {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names[..16],
            [
                "inskrivning",
                "bedomning",
                "inskrivningsmeddelande",
                "kvittens",
                "fast_vardkontakt",
                "behov_av_sip",
                "samtycke_sip",
                "sparfarg",
                "utskrivningsklar",
                "atertag_utskrivningsklar",
                "kallelse_sip",
                "sip_mote",
                "overflyttning",
                "utskrivning",
                "avslut",
                "bemanning"
            ]
        );
    }

    #[test]
    fn a_damaged_value_is_an_error_naming_its_case_never_a_panic() {
        let rows = [row("e1", "2026-03-01 09:00:00", "avd-1", Some("ph"))];
        let packed = pack(&mut rows.iter().map(Fields::of_row).collect::<Vec<_>>());
        for cut in 0..packed.len() {
            let e = unpack("c9", &packed[..cut]).unwrap_err();
            assert!(e.starts_with("ärendet c9: den packade tidslinjen är skadad"), "{e}");
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack("c9", &longer).is_err());
        assert!(unpack("c9", &[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(unpack("c9", &[2, 0]).is_err());
        // Version, count, the id's length and its two bytes: then the type.
        let mut bad_type = packed.clone();
        assert_eq!(bad_type[5], 0, "inskrivning, the first type");
        bad_type[5] = 200;
        assert!(unpack("c9", &bad_type).unwrap_err().contains("(typ)"));
        assert_eq!(unpack("c9", &[1, 0]).unwrap().len(), 0);
    }
}
