//! Handling figures (SPEC §7): median and 90th percentile time from
//! `skickad` to `mottagen` and to `avslutad` per unit and rule, and the open
//! deviations by age. Percentiles are nearest-rank: the smallest value with
//! at least p % of the values at or below it.

use crate::domain::handling::DeviationStatus::{self, Avslutad, Mottagen};
use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde::Serialize;

use super::{one_decimal, Period, Visible};
use crate::store::{reports, DbConn};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = HandlingRow)]
pub struct Row {
    pub unit: String,
    pub rule: String,
    /// Deviations mailed (`skickad`) in the period.
    pub sent: i64,
    pub received: i64,
    /// Hours from skickad to mottagen, one decimal.
    pub to_received_median_h: Option<f64>,
    pub to_received_p90_h: Option<f64>,
    pub closed: i64,
    pub to_closed_median_h: Option<f64>,
    pub to_closed_p90_h: Option<f64>,
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

fn hours(s: Option<i64>) -> Option<f64> {
    s.map(|s| one_decimal(s as f64 / 3600.0))
}

pub fn report(conn: &mut DbConn, period: Period, visible: Visible) -> QueryResult<Vec<Row>> {
    let sent = reports::sent_between(conn, period.start(), period.end())?;
    let ids: Vec<i64> = sent.iter().map(|s| s.0).collect();
    let mut later: BTreeMap<(i64, DeviationStatus), NaiveDateTime> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let rows = reports::steps_to(conn, chunk, &[Mottagen, Avslutad])?;
        for (id, status, at) in rows {
            let e = later.entry((id, status)).or_insert(at);
            *e = (*e).min(at);
        }
    }
    // (unit, rule) → (mailed, seconds to mottagen, seconds to avslutad)
    type Times = (i64, Vec<i64>, Vec<i64>);
    let mut acc: BTreeMap<(String, String), Times> = BTreeMap::new();
    let mut first_sent: BTreeMap<i64, (String, Option<String>, NaiveDateTime)> = BTreeMap::new();
    for (id, rule, unit, at) in sent {
        let e = first_sent.entry(id).or_insert((rule, unit, at));
        e.2 = e.2.min(at);
    }
    for (id, (rule, unit, at)) in first_sent {
        if !visible.unit(unit.as_deref()) {
            continue;
        }
        let e = acc
            .entry((unit.unwrap_or_else(|| super::adherence::NO_UNIT.to_string()), rule))
            .or_default();
        e.0 += 1;
        if let Some(t) = later.get(&(id, Mottagen)) {
            e.1.push((*t - at).num_seconds().max(0));
        }
        if let Some(t) = later.get(&(id, Avslutad)) {
            e.2.push((*t - at).num_seconds().max(0));
        }
    }
    Ok(acc
        .into_iter()
        .map(|((unit, rule), (n, mut r, mut c))| {
            r.sort_unstable();
            c.sort_unstable();
            Row {
                unit,
                rule,
                sent: n,
                received: r.len() as i64,
                to_received_median_h: hours(percentile(&r, 50.0)),
                to_received_p90_h: hours(percentile(&r, 90.0)),
                closed: c.len() as i64,
                to_closed_median_h: hours(percentile(&c, 50.0)),
                to_closed_p90_h: hours(percentile(&c, 90.0)),
            }
        })
        .collect())
}

/// Open deviations by age, as of `now`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgeBucket {
    pub label: String,
    pub open: i64,
}

pub const AGE_BUCKETS: [(i64, &str); 4] = [
    (7, "0–7 dagar"),
    (14, "8–14 dagar"),
    (30, "15–30 dagar"),
    (i64::MAX, "över 30 dagar"),
];

pub fn open_by_age(conn: &mut DbConn, visible: Visible, now: NaiveDateTime) -> QueryResult<Vec<AgeBucket>> {
    let open = reports::created_in_status(conn, &crate::domain::handling::OPEN)?;
    let mut counts = [0i64; 4];
    for (unit, created) in open {
        if !visible.unit(unit.as_deref()) {
            continue;
        }
        let days = (now - created).num_days();
        let i = AGE_BUCKETS.iter().position(|(max, _)| days <= *max).unwrap_or(3);
        counts[i] += 1;
    }
    Ok(AGE_BUCKETS
        .iter()
        .zip(counts)
        .map(|((_, label), open)| AgeBucket {
            label: label.to_string(),
            open,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 90.0), Some(9));
        assert_eq!(percentile(&[7], 90.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
