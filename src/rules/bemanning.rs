//! §4.4 `bemanning_storhelg`: every registered unit covered by the storhelg
//! recommendation is staffed on every staffing day — shown by a `bemanning`
//! event dated that day (any time), or by any other act of the unit that day
//! between 08:00:00 and 15:00:00 local time, both included. Due 15:00:00;
//! never `late`. Units are observed event by event, so a whole county's
//! history needs memory only for (unit, day) pairs.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Europe::Stockholm;

use super::{finding, Finding, Obligation, Outcome, Profile, RuleId, Status, Units};
use crate::calendar::{local_date, local_instant, Calendar};
use crate::domain::{Event, EventType, UnitId};

const FROM: u32 = 8 * 3600;
const UNTIL: u32 = 15 * 3600;

#[derive(Debug, Default)]
pub struct StaffingTracker {
    staffed: HashSet<(UnitId, NaiveDate)>,
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
        if kind == EventType::Bemanning || (FROM..=UNTIL).contains(&secs) {
            self.staffed.insert((unit.clone(), local.date_naive()));
        }
    }

    /// Whether `unit` counts as staffed on `day` by what was observed.
    pub fn is_staffed(&self, unit: &UnitId, day: NaiveDate) -> bool {
        self.staffed.contains(&(unit.clone(), day))
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
                if !self.staffed.contains(&(unit.id.clone(), day)) {
                    out.push(finding(
                        RuleId::BemanningStorhelg,
                        None,
                        Some(&unit.id),
                        due,
                        (Status::Missing, None, None),
                    ));
                }
            }
        }
        out
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
                let staffed = self.staffed.contains(&(unit.id.clone(), day));
                out.push(Obligation {
                    rule: RuleId::BemanningStorhelg,
                    unit: Some(unit.id.clone()),
                    due,
                    outcome: if staffed { Outcome::Met } else { Outcome::Missing },
                    done: None,
                });
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
