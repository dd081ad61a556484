//! What an incremental scan reads and writes besides its cases, so that on
//! PostgreSQL its cost follows what is new and not the county: a chunk's
//! deviations read by the list of its cases through their key
//! (`store::deviations::BY_CASE_LIST`), the day counts added in place
//! on their pages (migration `day_counts_in_place`), and the candidates of
//! a listing that fits one chunk taken as listed, not read again by id.

use std::collections::BTreeSet;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use svu_vakt::store::schema::deviations;
use svu_vakt::store::DbConn;

use crate::helpers::{postgres, settled_updates, spawn_app, Backend};

crate::on_both!(
    the_deviations_read_by_a_list_of_cases_are_theirs_alone,
    an_incremental_walk_lists_each_changed_or_due_case_once_in_one_chunk_or_many
);

/// The deviations `by_cases` gives for a list of cases — some with
/// deviations, some without, one twice, one unknown — are exactly those of
/// the listed cases, each once, in id order.
fn the_deviations_read_by_a_list_of_cases_are_theirs_alone(b: Backend) {
    let app = spawn_app(b);
    crate::helpers::demo_into(&app.db.url(), "300");
    assert_eq!(app.scan("2026-11-20T00:00:00+01:00").status, 200);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let with: Vec<String> = deviations::table
        .filter(deviations::case_id.is_not_null())
        .select(deviations::case_id.assume_not_null())
        .distinct()
        .order(deviations::case_id)
        .limit(40)
        .load(conn)
        .unwrap();
    assert!(with.len() >= 20, "the demo's cases have deviations: {}", with.len());
    let without: Vec<String> = diesel::sql_query(
        "SELECT id AS v FROM cases WHERE id NOT IN (SELECT case_id FROM deviations WHERE case_id IS NOT NULL) \
         ORDER BY id LIMIT 5",
    )
    .load::<TextRow>(conn)
    .unwrap()
    .into_iter()
    .map(|r| r.v)
    .collect();
    assert!(!without.is_empty(), "some cases have no deviation");
    let mut listed: Vec<&str> = with.iter().step_by(2).map(String::as_str).collect();
    listed.extend(without.iter().map(String::as_str));
    listed.push(listed[0]);
    listed.push("SVU-finns-inte");
    listed.reverse();
    let expected: Vec<i64> = deviations::table
        .filter(deviations::case_id.eq_any(&listed))
        .select(deviations::id)
        .order(deviations::id)
        .load(conn)
        .unwrap();
    // In a write transaction, as a scan's chunk reads them (on PostgreSQL
    // under the chunk's planner settings, which hold only inside one).
    let read =
        svu_vakt::store::backend::write_tx(conn, |c| svu_vakt::store::deviations::by_cases(c, &listed, None)).unwrap();
    let mut ids: Vec<i64> = read.iter().map(|d| d.id).collect();
    if b == Backend::Postgres {
        assert!(ids.is_sorted(), "locked and read in id order: {ids:?}");
    }
    ids.sort_unstable();
    assert_eq!(ids, expected, "each deviation of the listed cases once, no other");
    let cases: BTreeSet<&str> = read.iter().filter_map(|d| d.case_id.as_deref()).collect();
    let named: BTreeSet<&str> = with.iter().step_by(2).map(String::as_str).collect();
    assert_eq!(cases, named, "every listed case with deviations, and only those");
}

