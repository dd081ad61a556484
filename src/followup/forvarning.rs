//! Förvarning (SPEC §7): obligations coming due within a window, per unit,
//! so a unit can act before the breach. The obligations the last scan kept
//! as pending are judged again as of now from the cases' events (a kvittens
//! that came after the scan takes its obligation off the list at once), and
//! the storhelg staffing days in the window are listed for every covered
//! unit that has not registered `bemanning` for the day.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use diesel::QueryResult;
use serde::Serialize;

use super::Visible;
use crate::calendar::{in_stockholm, local_date, local_instant, Calendar};
use crate::rules::{case, Outcome, Profile, RuleId, Units};
use crate::store::{reports, DbConn};

/// The widest window asked for: a week.
pub const MAX_HOURS: i64 = 24 * 7;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Warning {
    pub rule: String,
    /// null for staffing.
    pub case: Option<String>,
    pub unit: Option<String>,
    /// RFC 3339, Stockholm offset.
    pub due: String,
    /// Whole minutes left until the due.
    pub minutes_left: i64,
}

/// Everything coming due in `(now, now + hours]` for the visible units,
/// soonest first.
pub fn list(
    conn: &mut DbConn,
    units: &Units,
    profile: &Profile,
    now: DateTime<Utc>,
    hours: i64,
    visible: Visible,
) -> anyhow::Result<Vec<Warning>> {
    let until = now + Duration::hours(hours);
    let pending = reports::pending_cases(conn, now.naive_utc(), until.naive_utc())?;
    let mut out = Vec::new();
    let rules = profile.case_rules();
    for chunk in pending.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for (id, evs) in crate::store::timelines::of_cases(conn, &ids)? {
            let outcome = case::evaluate_recorded(&evs, units, profile, &rules, now);
            for o in outcome.obligations {
                if o.outcome != Outcome::Pending || o.done.is_some() || o.due > until {
                    continue;
                }
                if !visible.unit(o.unit.as_ref().map(|u| u.as_str())) {
                    continue;
                }
                out.push(warning(o.rule, Some(id.clone()), o.unit.map(|u| u.0), o.due, now));
            }
        }
    }
    if profile.enabled.contains(&RuleId::BemanningStorhelg) {
        for (unit, due) in unstaffed(conn, units, profile, now, until)? {
            if visible.unit(Some(&unit)) {
                out.push(warning(RuleId::BemanningStorhelg, None, Some(unit), due, now));
            }
        }
    }
    out.sort_by(|a, b| (a.minutes_left, &a.unit, &a.case).cmp(&(b.minutes_left, &b.unit, &b.case)));
    Ok(out)
}

fn warning(
    rule: RuleId,
    case: Option<String>,
    unit: Option<String>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Warning {
    Warning {
        rule: rule.as_str().to_string(),
        case,
        unit,
        due: in_stockholm(due).to_rfc3339(),
        minutes_left: (due - now).num_minutes(),
    }
}

/// Covered units without a `bemanning` registered for a staffing day whose
/// 15:00 falls in `(now, until]`, with that due.
pub fn unstaffed(
    conn: &mut DbConn,
    units: &Units,
    profile: &Profile,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> QueryResult<Vec<(String, DateTime<Utc>)>> {
    let three = NaiveTime::from_hms_opt(15, 0, 0).unwrap_or_default();
    let days = Calendar::new().staffing_days(local_date(now), local_date(until), &profile.staffing_tables);
    let mut out = Vec::new();
    for day in days {
        let due = local_instant(day.date, three);
        if due <= now || due > until {
            continue;
        }
        // Staffed as §4.4 has it: a `bemanning` that day, or any act of the
        // unit between 08:00 and 15:00 that has happened by now.
        let mut tracker = crate::rules::bemanning::StaffingTracker::default();
        for d in crate::store::unit_days::between(conn, day.date, day.date)? {
            // A `bemanning` dated the day counts even when registered
            // ahead (its `at` still to come); other acts once they happened.
            if let Some(b) = d.bemanning {
                let unit = crate::domain::UnitId(d.unit.clone());
                tracker.observe_act(&unit, crate::domain::EventType::Bemanning, b, units, b);
            }
            let acts = crate::rules::bemanning::UnitDay { bemanning: None, ..d };
            tracker.observe_day(&acts, units, now);
        }
        for u in units.storhelg_units() {
            if !tracker.is_staffed(&u.id, day.date) {
                out.push((u.id.0.clone(), due));
            }
        }
    }
    Ok(out)
}

/// After a scan: a reminder to every covered unit with an e-mail address
/// that has not registered `bemanning` for a staffing day within the next
/// `days` days (before its 15:00), once per unit and day, through the
/// outbox. Returns how many were queued.
pub fn queue_staffing_reminders(
    conn: &mut DbConn,
    units: &Units,
    profile: &Profile,
    mail: &crate::mail::MailConfig,
    days: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    use crate::mail::outbox::{MailKind, NewMail};
    use crate::mail::routing::Recipients;
    if days <= 0 {
        return Ok(0);
    }
    let until = local_instant(
        local_date(now) + Duration::days(days),
        NaiveTime::from_hms_opt(15, 0, 0).unwrap_or_default(),
    );
    let blocks: BTreeMap<chrono::NaiveDate, String> = Calendar::new()
        .staffing_days(local_date(now), local_date(until), &profile.staffing_tables)
        .into_iter()
        .map(|d| (d.date, format!("{} – {}", d.block_start, d.block_end)))
        .collect();
    let mut queued = 0;
    for (unit, due) in unstaffed(conn, units, profile, now, until)? {
        let Some(u) = units.get(&crate::domain::UnitId(unit.clone())) else {
            continue;
        };
        let Some(email) = u.email.clone() else { continue };
        let day = local_date(due);
        let key = day.to_string();
        let to = Recipients {
            to: email,
            cc: Vec::new(),
            via: String::new(),
        };
        let mid = format!("<bemanning-{}-{key}@{}>", hex::encode(unit.as_bytes()), mail.domain());
        let mut m = NewMail::new(mid, MailKind::BemanningPaminnelse, &[], &to);
        const DAYS: [&str; 7] = ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"];
        m.payload = Some(
            serde_json::json!({
                "enhet": unit, "namn": u.name, "datum": key,
                "veckodag": DAYS[chrono::Datelike::weekday(&day).num_days_from_monday() as usize],
                "helg": blocks.get(&day).cloned().unwrap_or_default(),
            })
            .to_string(),
        );
        queued += reports::queue_staffing_reminder(conn, &unit, &key, m)?;
    }
    Ok(queued)
}
