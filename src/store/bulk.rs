//! What a connection does differently while it loads a file or scans a
//! whole county: a larger page cache and fewer checkpoints of its own (an
//! import's WAL folded into the database beside it), fresh planner
//! statistics after a load, and on PostgreSQL statistics on the
//! deviations while a scan files them and after a scan that judged the
//! county.
//! Backend-specific, as `backend` is.

use diesel::prelude::*;

use super::DbConn;

/// Page cache of a connection while it loads a file: the indexes of
/// `events` take random inserts, and a cache that holds their upper levels
/// saves a read per insert. The service's connections keep 16 MB each; the
/// bulk cache is handed back when the load ends (`PRAGMA shrink_memory`).
pub fn set_bulk_cache(conn: &mut DbConn, on: bool) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    match conn {
        // The WAL is folded into the database every 1000 pages by default:
        // at every commit of a batch, with the same index pages written again
        // each time. While a file loads or the county is scanned, once per
        // 256 MB of WAL (an import's WAL is folded beside it: `Checkpoints`,
        // which raises this to 1 GB); at the end, once. Commits still reach
        // the disk (synchronous = FULL) before an event counts as stored.
        DbConn::Sqlite(c) => c.batch_execute(if on {
            "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 65536"
        } else {
            "PRAGMA cache_size = -16000; PRAGMA wal_autocheckpoint = 1000; PRAGMA wal_checkpoint(PASSIVE); PRAGMA shrink_memory"
        }),
        DbConn::Pg(_) => Ok(()),
    }
}

/// Hands back the page cache a connection filled reading the whole county
/// (SQLite): up to 16 MB, 64 MB in a bulk load, held by an idle pooled
/// connection until the pool closes it. Without this, a `serve` process
/// kept every cache a full scan had filled (135 MB after a scan of 100 000
/// cases) and the next scan grew on top of it. Best effort: a connection
/// that cannot shrink still works.
pub fn release_cache(conn: &mut DbConn) {
    use diesel::connection::SimpleConnection;
    if let DbConn::Sqlite(c) = conn {
        if let Err(e) = c.batch_execute("PRAGMA shrink_memory") {
            tracing::debug!("sidcachen kunde inte lämnas tillbaka: {e}");
        }
    }
}

/// After a large load PostgreSQL's planner gets statistics at once, not
/// when autovacuum comes by: without them it guessed a third of the events
/// for any range and read the whole table (an incremental scan's arrivals,
/// which it now reads from the unit-day register's changed entries).
pub fn analyze_after_load(conn: &mut DbConn) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    match conn {
        DbConn::Pg(c) => c.batch_execute("ANALYZE events; ANALYZE cases; ANALYZE unit_days"),
        DbConn::Sqlite(_) => Ok(()),
    }
}

/// What is analysed of the tables a scan fills, after a scan that judged
/// the county: from an empty database the first full scan writes the
/// deviations, and without statistics the planner takes the table for
/// empty. On a server with autovacuum off (this machine's; a region may run
/// one) the next incremental scan then read all 760 000 deviations of 1 M
/// cases by a sequential scan to lock the 21 of a chunk's cases (279 ms of
/// 0.72 s). Only the column the scan looks them up by: every column of the
/// eight tables a scan fills took 0.9 s at 100 000 cases, this 0.07 s; the
/// other tables are read by their keys.
const SCAN_STATISTICS: &str = "ANALYZE deviations (case_id)";

/// Statistics on `deviations.case_id` while a scan files, on PostgreSQL.
/// Each chunk locks its cases' deviations (`deviations::by_cases`), which
/// was `case_id = ANY(…) ORDER BY id`, planned from them. (A full scan's
/// chunk now reads a range of the key and other chunks join their list
/// of cases into it, plans that no estimate turns into a walk of the
/// table; the statistics stay for every other read of deviations by
/// case, the pages' among them.) Without any — a
/// table never analysed since it was empty, which a first full scan fills
/// from nothing — the planner takes each of the chunk's 5 000 ids to match
/// a two-hundredth of the table, so all of it, and walks every deviation
/// in id order to find none: the chunk's cost grows with what the scan
/// has filed, 47.8 s of the server's time in a first full scan of 1 M
/// cases (`pg_stat_statements`, auto_explain; docs/PERFORMANCE.md,
/// fifteenth round). Analysed once it holds rows, the column's distinct
/// values are kept as a share of the table, so the estimate grows with it
/// and the look-up stays on the index. Wanted only where the column has no
/// statistics and the role may analyse the table (another role's `ANALYZE`
/// is skipped with a warning; autovacuum analyses a table that grows from
/// nothing within its first minute).
pub struct FilingStatistics(std::sync::atomic::AtomicU8);

