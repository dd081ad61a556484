//! The event of SPEC §3.2, parsed from one JSON object. An [`Event`] exists
//! only once every field fits its type: the timestamp carries an offset, the
//! type is known, `to`, `ref` and `value` have the shape the type needs, and a
//! personnummer has been checked and replaced by its keyed hash.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use serde_json::{Map, Value};

use super::patient::{PatientHash, PatientHasher};
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
    Overflyttning,
    Utskrivning,
    Avslut,
    Bemanning,
}

impl EventType {
    pub const ALL: [EventType; 15] = [
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

/// The planning track of Västerbotten's routine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sparfarg {
    Bla,
    Gron,
    Gul,
    Rod,
}

impl Sparfarg {
    pub fn as_str(self) -> &'static str {
        match self {
            Sparfarg::Bla => "bla",
            Sparfarg::Gron => "gron",
            Sparfarg::Gul => "gul",
            Sparfarg::Rod => "rod",
        }
    }

    pub fn parse(s: &str) -> Option<Sparfarg> {
        [Sparfarg::Bla, Sparfarg::Gron, Sparfarg::Gul, Sparfarg::Rod]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventValue {
    Bool(bool),
    Sparfarg(Sparfarg),
    Text(String),
}

impl EventValue {
    /// The stored text form; [`EventValue::from_stored`] reverses it.
    pub fn to_stored(&self) -> String {
        match self {
            EventValue::Bool(b) => b.to_string(),
            EventValue::Sparfarg(c) => c.as_str().to_string(),
            EventValue::Text(t) => t.clone(),
        }
    }

    pub fn from_stored(kind: EventType, s: &str) -> EventValue {
        match kind {
            EventType::BehovAvSip | EventType::SamtyckeSip => EventValue::Bool(s == "true"),
            EventType::Sparfarg => Sparfarg::parse(s).map_or_else(|| EventValue::Text(s.into()), EventValue::Sparfarg),
            _ => EventValue::Text(s.to_string()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            EventValue::Bool(b) => Value::Bool(*b),
            EventValue::Sparfarg(c) => Value::String(c.as_str().into()),
            EventValue::Text(t) => Value::String(t.clone()),
        }
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
}

const FIELDS: [&str; 9] = ["id", "case", "type", "at", "unit", "to", "ref", "value", "patient"];

/// Longest accepted id of any kind; guards the database against garbage lines.
const MAX_ID_LEN: usize = 200;

impl Event {
    /// Parses one JSON object. Every wrong field is reported, not only the first.
    pub fn from_json(obj: &Map<String, Value>, line: usize, hasher: &PatientHasher) -> Result<Event, Vec<FieldError>> {
        let mut p = FieldParser {
            obj,
            line,
            errors: Vec::new(),
        };
        for key in obj.keys() {
            if !FIELDS.contains(&key.as_str()) {
                p.err(key, "unknown field; the event contract has no such field");
            }
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
        let value = p.value(kind);
        let patient = p.patient(kind, hasher);
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
            }),
            _ => Err(vec![FieldError::new(line, "id", "event could not be read")]),
        }
    }

    /// Whole seconds are what the rules compare (SPEC §4).
    pub fn at_seconds(&self) -> i64 {
        self.at.timestamp()
    }
}

struct FieldParser<'a> {
    obj: &'a Map<String, Value>,
    line: usize,
    errors: Vec<FieldError>,
}

impl FieldParser<'_> {
    fn err(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError::new(self.line, field, message));
    }

    fn present(&self, field: &str) -> Option<&Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn id_value(&mut self, field: &str, v: &Value) -> Option<String> {
        match v.as_str().map(str::trim) {
            Some("") => self.err(field, "must not be empty"),
            Some(s) if s.len() > MAX_ID_LEN => self.err(field, "is longer than 200 characters"),
            Some(s) => return Some(s.to_string()),
            None => self.err(field, "must be a string"),
        }
        None
    }

    fn required_id(&mut self, field: &str) -> Option<String> {
        match self.present(field).cloned() {
            Some(v) => self.id_value(field, &v),
            None => {
                self.err(field, "is required");
                None
            }
        }
    }

    fn optional_id(&mut self, field: &str) -> Option<String> {
        let v = self.present(field).cloned()?;
        self.id_value(field, &v)
    }

    fn kind(&mut self) -> Option<EventType> {
        let Some(v) = self.present("type").cloned() else {
            self.err("type", "is required");
            return None;
        };
        let found = v.as_str().and_then(EventType::parse);
        if found.is_none() {
            self.err("type", "is not a known event type (see docs/import.md)");
        }
        found
    }

    fn at(&mut self) -> Option<DateTime<FixedOffset>> {
        let Some(v) = self.present("at").cloned() else {
            self.err("at", "is required");
            return None;
        };
        let parsed = v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        if parsed.is_none() {
            self.err(
                "at",
                "must be an RFC 3339 timestamp with offset, e.g. 2026-05-04T11:42:00+02:00",
            );
        }
        parsed
    }

    fn to(&mut self, kind: Option<EventType>) -> Vec<UnitId> {
        let Some(v) = self.present("to").cloned() else {
            if kind.is_some_and(EventType::is_message) {
                self.err("to", "is required for this type: an array of recipient unit ids");
            }
            return Vec::new();
        };
        let Some(items) = v.as_array() else {
            self.err("to", "must be an array of unit ids");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => out.push(UnitId(s.into())),
                _ => {
                    self.err("to", "every recipient must be a non-empty unit id string");
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
        let v = self.present("value").cloned();
        match kind? {
            EventType::BehovAvSip | EventType::SamtyckeSip => match v {
                Some(Value::Bool(b)) => Some(EventValue::Bool(b)),
                Some(Value::String(s)) if s == "true" || s == "false" => Some(EventValue::Bool(s == "true")),
                _ => {
                    self.err("value", "must be true or false for this type");
                    None
                }
            },
            EventType::Sparfarg => {
                let c = v.as_ref().and_then(Value::as_str).and_then(Sparfarg::parse);
                if c.is_none() {
                    self.err("value", "must be one of bla, gron, gul, rod");
                }
                c.map(EventValue::Sparfarg)
            }
            _ => match v {
                None => None,
                Some(Value::String(s)) => Some(EventValue::Text(s)),
                Some(Value::Bool(b)) => Some(EventValue::Bool(b)),
                Some(_) => {
                    self.err("value", "must be a string or a boolean");
                    None
                }
            },
        }
    }

    fn patient(&mut self, kind: Option<EventType>, hasher: &PatientHasher) -> Option<PatientHash> {
        let v = self.present("patient").cloned()?;
        if kind.is_some_and(|k| k != EventType::Inskrivning) {
            self.err("patient", "is only allowed on inskrivning");
            return None;
        }
        match v.as_str().map(|s| hasher.hash(s)) {
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => {
                self.err("patient", &e.to_string());
                None
            }
            None => {
                self.err("patient", "must be a string");
                None
            }
        }
    }
}
