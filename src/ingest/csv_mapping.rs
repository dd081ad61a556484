//! CSV input. Units come as CSV with the field names as header. Events come
//! as a coordination system's export, whose columns a mapping file (TOML)
//! maps onto the event fields; see `docs/import.md` and `ops/mapping-cosmic-link.toml`.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeZone};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{parse_event_object, IngestEvent};
use crate::domain::{FieldError, FieldErrors, PatientHasher};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    /// Field separator, one character; `,` when left out.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Separator between recipients in the `to` column.
    #[serde(default = "default_list_separator")]
    pub list_separator: char,
    /// chrono format of the `at` column when it holds local time without offset.
    pub at_format: Option<String>,
    /// IANA zone of such local times; required with `at_format`.
    pub timezone: Option<String>,
    /// Event field -> export column header.
    pub columns: BTreeMap<String, String>,
    /// Export value of the type column -> event type.
    #[serde(default)]
    pub types: BTreeMap<String, String>,
    /// Export value of the value column -> event value (e.g. "Ja" -> "true").
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Event fields of [columns] whose column an export may lack (`kommun`:
    /// not every export carries the folkbokföringskommun).
    #[serde(default)]
    pub optional_columns: Vec<String>,
}

fn default_delimiter() -> char {
    ','
}

fn default_list_separator() -> char {
    '|'
}

const EVENT_FIELDS: [&str; 10] = [
    "id", "case", "type", "at", "unit", "to", "ref", "value", "patient", "kommun",
];

impl CsvMapping {
    pub fn from_toml(text: &str) -> anyhow::Result<CsvMapping> {
        let m: CsvMapping = toml::from_str(text)?;
        for field in m.columns.keys() {
            anyhow::ensure!(
                EVENT_FIELDS.contains(&field.as_str()),
                "mappningen: okänt händelsefält `{field}` i [columns]"
            );
        }
        for field in &m.optional_columns {
            anyhow::ensure!(
                m.columns.contains_key(field) && !["id", "type", "at", "unit"].contains(&field.as_str()),
                "mappningen: optional_columns får bara nämna valfria fält som [columns] anger, inte `{field}`"
            );
        }
        for field in ["id", "type", "at", "unit"] {
            anyhow::ensure!(
                m.columns.contains_key(field),
                "mappningen: [columns] måste ange en kolumn för `{field}`"
            );
        }
        anyhow::ensure!(
            m.delimiter.is_ascii(),
            "mappningen: delimiter ska vara ett ASCII-tecken"
        );
        if m.at_format.is_some() {
            let tz = m.timezone.as_deref().unwrap_or_default();
            anyhow::ensure!(
                tz.parse::<chrono_tz::Tz>().is_ok(),
                "mappningen: at_format kräver en giltig timezone, t.ex. Europe/Stockholm"
            );
        }
        Ok(m)
    }

    /// Parses a whole export; all events, or every bad line.
    pub fn parse_events(&self, body: &str, hasher: &PatientHasher) -> Result<Vec<IngestEvent>, Vec<FieldError>> {
        let mut events = Vec::new();
        let mut errors = Vec::new();
        let mut collect = |chunk: Result<Vec<IngestEvent>, Vec<FieldError>>| {
            match chunk {
                Ok(mut e) => events.append(&mut e),
                Err(mut e) => errors.append(&mut e),
            }
            Ok(())
        };
        if let Err(e) = self.for_each_chunk(
            super::lines::LineCap::new(body.as_bytes()),
            hasher,
            usize::MAX,
            &mut collect,
        ) {
            errors.push(FieldError::new(0, "body", &format!("{e:#}")));
        }
        if errors.is_empty() {
            Ok(events)
        } else {
            Err(errors)
        }
    }

