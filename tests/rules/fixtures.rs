//! Events and units written the way a feed sends them, parsed by the real
//! validation, so the rules see exactly what ingest would give them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use svu_vakt::domain::{Event, PatientHasher, Secret, Unit};
use svu_vakt::rules::{evaluate_case, Finding, Profile, RuleId, Status, Units};

pub fn units() -> Units {
    let list = json!([
        {"id":"AVD1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region"},
        {"id":"AVD2","name":"Avdelning 2","kind":"slutenvard","huvudman":"Region"},
        {"id":"VC1","name":"Vårdcentralen 1","kind":"oppenvard","huvudman":"Region"},
        {"id":"VC2","name":"Vårdcentralen 2","kind":"oppenvard","huvudman":"Region"},
        {"id":"K1","name":"Hemtjänst","kind":"kommun","huvudman":"Kommunen"},
        {"id":"K2","name":"Hemsjukvård","kind":"kommun","huvudman":"Kommunen","storhelg":false}
    ]);
    let list: Vec<Unit> = list
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| Unit::from_json(v.as_object().unwrap(), i + 1).unwrap())
        .collect();
    Units::new(list)
}

/// One event: `(id, type, at, unit)` plus optional extra fields.
pub fn ev(id: &str, kind: &str, at: &str, unit: &str, extra: Value) -> Event {
    let mut obj = json!({"id": id, "case": "C1", "type": kind, "at": at, "unit": unit});
    if kind == "bemanning" {
        obj.as_object_mut().unwrap().remove("case");
    }
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        obj.as_object_mut().unwrap().insert(k, v);
    }
    let hasher = PatientHasher::new(Secret::new(b"k".to_vec()));
    Event::from_json(obj.as_object().unwrap(), 1, &hasher).unwrap_or_else(|e| panic!("{e:?}"))
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn run(events: &[Event], profile: &Profile, rule: RuleId, as_of: &str) -> Vec<Finding> {
    evaluate_case(events, &units(), profile, &[rule], t(as_of))
}

pub fn nat(events: &[Event], rule: RuleId, as_of: &str) -> Vec<Finding> {
    run(events, &Profile::nationell(), rule, as_of)
}

/// The findings as `(unit, due, status, done, late_minutes)` strings, for terse tables.
pub fn brief(f: &[Finding]) -> Vec<(String, String, &'static str, String, Option<i64>)> {
    f.iter()
        .map(|f| {
            (
                f.unit.as_ref().map_or("-".into(), |u| u.to_string()),
                f.due.to_rfc3339(),
                match f.status {
                    Status::Late => "late",
                    Status::Missing => "missing",
                },
                f.done.map_or("-".into(), |d| d.to_rfc3339()),
                f.late_minutes,
            )
        })
        .collect()
}
