//! Storage on SQLite or PostgreSQL through one codebase
//! (`diesel::MultiConnection`). The backend is picked from the URL scheme by
//! [`DbUrl`], never by trial. Backend-specific SQL (batch inserts, later
//! upserts, `SKIP LOCKED`, advisory locks) lives only in [`backend`].

pub mod backend;
pub mod backup;
pub mod bulk;
mod cached;
pub mod candidates;
pub mod cases;
pub mod copy;
pub mod day_counts;
pub mod deviations;
pub mod event_rows;
pub mod events;
pub mod feed;
pub mod file_batches;
pub mod followup;
mod loaded;
pub mod oidc;
pub mod outbox;
pub mod packed;
pub mod peer;
pub mod reports;
pub mod scans;
pub mod schema;
pub mod staffing;
pub mod stamp;
mod states;
pub mod timelines;
pub mod tokens;
pub mod unit_days;
pub mod units;
pub mod unknown_logins;
pub mod users;

use std::path::PathBuf;

use chrono::{NaiveDateTime, Timelike, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// A database location, parsed once from the configured URL. Its `Debug`
/// hides the password.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbUrl {
    /// `sqlite://relative/path`, `sqlite:///absolute/path`, or `postgres://…`
    /// (`postgresql://` too). Anything else is refused.
    pub fn parse(url: &str) -> anyhow::Result<DbUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            anyhow::ensure!(!path.is_empty(), "databas-URL:en `sqlite://` saknar sökväg till en fil");
            anyhow::ensure!(
                !path.contains(":memory:"),
                "en SQLite-databas i minnet kan inte delas av en pool; ange en fil"
            );
            return Ok(DbUrl::Sqlite(PathBuf::from(path)));
        }
        anyhow::bail!(
            "databas-URL:en ska börja med sqlite:// eller postgres:// (fick `{}`)",
            redact_url(url)
        )
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DbUrl::Postgres(_))
    }
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbUrl::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            DbUrl::Postgres(u) => write!(f, "Postgres({})", redact_url(u)),
        }
    }
}

/// A URL fit for a log line: the password, if any, replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error(transparent)]
    Connect(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("kan inte skapa databasens katalog: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens connections for r2d2 and sets SQLite up on each one.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DbUrl,
    /// SQLite: the largest the file may grow (`database.sqlite_max_mb`),
    /// set on each connection as `max_page_count`.
    sqlite_max_bytes: Option<u64>,
}

impl Manager {
    pub fn new(url: DbUrl) -> Manager {
        Manager {
            url,
            sqlite_max_bytes: None,
        }
    }
}

#[derive(diesel::QueryableByName)]
struct PageSize {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    page_size: i64,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = ConnError;

    fn connect(&self) -> Result<DbConn, ConnError> {
        match &self.url {
            DbUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url)?;
                // Plan each statement with its parameters and the table as it
                // is now: a cached generic plan made while `events` was empty
                // (a new installation's first import) scans the whole table
                // for every id lookup ever after.
                conn.batch_execute("SET plan_cache_mode = force_custom_plan")?;
                Ok(DbConn::Pg(conn))
            }
            DbUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                // WAL: readers never block the writer. synchronous = FULL: an
                // acknowledged event survives a crash of the machine, not only
                // of the process (SPEC §9); one fsync per commit, and commits
                // are whole batches and chunks. A 16 MB page cache per
                // connection and temporary tables in memory suit scans.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 15000; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
                     PRAGMA cache_size = -16000; PRAGMA temp_store = MEMORY;",
                )?;
                if let Some(max) = self.sqlite_max_bytes {
                    // A write past it fails with SQLITE_FULL and its
                    // transaction rolls back, as on a full disk.
                    let page: PageSize =
                        diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA page_size"), &mut conn)?;
                    let pages = (max / page.page_size.max(512) as u64).max(1);
                    conn.batch_execute(&format!("PRAGMA max_page_count = {pages};"))?;
                }
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ConnError> {
        Ok(conn.batch_execute("SELECT 1")?)
    }

    /// A connection whose transaction state is broken (a rollback that
    /// failed) is dropped, never handed out inside a transaction.
    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::connection::TransactionManager;
        <DbConn as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

/// Builds the pool. With `connect_timeout` the first connection is awaited,
/// so a wrong URL stops the start instead of the first request.
pub fn pool(url: &DbUrl, size: u32) -> anyhow::Result<Pool> {
    pool_limited(url, size, None)
}

/// [`pool`], with SQLite's file limited to `sqlite_max_bytes`.
pub fn pool_limited(url: &DbUrl, size: u32, sqlite_max_bytes: Option<u64>) -> anyhow::Result<Pool> {
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(std::time::Duration::from_secs(15))
        .build(Manager {
            url: url.clone(),
            sqlite_max_bytes,
        })?;
    Ok(pool)
}

/// Whether a database error says the database or its disk is full: SQLite's
/// SQLITE_FULL (a full disk or `database.sqlite_max_mb`), PostgreSQL's
/// disk_full (53100) and out of space in a tablespace.
pub fn is_full(e: &dyn std::fmt::Display) -> bool {
    let text = format!("{e:#}");
    text.contains("database or disk is full") || text.contains("No space left on device") || text.contains("disk full")
}

/// What PostgreSQL and libpq say when the server went away or is going
/// down or coming up, read from the database error's own message only.
const UNREACHABLE_SIGNS: [&str; 9] = [
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "no connection to the server",
    "could not receive data from server",
    "SSL SYSCALL error",
    "SSL connection has been closed unexpectedly",
];

/// Whether a diesel error says the connection to the server was lost
/// (PostgreSQL restarted, its sessions ended): the statement's transaction
/// was rolled back and the same request can be sent again.
pub fn is_unreachable_db(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => true,
        Error::DatabaseError(_, info) => UNREACHABLE_SIGNS.iter().any(|s| info.message().contains(s)),
        _ => false,
    }
}

