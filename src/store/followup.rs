//! What the scan keeps for the follow-up (SPEC §7): the judged obligations
//! of cases as exact counts per local day of their due, rule and unit
//! (`obligation_days`), the facts of each case (`case_facts`), the
//! obligations still pending (for förvarning) and the storhelg staffing
//! obligations (`obligations`). A case's facts and pending obligations are
//! replaced whole when they change, and the counts move by the difference
//! between what the case's judged obligations were and are, so a re-scan or
//! a late event corrects the figures and never counts twice. Reports read
//! these rows; they never re-run the rules.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::schema::{case_facts, obligations};
use super::stamp::Stamp;
use super::DbConn;
use crate::rules::Outcome;

/// Rows per multi-row statement (at most 14 columns: 7 000 variables, below
/// either database's limit).
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

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
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
    /// The patient's kommun (§7): betalningsansvar and readmissions count the case for it.
    pub kommun: Option<String>,
}

/// One judged obligation as `obligation_days` counts it: the local day of
/// its due, its rule, its unit ('' for none) and whether it was met, late
/// or missing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JudgedDay {
    pub day: NaiveDate,
    pub rule: String,
    pub unit: String,
    pub outcome: Outcome,
}

impl JudgedDay {
    /// Index into `[met, late, missing]`; `None` for pending, never counted.
    fn slot(&self) -> Option<usize> {
        match self.outcome {
            Outcome::Met => Some(0),
            Outcome::Late => Some(1),
            Outcome::Missing => Some(2),
            Outcome::Pending => None,
        }
    }
}

