//! The Swedish calendar of SPEC §5, pure: public holidays (Lag (1989:253) om
//! allmänna helgdagar) and the de facto non-working eves for 1990–2200,
//! klämdagar, storhelg blocks and their staffing days, and the local-time
//! notions the rules use (dag 0, end of day). Local time is Europe/Stockholm
//! with daylight saving. No database, no clock, no network.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Europe::Stockholm;
use serde::Serialize;

pub const FIRST_YEAR: i32 = 1990;
pub const LAST_YEAR: i32 = 2200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holiday {
    #[serde(serialize_with = "ser_date")]
    pub date: NaiveDate,
    pub name: &'static str,
    /// false for the de facto non-working eves (påskafton, midsommarafton, julafton, nyårsafton)
    pub legal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StaffingDay {
    #[serde(serialize_with = "ser_date")]
    pub date: NaiveDate,
    #[serde(serialize_with = "ser_date")]
    pub block_start: NaiveDate,
    #[serde(serialize_with = "ser_date")]
    pub block_end: NaiveDate,
}

fn ser_date<S: serde::Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&d.format("%Y-%m-%d"))
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    // Callers pass fixed, valid month/day pairs; the fallback is unreachable.
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// Easter Sunday by the anonymous Gregorian computus (Meeus/Jones/Butcher).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(year, month as u32, day as u32)
}

/// The Saturday in `first ..= first + 6 days`.
fn saturday_from(first: NaiveDate) -> NaiveDate {
    let ahead = (Weekday::Sat.num_days_from_monday() + 7 - first.weekday().num_days_from_monday()) % 7;
    first + Duration::days(i64::from(ahead))
}

/// Every holiday and de facto non-working eve of the year, in date order.
pub fn holidays(year: i32) -> Vec<Holiday> {
    let e = easter(year);
    let midsommar = saturday_from(ymd(year, 6, 20));
    let legal = |date, name| Holiday {
        date,
        name,
        legal: true,
    };
    let eve = |date, name| Holiday {
        date,
        name,
        legal: false,
    };
    let mut out = vec![
        legal(ymd(year, 1, 1), "Nyårsdagen"),
        legal(ymd(year, 1, 6), "Trettondedag jul"),
        legal(e - Duration::days(2), "Långfredagen"),
        eve(e - Duration::days(1), "Påskafton"),
        legal(e, "Påskdagen"),
        legal(e + Duration::days(1), "Annandag påsk"),
        legal(ymd(year, 5, 1), "Första maj"),
        legal(e + Duration::days(39), "Kristi himmelsfärdsdag"),
        legal(e + Duration::days(49), "Pingstdagen"),
        eve(midsommar - Duration::days(1), "Midsommarafton"),
        legal(midsommar, "Midsommardagen"),
        legal(saturday_from(ymd(year, 10, 31)), "Alla helgons dag"),
        eve(ymd(year, 12, 24), "Julafton"),
        legal(ymd(year, 12, 25), "Juldagen"),
        legal(ymd(year, 12, 26), "Annandag jul"),
        eve(ymd(year, 12, 31), "Nyårsafton"),
    ];
    // Lag (2004:1320): nationaldagen became a holiday from 2005, replacing annandag pingst.
    if year >= 2005 {
        out.push(legal(ymd(year, 6, 6), "Sveriges nationaldag"));
    } else {
        out.push(legal(e + Duration::days(50), "Annandag pingst"));
    }
    out.sort_by_key(|h| (h.date, !h.legal));
    out
}

/// The working-day calendar around some years, built once and queried often.
#[derive(Debug, Clone)]
pub struct Calendar {
    holiday_dates: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar::new()
    }
}

impl Calendar {
    pub fn new() -> Calendar {
        let holiday_dates = (FIRST_YEAR - 1..=LAST_YEAR + 1)
            .flat_map(holidays)
            .map(|h| h.date)
            .collect();
        Calendar { holiday_dates }
    }

    pub fn is_holiday(&self, d: NaiveDate) -> bool {
        self.holiday_dates.contains(&d)
    }

    /// Saturday, Sunday, a public holiday or a de facto one.
    pub fn is_non_working(&self, d: NaiveDate) -> bool {
        matches!(d.weekday(), Weekday::Sat | Weekday::Sun) || self.is_holiday(d)
    }

    /// A single working day with non-working days on both sides.
    pub fn is_klamdag(&self, d: NaiveDate) -> bool {
        !self.is_non_working(d)
            && self.is_non_working(d - Duration::days(1))
            && self.is_non_working(d + Duration::days(1))
    }

    fn off(&self, d: NaiveDate) -> bool {
        self.is_non_working(d) || self.is_klamdag(d)
    }

