//! The day counts a scan owes until it ends (`store::day_counts`): a scan
//! that stops half-way adds what its committed chunks moved, and one that
//! could not (the database refused, as after a crash) leaves its run marked,
//! so the next scan counts them again from the cases' facts.

use diesel::prelude::*;
use svu_vakt::store::day_counts;
use svu_vakt::store::schema::scan_runs;
use svu_vakt::store::DbConn;

use crate::core::{im_missing, UNITS};
use crate::helpers::{spawn_app_with, Backend, TestApp};

crate::on_both!(
    a_scan_that_stops_half_way_adds_what_its_chunks_moved,
    counts_a_scan_could_not_add_are_counted_again_by_the_next,
    a_scan_whose_counts_were_counted_again_adds_nothing_after,
    a_scan_a_case_a_chunk_files_what_one_chunk_does,
    a_full_scan_leaves_postgres_its_deviations_counted,
    a_scan_that_moves_no_count_owes_none
);

const AS_OF: &str = "2026-05-20T00:00:00+02:00";

/// Five cases without an IM, judged one case a chunk.
fn county(b: Backend) -> TestApp {
    county_in_chunks(b, 1)
}

/// Five cases without an IM, judged `chunk_cases` cases a chunk.
fn county_in_chunks(b: Backend, chunk_cases: i64) -> TestApp {
    let app = spawn_app_with(b, |cfg| {
        cfg.scan.chunk_cases = chunk_cases;
        // Room for the scan's reading and second writing connection.
        cfg.pool_size = 8;
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    let events: Vec<String> = (1..=5).map(|i| im_missing(&format!("C{i}"), i)).collect();
    assert_eq!(app.post_events(&(events.join("\n") + "\n")).status, 200);
    app
}

/// Makes every insert into `table` that `when` holds for fail.
fn refuse(conn: &mut DbConn, b: Backend, table: &str, when: &str) {
    let name = format!("refuse_{table}");
    let sql = match b {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN {when} BEGIN SELECT RAISE(ABORT, 'provocerat fel'); END"
        )],
        Backend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'provocerat fel'; END $$ LANGUAGE plpgsql".to_string(),
            format!("CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION refuse()"),
        ],
    };
    for s in sql {
        diesel::sql_query(s).execute(conn).unwrap();
    }
}

fn allow(conn: &mut DbConn, b: Backend, table: &str) {
    let sql = match b {
        Backend::Sqlite => format!("DROP TRIGGER refuse_{table}"),
        Backend::Postgres => format!("DROP TRIGGER refuse_{table} ON {table}"),
    };
    diesel::sql_query(sql).execute(conn).unwrap();
}

fn owing(conn: &mut DbConn) -> Vec<i64> {
    scan_runs::table
        .filter(scan_runs::days_owed.eq(true))
        .select(scan_runs::id)
        .load(conn)
        .unwrap()
}

fn judged(counts: &svu_vakt::store::followup::Delta) -> i64 {
    counts.values().flatten().sum()
}

