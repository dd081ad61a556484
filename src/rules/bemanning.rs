//! §4.4 `bemanning_storhelg`: every registered unit covered by the storhelg
//! recommendation is staffed on every staffing day — shown by a `bemanning`
//! event dated that day (any time), or by any other act of the unit that day
//! between 08:00:00 and 15:00:00 local time, both included. Due 15:00:00;
//! never `late`. Units are observed event by event, so a whole county's
//! history needs memory only for (unit, day) pairs.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Europe::Stockholm;

use super::{finding, Finding, Profile, RuleId, Status, Units};
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
        if e.at.timestamp() > as_of.timestamp() {
            return;
        }
        let at = DateTime::from_timestamp(e.at.timestamp(), 0).unwrap_or_default();
        self.earliest = Some(self.earliest.map_or(at, |x| x.min(at)));
        if !units.get(&e.unit).is_some_and(|u| u.storhelg) {
            return;
        }
        let local = at.with_timezone(&Stockholm);
        let secs = local.num_seconds_from_midnight();
        if e.kind == EventType::Bemanning || (FROM..=UNTIL).contains(&secs) {
            self.staffed.insert((e.unit.clone(), local.date_naive()));
        }
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
        let days = calendar.staffing_days(local_date(earliest), local_date(as_of), &profile.staffing_tables);
        let until = NaiveTime::from_hms_opt(15, 0, 0).unwrap_or_default();
        let mut out = Vec::new();
        for day in days {
            let due = local_instant(day.date, until);
            if due >= as_of {
                continue;
            }
            for unit in units.storhelg_units() {
                if !self.staffed.contains(&(unit.id.clone(), day.date)) {
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
}