/// [`FilingStatistics`]' states: not asked yet (asked after the first
/// chunk that files a deviation: a table grows from nothing only by a
/// scan that files, and a scan that files none — an idle one — asks
/// nothing), wanted, not wanted (or given up after an error), and being
/// asked or made on one connection.
const UNASKED: u8 = 0;
const WANTED: u8 = 1;
const SETTLED: u8 = 2;
const BUSY: u8 = 3;

#[derive(QueryableByName)]
struct Wanted {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    wanted: bool,
}

const DEVIATION_STATISTICS_WANTED: &str = "SELECT pg_has_role(c.relowner, 'USAGE') AND NOT EXISTS \
     (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = 'deviations' \
      AND s.attname = 'case_id') AS wanted \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'deviations'::regclass";

impl FilingStatistics {
    /// For a scan on `conn`'s database (never wanted on SQLite, whose
    /// look-up is planned on the index without statistics).
    pub fn new(conn: &DbConn) -> FilingStatistics {
        let state = match conn {
            DbConn::Pg(_) => UNASKED,
            DbConn::Sqlite(_) => SETTLED,
        };
        FilingStatistics(std::sync::atomic::AtomicU8::new(state))
    }

    /// After a chunk's commit, outside its transaction (`filed`: the chunk
    /// filed a deviation): analyses the deviations until the column has
    /// statistics (from the first chunk that filed one: 10–20 ms then).
    /// One connection at a time; a failure is logged and not tried again
    /// (the scan stands, only slower).
    pub fn after_chunk(&self, conn: &mut DbConn, filed: bool) {
        use diesel::connection::SimpleConnection;
        use std::sync::atomic::Ordering::Relaxed;
        let DbConn::Pg(c) = conn else { return };
        let state = self.0.load(Relaxed);
        if !(state == WANTED || (state == UNASKED && filed))
            || self.0.compare_exchange(state, BUSY, Relaxed, Relaxed).is_err()
        {
            return;
        }
        let wanted = |c: &mut diesel::PgConnection| {
            diesel::sql_query(DEVIATION_STATISTICS_WANTED)
                .get_result::<Wanted>(c)
                .map(|w| w.wanted)
        };
        let asked = if state == UNASKED { wanted(c) } else { Ok(true) };
        let still = asked.and_then(|w| {
            if w {
                c.batch_execute(SCAN_STATISTICS).and_then(|()| wanted(c))
            } else {
                Ok(false)
            }
        });
        match still {
            Ok(w) => self.0.store(if w { WANTED } else { SETTLED }, Relaxed),
            Err(e) => {
                self.0.store(SETTLED, Relaxed);
                tracing::warn!("avvikelsetabellen kunde inte analyseras under granskningen: {e}");
            }
        }
    }
}

/// An incremental scan that judged this many cases walked the county (more
/// than `candidates` lists): it is tidied as a full scan is.
const TIDY_AFTER_CASES: usize = 200_000;

/// What PostgreSQL says of the deviations after a scan.
#[derive(QueryableByName)]
struct TidyState {
    /// The connection's role may analyse them (owns them or has the
    /// owner's rights): another role's `ANALYZE` is skipped with a mere
    /// warning, so it is not sent.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    owner: bool,
    /// `deviations` was never analysed, by hand or by autovacuum.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    unanalysed: bool,
}

const TIDY_STATE: &str = "SELECT pg_has_role(c.relowner, 'USAGE') AS owner, \
     COALESCE(s.last_analyze IS NULL AND s.last_autoanalyze IS NULL, true) AS unanalysed \
     FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'deviations'::regclass";

/// After a scan on PostgreSQL that judged the county (a full scan, or an
/// incremental one of [`TIDY_AFTER_CASES`] or more): [`SCAN_STATISTICS`]
/// when the scan wrote the scan columns of more than a fifth of the cases
/// it judged (autovacuum's threshold; a first scan writes them all) or
/// `deviations` was never analysed. Outside a transaction; a failure is
/// logged (autovacuum comes later) and the scan stands. A role that does
/// not own the tables (the service role of `ops/postgres/setup.sql`)
/// leaves them to autovacuum, with a warning that says so. SQLite:
/// nothing.
///
/// `cases` is no longer vacuumed here (4.7 s at the end of a first full
/// scan of 1 M cases): the scan's notes of a case are HOT updates (migration
/// `scan_notes_in_place`), whose old versions the next reader of the page
/// prunes, and no query of a scan reads a partial index that the notes
/// emptied (the one of cases never summarised, which needed the vacuum,
/// is gone).
pub fn tidy_after_scan(conn: &mut DbConn, full: bool, (judged, noted): (usize, usize)) {
    use diesel::connection::SimpleConnection;
    let DbConn::Pg(c) = conn else { return };
    if !(full || judged >= TIDY_AFTER_CASES) {
        return;
    }
    let state = match diesel::sql_query(TIDY_STATE).get_result::<TidyState>(c) {
        Ok(state) => state,
        Err(e) => {
            tracing::warn!("avvikelsetabellens skick kunde inte läsas efter granskningen: {e}");
            return;
        }
    };
    if !state.owner {
        tracing::warn!(
            "avvikelsetabellen analyseras inte efter granskningen: databasrollen äger inte tabellerna \
             (autovacuum gör det; se docs/OPERATIONS.md)"
        );
    } else if noted * 5 > judged || state.unanalysed {
        if let Err(e) = c.batch_execute(SCAN_STATISTICS) {
            tracing::warn!(
                "avvikelsetabellen kunde inte analyseras efter granskningen (autovacuum gör det senare): {e}"
            );
        }
    }
}

