//! What the scan keeps for the follow-up (SPEC §7): every obligation it
//! judged and the facts of each case, replaced whole per case when they
//! change, so a re-scan or a late event corrects the figures and never counts
//! twice. Reports read these rows; they never re-run the rules.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{case_facts, cases, obligations};
use super::DbConn;
use crate::rules::RuleId;

/// Rows per multi-row insert (7 columns: far below SQLite's variable limit).
const CHUNK: usize = 500;

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = obligations, treat_none_as_default_value = false)]
pub struct NewObligation {
    pub case_id: String,
    pub rule: String,
    pub unit: Option<String>,
    pub due: NaiveDateTime,
    pub outcome: String,
    pub done_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable, Queryable)]
#[diesel(table_name = case_facts, treat_none_as_default_value = false)]
pub struct FactsRow {
    pub case_id: String,
    pub kommuner: String,
    pub patient_hash: Option<String>,
    pub age_band: Option<String>,
    pub inskrivning_at: Option<NaiveDateTime>,
    pub uk_at: Option<NaiveDateTime>,
    pub dag0: Option<String>,
    pub utskrivning_at: Option<NaiveDateTime>,
    pub utskrivning_date: Option<String>,
    pub avslut_date: Option<String>,
    pub im_in_time: Option<bool>,
    pub sip_needed: bool,
    pub kallelse_in_time: Option<bool>,
}

/// One case's new summary: its obligations, its facts and their hash.
pub struct CaseSummary {
    pub case_id: String,
    pub hash: String,
    pub obligations: Vec<NewObligation>,
    pub facts: FactsRow,
}

/// Inside the chunk's write transaction: replaces the rows of every case in
/// `summaries` and notes their hashes.
pub fn replace_cases(conn: &mut DbConn, summaries: &[CaseSummary]) -> QueryResult<()> {
    if summaries.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = summaries.iter().map(|s| s.case_id.as_str()).collect();
    for chunk in ids.chunks(CHUNK) {
        diesel::delete(obligations::table.filter(obligations::case_id.eq_any(chunk))).execute(conn)?;
        diesel::delete(case_facts::table.filter(case_facts::case_id.eq_any(chunk))).execute(conn)?;
    }
    let rows: Vec<&NewObligation> = summaries.iter().flat_map(|s| &s.obligations).collect();
    insert_obligations(conn, &rows)?;
    let facts: Vec<&FactsRow> = summaries.iter().map(|s| &s.facts).collect();
    for chunk in facts.chunks(CHUNK) {
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(case_facts::table)
                .values(chunk.to_vec())
                .execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(case_facts::table)
                .values(chunk.to_vec())
                .execute(c)?,
        };
    }
    for s in summaries {
        diesel::update(cases::table.find(&s.case_id))
            .set(cases::summary_hash.eq(&s.hash))
            .execute(conn)?;
    }
    Ok(())
}

/// Replaces the staffing obligations with dues in `[lo, hi]`.
pub fn replace_staffing(
    conn: &mut DbConn,
    lo: NaiveDateTime,
    hi: NaiveDateTime,
    rows: &[NewObligation],
) -> QueryResult<()> {
    diesel::delete(
        obligations::table
            .filter(obligations::case_id.eq(""))
            .filter(obligations::rule.eq(RuleId::BemanningStorhelg.as_str()))
            .filter(obligations::due.between(lo, hi)),
    )
    .execute(conn)?;
    let rows: Vec<&NewObligation> = rows.iter().collect();
    insert_obligations(conn, &rows)
}

/// As events are stored (`backend::insert_events`): on SQLite one cached
/// single-row statement (a multi-row one is prepared anew per chunk), on
/// PostgreSQL `COPY`.
fn insert_obligations(conn: &mut DbConn, rows: &[&NewObligation]) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(obligations::table).values(*row).execute(c)?;
            }
        }
        DbConn::Pg(c) => {
            if !rows.is_empty() {
                diesel::copy_from(obligations::table)
                    .from_insertable(rows.to_vec())
                    .execute(c)?;
            }
        }
    }
    Ok(())
}
