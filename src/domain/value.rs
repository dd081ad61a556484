//! The `value` of an event (SPEC §3.2), by type: a Ja/Nej, a spårfärg, the
//! beräknat utskrivningsdatum of an IM, a fast vårdkontakt's removal, or a
//! free text (`avslut`'s reason). Parsed at ingest, stored as text, read back
//! by type.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;

use super::EventType;

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
    /// An IM's beräknat utskrivningsdatum (`YYYY-MM-DD`).
    Date(NaiveDate),
    Text(String),
}

impl EventValue {
    /// The stored text form; [`EventValue::from_stored`] reverses it.
    pub fn to_stored(&self) -> String {
        match self {
            EventValue::Bool(b) => b.to_string(),
            EventValue::Sparfarg(c) => c.as_str().to_string(),
            EventValue::Date(d) => d.format("%Y-%m-%d").to_string(),
            EventValue::Text(t) => t.clone(),
        }
    }

    /// Back from the stored text. Rows stored before a type's value was
    /// validated (an IM's free text) come back as text, which no rule reads.
    pub fn from_stored(kind: EventType, s: &str) -> EventValue {
        match kind {
            EventType::BehovAvSip | EventType::SamtyckeSip => EventValue::Bool(s == "true"),
            EventType::FastVardkontakt if s == "true" || s == "false" => EventValue::Bool(s == "true"),
            EventType::Sparfarg => Sparfarg::parse(s).map_or_else(|| EventValue::Text(s.into()), EventValue::Sparfarg),
            EventType::Inskrivningsmeddelande => {
                parse_date(s).map_or_else(|| EventValue::Text(s.into()), EventValue::Date)
            }
            _ => EventValue::Text(s.to_string()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            EventValue::Bool(b) => Value::Bool(*b),
            EventValue::Sparfarg(c) => Value::String(c.as_str().into()),
            EventValue::Date(_) => Value::String(self.to_stored()),
            EventValue::Text(t) => Value::String(t.clone()),
        }
    }
}

/// A calendar date written exactly `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}
