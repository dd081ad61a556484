//! Lead times UK → hemgång and the national indicators per kommun and month
//! (SPEC §7), and the kommuner's betalningsansvar under the two models.
//!
//! A discharge's lead time is the whole days from its dag 0 to the local date
//! of the `utskrivning` (dag 0 is day 0); a patient discharged before dag 0
//! (the UK after 12:00 and home the same day) counts as discharged on dag 0.
//! A lead time counts for every kommun whose units the counting UK went to;
//! betalningsansvar for the patient's kommun alone (SPEC §7).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use diesel::QueryResult;
use serde::Serialize;

use super::{date, one_decimal, share, Month, Period};
use crate::store::followup::{self, FactsRow};
use crate::store::DbConn;

/// The threshold of `hemgang_3d` and of betalningsansvar: an average over 3 days.
pub const LIMIT_DAYS: f64 = 3.0;

/// A case as the lead-time figures read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stay {
    pub case_id: String,
    /// The kommuner among the UK's recipients: lead times count for each.
    pub kommuner: Vec<String>,
    /// The patient's kommun (§7): betalningsansvar counts for it alone.
    pub kommun: Option<String>,
    pub dag0: Option<NaiveDate>,
    pub utskrivning: Option<NaiveDate>,
    pub im_in_time: Option<bool>,
    pub sip_needed: bool,
    pub kallelse_in_time: Option<bool>,
}

impl Stay {
    pub fn from_row(r: &FactsRow) -> Stay {
        Stay {
            case_id: r.case_id.clone(),
            kommuner: serde_json::from_str(&r.kommuner).unwrap_or_default(),
            kommun: r.kommun.clone(),
            dag0: r.dag0.as_deref().and_then(date),
            utskrivning: r.utskrivning_date.as_deref().and_then(date),
            im_in_time: r.im_in_time,
            sip_needed: r.sip_needed,
            kallelse_in_time: r.kallelse_in_time,
        }
    }

    /// Whole days from dag 0 to the utskrivning, never below 0.
    pub fn lead_days(&self) -> Option<i64> {
        Some((self.utskrivning? - self.dag0?).num_days().max(0))
    }

    /// Why this stay does not count for betalningsansvar (5 kap. Lag
    /// (2017:612)): the IM not within 24 h, no UK, or, where SIP was needed,
    /// no kallelse within three days of the UK.
    pub fn exclusions(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.im_in_time != Some(true) {
            out.push(EXCL_IM);
        }
        if self.dag0.is_none() {
            out.push(EXCL_UK);
        }
        if self.sip_needed && self.kallelse_in_time == Some(false) {
            out.push(EXCL_KALLELSE);
        }
        out
    }
}

pub const EXCL_IM: &str = "inskrivningsmeddelande_24h";
pub const EXCL_UK: &str = "utskrivningsklar";
pub const EXCL_KALLELSE: &str = "kallelse_sip";

/// What each exclusion means, as the pages print it.
pub fn exclusion_text(code: &str) -> &'static str {
    match code {
        EXCL_IM => "inget inskrivningsmeddelande inom 24 timmar",
        EXCL_UK => "ingen underrättelse om utskrivningsklar",
        EXCL_KALLELSE => "ingen kallelse till SIP i tid där SIP behövdes",
        _ => "okänt skäl",
    }
}

/// The stays discharged in `[from, to]` or still utskrivningsklar at some
/// point of it (`from` None: all history up to `to`).
pub fn load(conn: &mut DbConn, from: Option<NaiveDate>, to: NaiveDate) -> QueryResult<Vec<Stay>> {
    let rows = followup::lead_times(conn, from, to)?;
    Ok(rows.iter().map(Stay::from_row).collect())
}

/// One kommun's month (SPEC §7: lead time and SKR's indicators).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeadRow {
    pub kommun: String,
    /// `YYYY-MM`
    #[schema(value_type = String)]
    pub month: Month,
    /// Discharges in the month with a UK.
    pub discharges: i64,
    /// Medelvårdtid som utskrivningsklar: mean days from dag 0 to utskrivning, one decimal.
    pub mean_days: Option<f64>,
    /// Share of the month's discharges on dag 0, four decimals.
    pub share_dag0: Option<f64>,
    /// Utskrivningsklara dagar in the month: each day after dag 0 a patient
    /// was still in hospital (up to and including the discharge day).
    pub uk_days: i64,
    /// The mean is over 3 days (`hemgang_3d`).
    pub over_limit: bool,
}

