//! Any bytes as a CSV export through the mapping of the tests' export (and
//! through a mapping read from the first line, when that parses): never a
//! panic, and no event without a case id's field error or a parsed event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use svu_vakt::domain::{PatientHasher, Secret};
use svu_vakt::ingest::csv_mapping::CsvMapping;

const MAPPING: &str = r#"
delimiter = ";"
list_separator = ","
at_format = "%Y-%m-%d %H:%M"
timezone = "Europe/Stockholm"

[columns]
id = "Händelse-id"
case = "Ärendenummer"
type = "Händelsetyp"
at = "Tidpunkt"
unit = "Utförande enhet"
to = "Mottagare"
ref = "Avser"
value = "Värde"
patient = "Personnummer"

[types]
"Inskrivning" = "inskrivning"
"Inskrivningsmeddelande" = "inskrivningsmeddelande"
"Kvittens" = "kvittens"

[values]
"Ja" = "true"
"#;

fuzz_target!(|data: &[u8]| {
    let hasher = PatientHasher::new(Secret::new(b"fuzz-patient-key-0123456789abcdef".to_vec()));
    let mapping = CsvMapping::from_toml(MAPPING).expect("the fixed mapping");
    let mut seen = 0usize;
    let _ = mapping.for_each_chunk(svu_vakt::ingest::file::LineCap::new(data), &hasher, 7, &mut |chunk| {
        match chunk {
            Ok(events) => seen += events.len(),
            Err(errors) => assert!(!errors.is_empty()),
        }
        Ok(())
    });
    assert!(seen <= data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1);
    // The mapping file itself is input too.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = CsvMapping::from_toml(text);
    }
});
