//! How a scan begins (`store::scans::open`): what it reads of the scan log —
//! runs a killed process left running, the last good run, the high-water
//! mark, owed day counts — and the run it records, in one statement on
//! PostgreSQL and one transaction on SQLite.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use svu_vakt::store::scans::{self, ScanStatus, Tally};
use svu_vakt::store::schema::scan_runs;
use svu_vakt::store::DbConn;

use crate::helpers::{spawn_app, Backend};

crate::on_both!(a_scan_begins_from_the_log_as_the_runs_before_it_left_it);

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

fn status(conn: &mut DbConn, id: i64) -> (String, Option<String>) {
    scan_runs::table
        .find(id)
        .select((scan_runs::status, scan_runs::error_text))
        .first(conn)
        .unwrap()
}

fn finish(conn: &mut DbConn, id: i64) {
    let tally = Tally {
        cases_evaluated: 0,
        findings: 0,
        filed: 0,
        updated: 0,
        withdrawn: 0,
        unmailed: 0,
    };
    scans::finish(conn, id, &tally, ScanStatus::Klar, None).unwrap();
}

fn a_scan_begins_from_the_log_as_the_runs_before_it_left_it(b: Backend) {
    let app = spawn_app(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;

    // An empty log: a full scan, nothing before it.
    let first = scans::open(conn, at("2026-05-10 12:00"), false).unwrap();
    assert!(first.full && !first.backfill && !first.days_owed);
    assert!(first.previous.is_none() && first.high_water.is_none());
    assert_eq!(status(conn, first.id).0, "pagar");

    // Its process was killed: the next marks it interrupted, and its
    // instant still counts for the high-water mark (a scan as of before it
    // is a backfill); it was no good run, so the next is full.
    let second = scans::open(conn, at("2026-05-09 12:00"), false).unwrap();
    let (was, why) = status(conn, first.id);
    assert_eq!(was, "avbruten");
    assert!(why.unwrap().contains("avbröts"), "says why");
    assert_eq!(status(conn, second.id).0, "pagar", "only the runs before it are marked");
    assert_eq!(second.high_water.map(|h| h.naive_utc()), Some(at("2026-05-10 12:00")));
    assert!(second.backfill && second.full && second.previous.is_none());
    finish(conn, second.id);

    // A backfill that finished is no run to go on from.
    let third = scans::open(conn, at("2026-05-11 12:00"), false).unwrap();
    assert!(third.full && !third.backfill && third.previous.is_none());
    finish(conn, third.id);

    // A good run before it: incremental, from that run, unless asked for
    // a full one; a run whose day counts are owed is seen.
    diesel::update(scan_runs::table.find(third.id))
        .set(scan_runs::days_owed.eq(true))
        .execute(conn)
        .unwrap();
    let fourth = scans::open(conn, at("2026-05-11 12:15"), false).unwrap();
    let previous = fourth.previous.clone().unwrap();
    assert_eq!(previous.as_of, at("2026-05-11 12:00"));
    assert!(!fourth.full && !fourth.backfill && fourth.days_owed);
    assert_eq!(fourth.high_water.map(|h| h.naive_utc()), Some(at("2026-05-11 12:00")));
    finish(conn, fourth.id);
    diesel::update(scan_runs::table.find(third.id))
        .set(scan_runs::days_owed.eq(false))
        .execute(conn)
        .unwrap();
    let fifth = scans::open(conn, at("2026-05-11 12:30"), true).unwrap();
    assert!(fifth.full && !fifth.days_owed, "asked for in full");
    assert_eq!(fifth.previous.unwrap().as_of, at("2026-05-11 12:15"));
    let runs: i64 = scan_runs::table.count().get_result(conn).unwrap();
    assert_eq!(runs, 5, "one run recorded each time");
}

/// A scan that lost its lock (its lock session died) may be committing a
/// chunk that marks its run owing as the next scan begins: the next waits
/// for that commit as it marks the run interrupted, and must see the mark,
/// or the day counts stay behind the cases' facts until some later scan
/// (its snapshot, taken before the wait, has no mark).
#[test]
fn postgres_a_mark_committed_while_the_next_scan_begins_is_seen() {
    use diesel::connection::SimpleConnection;
    if crate::helpers::pg_admin_url().is_none() {
        eprintln!("skipped: SVU_VAKT_TEST_PG_URL is not set");
        return;
    }
    let app = spawn_app(Backend::Postgres);
    let url = app.db.url();
    let mut next = DbConn::Pg(diesel::PgConnection::establish(&url).unwrap());
    let left = scans::open(&mut next, at("2026-05-10 12:00"), false).unwrap();

    let mut lost = DbConn::Pg(diesel::PgConnection::establish(&url).unwrap());
    lost.batch_execute("BEGIN").unwrap();
    diesel::update(scan_runs::table.find(left.id))
        .set(scan_runs::days_owed.eq(true))
        .execute(&mut lost)
        .unwrap();
    let begins = std::thread::spawn(move || scans::open(&mut next, at("2026-05-10 12:15"), false).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!begins.is_finished(), "the next scan waits for the chunk's commit");
    lost.batch_execute("COMMIT").unwrap();
    let opened = begins.join().unwrap();
    assert!(opened.days_owed, "the mark committed meanwhile is seen");
    let (was, _) = status(&mut lost, left.id);
    assert_eq!(was, "avbruten");
}