/// C3's facts are refused: C1 and C2 are committed, the scan fails, and
/// the counts hold exactly the two cases' obligations.
fn a_scan_that_stops_half_way_adds_what_its_chunks_moved(b: Backend) {
    let app = county(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    refuse(conn, b, "case_facts", "NEW.case_id = 'C3'");
    let r = app.scan(AS_OF);
    assert_ne!(r.status, 200, "the scan went through C3: {}", r.body);
    let stored = day_counts::stored(conn).unwrap();
    assert_eq!(
        stored,
        day_counts::from_facts(conn).unwrap(),
        "the counts of the committed chunks"
    );
    assert!(judged(&stored) >= 2, "C1 and C2 counted: {stored:?}");
    assert_eq!(
        owing(conn),
        Vec::<i64>::new(),
        "nothing owed after the counts were added"
    );

    allow(conn, b, "case_facts");
    assert_eq!(app.scan(AS_OF).status, 200);
    let all = day_counts::stored(conn).unwrap();
    assert_eq!(all, day_counts::from_facts(conn).unwrap());
    assert!(judged(&all) > judged(&stored), "the other cases counted too: {all:?}");
}

/// C3's facts and the counts are refused: the scan commits C1 and C2 and
/// cannot add their counts, as if it had died. Its run stays marked; the
/// next scan counts from the facts and ends where one scan without faults
/// does.
fn counts_a_scan_could_not_add_are_counted_again_by_the_next(b: Backend) {
    let app = county(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    refuse(conn, b, "case_facts", "NEW.case_id = 'C3'");
    refuse(conn, b, "obligation_days", "TRUE");
    assert_ne!(app.scan(AS_OF).status, 200);
    assert_eq!(judged(&day_counts::stored(conn).unwrap()), 0, "nothing added");
    assert!(
        judged(&day_counts::from_facts(conn).unwrap()) >= 2,
        "C1 and C2 committed"
    );
    let marked = owing(conn);
    assert_eq!(marked.len(), 1, "the run that could not add them is marked");

    allow(conn, b, "case_facts");
    allow(conn, b, "obligation_days");
    assert_eq!(app.scan(AS_OF).status, 200);
    assert_eq!(owing(conn), Vec::<i64>::new());
    let counted = day_counts::stored(conn).unwrap();
    assert_eq!(counted, day_counts::from_facts(conn).unwrap());

    let clean = county(b);
    assert_eq!(clean.scan(AS_OF).status, 200);
    assert_eq!(
        counted,
        day_counts::stored(&mut clean.conn()).unwrap(),
        "as one scan without faults"
    );
}

/// What a scan would owe had its chunks moved the counts by `delta`.
fn owed(delta: &svu_vakt::store::followup::Delta) -> day_counts::Owed {
    let mut owed = day_counts::Owed::default();
    owed.merge(delta.clone());
    owed
}

/// A scan that lost its lock while another counted the days again from the
/// facts (its own chunks included) adds nothing when it settles: its mark
/// is gone.
fn a_scan_whose_counts_were_counted_again_adds_nothing_after(b: Backend) {
    let app = county(b);
    assert_eq!(app.scan(AS_OF).status, 200);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let run: i64 = scan_runs::table.select(scan_runs::id).first(conn).unwrap();
    let counted = day_counts::stored(conn).unwrap();
    diesel::update(scan_runs::table.find(run))
        .set(scan_runs::days_owed.eq(true))
        .execute(conn)
        .unwrap();
    assert_eq!(day_counts::catch_up(conn).unwrap(), vec![run]);
    assert_eq!(day_counts::stored(conn).unwrap(), counted, "counted again, the same");
    assert!(
        !day_counts::settle(conn, run, owed(&counted)).unwrap(),
        "added after the count"
    );
    assert_eq!(day_counts::stored(conn).unwrap(), counted, "nothing added twice");
    assert_eq!(day_counts::catch_up(conn).unwrap(), Vec::<i64>::new());
}

/// What a scan left that a person or the follow-up reads: each
/// deviation's case, rule, status, unit and due; the mail queued; the day
/// counts; the case facts.
fn filed(app: &TestApp) -> (Vec<String>, usize, svu_vakt::store::followup::Delta, i64) {
    let mut deviations: Vec<String> = app
        .deviations()
        .iter()
        .map(|d| format!("{:?} {} {} {:?} {}", d.case_id, d.rule, d.status, d.unit, d.due))
        .collect();
    deviations.sort();
    let mut c = app.conn();
    let facts = crate::deviation_links::count(&mut c, "SELECT count(*) AS n FROM case_facts");
    (
        deviations,
        app.outbox().len(),
        day_counts::stored(&mut c).unwrap(),
        facts,
    )
}

/// A full scan a case a chunk (on PostgreSQL every other chunk filed on a
/// second connection beside the scan's, `audit::chunks`) leaves what one
/// chunk of every case does.
fn a_scan_a_case_a_chunk_files_what_one_chunk_does(b: Backend) {
    let chunked = county(b);
    assert_eq!(chunked.scan(AS_OF).status, 200);
    let whole = county_in_chunks(b, 5000);
    assert_eq!(whole.scan(AS_OF).status, 200);
    let (a, b_) = (filed(&chunked), filed(&whole));
    let of_cases = a.0.iter().filter(|d| d.starts_with("Some")).count();
    assert_eq!(of_cases, 5, "a deviation for each case: {:?}", a.0);
    assert_eq!(a, b_);
}

/// A full scan files the county's deviations: on PostgreSQL it ends with
/// `ANALYZE deviations (case_id)`, so the next scans' look-up of a chunk's
/// deviations is planned on the index, not as a walk of the table (with
/// autovacuum off, 279 ms of an incremental scan's 0.72 s at 1 M cases).
/// `cases` is left to autovacuum: the scan's notes are HOT updates (a
/// vacuum was 4.7 s of a first full scan of 1 M cases). SQLite has no such
/// statistics to renew.
fn a_full_scan_leaves_postgres_its_deviations_counted(b: Backend) {
    let app = county(b);
    assert_eq!(app.scan(AS_OF).status, 200);
    if b == Backend::Sqlite {
        return;
    }
    let mut c = app.conn();
    let analyses = "SELECT analyze_count AS n FROM pg_stat_user_tables WHERE relname = 'deviations'";
    let after_first = crate::deviation_links::count(&mut c, analyses);
    assert!(after_first >= 1, "the deviations analysed by the full scan");
    let vacuumed = crate::deviation_links::count(
        &mut c,
        "SELECT vacuum_count AS n FROM pg_stat_user_tables WHERE relname = 'cases'",
    );
    assert_eq!(vacuumed, 0, "cases left to autovacuum");
    // A full re-scan that wrote no case's scan columns leaves them be.
    crate::core::post_scan(&app, AS_OF, true);
    assert_eq!(
        crate::deviation_links::count(&mut c, analyses),
        after_first,
        "not analysed again"
    );
}

/// A scan that lost its lock may still be adding its counts (`settle`:
/// its run's mark cleared, its keys upserted, not yet committed) while the
/// next scan counts them again from the facts (`catch_up`). A key the
/// settle inserted was invisible to the recount's emptying of the table
/// and got the recount added on top when the settle committed. The
/// recount now waits for the settle, and a run no longer marked is not
/// counted again: the key holds what one of them counted.
#[test]
fn postgres_counts_added_while_they_are_counted_again_are_counted_once() {
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::{BigInt, Text};
    use svu_vakt::store::schema::obligation_days as d;
    let Some(db) = crate::helpers::postgres("postgres_counts_added_while_they_are_counted_again_are_counted_once")
    else {
        return;
    };
    let url = db.url();
    crate::helpers::demo_into(&url, "100");
    crate::helpers::run_on(&url, &["scan", "--full", "--as-of", "2026-11-20T00:00:00+01:00"]);
    let mut c = PgConnection::establish(&url).unwrap();
    let (day, rule, unit): (String, String, String) = d::table
        .filter(d::met.gt(0))
        .select((d::day, d::rule, d::unit))
        .order((d::day, d::rule, d::unit))
        .first(&mut c)
        .unwrap();
    let key = d::day.eq(&day).and(d::rule.eq(&rule)).and(d::unit.eq(&unit));
    diesel::delete(d::table.filter(key)).execute(&mut c).unwrap();
    let run: i64 = scan_runs::table
        .select(diesel::dsl::max(scan_runs::id))
        .first::<Option<i64>>(&mut c)
        .unwrap()
        .unwrap();
    diesel::update(scan_runs::table.find(run))
        .set(scan_runs::days_owed.eq(true))
        .execute(&mut c)
        .unwrap();
    let mut settling = PgConnection::establish(&url).unwrap();
    settling.batch_execute("BEGIN").unwrap();
    diesel::sql_query("UPDATE scan_runs SET days_owed = false WHERE id = $1 AND days_owed")
        .bind::<BigInt, _>(run)
        .execute(&mut settling)
        .unwrap();
    diesel::sql_query("INSERT INTO obligation_days (day, rule, unit, met, late, missing) VALUES ($1, $2, $3, 1, 0, 0)")
        .bind::<Text, _>(&day)
        .bind::<Text, _>(&rule)
        .bind::<Text, _>(&unit)
        .execute(&mut settling)
        .unwrap();
    let recount = std::thread::spawn(move || {
        let mut conn = DbConn::Pg(PgConnection::establish(&url).unwrap());
        day_counts::catch_up(&mut conn).unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    settling.batch_execute("COMMIT").unwrap();
    let recounted = recount.join().unwrap();
    let counted: (i64, i64, i64) = d::table
        .filter(key)
        .select((d::met, d::late, d::missing))
        .first(&mut c)
        .unwrap();
    assert_eq!(
        counted,
        (1, 0, 0),
        "the settle's count alone, not the recount's on top of it (runs counted again: {recounted:?})"
    );
}

/// A full re-scan that writes every case's rows again, each as it was,
/// moves no count: it neither marks its run nor adds anything when it
/// ends. Killed after two chunks, it leaves nothing for the next scan to
/// count again (each chunk marked the run before, and the next scan
/// recounted the county from the facts). A run whose chunks moved counts
/// it could not add stays marked:
/// `counts_a_scan_could_not_add_are_counted_again_by_the_next`.
fn a_scan_that_moves_no_count_owes_none(b: Backend) {
    use svu_vakt::store::schema::cases;
    let app = county(b);
    assert_eq!(app.scan(AS_OF).status, 200);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let counted = day_counts::stored(conn).unwrap();
    assert!(judged(&counted) >= 5, "the county counted: {counted:?}");
    // Every case's rows written again (as after an upgrade that hashes
    // them otherwise).
    diesel::update(cases::table)
        .set(cases::summary_hash.eq(None::<String>))
        .execute(conn)
        .unwrap();
    let out = crate::helpers::bin()
        .args(["scan", "--full", "--as-of", AS_OF, "--database-url", &app.db.url()])
        .env("SVU_VAKT_FAULT_ABORT_AFTER_CHUNKS", "2")
        .env("SVU_VAKT_SCAN_CHUNK_CASES", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the fault injection kills the scan");
    let killed: (String, bool) = scan_runs::table
        .order(scan_runs::id.desc())
        .select((scan_runs::status, scan_runs::days_owed))
        .first(conn)
        .unwrap();
    assert_eq!(
        killed,
        ("pagar".to_string(), false),
        "killed while running, owing nothing"
    );
    let written: i64 = cases::table
        .filter(cases::summary_hash.is_not_null())
        .count()
        .get_result(conn)
        .unwrap();
    // PostgreSQL files every other chunk on a second connection: one
    // more may have committed before the kill.
    assert!((2..5).contains(&written), "{written} chunks of one case committed");
    assert_eq!(day_counts::stored(conn).unwrap(), counted);
}
