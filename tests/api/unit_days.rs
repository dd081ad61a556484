//! The unit-day register (`unit_days`) that storhelg staffing is judged
//! from: kept at ingest, rebuilt after a removed batch and by the migration
//! that made it, always what the stored events say.

use chrono::NaiveDate;
use svu_vakt::rules::bemanning::UnitDay;
use svu_vakt::store::DbConn;

use crate::helpers::{spawn_app, Backend, TestApp, CASE_EVENTS};

crate::on_both!(
    the_migration_builds_the_register_ingest_keeps,
    a_removed_batch_leaves_the_register_of_the_events_left,
    an_entry_is_changed_when_a_batch_brings_it_something_earlier_and_every_entry_at_the_migration
);

/// Acts of two units over Christmas: a `bemanning` at night, morning and
/// afternoon acts, an act outside both readings.
const FIRST: &str = r#"{"id":"b1","type":"bemanning","at":"2026-12-25T22:00:00+01:00","unit":"AVD1"}
{"id":"x1","case":"X1","type":"inskrivning","at":"2026-12-26T10:30:00+01:00","unit":"AVD1"}
{"id":"x2","case":"X1","type":"inskrivningsmeddelande","at":"2026-12-26T14:20:00+01:00","unit":"AVD1","to":["VC1"]}
{"id":"x3","case":"X1","type":"kvittens","at":"2026-12-26T18:00:00+01:00","unit":"VC1","ref":"x2"}
"#;

/// Earlier acts of the same days, and a day of its own.
const SECOND: &str = r#"{"id":"y1","case":"Y1","type":"inskrivning","at":"2026-12-26T08:05:00+01:00","unit":"AVD1"}
{"id":"y2","case":"Y1","type":"inskrivningsmeddelande","at":"2026-12-26T09:00:00+01:00","unit":"AVD1","to":["VC1"]}
{"id":"y3","case":"Y1","type":"kvittens","at":"2026-12-27T14:00:00+01:00","unit":"VC1","ref":"y2"}
{"id":"b2","type":"bemanning","at":"2026-12-25T06:00:00+01:00","unit":"AVD1"}
"#;

fn register(conn: &mut DbConn) -> Vec<UnitDay> {
    let (from, to) = (
        NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2100, 1, 1).unwrap(),
    );
    let mut days = svu_vakt::store::unit_days::between(conn, from, to).unwrap();
    days.sort_by(|a, b| (&a.unit, a.day).cmp(&(&b.unit, b.day)));
    days
}

