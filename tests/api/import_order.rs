//! Importing a file whatever the order of its lines: out of case order it
//! is sorted by case before it is stored (`ingest::sorted`), its batches
//! share write transactions on SQLite (`store::file_batches`), and what is
//! stored, counted and refused is what the file in case order gives.

use diesel::prelude::*;
use svu_vakt::store::schema::{case_timelines, cases, events, unit_days};
use svu_vakt::store::DbConn;

use crate::helpers::{bin, spawn_app, Backend, TestApp};

crate::on_both!(
    a_file_in_random_order_stores_and_finds_what_the_file_in_case_order_does,
    a_conflict_in_a_file_out_of_order_names_its_line_and_stores_nothing,
    a_case_less_event_repeated_batches_apart_is_stored_once,
    a_batch_of_only_stored_events_in_a_group_leaves_no_batch_behind,
    an_import_killed_mid_file_leaves_whole_batches_and_a_rerun_stores_the_rest,
    the_api_stores_events_while_a_large_file_imports,
);

/// `n` events of cases `M00000`…, ten each, in case id order.
fn sorted_events(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"m{i:06}\",\"case\":\"M{:05}\",\"type\":\"bedomning\",\"at\":\"2026-05-04T08:00:00+02:00\",\"unit\":\"AVD1\"}}\n",
                i / 10
            )
        })
        .collect()
}

/// Imports `text` as a file with `TMPDIR` set to `tmp`; the process output.
fn import(app: &TestApp, text: &str, tmp: &std::path::Path, units: Option<&std::path::Path>) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, text).unwrap();
    let mut cmd = bin();
    cmd.env("TMPDIR", tmp).args(["import", "--database-url", &app.db.url()]);
    if let Some(u) = units {
        cmd.arg("--units").arg(u);
    }
    cmd.arg("--events").arg(&path).output().unwrap()
}

/// What a scan reads of the stored events: every event's id and content,
/// every case's packed timeline and row, every unit-day of the register.
fn stored(app: &TestApp) -> Vec<String> {
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let mut out: Vec<String> = events::table
        .select((events::id, events::content_hash, events::case_id))
        .order(events::id)
        .load::<(String, String, Option<String>)>(conn)
        .unwrap()
        .into_iter()
        .map(|r| format!("{r:?}"))
        .collect();
    out.extend(
        case_timelines::table
            .order(case_timelines::case_id)
            .load::<(String, Vec<u8>)>(conn)
            .unwrap()
            .into_iter()
            .map(|r| format!("{r:?}")),
    );
    out.extend(
        cases::table
            .select((cases::id, cases::patient_hash, cases::first_at, cases::last_at))
            .order(cases::id)
            .load::<(String, Option<String>, chrono::NaiveDateTime, chrono::NaiveDateTime)>(conn)
            .unwrap()
            .into_iter()
            .map(|r| format!("{r:?}")),
    );
    out.extend(
        unit_days::table
            .order((unit_days::unit, unit_days::day))
            // Not `changed_at`: when the entry was stored.
            .select((
                unit_days::unit,
                unit_days::day,
                unit_days::first_at,
                unit_days::bemanning_at,
                unit_days::morning_at,
                unit_days::afternoon_at,
            ))
            .load::<(
                String,
                String,
                chrono::NaiveDateTime,
                Option<chrono::NaiveDateTime>,
                Option<chrono::NaiveDateTime>,
                Option<chrono::NaiveDateTime>,
            )>(conn)
            .unwrap()
            .into_iter()
            .map(|r| format!("{r:?}")),
    );
    out
}