/// The judged obligations of a case as `case_facts.judged` keeps them: one
/// per line, a JSON array of day, rule, unit and outcome (JSON, so a unit id
/// holding a tab or a line break cannot break a line).
pub fn pack(judged: &[JudgedDay]) -> String {
    /// The day as JSON text, written straight into the line.
    struct Day(NaiveDate);
    impl serde::Serialize for Day {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&self.0)
        }
    }
    let mut out = Vec::with_capacity(judged.len() * 64);
    for j in judged {
        let line = (Day(j.day), &j.rule, &j.unit, j.outcome.as_str());
        // Writing into a Vec cannot fail, and JSON text is UTF-8.
        let _ = serde_json::to_writer(&mut out, &line);
        out.push(b'\n');
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The inverse of [`pack`]. Only this module writes the text; a line it
/// cannot read is an error, as subtracting a guess would corrupt the counts.
pub fn unpack(text: &str) -> Result<Vec<JudgedDay>, String> {
    text.lines()
        .map(|line| {
            let (day, rule, unit, outcome): (String, String, String, String) =
                serde_json::from_str(line).map_err(|e| format!("case_facts.judged: oläsbar rad {line:?}: {e}"))?;
            Ok(JudgedDay {
                day: day
                    .parse()
                    .map_err(|_| format!("case_facts.judged: felaktig dag {day:?}"))?,
                rule,
                unit,
                outcome: Outcome::parse(&outcome)
                    .ok_or_else(|| format!("case_facts.judged: felaktigt utfall {outcome:?}"))?,
            })
        })
        .collect()
}

/// One case's new summary: its facts, its judged obligations, those still
/// pending, and the hash over all of it.
pub struct CaseSummary {
    pub case_id: String,
    pub hash: String,
    pub judged: Vec<JudgedDay>,
    /// `judged` as `case_facts.judged` keeps it ([`pack`]).
    pub packed: String,
    pub pending: Vec<NewObligation>,
    pub facts: FactsRow,
}

/// Changes to `obligation_days`: (day, rule, unit) → [met, late, missing].
pub type Delta = BTreeMap<(String, String, String), [i64; 3]>;

/// What `summaries`' judged obligations add to `obligation_days` (made on
/// a judging thread; [`replace_cases`] subtracts what the cases had).
/// Summed by a borrowed key first: a chunk's 28 000 obligations fall on
/// some 20 000 keys, and the keys' strings are made once each.
pub fn judged_days(summaries: &[CaseSummary]) -> Delta {
    type Sums<'a> = std::collections::HashMap<(NaiveDate, &'a str, &'a str), [i64; 3], foldhash::fast::RandomState>;
    let mut sums = Sums::default();
    for j in summaries.iter().flat_map(|s| &s.judged) {
        if let Some(slot) = j.slot() {
            sums.entry((j.day, j.rule.as_str(), j.unit.as_str())).or_default()[slot] += 1;
        }
    }
    sums.into_iter()
        .map(|((day, rule, unit), n)| ((day.to_string(), rule.to_string(), unit.to_string()), n))
        .collect()
}

pub(super) fn count(delta: &mut Delta, j: &JudgedDay, by: i64) {
    if let Some(slot) = j.slot() {
        delta
            .entry((j.day.to_string(), j.rule.clone(), j.unit.clone()))
            .or_default()[slot] += by;
    }
}

/// Inside the chunk's write transaction: replaces the rows of every case in
/// `summaries` and returns what the day counts move by: `delta`, what their
/// judged obligations add ([`judged_days`]), less what the cases' rows held
/// before. The scan adds the moves of all its chunks at once when it ends
/// (`day_counts`): each chunk's were the same keys again, four upserts a
/// case. (The cases' hashes are noted with the rest of what the scan judged
/// of them, `cases::note_judged`.)
pub fn replace_cases(conn: &mut DbConn, summaries: &[CaseSummary], mut delta: Delta) -> QueryResult<Delta> {
    if summaries.is_empty() {
        return Ok(Delta::new());
    }
    let ids: Vec<&str> = summaries.iter().map(|s| s.case_id.as_str()).collect();
    for chunk in ids.chunks(CHUNK) {
        let facts = case_facts::table.filter(case_facts::case_id.eq_any(chunk));
        // PostgreSQL deletes and returns in one look-up a case; SQLite
        // runs `RETURNING` as a trigger with a statement journal.
        let before: Vec<String> = match conn {
            DbConn::Pg(c) => diesel::delete(facts).returning(case_facts::judged).get_results(c)?,
            DbConn::Sqlite(_) => {
                let before = facts.clone().select(case_facts::judged).load(conn)?;
                diesel::delete(facts).execute(conn)?;
                before
            }
        };
        for text in before {
            for j in unpack(&text).map_err(|e| DieselError::DeserializationError(e.into()))? {
                count(&mut delta, &j, -1);
            }
        }
        diesel::delete(obligations::table.filter(obligations::case_id.eq_any(chunk))).execute(conn)?;
    }
    let pending: Vec<&NewObligation> = summaries.iter().flat_map(|s| &s.pending).collect();
    insert_obligations(conn, &pending)?;
    match conn {
        DbConn::Sqlite(c) => {
            let rows: Vec<NewFacts> = summaries.iter().map(NewFacts::of).collect();
            super::cached::insert_rows!(
                c,
                "INSERT INTO case_facts (case_id, kommuner, patient_hash, age_band, inskrivning_at, uk_at, dag0, \
                 utskrivning_at, utskrivning_date, avslut_date, im_in_time, sip_needed, kallelse_in_time, judged, \
                 kommun) VALUES ",
                &rows,
            )?;
        }
        DbConn::Pg(c) => {
            super::loaded::facts(c, summaries)?;
        }
    }
    // A case judged as before adds back what it took: no move at all.
    delta.retain(|_, n| n.iter().any(|&by| by != 0));
    Ok(delta)
}

/// A case's `case_facts` row as SQLite's inserts bind it; its instants
/// written by `Stamp` (chrono's formatter was a seventh of the rows' cost
/// on a first full scan's writing thread).
struct NewFacts<'a> {
    summary: &'a CaseSummary,
    /// The instants to bind: inskrivning, utskrivningsklar, utskrivning.
    at: [Option<Stamp>; 3],
}

impl<'a> NewFacts<'a> {
    fn of(summary: &'a CaseSummary) -> NewFacts<'a> {
        let f = &summary.facts;
        NewFacts {
            summary,
            at: [f.inskrivning_at, f.uk_at, f.utskrivning_at].map(|t| t.map(Stamp)),
        }
    }
}

impl super::cached::Row for NewFacts<'_> {
    fn bind<'b>(&'b self, out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{Bool, Nullable, Text, Timestamp};
        let f = &self.summary.facts;
        super::cached::bind!(out;
            Text => &f.case_id,
            Text => &f.kommuner,
            Nullable<Text> => &f.patient_hash,
            Nullable<Text> => &f.age_band,
            Nullable<Timestamp> => &self.at[0],
            Nullable<Timestamp> => &self.at[1],
            Nullable<Text> => &f.dag0,
            Nullable<Timestamp> => &self.at[2],
            Nullable<Text> => &f.utskrivning_date,
            Nullable<Text> => &f.avslut_date,
            Nullable<Bool> => &f.im_in_time,
            Bool => &f.sip_needed,
            Nullable<Bool> => &f.kallelse_in_time,
            Text => &self.summary.packed,
            Nullable<Text> => &f.kommun,
        )
    }
}