fn batch(app: &TestApp, body: &str) -> i64 {
    let r = app.post_events(body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["batch"].as_i64().unwrap()
}

/// An installation with events from before the register: the migration
/// that makes it fills it with what ingest would have kept.
fn the_migration_builds_the_register_ingest_keeps(b: Backend) {
    let app = spawn_app(b);
    for body in [CASE_EVENTS, FIRST, SECOND] {
        batch(&app, body);
    }
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let kept = register(conn);
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let avd_26 = kept
        .iter()
        .find(|d| d.unit == "AVD1" && d.day == day("2026-12-26"))
        .unwrap();
    assert_eq!(
        avd_26.morning.unwrap().to_rfc3339(),
        "2026-12-26T07:05:00+00:00",
        "the earliest morning act"
    );
    assert_eq!(avd_26.afternoon.unwrap().to_rfc3339(), "2026-12-26T13:20:00+00:00");
    assert_eq!(avd_26.bemanning, None);
    let avd_25 = kept
        .iter()
        .find(|d| d.unit == "AVD1" && d.day == day("2026-12-25"))
        .unwrap();
    assert_eq!(avd_25.bemanning.unwrap().to_rfc3339(), "2026-12-25T05:00:00+00:00");
    crate::helpers::revert_through(conn, b, "20261203000018");
    svu_vakt::store::migrate(conn).unwrap();
    assert_eq!(register(conn), kept);
    let units = svu_vakt::store::unit_days::units(conn).unwrap();
    assert_eq!(units, vec!["AVD1", "K1-HT", "VC1"]);
}

/// Removing a batch whose acts were the earliest of their days leaves the
/// register an installation that never had the batch would have.
fn a_removed_batch_leaves_the_register_of_the_events_left(b: Backend) {
    let app = spawn_app(b);
    batch(&app, FIRST);
    let second = batch(&app, SECOND);
    let mut c = app.conn();
    let both = register(&mut c);
    svu_vakt::store::events::remove_batches(&mut c, &[second]).unwrap();
    let left = register(&mut c);
    assert_ne!(left, both);
    let only_first = spawn_app(b);
    batch(&only_first, FIRST);
    assert_eq!(left, register(&mut only_first.conn()));
}

/// What an incremental scan judges again of older staffing days: the
/// entries a batch made or moved earlier, not those its acts left as they
/// were; and, at the migration that gave the entries their `changed_at`,
/// every entry (one that changed before it is never missed).
fn an_entry_is_changed_when_a_batch_brings_it_something_earlier_and_every_entry_at_the_migration(b: Backend) {
    let app = spawn_app(b);
    let before_first = svu_vakt::store::now();
    batch(&app, FIRST);
    let mut c = app.conn();
    let changed = |conn: &mut DbConn, since| {
        let mut v: Vec<(String, String)> = svu_vakt::store::unit_days::changed_since(conn, since, 1000)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|(unit, day)| (unit, day.to_string()))
            .collect();
        v.sort();
        v
    };
    let pair = |u: &str, d: &str| (u.to_string(), d.to_string());
    let all = vec![
        pair("AVD1", "2026-12-25"),
        pair("AVD1", "2026-12-26"),
        pair("VC1", "2026-12-26"),
    ];
    assert_eq!(changed(&mut c, before_first), all);
    let before_second = svu_vakt::store::now();
    assert!(changed(&mut c, before_second).is_empty());
    batch(&app, SECOND);
    // AVD1's 25th (an earlier bemanning) and 26th (an earlier morning
    // act), VC1's new 27th; VC1's 26th is as it was.
    assert_eq!(
        changed(&mut c, before_second),
        vec![
            pair("AVD1", "2026-12-25"),
            pair("AVD1", "2026-12-26"),
            pair("VC1", "2026-12-27")
        ]
    );
    // A batch of acts no earlier than the stored changes nothing.
    let after_second = svu_vakt::store::now();
    batch(
        &app,
        r#"{"id":"z1","case":"Z1","type":"inskrivning","at":"2026-12-26T16:00:00+01:00","unit":"AVD1"}"#,
    );
    assert!(changed(&mut c, after_second).is_empty());
    assert_eq!(
        svu_vakt::store::unit_days::changed_since(&mut c, before_first, 3).unwrap(),
        None,
        "more than the limit changed"
    );
    let conn: &mut DbConn = &mut c;
    crate::helpers::revert_through(conn, b, "20261207000028");
    svu_vakt::store::migrate(conn).unwrap();
    assert_eq!(
        changed(conn, after_second).len(),
        4,
        "every entry changed at the migration"
    );
    // A batch whose transaction began before another's and commits after
    // it: its earlier instant is taken, its older time is not.
    let earlier = UnitDay {
        unit: "AVD1".into(),
        day: NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
        first: "2026-12-25T00:30:00Z".parse().unwrap(),
        bemanning: None,
        morning: None,
        afternoon: None,
    };
    let mut recorded = svu_vakt::store::unit_days::Recorded::default();
    svu_vakt::store::unit_days::record(conn, &[earlier], &mut recorded, before_first).unwrap();
    let avd_25 = register(conn)
        .into_iter()
        .find(|d| d.unit == "AVD1" && d.day.to_string() == "2026-12-25");
    assert_eq!(avd_25.unwrap().first.to_rfc3339(), "2026-12-25T00:30:00+00:00");
    assert_eq!(changed(conn, after_second).len(), 4, "the later time is kept");
}
