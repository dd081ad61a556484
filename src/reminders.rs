//! Reminders and escalation (SPEC §6.1): a deviation that has waited
//! `handling.remind_after_days` since its last handling step gets a
//! reminder to its recipient; after `handling.escalate_after_days`, a
//! notice to its unit's chef (the unit's `chef_email`, else the route's
//! `escalate_to`, else the default address). Each goes once per period,
//! through the outbox, in the transaction that records it. Closed,
//! withdrawn and voided deviations get none, nor those never mailed (`ny`:
//! history loaded at installation is not chased).

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use crate::config::HandlingConfig;
use crate::domain::handling::DeviationStatus::{self, Atgardad, Mottagen, Skickad, Utreds};
use crate::mail::outbox::{self, MailKind};
use crate::mail::routing::{self, Recipients};
use crate::mail::MailConfig;
use crate::rules::Units;
use crate::store::deviations::{self, DeviationRow};
use crate::store::{backend, now, units, DbConn};

/// Statuses that wait for someone and were mailed.
const WAITING: [DeviationStatus; 4] = [Skickad, Mottagen, Utreds, Atgardad];

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reminded {
    pub reminders: usize,
    pub escalations: usize,
}

/// The notices a deviation is due for now: a reminder every
/// `remind_after` without a step, an escalation every `escalate_after`.
fn due_for(
    cfg: &HandlingConfig,
    last_step: NaiveDateTime,
    reminded: Option<NaiveDateTime>,
    escalated: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> Vec<MailKind> {
    let idle = at - last_step;
    // Once per period: not again until a new step, or a whole period after the last one.
    let due = |sent: Option<NaiveDateTime>, period: Duration| {
        period > Duration::zero() && idle >= period && sent.is_none_or(|s| s < last_step || at - s >= period)
    };
    let mut out = Vec::new();
    if due(reminded, cfg.remind_after) {
        out.push(MailKind::Paminnelse);
    }
    if due(escalated, cfg.escalate_after) {
        out.push(MailKind::Eskalering);
    }
    out
}

fn step_text(status: DeviationStatus) -> &'static str {
    match status {
        Skickad => "skickad men inte mottagen",
        Mottagen => "mottagen men inte utredd",
        Utreds => "under utredning",
        Atgardad => "åtgärdad men inte avslutad",
        _ => "öppen",
    }
}

/// Queues every reminder and escalation due at this moment.
pub fn run(conn: &mut DbConn, cfg: &HandlingConfig, mail: &MailConfig) -> anyhow::Result<Reminded> {
    let mut done = Reminded::default();
    if cfg.remind_after <= Duration::zero() && cfg.escalate_after <= Duration::zero() {
        return Ok(done);
    }
    let at = now();
    let shortest = [cfg.remind_after, cfg.escalate_after]
        .into_iter()
        .filter(|d| *d > Duration::zero())
        .min()
        .unwrap_or(cfg.remind_after);
    let ids = deviations::ids_in_status(conn, &WAITING)?;
    let steps = deviations::last_steps(conn, &ids)?;
    // Only those idle long enough are looked at again, row by row.
    let idle: Vec<i64> = ids
        .into_iter()
        .filter(|id| steps.get(id).is_some_and(|s| at - *s >= shortest))
        .collect();
    if idle.is_empty() {
        return Ok(done);
    }
    let units = Units::new(units::all(conn)?);
    let domain = mail.domain();
    for id in idle {
        let queued = backend::write_tx(conn, |conn| -> anyhow::Result<Vec<MailKind>> {
            // Ordered with a person's change and a mail being marked sent.
            backend::lock_deviations(conn, &[id])?;
            let Some(d) = deviations::get(conn, id)? else {
                return Ok(Vec::new());
            };
            if !WAITING.contains(&d.status) {
                return Ok(Vec::new());
            }
            let Some(last) = deviations::last_steps(conn, &[id])?.get(&id).copied() else {
                return Ok(Vec::new());
            };
            let h = deviations::handling_of(conn, id)?;
            let (reminded, escalated) = h.map_or((None, None), |h| (h.reminded_at, h.escalated_at));
            let kinds = due_for(cfg, last, reminded, escalated, at);
            let days = (at - last).num_days();
            for kind in &kinds {
                let m = notice_for(*kind, &d, &units, mail, cfg, days, &domain, at);
                outbox::enqueue(conn, &[m])?;
                deviations::mark_reminded(conn, id, *kind == MailKind::Eskalering)?;
            }
            Ok(kinds)
        })?;
        for kind in queued {
            if kind == MailKind::Eskalering {
                done.escalations += 1;
            } else {
                done.reminders += 1;
            }
        }
    }
    if done != Reminded::default() {
        tracing::info!(
            reminders = done.reminders,
            escalations = done.escalations,
            "påminnelser om hantering köade"
        );
    }
    Ok(done)
}

