//! A unit (SPEC §3.1): anything that sends, receives or must act. Units form
//! a tree through `parent` and belong to one huvudman.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{FieldError, UnitId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Slutenvard,
    Oppenvard,
    Kommun,
}

impl UnitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Slutenvard => "slutenvard",
            UnitKind::Oppenvard => "oppenvard",
            UnitKind::Kommun => "kommun",
        }
    }

    pub fn parse(s: &str) -> Option<UnitKind> {
        [UnitKind::Slutenvard, UnitKind::Oppenvard, UnitKind::Kommun]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub id: UnitId,
    pub name: String,
    pub kind: UnitKind,
    pub huvudman: String,
    pub parent: Option<UnitId>,
    pub email: Option<String>,
    /// Where reminders escalate when the unit's deviations are left unhandled.
    pub chef_email: Option<String>,
    pub storhelg: bool,
    /// Whether the input named `email` (and `chef_email`) at all: an update
    /// that leaves it out keeps the stored address (`null` or an empty
    /// string clears it).
    #[serde(skip)]
    pub email_given: bool,
    #[serde(skip)]
    pub chef_email_given: bool,
}

const FIELDS: [&str; 8] = [
    "id",
    "name",
    "kind",
    "huvudman",
    "parent",
    "email",
    "chef_email",
    "storhelg",
];

impl Unit {
    /// Parses one unit from a JSON object (or a CSV row turned into one, with
    /// every value a string).
    pub fn from_json(obj: &Map<String, Value>, line: usize) -> Result<Unit, Vec<FieldError>> {
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !FIELDS.contains(&key.as_str()) {
                errors.push(FieldError::new(line, key, "okänt fält"));
            }
        }
        let mut text = |field: &str, required: bool| -> Option<String> {
            match obj.get(field) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                None | Some(Value::Null) if !required => None,
                Some(Value::String(_)) if !required => None,
                _ => {
                    errors.push(FieldError::new(
                        line,
                        field,
                        "saknas men krävs: en sträng som inte är tom",
                    ));
                    None
                }
            }
        };
        let id = text("id", true);
        let name = text("name", true);
        let kind_text = text("kind", true);
        let huvudman = text("huvudman", true);
        let parent = text("parent", false);
        let email = text("email", false);
        let chef_email = text("chef_email", false);
        let kind = kind_text.as_deref().and_then(UnitKind::parse);
        if kind_text.is_some() && kind.is_none() {
            errors.push(FieldError::new(
                line,
                "kind",
                "måste vara slutenvard, oppenvard eller kommun",
            ));
        }
        if let Some(Err(e)) = email.as_deref().map(super::parse_mailbox) {
            errors.push(FieldError::new(line, "email", &e));
        }
        if let Some(Err(e)) = chef_email.as_deref().map(super::parse_mailbox) {
            errors.push(FieldError::new(line, "chef_email", &e));
        }
        let storhelg = match obj.get("storhelg") {
            None | Some(Value::Null) => Some(true),
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => parse_bool(s),
            _ => None,
        };
        if storhelg.is_none() {
            errors.push(FieldError::new(line, "storhelg", "måste vara true eller false"));
        }
        if parent.is_some() && parent == id {
            errors.push(FieldError::new(
                line,
                "parent",
                "en enhet kan inte vara sin egen överordnade",
            ));
        }
        match (id, name, kind, huvudman, storhelg) {
            (Some(id), Some(name), Some(kind), Some(huvudman), Some(storhelg)) if errors.is_empty() => Ok(Unit {
                id: UnitId(id),
                name,
                kind,
                huvudman,
                parent: parent.map(UnitId),
                email,
                chef_email,
                storhelg,
                email_given: obj.contains_key("email"),
                chef_email_given: obj.contains_key("chef_email"),
            }),
            _ => Err(errors),
        }
    }
}

/// Booleans as CSV exports write them.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "" | "true" | "ja" | "1" | "yes" => Some(true),
        "false" | "nej" | "0" | "no" => Some(false),
        _ => None,
    }
}
