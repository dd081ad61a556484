//! The follow-up of SPEC §7: adherence, lead times and the national
//! indicators, betalningsansvar, readmissions, handling times, the quarterly
//! LPO/LAG report and förvarning. Every figure is computed from what the scan
//! kept (`obligations`, `case_facts`) and from the deviations' history; the
//! arithmetic is pure and lives beside each query so it can be tested on
//! hand-computed data.
//!
//! Periods are local dates in Europe/Stockholm, both ends included: an
//! obligation belongs to the period its due falls in, `[00:00 of from,
//! 00:00 of the day after to)`.

pub mod adherence;
pub mod charts;
pub mod forvarning;
pub mod handling;
pub mod leadtimes;
pub mod quarterly;
pub mod readmissions;

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;

use crate::calendar::local_instant;

/// What a caller may see: every unit, or these (subtrees already expanded).
#[derive(Debug, Clone, Copy)]
pub struct Visible<'a>(pub Option<&'a HashSet<String>>);

impl Visible<'_> {
    pub const ALL: Visible<'static> = Visible(None);

    pub fn unit(&self, id: Option<&str>) -> bool {
        match self.0 {
            None => true,
            Some(own) => id.is_some_and(|u| own.contains(u)),
        }
    }

    pub fn is_county(&self) -> bool {
        self.0.is_none()
    }
}

/// A period of local dates, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Period, String> {
        if to < from {
            return Err(format!("`to` ({to}) ligger före `from` ({from})"));
        }
        if (to - from).num_days() > 366 * 20 {
            return Err("en period får vara högst 20 år".into());
        }
        Ok(Period { from, to })
    }

    pub fn parse(from: &str, to: &str) -> Result<Period, String> {
        let d = |s: &str, name: &str| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| format!("`{name}` ska vara ett datum ÅÅÅÅ-MM-DD (fick `{s}`)"))
        };
        Period::new(d(from, "from")?, d(to, "to")?)
    }

    /// The first instant of the period, as stored (UTC).
    pub fn start(&self) -> NaiveDateTime {
        local_instant(self.from, NaiveTime::MIN).naive_utc()
    }

    /// The first instant after the period, as stored (UTC).
    pub fn end(&self) -> NaiveDateTime {
        local_instant(self.to + Duration::days(1), NaiveTime::MIN).naive_utc()
    }

    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }

    /// The calendar months the period touches, in order.
    pub fn months(&self) -> Vec<Month> {
        let mut out = Vec::new();
        let mut m = Month::of(self.from);
        while m.first() <= self.to {
            out.push(m);
            m = m.next();
        }
        out
    }
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn of(d: NaiveDate) -> Month {
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    pub fn first(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }

    pub fn last(&self) -> NaiveDate {
        self.next().first() - Duration::days(1)
    }

    pub fn next(&self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn prev(&self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn plus(&self, n: i32) -> Month {
        let idx = self.year * 12 + self.month as i32 - 1 + n;
        Month {
            year: idx.div_euclid(12),
            month: (idx.rem_euclid(12) + 1) as u32,
        }
    }

    pub fn period(&self) -> Period {
        Period {
            from: self.first(),
            to: self.last(),
        }
    }

    pub fn label(&self) -> String {
        format!("{}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.label())
    }
}

/// A quarter, `2026-Q2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quarter {
    pub year: i32,
    pub q: u32,
}

impl Quarter {
    pub fn parse(s: &str) -> Result<Quarter, String> {
        let err = || format!("kvartalet skrivs ÅÅÅÅ-QN, t.ex. 2026-Q2 (fick `{s}`)");
        let (y, q) = s.trim().split_once("-Q").ok_or_else(err)?;
        let year: i32 = y.parse().map_err(|_| err())?;
        let q: u32 = q.parse().map_err(|_| err())?;
        if !(1..=4).contains(&q) || !(1990..=2200).contains(&year) {
            return Err(err());
        }
        Ok(Quarter { year, q })
    }

    pub fn of(d: NaiveDate) -> Quarter {
        Quarter {
            year: d.year(),
            q: (d.month() - 1) / 3 + 1,
        }
    }

    pub fn first_month(&self) -> Month {
        Month {
            year: self.year,
            month: (self.q - 1) * 3 + 1,
        }
    }

    pub fn period(&self) -> Period {
        Period {
            from: self.first_month().first(),
            to: self.first_month().plus(2).last(),
        }
    }

    pub fn minus(&self, n: i32) -> Quarter {
        let idx = self.year * 4 + self.q as i32 - 1 - n;
        Quarter {
            year: idx.div_euclid(4),
            q: (idx.rem_euclid(4) + 1) as u32,
        }
    }

    pub fn label(&self) -> String {
        format!("{}-Q{}", self.year, self.q)
    }
}

impl Serialize for Quarter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.label())
    }
}

/// A share rounded to four decimals (what a report prints), `None` of nothing.
pub fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

/// Rounded to one decimal.
pub fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub(crate) fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_and_months_count_across_years() {
        let q = Quarter::parse("2026-Q1").unwrap();
        assert_eq!(q.minus(1).label(), "2025-Q4");
        assert_eq!(q.minus(3).label(), "2025-Q2");
        assert_eq!(q.period().to.to_string(), "2026-03-31");
        assert!(Quarter::parse("2026-Q5").is_err());
        assert!(Quarter::parse("2026Q1").is_err());
        let m = Month { year: 2026, month: 1 };
        assert_eq!(m.plus(-1).label(), "2025-12");
        assert_eq!(m.plus(14).label(), "2027-03");
        assert_eq!(Month { year: 2024, month: 2 }.last().to_string(), "2024-02-29");
    }

    #[test]
    fn a_period_is_half_open_in_stockholm_time() {
        let p = Period::parse("2026-04-01", "2026-06-30").unwrap();
        // 00:00 local on 1 April (summer time) is 22:00 UTC the day before.
        assert_eq!(p.start().to_string(), "2026-03-31 22:00:00");
        assert_eq!(p.end().to_string(), "2026-06-30 22:00:00");
        assert!(Period::parse("2026-05-01", "2026-04-01").is_err());
    }
}
