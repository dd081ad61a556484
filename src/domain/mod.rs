//! Validated domain types: ids, units, events, field errors. Nothing here
//! touches the database, the clock of the rules, or the network.

pub mod event;
pub mod handling;
pub mod ingested;
pub mod patient;
pub mod recipients;
pub mod state;
pub mod unit;
pub mod value;

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
        .map_err(|e| format!("`{s}` är ingen giltig e-postadress: {e}"))
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
        write!(f, "rad {}, fält {}: {}", self.line, self.field, self.message)
    }
}

/// The field errors of a batch or a file: the first [`FieldErrors::LISTED`]
/// kept, every one counted, so a body of a million bad lines costs no more
/// memory, and no longer an answer, than a thousand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    listed: Vec<FieldError>,
    total: usize,
    lines: usize,
    last_line: Option<usize>,
}

impl FieldErrors {
    /// How many errors are kept to be shown.
    pub const LISTED: usize = 1000;

    pub fn push(&mut self, e: FieldError) {
        if self.last_line != Some(e.line) {
            self.lines += 1;
            self.last_line = Some(e.line);
        }
        self.total += 1;
        if self.listed.len() < Self::LISTED {
            self.listed.push(e);
        }
    }

    /// Adds another list's errors, its unlisted ones counted too.
    pub fn append(&mut self, other: FieldErrors) {
        let joined = other.listed.first().is_some_and(|e| Some(e.line) == self.last_line);
        self.lines += other.lines - usize::from(joined);
        self.total += other.total;
        let room = Self::LISTED.saturating_sub(self.listed.len());
        self.listed.extend(other.listed.into_iter().take(room));
        if other.last_line.is_some() {
            self.last_line = other.last_line;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Every error, listed or not.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many lines have an error (lines in a row counted once).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The first [`FieldErrors::LISTED`] errors.
    pub fn listed(&self) -> &[FieldError] {
        &self.listed
    }

    /// "N fel i fält", and how many of them are listed when not all are.
    pub fn summary(&self) -> String {
        if self.total > self.listed.len() {
            format!("{} fel i fält (de första {} listas)", self.total, self.listed.len())
        } else {
            format!("{} fel i fält", self.total)
        }
    }
}

impl From<Vec<FieldError>> for FieldErrors {
    fn from(errors: Vec<FieldError>) -> FieldErrors {
        let mut out = FieldErrors::default();
        for e in errors {
            out.push(e);
        }
        out
    }
}

impl From<FieldError> for FieldErrors {
    fn from(e: FieldError) -> FieldErrors {
        vec![e].into()
    }
}

#[cfg(test)]
mod tests {
    use super::{FieldError, FieldErrors};

    fn errors(lines: impl Iterator<Item = usize>) -> FieldErrors {
        let mut out = FieldErrors::default();
        for line in lines {
            out.push(FieldError::new(line, "type", "okänd"));
            out.push(FieldError::new(line, "at", "saknas"));
        }
        out
    }

    #[test]
    fn a_thousand_are_kept_and_every_one_is_counted() {
        let e = errors(1..=3000);
        assert_eq!(e.total(), 6000);
        assert_eq!(e.lines(), 3000);
        assert_eq!(e.listed().len(), FieldErrors::LISTED);
        assert_eq!(e.listed()[999].line, 500);
        assert_eq!(e.summary(), "6000 fel i fält (de första 1000 listas)");
        assert_eq!(errors(1..=2).summary(), "4 fel i fält");
    }

    #[test]
    fn appended_lists_keep_the_count_of_what_they_did_not_list() {
        let mut all = errors(1..=400);
        all.append(errors(401..=1000));
        assert_eq!((all.total(), all.lines(), all.listed().len()), (2000, 1000, 1000));
        assert_eq!(all.listed()[799].line, 400, "the first list's errors first");
        assert_eq!(all.listed()[800].line, 401);
        // A line split across two lists is one line.
        let mut split = errors(1..=1);
        split.append(FieldError::new(1, "unit", "saknas").into());
        assert_eq!((split.total(), split.lines()), (3, 1));
    }
}
