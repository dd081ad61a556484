//! Operations: a backup of a running SQLite instance while events arrive,
//! restored with the `svu-vakt` binary as a region's IT would run it; the
//! move to PostgreSQL with `svu-vakt copy`, and the PostgreSQL roles of
//! ops/postgres.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use svu_vakt::store::schema::{deviation_history, events, ingest_batches};
use svu_vakt::store::DbConn;

use crate::helpers::{bin, demo_into, demo_ward, spawn_app_with, Backend, TestApp};

crate::on_both!(
    a_bad_batch_is_found_removed_and_its_deviations_withdrawn,
    a_removed_export_takes_its_patient_with_it_and_a_corrected_one_sets_it
);

type History = Vec<(String, Option<String>, String)>;

fn history(conn: &mut DbConn, id: i64) -> History {
    deviation_history::table
        .filter(deviation_history::deviation_id.eq(id))
        .order(deviation_history::id)
        .select((
            deviation_history::to_status,
            deviation_history::from_status,
            deviation_history::actor,
        ))
        .load(conn)
        .unwrap()
}

/// Events stored, and events the stored batches say they stored.
fn event_counts(conn: &mut DbConn) -> (i64, i64) {
    let stored: i64 = events::table.count().get_result(conn).unwrap();
    let batches: Vec<i32> = ingest_batches::table.select(ingest_batches::stored).load(conn).unwrap();
    (stored, batches.iter().map(|n| i64::from(*n)).sum())
}

/// A demo installation with one deviation's status changed: its id and history.
fn installation(app: &TestApp) -> (i64, History) {
    demo_into(&app.db.url(), "200");
    assert_eq!(app.scan("2026-11-20T00:00:00+01:00").status, 200);
    let id = app.deviations()[0].id;
    let r = app.request(
        "POST",
        &format!("/api/v1/deviations/{id}/status"),
        Some(&app.admin.clone()),
        Some(("application/json", r#"{"status":"mottagen","note":"tagen"}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let original_history = history(&mut app.conn(), id);
    assert!(original_history.len() >= 2, "{original_history:?}");
    (id, original_history)
}

/// Runs `backup` while batches of 50 events arrive over HTTP (after the
/// first 500, before the 3 000th): its result, the events stored before
/// the feed, and the events acknowledged in all.
fn under_ingest<T: Send>(app: &TestApp, backup: impl FnOnce() -> T + Send) -> (T, i64, i64) {
    let ward = demo_ward();
    let stop = AtomicBool::new(false);
    let acknowledged = AtomicI64::new(0);
    let before = event_counts(&mut app.conn()).0;
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let body: String = (0..50)
                    .map(|i| {
                        format!(
                            "{{\"id\":\"BK-{n}-{i}\",\"case\":\"BK-{n}\",\"type\":\"inskrivning\",\"at\":\"2026-11-19T08:00:00+01:00\",\"unit\":\"{ward}\"}}\n"
                        )
                    })
                    .collect();
                let r = app.post_events(&body);
                assert_eq!(r.status, 200, "{}", r.body);
                acknowledged.fetch_add(50, Ordering::SeqCst);
                n += 1;
            }
        });
        // Let the feed get going, then back up the running instance from another process.
        while acknowledged.load(Ordering::SeqCst) < 500 {
            std::thread::yield_now();
        }
        let out = backup();
        while acknowledged.load(Ordering::SeqCst) < 3000 {
            std::thread::yield_now();
        }
        stop.store(true, Ordering::SeqCst);
        out
    });
    (out, before, acknowledged.load(Ordering::SeqCst))
}

/// A restored copy holds whole batches only, taken during the feed, with
/// the deviation's history and every deviation.
fn assert_restored(conn: &mut DbConn, app: &TestApp, id: i64, original: &History, before: i64) {
    let after = event_counts(&mut app.conn()).0;
    let (stored, by_batches) = event_counts(conn);
    assert_eq!(stored, by_batches, "no half batch in the backup");
    assert!(
        stored > before && stored < after,
        "taken during the feed: {before} < {stored} < {after}"
    );
    assert_eq!(&history(conn, id), original);
    let deviations: i64 = svu_vakt::store::schema::deviations::table
        .count()
        .get_result(conn)
        .unwrap();
    assert_eq!(deviations, app.deviations().len() as i64);
}

