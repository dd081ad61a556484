//! The one place with backend-specific code: what `MultiConnection` cannot
//! express portably (multi-row inserts). Each function matches on the
//! connection and runs the same diesel query on the inner connection.

use diesel::prelude::*;

use super::cases::NewCase;
use super::events::NewEvent;
use super::schema::{cases, events};
use super::DbConn;

/// Rows per INSERT: 14 columns × 500 stays far below SQLite's variable limit.
const CHUNK: usize = 500;

pub fn insert_events(conn: &mut DbConn, rows: &[NewEvent<'_>]) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in rows.chunks(CHUNK) {
        n += match conn {
            DbConn::Sqlite(c) => diesel::insert_into(events::table).values(chunk).execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(events::table).values(chunk).execute(c)?,
        };
    }
    Ok(n)
}

pub fn insert_cases(conn: &mut DbConn, rows: &[NewCase<'_>]) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in rows.chunks(CHUNK) {
        n += match conn {
            DbConn::Sqlite(c) => diesel::insert_into(cases::table).values(chunk).execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(cases::table).values(chunk).execute(c)?,
        };
    }
    Ok(n)
}