    /// Streams a CSV export: `f` gets each run of `size` records, validated
    /// (all events, or every error of the run). Memory holds one run.
    pub fn for_each_chunk(
        &self,
        input: impl std::io::Read,
        hasher: &PatientHasher,
        size: usize,
        f: &mut dyn FnMut(Result<Vec<IngestEvent>, Vec<FieldError>>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(self.delimiter as u8)
            .from_reader(input);
        let headers = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                let long = match e.kind() {
                    csv::ErrorKind::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<super::lines::LongLine>()),
                    _ => None,
                };
                let message = match long {
                    Some(_) => format!("är längre än {} byte", super::lines::MAX_LINE_BYTES),
                    None => csv_message(&e),
                };
                return f(Err(vec![FieldError::new(1, "header", &message)]));
            }
        };
        let index = match self.column_index(&headers) {
            Ok(i) => i,
            Err(e) => return f(Err(e)),
        };
        let mut events = Vec::new();
        let mut errors = Vec::new();
        let mut n = 0;
        for record in reader.records() {
            n += 1;
            match record {
                Ok(record) => {
                    let line = record.position().map_or(0, |p| p.line() as usize);
                    match self.record_event(&record, &index, line, hasher) {
                        Ok(ev) => events.push(ev),
                        Err(mut e) => errors.append(&mut e),
                    }
                }
                Err(e) => {
                    if let csv::ErrorKind::Io(io) = e.kind() {
                        // Unreadable or a line past the cap: the rest of the
                        // file cannot be read as records.
                        let long = io.get_ref().and_then(|i| i.downcast_ref::<super::lines::LongLine>());
                        errors.push(match long {
                            Some(l) => FieldError::new(
                                l.0,
                                "rad",
                                &format!("är längre än {} byte", super::lines::MAX_LINE_BYTES),
                            ),
                            None => FieldError::new(0, "fil", &format!("kan inte läsas: {io}")),
                        });
                        break;
                    }
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    errors.push(FieldError::new(
                        line,
                        "line",
                        &format!("är inte giltig CSV: {}", csv_message(&e)),
                    ));
                }
            }
            if n == size {
                f(chunk_result(&mut events, &mut errors))?;
                n = 0;
            }
        }
        if n > 0 {
            f(chunk_result(&mut events, &mut errors))?;
        }
        Ok(())
    }

    fn record_event(
        &self,
        record: &csv::StringRecord,
        index: &BTreeMap<String, usize>,
        line: usize,
        hasher: &PatientHasher,
    ) -> Result<IngestEvent, Vec<FieldError>> {
        let obj = self.record_object(record, index, line)?;
        // What is kept of the row is the event as mapped, as a JSON object
        // (its patient replaced by the hash), never the row: an export's
        // other columns (a name, a free-text comment) are not ours to keep.
        let raw = Value::Object(obj.clone()).to_string();
        parse_event_object(&obj, line, &raw, hasher)
    }

    fn column_index(&self, headers: &csv::StringRecord) -> Result<BTreeMap<String, usize>, Vec<FieldError>> {
        let mut index = BTreeMap::new();
        let mut errors = Vec::new();
        for (field, column) in &self.columns {
            match headers.iter().position(|h| h.trim() == column) {
                Some(i) => {
                    index.insert(field.clone(), i);
                }
                None if self.optional_columns.contains(field) => {}
                None => errors.push(FieldError::new(
                    1,
                    field,
                    &format!("exporten har ingen kolumn `{column}`"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(index)
        } else {
            Err(errors)
        }
    }

    fn record_object(
        &self,
        record: &csv::StringRecord,
        index: &BTreeMap<String, usize>,
        line: usize,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut obj = Map::new();
        for (field, &i) in index {
            let cell = record.get(i).unwrap_or("").trim();
            if cell.is_empty() {
                if field == "to" {
                    obj.insert("to".into(), Value::Array(Vec::new()));
                }
                continue;
            }
            let value = match field.as_str() {
                "type" => Value::String(self.types.get(cell).cloned().unwrap_or_else(|| cell.to_string())),
                "value" => Value::String(self.values.get(cell).cloned().unwrap_or_else(|| cell.to_string())),
                "to" => Value::Array(
                    cell.split(self.list_separator)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                ),
                "at" => Value::String(self.timestamp(cell, line).map_err(|e| vec![e])?),
                _ => Value::String(cell.to_string()),
            };
            obj.insert(field.clone(), value);
        }
        // An export may fill the patient's kommun on every row; the contract
        // carries it on the inskrivning only.
        if obj.get("type").and_then(Value::as_str) != Some("inskrivning") {
            obj.remove("kommun");
        }
        Ok(obj)
    }

    /// RFC 3339 as it is, or local time in the mapping's zone. A local time
    /// that daylight saving makes ambiguous or impossible is an error, never a guess.
    fn timestamp(&self, cell: &str, line: usize) -> Result<String, FieldError> {
        let (Some(format), Some(tz)) = (&self.at_format, &self.timezone) else {
            return Ok(cell.to_string());
        };
        let tz: chrono_tz::Tz = tz
            .parse()
            .map_err(|_| FieldError::new(line, "at", "mappningen har ingen giltig tidszon"))?;
        let naive = NaiveDateTime::parse_from_str(cell, format)
            .map_err(|_| FieldError::new(line, "at", &format!("stämmer inte med formatet `{format}`")))?;
        match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => Ok(t.fixed_offset().to_rfc3339()),
            chrono::LocalResult::Ambiguous(..) => Err(FieldError::new(
                line,
                "at",
                "är en tvetydig lokal tid (sommartiden slutar): exporten måste ange tidsförskjutningen",
            )),
            chrono::LocalResult::None => Err(FieldError::new(
                line,
                "at",
                "finns inte i lokal tid (sommartiden börjar)",
            )),
        }
    }
}

/// A JSON object with the input line it came from.
pub type NumberedObject = (usize, Map<String, Value>);

/// Rows of a CSV with a header row as string-valued objects (units).
pub fn csv_objects(body: &str) -> Result<Vec<NumberedObject>, FieldErrors> {
    // With CRLF or a lone CR the CSV reader misnumbers lines; LF it numbers
    // as an editor does (LineCap does the same for event exports).
    let body = &body.replace("\r\n", "\n").replace('\r', "\n");
    let delimiter = if body.lines().next().is_some_and(|h| h.contains(';')) {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(body.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| FieldErrors::from(FieldError::new(1, "header", &csv_message(&e))))?
        .clone();
    let mut out = Vec::new();
    let mut errors = FieldErrors::default();
    for record in reader.records() {
        match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                let obj = headers
                    .iter()
                    .zip(r.iter())
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(h, v)| (h.trim().to_string(), Value::String(v.to_string())))
                    .collect();
                out.push((line, obj));
            }
            Err(e) => errors.push(FieldError::new(
                e.position().map_or(0, |p| p.line() as usize),
                "line",
                &format!("är inte giltig CSV: {}", csv_message(&e)),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The csv crate's error in Swedish (its own text is English).
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("raden har {len} fält men rubrikraden har {expected_len}")
        }
        csv::ErrorKind::Utf8 { err, .. } => format!("kolumn {} är inte UTF-8", err.field() + 1),
        csv::ErrorKind::Io(io) => format!("kan inte läsas: {io}"),
        _ => "kan inte läsas som CSV".to_string(),
    }
}

fn chunk_result(
    events: &mut Vec<IngestEvent>,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<IngestEvent>, Vec<FieldError>> {
    if errors.is_empty() {
        Ok(std::mem::take(events))
    } else {
        events.clear();
        Err(std::mem::take(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;

    #[test]
    fn the_shipped_cosmic_link_mapping_reads_an_export() {
        let mapping = CsvMapping::from_toml(include_str!("../../ops/mapping-cosmic-link.toml")).unwrap();
        let export = "Händelse-id;Ärendenummer;Händelsetyp;Tidpunkt;Utförande enhet;Mottagare;Avser händelse;Värde;Personnummer\n\
                      h1;A1;Utskrivningsklar;2026-03-29 11:30;AVD1;K1, VC1;;;\n\
                      h2;A1;Samtycke till SIP;2026-10-25 01:30;AVD1;;;Nej;\n";
        let hasher = PatientHasher::new(Secret::new(b"k".to_vec()));
        let events = mapping.parse_events(export, &hasher).unwrap();
        assert_eq!(events[0].event.at.to_rfc3339(), "2026-03-29T11:30:00+02:00");
        assert_eq!(events[0].event.to.len(), 2);
        assert_eq!(events[1].event.value, Some(crate::domain::EventValue::Bool(false)));
    }

    #[test]
    fn the_patients_kommun_is_read_from_the_inskrivning_row_where_the_export_has_it() {
        let mapping = CsvMapping::from_toml(include_str!("../../ops/mapping-cosmic-link.toml")).unwrap();
        let export = "Händelse-id;Ärendenummer;Händelsetyp;Tidpunkt;Utförande enhet;Mottagare;Avser händelse;Värde;Personnummer;Folkbokföringskommun\n\
                      h1;A1;Inskrivning;2026-03-28 11:30;AVD1;;;;;Motala kommun\n\
                      h2;A1;Utskrivningsmeddelande;2026-03-30 10:00;AVD1;;;;;Motala kommun\n\
                      h3;A1;SIP-möte;2026-04-20 10:00;VC1;;;;;\n";
        let hasher = PatientHasher::new(Secret::new(b"k".to_vec()));
        let events = mapping.parse_events(export, &hasher).unwrap();
        assert_eq!(events[0].event.kommun.as_deref(), Some("Motala kommun"));
        assert_eq!(
            events[1].event.kommun, None,
            "the contract carries it on the inskrivning only"
        );
        assert_eq!(events[2].event.kind, crate::domain::EventType::SipMote);
    }

    #[test]
    fn a_local_time_that_daylight_saving_makes_ambiguous_or_impossible_is_an_error() {
        let mapping = CsvMapping::from_toml(include_str!("../../ops/mapping-cosmic-link.toml")).unwrap();
        let head = "Händelse-id;Ärendenummer;Händelsetyp;Tidpunkt;Utförande enhet;Mottagare;Avser händelse;Värde;Personnummer\n";
        let hasher = PatientHasher::new(Secret::new(b"k".to_vec()));
        for at in ["2026-10-25 02:30", "2026-03-29 02:30", "25/10/2026 10:00"] {
            let export = format!("{head}h1;A1;Utskrivning;{at};AVD1;;;;\n");
            let errors = mapping.parse_events(&export, &hasher).unwrap_err();
            assert_eq!((errors[0].line, errors[0].field.as_str()), (2, "at"), "{at}");
        }
    }

    #[test]
    fn a_mapping_without_the_required_columns_is_refused() {
        let err = CsvMapping::from_toml("[columns]\nid = \"Id\"\n").unwrap_err();
        assert!(err.to_string().contains("type"));
    }
}
