//! The real application on port 0 with a fresh database per test: a temp
//! SQLite file, or a new PostgreSQL database when `SVU_VAKT_TEST_PG_URL`
//! names a server (`.ci/run` sets it). Without it the PostgreSQL variants
//! print that they are skipped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use diesel::prelude::*;
use diesel::sql_types::Text;
use svu_vakt::config::{Config, LogFormat};
use svu_vakt::domain::Secret;
use svu_vakt::store::tokens::{self, Role};
use svu_vakt::store::{DbConn, DbUrl, Pool};
use svu_vakt::Application;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite_<name>` and `postgres_<name>` tests from `fn name(Backend)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $( #[test] fn $name() { super::$name($crate::helpers::Backend::Sqlite) } )*
        }
        pub mod postgres {
            $( #[test] fn $name() {
                if $crate::helpers::pg_admin_url().is_none() {
                    // Straight to stderr: the test harness does not capture this, so it shows.
                    use std::io::Write as _;
                    let _ = writeln!(std::io::stderr(), "postgres::{} skipped: SVU_VAKT_TEST_PG_URL is not set", stringify!($name));
                    return;
                }
                super::$name($crate::helpers::Backend::Postgres)
            } )*
        }
    };
}

pub const TEST_KEY: &str = "test-patient-key-0123456789abcdef0123456789";

pub fn pg_admin_url() -> Option<String> {
    std::env::var("SVU_VAKT_TEST_PG_URL").ok().filter(|s| !s.is_empty())
}

pub enum TestDb {
    /// Another instance's database: not dropped by this handle.
    Shared {
        url: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    Postgres {
        admin: String,
        name: String,
    },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin, name } = self {
            if let Ok(mut c) = PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c);
            }
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("svu.db");
                TestDb::Sqlite { _dir: dir, path }
            }
            Backend::Postgres => {
                let admin = pg_admin_url().expect("SVU_VAKT_TEST_PG_URL");
                let name = format!(
                    "svu_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    chrono::Utc::now().timestamp_subsec_nanos()
                );
                let mut c = PgConnection::establish(&admin).unwrap();
                // Concurrent CREATE DATABASE can trip over template1 being copied: retry.
                let mut attempt = 0;
                while let Err(e) = diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut c) {
                    attempt += 1;
                    assert!(attempt < 10, "cannot create test database {name}: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(200 * attempt));
                }
                TestDb::Postgres { admin, name }
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            TestDb::Shared { url } => url.clone(),
            TestDb::Postgres { admin, name } => {
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
                format!("{base}/{name}")
            }
        }
    }

    /// Every byte the database holds, as text: the SQLite file and its WAL,
    /// or every row of every table of the PostgreSQL database.
    pub fn dump(&self) -> String {
        match self {
            TestDb::Sqlite { path, .. } => {
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let p = format!("{}{suffix}", path.display());
                    if let Ok(bytes) = std::fs::read(&p) {
                        all.extend(bytes);
                    }
                }
                String::from_utf8_lossy(&all).into_owned()
            }
            TestDb::Shared { .. } => String::new(),
            TestDb::Postgres { .. } => {
                #[derive(QueryableByName)]
                struct Row {
                    #[diesel(sql_type = Text)]
                    t: String,
                }
                let mut c = PgConnection::establish(&self.url()).unwrap();
                let tables: Vec<Row> =
                    diesel::sql_query("SELECT tablename::text AS t FROM pg_tables WHERE schemaname = 'public'")
                        .load(&mut c)
                        .unwrap();
                let mut out = String::new();
                for table in tables {
                    let rows: Vec<Row> = diesel::sql_query(format!(
                        "SELECT COALESCE(string_agg(x::text, E'\\n'), '') AS t FROM \"{}\" x",
                        table.t
                    ))
                    .load(&mut c)
                    .unwrap();
                    out.push_str(&rows[0].t);
                }
                out
            }
        }
    }
}

