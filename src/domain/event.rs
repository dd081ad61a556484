//! The event of SPEC §3.2, parsed from one JSON object. An [`Event`] exists
//! only once every field fits its type: the timestamp carries an offset, the
//! type is known, `to`, `ref` and `value` have the shape the type needs, and a
//! personnummer has been checked and replaced by its keyed hash.

use chrono::{DateTime, FixedOffset};
use std::borrow::Cow;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::patient::{AgeBand, PatientHash, PatientHasher};
use super::value::parse_date;
pub use super::value::{EventValue, Sparfarg};
use super::{CaseId, EventId, FieldError, UnitId};

/// Every event type of the contract, spelled as in SPEC §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Inskrivning,
    Bedomning,
    Inskrivningsmeddelande,
    Kvittens,
    FastVardkontakt,
    BehovAvSip,
    SamtyckeSip,
    Sparfarg,
    Utskrivningsklar,
    AtertagUtskrivningsklar,
    KallelseSip,
    SipMote,
    Overflyttning,
    Utskrivning,
    Avslut,
    Bemanning,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::Inskrivning,
        EventType::Bedomning,
        EventType::Inskrivningsmeddelande,
        EventType::Kvittens,
        EventType::FastVardkontakt,
        EventType::BehovAvSip,
        EventType::SamtyckeSip,
        EventType::Sparfarg,
        EventType::Utskrivningsklar,
        EventType::AtertagUtskrivningsklar,
        EventType::KallelseSip,
        EventType::SipMote,
        EventType::Overflyttning,
        EventType::Utskrivning,
        EventType::Avslut,
        EventType::Bemanning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Inskrivning => "inskrivning",
            EventType::Bedomning => "bedomning",
            EventType::Inskrivningsmeddelande => "inskrivningsmeddelande",
            EventType::Kvittens => "kvittens",
            EventType::FastVardkontakt => "fast_vardkontakt",
            EventType::BehovAvSip => "behov_av_sip",
            EventType::SamtyckeSip => "samtycke_sip",
            EventType::Sparfarg => "sparfarg",
            EventType::Utskrivningsklar => "utskrivningsklar",
            EventType::AtertagUtskrivningsklar => "atertag_utskrivningsklar",
            EventType::KallelseSip => "kallelse_sip",
            EventType::SipMote => "sip_mote",
            EventType::Overflyttning => "overflyttning",
            EventType::Utskrivning => "utskrivning",
            EventType::Avslut => "avslut",
            EventType::Bemanning => "bemanning",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Message types carry a recipient list.
    pub fn is_message(self) -> bool {
        matches!(
            self,
            EventType::Inskrivningsmeddelande | EventType::Utskrivningsklar | EventType::KallelseSip
        )
    }

    pub fn needs_ref(self) -> bool {
        matches!(self, EventType::Kvittens | EventType::AtertagUtskrivningsklar)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub case: Option<CaseId>,
    pub kind: EventType,
    pub at: DateTime<FixedOffset>,
    pub unit: UnitId,
    pub to: Vec<UnitId>,
    pub reference: Option<EventId>,
    pub value: Option<EventValue>,
    pub patient: Option<PatientHash>,
    /// The patient's kommun as the huvudman name of its units (only on an
    /// `inskrivning`): whom betalningsansvar and readmissions count for (§7).
    pub kommun: Option<String>,
    /// Derived at ingest from the patient's number on the day of the
    /// inskrivning (the number itself is never kept); not stored with the
    /// event but on its case.
    pub age_band: Option<AgeBand>,
}

const FIELDS: [&str; 10] = [
    "id", "case", "type", "at", "unit", "to", "ref", "value", "patient", "kommun",
];

/// Longest accepted id of any kind; guards the database against garbage lines.
const MAX_ID_LEN: usize = 200;