/// Lead times per kommun and month of the period; `today` caps the
/// utskrivningsklara dagar of patients not yet discharged.
pub fn rows(stays: &[Stay], period: Period, today: NaiveDate, kommun: Option<&str>) -> Vec<LeadRow> {
    #[derive(Default)]
    struct Acc {
        n: i64,
        sum: i64,
        dag0: i64,
        uk_days: i64,
    }
    let mut acc: BTreeMap<(String, Month), Acc> = BTreeMap::new();
    for s in stays {
        let Some(dag0) = s.dag0 else { continue };
        for k in s.kommuner.iter().filter(|k| kommun.is_none_or(|x| x == k.as_str())) {
            if let (Some(ut), Some(lead)) = (s.utskrivning, s.lead_days()) {
                if period.contains(ut) {
                    let a = acc.entry((k.clone(), Month::of(ut))).or_default();
                    a.n += 1;
                    a.sum += lead;
                    a.dag0 += i64::from(lead == 0);
                }
            }
            let last = s.utskrivning.unwrap_or(today).min(period.to);
            let mut d = (dag0 + Duration::days(1)).max(period.from);
            while d <= last {
                acc.entry((k.clone(), Month::of(d))).or_default().uk_days += 1;
                d += Duration::days(1);
            }
        }
    }
    acc.into_iter()
        .map(|((kommun, month), a)| {
            let mean = (a.n > 0).then(|| a.sum as f64 / a.n as f64);
            LeadRow {
                kommun,
                month,
                discharges: a.n,
                mean_days: mean.map(one_decimal),
                share_dag0: share(a.dag0, a.n),
                uk_days: a.uk_days,
                over_limit: mean.is_some_and(|m| m > LIMIT_DAYS),
            }
        })
        .collect()
}

/// The betalningsansvar model (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Region Västerbotten: a month over 3 days starts joint analysis; three
    /// in a row start settlement from month four, until three months in a
    /// row are at or under 3 days.
    Vasterbotten,
    /// Västra Götaland: the rolling three-month average over 3 days.
    Rullande,
}

impl Model {
    pub fn parse(s: &str) -> Result<Model, String> {
        match s {
            "vasterbotten" => Ok(Model::Vasterbotten),
            "rullande" => Ok(Model::Rullande),
            _ => Err(format!(
                "modellen för betalningsansvar ska vara vasterbotten eller rullande (fick `{s}`)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Model::Vasterbotten => "vasterbotten",
            Model::Rullande => "rullande",
        }
    }
}

/// The vårddygn price per year (Socialstyrelsen's yearly figure): a year
/// not configured takes the latest year before it, else the earliest.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices(pub BTreeMap<i32, i64>);

impl Prices {
    pub fn for_year(&self, year: i32) -> i64 {
        self.0
            .range(..=year)
            .next_back()
            .or_else(|| self.0.iter().next())
            .map_or(0, |(_, p)| *p)
    }
}

/// A kommun's month under the model.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiabilityMonth {
    #[schema(value_type = String)]
    pub month: Month,
    pub discharges: i64,
    pub mean_days: Option<f64>,
    /// `rullande`: the mean over this and the two months before.
    pub rolling_mean_days: Option<f64>,
    /// `ok`, `analys` or `reglering` (vasterbotten); `ok` or `betalningsansvar` (rullande).
    pub state: String,
    /// Discharges that meet the law's prerequisites.
    pub counted: i64,
    /// Discharged stays that do not count (each once).
    pub excluded_patients: i64,
    /// Stays excluded, per reason (a stay may have several).
    pub excluded: BTreeMap<String, i64>,
    /// Utskrivningsklara days from dag 1 of the counted discharges, billed
    /// when the state is `reglering` / `betalningsansvar`.
    pub days: i64,
    pub price_per_day: i64,
    pub amount: i64,
}

/// One case of a kommun's month, to show why it counts or not (case ids only).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaseLine {
    pub case: String,
    #[schema(value_type = String)]
    pub month: Month,
    pub dag0: Option<String>,
    pub utskrivning: String,
    pub days: Option<i64>,
    pub counts: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KommunLiability {
    pub kommun: String,
    pub months: Vec<LiabilityMonth>,
    pub days: i64,
    pub amount: i64,
    /// Only when one kommun is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cases: Option<Vec<CaseLine>>,
}

/// Every kommun's betalningsansvar over the period's months. `stays` must
/// hold the history before the period too: the state of a month depends on
/// the months before it.
pub fn liability(
    stays: &[Stay],
    period: Period,
    model: Model,
    prices: &Prices,
    kommun: Option<&str>,
) -> Vec<KommunLiability> {
    let (means, kommuner) = monthly_means(stays);
    let months = period.months();
    let empty = BTreeMap::new();
    kommuner
        .iter()
        .filter(|k| kommun.is_none_or(|x| x == k.as_str()))
        .map(|k| {
            let ledger = Ledger {
                kommun: k,
                stays,
                monthly: means.get(k).unwrap_or(&empty),
                prices,
                with_cases: kommun.is_some(),
            };
            ledger.liability(&months, model)
        })
        .collect()
}

/// Per kommun and month of discharge: the discharges with a UK and their
/// lead days summed; and every kommun a stay names.
type Means = BTreeMap<String, BTreeMap<Month, (i64, i64)>>;

fn monthly_means(stays: &[Stay]) -> (Means, BTreeSet<String>) {
    let mut means: Means = BTreeMap::new();
    let mut kommuner: BTreeSet<String> = BTreeSet::new();
    for s in stays {
        for k in s.kommun.iter() {
            kommuner.insert(k.clone());
            if let (Some(ut), Some(lead)) = (s.utskrivning, s.lead_days()) {
                let e = means.entry(k.clone()).or_default().entry(Month::of(ut)).or_default();
                e.0 += 1;
                e.1 += lead;
            }
        }
    }
    (means, kommuner)
}

/// One kommun's books: its stays, its monthly means and the prices.
struct Ledger<'a> {
    kommun: &'a str,
    stays: &'a [Stay],
    monthly: &'a BTreeMap<Month, (i64, i64)>,
    prices: &'a Prices,
    /// One kommun asked for: its cases are listed too.
    with_cases: bool,
}

