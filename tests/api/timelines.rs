//! The cases' packed timelines (`case_timelines`) a scan reads: kept at
//! ingest, made again after a removed batch, built by the migration that
//! made the table, and always exactly what `events` holds for the case.

use std::collections::BTreeMap;

use diesel::prelude::*;
use svu_vakt::domain::Event;
use svu_vakt::store::schema::case_timelines;
use svu_vakt::store::{event_rows, timelines, DbConn};

use crate::helpers::{spawn_app, Backend, TestApp, CASE_EVENTS};

crate::on_both!(
    ingest_keeps_each_case_packed_as_its_events,
    a_removed_batch_leaves_the_timelines_of_the_events_left,
    a_batch_and_a_removed_batch_racing_on_one_case_leave_its_row_its_events,
    the_migration_packs_the_cases_and_a_case_without_a_row_is_read_from_events,
    a_run_of_cases_read_as_a_range_is_exactly_the_cases_listed
);

/// Two cases, out of order, across batches; C1's later batch adds events
/// before, between and tied with its earlier ones.
const FIRST: &str = r#"{"id":"x3","case":"X1","type":"kvittens","at":"2026-12-26T18:00:00+01:00","unit":"VC1","ref":"x2"}
{"id":"x1","case":"X1","type":"inskrivning","at":"2026-12-26T10:30:00+01:00","unit":"AVD1","patient":"19900101-0017","kommun":"Kommun K1"}
{"id":"x2","case":"X1","type":"inskrivningsmeddelande","at":"2026-12-26T14:20:00+01:00","unit":"AVD1","to":["VC1","K1-HT"]}
{"id":"b1","type":"bemanning","at":"2026-12-25T22:00:00+01:00","unit":"AVD1"}
"#;

const SECOND: &str = r#"{"id":"c0","case":"C1","type":"inskrivning","at":"2026-05-03T23:00:00+02:00","unit":"AVD1","patient":"19900101-0017"}
{"id":"c9","case":"C1","type":"utskrivningsklar","at":"2026-05-04T11:42:00+02:00","unit":"AVD1","to":["K1-HT"]}
{"id":"x4","case":"X1","type":"utskrivning","at":"2026-12-27T09:00:00+01:00","unit":"AVD1"}
"#;