/// How often the WAL is folded into the database beside a bulk load.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// How often the folding thread looks whether it is to stop.
const SLICE: std::time::Duration = std::time::Duration::from_millis(20);

/// Folds the WAL into the database on a thread and connection of its own
/// while one connection loads a file (SQLite): the
/// writing connection's own checkpoints, every 256 MB of WAL, stopped its
/// thread for a tenth of an import. A passive checkpoint copies what is
/// committed while the writer goes on appending; the writer starts the WAL
/// over at its next transaction once all of it is copied. The writer keeps
/// its own checkpoints at 1 GB of WAL as a floor, should this one fall
/// behind. Stopped (and joined) when dropped.
pub struct Checkpoints {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoints {
    /// Starts beside `conn`; nothing on PostgreSQL or for a database with
    /// no file, nothing (the writer checkpoints itself) if the file cannot
    /// be opened a second time.
    pub fn beside(conn: &mut DbConn) -> Checkpoints {
        let none = Checkpoints {
            stop: None,
            thread: None,
        };
        let DbConn::Sqlite(c) = conn else {
            return none;
        };
        #[derive(QueryableByName)]
        struct File {
            #[diesel(sql_type = diesel::sql_types::Text)]
            file: String,
        }
        let file = match diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .get_result::<File>(c)
        {
            Ok(f) if !f.file.is_empty() => f.file,
            _ => return none,
        };
        let Ok(mut other) = diesel::sqlite::SqliteConnection::establish(&file) else {
            return none;
        };
        use diesel::connection::SimpleConnection;
        if c.batch_execute("PRAGMA wal_autocheckpoint = 262144").is_err() {
            return none;
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // Slept in short slices, the stop asked for in between: a wait
            // with a deadline (`recv_timeout`) takes it from the monotonic
            // clock, which a faked clock moves (the bench runs under
            // faketime), and then never woke: no checkpoint was made.
            // Elapsed time (a difference of two readings) is right under a
            // faked clock too.
            let mut last = std::time::Instant::now();
            loop {
                std::thread::sleep(SLICE);
                if !matches!(stopped.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)) {
                    return;
                }
                if last.elapsed() < CHECKPOINT_EVERY {
                    continue;
                }
                last = std::time::Instant::now();
                if let Err(e) = other.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::debug!("checkpoint vid sidan av inläsningen: {e}");
                }
            }
        });
        Checkpoints {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;

    /// Writes 30 transactions of about 1 MB, 50 ms apart, on a fresh
    /// SQLite file in WAL mode (the writer's own checkpoints at 1 GB), with
    /// or without `Checkpoints` beside it; the sizes of the WAL and of the
    /// database file after.
    fn wal_after_writes(beside: bool) -> (u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let c = diesel::sqlite::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let mut conn = DbConn::Sqlite(c);
        if let DbConn::Sqlite(c) = &mut conn {
            c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 262144; CREATE TABLE t (b BLOB)")
                .unwrap();
        }
        let checkpoints = beside.then(|| Checkpoints::beside(&mut conn));
        for _ in 0..30 {
            if let DbConn::Sqlite(c) = &mut conn {
                c.batch_execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                     INSERT INTO t SELECT randomblob(1000) FROM n",
                )
                .unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        drop(checkpoints);
        let size = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().len();
        (size("w.db-wal"), size("w.db"))
    }

    /// What the checkpoints copied is in the database file, however the
    /// machine is loaded. (The WAL starting over also needs a checkpoint to
    /// finish between two writes, which a loaded machine, the test suite's
    /// own threads, can delay past the last write: not asserted.)
    #[test]
    fn checkpoints_beside_a_writer_fold_its_wal_into_the_database() {
        let (alone_wal, alone_db) = wal_after_writes(false);
        assert!(
            alone_wal > 25 << 20,
            "without them the WAL holds every write: {alone_wal}"
        );
        assert!(alone_db < 1 << 20, "and the database file none: {alone_db}");
        let (beside_wal, beside_db) = wal_after_writes(true);
        assert!(
            beside_db > 20 << 20,
            "the writes copied into the database beside the writer: {beside_db} (WAL {beside_wal})"
        );
    }
}
