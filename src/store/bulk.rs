//! What a connection does differently while it loads a file or scans a
//! whole county: a larger page cache and fewer checkpoints, an import's
//! commits synced once at its end, fresh planner statistics after a load.
//! Backend-specific, as `backend` is.

use diesel::prelude::*;

use super::DbConn;

/// Page cache of a connection while it loads a file: the indexes of
/// `events` take random inserts, and a cache that holds their upper levels
/// saves a read per insert. The service's connections keep 16 MB each.
pub fn set_bulk_cache(conn: &mut DbConn, on: bool) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    match conn {
        // The WAL is folded into the database every 1000 pages by default:
        // at every commit of a batch, with the same index pages written again
        // each time. While a file loads, once per 256 MB of WAL; at the end,
        // once. Commits reach the disk before an event counts as stored: a
        // scan's each, an import's at its end (`set_commit_wait`).
        DbConn::Sqlite(c) => c.batch_execute(if on {
            "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 65536"
        } else {
            "PRAGMA cache_size = -16000; PRAGMA wal_autocheckpoint = 1000; PRAGMA wal_checkpoint(PASSIVE)"
        }),
        DbConn::Pg(_) => Ok(()),
    }
}

/// Whether each commit of a connection waits for the disk. An import's
/// batches are committed without waiting (SQLite `synchronous = NORMAL`:
/// still whole, a crash keeps or loses a batch entirely) and made durable
/// all at once by [`sync_commits`] before the import answers: nobody is
/// told of them before that, and any other connection's commit (a sender
/// told its event is a duplicate of one of them, a scan that filed on them)
/// syncs the same WAL file, so it is durable before that answer too.
/// 82 fsyncs were 1.2 s of a 100 000 cases' import.
pub fn set_commit_wait(conn: &mut DbConn, each_commit: bool) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    match conn {
        DbConn::Sqlite(c) => c.batch_execute(if each_commit {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        }),
        DbConn::Pg(_) => Ok(()),
    }
}

/// Makes every commit before it durable (with `synchronous = FULL` back on):
/// a write committed with a sync of the WAL file, which holds them all.
pub fn sync_commits(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(_) => super::backend::write_tx(conn, |c| {
            diesel::sql_query("UPDATE ingest_batches SET lines = lines WHERE id = (SELECT max(id) FROM ingest_batches)")
                .execute(c)
                .map(|_| ())
        }),
        DbConn::Pg(_) => Ok(()),
    }
}

/// After a large load PostgreSQL's planner gets statistics at once, not
/// when autovacuum comes by: without them it guessed a third of the events
/// for any range and read the whole table (an incremental scan's arrivals).
pub fn analyze_after_load(conn: &mut DbConn) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    match conn {
        DbConn::Pg(c) => c.batch_execute("ANALYZE events; ANALYZE cases"),
        DbConn::Sqlite(_) => Ok(()),
    }
}