/// The plan of a chunk's deviations read by the list of its cases: each
/// listed case looked up in `(case_id, fingerprint)`, never a sequential
/// scan of every deviation nor a walk of the primary key (which the
/// planner chose for `case_id = ANY(list)`: 13.9 ms for 926 cases at
/// 100 000, growing with the county), sorted by id for the locks.
#[test]
fn postgres_a_chunks_deviations_are_read_through_their_cases_key() {
    let Some(db) = postgres("postgres_a_chunks_deviations_are_read_through_their_cases_key") else {
        return;
    };
    crate::helpers::demo_into(&db.url(), "400");
    crate::helpers::run_on(&db.url(), &["scan", "--full", "--as-of", "2026-11-20T00:00:00+01:00"]);
    let mut c = PgConnection::establish(&db.url()).unwrap();
    c.batch_execute("ANALYZE deviations").unwrap();
    let ids: Vec<String> = deviations::table
        .filter(deviations::case_id.is_not_null())
        .select(deviations::case_id.assume_not_null())
        .distinct()
        .limit(200)
        .load(&mut c)
        .unwrap();
    c.batch_execute("BEGIN").unwrap();
    c.batch_execute(svu_vakt::store::cases::IN_ID_ORDER).unwrap();
    c.batch_execute(&format!(
        "PREPARE listed(text[]) AS {}",
        svu_vakt::store::deviations::BY_CASE_LIST
    ))
    .unwrap();
    let plan: Vec<crate::helpers::PlanLine> =
        diesel::sql_query(format!("EXPLAIN (COSTS OFF) EXECUTE listed('{{{}}}')", ids.join(",")))
            .load(&mut c)
            .unwrap();
    c.batch_execute("ROLLBACK").unwrap();
    let lines: Vec<&str> = plan.iter().map(|l| l.line.trim()).collect();
    let at = |what: &str| lines.iter().position(|l| l.contains(what));
    assert!(at("Seq Scan on deviations").is_none(), "no sequential scan: {lines:#?}");
    assert!(
        at("deviations_pkey").is_none(),
        "no walk of the primary key: {lines:#?}"
    );
    let (Some(locks), Some(sorted), Some(by_case)) = (
        at("LockRows"),
        at("Sort Key: d.id"),
        at("Index Scan using deviations_case_fingerprint on deviations d"),
    ) else {
        panic!("not the listed cases looked up by their key, sorted by id: {lines:#?}");
    };
    assert!(locks < sorted && sorted < by_case, "locked in id order: {lines:#?}");
}

