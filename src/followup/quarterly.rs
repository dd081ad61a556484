//! The quarterly LPO/LAG report (SPEC §7): for a quarter, adherence per
//! huvudman and rule with the three quarters before it, deviations by rule
//! and status, handling times, the storhelg staffing table, lead times per
//! kommun and month, betalningsansvar, readmissions, as this struct (the
//! JSON); `report` lays it out as HTML (the page, printable on A4) and CSV.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::QueryResult;
use serde::Serialize;

use super::adherence::{self, Group};
use super::leadtimes::{self, KommunLiability, LeadRow, Model, Prices};
use super::{handling, readmissions, Month, Quarter, Visible};
use crate::calendar::{in_stockholm, local_date};
use crate::rules::RuleId;
use crate::store::{reports, DbConn};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuarterAdherence {
    #[schema(value_type = String)]
    pub quarter: Quarter,
    pub rows: Vec<adherence::Row>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviationCount {
    pub rule: String,
    pub status: String,
    pub count: i64,
}

/// Each staffing day of the quarter × each covered unit: staffed or not.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaffingTable {
    pub days: Vec<String>,
    pub units: Vec<StaffingUnit>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaffingUnit {
    pub unit: String,
    /// Per day of `days`: true staffed, false not, null not judged.
    pub staffed: Vec<Option<bool>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Betalningsansvar {
    pub model: String,
    pub kommuner: Vec<KommunLiability>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Quarterly {
    #[schema(value_type = String)]
    pub quarter: Quarter,
    pub from: String,
    pub to: String,
    /// RFC 3339.
    pub generated_at: String,
    /// Whether this is the whole county (else the caller's units).
    pub county: bool,
    /// Per huvudman and rule: the quarter and the three before it, oldest first.
    pub adherence: Vec<QuarterAdherence>,
    /// Per rule, the county (or the caller's units) month by month over the four quarters.
    #[schema(value_type = Object)]
    pub trend: BTreeMap<String, Vec<adherence::TrendPoint>>,
    pub deviations: Vec<DeviationCount>,
    pub handling: Vec<handling::Row>,
    pub open_by_age: Vec<handling::AgeBucket>,
    pub staffing: StaffingTable,
    pub leadtimes: Vec<LeadRow>,
    pub betalningsansvar: Betalningsansvar,
    pub readmissions: Vec<readmissions::Row>,
}

/// Assembles the report of `quarter` for what `visible` admits, as of `now`.
pub fn build(
    conn: &mut DbConn,
    quarter: Quarter,
    visible: Visible,
    model: Model,
    prices: &Prices,
    now: DateTime<Utc>,
) -> anyhow::Result<Quarterly> {
    let period = quarter.period();
    let units = crate::store::units::all(conn)?;
    let mut quarters = Vec::new();
    for back in (0..4).rev() {
        let q = quarter.minus(back);
        let p = q.period();
        let tally = adherence::Tally::load(conn, p, None, visible)?;
        quarters.push(QuarterAdherence {
            quarter: q,
            rows: adherence::rows(&tally, &units, Group::Huvudman, visible),
        });
    }
    let first = quarter.minus(3).first_month();
    let months: Vec<Month> = (0..12).map(|i| first.plus(i)).collect();
    let trend = adherence::trend(conn, &months, None, visible, &|_| true)?;
    let deviations = deviation_counts(conn, period.start(), period.end(), visible)?;
    let handling_rows = handling::report(conn, period, visible)?;
    let open_by_age = handling::open_by_age(conn, visible, now.naive_utc())?;
    let staffing = staffing_table(conn, period, visible)?;
    let today = local_date(now);
    let stays = leadtimes::load(conn, None, period.to)?;
    let mut leadtimes_rows = leadtimes::rows(&stays, period, today, None);
    keep_visible_kommuner(&mut leadtimes_rows, &units, visible, |r| &r.kommun);
    let mut kommuner = leadtimes::liability(&stays, period, model, prices, None);
    keep_visible_kommuner(&mut kommuner, &units, visible, |r| &r.kommun);
    let (discharged, admitted) = readmissions::load(conn, period)?;
    let mut readmission_rows = readmissions::rows(&discharged, &admitted, None);
    keep_visible_kommuner(&mut readmission_rows, &units, visible, |r| &r.kommun);
    Ok(Quarterly {
        quarter,
        from: period.from.to_string(),
        to: period.to.to_string(),
        generated_at: in_stockholm(now).to_rfc3339(),
        county: visible.is_county(),
        adherence: quarters,
        trend,
        deviations,
        handling: handling_rows,
        open_by_age,
        staffing,
        leadtimes: leadtimes_rows,
        betalningsansvar: Betalningsansvar {
            model: model.as_str().to_string(),
            kommuner,
        },
        readmissions: readmission_rows,
    })
}

/// The kommuner a caller with units may see the figures of: the huvudmän
/// of the kommun units in their scope. `None`: all (the county).
pub fn kommuner_in_scope(units: &[crate::domain::Unit], visible: Visible) -> Option<BTreeSet<String>> {
    visible.0.map(|own| {
        units
            .iter()
            .filter(|u| u.kind == crate::domain::UnitKind::Kommun && own.contains(u.id.as_str()))
            .map(|u| u.huvudman.clone())
            .collect()
    })
}

/// Keeps the rows of the kommuner the caller may see.
pub fn keep_visible_kommuner<T>(
    rows: &mut Vec<T>,
    units: &[crate::domain::Unit],
    visible: Visible,
    kommun: impl Fn(&T) -> &str,
) {
    if let Some(allowed) = kommuner_in_scope(units, visible) {
        rows.retain(|r| allowed.contains(kommun(r)));
    }
}

fn deviation_counts(
    conn: &mut DbConn,
    start: NaiveDateTime,
    end: NaiveDateTime,
    visible: Visible,
) -> QueryResult<Vec<DeviationCount>> {
    let rows = reports::deviation_counts(conn, start, end)?;
    let mut acc: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (rule, unit, status, n) in rows {
        if visible.unit(unit.as_deref()) {
            *acc.entry((rule, status)).or_default() += n;
        }
    }
    Ok(acc
        .into_iter()
        .map(|((rule, status), count)| DeviationCount { rule, status, count })
        .collect())
}

/// The judged staffing obligations of the period's days: (unit, day, outcome)
/// of every visible unit.
pub fn staffing_outcomes(
    conn: &mut DbConn,
    period: super::Period,
    visible: Visible,
) -> QueryResult<Vec<(String, chrono::NaiveDate, String)>> {
    let rows = reports::staffing_obligations(conn, RuleId::BemanningStorhelg.as_str(), period.start(), period.end())?;
    Ok(rows
        .into_iter()
        .filter_map(|(unit, due, outcome)| {
            let unit = unit.filter(|u| visible.unit(Some(u)))?;
            Some((unit, local_date(due.and_utc()), outcome))
        })
        .collect())
}

fn staffing_table(conn: &mut DbConn, period: super::Period, visible: Visible) -> QueryResult<StaffingTable> {
    let mut days: BTreeSet<String> = BTreeSet::new();
    let mut cells: BTreeMap<String, BTreeMap<String, Option<bool>>> = BTreeMap::new();
    for (unit, day, outcome) in staffing_outcomes(conn, period, visible)? {
        let day = day.to_string();
        days.insert(day.clone());
        let v = match outcome.as_str() {
            "met" => Some(true),
            "missing" | "late" => Some(false),
            _ => None,
        };
        cells.entry(unit).or_default().insert(day, v);
    }
    let days: Vec<String> = days.into_iter().collect();
    Ok(StaffingTable {
        units: cells
            .into_iter()
            .map(|(unit, c)| StaffingUnit {
                staffed: days.iter().map(|d| c.get(d).copied().flatten()).collect(),
                unit,
            })
            .collect(),
        days,
    })
}
