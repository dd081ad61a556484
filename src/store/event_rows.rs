//! The columns of `events` a scan reads, as rows, and their way back to
//! the domain event: read from `events` by case, or unpacked from a case's
//! packed timeline (`store::packed`), they are the same rows.

use chrono::FixedOffset;
use diesel::prelude::*;

use super::schema::events;
use super::DbConn;
use crate::domain::{CaseId, Event, EventId, EventType, EventValue, PatientHash, UnitId};

/// Selected with `EventRow::as_select()`: the columns in the fields' order.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: String,
    pub case_id: Option<String>,
    pub event_type: String,
    pub at: super::stamp::Stamp,
    pub at_offset: i32,
    pub unit: String,
    pub to_units: String,
    pub ref_id: Option<String>,
    pub value: Option<String>,
    pub patient_hash: Option<String>,
    pub kommun: Option<String>,
}

impl EventRow {
    /// Back to the domain event; the database only holds what validation let in.
    pub fn into_event(self) -> anyhow::Result<Event> {
        let kind = EventType::parse(&self.event_type)
            .ok_or_else(|| anyhow::anyhow!("den sparade händelsen {} har en okänd typ {}", self.id, self.event_type))?;
        let offset = offset(&self.id, self.at_offset)?;
        Ok(Event {
            to: recipients(&self.to_units)?,
            id: EventId(self.id),
            case: self.case_id.map(CaseId),
            kind,
            at: self.at.0.and_utc().with_timezone(&offset),
            unit: UnitId(self.unit),
            reference: self.ref_id.map(EventId),
            value: self.value.map(|v| EventValue::from_stored(kind, &v)),
            patient: self.patient_hash.map(PatientHash),
            kommun: self.kommun,
            age_band: None,
        })
    }
}

/// A stored offset from UTC in seconds, as the event's time zone.
pub fn offset(id: &str, seconds: i32) -> anyhow::Result<FixedOffset> {
    FixedOffset::east_opt(seconds)
        .ok_or_else(|| anyhow::anyhow!("den sparade händelsen {id} har en felaktig tidsförskjutning"))
}

/// The stored recipient units (a JSON array of texts).
pub fn recipients(to_units: &str) -> anyhow::Result<Vec<UnitId>> {
    // Most events name no recipient units: no JSON to read then.
    if to_units == "[]" {
        return Ok(Vec::new());
    }
    let to: Vec<String> = serde_json::from_str(to_units)?;
    Ok(to.into_iter().map(UnitId).collect())
}

/// The stored events of some cases, case by case, each case's in time
/// order (the order of the `(case_id, at)` index: no sort in the
/// database; ties in `at` are ordered by id where the rules read a case,
/// `CaseView`). Loaded on the backend's own connection: through
/// `MultiConnection` every value of every row went through one more
/// dispatch.
pub fn of_cases(conn: &mut DbConn, ids: &[&str]) -> QueryResult<Vec<EventRow>> {
    let query = events::table
        .filter(events::case_id.eq_any(ids))
        .order((events::case_id, events::at));
    match conn {
        DbConn::Sqlite(c) => query.select(EventRow::as_select()).load(c),
        DbConn::Pg(c) => query.select(EventRow::as_select()).load(c),
    }
}
