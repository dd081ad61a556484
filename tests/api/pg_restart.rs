//! PostgreSQL restarted under the service (docs/RELIABILITY.md): a private
//! cluster of its own (initdb on a free port), so that restarting it does
//! not touch the shared server the other tests use. Runs where the
//! PostgreSQL tests run (`SVU_VAKT_TEST_PG_URL`), with the server binaries
//! of the installed PostgreSQL.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use svu_vakt::store::schema::{events, scan_runs};
use svu_vakt::store::tokens::Role;

use crate::helpers::{pg_admin_url, token, Backend, Child, TestApp};
use crate::reliability::{batches, migrate, post_answer, reference, rounds, serve_cmd, units_into, wait_ready, Lcg};
use crate::smtp::free_port;

/// A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1
/// at a port of its own with trust authentication, stopped when dropped.
/// As root the server runs as `postgres` (it refuses to run as root).
struct PrivatePg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("the PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let ids = Command::new("id").args(["-u", "postgres"]).output().unwrap();
            let uid: u32 = String::from_utf8_lossy(&ids.stdout)
                .trim()
                .parse()
                .expect("a postgres user");
            let ids = Command::new("id").args(["-g", "postgres"]).output().unwrap();
            let gid: u32 = String::from_utf8_lossy(&ids.stdout).trim().parse().unwrap();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let pg = PrivatePg {
            dir,
            bin,
            port: fixed_port(),
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        pg.ctl("start");
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The server tool `tool`, run as `postgres` when this is root.
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl start|restart|stop`, waiting until it is done. Restart and
    /// stop use the fast mode: sessions are ended, transactions rolled back.
    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=60 -c shared_buffers=32MB",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let data = self.data();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-t", "60", "-m", "fast"];
        if action != "stop" {
            args.extend(["-o", &options]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.as_str(), "-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// A free port below the ephemeral range (32768 and up on Linux), so that
/// no outgoing connection takes it as its source port while the server is
/// down for a restart and the server can always bind it again.
fn fixed_port() -> u16 {
    let start = 20_000 + (std::process::id() % 5_000) as u16;
    (start..start + 2_000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 32768")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn scan(base: &str, admin: &str) -> (u16, String) {
    match ureq::post(&format!("{base}/api/v1/scans"))
        .set("Authorization", &format!("Bearer {admin}"))
        .set("Content-Type", "application/json")
        .timeout(Duration::from_secs(120))
        .send_string("{}")
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => (r.status(), r.into_string().unwrap_or_default()),
        Err(e) => panic!("the scan got no answer: {e}"),
    }
}

fn stored_of(app: &TestApp, batch: usize) -> i64 {
    events::table
        .filter(events::id.like(format!("R{batch}-%")))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

/// PostgreSQL restarted (fast mode: every session ended, every open
/// transaction rolled back) while four feeders post batches and while
/// scans run, `rounds()` times each, at points drawn from a seed. Every
/// answer comes, and is 200 or 503 "databasen svarar inte"; every batch is stored whole or not at
/// all; sent again after the restart, each event is stored once; the next
/// scan completes and files what a fault-free run files, each deviation
/// once, and no run is left marked running.
#[test]
fn postgresql_restarted_during_ingest_and_scan_fails_cleanly_and_the_next_completes() {
    if pg_admin_url().is_none() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "postgresql_restarted_during_ingest_and_scan… skipped: SVU_VAKT_TEST_PG_URL is not set"
        );
        return;
    }
    let pg = PrivatePg::start();
    let mut admin_conn = PgConnection::establish(&pg.url("postgres")).unwrap();
    diesel::sql_query("CREATE DATABASE svu")
        .execute(&mut admin_conn)
        .unwrap();
    drop(admin_conn);
    let url = pg.url("svu");
    let dir = tempfile::tempdir().unwrap();
    migrate(&url);
    let ward = units_into(&url, dir.path());
    let app = TestApp::attach(&url);
    let tok = token(&app.pool, Role::Inlasning, None);
    let admin = token(&app.pool, Role::Admin, None);
    let rounds = rounds();
    let mut rng = Lcg(20_261_124);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("serve.log");
    let _serve = Child(serve_cmd(&url, port, &log).spawn().unwrap());
    wait_ready(&base);
    let serve_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // Ingest: four feeders post batches one after another, each once;
    // PostgreSQL is restarted under them.
    let all = batches(&ward, 80 * (rounds + 1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let answers: Mutex<Vec<(usize, u16, String)>> = Mutex::new(Vec::new());
    let mut restart_points = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let b = next.fetch_add(1, Ordering::SeqCst);
                    if b >= all.len() {
                        return;
                    }
                    let (status, body) = post_answer(&base, &tok, &all[b]);
                    answers.lock().unwrap().push((b, status, body));
                }
            });
        }
        for _ in 0..rounds {
            let after = 100 + rng.below(600);
            std::thread::sleep(Duration::from_millis(after));
            pg.ctl("restart");
            restart_points.push(after);
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
    });
    let answers = answers.into_inner().unwrap();
    let refused: Vec<&(usize, u16, String)> = answers.iter().filter(|a| a.1 != 200).collect();
    for (b, status, body) in &refused {
        assert_eq!(*status, 503, "batch {b}: {body}\n{}", serve_log());
        assert!(body.contains("databasen svarar inte"), "batch {b}: {body}");
    }
    // Whole or nothing, whatever the answer was (a commit whose answer the
    // restart cut off is stored whole and answered 5xx).
    let mut committed_though_refused = 0;
    for (b, status, _) in &answers {
        let stored = stored_of(&app, *b);
        if *status == 200 {
            assert_eq!(stored, 20, "batch {b} acknowledged");
        } else {
            assert!(stored == 0 || stored == 20, "batch {b} half stored: {stored} of 20");
            committed_though_refused += usize::from(stored == 20);
        }
    }
    // The feed sends the refused batches again, and the rest.
    let posted: HashSet<usize> = answers.iter().map(|a| a.0).collect();
    let again: Vec<usize> = refused
        .iter()
        .map(|a| a.0)
        .chain((0..all.len()).filter(|b| !posted.contains(b)))
        .collect();
    for b in &again {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = post_answer(&base, &tok, &all[*b]);
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "batch {b} never taken: {status} {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(app.event_count() as usize, all.len() * 20, "each event once");

    // Scans: each started, PostgreSQL restarted under it.
    let mut scans = Vec::new();
    for _ in 0..rounds {
        let after = 20 + rng.below(400);
        let answer = std::thread::scope(|s| {
            let running = s.spawn(|| scan(&base, &admin));
            std::thread::sleep(Duration::from_millis(after));
            pg.ctl("restart");
            running.join().unwrap()
        });
        assert!(
            answer.0 == 200 || (answer.0 == 503 && answer.1.contains("databasen svarar inte")),
            "a scan under a restart: {answer:?}\n{}",
            serve_log()
        );
        scans.push((after, answer.0));
    }
    // The next scan, with the server up, completes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let answer = scan(&base, &admin);
        if answer.0 == 200 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(last.0, 200, "the scan after the restarts: {}\n{}", last.1, serve_log());
    let runs: Vec<(String, Option<String>)> = scan_runs::table
        .select((scan_runs::status, scan_runs::error_text))
        .order(scan_runs::id)
        .load(&mut *app.conn())
        .unwrap();
    assert!(
        runs.iter().all(|r| r.0 != "pagar"),
        "no run left marked running: {runs:?}"
    );
    let fingerprints: Vec<String> = app.deviations().into_iter().map(|d| d.fingerprint).collect();
    let distinct: HashSet<String> = fingerprints.iter().cloned().collect();
    assert_eq!(distinct.len(), fingerprints.len(), "no deviation filed twice");
    let expected = reference(Backend::Sqlite, dir.path(), &all);
    assert_eq!(distinct, expected, "the deviations of a fault-free run");

    if let Ok(report) = std::env::var("SVU_VAKT_FAULT_REPORT") {
        let interrupted = scans.iter().filter(|s| s.1 != 200).count();
        let statuses: HashSet<u16> = refused.iter().map(|a| a.1).collect();
        let marked: Vec<&String> = runs.iter().map(|r| &r.0).collect();
        let text = format!(
            "### PostgreSQL restarted during ingest and scan\n\n\
             A private PostgreSQL cluster restarted (`pg_ctl restart -m fast`) {rounds} times under four \
             feeders (after {restart_points:?} ms), then {rounds} times under a running scan \
             (after {:?} ms of it).\n\n\
             | count | value |\n|---|---|\n\
             | batches posted during the restarts | {} |\n\
             | answered 200 / refused (statuses {statuses:?}) | {} / {} |\n\
             | refused batches found stored whole (commit done, answer cut off) | {committed_though_refused} |\n\
             | batches stored in part | 0 |\n\
             | events sent in all / stored after the refused were sent again | {} / {} |\n\
             | scans under a restart: completed / failed with 503 | {} / {interrupted} |\n\
             | scan runs as marked at the end | {marked:?} |\n\
             | deviations filed / of a fault-free run | {} / {} |\n\n",
            scans.iter().map(|s| s.0).collect::<Vec<_>>(),
            answers.len(),
            answers.len() - refused.len(),
            refused.len(),
            all.len() * 20,
            app.event_count(),
            scans.len() - interrupted,
            fingerprints.len(),
            expected.len()
        );
        std::fs::create_dir_all(&report).unwrap();
        std::fs::write(Path::new(&report).join("pg-restart.md"), text).unwrap();
    }
}