/// [`is_unreachable_db`] for an error with context: true when one of its
/// causes is such a diesel error, a connection that could not be made, or
/// a pool that had none to give. Context text (which may hold ids) is
/// never read.
pub fn is_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<diesel::result::Error>().is_some_and(is_unreachable_db)
            || c.downcast_ref::<diesel::ConnectionError>().is_some()
            || c.downcast_ref::<r2d2::Error>().is_some()
    })
}

/// Runs every pending migration of the connection's backend.
///
/// On PostgreSQL the applied versions are read first, and with none
/// pending nothing more is done: the service's role, which may not create
/// in the schema (ops/postgres/grants.sql), starts without the migration
/// harness's `CREATE TABLE IF NOT EXISTS`.
pub fn migrate(conn: &mut DbConn) -> anyhow::Result<Vec<String>> {
    let names = |v: Vec<diesel::migration::MigrationVersion<'_>>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    let applied = match conn {
        DbConn::Sqlite(c) => {
            let applied = c.run_pending_migrations(SQLITE_MIGRATIONS).map(names);
            if applied.is_err() {
                // A migration that runs its own transaction with foreign
                // keys off (metadata.toml) and stops half-way leaves both:
                // its changes are rolled back, the connection as it was.
                let _ = c.batch_execute("ROLLBACK");
                let _ = c.batch_execute("PRAGMA foreign_keys = ON");
            }
            applied
        }
        DbConn::Pg(c) => {
            if pg_pending(c)? == 0 {
                return Ok(Vec::new());
            }
            c.run_pending_migrations(PG_MIGRATIONS).map(names)
        }
    }
    .map_err(|e| {
        let e = e.to_string();
        if e.contains("permission denied") {
            anyhow::anyhow!(
                "migreringar väntar men rollen får inte ändra schemat ({e}): kör `svu-vakt migrate` som databasens ägare (ops/postgres/setup.sql)"
            )
        } else {
            anyhow::anyhow!("migreringen misslyckades: {e}")
        }
    })?;
    if applied.iter().any(|v| v == UNIT_DAYS) {
        let n = unit_days::rebuild(conn, None)?;
        if n > 0 {
            tracing::info!("enhetsdagregistret byggt av de sparade händelserna: {n} enhetsdagar");
        }
    }
    if applied.iter().any(|v| v == CASE_TIMELINES) {
        let n = timelines::rebuild_all(conn)?;
        if n > 0 {
            tracing::info!("ärendenas packade tidslinjer byggda av de sparade händelserna: {n} ärenden");
        }
    }
    // The scrubbed CSV rows' old pages may still sit in the WAL: written
    // into the file (where secure_delete zeroed the old cells) and dropped.
    if let (DbConn::Sqlite(c), true) = (&mut *conn, applied.iter().any(|v| v == SCRUB_CSV_ROWS)) {
        checkpoint_truncate(c)?;
    }
    Ok(applied)
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` until no reader holds it back (a few
/// tries), so no old page stays in the WAL; said in the log when it could not.
fn checkpoint_truncate(c: &mut SqliteConnection) -> anyhow::Result<()> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Checkpoint {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy: i32,
    }
    for attempt in 0..20 {
        let r: Vec<Checkpoint> = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").load(c)?;
        if r.first().is_some_and(|r| r.busy == 0) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100 * (attempt + 1)));
    }
    tracing::warn!("WAL-filen kunde inte tömmas efter migreringen: en annan process läser databasen; gamla sidor ligger kvar i WAL-filen till nästa kontrollpunkt");
    Ok(())
}

/// The migration that rewrites CSV rows kept whole before (docs/import.md).
const SCRUB_CSV_ROWS: &str = "20261202000014";
/// The migration that made the unit-day register, filled when it runs.
const UNIT_DAYS: &str = "20261203000018";
const CASE_TIMELINES: &str = "20261204000019";

/// PostgreSQL migrations this binary has that the database has not run
/// (all of them in a database never migrated), read without writing.
fn pg_pending(c: &mut PgConnection) -> anyhow::Result<usize> {
    use diesel::migration::MigrationSource;
    use diesel::sql_types::{Nullable, Text};
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = Nullable<Text>)]
        v: Option<String>,
    }
    let ours = MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("migreringen misslyckades: {e}"))?;
    let exists: Vec<Version> =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations')::text AS v").load(c)?;
    if exists.first().and_then(|r| r.v.as_ref()).is_none() {
        return Ok(ours.len());
    }
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version AS v FROM __diesel_schema_migrations")
            .load::<Version>(c)?
            .into_iter()
            .filter_map(|r| r.v)
            .collect();
    Ok(ours
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .count())
}

/// Errors after which the same transaction may simply be run again: a
/// unique key another writer took meanwhile, a serialization failure, or
/// PostgreSQL's deadlock victim.
pub fn retryable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error};
    match e {
        Error::DatabaseError(K::UniqueViolation | K::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// Now in UTC at microseconds, the precision both backends keep.
pub fn now() -> NaiveDateTime {
    let t = Utc::now().naive_utc();
    t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}
