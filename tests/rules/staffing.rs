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

#[test]
fn a_unit_is_staffed_by_a_bemanning_that_day_or_any_act_between_08_and_15() {
    let nat = Profile::nationell();
    let as_of = "2026-05-04T00:00:00+02:00";
    // Söndag 3 maj 2026 is dag 3 of Första maj (seed 000).
    let events = [
        ev("start", "inskrivning", "2026-04-30T10:00:00+02:00", "AVD1", json!({})),
        ev("b1", "bemanning", "2026-05-03T21:00:00+02:00", "AVD1", json!({})),
        ev("k", "kvittens", "2026-05-03T08:00:00+02:00", "VC1", json!({"ref": "x"})),
        ev(
            "k2",
            "kvittens",
            "2026-05-03T15:00:00+02:00",
            "VC2",
            json!({"ref": "x"}),
        ),
        ev("k3", "kvittens", "2026-05-03T15:00:01+02:00", "K1", json!({"ref": "x"})),
        ev(
            "k4",
            "kvittens",
            "2026-05-03T07:59:59+02:00",
            "AVD2",
            json!({"ref": "x"}),
        ),
        ev("b5", "bemanning", "2026-05-02T23:59:59+02:00", "AVD2", json!({})),
    ];
    // K2 has storhelg = false; unknown units are never covered.
    let want = [
        ("AVD2".to_string(), "2026-05-03T15:00:00+02:00".to_string()),
        ("K1".into(), "2026-05-03T15:00:00+02:00".into()),
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
