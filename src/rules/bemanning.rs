//! §4.4 `bemanning_storhelg`: every registered unit covered by the storhelg
//! recommendation is staffed on every staffing day — shown by a `bemanning`
//! event dated that day (any time), or by acts of the unit that day in both
//! readings: the morning (08:00:00–11:59:59) and the afternoon
//! (14:00:00–15:00:00) local time (seed 000: "så att man kan läsa och
//! hantera ärenden kl. 8 och 14"; one act in the morning alone is not a
//! staffed day). Due 15:00:00; never `late`. Units are observed event by
//! event, so a whole county's history needs memory only for (unit, day) pairs.

use std::collections::HashMap;

type Fast = foldhash::fast::RandomState;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Europe::Stockholm;

use super::{finding, Finding, Obligation, Outcome, Profile, RuleId, Status, Units};
use crate::calendar::{local_date, local_instant, Calendar};
use crate::domain::{Event, EventType, UnitId};

const MORNING: std::ops::RangeInclusive<u32> = (8 * 3600)..=(12 * 3600 - 1);
const AFTERNOON: std::ops::RangeInclusive<u32> = (14 * 3600)..=(15 * 3600);

/// What a unit showed on a day: bits of [`BEMANNING`], [`MORNING_ACT`], [`AFTERNOON_ACT`].
const BEMANNING: u8 = 1;
const MORNING_ACT: u8 = 2;
const AFTERNOON_ACT: u8 = 4;

/// The local day of an act at `at`, and the bit it shows (0: none).
fn mark(kind: EventType, at: DateTime<Utc>) -> (NaiveDate, u8) {
    let local = at.with_timezone(&Stockholm);
    let secs = local.num_seconds_from_midnight();
    let bit = if kind == EventType::Bemanning {
        BEMANNING
    } else if MORNING.contains(&secs) {
        MORNING_ACT
    } else if AFTERNOON.contains(&secs) {
        AFTERNOON_ACT
    } else {
        0
    };
    (local.date_naive(), bit)
}

/// A unit's entry in the unit-day register (`store::unit_days`, kept at
/// ingest): its first act of the local day, and its first act of each kind
/// that shows staffing. A day's staffing by T depends on nothing else, so
/// the scan judges a day from these instead of the day's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitDay {
    pub unit: String,
    pub day: NaiveDate,
    pub first: DateTime<Utc>,
    pub bemanning: Option<DateTime<Utc>>,
    pub morning: Option<DateTime<Utc>>,
    pub afternoon: Option<DateTime<Utc>>,
}

impl UnitDay {
    /// Takes in another entry of the same unit and day: each instant the earlier.
    pub fn merge(&mut self, o: &UnitDay) {
        let earlier = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.first = self.first.min(o.first);
        self.bemanning = earlier(self.bemanning, o.bemanning);
        self.morning = earlier(self.morning, o.morning);
        self.afternoon = earlier(self.afternoon, o.afternoon);
    }

    /// The register entries of some acts (unit, type, instant), one per
    /// (unit, local day), sorted.
    pub fn of_acts<'a>(acts: impl IntoIterator<Item = (&'a str, EventType, DateTime<Utc>)>) -> Vec<UnitDay> {
        let mut by: HashMap<(&'a str, NaiveDate), UnitDay> = HashMap::new();
        for (unit, kind, at) in acts {
            let (day, bit) = mark(kind, at);
            let d = by.entry((unit, day)).or_insert_with(|| UnitDay {
                unit: unit.to_string(),
                day,
                first: at,
                bemanning: None,
                morning: None,
                afternoon: None,
            });
            d.first = d.first.min(at);
            let slot = match bit {
                BEMANNING => &mut d.bemanning,
                MORNING_ACT => &mut d.morning,
                AFTERNOON_ACT => &mut d.afternoon,
                _ => continue,
            };
            *slot = Some(slot.map_or(at, |x| x.min(at)));
        }
        let mut out: Vec<UnitDay> = by.into_values().collect();
        out.sort_by(|a, b| (&a.unit, a.day).cmp(&(&b.unit, b.day)));
        out
    }
}