#[allow(clippy::too_many_arguments)]
fn notice_for(
    kind: MailKind,
    d: &DeviationRow,
    units: &Units,
    mail: &MailConfig,
    cfg: &HandlingConfig,
    days: i64,
    domain: &str,
    at: NaiveDateTime,
) -> outbox::NewMail {
    let unit = d.unit.clone().map(crate::domain::UnitId);
    let (to, who) = if kind == MailKind::Eskalering {
        let (to, via) = routing::escalation(unit.as_ref(), units, mail);
        (to, via)
    } else {
        (Recipients::from_json(&d.recipients).to, "mottagare".to_string())
    };
    let payload = json!({
        "dagar": days,
        "steg": step_text(d.status),
        "eskalering_dagar": cfg.escalate_after.num_days(),
        "mottagare": who,
    });
    outbox::notice(
        kind,
        d,
        Recipients {
            to,
            cc: Vec::new(),
            via: String::new(),
        },
        payload,
        &at.and_utc().timestamp().to_string(),
        domain,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(day: i64) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap()
            + Duration::days(day)
    }

    #[test]
    fn a_reminder_every_week_and_an_escalation_every_two_without_a_step() {
        let cfg = HandlingConfig::default();
        let step = t(0);
        let none: Vec<&str> = Vec::new();
        assert_eq!(due_for(&cfg, step, None, None, t(6)), none);
        assert_eq!(due_for(&cfg, step, None, None, t(7)), [MailKind::Paminnelse]);
        // Reminded on day 7: not again on day 10; day 14 reminds again and escalates.
        assert_eq!(due_for(&cfg, step, Some(t(7)), None, t(10)), none);
        assert_eq!(
            due_for(&cfg, step, Some(t(7)), None, t(14)),
            [MailKind::Paminnelse, MailKind::Eskalering]
        );
        assert_eq!(due_for(&cfg, step, Some(t(14)), Some(t(14)), t(20)), none);
        assert_eq!(
            due_for(&cfg, step, Some(t(14)), Some(t(14)), t(21)),
            [MailKind::Paminnelse]
        );
        assert_eq!(
            due_for(&cfg, step, Some(t(21)), Some(t(14)), t(28)),
            [MailKind::Paminnelse, MailKind::Eskalering]
        );
        // A new step starts the clock again, whatever went before.
        assert_eq!(due_for(&cfg, t(20), Some(t(14)), Some(t(14)), t(26)), none);
        assert_eq!(
            due_for(&cfg, t(20), Some(t(14)), Some(t(14)), t(27)),
            [MailKind::Paminnelse]
        );
        // Zero turns a kind off.
        let off = HandlingConfig {
            remind_after: Duration::zero(),
            escalate_after: Duration::days(14),
        };
        assert_eq!(due_for(&off, step, None, None, t(10)), none);
        assert_eq!(due_for(&off, step, None, None, t(14)), [MailKind::Eskalering]);
    }
}