impl Ledger<'_> {
    fn liability(&self, months: &[Month], model: Model) -> KommunLiability {
        let mut lines = Vec::new();
        let mut kl = KommunLiability {
            kommun: self.kommun.to_string(),
            months: Vec::new(),
            days: 0,
            amount: 0,
            cases: None,
        };
        for (m, (state, rolling)) in months.iter().zip(self.states(months, model)) {
            let lm = self.month(*m, state, rolling, &mut lines);
            kl.days += lm.days;
            kl.amount += lm.amount;
            kl.months.push(lm);
        }
        if self.with_cases {
            lines.sort_by(|a, b| (&a.utskrivning, &a.case).cmp(&(&b.utskrivning, &b.case)));
            kl.cases = Some(lines);
        }
        kl
    }

    /// The state of each month under `model`, with the rolling mean where
    /// the model has one.
    fn states(&self, months: &[Month], model: Model) -> Vec<(&'static str, Option<f64>)> {
        let monthly = self.monthly;
        let over = |m: Month| {
            monthly
                .get(&m)
                .is_some_and(|(n, sum)| *n > 0 && *sum as f64 / *n as f64 > LIMIT_DAYS)
        };
        match model {
            Model::Vasterbotten => vasterbotten_states(monthly, &over, months),
            Model::Rullande => months
                .iter()
                .map(|m| {
                    let (n, sum) = (0..3).fold((0, 0), |(n, s), i| {
                        let (a, b) = monthly.get(&m.plus(-i)).copied().unwrap_or_default();
                        (n + a, s + b)
                    });
                    let rolling = (n > 0).then(|| sum as f64 / n as f64);
                    let state = if rolling.is_some_and(|r| r > LIMIT_DAYS) {
                        "betalningsansvar"
                    } else {
                        "ok"
                    };
                    (state, rolling.map(one_decimal))
                })
                .collect(),
        }
    }

    /// The month `m` in state `state`: the discharges that count, those
    /// excluded and why, the days billed; its cases added to `lines`.
    fn month(&self, m: Month, state: &str, rolling: Option<f64>, lines: &mut Vec<CaseLine>) -> LiabilityMonth {
        let (n, sum) = self.monthly.get(&m).copied().unwrap_or_default();
        let billed = state == "reglering" || state == "betalningsansvar";
        let mut lm = LiabilityMonth {
            month: m,
            discharges: n,
            mean_days: (n > 0).then(|| one_decimal(sum as f64 / n as f64)),
            rolling_mean_days: rolling,
            state: state.to_string(),
            counted: 0,
            excluded_patients: 0,
            excluded: BTreeMap::new(),
            days: 0,
            price_per_day: self.prices.for_year(m.year),
            amount: 0,
        };
        for s in self.stays.iter().filter(|s| s.kommun.as_deref() == Some(self.kommun)) {
            let Some(ut) = s.utskrivning.filter(|u| Month::of(*u) == m) else {
                continue;
            };
            let reasons = s.exclusions();
            if reasons.is_empty() {
                lm.counted += 1;
                if billed {
                    lm.days += s.lead_days().unwrap_or(0);
                }
            } else {
                lm.excluded_patients += 1;
                for r in &reasons {
                    *lm.excluded.entry((*r).to_string()).or_default() += 1;
                }
            }
            if self.with_cases {
                lines.push(CaseLine {
                    case: s.case_id.clone(),
                    month: m,
                    dag0: s.dag0.map(|d| d.to_string()),
                    utskrivning: ut.to_string(),
                    days: s.lead_days(),
                    counts: reasons.is_empty(),
                    reasons: reasons.iter().map(|r| r.to_string()).collect(),
                });
            }
        }
        lm.amount = lm.days * lm.price_per_day;
        lm
    }
}