#[derive(Debug, Default)]
pub struct StaffingTracker {
    /// Per unit, per local day (nested, so looking up a unit copies nothing).
    shown: HashMap<UnitId, HashMap<NaiveDate, u8, Fast>, Fast>,
    earliest: Option<DateTime<Utc>>,
}

impl StaffingTracker {
    /// Notes one event; events after T have not happened and are ignored.
    pub fn observe(&mut self, e: &Event, units: &Units, as_of: DateTime<Utc>) {
        let at = DateTime::from_timestamp(e.at.timestamp(), 0).unwrap_or_default();
        self.observe_act(&e.unit, e.kind, at, units, as_of);
    }

    /// Notes that `unit` did `kind` at `at` (the scan feeds stored events
    /// through here without building whole events).
    pub fn observe_act(
        &mut self,
        unit: &UnitId,
        kind: EventType,
        at: DateTime<Utc>,
        units: &Units,
        as_of: DateTime<Utc>,
    ) {
        if at > as_of {
            return;
        }
        self.earliest = Some(self.earliest.map_or(at, |x| x.min(at)));
        if !units.get(unit).is_some_and(|u| u.storhelg) {
            return;
        }
        let (day, bit) = mark(kind, at);
        if bit == 0 {
            return;
        }
        if !self.shown.contains_key(unit) {
            self.shown.insert(unit.clone(), HashMap::default());
        }
        if let Some(days) = self.shown.get_mut(unit) {
            *days.entry(day).or_default() |= bit;
        }
    }

    /// Notes a unit's day from its register entry, as its acts would be:
    /// the first act of each kind is the one that decides by T.
    pub fn observe_day(&mut self, d: &UnitDay, units: &Units, as_of: DateTime<Utc>) {
        let unit = UnitId(d.unit.clone());
        if d.first <= as_of {
            self.earliest = Some(self.earliest.map_or(d.first, |x| x.min(d.first)));
        }
        let marks = [
            (EventType::Bemanning, d.bemanning),
            (EventType::Inskrivning, d.morning),
            (EventType::Inskrivning, d.afternoon),
        ];
        for (kind, at) in marks {
            if let Some(at) = at {
                self.observe_act(&unit, kind, at, units, as_of);
            }
        }
    }

    /// Takes in what another tracker observed (`check` keeps one per block
    /// of lines on its worker threads): the same as observing its acts here.
    pub fn absorb(&mut self, other: StaffingTracker) {
        if let Some(at) = other.earliest {
            self.earliest = Some(self.earliest.map_or(at, |x| x.min(at)));
        }
        for (unit, days) in other.shown {
            let mine = self.shown.entry(unit).or_default();
            for (day, bits) in days {
                *mine.entry(day).or_default() |= bits;
            }
        }
    }

    /// Whether `unit` counts as staffed on `day` by what was observed: a
    /// `bemanning`, or acts in both readings.
    pub fn is_staffed(&self, unit: &UnitId, day: NaiveDate) -> bool {
        self.shown
            .get(unit)
            .and_then(|days| days.get(&day))
            .is_some_and(|b| b & BEMANNING != 0 || b & (MORNING_ACT | AFTERNOON_ACT) == MORNING_ACT | AFTERNOON_ACT)
    }

    /// Missing staffing on every staffing day from the earliest event's local
    /// date up to T whose 15:00 has passed.
    pub fn findings(
        &self,
        units: &Units,
        calendar: &Calendar,
        profile: &Profile,
        as_of: DateTime<Utc>,
    ) -> Vec<Finding> {
        let Some(earliest) = self.earliest else {
            return Vec::new();
        };
        self.findings_from(local_date(earliest), units, calendar, profile, as_of)
    }

