//! Operations: a backup of a running SQLite instance while events arrive,
//! restored with the `svu-vakt` binary as a region's IT would run it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use diesel::prelude::*;
use svu_vakt::store::schema::{deviation_history, events, ingest_batches};
use svu_vakt::store::DbConn;

use crate::helpers::{bin, demo_into, spawn_app_with, Backend};

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

#[test]
fn a_backup_taken_under_ingest_restores_whole_and_the_binary_refuses_to_overwrite() {
    let app = spawn_app_with(Backend::Sqlite, |_| {});
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

    let units: serde_json::Value = serde_json::from_str(&svu_vakt::demo::units_json()).unwrap();
    let ward = units
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "slutenvard")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svu-vakt-backup.db");
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
        let out = bin()
            .args(["backup", "--to"])
            .arg(&file)
            .args(["--database-url", &app.db.url()])
            .output()
            .unwrap();
        while acknowledged.load(Ordering::SeqCst) < 3000 {
            std::thread::yield_now();
        }
        stop.store(true, Ordering::SeqCst);
        out
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Säkerhetskopia skriven"), "{said}");
    let after = event_counts(&mut app.conn());
    assert_eq!(
        after.0,
        before + acknowledged.load(Ordering::SeqCst),
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
    let mut conn = pool.get().unwrap();
    let (stored, by_batches) = event_counts(&mut conn);
    assert_eq!(stored, by_batches, "no half batch in the backup");
    assert!(
        stored > before && stored < after.0,
        "taken during the feed: {before} < {stored} < {}",
        after.0
    );
    assert_eq!(history(&mut conn, id), original_history);
    let deviations: i64 = svu_vakt::store::schema::deviations::table
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(deviations, app.deviations().len() as i64);

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