pub fn config(db: &TestDb) -> Config {
    Config {
        database_url: DbUrl::parse(&db.url()).unwrap(),
        database_url_text: db.url(),
        pool_size: 4,
        sqlite_max_mb: 0,
        listen: "127.0.0.1:0".into(),
        max_body_bytes: 64 * 1024 * 1024,
        workers: 1,
        log_format: LogFormat::Text,
        log_level: "warn".into(),
        patient_key: Secret::new(TEST_KEY.as_bytes().to_vec()),
        rules: Default::default(),
        scan: svu_vakt::config::ScanConfig::parse("", 60, 14).unwrap(),
        mail: svu_vakt::mail::MailConfig {
            smtp_url: svu_vakt::mail::SmtpUrl(String::new()),
            from: "svu-vakt <svu-vakt@region.example.se>".into(),
            default_to: "svu-processagare@region.example.se".into(),
            mode: svu_vakt::mail::MailMode::PerAvvikelse,
            base_url: "https://svu-vakt.example.se".into(),
            templates_dir: None,
            deliver_every_seconds: 3600,
            smtp_timeout_seconds: 5,
            webhook_timeout_seconds: 5,
            claim_seconds: 300,
            max_age_days: 14,
            routes: Vec::new(),
        },
        session: Default::default(),
        handling: Default::default(),
        followup: Default::default(),
        feed: None,
        ingest: Default::default(),
        oidc: None,
    }
}

pub struct TestApp {
    pub base: String,
    pub pool: Pool,
    pub admin: String,
    pub db: TestDb,
    handle: Option<actix_web::dev::ServerHandle>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stopping is asynchronous; the server thread ends on its own.
        if let Some(h) = &self.handle {
            drop(h.stop(false));
        }
    }
}

pub fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {})
}

/// The application with a changed configuration (SMTP, routes, mail mode).
pub fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new(backend);
    let mut cfg = config(&db);
    tweak(&mut cfg);
    spawn_on(db, cfg)
}

/// A second instance on the same database.
pub fn spawn_on(db: TestDb, cfg: Config) -> TestApp {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(&cfg).expect("application builds");
            tx.send((app.port(), app.state().pool.clone(), app.handle())).unwrap();
            app.run().await
        })
    });
    let (port, pool, handle) = rx.recv().expect("server started");
    let admin = token(&pool, Role::Admin, None);
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        pool,
        admin,
        db,
        handle: Some(handle),
    }
}

pub fn token(pool: &Pool, role: Role, unit: Option<&str>) -> String {
    let mut conn = pool.get().unwrap();
    tokens::create(&mut conn, role, unit, Some("test")).unwrap()
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl TestApp {
    /// A handle on a database that other processes serve: for reading it
    /// (no server of its own runs here).
    pub fn attach(url: &str) -> TestApp {
        let db = TestDb::Shared { url: url.to_string() };
        let pool = svu_vakt::store::pool(&DbUrl::parse(url).unwrap(), 2).unwrap();
        TestApp {
            base: String::new(),
            pool,
            admin: String::new(),
            db,
            handle: None,
        }
    }

    pub fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<(&str, &str)>) -> Reply {
        let mut req = ureq::request(method, &format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let result = match body {
            Some((content_type, text)) => req.set("Content-Type", content_type).send_string(text),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = resp.status();
        Reply {
            status,
            body: resp.into_string().unwrap(),
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, Some(&self.admin.clone()), None)
    }

    pub fn post_events(&self, body: &str) -> Reply {
        self.request(
            "POST",
            "/api/v1/events",
            Some(&self.admin.clone()),
            Some(("application/x-ndjson", body)),
        )
    }

    /// `POST /api/v1/scans` as of `as_of`; the reply holds the scan and mail summaries.
    pub fn scan(&self, as_of: &str) -> Reply {
        let body = serde_json::json!({"as_of": as_of}).to_string();
        self.request(
            "POST",
            "/api/v1/scans",
            Some(&self.admin.clone()),
            Some(("application/json", &body)),
        )
    }

    pub fn deviations(&self) -> Vec<svu_vakt::store::deviations::DeviationRow> {
        svu_vakt::store::deviations::all(&mut self.conn()).unwrap()
    }

    pub fn outbox(&self) -> Vec<svu_vakt::mail::outbox::MailRow> {
        svu_vakt::mail::outbox::all(&mut self.conn()).unwrap()
    }

    pub fn post_units(&self, body: &str) -> Reply {
        self.request(
            "POST",
            "/api/v1/units",
            Some(&self.admin.clone()),
            Some(("application/json", body)),
        )
    }

    pub fn conn(&self) -> r2d2::PooledConnection<svu_vakt::store::Manager> {
        self.pool.get().unwrap()
    }

    pub fn event_count(&self) -> i64 {
        let mut c = self.conn();
        svu_vakt::store::events::count(&mut c).unwrap()
    }

    pub fn batch_count(&self) -> i64 {
        use svu_vakt::store::schema::ingest_batches;
        let mut c = self.conn();
        let conn: &mut DbConn = &mut c;
        ingest_batches::table.count().get_result(conn).unwrap()
    }
}

/// Units of a small county: a ward, a vårdcentral, a kommun with hemtjänst.
pub const UNITS: &str = r#"[
 {"id":"AVD1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Östergötland","email":"avd1@example.se"},
 {"id":"VC1","name":"Vårdcentralen Centrum","kind":"oppenvard","huvudman":"Region Östergötland"},
 {"id":"K1","name":"Linköpings kommun","kind":"kommun","huvudman":"Linköpings kommun"},
 {"id":"K1-HT","name":"Hemtjänst Nord","kind":"kommun","huvudman":"Linköpings kommun","parent":"K1","storhelg":false}
]"#;

/// A case's events out of time order; 19900101-0017 is a valid personnummer.
pub const CASE_EVENTS: &str = r#"{"id":"e3","case":"C1","type":"kvittens","at":"2026-05-04T13:00:00+02:00","unit":"K1-HT","ref":"e2"}
{"id":"e1","case":"C1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","patient":"19900101-0017"}
{"id":"e2","case":"C1","type":"inskrivningsmeddelande","at":"2026-05-04T11:42:00+02:00","unit":"AVD1","to":["K1-HT","VC1"]}
{"id":"e4","case":"C1","type":"behov_av_sip","at":"2026-05-05T09:00:00+02:00","unit":"VC1","value":true}
{"id":"e5","case":"C1","type":"sparfarg","at":"2026-05-05T10:00:00Z","unit":"AVD1","value":"gul"}
"#;

/// The built `svu-vakt` binary, with the test patient key.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_svu-vakt"));
    c.env("SVU_VAKT_PATIENT_KEY", TEST_KEY)
        .env("SVU_VAKT_LOG_LEVEL", "error");
    c
}