fn a_file_in_random_order_stores_and_finds_what_the_file_in_case_order_does(b: Backend) {
    let demo = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["demo", "--seed", "4", "--cases", "1800", "--out"])
        .arg(demo.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let in_order = std::fs::read_to_string(demo.path().join("events.jsonl")).unwrap();
    // A fixed shuffle: the lines ordered by a hash of their text.
    let mut lines: Vec<&str> = in_order.lines().collect();
    lines.sort_by_key(|l| {
        l.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
            (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
        })
    });
    let shuffled = lines.join("\n") + "\n";
    assert!(lines.len() > 20_000, "more than two batches: {}", lines.len());
    let units = demo.path().join("units.json");

    let (ordered_app, shuffled_app) = (spawn_app(b), spawn_app(b));
    let tmp = tempfile::tempdir().unwrap();
    for (app, text) in [(&ordered_app, &in_order), (&shuffled_app, &shuffled)] {
        let out = import(app, text, tmp.path(), Some(&units));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("{} nya sparade, 0 fanns redan", lines.len())),
            "{stdout}"
        );
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the sorted runs are removed after the import"
    );
    assert_eq!(stored(&ordered_app), stored(&shuffled_app));
    assert_eq!(ordered_app.batch_count(), shuffled_app.batch_count());

    let as_of = chrono::Utc::now().to_rfc3339();
    let as_of = as_of.as_str();
    let found = |app: &TestApp| {
        assert_eq!(app.scan(as_of).status, 200);
        let mut d: Vec<_> = app
            .deviations()
            .into_iter()
            .map(|d| (d.fingerprint, d.rule, d.case_id, d.unit, d.due, d.late_minutes))
            .collect();
        d.sort();
        d
    };
    let ordered = found(&ordered_app);
    assert!(ordered.len() > 100, "the demo county has deviations: {}", ordered.len());
    assert_eq!(ordered, found(&shuffled_app));
}

fn a_conflict_in_a_file_out_of_order_names_its_line_and_stores_nothing(b: Backend) {
    let app = spawn_app(b);
    // Cases in reverse order, and at the end the id of line 6 with other
    // content in another case: sorted, the repeat comes first, two batches
    // before the line it repeats.
    let mut text: String = sorted_events(25_000).lines().rev().map(|l| format!("{l}\n")).collect();
    text.push_str(r#"{"id":"m024994","case":"A","type":"bedomning","at":"2026-05-01T08:00:00+02:00","unit":"AVD1"}"#);
    text.push('\n');
    let tmp = tempfile::tempdir().unwrap();
    let out = import(&app, &text, tmp.path(), None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Either of the two lines is named: which one is stored first follows
    // the case order, not the file's.
    assert!(
        stderr.contains("rad 25001, id m024994") || stderr.contains("rad 6, id m024994"),
        "{stderr}"
    );
    assert!(stderr.contains("inget sparades"), "{stderr}");
    assert_eq!(app.event_count(), 0, "nothing of the file stored");
    assert_eq!(app.batch_count(), 0);
}

fn a_case_less_event_repeated_batches_apart_is_stored_once(b: Backend) {
    let app = spawn_app(b);
    // In case order (an event without a case may stand anywhere), so stored
    // as it comes: the repeat is two batches after the first, in the same
    // write transaction on SQLite, whose ids pass one found all new.
    let staffed = r#"{"id":"b1","type":"bemanning","at":"2026-05-04T07:00:00+02:00","unit":"AVD1"}"#;
    let text = format!("{staffed}\n{}{staffed}\n", sorted_events(25_000));
    let tmp = tempfile::tempdir().unwrap();
    let out = import(&app, &text, tmp.path(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("25002 händelser lästa, 25001 nya sparade, 1 fanns redan"),
        "{stdout}"
    );
    assert_eq!(app.event_count(), 25_001);
    assert_eq!(app.batch_count(), 3);
}

fn a_batch_of_only_stored_events_in_a_group_leaves_no_batch_behind(b: Backend) {
    let app = spawn_app(b);
    let tmp = tempfile::tempdir().unwrap();
    let first = import(&app, &sorted_events(25_000), tmp.path(), None);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(app.batch_count(), 3);
    // The same 25 000 and 5 000 more: two batches of stored events only and
    // one half new.
    let second = import(&app, &sorted_events(30_000), tmp.path(), None);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains("30000 händelser lästa, 5000 nya sparade, 25000 fanns redan"),
        "{stdout}"
    );
    assert_eq!(app.event_count(), 30_000);
    assert_eq!(
        app.batch_count(),
        4,
        "one batch row for the batch that stored something"
    );
}

/// Every stored batch as (its count, its events in `events`).
fn batch_counts(app: &TestApp) -> Vec<(i32, i64)> {
    use svu_vakt::store::schema::ingest_batches;
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let batches: Vec<(i64, i32)> = ingest_batches::table
        .select((ingest_batches::id, ingest_batches::stored))
        .order(ingest_batches::id)
        .load(conn)
        .unwrap();
    batches
        .into_iter()
        .map(|(id, n)| {
            let have: i64 = events::table
                .filter(events::batch_id.eq(id))
                .count()
                .get_result(conn)
                .unwrap();
            (n, have)
        })
        .collect()
}

/// `svu-vakt import` of `text` started as a process of its own, returned
/// once it has committed a batch and while it is still running (with the
/// directory its file is in).
fn import_until_a_batch_is_stored(app: &TestApp, text: &str) -> (tempfile::TempDir, std::process::Child) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, text).unwrap();
    let mut child = bin()
        .args(["import", "--database-url", &app.db.url(), "--events"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while app.batch_count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no batch committed in ten minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before its first batch was seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    (dir, child)
}

/// A production import stopped by `kill -9` while its write transaction
/// holds batches not yet committed (the lines come sorted by case in
/// reverse, so sorted first): what it committed is whole batches, what it
/// had not is gone, and running the same import again stores exactly the
/// rest, as an import of the file in one go does.
fn an_import_killed_mid_file_leaves_whole_batches_and_a_rerun_stores_the_rest(b: Backend) {
    let n = 200_000;
    let text: String = sorted_events(n).lines().rev().map(|l| format!("{l}\n")).collect();
    let (app, whole) = (spawn_app(b), spawn_app(b));
    let (_dir, mut child) = import_until_a_batch_is_stored(&app, &text);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status:?}");
    let before = app.event_count();
    let counts = batch_counts(&app);
    assert!(!counts.is_empty());
    for (i, (n, have)) in counts.iter().enumerate() {
        assert_eq!(i64::from(*n), *have, "batch {i} is whole");
    }
    assert_eq!(counts.iter().map(|(_, have)| have).sum::<i64>(), before);
    assert!(before < n as i64, "killed before the end: {before} stored");

    let tmp = tempfile::tempdir().unwrap();
    let rerun = import(&app, &text, tmp.path(), None);
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        stdout.contains(&format!(
            "{n} händelser lästa, {} nya sparade, {before} fanns redan",
            n as i64 - before
        )),
        "{stdout}"
    );
    assert!(import(&whole, &text, tmp.path(), None).status.success());
    assert_eq!(
        stored(&app),
        stored(&whole),
        "the killed and re-run import stores what one run does"
    );
}

