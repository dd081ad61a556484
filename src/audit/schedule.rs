//! When the scheduled scan fires. The cron expression is read as Swedish wall
//! clock time (Europe/Stockholm). Daylight saving is decided here, not left
//! to chance: a time that does not exist (the skipped spring hour) fires one
//! hour later on the wall clock, the same instant; a time that occurs twice
//! (the repeated autumn hour) fires once, at its first occurrence.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Stockholm;

pub struct Schedule {
    cron: cron::Schedule,
    last_wall: Option<NaiveDateTime>,
}

/// The next firing: the instant, and the wall-clock time it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    pub at: DateTime<Utc>,
    pub wall: NaiveDateTime,
}

impl Schedule {
    pub fn new(cron: cron::Schedule) -> Schedule {
        Schedule { cron, last_wall: None }
    }

    /// The first firing strictly after `now` (and after the last one fired).
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<Firing> {
        let wall_now = now.with_timezone(&Stockholm).naive_local();
        let from = self.last_wall.map_or(wall_now, |l| l.max(wall_now));
        // The cron crate walks a time zone; UTC stands in for the wall clock.
        let wall = self.cron.after(&Utc.from_utc_datetime(&from)).next()?.naive_utc();
        let at = match Stockholm.from_local_datetime(&wall) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            chrono::LocalResult::None => Stockholm
                .from_local_datetime(&(wall + Duration::hours(1)))
                .earliest()?
                .with_timezone(&Utc),
        };
        Some(Firing { at, wall })
    }

    /// Marks a firing done, so its wall-clock time never fires again.
    pub fn fired(&mut self, f: Firing) {
        self.last_wall = Some(f.wall);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expr: &str, from: &str, n: usize) -> Vec<String> {
        let mut s = Schedule::new(expr.parse().unwrap());
        let mut now = DateTime::parse_from_rfc3339(from).unwrap().with_timezone(&Utc);
        let mut out = Vec::new();
        for _ in 0..n {
            let f = s.next_after(now).unwrap();
            out.push(f.at.with_timezone(&Stockholm).to_rfc3339());
            s.fired(f);
            now = f.at;
        }
        out
    }

    #[test]
    fn a_nightly_scan_fires_once_a_day_across_both_daylight_saving_switches() {
        assert_eq!(
            run("0 30 2 * * *", "2026-03-28T00:00:00+01:00", 3),
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:30:00+02:00",
                "2026-03-30T02:30:00+02:00"
            ]
        );
        assert_eq!(
            run("0 30 2 * * *", "2026-10-24T00:00:00+02:00", 3),
            [
                "2026-10-24T02:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00"
            ]
        );
    }

    #[test]
    fn a_quarter_hourly_scan_keeps_local_time_through_the_switch() {
        // 01:45 CET, then 03:00 CEST: 02:00–02:45 do not exist that night and fire as 03:00–03:45 once each.
        let fired = run("0 */15 * * * *", "2026-03-29T01:40:00+01:00", 4);
        assert_eq!(fired[0], "2026-03-29T01:45:00+01:00");
        assert_eq!(fired[1], "2026-03-29T03:00:00+02:00");
        let mut unique = fired.clone();
        unique.dedup();
        assert_eq!(unique.len(), fired.len(), "no instant fires twice: {fired:?}");
        // In autumn the repeated hour fires once.
        let fired = run("0 0 * * * *", "2026-10-25T00:30:00+02:00", 4);
        assert_eq!(
            fired,
            [
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T03:00:00+01:00",
                "2026-10-25T04:00:00+01:00"
            ]
        );
    }
}