/// Adds `delta` to `obligation_days`. On SQLite one upsert per key, of
/// fixed text and so prepared once (`Cached`). On PostgreSQL one upsert of
/// arrays per [`DAYS_PER_STATEMENT`] keys ([`ADD_DAYS`]): a statement of
/// fixed text and six parameters, where multi-row `VALUES` of 500 keys
/// were 3 000 parameters to parse and plan anew, nine statements for the
/// 4 500 keys an incremental scan of a few hundred cases moves.
pub(super) fn add_days(conn: &mut DbConn, delta: &Delta) -> QueryResult<()> {
    use diesel::sql_types::{Array, BigInt, Text};
    let changed = delta.iter().filter(|(_, c)| c.iter().any(|n| *n != 0));
    match conn {
        DbConn::Sqlite(c) => {
            use super::cached::{cached, param};
            for ((day, rule, unit), n) in changed {
                cached!(
                    "INSERT INTO obligation_days (day, rule, unit, met, late, missing) VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (day, rule, unit) DO UPDATE SET met = met + excluded.met, \
                     late = late + excluded.late, missing = missing + excluded.missing",
                    &[
                        &param::<Text, _>(day),
                        &param::<Text, _>(rule),
                        &param::<Text, _>(unit),
                        &param::<BigInt, _>(n[0]),
                        &param::<BigInt, _>(n[1]),
                        &param::<BigInt, _>(n[2]),
                    ],
                )
                .execute(c)?;
            }
        }
        DbConn::Pg(c) => {
            let rows: Vec<_> = changed.collect();
            for part in rows.chunks(DAYS_PER_STATEMENT) {
                let column = |i: usize| part.iter().map(|(_, n)| n[i]).collect::<Vec<i64>>();
                diesel::sql_query(ADD_DAYS)
                    .bind::<Array<Text>, _>(part.iter().map(|((day, _, _), _)| day).collect::<Vec<_>>())
                    .bind::<Array<Text>, _>(part.iter().map(|((_, rule, _), _)| rule).collect::<Vec<_>>())
                    .bind::<Array<Text>, _>(part.iter().map(|((_, _, unit), _)| unit).collect::<Vec<_>>())
                    .bind::<Array<BigInt>, _>(column(0))
                    .bind::<Array<BigInt>, _>(column(1))
                    .bind::<Array<BigInt>, _>(column(2))
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// The day counts' keys added per statement on PostgreSQL: a first full
/// scan of a million cases moves a few hundred thousand.
const DAYS_PER_STATEMENT: usize = 50_000;

/// [`add_days`] on PostgreSQL: each key once (the delta's keys are unique,
/// as an upsert requires).
const ADD_DAYS: &str = "INSERT INTO obligation_days (day, rule, unit, met, late, missing) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[]) \
     ON CONFLICT (day, rule, unit) DO UPDATE SET met = obligation_days.met + excluded.met, \
     late = obligation_days.late + excluded.late, missing = obligation_days.missing + excluded.missing";

/// As events are stored (`backend::insert_events`): on SQLite one cached
/// single-row statement (a multi-row one is prepared anew per chunk), on
/// PostgreSQL `COPY`.
pub(super) fn insert_obligations(conn: &mut DbConn, rows: &[&NewObligation]) -> QueryResult<()> {
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

fn day_text(x: NaiveDate) -> String {
    x.format("%Y-%m-%d").to_string()
}

/// The facts of the stays discharged in `[from, to]` or still
/// utskrivningsklar at some point of it (`from` None: all history up to
/// `to`), for lead times and betalningsansvar.
pub fn lead_times(conn: &mut DbConn, from: Option<NaiveDate>, to: NaiveDate) -> QueryResult<Vec<FactsRow>> {
    let mut q = case_facts::table
        .filter(
            case_facts::utskrivning_date.le(day_text(to)).or(case_facts::dag0
                .le(day_text(to))
                .and(case_facts::utskrivning_date.is_null())),
        )
        .filter(case_facts::kommuner.ne("[]").or(case_facts::kommun.is_not_null()))
        .select(FactsRow::as_select())
        .into_boxed();
    if let Some(f) = from {
        q = q.filter(
            case_facts::utskrivning_date
                .ge(day_text(f))
                .or(case_facts::utskrivning_date.is_null()),
        );
    }
    q.load(conn)
}

/// A stay with its patient, for readmissions: (case, patient hash, age
/// band, inskrivning, utskrivning, the patient's kommun).
pub type PatientStay = (
    String,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<String>,
);

/// The stays with a patient discharged on the local days `from..=to`.
pub fn discharged(conn: &mut DbConn, from: NaiveDate, to: NaiveDate) -> QueryResult<Vec<PatientStay>> {
    case_facts::table
        .filter(case_facts::utskrivning_date.ge(day_text(from)))
        .filter(case_facts::utskrivning_date.le(day_text(to)))
        .filter(case_facts::patient_hash.is_not_null())
        .select(PATIENT_STAY)
        .load(conn)
}

/// The stays with a patient admitted in `[start, end)`.
pub fn admitted(conn: &mut DbConn, start: NaiveDateTime, end: NaiveDateTime) -> QueryResult<Vec<PatientStay>> {
    case_facts::table
        .filter(case_facts::inskrivning_at.ge(start))
        .filter(case_facts::inskrivning_at.lt(end))
        .filter(case_facts::patient_hash.is_not_null())
        .select(PATIENT_STAY)
        .load(conn)
}

const PATIENT_STAY: (
    case_facts::case_id,
    case_facts::patient_hash,
    case_facts::age_band,
    case_facts::inskrivning_at,
    case_facts::utskrivning_at,
    case_facts::kommun,
) = (
    case_facts::case_id,
    case_facts::patient_hash,
    case_facts::age_band,
    case_facts::inskrivning_at,
    case_facts::utskrivning_at,
    case_facts::kommun,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judged_obligations_survive_packing_and_a_bad_line_is_refused() {
        let judged = vec![
            JudgedDay {
                day: NaiveDate::from_ymd_opt(2026, 7, 1).unwrap(),
                rule: "inskrivningsmeddelande_24h".into(),
                unit: "AVD".into(),
                outcome: Outcome::Late,
            },
            JudgedDay {
                day: NaiveDate::from_ymd_opt(2026, 7, 2).unwrap(),
                rule: "kallelse_sip".into(),
                unit: "A\tB\nC".into(),
                outcome: Outcome::Missing,
            },
        ];
        assert_eq!(unpack(&pack(&judged)).unwrap(), judged);
        assert_eq!(
            pack(&judged),
            "[\"2026-07-01\",\"inskrivningsmeddelande_24h\",\"AVD\",\"late\"]\n\
             [\"2026-07-02\",\"kallelse_sip\",\"A\\tB\\nC\",\"missing\"]\n",
            "the text as it has always been stored"
        );
        assert_eq!(unpack("").unwrap(), Vec::new());
        assert_eq!(
            pack(&judged).lines().count(),
            2,
            "a unit id with a line break stays on its line"
        );
        assert!(unpack("[\"2026-07-01\",\"kallelse_sip\",\"AVD\"]\n").is_err());
        assert!(unpack("[\"2026-07-01\",\"kallelse_sip\",\"AVD\",\"maybe\"]\n").is_err());
    }

    /// A case of the given judged obligations, its other fields empty.
    fn summary(judged: Vec<JudgedDay>) -> CaseSummary {
        CaseSummary {
            case_id: "K".into(),
            hash: String::new(),
            packed: pack(&judged),
            judged,
            pending: Vec::new(),
            facts: FactsRow {
                case_id: "K".into(),
                kommuner: "[]".into(),
                patient_hash: None,
                age_band: None,
                inskrivning_at: None,
                uk_at: None,
                dag0: None,
                utskrivning_at: None,
                utskrivning_date: None,
                avslut_date: None,
                im_in_time: None,
                sip_needed: false,
                kallelse_in_time: None,
                kommun: None,
            },
        }
    }

    #[test]
    fn a_chunks_day_counts_are_its_obligations_counted_one_by_one() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 7, d).unwrap();
        let j = |d, rule: &str, unit: &str, outcome| JudgedDay {
            day: day(d),
            rule: rule.into(),
            unit: unit.into(),
            outcome,
        };
        let summaries = vec![
            summary(vec![
                j(1, "kallelse_sip", "A", Outcome::Met),
                j(1, "kallelse_sip", "A", Outcome::Late),
                j(1, "kallelse_sip", "B", Outcome::Missing),
                j(2, "kallelse_sip", "A", Outcome::Pending),
            ]),
            summary(vec![
                j(1, "kallelse_sip", "A", Outcome::Met),
                j(1, "inskrivningsmeddelande_24h", "A", Outcome::Missing),
                j(3, "kallelse_sip", "", Outcome::Late),
            ]),
        ];
        let mut one_by_one = Delta::new();
        for j in summaries.iter().flat_map(|s| &s.judged) {
            count(&mut one_by_one, j, 1);
        }
        let delta = judged_days(&summaries);
        assert_eq!(delta, one_by_one);
        let key = |d: &str, r: &str, u: &str| (d.to_string(), r.to_string(), u.to_string());
        assert_eq!(delta[&key("2026-07-01", "kallelse_sip", "A")], [2, 1, 0]);
        assert_eq!(delta[&key("2026-07-03", "kallelse_sip", "")], [0, 1, 0]);
        assert!(
            !delta.contains_key(&key("2026-07-02", "kallelse_sip", "A")),
            "a pending obligation is not counted"
        );
        assert_eq!(delta.len(), 4);
    }
}
