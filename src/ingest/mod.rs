//! Turning input bytes into validated events and units: JSON Lines, a JSON
//! array, or CSV through a column mapping. A batch is parsed whole and either
//! every line is good or every bad line is reported. Parsing only: storing
//! is `store::events`'s job, and the types both share live in `domain`.

pub mod csv_mapping;
pub mod file;

use serde_json::{Map, Value};

pub use crate::domain::ingested::{content_hash, IngestError, IngestEvent};
use crate::domain::{Event, FieldError, FieldErrors, PatientHasher, Unit};

/// Splits a request body into JSON objects with their line numbers: a JSON
/// array (numbered by position, from 1) or JSON Lines (numbered by line).
pub fn json_objects(body: &str) -> Result<Vec<(usize, String)>, Vec<FieldError>> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(trimmed).map_err(|e| {
            // serde counts from the '[': add the blank lines before it, and
            // name the last line for an error at the very end.
            let before = body[..body.len() - trimmed.len()].matches('\n').count();
            let line = (before + e.line()).min(body.lines().count().max(1));
            vec![FieldError::new(
                line,
                "body",
                &format!("är inte en giltig JSON-array: {e}"),
            )]
        })?;
        return Ok(items
            .iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r.get().to_string()))
            .collect());
    }
    Ok(body
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect())
}

fn object(line: usize, text: &str) -> Result<Map<String, Value>, FieldError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(FieldError::new(line, "line", "måste vara ett JSON-objekt")),
        Err(e) => Err(FieldError::new(line, "line", &format!("är inte giltig JSON: {e}"))),
    }
}

/// Parses and validates every event of a batch; all errors (the first
/// [`FieldErrors::LISTED`] kept), or all events.
pub fn parse_events(body: &str, hasher: &PatientHasher) -> Result<Vec<IngestEvent>, FieldErrors> {
    parse_lines(&json_objects(body)?, hasher)
}

/// Parses numbered lines (as [`json_objects`] gives them).
pub fn parse_lines(lines: &[(usize, String)], hasher: &PatientHasher) -> Result<Vec<IngestEvent>, FieldErrors> {
    let mut events = Vec::with_capacity(lines.len());
    let mut errors = FieldErrors::default();
    for (line, text) in lines {
        match parse_event_line(*line, text, hasher) {
            Ok(ev) if errors.is_empty() => events.push(ev),
            Ok(_) => {}
            Err(e) => e.into_iter().for_each(|e| errors.push(e)),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

/// Validates one JSON line.
pub fn parse_event_line(line: usize, text: &str, hasher: &PatientHasher) -> Result<IngestEvent, Vec<FieldError>> {
    let event = Event::from_line(text, line, hasher)?;
    let raw = match &event.patient {
        // Only an inskrivning carries a patient: read that line again to replace it.
        Some(_) => match serde_json::from_str::<Map<String, Value>>(text) {
            Ok(obj) => redact(text, &obj, &event),
            Err(e) => {
                return Err(vec![FieldError::new(
                    line,
                    "line",
                    &format!("är inte giltig JSON: {e}"),
                )])
            }
        },
        None => text.trim().to_string(),
    };
    let content_hash = content_hash(&event);
    Ok(IngestEvent {
        line,
        event,
        raw,
        content_hash,
    })
}

/// Validates one event object; `raw` is the text it came from.
pub fn parse_event_object(
    obj: &Map<String, Value>,
    line: usize,
    raw: &str,
    hasher: &PatientHasher,
) -> Result<IngestEvent, Vec<FieldError>> {
    let event = Event::from_json(obj, line, hasher)?;
    let raw = redact(raw, obj, &event);
    let content_hash = content_hash(&event);
    Ok(IngestEvent {
        line,
        event,
        raw,
        content_hash,
    })
}

/// Replaces the patient number in the raw line by its hash, so the kept line
/// never holds the number in clear.
fn redact(raw: &str, obj: &Map<String, Value>, event: &Event) -> String {
    let (Some(Value::String(clear)), Some(hash)) = (obj.get("patient"), &event.patient) else {
        return raw.trim().to_string();
    };
    let mut copy = obj.clone();
    copy.insert("patient".into(), Value::String(format!("hmac:{}", hash.0)));
    let replaced = Value::Object(copy).to_string();
    debug_assert!(!replaced.contains(clear.as_str()));
    replaced
}

/// Parses units from a JSON array, JSON Lines, or CSV with a header row.
pub fn parse_units(body: &str, is_csv: bool) -> Result<Vec<Unit>, FieldErrors> {
    let objects = if is_csv {
        csv_mapping::csv_objects(body)?
    } else {
        let mut out = Vec::new();
        let mut errors = FieldErrors::default();
        for (line, text) in json_objects(body)? {
            match object(line, &text) {
                Ok(m) => out.push((line, m)),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        out
    };
    let mut units = Vec::with_capacity(objects.len());
    let mut errors = FieldErrors::default();
    let mut seen = std::collections::HashSet::new();
    for (line, obj) in objects {
        match Unit::from_json(&obj, line) {
            Ok(u) if !seen.insert(u.id.clone()) => {
                errors.push(FieldError::new(line, "id", "förekommer två gånger i batchen"));
            }
            // A CSV row cannot say null: an empty cell keeps the stored address.
            Ok(u) if is_csv => units.push(Unit {
                email_given: u.email.is_some(),
                chef_email_given: u.chef_email.is_some(),
                ..u
            }),
            Ok(u) => units.push(u),
            Err(e) => e.into_iter().for_each(|e| errors.push(e)),
        }
    }
    if errors.is_empty() {
        Ok(units)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod line_tests {
    use super::json_objects;

    #[test]
    fn a_broken_array_names_a_line_the_body_has_counting_blank_lines_before_it() {
        let e = json_objects("[[{\"id\":1}\n").unwrap_err();
        assert_eq!(e[0].line, 1, "the end of a one-line body is its line 1");
        let e = json_objects("\n\n[{\"id\":1},\n{\"id\":\n").unwrap_err();
        assert_eq!(e[0].line, 4);
    }
}
