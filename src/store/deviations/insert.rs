//! Filing new deviations, with the ids the database gave them: on SQLite
//! read without `RETURNING`.

use diesel::prelude::*;

use super::NewDeviation;
use crate::store::backend::CHUNK;
use crate::store::DbConn;

diesel::define_sql_function! {
    /// SQLite: the rowid of the row the connection inserted last.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

/// SQLite: one deviation and the id it was given.
fn deviation_row(c: &mut diesel::SqliteConnection, row: &NewDeviation<'_>) -> QueryResult<(i64, String)> {
    diesel::insert_into(crate::store::schema::deviations::table)
        .values(row)
        .execute(c)?;
    let id: i64 = diesel::select(last_insert_rowid()).get_result(c)?;
    Ok((id, row.fingerprint.to_string()))
}

/// Inserts deviations, returning (id, fingerprint): on SQLite a cached
/// single-row statement per deviation, on PostgreSQL multi-row statements.
pub(super) fn insert_many(conn: &mut DbConn, rows: &[NewDeviation<'_>]) -> QueryResult<Vec<(i64, String)>> {
    use crate::store::schema::deviations as d;
    let mut out = Vec::with_capacity(rows.len());
    match conn {
        // One cached single-row statement, as for events, then the id it
        // gave. Not `RETURNING`: SQLite runs that as a trigger, which made
        // every insert keep a statement journal of the pages it touched (a
        // sixth of the inserts' cost in a first full scan).
        DbConn::Sqlite(c) => {
            for row in rows {
                out.push(deviation_row(c, row)?);
            }
        }
        DbConn::Pg(c) => {
            for chunk in rows.chunks(CHUNK) {
                let ids: Vec<(i64, String)> = diesel::insert_into(d::table)
                    .values(chunk)
                    .returning((d::id, d::fingerprint))
                    .get_results(c)?;
                out.extend(ids);
            }
        }
    }
    Ok(out)
}
