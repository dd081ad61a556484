//! An incremental scan costs what is new, not the county's history: every
//! statement an incremental scan sends that reads `events` or `cases` is
//! planned on an index condition, never as a walk of the table or of a whole
//! index (SQLite: no `SCAN` of them, nor a `SEARCH` without a constraint; PostgreSQL, with
//! sequential scans discouraged and the generic plan: no `Seq Scan` and
//! every index scan on them with an `Index Cond`). Its own test binary: the
//! statements are caught by diesel's process-wide instrumentation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use diesel::sql_types::Text;
use helpers::{Backend, TestDb};

static CAPTURING: AtomicBool = AtomicBool::new(false);
static CAUGHT: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Catch;

impl Instrumentation for Catch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            if CAPTURING.load(Ordering::SeqCst) {
                let sql = query.to_string();
                // diesel's debug form ends with the binds: keep the SQL.
                let sql = sql.split(" -- binds:").next().unwrap_or(&sql).to_string();
                CAUGHT.lock().unwrap().push(sql);
            }
        }
    }
}

fn catch() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(Catch))
}

/// The statements of one scan as of `as_of`, run in this process.
fn statements_of_scan(db: &TestDb, as_of: &str) -> Vec<String> {
    let cfg = helpers::config(db);
    CAUGHT.lock().unwrap().clear();
    CAPTURING.store(true, Ordering::SeqCst);
    let result = svu_vakt::cli::scan(&cfg, Some(as_of), false);
    CAPTURING.store(false, Ordering::SeqCst);
    result.unwrap();
    let mut all = CAUGHT.lock().unwrap().clone();
    all.sort();
    all.dedup();
    all
}

fn reads_history(sql: &str) -> bool {
    let s = sql.to_ascii_lowercase();
    let names = ["\"events\"", "`events`", "\"cases\"", "`cases`"];
    // A compound statement of PostgreSQL's starts with its first part's
    // parenthesis.
    s.trim_start().trim_start_matches('(').starts_with("select") && names.iter().any(|n| s.contains(n))
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan's lines that walk a whole table or index of events or cases.
fn walks(db: &TestDb, backend: Backend, sql: &str) -> Vec<String> {
    match backend {
        Backend::Sqlite => {
            let mut c = SqliteConnection::establish(&db.url().replace("sqlite://", "")).unwrap();
            let plan: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load(&mut c)
                .unwrap_or_else(|e| panic!("{e}: {sql}"));
            plan.into_iter()
                .map(|l| l.detail)
                .filter(|d| d.contains(" events") || d.contains(" cases"))
                // A SEARCH with no `(column op ?)` is a walk too: min() on an
                // index searched from its first entry, filtered row by row.
                .filter(|d| d.starts_with("SCAN") || (d.starts_with("SEARCH") && !d.contains(" (")))
                .collect()
        }
        Backend::Postgres => {
            let mut c = PgConnection::establish(&db.url()).unwrap();
            diesel::sql_query("SET enable_seqscan = off").execute(&mut c).unwrap();
            diesel::sql_query("SET plan_cache_mode = force_generic_plan")
                .execute(&mut c)
                .unwrap();
            let params = (1..=2000).take_while(|i| sql.contains(&format!("${i}"))).count();
            diesel::sql_query(format!("PREPARE q AS {sql}"))
                .execute(&mut c)
                .unwrap();
            let args = vec!["NULL"; params].join(", ");
            let execute = if params == 0 {
                "EXPLAIN EXECUTE q".to_string()
            } else {
                format!("EXPLAIN EXECUTE q({args})")
            };
            let plan: Vec<PgPlanLine> = diesel::sql_query(execute).load(&mut c).unwrap();
            pg_walks(&plan.into_iter().map(|l| l.line).collect::<Vec<_>>())
        }
    }
}

/// Scan nodes on events or cases without an index condition.
fn pg_walks(plan: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in plan.iter().enumerate() {
        let on = line.contains(" on events") || line.contains(" on cases");
        if !on || !line.contains("Scan") {
            continue;
        }
        let node_rest = plan[i + 1..].iter().take_while(|l| !l.contains("->"));
        let has_cond = node_rest
            .clone()
            .any(|l| l.contains("Index Cond") || l.contains("Recheck Cond"));
        if line.contains("Seq Scan") || !has_cond {
            out.push(line.trim().to_string());
        }
    }
    out
}

fn events_near(day: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"ny-{i}\",\"case\":\"NY-{i}\",\"type\":\"inskrivning\",\"at\":\"{day}T{:02}:00:00+01:00\",\"unit\":\"NY-AVD\"}}\n",
                8 + i % 10
            )
        })
        .collect()
}

fn an_incremental_scan_reads_only_through_index_conditions(backend: Backend) {
    let db = TestDb::new(backend);
    helpers::demo_into(&db.url(), "600");
    let cfg = helpers::config(&db);
    svu_vakt::cli::scan(&cfg, Some("2026-11-01T00:00:00+01:00"), false).unwrap();
    let pool = svu_vakt::store::pool(&cfg.database_url, 1).unwrap();
    let hasher = svu_vakt::domain::PatientHasher::new(cfg.patient_key.clone());
    let parsed = svu_vakt::ingest::parse_events(&events_near("2026-11-01", 20), &hasher);
    svu_vakt::store::events::store_parsed(&mut pool.get().unwrap(), parsed, "test").unwrap();
    for as_of in ["2026-11-02T00:00:00+01:00", "2026-11-03T00:00:00+01:00"] {
        let statements = statements_of_scan(&db, as_of);
        let mut c = pool.get().unwrap();
        let conn: &mut svu_vakt::store::DbConn = &mut c;
        use svu_vakt::store::schema::cases;
        let unsummarised: i64 = cases::table
            .filter(cases::summary_hash.is_null())
            .count()
            .get_result(conn)
            .unwrap();
        let due: i64 = cases::table
            .filter(cases::next_check.is_not_null())
            .count()
            .get_result(conn)
            .unwrap();
        eprintln!("after the scan as of {as_of}: {unsummarised} unsummarised, {due} with a next check");
        let reading: Vec<&String> = statements.iter().filter(|s| reads_history(s)).collect();
        assert!(
            !reading.is_empty(),
            "no statement read events or cases: {statements:#?}"
        );
        for sql in reading {
            let bad = walks(&db, backend, sql);
            assert!(bad.is_empty(), "as of {as_of}, {backend:?} walks {bad:?} for\n{sql}");
        }
    }
}

#[test]
fn an_incremental_scan_reads_only_through_index_conditions_on_both_databases() {
    diesel::connection::set_default_instrumentation(catch).unwrap();
    an_incremental_scan_reads_only_through_index_conditions(Backend::Sqlite);
    if helpers::pg_admin_url().is_some() {
        an_incremental_scan_reads_only_through_index_conditions(Backend::Postgres);
    } else {
        eprintln!("postgres::an_incremental_scan_reads_only_through_index_conditions skipped: SVU_VAKT_TEST_PG_URL is not set");
    }
}