    /// The same, from the local date `from` on: an incremental scan judges a
    /// window, and has observed the events of its staffing days.
    pub fn findings_from(
        &self,
        from: NaiveDate,
        units: &Units,
        calendar: &Calendar,
        profile: &Profile,
        as_of: DateTime<Utc>,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for (day, due) in staffing_dues(from, calendar, profile, as_of) {
            for unit in units.storhelg_units() {
                out.extend(self.judge(&unit.id, day, due).1);
            }
        }
        out
    }

    /// One covered unit on one staffing day, due `due`: its obligation, and
    /// the finding when it was not staffed. An incremental scan judges the
    /// (unit, day) pairs whose register entry changed with it.
    pub fn judge(&self, unit: &UnitId, day: NaiveDate, due: DateTime<Utc>) -> (Obligation, Option<Finding>) {
        let staffed = self.is_staffed(unit, day);
        let obligation = Obligation {
            rule: RuleId::BemanningStorhelg,
            unit: Some(unit.clone()),
            due,
            outcome: if staffed { Outcome::Met } else { Outcome::Missing },
            done: None,
        };
        let missing = (!staffed).then(|| {
            finding(
                RuleId::BemanningStorhelg,
                None,
                Some(unit),
                due,
                (Status::Missing, None, None),
            )
        });
        (obligation, missing)
    }

    /// Every staffing day × covered unit from `from` up to T whose due has
    /// passed, met or missing: what adherence and the quarterly staffing
    /// table read.
    pub fn obligations_from(
        &self,
        from: NaiveDate,
        units: &Units,
        calendar: &Calendar,
        profile: &Profile,
        as_of: DateTime<Utc>,
    ) -> Vec<Obligation> {
        let mut out = Vec::new();
        for (day, due) in staffing_dues(from, calendar, profile, as_of) {
            for unit in units.storhelg_units() {
                out.push(self.judge(&unit.id, day, due).0);
            }
        }
        out
    }
}