#[test]
fn a_backup_taken_under_ingest_restores_whole_and_the_binary_refuses_to_overwrite() {
    let app = spawn_app_with(Backend::Sqlite, |_| {});
    let (id, original_history) = installation(&app);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svu-vakt-backup.db");
    let (out, before, acknowledged) = under_ingest(&app, || {
        bin()
            .args(["backup", "--to"])
            .arg(&file)
            .args(["--database-url", &app.db.url()])
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Säkerhetskopia skriven"), "{said}");
    assert_eq!(
        event_counts(&mut app.conn()).0,
        before + acknowledged,
        "every acknowledged event stored"
    );

    // The same name again is refused; the backup is untouched.
    let size = std::fs::metadata(&file).unwrap().len();
    let again = bin()
        .args(["backup", "--to"])
        .arg(&file)
        .args(["--database-url", &app.db.url()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("finns redan"));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size);

    // Restore into a new place, then open it as the service would.
    let restored = dir.path().join("restored").join("svu-vakt.db");
    let url = format!("sqlite://{}", restored.display());
    let out = bin()
        .args(["restore", "--from"])
        .arg(&file)
        .args(["--database-url", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pool = svu_vakt::store::pool(&svu_vakt::store::DbUrl::parse(&url).unwrap(), 1).unwrap();
    assert_restored(&mut pool.get().unwrap(), &app, id, &original_history, before);

    // Restoring over a database that exists is refused.
    let over = bin()
        .args(["restore", "--from"])
        .arg(&file)
        .args(["--database-url", &url])
        .output()
        .unwrap();
    assert!(!over.status.success());
    assert!(String::from_utf8_lossy(&over.stderr).contains("finns redan"));
}

/// docs/OPERATIONS.md's PostgreSQL procedure: `pg_dump` of a running
/// instance under ingest, `pg_restore` into a new database, `svu-vakt migrate`.
#[test]
fn a_pg_dump_taken_under_ingest_restores_whole() {
    if crate::helpers::pg_admin_url().is_none() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "pg_dump test skipped: SVU_VAKT_TEST_PG_URL is not set"
        );
        return;
    }
    let app = spawn_app_with(Backend::Postgres, |_| {});
    let (id, original_history) = installation(&app);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svu-vakt.dump");
    let (out, before, _) = under_ingest(&app, || {
        std::process::Command::new("pg_dump")
            .args(["--format=custom", "--file"])
            .arg(&file)
            .arg(app.db.url())
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let restored = crate::helpers::TestDb::new(Backend::Postgres);
    let out = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname", &restored.url()])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin()
        .args(["migrate", "--database-url", &restored.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pool = svu_vakt::store::pool(&svu_vakt::store::DbUrl::parse(&restored.url()).unwrap(), 1).unwrap();
    assert_restored(&mut pool.get().unwrap(), &app, id, &original_history, before);
}

/// A SQLite installation moved to PostgreSQL with the binary: the same
/// deviations and histories, the same tokens, a scan there finds nothing
/// new, new batches get new ids, and a second copy into it is refused.
#[test]
fn copy_moves_an_installation_to_postgres_and_refuses_a_full_target() {
    if crate::helpers::pg_admin_url().is_none() {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "copy test skipped: SVU_VAKT_TEST_PG_URL is not set");
        return;
    }
    let source = spawn_app_with(Backend::Sqlite, |_| {});
    demo_into(&source.db.url(), "300");
    let as_of = "2026-11-20T00:00:00+01:00";
    assert_eq!(source.scan(as_of).status, 200);
    let id = source.deviations()[0].id;
    let r = source.request(
        "POST",
        &format!("/api/v1/deviations/{id}/status"),
        Some(&source.admin.clone()),
        Some(("application/json", r#"{"status":"mottagen","note":"tagen"}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let source_history = history(&mut source.conn(), id);
    let source_deviations: Vec<(i64, String, String)> = source
        .deviations()
        .into_iter()
        .map(|d| (d.id, d.fingerprint, d.status.to_string()))
        .collect();
    let source_events = event_counts(&mut source.conn());

    let target = crate::helpers::TestDb::new(Backend::Postgres);
    let out = bin()
        .args(["copy", "--from", &source.db.url(), "--to", &target.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    let events_line = said
        .lines()
        .find(|l| l.trim_start().starts_with("events "))
        .unwrap_or_default();
    assert!(events_line.contains(&format!(" {} rader", source_events.0)), "{said}");

    let cfg = crate::helpers::config(&target);
    let moved = crate::helpers::spawn_on(target, cfg);
    let moved_deviations: Vec<(i64, String, String)> = moved
        .deviations()
        .into_iter()
        .map(|d| (d.id, d.fingerprint, d.status.to_string()))
        .collect();
    assert_eq!(moved_deviations, source_deviations);
    assert_eq!(history(&mut moved.conn(), id), source_history);
    assert_eq!(event_counts(&mut moved.conn()), source_events);
    // The cases' packed timelines are not copied: the copy makes them there.
    {
        use svu_vakt::store::schema::{case_timelines, cases};
        let mut c = moved.conn();
        let packed: i64 = case_timelines::table.count().get_result(&mut *c).unwrap();
        let all: i64 = cases::table.count().get_result(&mut *c).unwrap();
        assert!(all > 0);
        assert_eq!(packed, all, "every copied case has its packed timeline");
    }

    // The source's token works on the moved installation.
    let r = moved.request(
        "GET",
        &format!("/api/v1/deviations/{id}"),
        Some(&source.admin.clone()),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Its state came along whole: the same scan there files, updates and withdraws nothing.
    let r = moved.scan(as_of);
    assert_eq!(r.status, 200, "{}", r.body);
    let scan = r.json();
    assert_eq!(
        (
            &scan["scan"]["filed"],
            &scan["scan"]["updated"],
            &scan["scan"]["withdrawn"]
        ),
        (&serde_json::json!(0), &serde_json::json!(0), &serde_json::json!(0)),
        "{scan}"
    );
    // New batches and history rows get ids after the copied ones.
    let r = moved.post_events(
        r#"{"id":"MOVED-1","case":"MOVED","type":"inskrivning","at":"2026-11-19T08:00:00+01:00","unit":"X"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = moved.request(
        "POST",
        &format!("/api/v1/deviations/{id}/status"),
        Some(&moved.admin.clone()),
        Some(("application/json", r#"{"status":"utreds","note":"flyttad"}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let again = bin()
        .args(["copy", "--from", &source.db.url(), "--to", &moved.db.url()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("inte tom") && err.contains("events"), "{err}");
}

/// ops/postgres/grants.sql as a region applies it: the owner role migrates,
/// the service role then runs ingest and a scan with no right to change the
/// schema, and a pending migration stops it with what to do.
#[test]
fn the_service_role_of_the_postgres_setup_runs_without_schema_rights() {
    let Some(admin) = crate::helpers::pg_admin_url() else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "grants test skipped: SVU_VAKT_TEST_PG_URL is not set"
        );
        return;
    };
    let db = crate::helpers::TestDb::new(Backend::Postgres);
    let url = db.url();
    let n = std::process::id();
    let (owner, service) = (format!("svu_test_agare_{n}"), format!("svu_test_tjanst_{n}"));
    let mut su = PgConnection::establish(&url).unwrap();
    let mut adm = PgConnection::establish(&admin).unwrap();
    for role in [&owner, &service] {
        diesel::sql_query(format!("DROP ROLE IF EXISTS {role}"))
            .execute(&mut adm)
            .unwrap();
        diesel::sql_query(format!("CREATE ROLE {role} LOGIN"))
            .execute(&mut adm)
            .unwrap();
    }
    let grants = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ops/postgres/grants.sql"))
        .unwrap()
        .replace("svu_vakt_agare", "@OWNER@")
        .replace("svu_vakt", &service)
        .replace("@OWNER@", &owner);
    su.batch_execute(&grants).unwrap();
    let as_role = |role: &str| {
        let (scheme, rest) = url.split_once("://").unwrap();
        let host_db = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{role}@{host_db}")
    };
    let run = |role: &str, args: &[&str]| {
        bin()
            .args(args)
            .args(["--database-url", &as_role(role)])
            .output()
            .unwrap()
    };

    let out = run(&service, &["migrate"]);
    assert!(!out.status.success(), "the service role cannot create the schema");
    let out = run(&owner, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&service, &["demo", "--cases", "100"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&service, &["scan", "--as-of", "2026-11-20T00:00:00+01:00"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("avvikelser"));

    let mut svc = PgConnection::establish(&as_role(&service)).unwrap();
    let denied = diesel::sql_query("CREATE TABLE intrang (x INT)").execute(&mut svc);
    assert!(denied.is_err(), "the service role may not create tables");
    let deviations: i64 = svu_vakt::store::schema::deviations::table
        .count()
        .get_result(&mut svc)
        .unwrap();
    assert!(deviations > 0);

    // A migration pending (as after an upgrade): the service stops and says why.
    diesel::sql_query("DELETE FROM __diesel_schema_migrations WHERE version = '20261124000009'")
        .execute(&mut su)
        .unwrap();
    let out = run(&service, &["migrate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("som databasens ägare"), "{err}");

    drop((su, svc));
    drop(db);
    for role in [&owner, &service] {
        diesel::sql_query(format!("DROP ROLE IF EXISTS {role}"))
            .execute(&mut adm)
            .unwrap();
    }
}

/// A bad export loaded: found by `svu-vakt batches`, shown and then removed
/// with `svu-vakt remove-batch`; the next scan withdraws what it caused.
fn a_bad_batch_is_found_removed_and_its_deviations_withdrawn(b: Backend) {
    let app = spawn_app_with(b, |_| {});
    demo_into(&app.db.url(), "100");
    let as_of = "2026-11-20T00:00:00+01:00";
    assert_eq!(app.scan(as_of).status, 200);
    let before = app.event_count();
    let ward = demo_ward();
    let r = app.post_events(&format!(
        "{{\"id\":\"FEL-1\",\"case\":\"FEL\",\"type\":\"inskrivning\",\"at\":\"2026-11-10T08:00:00+01:00\",\"unit\":\"{ward}\"}}\n"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    let batch = r.json()["batch"].as_i64().unwrap();
    let r = app.scan(as_of);
    assert_eq!(r.status, 200);
    let bad: Vec<_> = app
        .deviations()
        .into_iter()
        .filter(|d| d.case_id.as_deref() == Some("FEL"))
        .collect();
    assert!(!bad.is_empty(), "the bad export caused a deviation");

    let list = bin()
        .args(["batches", "--source", "api", "--database-url", &app.db.url()])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{batch} ")) && l.ends_with("api")),
        "{listed}"
    );
    let show = bin()
        .args([
            "remove-batch",
            "--batch",
            &batch.to_string(),
            "--database-url",
            &app.db.url(),
        ])
        .output()
        .unwrap();
    assert!(show.status.success(), "{}", String::from_utf8_lossy(&show.stderr));
    assert!(String::from_utf8_lossy(&show.stdout).contains("1 händelser i 1 ärenden: FEL"));
    assert_eq!(app.event_count(), before + 1, "nothing removed without --yes");
    remove_batch(&app, batch);
    assert_eq!(app.event_count(), before);

    let r = app.scan(as_of);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["scan"]["withdrawn"].as_u64(),
        Some(bad.len() as u64),
        "{}",
        r.body
    );
    for d in app
        .deviations()
        .into_iter()
        .filter(|d| d.case_id.as_deref() == Some("FEL"))
    {
        assert_eq!(d.status, "aterkallad");
    }
    assert!(
        !remove_batch_cmd(&app, batch).status.success(),
        "a batch removed is gone"
    );
}

/// A case as the register holds it: patient hash, age band, first event.
fn case_row(app: &TestApp, id: &str) -> (Option<String>, Option<String>, chrono::NaiveDateTime) {
    use svu_vakt::store::schema::cases;
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    cases::table
        .find(id)
        .select((cases::patient_hash, cases::age_band, cases::first_at))
        .first(conn)
        .unwrap()
}

fn remove_batch_cmd(app: &TestApp, batch: i64) -> std::process::Output {
    bin()
        .args([
            "remove-batch",
            "--batch",
            &batch.to_string(),
            "--yes",
            "--database-url",
            &app.db.url(),
        ])
        .output()
        .unwrap()
}

fn remove_batch(app: &TestApp, batch: i64) {
    let out = remove_batch_cmd(app, batch);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn a_removed_export_takes_its_patient_with_it_and_a_corrected_one_sets_it(b: Backend) {
    let app = spawn_app_with(b, |_| {});
    let ward = demo_ward();
    let ev = |id: &str, at: &str, patient: &str| {
        format!(
            "{{\"id\":\"{id}\",\"case\":\"X\",\"type\":\"inskrivning\",\"at\":\"{at}\",\"unit\":\"{ward}\"{patient}}}\n"
        )
    };
    // A bad export names the wrong person, and the earliest event.
    let r = app.post_events(&ev("X-1", "2026-11-01T08:00:00+01:00", r#","patient":"19900101-0017""#));
    assert_eq!(r.status, 200, "{}", r.body);
    let bad = r.json()["batch"].as_i64().unwrap();
    let r = app.post_events(&ev("X-2", "2026-11-05T08:00:00+01:00", ""));
    assert_eq!(r.status, 200, "{}", r.body);
    let (patient, band, first) = case_row(&app, "X");
    assert!(patient.is_some() && band.is_some());
    assert_eq!(first.to_string(), "2026-11-01 07:00:00");

    remove_batch(&app, bad);
    let (patient, band, first) = case_row(&app, "X");
    assert_eq!((patient, band), (None, None), "the removed export's patient is gone");
    assert_eq!(first.to_string(), "2026-11-05 07:00:00", "the span is the events left");

    // The corrected export: its patient is the case's, with an age band.
    let r = app.post_events(&ev("X-3", "2026-11-01T08:00:00+01:00", r#","patient":"19121212-1212""#));
    assert_eq!(r.status, 200, "{}", r.body);
    let stored: Option<String> = {
        let mut c = app.conn();
        let conn: &mut DbConn = &mut c;
        events::table
            .find("X-3")
            .select(events::patient_hash)
            .first(conn)
            .unwrap()
    };
    let (patient, band, first) = case_row(&app, "X");
    assert!(stored.is_some());
    assert_eq!(patient, stored, "the corrected patient, not the removed one");
    assert!(band.is_some());
    assert_eq!(first.to_string(), "2026-11-01 07:00:00");
}
