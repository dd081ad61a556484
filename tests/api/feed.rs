//! The drop folder (`[feed] directory`): files become events, bad files a
//! report, the same content twice nothing, and a `serve` killed in the
//! middle of a file loses and doubles nothing when it comes back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use svu_vakt::feed::{CsvSource, FeedConfig};
use svu_vakt::store::schema::{feed_files, ingest_batches};
use svu_vakt::store::tokens::Role;
use svu_vakt::store::DbConn;

use crate::handling::{create_user, Session};
use crate::helpers::{bin, spawn_app_with, Backend, Child, TestApp, TestDb};

crate::on_both!(files_dropped_become_events_once_and_bad_files_get_a_report);

pub(crate) fn feed_config(dir: &Path) -> FeedConfig {
    FeedConfig {
        directory: dir.to_path_buf(),
        settle: Duration::ZERO,
        poll: Duration::from_millis(200),
        csv: vec![CsvSource {
            pattern: "cosmic-*.csv".into(),
            mapping_path: PathBuf::from("mapping.toml"),
            mapping: svu_vakt::ingest::csv_mapping::CsvMapping::from_toml(crate::import::MAPPING).unwrap(),
        }],
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until `done` holds, checking every 100 ms, for at most 60 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn outcomes(conn: &mut DbConn) -> Vec<(String, String, i64, i64)> {
    feed_files::table
        .order(feed_files::id)
        .select((
            feed_files::name,
            feed_files::outcome,
            feed_files::events_stored,
            feed_files::errors,
        ))
        .load(conn)
        .unwrap()
}

fn events(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"{prefix}-{i}\",\"case\":\"{prefix}-{}\",\"type\":\"inskrivning\",\"at\":\"2026-11-19T08:00:00+01:00\",\"unit\":\"AVD1\"}}\n",
                i / 5
            )
        })
        .collect()
}