/// The day counts an incremental scan adds update rows already there (new
/// cases' obligations fall on the days, rules and units the county has):
/// PostgreSQL writes all but a tenth of them in place on their pages, with
/// no new entry in the primary key (`obligation_days` at fillfactor 50).
#[test]
fn postgres_an_incremental_scan_adds_its_day_counts_in_place() {
    let Some(db) = postgres("postgres_an_incremental_scan_adds_its_day_counts_in_place") else {
        return;
    };
    let url = db.url();
    let run = |args: &[&str]| crate::helpers::run_on(&url, args);
    crate::helpers::demo_into(&url, "600");
    run(&["scan", "--full", "--as-of", "2026-11-20T00:00:00+01:00"]);
    let mut c = PgConnection::establish(&url).unwrap();
    let before = settled_updates(&mut c, "obligation_days", 0);
    // Cases of another seed over the same year and units; the units'
    // staffing lines are the county's already.
    let dir = tempfile::tempdir().unwrap();
    let made = crate::helpers::bin()
        .args(["demo", "--seed", "11", "--cases", "200", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let lines = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let cases: String = lines
        .lines()
        .filter(|l| !l.contains("\"id\":\"BEM-"))
        .map(|l| format!("{l}\n"))
        .collect();
    let feed = dir.path().join("feed.jsonl");
    std::fs::write(&feed, cases).unwrap();
    run(&["import", "--events", feed.to_str().unwrap()]);
    run(&["scan", "--as-of", "2026-11-20T01:00:00+01:00"]);
    let after = settled_updates(&mut c, "obligation_days", before.updated + 100);
    let (updated, in_place) = (after.updated - before.updated, after.in_place - before.in_place);
    assert!(
        updated >= 100,
        "the new cases' counts were added to rows already there: {updated}"
    );
    assert!(
        in_place * 10 >= updated * 9,
        "{in_place} of the {updated} updates of the day counts in place"
    );
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

/// The candidates of an incremental walk are exactly the cases changed
/// since the last scan or with a due that has come — a case both changed
/// and due once — in id order, whether they fit one chunk (taken as the
/// listing read them) or are read chunk by chunk by id; and their rows
/// are the cases' as stored.
fn an_incremental_walk_lists_each_changed_or_due_case_once_in_one_chunk_or_many(b: Backend) {
    use chrono::NaiveDateTime;
    use svu_vakt::store::candidates::CandidateWalk;
    use svu_vakt::store::schema::cases;
    let app = spawn_app(b);
    crate::helpers::demo_into(&app.db.url(), "300");
    assert_eq!(app.scan("2026-11-20T00:00:00+01:00").status, 200);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let dues: Vec<(String, NaiveDateTime)> = cases::table
        .filter(cases::next_check.is_not_null())
        .select((cases::id, cases::next_check.assume_not_null()))
        .order((cases::next_check, cases::id))
        .limit(6)
        .load(conn)
        .unwrap();
    assert_eq!(dues.len(), 6, "the demo has cases with a check to come");
    // The first five are due; the first of them also changes.
    let as_of = dues[4].1;
    let since = chrono::Utc::now().naive_utc();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let others: Vec<String> = cases::table
        .filter(cases::id.ne_all(dues.iter().map(|d| d.0.clone()).collect::<Vec<_>>()))
        .select(cases::id)
        .order(cases::id)
        .limit(2)
        .load(conn)
        .unwrap();
    let changed = [&dues[0].0, &others[0], &others[1]];
    let lines: String = changed
        .iter()
        .enumerate()
        .map(|(k, case)| {
            format!(
                "{{\"id\":\"walk-{k}\",\"case\":\"{case}\",\"type\":\"behov_av_sip\",\"at\":\"2026-06-01T08:00:00+02:00\",\"unit\":\"VC1\",\"value\":true}}\n"
            )
        })
        .collect();
    assert_eq!(app.post_events(&lines).status, 200);
    let mut expected: Vec<String> = cases::table
        .filter(cases::next_check.le(as_of))
        .select(cases::id)
        .load(conn)
        .unwrap();
    assert!(expected.len() >= 5 && expected.contains(&dues[0].0), "{expected:?}");
    expected.extend(others);
    expected.sort();
    expected.dedup();
    type Row = (String, Option<NaiveDateTime>, Option<String>, Option<String>);
    let stored: Vec<Row> = cases::table
        .filter(cases::id.eq_any(&expected))
        .select((cases::id, cases::next_check, cases::summary_hash, cases::patient_hash))
        .order(cases::id)
        .load(conn)
        .unwrap();
    // Every way through the listing: the rows as listed (1000, and as many
    // as there are), the due fitting a chunk and the union not, neither.
    let due = expected.len() - 2;
    for chunk in [1000, expected.len(), expected.len() - 1, due, 2, 1] {
        let chunk = chunk as i64;
        let mut walk = CandidateWalk::start(conn, chunk, Some(since), as_of).unwrap();
        assert!(!walk.whole(), "a listing, not a walk of the county");
        assert_eq!(
            walk.in_one_chunk(),
            expected.len() as i64 <= chunk,
            "the rows as listed exactly when they fit a chunk of {chunk}"
        );
        let mut rows: Vec<Row> = Vec::new();
        let mut chunks = 0;
        while let Some(part) = walk.next_chunk(conn).unwrap() {
            assert!(part.len() as i64 <= chunk, "a chunk of at most {chunk}: {}", part.len());
            chunks += 1;
            rows.extend(
                part.into_iter()
                    .map(|c| (c.id, c.next_check, c.summary_hash, c.patient_hash)),
            );
        }
        assert_eq!(rows, stored, "chunks of {chunk}");
        assert_eq!(chunks, expected.len().div_ceil(chunk as usize), "chunks of {chunk}");
    }
}