/// One field's JSON value as far as validation needs it, borrowing from the
/// line where it can: strings without escapes are not copied, and no map is
/// built. Numbers and objects are only ever wrong, so they are `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum RawField<'a> {
    Null,
    Bool(bool),
    Str(Cow<'a, str>),
    Array(Vec<RawField<'a>>),
    Other,
}

impl<'a> RawField<'a> {
    fn from_value(v: &'a Value) -> RawField<'a> {
        match v {
            Value::Null => RawField::Null,
            Value::Bool(b) => RawField::Bool(*b),
            Value::String(s) => RawField::Str(Cow::Borrowed(s)),
            Value::Array(items) => RawField::Array(items.iter().map(RawField::from_value).collect()),
            Value::Number(_) | Value::Object(_) => RawField::Other,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            RawField::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawField<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawField::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(RawField::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(RawField::Bool(b))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawField::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawField::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawField::Other)
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(RawField::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(RawField::Str(Cow::Owned(s.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawField::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawField::Other)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The fields of one event object, in the order of [`FIELDS`], and the names
/// of any other key. Read from a JSON line directly ([`Event::from_line`]) or
/// from a parsed object (CSV rows become objects).
#[derive(Debug, Default)]
pub struct EventFields<'a> {
    slots: [Option<RawField<'a>>; 10],
    unknown: Vec<String>,
}

impl<'a> EventFields<'a> {
    pub fn from_map(obj: &'a Map<String, Value>) -> EventFields<'a> {
        let mut fields = EventFields::default();
        for (key, v) in obj {
            match FIELDS.iter().position(|f| f == key) {
                Some(i) => fields.slots[i] = Some(RawField::from_value(v)),
                None => fields.unknown.push(key.clone()),
            }
        }
        fields
    }

    /// The field, unless absent or null.
    fn present(&self, field: &str) -> Option<&RawField<'a>> {
        let i = FIELDS.iter().position(|f| *f == field)?;
        self.slots[i].as_ref().filter(|v| **v != RawField::Null)
    }
}

/// A key of an event object: the slot of a field of the contract, or the
/// name of any other key. Read without a copy (a key allocated a string per
/// field of every line before).
struct FieldKey(Result<usize, String>);

impl<'de> Deserialize<'de> for FieldKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FieldKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(FieldKey(
                    FIELDS.iter().position(|f| *f == key).ok_or_else(|| key.to_string()),
                ))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EventFields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = EventFields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = EventFields::default();
                while let Some(FieldKey(key)) = map.next_key::<FieldKey>()? {
                    match key {
                        // A repeated key: the last one counts, as in a parsed object.
                        Ok(i) => fields.slots[i] = Some(map.next_value()?),
                        Err(unknown) => {
                            fields.unknown.push(unknown);
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(fields)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl Event {
    /// Parses one JSON object. Every wrong field is reported, not only the first.
    pub fn from_json(obj: &Map<String, Value>, line: usize, hasher: &PatientHasher) -> Result<Event, Vec<FieldError>> {
        Event::from_fields(&EventFields::from_map(obj), line, hasher)
    }

    /// Parses one JSON line without building a map: the path of every import
    /// and of `check`. A line the fast reader refuses is read again as a JSON
    /// value, so a bad line gets the same message either way.
    pub fn from_line(text: &str, line: usize, hasher: &PatientHasher) -> Result<Event, Vec<FieldError>> {
        match serde_json::from_str::<EventFields>(text) {
            Ok(mut fields) => {
                // As a parsed object lists them: sorted, each once.
                fields.unknown.sort();
                fields.unknown.dedup();
                Event::from_fields(&fields, line, hasher)
            }
            Err(_) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => Event::from_json(&m, line, hasher),
                Ok(_) => Err(vec![FieldError::new(line, "line", "måste vara ett JSON-objekt")]),
                Err(e) => Err(vec![FieldError::new(
                    line,
                    "line",
                    &format!("är inte giltig JSON: {e}"),
                )]),
            },
        }
    }

    /// Validates the fields of one event object.
    pub fn from_fields(fields: &EventFields, line: usize, hasher: &PatientHasher) -> Result<Event, Vec<FieldError>> {
        let mut p = FieldParser {
            fields,
            line,
            errors: Vec::new(),
        };
        for key in &fields.unknown {
            p.err(key, "okänt fält: händelsekontraktet har inget sådant fält");
        }
        let id = p.required_id("id");
        let kind = p.kind();
        let at = p.at();
        let unit = p.required_id("unit");
        let case = match kind {
            Some(EventType::Bemanning) => p.optional_id("case"),
            _ => p.required_id("case"),
        };
        let to = p.to(kind);
        let reference = p.reference(kind);
        p.no_personnummer("id", id.as_deref(), hasher);
        p.no_personnummer("case", case.as_deref(), hasher);
        // `ref` names another event's id: never a person's either.
        p.no_personnummer("ref", reference.as_deref(), hasher);
        let value = p.value(kind);
        let (patient, age_band) = p.patient(kind, at, hasher).unzip();
        let kommun = p.kommun(kind);
        if !p.errors.is_empty() {
            return Err(p.errors);
        }
        match (id, kind, at, unit) {
            (Some(id), Some(kind), Some(at), Some(unit)) => Ok(Event {
                id: EventId(id),
                case: case.map(CaseId),
                kind,
                at,
                unit: UnitId(unit),
                to,
                reference: reference.map(EventId),
                value,
                patient,
                kommun,
                age_band,
            }),
            _ => Err(vec![FieldError::new(line, "id", "händelsen kunde inte läsas")]),
        }
    }

    /// Whole seconds are what the rules compare (SPEC §4).
    pub fn at_seconds(&self) -> i64 {
        self.at.timestamp()
    }
}

struct FieldParser<'f, 'a> {
    fields: &'f EventFields<'a>,
    line: usize,
    errors: Vec<FieldError>,
}

impl<'f, 'a> FieldParser<'f, 'a> {
    fn err(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError::new(self.line, field, message));
    }

    /// An id is the source's, never a person's (SPEC §3.2).
    fn no_personnummer(&mut self, field: &str, id: Option<&str>, hasher: &PatientHasher) {
        if id.is_some_and(|id| hasher.id_holds_personnummer(id)) {
            self.err(
                field,
                "är eller innehåller ett personnummer eller samordningsnummer; använd källsystemets ärende- eller händelse-id",
            );
        }
    }

    fn present(&self, field: &str) -> Option<&'f RawField<'a>> {
        self.fields.present(field)
    }

    fn id_value(&mut self, field: &str, v: &RawField) -> Option<String> {
        match v.as_str().map(str::trim) {
            Some("") => self.err(field, "får inte vara tomt"),
            Some(s) if s.len() > MAX_ID_LEN => self.err(field, "är längre än 200 tecken"),
            Some(s) => return Some(s.to_string()),
            None => self.err(field, "måste vara en sträng"),
        }
        None
    }

    fn required_id(&mut self, field: &str) -> Option<String> {
        match self.present(field) {
            Some(v) => self.id_value(field, v),
            None => {
                self.err(field, "saknas men krävs");
                None
            }
        }
    }

    fn optional_id(&mut self, field: &str) -> Option<String> {
        let v = self.present(field)?;
        self.id_value(field, v)
    }

    fn kind(&mut self) -> Option<EventType> {
        let Some(v) = self.present("type") else {
            self.err("type", "saknas men krävs");
            return None;
        };
        let found = v.as_str().and_then(EventType::parse);
        if found.is_none() {
            self.err("type", "är ingen känd händelsetyp (se docs/import.md)");
        }
        found
    }

    fn at(&mut self) -> Option<DateTime<FixedOffset>> {
        let Some(v) = self.present("at") else {
            self.err("at", "saknas men krävs");
            return None;
        };
        let parsed = v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        if parsed.is_none() {
            self.err(
                "at",
                "måste vara en tidpunkt enligt RFC 3339 med tidsförskjutning, till exempel 2026-05-04T11:42:00+02:00",
            );
        }
        parsed
    }

    fn to(&mut self, kind: Option<EventType>) -> Vec<UnitId> {
        let Some(v) = self.present("to") else {
            if kind.is_some_and(EventType::is_message) {
                self.err("to", "krävs för den här typen: en lista med mottagande enheters id");
            }
            return Vec::new();
        };
        let RawField::Array(items) = v else {
            self.err("to", "måste vara en lista med enheters id");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => out.push(UnitId(s.into())),
                _ => {
                    self.err(
                        "to",
                        "varje mottagare måste vara ett enhets-id (en sträng som inte är tom)",
                    );
                    return Vec::new();
                }
            }
        }
        out
    }

    fn reference(&mut self, kind: Option<EventType>) -> Option<String> {
        if kind.is_some_and(EventType::needs_ref) {
            self.required_id("ref")
        } else {
            self.optional_id("ref")
        }
    }

    fn value(&mut self, kind: Option<EventType>) -> Option<EventValue> {
        let v = self.present("value");
        match kind? {
            EventType::BehovAvSip | EventType::SamtyckeSip => match v {
                Some(RawField::Bool(b)) => Some(EventValue::Bool(*b)),
                Some(RawField::Str(s)) if s == "true" || s == "false" => Some(EventValue::Bool(s == "true")),
                _ => {
                    self.err("value", "måste vara true eller false för den här typen");
                    None
                }
            },
            EventType::FastVardkontakt => match v {
                None => None,
                Some(RawField::Bool(b)) => Some(EventValue::Bool(*b)),
                Some(RawField::Str(s)) if s == "true" || s == "false" => Some(EventValue::Bool(s == "true")),
                Some(_) => {
                    self.err("value", "måste vara true eller false (false: enheten tog bort sig som fast vårdkontakt), eller utelämnas");
                    None
                }
            },
            EventType::Inskrivningsmeddelande => {
                let v = v?;
                let d = v.as_str().and_then(parse_date);
                if d.is_none() {
                    self.err(
                        "value",
                        "måste vara beräknat utskrivningsdatum som ÅÅÅÅ-MM-DD, till exempel 2026-05-08",
                    );
                }
                d.map(EventValue::Date)
            }
            EventType::Sparfarg => {
                let c = v.and_then(RawField::as_str).and_then(Sparfarg::parse);
                if c.is_none() {
                    self.err("value", "måste vara en av bla, gron, gul, rod");
                }
                c.map(EventValue::Sparfarg)
            }
            _ => match v {
                None => None,
                Some(RawField::Str(s)) => Some(EventValue::Text(s.to_string())),
                Some(RawField::Bool(b)) => Some(EventValue::Bool(*b)),
                Some(_) => {
                    self.err("value", "måste vara en sträng eller true/false");
                    None
                }
            },
        }
    }

    /// The patient's kommun: only on an inskrivning, a huvudman's name.
    fn kommun(&mut self, kind: Option<EventType>) -> Option<String> {
        let v = self.present("kommun")?;
        if kind.is_some_and(|k| k != EventType::Inskrivning) {
            self.err("kommun", "får bara finnas på en inskrivning");
            return None;
        }
        match v.as_str().map(str::trim) {
            Some(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => Some(s.to_string()),
            Some(_) => {
                self.err("kommun", "måste vara kommunens namn som huvudman, 1–200 tecken");
                None
            }
            None => {
                self.err("kommun", "måste vara en sträng");
                None
            }
        }
    }

    fn patient(
        &mut self,
        kind: Option<EventType>,
        at: Option<DateTime<FixedOffset>>,
        hasher: &PatientHasher,
    ) -> Option<(PatientHash, AgeBand)> {
        let v = self.present("patient")?;
        if kind.is_some_and(|k| k != EventType::Inskrivning) {
            self.err("patient", "får bara finnas på en inskrivning");
            return None;
        }
        // Without a valid `at` the event is refused anyway; any day will do.
        let on = at.map_or_else(chrono::NaiveDate::default, |t| {
            crate::calendar::local_date(t.with_timezone(&chrono::Utc))
        });
        match v.as_str().map(|s| hasher.identify(s, on)) {
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => {
                self.err("patient", &e.to_string());
                None
            }
            None => {
                self.err("patient", "måste vara en sträng");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::patient::Secret;

    /// The reader every import and `check` uses must accept, refuse and
    /// word its refusals exactly as validating a parsed JSON object does.
    #[test]
    fn the_line_reader_agrees_with_the_object_reader() {
        let hasher = PatientHasher::new(Secret::new(vec![7; 32]));
        let lines = [
            r#"{"id":"E1","case":"C1","type":"inskrivning","at":"2026-05-04T11:42:00+02:00","unit":"U","patient":"19121212-1212"}"#,
            r#"{"id":"E\u00f62","case":"C\"1","type":"kvittens","at":"2026-05-04T11:42:00Z","unit":"U","ref":"E1"}"#,
            r#"{"id":"E3","case":"C1","type":"utskrivningsklar","at":"2026-05-04T11:42:00+02:00","unit":"U","to":["A"," B "]}"#,
            r#"{"id":"E4","case":"C1","type":"utskrivningsklar","at":"2026-05-04T11:42:00+02:00","unit":"U","to":["A",7]}"#,
            r#"{"id":"E5","case":"C1","type":"behov_av_sip","at":"2026-05-04T11:42:00+02:00","unit":"U","value":"true"}"#,
            r#"{"id":"E6","case":"C1","type":"sparfarg","at":"2026-05-04T11:42:00+02:00","unit":"U","value":{"a":[1,2]}}"#,
            r#"{"id":5,"case":null,"type":"bedomning","at":"igår","unit":"","zeta":1,"alfa":[],"zeta":2}"#,
            r#"{"id":"E8","case":"C1","type":"bemanning","at":"2026-12-26T09:00:00+01:00","unit":"U","id":"E9"}"#,
            r#"{"id":"E10","type":"avslut","at":"2026-05-04T11:42:00+02:00","unit":"U","patient":"19121212-1212"}"#,
            r#"{"id":"E11","case":"C1","type":"inskrivning","at":"2026-05-04T11:42:00+02:00","unit":"U","patient":"1912"}"#,
            // A key written with an escape is the same key.
            r#"{"\u0069d":"E14","case":"C1","type":"kvittens","at":"2026-05-04T11:42:00Z","unit":"U","r\u00e9f":"E1"}"#,
            r#"[1,2]"#,
            r#"{"id":"E12""#,
            r#"{"id":"E13"} trailing"#,
        ];
        for (i, text) in lines.iter().enumerate() {
            let fast = Event::from_line(text, i + 1, &hasher);
            let slow = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => Event::from_json(&m, i + 1, &hasher),
                Ok(_) => Err(vec![FieldError::new(i + 1, "line", "måste vara ett JSON-objekt")]),
                Err(e) => Err(vec![FieldError::new(
                    i + 1,
                    "line",
                    &format!("är inte giltig JSON: {e}"),
                )]),
            };
            assert_eq!(fast, slow, "line {}: {text}", i + 1);
        }
        let ok = Event::from_line(lines[1], 2, &hasher).unwrap();
        assert_eq!((ok.id.0.as_str(), ok.case.unwrap().0.as_str()), ("Eö2", "C\"1"));
        let errs = Event::from_line(lines[6], 7, &hasher).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["alfa", "zeta", "id", "at", "unit", "case"]);
    }
}