    /// Storhelg blocks overlapping `from ..= to`: maximal runs of non-working
    /// days (klämdagar counted as non-working), at least 3 days long, holding
    /// a public holiday.
    pub fn blocks(&self, from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
        let mut out = Vec::new();
        let mut d = from - Duration::days(10);
        let end = to + Duration::days(10);
        while d <= end {
            if !self.off(d) {
                d += Duration::days(1);
                continue;
            }
            let start = d;
            while self.off(d + Duration::days(1)) {
                d += Duration::days(1);
            }
            let len = (d - start).num_days() + 1;
            let has_holiday = start.iter_days().take(len as usize).any(|x| self.is_holiday(x));
            if len >= 3 && has_holiday && d >= from && start <= to {
                out.push((start, d));
            }
            d += Duration::days(1);
        }
        out
    }

    /// SPEC §5: whenever 3 days in a row would be unstaffed, staff one of
    /// them — the latest klämdag among them, else the third — and count on
    /// from the day after it.
    pub fn block_staffing(&self, start: NaiveDate, end: NaiveDate) -> Vec<NaiveDate> {
        let days: Vec<NaiveDate> = start.iter_days().take_while(|d| *d <= end).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i + 3 <= days.len() {
            let window = &days[i..i + 3];
            let pick = window.iter().rposition(|d| self.is_klamdag(*d)).unwrap_or(2);
            out.push(window[pick]);
            i += pick + 1;
        }
        out
    }

    /// Staffing days whose date falls in `from ..= to`, a published table
    /// replacing the computed days of every block that holds one of its dates.
    /// A published date outside every block stands as its own one-day block.
    pub fn staffing_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        published: &BTreeMap<i32, Vec<NaiveDate>>,
    ) -> Vec<StaffingDay> {
        let table: BTreeSet<NaiveDate> = published.values().flatten().copied().collect();
        let mut used = BTreeSet::new();
        let mut out = Vec::new();
        for (bs, be) in self.blocks(from - Duration::days(31), to + Duration::days(31)) {
            let in_table: Vec<NaiveDate> = table.range(bs..=be).copied().collect();
            used.extend(in_table.iter().copied());
            let days = if in_table.is_empty() {
                self.block_staffing(bs, be)
            } else {
                in_table
            };
            out.extend(days.into_iter().map(|date| StaffingDay {
                date,
                block_start: bs,
                block_end: be,
            }));
        }
        out.extend(table.difference(&used).map(|&date| StaffingDay {
            date,
            block_start: date,
            block_end: date,
        }));
        out.retain(|s| s.date >= from && s.date <= to);
        out.sort();
        out.dedup();
        out
    }
}

/// The local (Europe/Stockholm) instant of a wall-clock time on a date. A
/// time in the spring gap moves forward by the gap; an ambiguous autumn time
/// takes the earlier instant. The rules only ask for 12:00, 15:00 and
/// 23:59:59, which always exist once.
pub fn local_instant(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(time);
    match Stockholm.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let later = naive + Duration::hours(1);
            Stockholm
                .from_local_datetime(&later)
                .earliest()
                .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc))
        }
    }
}

pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Stockholm).date_naive()
}

/// 23:59:59 local time on `d` (SPEC §4: "end of day D").
pub fn end_of_day(d: NaiveDate) -> DateTime<Utc> {
    local_instant(d, NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default())
}

/// Dag 0 after the 12:00 brytpunkt: the local date if the local time is
/// before 12:00:00, else the next day (12:00:00 itself counts as after).
pub fn dag0(t: DateTime<Utc>) -> NaiveDate {
    let local = t.with_timezone(&Stockholm);
    if local.hour() < 12 {
        local.date_naive()
    } else {
        local.date_naive() + Duration::days(1)
    }
}

/// An instant rendered with the Stockholm offset in force then.
pub fn in_stockholm(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&Stockholm).fixed_offset()
}

/// The contract of `svu-vakt calendar YEAR --format json` (SPEC §8).
#[derive(Debug, Clone, Serialize)]
pub struct YearCalendar {
    pub holidays: Vec<Holiday>,
    pub staffing_days: Vec<StaffingDay>,
}

/// A year's holidays and staffing days; a block crossing New Year lends each
/// staffing day to the year it falls in.
pub fn year_calendar(year: i32, published: &BTreeMap<i32, Vec<NaiveDate>>) -> YearCalendar {
    let cal = Calendar::new();
    YearCalendar {
        holidays: holidays(year),
        staffing_days: cal.staffing_days(ymd(year, 1, 1), ymd(year, 12, 31), published),
    }
}