/// A child process killed when the test ends, however it ends.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The id of the demo county's first ward (slutenvård).
pub fn demo_ward() -> String {
    let units: serde_json::Value = serde_json::from_str(&svu_vakt::demo::units_json()).unwrap();
    units
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "slutenvard")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `svu-vakt demo --seed 3 --cases N` into the database at `url`.
pub fn demo_into(url: &str, cases: &str) {
    demo_seed_into(url, "3", cases);
}

pub fn demo_seed_into(url: &str, seed: &str, cases: &str) {
    let out = bin()
        .args(["demo", "--seed", seed, "--cases", cases, "--database-url", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Undoes migrations, the latest first, through `version` (the database
/// as it was before that migration); the versions undone, in order.
pub fn revert_through(conn: &mut svu_vakt::store::DbConn, b: Backend, version: &str) -> Vec<String> {
    use diesel_migrations::MigrationHarness;
    let migrations = || match b {
        Backend::Sqlite => svu_vakt::store::SQLITE_MIGRATIONS,
        Backend::Postgres => svu_vakt::store::PG_MIGRATIONS,
    };
    let mut undone = Vec::new();
    while undone.last().map(String::as_str) != Some(version) {
        undone.push(conn.revert_last_migration(migrations()).unwrap().to_string());
        assert!(undone.len() < 20, "migration {version} was never reached: {undone:?}");
    }
    undone
}

/// A database of its own on PostgreSQL, or `None` (said on stderr, which
/// the harness shows) where the PostgreSQL tests are off.
pub fn postgres(test: &str) -> Option<TestDb> {
    if pg_admin_url().is_none() {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{test} skipped: SVU_VAKT_TEST_PG_URL is not set");
        return None;
    }
    Some(TestDb::new(Backend::Postgres))
}

#[derive(diesel::QueryableByName, Debug, Clone, Copy)]
pub struct Updates {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub updated: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub in_place: i64,
}

/// The updates of `table` counted so far (PostgreSQL's statistics), and
/// how many of them in place (HOT), once at least `least` and the same
/// for half a second (the counts of a backend arrive when it ends).
pub fn settled_updates(c: &mut diesel::PgConnection, table: &str, least: i64) -> Updates {
    use diesel::RunQueryDsl;
    let counted = diesel::sql_query(
        "SELECT n_tup_upd AS updated, n_tup_hot_upd AS in_place FROM pg_stat_user_tables WHERE relname = $1",
    )
    .bind::<diesel::sql_types::Text, _>(table.to_string());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut last: Updates = counted.clone().get_result(c).unwrap();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now: Updates = counted.clone().get_result(c).unwrap();
        let settled = now.updated == last.updated && now.updated >= least;
        if settled || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// A line of `EXPLAIN`'s output.
#[derive(diesel::QueryableByName)]
pub struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    pub line: String,
}

/// `svu-vakt ARGS --database-url URL` as a process of its own; it must
/// succeed (its stderr is the failure's message).
pub fn run_on(url: &str, args: &[&str]) {
    let out = bin().args(args).args(["--database-url", url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
