//! The drop folder's log (`feed_files`): what came in as files and what
//! became of each.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::feed_files;
use super::DbConn;

/// What became of a file.
pub const IMPORTED: &str = "inlast";
pub const FAILED: &str = "fel";
pub const REPEATED: &str = "upprepad";

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = feed_files)]
pub struct NewFeedFile<'a> {
    pub content_hash: &'a str,
    pub name: &'a str,
    pub bytes: i64,
    pub received_at: NaiveDateTime,
    pub outcome: &'a str,
    pub events_received: i64,
    pub events_stored: i64,
    pub duplicates: i64,
    pub errors: i64,
    pub moved_to: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = feed_files)]
pub struct FeedFileRow {
    pub id: i64,
    pub content_hash: String,
    pub name: String,
    pub bytes: i64,
    pub received_at: NaiveDateTime,
    pub outcome: String,
    pub events_received: i64,
    pub events_stored: i64,
    pub duplicates: i64,
    pub errors: i64,
    pub moved_to: String,
}

/// Whether a file with this content was imported before.
pub fn imported(conn: &mut DbConn, content_hash: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        feed_files::table
            .filter(feed_files::content_hash.eq(content_hash))
            .filter(feed_files::outcome.eq(IMPORTED)),
    ))
    .get_result(conn)
}

/// Logs a file. An import of content that another instance logged as
/// imported meanwhile is logged as a repeat instead.
pub fn record(conn: &mut DbConn, row: &NewFeedFile) -> QueryResult<()> {
    match diesel::insert_into(feed_files::table).values(row).execute(conn) {
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
            if row.outcome == IMPORTED =>
        {
            let repeat = NewFeedFile {
                outcome: REPEATED,
                ..row.clone()
            };
            diesel::insert_into(feed_files::table).values(&repeat).execute(conn)?;
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// The latest `n` files, newest first.
pub fn recent(conn: &mut DbConn, n: i64) -> QueryResult<Vec<FeedFileRow>> {
    feed_files::table
        .order(feed_files::id.desc())
        .limit(n)
        .select(FeedFileRow::as_select())
        .load(conn)
}
