//! What a scan notes of each case (`cases.next_check`, `summary_hash`,
//! `findings_hash`) and how the next scan finds the cases it must judge
//! again (migration `scan_notes_in_place`): a case without a summary is
//! found as changed, and on PostgreSQL a first scan notes every case in
//! place on its page.

use diesel::prelude::*;
use svu_vakt::store::schema::{case_facts, cases};
use svu_vakt::store::DbConn;

use crate::helpers::{postgres, settled_updates, spawn_app, spawn_app_with, Backend, CASE_EVENTS};

crate::on_both!(
    a_case_an_earlier_version_left_unsummarised_is_judged_by_the_next_scan,
    a_feed_on_the_cases_full_scans_note_never_deadlocks_with_them
);

const MIGRATION: &str = "20261206000026";

fn facts_of(conn: &mut DbConn, case: &str) -> i64 {
    case_facts::table
        .filter(case_facts::case_id.eq(case))
        .count()
        .get_result(conn)
        .unwrap()
}

/// An earlier version found a case without a summary by an index of its
/// own (a unit register reshaped after the last scan left every case so).
/// The migration marks such a case changed: the next incremental scan
/// judges it and the follow-up counts it again.
fn a_case_an_earlier_version_left_unsummarised_is_judged_by_the_next_scan(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_events(CASE_EVENTS).status, 200);
    assert_eq!(app.scan("2026-06-01T00:00:00+02:00").status, 200);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    assert_eq!(facts_of(conn, "C1"), 1, "the first scan summarised C1");
    crate::helpers::revert_through(conn, b, MIGRATION);
    // What the earlier version left: no summary, a change from before the
    // last scan, and the follow-up without the case.
    let long_ago = chrono::NaiveDate::from_ymd_opt(2026, 5, 4)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap();
    diesel::update(cases::table.find("C1"))
        .set((cases::summary_hash.eq(None::<String>), cases::changed_at.eq(long_ago)))
        .execute(conn)
        .unwrap();
    diesel::delete(case_facts::table.filter(case_facts::case_id.eq("C1")))
        .execute(conn)
        .unwrap();
    svu_vakt::store::migrate(conn).unwrap();
    drop(c);
    // Nothing new arrived and nothing came due: the case is judged
    // because the migration marked it changed.
    let r = app.scan("2026-06-01T00:00:01+02:00");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["scan"]["full"], false, "an incremental scan: {}", r.body);
    let mut c = app.conn();
    assert_eq!(facts_of(&mut c, "C1"), 1, "the next scan summarised C1 again");
    let summary: Option<String> = cases::table
        .find("C1")
        .select(cases::summary_hash)
        .first(&mut *c)
        .unwrap();
    assert!(summary.is_some(), "C1 has its summary again");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A first full scan notes three columns of every case. On PostgreSQL no
