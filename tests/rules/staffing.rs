//! §4.4 bemanning_storhelg on a unit's staffing day.

use serde_json::json;
use svu_vakt::calendar::Calendar;
use svu_vakt::rules::bemanning::StaffingTracker;
use svu_vakt::rules::Profile;

use crate::fixtures::{ev, t, units};

fn missing(events: &[svu_vakt::domain::Event], profile: &Profile, as_of: &str) -> Vec<(String, String)> {
    let units = units();
    let mut tr = StaffingTracker::default();
    for e in events {
        tr.observe(e, &units, t(as_of));
    }
    tr.findings(&units, &Calendar::new(), profile, t(as_of))
        .iter()
        .map(|f| (f.unit.clone().unwrap().0, f.due.to_rfc3339()))
        .collect()
}

fn kv(id: &str, at: &str, unit: &str) -> svu_vakt::domain::Event {
    ev(id, "kvittens", at, unit, json!({"ref": "x"}))
}

#[test]
fn a_unit_is_staffed_by_a_bemanning_that_day_or_by_acts_in_both_readings() {
    let nat = Profile::nationell();
    let as_of = "2026-05-04T00:00:00+02:00";
    // Söndag 3 maj 2026 is dag 3 of Första maj (seed 000). Seed 000: staffed
    // "så att man kan läsa och hantera ärenden kl. 8 och 14": the morning
    // reading 08:00:00–11:59:59 and the afternoon reading 14:00:00–15:00:00.
    let events = [
        ev("start", "inskrivning", "2026-04-30T10:00:00+02:00", "AVD1", json!({})),
        // AVD1: a bemanning at any time of the day.
        ev("b1", "bemanning", "2026-05-03T21:00:00+02:00", "AVD1", json!({})),
        // VC1: both readings at their outer edges.
        kv("k1", "2026-05-03T08:00:00+02:00", "VC1"),
        kv("k2", "2026-05-03T15:00:00+02:00", "VC1"),
        // VC2: one act at 08:05 alone is not a staffed day (SPEC §4.4).
        kv("k3", "2026-05-03T08:05:00+02:00", "VC2"),
        // K1: a second outside each reading (07:59:59, 12:00:00, 13:59:59, 15:00:01).
        kv("k4", "2026-05-03T07:59:59+02:00", "K1"),
        kv("k5", "2026-05-03T12:00:00+02:00", "K1"),
        kv("k6", "2026-05-03T13:59:59+02:00", "K1"),
        kv("k7", "2026-05-03T15:00:01+02:00", "K1"),
        // AVD2: the inner edges, 11:59:59 and 14:00:00.
        kv("k8", "2026-05-03T11:59:59+02:00", "AVD2"),
        kv("k9", "2026-05-03T14:00:00+02:00", "AVD2"),
        // A bemanning the evening before is not that day.
        ev("b5", "bemanning", "2026-05-02T23:59:59+02:00", "AVD2", json!({})),
    ];
    // K2 has storhelg = false; unknown units are never covered.
    let want = [
        ("K1".to_string(), "2026-05-03T15:00:00+02:00".to_string()),
        ("VC2".into(), "2026-05-03T15:00:00+02:00".into()),
    ];
    assert_eq!(missing(&events, &nat, as_of), want);
    // Before 15:00 on the day nothing is due yet.
    assert!(missing(&events[..1], &nat, "2026-05-03T15:00:00+02:00").is_empty());
    assert_eq!(missing(&events[..1], &nat, "2026-05-03T15:00:01+02:00").len(), 5);
}

#[test]
fn a_published_table_replaces_the_computed_days_of_its_block() {
    let events = [ev(
        "start",
        "inskrivning",
        "2026-04-30T10:00:00+02:00",
        "AVD1",
        json!({}),
    )];
    let as_of = "2026-05-20T00:00:00+02:00";
    let days = |p: &Profile| {
        let mut d: Vec<String> = missing(&events, p, as_of)
            .into_iter()
            .filter(|(u, _)| u == "AVD1")
            .map(|(_, due)| due)
            .collect();
        d.dedup();
        d
    };
    assert_eq!(
        days(&Profile::nationell()),
        ["2026-05-03T15:00:00+02:00", "2026-05-15T15:00:00+02:00"]
    );
    assert_eq!(
        days(&Profile::ostergotland()),
        ["2026-05-03T15:00:00+02:00", "2026-05-15T15:00:00+02:00"]
    );
    let mut p = Profile::ostergotland();
    p.staffing_tables
        .insert(2026, vec![chrono::NaiveDate::from_ymd_opt(2026, 5, 2).unwrap()]);
    assert_eq!(
        days(&p),
        ["2026-05-02T15:00:00+02:00", "2026-05-15T15:00:00+02:00"],
        "the table wins in its block only"
    );
}
