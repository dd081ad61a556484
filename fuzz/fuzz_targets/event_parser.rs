//! Any bytes through the API's path: UTF-8 check, then the event parser.
//! Must never panic; every error of JSON Lines must name a line the input
//! has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use svu_vakt::domain::{PatientHasher, Secret};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let hasher = PatientHasher::new(Secret::new(b"fuzz-patient-key-0123456789abcdef".to_vec()));
    // In a JSON array a "line" is the item's position; JSON Lines name the
    // line of the text.
    let array = text.trim_start().starts_with('[');
    let lines = text.lines().count().max(1);
    match svu_vakt::ingest::parse_events(text, &hasher) {
        Ok(events) => assert!(events.len() <= lines),
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors.listed() {
                assert!(array || e.line <= lines, "line {} of {lines}", e.line);
            }
        }
    }
});
