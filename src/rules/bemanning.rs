//! §4.4 `bemanning_storhelg`: every registered unit covered by the storhelg
//! recommendation is staffed on every staffing day — shown by a `bemanning`
//! event dated that day (any time), or by acts of the unit that day in both
//! readings: the morning (08:00:00–11:59:59) and the afternoon
//! (14:00:00–15:00:00) local time (seed 000: "så att man kan läsa och
//! hantera ärenden kl. 8 och 14"; one act in the morning alone is not a
//! staffed day). Due 15:00:00; never `late`. Units are observed event by
//! event, so a whole county's history needs memory only for (unit, day) pairs.

use std::collections::HashMap;

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

#[derive(Debug, Default)]
pub struct StaffingTracker {
    /// Per unit, per local day (nested, so looking up a unit copies nothing).
    shown: HashMap<UnitId, HashMap<NaiveDate, u8>>,
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
        let local = at.with_timezone(&Stockholm);
        let secs = local.num_seconds_from_midnight();
        let bit = if kind == EventType::Bemanning {
            BEMANNING
        } else if MORNING.contains(&secs) {
            MORNING_ACT
        } else if AFTERNOON.contains(&secs) {
            AFTERNOON_ACT
        } else {
            return;
        };
        if !self.shown.contains_key(unit) {
            self.shown.insert(unit.clone(), HashMap::new());
        }
        if let Some(days) = self.shown.get_mut(unit) {
            *days.entry(local.date_naive()).or_default() |= bit;
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
    /// (unit, day) pairs new events touched with it.
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