/// The staffing days from `from` up to T whose due (15:00:00) has passed, with that due.
pub fn staffing_dues(
    from: NaiveDate,
    calendar: &Calendar,
    profile: &Profile,
    as_of: DateTime<Utc>,
) -> Vec<(NaiveDate, DateTime<Utc>)> {
    let until = NaiveTime::from_hms_opt(15, 0, 0).unwrap_or_default();
    calendar
        .staffing_days(from, local_date(as_of), &profile.staffing_tables)
        .into_iter()
        .map(|day| (day.date, local_instant(day.date, until)))
        .filter(|(_, due)| *due < as_of)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Unit;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap()
    }

    fn storhelg_unit() -> Units {
        Units::new(vec![Unit {
            id: UnitId("AVD".into()),
            name: "Avdelning".into(),
            kind: crate::domain::UnitKind::Slutenvard,
            huvudman: "Region".into(),
            parent: None,
            email: None,
            chef_email: None,
            storhelg: true,
            email_given: false,
            chef_email_given: false,
        }])
    }

    /// A day judged from its register entry is judged as from its acts,
    /// whatever T: before, between and after the acts that decide.
    #[test]
    fn a_register_entry_judges_a_day_as_its_acts_do() {
        let units = storhelg_unit();
        let day = NaiveDate::from_ymd_opt(2026, 12, 26).unwrap();
        let days: Vec<Vec<(EventType, &str)>> = vec![
            vec![
                (EventType::Inskrivning, "2026-12-26T09:00:00+01:00"),
                (EventType::Utskrivning, "2026-12-26T14:30:00+01:00"),
            ],
            vec![
                (EventType::Inskrivning, "2026-12-26T07:00:00+01:00"),
                (EventType::Bemanning, "2026-12-26T16:00:00+01:00"),
            ],
            vec![
                (EventType::Inskrivning, "2026-12-26T10:00:00+01:00"),
                (EventType::Inskrivning, "2026-12-26T11:00:00+01:00"),
            ],
            vec![
                (EventType::Bemanning, "2026-12-26T09:30:00+01:00"),
                (EventType::Utskrivning, "2026-12-26T15:00:00+01:00"),
            ],
        ];
        for acts in days {
            let acts: Vec<(&str, EventType, DateTime<Utc>)> = acts.iter().map(|(k, t)| ("AVD", *k, at(t))).collect();
            let entries = UnitDay::of_acts(acts.clone());
            assert_eq!(entries.len(), 1);
            for hour in 0..24 {
                let t = at("2026-12-26T00:00:00+01:00") + chrono::Duration::minutes(hour * 60 + 30);
                let mut by_acts = StaffingTracker::default();
                for (u, k, a) in &acts {
                    by_acts.observe_act(&UnitId(u.to_string()), *k, *a, &units, t);
                }
                let mut by_entry = StaffingTracker::default();
                by_entry.observe_day(&entries[0], &units, t);
                let unit = UnitId("AVD".into());
                assert_eq!(
                    by_acts.is_staffed(&unit, day),
                    by_entry.is_staffed(&unit, day),
                    "{acts:?} at {t}"
                );
                assert_eq!(by_acts.earliest, by_entry.earliest);
            }
        }
    }

    #[test]
    fn entries_merge_to_the_earlier_instant_of_each_kind() {
        let a = UnitDay::of_acts([("AVD", EventType::Inskrivning, at("2026-12-26T10:00:00+01:00"))]);
        let b = UnitDay::of_acts([
            ("AVD", EventType::Inskrivning, at("2026-12-26T09:00:00+01:00")),
            ("AVD", EventType::Bemanning, at("2026-12-26T20:00:00+01:00")),
        ]);
        let mut m = a[0].clone();
        m.merge(&b[0]);
        assert_eq!(m.first, at("2026-12-26T09:00:00+01:00"));
        assert_eq!(m.morning, Some(at("2026-12-26T09:00:00+01:00")));
        assert_eq!(m.bemanning, Some(at("2026-12-26T20:00:00+01:00")));
        assert_eq!(m.afternoon, None);
    }

    /// `check`'s workers each observe a block of lines: a morning act in
    /// one block and an afternoon act in the next staff the day together.
    #[test]
    fn trackers_of_two_blocks_absorbed_judge_as_one_tracker() {
        let units = storhelg_unit();
        let unit = UnitId("AVD".into());
        let t = at("2027-01-02T00:00:00+01:00");
        let acts = [
            (EventType::Utskrivning, at("2026-12-26T14:30:00+01:00")),
            (EventType::Inskrivning, at("2026-12-26T09:00:00+01:00")),
            (EventType::Inskrivning, at("2026-12-27T08:00:00+01:00")),
            (EventType::Bemanning, at("2026-12-28T12:00:00+01:00")),
        ];
        let mut one = StaffingTracker::default();
        for (k, a) in acts {
            one.observe_act(&unit, k, a, &units, t);
        }
        for split in 0..=acts.len() {
            let (mut first, mut second) = (StaffingTracker::default(), StaffingTracker::default());
            for (i, (k, a)) in acts.into_iter().enumerate() {
                let tracker = if i < split { &mut first } else { &mut second };
                tracker.observe_act(&unit, k, a, &units, t);
            }
            first.absorb(second);
            for d in 25..=29 {
                let day = NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
                assert_eq!(
                    first.is_staffed(&unit, day),
                    one.is_staffed(&unit, day),
                    "split {split}, day {day}"
                );
            }
            assert_eq!(first.earliest, one.earliest);
        }
        assert!(one.is_staffed(&unit, NaiveDate::from_ymd_opt(2026, 12, 26).unwrap()));
        assert!(!one.is_staffed(&unit, NaiveDate::from_ymd_opt(2026, 12, 27).unwrap()));
    }
}
