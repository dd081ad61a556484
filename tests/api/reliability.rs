//! Proof under faults (docs/RELIABILITY.md): `svu-vakt serve` killed with
//! SIGKILL at random points while events arrive, scans run and mail goes
//! out, restarted each time. The rounds come from `SVU_VAKT_FAULT_ROUNDS`
//! (3 in `cargo test`, 20 in `ops/reliability/run`); with
//! `SVU_VAKT_FAULT_REPORT=DIR` each test writes its counts to DIR for the
//! report.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use svu_vakt::store::schema::{outbox, scan_runs};
use svu_vakt::store::tokens::Role;
use svu_vakt::store::DbConn;

use crate::helpers::{bin, demo_ward, token, Backend, Child, TestApp, TestDb};
use crate::smtp::{free_port, SmtpServer};

crate::on_both!(serve_killed_at_random_points_loses_and_doubles_nothing);

/// The deviations of `all` imported into a fresh database and scanned once,
/// with no faults: what a faulty run must end up with.
pub(crate) fn reference(b: Backend, dir: &std::path::Path, all: &[String]) -> HashSet<String> {
    let clean = TestDb::new(b);
    let out = bin()
        .args(["migrate", "--database-url", &clean.url()])
        .output()
        .unwrap();
    assert!(out.status.success());
    units_into(&clean.url(), dir);
    let events = dir.join("alla.jsonl");
    std::fs::write(&events, all.concat()).unwrap();
    let out = bin()
        .args(["import", "--events"])
        .arg(&events)
        .args(["--database-url", &clean.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin().args(["scan", "--database-url", &clean.url()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    TestApp::attach(&clean.url())
        .deviations()
        .into_iter()
        .map(|d| d.fingerprint)
        .collect()
}

pub(crate) fn rounds() -> usize {
    std::env::var("SVU_VAKT_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// A small deterministic generator: the kill points follow from the seed,
/// which the report names.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Batches of 20 events: each a new case admitted three days ago whose
/// inskrivningsmeddelande never comes.
pub(crate) fn batches(ward: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|b| {
            (0..20)
                .map(|i| {
                    format!(
                        "{{\"id\":\"R{b}-{i}\",\"case\":\"R{b}-{}\",\"type\":\"inskrivning\",\"at\":\"{}\",\"unit\":\"{ward}\"}}\n",
                        i / 2,
                        (chrono::Utc::now() - chrono::Duration::days(3)).format("%Y-%m-%dT08:00:00+00:00")
                    )
                })
                .collect()
        })
        .collect()
}

fn post(base: &str, tok: &str, body: &str) -> bool {
    ureq::post(&format!("{base}/api/v1/events"))
        .set("Authorization", &format!("Bearer {tok}"))
        .set("Content-Type", "application/x-ndjson")
        .timeout(Duration::from_secs(10))
        .send_string(body)
        .is_ok_and(|r| r.status() == 200)
}

pub(crate) fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("{base}/readyz"))
        .timeout(Duration::from_secs(1))
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "serve did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn units_into(url: &str, dir: &std::path::Path) -> String {
    let units = dir.join("units.json");
    std::fs::write(&units, svu_vakt::demo::units_json()).unwrap();
    let out = bin()
        .args(["import", "--units"])
        .arg(&units)
        .args(["--database-url", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    demo_ward()
}

fn sent_rows(conn: &mut DbConn) -> i64 {
    outbox::table
        .filter(outbox::sent_at.is_not_null())
        .count()
        .get_result(conn)
        .unwrap()
}

fn serve_killed_at_random_points_loses_and_doubles_nothing(b: Backend) {
    let rounds = rounds();
    let seed: u64 = std::env::var("SVU_VAKT_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_124);
    let mut rng = Lcg(seed);
    let smtp = SmtpServer::start();
    let db = TestDb::new(b);
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    migrate(&url);
    let ward = units_into(&url, dir.path());
    let cfg = dir.path().join("svu-vakt.toml");
    std::fs::write(
        &cfg,
        "[scan]\nschedule = \"* * * * * *\"\ngrace_minutes = 0\n\
         [mail]\ndeliver_every_seconds = 1\nmax_age_days = 100000\nsmtp_timeout_seconds = 5\nclaim_seconds = 15\n\
         from = \"svu-vakt <svu-vakt@region.example.se>\"\ndefault_to = \"svu@region.example.se\"\n",
    )
    .unwrap();
    let app = TestApp::attach(&url);
    let tok = token(&app.pool, Role::Inlasning, None);
    let all = batches(&ward, 30 * (rounds + 1));
    let acknowledged = AtomicUsize::new(0);
    let serve = |port: u16| {
        Child(
            serve_cmd(&url, port, &dir.path().join(format!("serve-{port}.log")))
                .args(["--smtp-url", &smtp.url(), "--config"])
                .arg(&cfg)
                .spawn()
                .unwrap(),
        )
    };
    // Feeds batches in order, each until it is acknowledged, as a feed does.
    let feed = |base: &str, stop: &AtomicBool, limit: usize| {
        while !stop.load(Ordering::SeqCst) {
            let next = acknowledged.load(Ordering::SeqCst);
            if next >= limit {
                return;
            }
            if post(base, &tok, &all[next]) {
                acknowledged.fetch_add(1, Ordering::SeqCst);
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };

    let mut kills = Vec::new();
    for round in 0..rounds {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = serve(port);
        wait_ready(&base);
        let after = Duration::from_millis(200 + rng.below(2300));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| feed(&base, &stop, 30 * (round + 1)));
            std::thread::sleep(after);
            child.0.kill().unwrap();
            child.0.wait().unwrap();
            stop.store(true, Ordering::SeqCst);
        });
        kills.push(after.as_millis());
    }

    // The last start: the rest of the feed, then until the outbox is empty
    // and a scan has finished after the last batch.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let last = serve(port);
    wait_ready(&base);
    let stop = AtomicBool::new(false);
    feed(&base, &stop, all.len());
    let fed_at = svu_vakt::store::now();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut conn = app.conn();
        let scanned: i64 = scan_runs::table
            .filter(scan_runs::started_at.gt(fed_at))
            .filter(scan_runs::status.eq("klar"))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        let (unsent, sent) = (
            svu_vakt::mail::outbox::pending_count(&mut conn).unwrap(),
            sent_rows(&mut conn),
        );
        if scanned > 0 && unsent == 0 && sent > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not settle: {scanned} scans since the feed ended, {unsent} mails unsent, {sent} sent, runs {:?}",
            scan_runs::table
                .select((scan_runs::status, scan_runs::error_text))
                .load::<(String, Option<String>)>(&mut *conn)
                .unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(last);

    // The reference: the same events, one scan, no faults.
    let expected = reference(b, dir.path(), &all);

    let sent_events = all.len() * 20;
    let stored = app.event_count() as usize;
    let fingerprints: Vec<String> = app.deviations().into_iter().map(|d| d.fingerprint).collect();
    let distinct: HashSet<&String> = fingerprints.iter().collect();
    let messages = smtp.messages();
    let ids: HashSet<String> = messages.iter().map(|m| m.message_id()).collect();
    let sent = sent_rows(&mut app.conn()) as usize;
    let interrupted: i64 = scan_runs::table
        .filter(scan_runs::status.eq("avbruten"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();

    if let Ok(report) = std::env::var("SVU_VAKT_FAULT_REPORT") {
        let name = match b {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        };
        let kills: Vec<String> = kills.iter().map(|k| format!("{k}")).collect();
        let text = format!(
            "### kill -9 of serve, {name}\n\n\
             {rounds} kills (seed {seed}) after {} ms of each run, then a clean start.\n\n\
             | count | value |\n|---|---|\n\
             | events sent (acknowledged at last) | {sent_events} |\n\
             | events stored | {stored} |\n\
             | deviations filed | {} ({} distinct) |\n\
             | deviations of the same events scanned once without faults | {} |\n\
             | scans interrupted by a kill (marked `avbruten` by the next) | {interrupted} |\n\
             | mails marked sent in the outbox | {sent} |\n\
             | mails received by the SMTP server | {} |\n\
             | distinct Message-IDs received | {} |\n\
             | mails received twice (same Message-ID: sent, then killed before it was marked) | {} |\n\n",
            kills.join(", "),
            fingerprints.len(),
            distinct.len(),
            expected.len(),
            messages.len(),
            ids.len(),
            messages.len() - ids.len()
        );
        std::fs::create_dir_all(&report).unwrap();
        std::fs::write(std::path::Path::new(&report).join(format!("10-kill9-{name}.md")), text).unwrap();
    }

    assert_eq!(stored, sent_events, "every acknowledged event stored, once");
    assert_eq!(fingerprints.len(), distinct.len(), "no deviation filed twice");
    assert_eq!(
        distinct.into_iter().cloned().collect::<HashSet<String>>(),
        expected,
        "the deviations a scan without faults files"
    );
    assert_eq!(ids.len(), sent, "every mail marked sent was received");
    assert_eq!(ids.len(), expected.len(), "one mail per deviation");
    // A scan killed after some chunks left its day counts owed; a later
    // scan counted them again: they are the cases' judged obligations.
    let mut conn = app.conn();
    assert_eq!(
        svu_vakt::store::day_counts::stored(&mut conn).unwrap(),
        svu_vakt::store::day_counts::from_facts(&mut conn).unwrap(),
        "the day counts are those of the cases' facts"
    );
}

/// One POST of a batch: the status and the body.
pub(crate) fn post_answer(base: &str, tok: &str, body: &str) -> (u16, String) {
    match ureq::post(&format!("{base}/api/v1/events"))
        .set("Authorization", &format!("Bearer {tok}"))
        .set("Content-Type", "application/x-ndjson")
        .timeout(Duration::from_secs(30))
        .send_string(body)
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => (r.status(), r.into_string().unwrap_or_default()),
        Err(e) => panic!("no answer: {e}"),
    }
}

/// The SQLite file full (`database.sqlite_max_mb`, SQLite's page limit,
/// which fails a write as a full disk does): batches are refused whole with
/// a Swedish 503 while reads go on; a scan fails cleanly; restarted with
/// room, the refused batches are taken and the deviations are those of a
/// fault-free run.
#[test]
fn a_full_sqlite_file_refuses_whole_batches_and_recovers_with_room() {
    let b = Backend::Sqlite;
    let db = TestDb::new(b);
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    migrate(&url);
    let ward = units_into(&url, dir.path());
    let app = TestApp::attach(&url);
    let tok = token(&app.pool, Role::Inlasning, None);
    let admin = token(&app.pool, Role::Admin, None);
    let all = batches(&ward, 400);
    let serve = |port: u16, max_mb: &str| {
        Child(
            serve_cmd(&url, port, &dir.path().join(format!("serve-{port}.log")))
                .env("SVU_VAKT_SQLITE_MAX_MB", max_mb)
                .spawn()
                .unwrap(),
        )
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let full = serve(port, "2");
    wait_ready(&base);
    let mut taken = 0;
    let refusal = loop {
        assert!(taken < all.len(), "2 MiB never filled");
        let (status, body) = post_answer(&base, &tok, &all[taken]);
        if status != 200 {
            break (status, body);
        }
        taken += 1;
    };
    let log = std::fs::read_to_string(dir.path().join(format!("serve-{port}.log"))).unwrap_or_default();
    assert_eq!(refusal.0, 503, "{}\n{log}", refusal.1);
    assert!(refusal.1.contains("databasen är full"), "{}", refusal.1);
    assert!(taken > 0, "some batches fit first");
    // Nothing of the refused batch, everything of the acknowledged ones.
    assert_eq!(app.event_count() as usize, taken * 20);
    let partial: i64 = {
        use svu_vakt::store::schema::events;
        events::table
            .filter(events::id.like(format!("R{taken}-%")))
            .count()
            .get_result(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(partial, 0, "the refused batch left nothing behind");
    // Reads go on while it is full.
    let units = ureq::get(&format!("{base}/api/v1/units"))
        .set("Authorization", &format!("Bearer {admin}"))
        .call()
        .unwrap();
    assert_eq!(units.status(), 200);
    // A scan fails cleanly, or fits: either way it says so and stores no half.
    let scan = match ureq::post(&format!("{base}/api/v1/scans"))
        .set("Authorization", &format!("Bearer {admin}"))
        .set("Content-Type", "application/json")
        .send_string("{}")
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => (r.status(), r.into_string().unwrap_or_default()),
        Err(e) => panic!("no answer: {e}"),
    };
    // A 503 that names the full file, never the 500 of an error it hid
    // (a batch insert's own savepoint once answered "no such savepoint").
    if !(scan.0 == 200 || (scan.0 == 503 && scan.1.contains("databasen är full"))) {
        let log = std::fs::read_to_string(dir.path().join(format!("serve-{port}.log"))).unwrap_or_default();
        panic!("a scan in a full file: {scan:?}\n{log}");
    }
    let full_scan_status = scan.0;
    drop(full);

    // Room again: the same service, restarted with no limit.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _roomy = serve(port, "0");
    wait_ready(&base);
    for batch in &all[taken..] {
        let (status, body) = post_answer(&base, &tok, batch);
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(app.event_count() as usize, all.len() * 20, "each event once");
    let scan = ureq::post(&format!("{base}/api/v1/scans"))
        .set("Authorization", &format!("Bearer {admin}"))
        .set("Content-Type", "application/json")
        .send_string("{}")
        .unwrap();
    assert_eq!(scan.status(), 200);
    let fingerprints: Vec<String> = app.deviations().into_iter().map(|d| d.fingerprint).collect();
    let distinct: HashSet<&String> = fingerprints.iter().collect();
    assert_eq!(distinct.len(), fingerprints.len(), "no deviation twice");
    let expected = reference(b, dir.path(), &all);
    let got: HashSet<String> = fingerprints.into_iter().collect();
    assert_eq!(got, expected, "the same deviations as a fault-free run");

    if let Ok(report) = std::env::var("SVU_VAKT_FAULT_REPORT") {
        let text = format!(
            "### The SQLite file full, SQLite\n\n\
             `database.sqlite_max_mb = 2` (SQLite's page limit), batches of 20 events until one is refused; \
             then restarted with no limit and the rest sent.\n\n\
             | count | value |\n|---|---|\n\
             | batches acknowledged before the file was full | {taken} |\n\
             | answer to the next batch | {} `databasen är full …` |\n\
             | events of the refused batch stored | {partial} |\n\
             | scan while full | HTTP {full_scan_status} |\n\
             | events sent in all / stored | {} / {} |\n\
             | deviations filed / of a fault-free run | {} / {} |\n\n",
            refusal.0,
            all.len() * 20,
            app.event_count(),
            got.len(),
            expected.len()
        );
        std::fs::write(std::path::Path::new(&report).join("sqlite-full.md"), text).unwrap();
    }
}

/// `svu-vakt serve` on `port` against `url`, its log written to `log`; the
/// caller adds its flags and environment and spawns it.
pub(crate) fn serve_cmd(url: &str, port: u16, log: &std::path::Path) -> std::process::Command {
    let mut cmd = bin();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", url])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

/// Brings the database at `url` to the current schema, as `svu-vakt migrate`.
pub(crate) fn migrate(url: &str) {
    let out = bin().args(["migrate", "--database-url", url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