/// indexed column changes and each page has room, so each case's new
/// version stays on its page without new index entries (a HOT update:
/// docs/PERFORMANCE.md, fifteenth round) — but for a case given a next
/// check, which `cases_next_check` must then index. An index over another
/// column the scan notes, or a table without room, fails this.
#[test]
fn postgres_a_first_full_scan_notes_every_case_in_place() {
    let Some(db) = postgres("postgres_a_first_full_scan_notes_every_case_in_place") else {
        return;
    };
    crate::helpers::demo_into(&db.url(), "600");
    let mut c = PgConnection::establish(&db.url()).unwrap();
    // What the demo's connections counted (ingest inserts cases).
    let before = settled_updates(&mut c, "cases", 0);
    // A process of its own: its connections' statistics reach the server
    // when it ends.
    let out = crate::helpers::bin()
        .args([
            "scan",
            "--full",
            "--as-of",
            "2026-11-01T00:00:00+01:00",
            "--database-url",
            &db.url(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = settled_updates(&mut c, "cases", before.updated + 600);
    let (updated, in_place) = (after.updated - before.updated, after.in_place - before.in_place);
    assert!(updated >= 600, "the scan's updates of the 600 cases counted: {updated}");
    // A case given a next check gets an entry in its index: that update
    // cannot be in place. Every other one is, but for a twentieth.
    let with_next_check: i64 = diesel::sql_query("SELECT count(*) AS n FROM cases WHERE next_check IS NOT NULL")
        .get_result::<Count>(&mut c)
        .unwrap()
        .n;
    assert!(
        (updated - in_place - with_next_check) * 20 <= updated,
        "{in_place} of the scan's {updated} updates of cases in place, {with_next_check} cases with a next check"
    );
}

/// A first full scan on PostgreSQL files its deviations into a table that
/// had none and no statistics: the chunks' look-up of their deviations is
/// planned from statistics, and without them walked every deviation filed
/// so far (`store::bulk::FilingStatistics`). They are taken as the scan
/// files, not only when it ends: a scan killed after its second chunk has
/// left them.
#[test]
fn postgres_a_first_scan_analyses_the_deviations_as_it_files_them() {
    let Some(db) = postgres("postgres_a_first_scan_analyses_the_deviations_as_it_files_them") else {
        return;
    };
    crate::helpers::demo_into(&db.url(), "700");
    let out = crate::helpers::bin()
        .args([
            "scan",
            "--as-of",
            "2026-11-20T00:00:00+01:00",
            "--database-url",
            &db.url(),
        ])
        .env("SVU_VAKT_FAULT_ABORT_AFTER_CHUNKS", "2")
        .env("SVU_VAKT_SCAN_CHUNK_CASES", "250")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the fault injection kills the scan");
    let mut c = PgConnection::establish(&db.url()).unwrap();
    let filed: Count = diesel::sql_query("SELECT count(*) AS n FROM deviations")
        .get_result(&mut c)
        .unwrap();
    assert!(filed.n > 0, "the first chunks were committed");
    let known: Count =
        diesel::sql_query("SELECT count(*) AS n FROM pg_stats WHERE tablename = 'deviations' AND attname = 'case_id'")
            .get_result(&mut c)
            .unwrap();
    assert_eq!(
        known.n, 1,
        "statistics on deviations.case_id after two chunks of a first scan"
    );
}

/// The notes of a chunk's cases take their rows in id order by the UPDATE
/// itself (`store::cases::NOTE_JUDGED` under `IN_ID_ORDER`): the plan is
/// a nested loop over the notes sorted by id, each case found by its key,
/// whatever order the notes come in and however few the cases (at 600,
/// left to itself, the planner may hash them).
#[test]
fn postgres_the_notes_of_a_chunk_take_their_cases_in_id_order() {
    use diesel::connection::SimpleConnection;
    let Some(db) = postgres("postgres_the_notes_of_a_chunk_take_their_cases_in_id_order") else {
        return;
    };
    crate::helpers::demo_into(&db.url(), "600");
    let mut c = PgConnection::establish(&db.url()).unwrap();
    let mut ids: Vec<String> = cases::table.select(cases::id).load(&mut c).unwrap();
    ids.reverse();
    let list = |v: &[String]| format!("'{{{}}}'", v.join(","));
    let n = ids.len();
    let (falses, nulls) = (vec!["false".to_string(); n], vec!["NULL".to_string(); n]);
    c.batch_execute("BEGIN").unwrap();
    c.batch_execute(svu_vakt::store::cases::IN_ID_ORDER).unwrap();
    c.batch_execute(&format!(
        "PREPARE notes(text[], bool[], timestamp[], text[], bool[], text[]) AS {}",
        svu_vakt::store::cases::NOTE_JUDGED
    ))
    .unwrap();
    let plan: Vec<crate::helpers::PlanLine> = diesel::sql_query(format!(
        "EXPLAIN (COSTS OFF) EXECUTE notes({ids}, {b}, {t}, {t}, {b}, {t})",
        ids = list(&ids),
        b = list(&falses),
        t = list(&nulls)
    ))
    .load(&mut c)
    .unwrap();
    c.batch_execute("ROLLBACK").unwrap();
    let lines: Vec<&str> = plan.iter().map(|l| l.line.trim()).collect();
    let at = |what: &str| lines.iter().position(|l| l.starts_with(what));
    let (Some(nested), Some(sorted), Some(by_key)) = (
        at("->  Nested Loop"),
        at("Sort Key: u.id"),
        at("->  Index Scan using cases_pkey on cases"),
    ) else {
        panic!("not a nested loop over the notes sorted by id: {lines:#?}");
    };
    assert!(
        nested < sorted && sorted < by_key,
        "the sorted notes are the outer side: {lines:#?}"
    );
}

/// A feed that adds events to cases the full scans are judging, in many
/// small chunks, batch after batch of forty cases each: ingest locks its
/// cases in id order and so do the scan's notes, so neither ever waits on
/// the other in a circle (PostgreSQL would abort one with a deadlock).
fn a_feed_on_the_cases_full_scans_note_never_deadlocks_with_them(b: Backend) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = spawn_app_with(b, |cfg| cfg.scan.chunk_cases = 200);
    crate::helpers::demo_into(&app.db.url(), "1500");
    let ids: Vec<String> = cases::table
        .select(cases::id)
        .order(cases::id)
        .load(&mut *app.conn())
        .unwrap();
    let stop = AtomicBool::new(false);
    let batches = std::thread::scope(|s| {
        let feeder = s.spawn(|| {
            let mut batch = 0;
            while !stop.load(Ordering::SeqCst) {
                // Forty cases across the county, the last first.
                let lines: String = (0..40)
                    .rev()
                    .map(|k| {
                        let case = &ids[(k * 37 + batch * 11) % ids.len()];
                        format!(
                            "{{\"id\":\"sip-{batch}-{k}\",\"case\":\"{case}\",\"type\":\"behov_av_sip\",\"at\":\"2026-06-01T08:00:00+02:00\",\"unit\":\"VC1\",\"value\":true}}\n"
                        )
                    })
                    .collect();
                let r = app.post_events(&lines);
                assert_eq!(r.status, 200, "the feed is never refused: {}", r.body);
                batch += 1;
            }
            batch
        });
        for _ in 0..3 {
            let r = crate::core::post_scan(&app, "2026-11-20T00:00:00+01:00", true);
            assert!(r["scan"]["cases_evaluated"].as_u64().unwrap() >= 1500, "{r}");
        }
        stop.store(true, Ordering::SeqCst);
        feeder.join().unwrap()
    });
    assert!(batches >= 3, "the feed ran during the scans ({batches} batches)");
}