/// Events posted to the API while `svu-vakt import` (another process)
/// stores a large file are stored within a few seconds each: on SQLite the
/// import lets go of the write lock for a moment every two seconds
/// (`store::file_batches`), so the API's write does not wait out its busy
/// timeout behind the whole file.
fn the_api_stores_events_while_a_large_file_imports(b: Backend) {
    let n = 400_000;
    let text: String = sorted_events(n).lines().rev().map(|l| format!("{l}\n")).collect();
    let app = spawn_app(b);
    let (_dir, mut child) = import_until_a_batch_is_stored(&app, &text);
    for i in 0..4 {
        let line = format!(
            "{{\"id\":\"api{i}\",\"case\":\"API{i}\",\"type\":\"bedomning\",\"at\":\"2026-05-04T08:00:00+02:00\",\"unit\":\"AVD1\"}}"
        );
        let started = std::time::Instant::now();
        let reply = app.post_events(&line);
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "post {i} after {took:?}: {}", reply.body);
        assert!(took < std::time::Duration::from_secs(5), "post {i} waited {took:?}");
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the import was still storing while the API stored"
    );
    assert!(child.wait().unwrap().success());
    assert_eq!(app.event_count(), n as i64 + 4);
}

/// `svu-vakt bench` imports the demo's lines shuffled, and the plain-SQL
/// peer finds the very breaches the scan filed from them.
#[test]
fn bench_imports_the_demo_in_random_order_and_agrees_with_the_peer() {
    let out = bin().args(["bench", "--cases", "400", "--seed", "5"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("lines in a random order"), "{stderr}");
    assert!(stderr.contains("events, in random order"), "{stderr}");
}
