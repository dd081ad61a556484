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

/// The identity of an event's content, independent of its source format.
pub fn content_hash(e: &Event) -> String {
    let mut h = Sha256::new();
    let to: Vec<&str> = e.to.iter().map(|u| u.as_str()).collect();
    let parts = [
        e.kind.as_str().to_string(),
        e.case.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
        // The instant, not its spelling: 10:00Z and 12:00+02:00 are the same event.
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
    // Only when given, so the hash of every event stored before the field
    // existed stays what it was.
    if let Some(k) = &e.kommun {
        h.update(b"kommun");
        h.update(k.as_bytes());
        h.update([0x1e]);
    }
    hex::encode(h.finalize())
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