fn batch(app: &TestApp, body: &str) -> i64 {
    let r = app.post_events(body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["batch"].as_i64().unwrap()
}

/// Every case's events as `events` holds them, in (instant, id) order.
fn from_events(conn: &mut DbConn, ids: &[&str]) -> BTreeMap<String, Vec<Event>> {
    let mut out: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for row in event_rows::of_cases(conn, ids).unwrap() {
        let e = row.into_event().unwrap();
        out.entry(e.case.clone().unwrap().0).or_default().push(e);
    }
    for events in out.values_mut() {
        events.sort_by(|a, b| (a.at, &a.id.0).cmp(&(b.at, &b.id.0)));
    }
    out
}

fn packed_cases(conn: &mut DbConn) -> Vec<String> {
    case_timelines::table
        .select(case_timelines::case_id)
        .order(case_timelines::case_id)
        .load(conn)
        .unwrap()
}

/// What a scan reads is what `events` holds, every case having its row.
fn assert_scan_reads_the_events(conn: &mut DbConn, ids: &[&str]) {
    let read = timelines::of_cases(conn, ids).unwrap();
    assert_eq!(read, from_events(conn, ids));
    let with_events: Vec<String> = read.keys().cloned().collect();
    assert_eq!(
        packed_cases(conn),
        with_events,
        "every case with events has its packed row"
    );
}

fn ingest_keeps_each_case_packed_as_its_events(b: Backend) {
    let app = spawn_app(b);
    for body in [CASE_EVENTS, FIRST, SECOND] {
        batch(&app, body);
    }
    let mut c = app.conn();
    let read = timelines::of_cases(&mut c, &["C1", "X1", "none"]).unwrap();
    let ids = |case: &str| -> Vec<String> { read[case].iter().map(|e| e.id.0.clone()).collect() };
    // c9 and e2 share their instant: by id.
    assert_eq!(ids("C1"), ["c0", "e1", "c9", "e2", "e3", "e4", "e5"]);
    assert_eq!(ids("X1"), ["x1", "x2", "x3", "x4"]);
    assert!(!read.contains_key("none"));
    let x2 = &read["X1"][1];
    assert_eq!(x2.to.iter().map(|u| u.as_str()).collect::<Vec<_>>(), ["VC1", "K1-HT"]);
    assert_eq!(read["X1"][0].kommun.as_deref(), Some("Kommun K1"));
    assert_eq!(read["X1"][3].kommun, None);
    assert_eq!(
        read["X1"][0].patient, read["C1"][0].patient,
        "the patient hash kept, never the number"
    );
    assert!(read["X1"][0].patient.is_some());
    assert_scan_reads_the_events(&mut c, &["C1", "X1"]);
    // A batch of only repeats stores nothing and changes nothing.
    let r = app.post_events(SECOND);
    assert_eq!((r.status, r.json()["stored"].as_i64()), (200, Some(0)), "{}", r.body);
    assert_eq!(timelines::of_cases(&mut c, &["C1", "X1"]).unwrap(), read);
}

fn a_removed_batch_leaves_the_timelines_of_the_events_left(b: Backend) {
    let app = spawn_app(b);
    batch(&app, CASE_EVENTS);
    batch(&app, FIRST);
    let second = batch(&app, SECOND);
    let mut c = app.conn();
    svu_vakt::store::events::remove_batches(&mut c, &[second]).unwrap();
    assert_scan_reads_the_events(&mut c, &["C1", "X1"]);
    let only_first = spawn_app(b);
    batch(&only_first, CASE_EVENTS);
    batch(&only_first, FIRST);
    let expected = timelines::of_cases(&mut only_first.conn(), &["C1", "X1"]).unwrap();
    assert_eq!(timelines::of_cases(&mut c, &["C1", "X1"]).unwrap(), expected);
    assert_eq!(expected["C1"].len(), 5);
}

/// A batch for a case and the removal of another batch of the same case,
/// at once, round after round: whichever commits last, the case's row is
/// its events (on PostgreSQL each could otherwise pack the events as they
/// were before the other's change).
fn a_batch_and_a_removed_batch_racing_on_one_case_leave_its_row_its_events(b: Backend) {
    let app = spawn_app(b);
    let line = |id: String, day: u32| {
        format!(
            r#"{{"id":"{id}","case":"R","type":"inskrivning","at":"2026-06-{day:02}T08:00:00+02:00","unit":"AVD1"}}"#
        )
    };
    for round in 1..=8 {
        let old = batch(&app, &line(format!("old-{round}"), round));
        let new = line(format!("new-{round}"), round + 10);
        std::thread::scope(|s| {
            s.spawn(|| svu_vakt::store::events::remove_batches(&mut app.conn(), &[old]).unwrap());
            s.spawn(|| batch(&app, &new));
        });
        assert_scan_reads_the_events(&mut app.conn(), &["R"]);
    }
    let read = timelines::of_cases(&mut app.conn(), &["R"]).unwrap();
    let ids: Vec<&str> = read["R"].iter().map(|e| e.id.as_str()).collect();
    let want: Vec<String> = (1..=8).map(|r| format!("new-{r}")).collect();
    assert_eq!(ids, want);
}

/// An installation with events from before the table: its migration
/// packs every case. A case that has no row (a rebuild cut short) is read
/// from its events; `svu-vakt migrate` packs it, and so does the next
/// batch for it, from all its events.
fn the_migration_packs_the_cases_and_a_case_without_a_row_is_read_from_events(b: Backend) {
    let app = spawn_app(b);
    batch(&app, CASE_EVENTS);
    batch(&app, FIRST);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    crate::helpers::revert_through(conn, b, "20261204000019");
    svu_vakt::store::migrate(conn).unwrap();
    assert_scan_reads_the_events(conn, &["C1", "X1"]);
    diesel::delete(case_timelines::table.filter(case_timelines::case_id.eq("X1")))
        .execute(conn)
        .unwrap();
    assert_eq!(
        timelines::of_cases(conn, &["C1", "X1"]).unwrap(),
        from_events(conn, &["C1", "X1"]),
        "a case without its row is read from its events"
    );
    // `svu-vakt migrate` packs what a packing cut short left.
    let out = crate::helpers::bin()
        .args(["migrate", "--database-url", &app.db.url()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("Ärenden utan packad tidslinje packade: 1"), "{said}");
    assert_scan_reads_the_events(conn, &["C1", "X1"]);
    assert_eq!(timelines::pack_missing(conn).unwrap(), 0);
    diesel::delete(case_timelines::table.filter(case_timelines::case_id.eq("X1")))
        .execute(conn)
        .unwrap();
    batch(&app, SECOND);
    assert_scan_reads_the_events(conn, &["C1", "X1"]);
    assert_eq!(timelines::of_cases(conn, &["X1"]).unwrap()["X1"].len(), 4);
}

/// A full scan's chunk is every case from its first to its last: its rows
/// are read as one range of the key (`timelines::read_run`). What it reads
/// is what a probe per case reads; a case stored inside the range after
/// the chunk was listed is left to the next scan, and a case without its
/// packed row is read from its events.
fn a_run_of_cases_read_as_a_range_is_exactly_the_cases_listed(b: Backend) {
    let app = spawn_app(b);
    for body in [CASE_EVENTS, FIRST, SECOND] {
        batch(&app, body);
    }
    let mut c = app.conn();
    let listed = ["C1", "X1"];
    let probed = timelines::of_cases(&mut c, &listed).unwrap();
    assert_eq!(timelines::read_run(&mut c, &listed).unwrap().unpack().unwrap(), probed);
    // D1 falls between C1 and X1 in the key's order.
    batch(
        &app,
        r#"{"id":"d1","case":"D1","type":"inskrivning","at":"2026-06-01T08:00:00+02:00","unit":"AVD1"}"#,
    );
    let run = timelines::read_run(&mut c, &listed).unwrap().unpack().unwrap();
    assert_eq!(run, probed, "the case stored since the listing is not read");
    assert_eq!(
        timelines::read_run(&mut c, &["C1", "D1", "X1"])
            .unwrap()
            .unpack()
            .unwrap()["D1"]
            .len(),
        1
    );
    diesel::delete(case_timelines::table.filter(case_timelines::case_id.eq("X1")))
        .execute(&mut c)
        .unwrap();
    assert_eq!(
        timelines::read_run(&mut c, &listed).unwrap().unpack().unwrap(),
        from_events(&mut c, &listed),
        "a case without its row is read from its events"
    );
    assert!(timelines::read_run(&mut c, &[]).unwrap().unpack().unwrap().is_empty());
}
