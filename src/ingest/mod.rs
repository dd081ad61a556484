//! Turning input bytes into validated events and units: JSON Lines, a JSON
//! array, or CSV through a column mapping. A batch is parsed whole and either
//! every line is good or every bad line is reported. Parsing only: storing
//! is `store::events`'s job, and the types both share live in `domain`.

pub mod csv_mapping;
pub mod file;
mod lines;
mod sorted;

use serde_json::{Map, Value};

pub use crate::domain::ingested::{content_hash, IngestError, IngestEvent};
use crate::domain::{Event, FieldError, FieldErrors, PatientHasher, Unit};

/// Splits a request body into JSON objects with their line numbers: a JSON
/// array (numbered by position, from 1) or JSON Lines (numbered by line).
pub fn json_objects(body: &str) -> Result<Vec<(usize, String)>, Vec<FieldError>> {
    Ok(match json_array(body)? {
        Some(items) => numbered_items(&items).map(|(i, r)| (i, r.to_string())).collect(),
        None => json_lines(body).map(|(i, l)| (i, l.to_string())).collect(),
    })
}

/// The items of a body that is a JSON array, borrowed from it; `None` for
/// JSON Lines.
fn json_array(body: &str) -> Result<Option<Vec<&serde_json::value::RawValue>>, Vec<FieldError>> {
    let trimmed = body.trim_start();
    if !trimmed.starts_with('[') {
        return Ok(None);
    }
    serde_json::from_str(trimmed).map(Some).map_err(|e| {
        // serde counts from the '[': add the blank lines before it, and
        // name the last line for an error at the very end.
        let before = body[..body.len() - trimmed.len()].matches('\n').count();
        let line = (before + e.line()).min(body.lines().count().max(1));
        vec![FieldError::new(
            line,
            "body",
            &format!("är inte en giltig JSON-array: {e}"),
        )]
    })
}

fn numbered_items<'a>(items: &'a [&'a serde_json::value::RawValue]) -> impl Iterator<Item = (usize, &'a str)> {
    items.iter().enumerate().map(|(i, r)| (i + 1, r.get()))
}

/// The non-blank lines of JSON Lines, numbered from 1, borrowed.
fn json_lines(body: &str) -> impl Iterator<Item = (usize, &str)> {
    body.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
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
/// The body is read where it lies: no copy of its lines is made, so a
/// body of millions of bad lines costs the body and a thousand errors.
pub fn parse_events(body: &str, hasher: &PatientHasher) -> Result<Vec<IngestEvent>, FieldErrors> {
    match json_array(body)? {
        Some(items) => parse_numbered(numbered_items(&items), hasher),
        None => parse_numbered(json_lines(body), hasher),
    }
}

/// Parses numbered lines (as [`json_objects`] gives them).
pub fn parse_lines(lines: &[(usize, String)], hasher: &PatientHasher) -> Result<Vec<IngestEvent>, FieldErrors> {
    parse_numbered(lines.iter().map(|(n, s)| (*n, s.as_str())), hasher)
}

fn parse_numbered<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
    hasher: &PatientHasher,
) -> Result<Vec<IngestEvent>, FieldErrors> {
    // Grown as good events come, never reserved by the count of lines.
    let mut events = Vec::new();
    let mut errors = FieldErrors::default();
    for (line, text) in lines {
        match parse_event_line(line, text, hasher) {
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

    #[test]
    fn an_array_and_json_lines_name_the_same_bad_item_alike() {
        let hasher = crate::domain::PatientHasher::new(crate::domain::Secret::new(b"k".to_vec()));
        let good = r#"{"id":"e1","case":"A","type":"inskrivning","at":"2026-11-19T08:00:00+01:00","unit":"AVD1"}"#;
        let bad = r#"{"id":"e2","case":"A","type":"okänd","at":"2026-11-19T08:00:00+01:00","unit":"AVD1"}"#;
        for body in [format!("{good}\n\n{bad}\n"), format!("[{good},\n{bad}]")] {
            let e = super::parse_events(&body, &hasher).unwrap_err();
            let line = if body.starts_with('[') { 2 } else { 3 };
            assert_eq!(
                (e.total(), e.listed()[0].line, e.listed()[0].field.as_str()),
                (1, line, "type"),
                "{body}"
            );
        }
        let events = super::parse_events(&format!("[{good}]"), &hasher).unwrap();
        assert_eq!(events[0].event.id.as_str(), "e1");
    }

    #[test]
    fn a_units_csv_with_old_mac_line_ends_names_its_lines() {
        let csv = "id;name;kind;huvudman\rK1;Kommun 1;kommun;K\rK2;;sjukhus;K\r";
        let e = super::parse_units(csv, true).unwrap_err();
        assert!(e.listed().iter().all(|e| e.line == 3), "{:?}", e.listed());
    }
}
