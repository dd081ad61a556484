//! Validated domain types: ids, units, events, field errors. Nothing here
//! touches the database, the clock of the rules, or the network.

pub mod event;
pub mod handling;
pub mod ingested;
pub mod patient;
pub mod unit;

use serde::Serialize;

pub use event::{Event, EventType, EventValue, Sparfarg};
pub use ingested::{Conflict, IngestError, IngestEvent};
pub use patient::{AgeBand, PatientHash, PatientHasher, Secret};
pub use unit::{Unit, UnitKind};

/// What a caller may do (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Ledning,
    Handlaggare,
    Inlasning,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ledning => "ledning",
            Role::Handlaggare => "handlaggare",
            Role::Inlasning => "inlasning",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Ledning, Role::Handlaggare, Role::Inlasning]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

macro_rules! string_id {
    ($name:ident) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An e-mail address as the mailer will read it (`a@b.se` or
/// `Namn <a@b.se>`): the one parser for configured addresses, units'
/// `email` at registration, and sending.
pub fn parse_mailbox(s: &str) -> Result<lettre::message::Mailbox, String> {
    s.trim()
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| format!("`{s}` is not an e-mail address: {e}"))
}

string_id!(UnitId);
string_id!(CaseId);
string_id!(EventId);

/// One wrong field of one input line, as the API and the CLI report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(line: usize, field: &str, message: &str) -> FieldError {
        FieldError {
            line,
            field: field.to_string(),
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, field {}: {}", self.line, self.field, self.message)
    }
}
