//! Återinskrivning inom 30 dagar (SPEC §7, seed 003): a new `inskrivning` of
//! the same patient (matched by the keyed hash, never in clear) on the day
//! of an `utskrivning` (after it) or up to 30 days later, per kommun of the
//! earlier case, month of its utskrivning and the age band kept at ingest.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;
use serde::Serialize;

use super::{share, Month, Period};
use crate::calendar::local_date;
use crate::domain::AgeBand;
use crate::store::{followup, DbConn};

/// The window: a readmission on day 30 after the discharge day counts, on day 31 not.
pub const WINDOW_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = ReadmissionRow)]
pub struct Row {
    pub kommun: String,
    #[schema(value_type = String)]
    pub month: Month,
    /// `under_65`, `65_79`, `80_plus` or `okand`.
    pub age_band: String,
    pub discharges: i64,
    pub readmitted: i64,
    pub share: Option<f64>,
}

/// A stay with its patient: (case, patient hash, age band, inskrivning,
/// utskrivning, the patient's kommun as a list of none or one).
pub type Admission = (
    String,
    String,
    Option<String>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Vec<String>,
);

pub fn load(conn: &mut DbConn, period: Period) -> QueryResult<(Vec<Admission>, Vec<Admission>)> {
    let conv = |rows: Vec<followup::PatientStay>| -> Vec<Admission> {
        rows.into_iter()
            .filter_map(|(c, p, b, i, u, k)| Some((c, p?, b, i, u, k.into_iter().collect())))
            .collect()
    };
    let discharged = followup::discharged(conn, period.from, period.to)?;
    let admitted = followup::admitted(conn, period.start(), period.end() + Duration::days(WINDOW_DAYS + 2))?;
    Ok((conv(discharged), conv(admitted)))
}

/// Rows per kommun, month and age band, from the discharges and the later admissions.
pub fn rows(discharged: &[Admission], admitted: &[Admission], kommun: Option<&str>) -> Vec<Row> {
    let mut by_patient: HashMap<&str, Vec<(&str, NaiveDateTime)>> = HashMap::new();
    for (case, patient, _, ins, _, _) in admitted {
        if let Some(ins) = ins {
            by_patient
                .entry(patient.as_str())
                .or_default()
                .push((case.as_str(), *ins));
        }
    }
    let mut acc: BTreeMap<(String, Month, String), (i64, i64)> = BTreeMap::new();
    for (case, patient, band, _, ut, kommuner) in discharged {
        let Some(ut) = ut else { continue };
        let ut_day = local_date(ut.and_utc());
        let back = by_patient.get(patient.as_str()).is_some_and(|list| {
            list.iter().any(|(other, ins)| {
                *other != case.as_str() && ins > ut && (local_date(ins.and_utc()) - ut_day).num_days() <= WINDOW_DAYS
            })
        });
        let band = band
            .as_deref()
            .and_then(AgeBand::parse)
            .map_or("okand", AgeBand::as_str)
            .to_string();
        for k in kommuner.iter().filter(|k| kommun.is_none_or(|x| x == k.as_str())) {
            let e = acc.entry((k.clone(), Month::of(ut_day), band.clone())).or_default();
            e.0 += 1;
            e.1 += i64::from(back);
        }
    }
    acc.into_iter()
        .map(|((kommun, month, age_band), (n, r))| Row {
            kommun,
            month,
            age_band,
            discharges: n,
            readmitted: r,
            share: share(r, n),
        })
        .collect()
}
