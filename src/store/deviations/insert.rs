//! Filing new deviations, with the ids the database gave them: on SQLite
//! in multi-row statements prepared once, the ids read back without
//! `RETURNING`.

use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sqlite::Sqlite;

use super::NewDeviation;
use crate::store::cached::{insert_rows, ROWS};
use crate::store::DbConn;

diesel::define_sql_function! {
    /// SQLite: the rowid of the row the connection inserted last.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

/// A history line as SQLite's multi-row inserts bind it.
impl crate::store::cached::Row for super::NewHistory<'_> {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
        crate::store::cached::bind!(out;
            BigInt => &self.deviation_id,
            Timestamp => &self.at,
            Text => &self.actor,
            Nullable<Text> => &self.from_status,
            Text => &self.to_status,
            Nullable<Text> => &self.note,
        )
    }
}

/// A deviation's berörd part (deviation id, unit), as SQLite's multi-row
/// inserts bind it.
impl crate::store::cached::Row for (i64, String) {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Text};
        crate::store::cached::bind!(out; BigInt => &self.0, Text => &self.1)
    }
}

/// A new deviation as SQLite's multi-row inserts bind it (the columns of
/// the multi-row insert below).
impl crate::store::cached::Row for NewDeviation<'_> {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
        crate::store::cached::bind!(out;
            Text => &self.fingerprint,
            Text => &self.rule,
            Nullable<Text> => &self.case_id,
            Nullable<Text> => &self.unit,
            Timestamp => &self.due,
            Text => &self.finding_status,
            Nullable<Timestamp> => &self.done_at,
            Nullable<BigInt> => &self.late_minutes,
            Text => &self.status,
            Integer => &self.sannolikhet,
            Integer => &self.konsekvens,
            Text => &self.recipients,
            Nullable<Timestamp> => &self.queued_at,
            BigInt => &self.scan_id,
            Timestamp => &self.created_at,
        )
    }
}

/// SQLite: one deviation and the id it was given.
fn deviation_row(c: &mut diesel::SqliteConnection, row: &NewDeviation<'_>) -> QueryResult<(i64, String)> {
    diesel::insert_into(crate::store::schema::deviations::table)
        .values(row)
        .execute(c)?;
    let id: i64 = diesel::select(last_insert_rowid()).get_result(c)?;
    Ok((id, row.fingerprint.to_string()))
}

/// SQLite, right after one INSERT of `block`: the ids its rows were given,
/// in its order. A multi-row INSERT gives its rows the rowids up to the
/// last one in turn; they are read back from that range and matched by
/// case and fingerprint (the deviations' unique key), so a row not found
/// there is an error, never another deviation's id.
fn block_ids(c: &mut diesel::SqliteConnection, block: &[NewDeviation<'_>]) -> QueryResult<Vec<(i64, String)>> {
    use crate::store::schema::deviations as d;
    let last: i64 = diesel::select(last_insert_rowid()).get_result(c)?;
    let first = last - block.len() as i64 + 1;
    let found: Vec<(i64, Option<String>, String)> = d::table
        .filter(d::id.between(first, last))
        .select((d::id, d::case_id, d::fingerprint))
        .load(c)?;
    let by_key: std::collections::HashMap<(Option<&str>, &str), i64> = found
        .iter()
        .map(|(id, case, fp)| ((case.as_deref(), fp.as_str()), *id))
        .collect();
    block
        .iter()
        .map(|row| match by_key.get(&(row.case_id, row.fingerprint)) {
            Some(id) => Ok((*id, row.fingerprint.to_string())),
            None => Err(diesel::result::Error::QueryBuilderError(
                format!("avvikelsen {} fanns inte bland de nyss infogade", row.fingerprint).into(),
            )),
        })
        .collect()
}

/// Inserts deviations, returning (id, fingerprint): on SQLite statements of
/// a fixed number of rows and of one, on PostgreSQL by COPY (`store::loaded`).
pub(super) fn insert_many(conn: &mut DbConn, rows: &[NewDeviation<'_>]) -> QueryResult<Vec<(i64, String)>> {
    let mut out = Vec::with_capacity(rows.len());
    match conn {
        // Statements of a fixed number of rows prepared once, the rest
        // one by one, then the ids they gave. Not `RETURNING`: SQLite runs
        // that as a trigger, which made every insert keep a statement
        // journal of the pages it touched (a sixth of the inserts' cost in
        // a first full scan).
        DbConn::Sqlite(c) => {
            let mut whole = rows.chunks_exact(ROWS);
            for block in whole.by_ref() {
                insert_rows!(
                    c,
                    "INSERT INTO deviations (fingerprint, rule, case_id, unit, due, finding_status, done_at, \
                     late_minutes, status, sannolikhet, konsekvens, recipients, queued_at, scan_id, created_at) VALUES ",
                    block,
                )?;
                out.extend(block_ids(c, block)?);
            }
            for row in whole.remainder() {
                out.push(deviation_row(c, row)?);
            }
        }
        DbConn::Pg(c) => out = crate::store::loaded::deviations(c, rows)?,
    }
    Ok(out)
}