fn files_dropped_become_events_once_and_bad_files_get_a_report(b: Backend) {
    let inbox = tempfile::tempdir().unwrap();
    let dir = inbox.path().to_path_buf();
    let app = spawn_app_with(b, |c| c.feed = Some(feed_config(&dir)));

    // Half written: a `.part` file is never taken.
    std::fs::write(dir.join("a.jsonl.part"), events(40, "A")).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(app.event_count(), 0);
    assert_eq!(files_in(&dir), vec!["a.jsonl.part"]);

    // Renamed: taken whole, moved to done/.
    std::fs::rename(dir.join("a.jsonl.part"), dir.join("a.jsonl")).unwrap();
    wait_for("a.jsonl in done/", || files_in(&dir.join("done")).len() == 1);
    assert_eq!(app.event_count(), 40);
    assert!(files_in(&dir.join("done"))[0].ends_with("-a.jsonl"));
    let sources: Vec<String> = ingest_batches::table
        .select(ingest_batches::source)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(sources, vec!["mapp:a.jsonl".to_string()], "its batch names the file");

    // The same content under another name: nothing new.
    std::fs::write(dir.join("a-igen.jsonl"), events(40, "A")).unwrap();
    wait_for("a-igen.jsonl in done/", || files_in(&dir.join("done")).len() == 2);
    assert_eq!(app.event_count(), 40);

    // Bad lines: the whole file to failed/ with a report, nothing of it stored.
    let mut bad = events(10, "B");
    bad.push_str(
        "{\"id\":\"B-x\",\"case\":\"B\",\"type\":\"inskrivning\",\"at\":\"2026-11-19 08:00\",\"unit\":\"AVD1\"}\n",
    );
    bad.push_str("inte json\n");
    bad.push_str("{\"id\":\"B-y\",\"case\":\"B\",\"type\":\"flyttning\",\"at\":\"2026-11-19T08:00:00+01:00\",\"unit\":\"AVD1\"}\n");
    std::fs::write(dir.join("b.jsonl"), bad).unwrap();
    // A CSV export through the mapping its name picks.
    std::fs::write(dir.join("cosmic-1.csv"), crate::import::EXPORT).unwrap();
    // A name the folder does not read.
    std::fs::write(dir.join("anteckningar.txt"), "hej").unwrap();
    wait_for("every file taken", || files_in(&dir).is_empty());
    assert_eq!(app.event_count(), 45, "the CSV's five events, none of b.jsonl");
    let failed = files_in(&dir.join("failed"));
    assert_eq!(failed.len(), 4, "{failed:?}");
    let report_of = |name: &str| {
        let report = failed
            .iter()
            .find(|f| f.ends_with(&format!("-{name}.fel.txt")))
            .unwrap_or_else(|| panic!("no report for {name}: {failed:?}"));
        std::fs::read_to_string(dir.join("failed").join(report)).unwrap()
    };
    let report = report_of("b.jsonl");
    assert!(report.contains("3 fel, inget sparades"), "{report}");
    for line in ["rad 11, fält at", "rad 12, fält line", "rad 13, fält type"] {
        assert!(report.contains(line), "{line} missing from {report}");
    }
    assert!(report_of("anteckningar.txt").contains("cosmic-*.csv (CSV)"));

    // b, anteckningar and cosmic were dropped together: in any order among them.
    let mut logged = outcomes(&mut app.conn());
    logged[2..].sort();
    assert_eq!(
        logged,
        vec![
            ("a.jsonl".into(), "inlast".into(), 40, 0),
            ("a-igen.jsonl".into(), "upprepad".into(), 0, 0),
            ("anteckningar.txt".into(), "fel".into(), 0, 1),
            ("b.jsonl".into(), "fel".into(), 0, 3),
            ("cosmic-1.csv".into(), "inlast".into(), 5, 0),
        ]
    );

    // What came in shows in the metrics and on the scan-runs page.
    let metrics = app.get("/metrics").body;
    for line in [
        "svu_vakt_feed_files_imported_total 2",
        "svu_vakt_feed_files_failed_total 2",
        "svu_vakt_feed_files_repeated_total 1",
        "svu_vakt_feed_events_stored_total 45",
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
    create_user(&app, "ida.it", Role::Admin, &[]);
    let page = Session::login(&app, "ida.it").get(&app, "/granskningar").body;
    assert!(
        page.contains("Inkomna filer") && page.contains("cosmic-1.csv"),
        "{page}"
    );
    assert!(page.contains("redan inläst"));
}

/// `serve` killed with SIGKILL while it imports a 30 000-line file, then
/// started again: the file ends in done/, every event stored once.
#[test]
fn a_serve_killed_in_the_middle_of_a_file_finishes_it_after_restart() {
    let db = TestDb::new(Backend::Sqlite);
    let url = db.url();
    let inbox = tempfile::tempdir().unwrap();
    let dir = inbox.path().join("inkorg");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = inbox.path().join("svu-vakt.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scan]\nschedule = \"\"\n[feed]\ndirectory = \"{}\"\nsettle_seconds = 0\npoll_seconds = 1\n",
            dir.display()
        ),
    )
    .unwrap();
    let serve = || {
        bin()
            .args(["--config"])
            .arg(&cfg)
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // The schema first, so the counting below never races the migrations.
    let out = bin().args(["migrate", "--database-url", &url]).output().unwrap();
    assert!(out.status.success());
    let app = TestApp::attach(&url);
    let total = 30_000;
    std::fs::write(dir.join("stor.jsonl.part"), events(total, "K")).unwrap();
    let mut first = Child(serve());
    std::fs::rename(dir.join("stor.jsonl.part"), dir.join("stor.jsonl")).unwrap();
    // Kill it once part of the file is stored (a batch is 10 000 lines).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while seen == 0 && Instant::now() < deadline {
        seen = app.event_count();
        std::thread::sleep(Duration::from_millis(5));
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let at_kill = app.event_count();
    assert!(at_kill > 0, "the import began before the kill");

    let second = Child(serve());
    wait_for("stor.jsonl in done/", || files_in(&dir.join("done")).len() == 1);
    drop(second);
    assert_eq!(
        app.event_count(),
        total as i64,
        "every event stored, once (killed at {at_kill})"
    );
    let imported: Vec<(String, String, i64, i64)> = outcomes(&mut app.conn())
        .into_iter()
        .filter(|o| o.1 == "inlast")
        .collect();
    assert_eq!(imported.len(), 1, "{imported:?}");
    assert!(files_in(&dir).is_empty());
}