/// The Västerbotten states of `months`, from the kommun's whole history: a
/// month is `reglering` when it follows three months over the limit, or
/// when the month before was and the three months before it were not all
/// at or under the limit; otherwise `analys` when itself over the limit.
fn vasterbotten_states(
    monthly: &BTreeMap<Month, (i64, i64)>,
    over: &dyn Fn(Month) -> bool,
    months: &[Month],
) -> Vec<(&'static str, Option<f64>)> {
    let Some(last) = months.last() else { return Vec::new() };
    let first = monthly.keys().next().copied().unwrap_or(months[0]).min(months[0]);
    let mut settling = false;
    let mut states = BTreeMap::new();
    let mut m = first;
    while m <= *last {
        let three_over = (1..=3).all(|i| over(m.plus(-i)));
        let three_under = (1..=3).all(|i| !over(m.plus(-i)));
        settling = if settling { !three_under } else { three_over };
        let state = if settling {
            "reglering"
        } else if over(m) {
            "analys"
        } else {
            "ok"
        };
        states.insert(m, state);
        m = m.next();
    }
    months
        .iter()
        .map(|m| (states.get(m).copied().unwrap_or("ok"), None))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stay(id: &str, dag0: &str, ut: &str) -> Stay {
        Stay {
            case_id: id.into(),
            kommuner: vec!["K".into()],
            kommun: Some("K".into()),
            dag0: date(dag0),
            utskrivning: date(ut),
            im_in_time: Some(true),
            sip_needed: false,
            kallelse_in_time: None,
        }
    }

    #[test]
    fn utskrivningsklara_days_fall_in_the_month_they_are_spent() {
        // Dag 0 on 29 April, home on 3 May: 1 day in April, 3 in May; lead 4.
        let stays = vec![
            stay("A", "2026-04-29", "2026-05-03"),
            stay("B", "2026-05-10", "2026-05-10"),
        ];
        let p = Period::parse("2026-04-01", "2026-05-31").unwrap();
        let today = date("2026-11-24").unwrap();
        let r = rows(&stays, p, today, None);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].month.label(), r[0].uk_days, r[0].discharges),
            ("2026-04".into(), 1, 0)
        );
        assert_eq!(
            (r[1].discharges, r[1].mean_days, r[1].share_dag0, r[1].uk_days),
            (2, Some(2.0), Some(0.5), 3)
        );
    }

    #[test]
    fn settlement_starts_in_month_four_and_ends_after_three_good_months() {
        let mut monthly = BTreeMap::new();
        let bad = [1, 2, 3, 4, 5];
        for m in 1..=12 {
            let lead = if bad.contains(&m) { 5 } else { 1 };
            monthly.insert(Month { year: 2026, month: m }, (1, lead));
        }
        let over = |m: Month| monthly.get(&m).is_some_and(|(n, s)| *s as f64 / *n as f64 > LIMIT_DAYS);
        let months: Vec<Month> = (1..=12).map(|m| Month { year: 2026, month: m }).collect();
        let s: Vec<&str> = vasterbotten_states(&monthly, &over, &months)
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(
            s,
            [
                "analys",
                "analys",
                "analys",
                "reglering",
                "reglering",
                "reglering",
                "reglering",
                "reglering",
                "ok",
                "ok",
                "ok",
                "ok"
            ]
        );
    }
}
