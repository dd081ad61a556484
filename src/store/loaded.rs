//! PostgreSQL: the rows a scan files, loaded with `COPY … FROM STDIN
//! (FORMAT binary)` as an import loads events. A multi-row INSERT of 500
//! rows was built as SQL text with thousands of parameters by the scan and
//! parsed and planned anew by the server for every statement: the inserts
//! of `case_facts`, deviations, their history and parties were 1.7 s of
//! the server's 5.7 s in a first full scan of 100 000 cases, and a fifth
//! of the scan's own CPU was spent building them. Each function runs
//! inside the caller's transaction; SQLite keeps its prepared statements
//! (`super::cached`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::PgConnection;

use super::deviations::NewDeviation;
use super::followup::CaseSummary;
use super::schema::{case_facts, deviation_parties, deviations};
use super::stamp::Stamp;
use crate::domain::handling::DeviationStatus;

/// A case's `case_facts` row: its facts and its packed judged obligations.
#[derive(Insertable)]
#[diesel(table_name = case_facts, treat_none_as_default_value = false)]
struct Facts<'a> {
    case_id: &'a str,
    kommuner: &'a str,
    patient_hash: Option<&'a str>,
    age_band: Option<&'a str>,
    inskrivning_at: Option<NaiveDateTime>,
    uk_at: Option<NaiveDateTime>,
    dag0: Option<&'a str>,
    utskrivning_at: Option<NaiveDateTime>,
    utskrivning_date: Option<&'a str>,
    avslut_date: Option<&'a str>,
    im_in_time: Option<bool>,
    sip_needed: bool,
    kallelse_in_time: Option<bool>,
    judged: &'a str,
    kommun: Option<&'a str>,
}

impl<'a> Facts<'a> {
    fn of(s: &'a CaseSummary) -> Facts<'a> {
        let f = &s.facts;
        Facts {
            case_id: &f.case_id,
            kommuner: &f.kommuner,
            patient_hash: f.patient_hash.as_deref(),
            age_band: f.age_band.as_deref(),
            inskrivning_at: f.inskrivning_at,
            uk_at: f.uk_at,
            dag0: f.dag0.as_deref(),
            utskrivning_at: f.utskrivning_at,
            utskrivning_date: f.utskrivning_date.as_deref(),
            avslut_date: f.avslut_date.as_deref(),
            im_in_time: f.im_in_time,
            sip_needed: f.sip_needed,
            kallelse_in_time: f.kallelse_in_time,
            judged: &s.packed,
            kommun: f.kommun.as_deref(),
        }
    }
}

/// The cases' `case_facts` rows (none of them there: the caller deleted them).
pub(super) fn facts(c: &mut PgConnection, summaries: &[CaseSummary]) -> QueryResult<usize> {
    if summaries.is_empty() {
        return Ok(0);
    }
    let rows: Vec<Facts> = summaries.iter().map(Facts::of).collect();
    diesel::copy_from(case_facts::table).from_insertable(&rows).execute(c)
}

/// A new deviation with the id taken for it from the table's sequence.
#[derive(Insertable)]
#[diesel(table_name = deviations, treat_none_as_default_value = false)]
struct Numbered<'a> {
    id: i64,
    fingerprint: &'a str,
    rule: &'a str,
    case_id: Option<&'a str>,
    unit: Option<&'a str>,
    due: Stamp,
    finding_status: &'a str,
    done_at: Option<Stamp>,
    late_minutes: Option<i64>,
    status: DeviationStatus,
    sannolikhet: i32,
    konsekvens: i32,
    recipients: &'a str,
    queued_at: Option<Stamp>,
    scan_id: i64,
    created_at: Stamp,
}

impl<'a> Numbered<'a> {
    fn of(id: i64, d: &'a NewDeviation<'a>) -> Numbered<'a> {
        Numbered {
            id,
            fingerprint: d.fingerprint,
            rule: d.rule,
            case_id: d.case_id,
            unit: d.unit,
            due: d.due,
            finding_status: d.finding_status,
            done_at: d.done_at,
            late_minutes: d.late_minutes,
            status: d.status,
            sannolikhet: d.sannolikhet,
            konsekvens: d.konsekvens,
            recipients: &d.recipients,
            queued_at: d.queued_at,
            scan_id: d.scan_id,
            created_at: d.created_at,
        }
    }
}

#[derive(QueryableByName)]
struct TakenId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// New deviations, each given the next id of the table's sequence (in the
/// rows' order, ascending, as `RETURNING` gave them): (id, fingerprint).
/// A rolled-back transaction leaves a gap in the ids, as an INSERT does.
pub(super) fn deviations(c: &mut PgConnection, rows: &[NewDeviation<'_>]) -> QueryResult<Vec<(i64, String)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // The sequence looked up once, not once a row (340 ms of 75 907 ids).
    let mut ids: Vec<i64> = diesel::sql_query(
        "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('deviations', 'id')::regclass AS seq) \
         SELECT nextval(s.seq) AS id FROM s, generate_series(1, $1)",
    )
    .bind::<diesel::sql_types::BigInt, _>(rows.len() as i64)
    .load::<TakenId>(c)?
    .into_iter()
    .map(|t| t.id)
    .collect();
    ids.sort_unstable();
    if ids.len() != rows.len() {
        let why = format!("{} id ur sekvensen för {} avvikelser", ids.len(), rows.len());
        return Err(diesel::result::Error::QueryBuilderError(why.into()));
    }
    let numbered: Vec<Numbered> = ids.iter().zip(rows).map(|(id, d)| Numbered::of(*id, d)).collect();
    diesel::copy_from(deviations::table)
        .from_insertable(&numbered)
        .execute(c)?;
    Ok(ids
        .into_iter()
        .zip(rows)
        .map(|(id, d)| (id, d.fingerprint.to_string()))
        .collect())
}

/// A deviation's berörd part (SPEC §6).
#[derive(Insertable)]
#[diesel(table_name = deviation_parties, treat_none_as_default_value = false)]
struct Party<'a> {
    deviation_id: i64,
    unit: &'a str,
}

/// The deviations' berörd parts: `(deviation id, unit)`.
pub(super) fn parties(c: &mut PgConnection, parties: &[(i64, String)]) -> QueryResult<usize> {
    if parties.is_empty() {
        return Ok(0);
    }
    let rows: Vec<Party> = parties
        .iter()
        .map(|(id, unit)| Party {
            deviation_id: *id,
            unit,
        })
        .collect();
    diesel::copy_from(deviation_parties::table)
        .from_insertable(&rows)
        .execute(c)
}
