//! The service's background jobs: plain async loops over the shared state.
//! A failed run is logged (and recorded in `scan_runs` by the scan itself),
//! never a panic; the loop goes on.

use std::time::Duration as StdDuration;

use actix_web::web::{self, Data};
use chrono::Utc;

use crate::audit::schedule::Schedule;
use crate::audit::ScanError;
use crate::web::AppState;

/// Runs the scan at every firing of the cron schedule (Europe/Stockholm).
pub async fn scan_loop(state: Data<AppState>, cron: cron::Schedule) {
    let mut schedule = Schedule::new(cron);
    loop {
        let Some(firing) = schedule.next_after(Utc::now()) else {
            tracing::warn!("the scan schedule has no further firing; scheduled scans stop");
            return;
        };
        let wait = (firing.at - Utc::now()).to_std().unwrap_or(StdDuration::ZERO);
        actix_web::rt::time::sleep(wait).await;
        schedule.fired(firing);
        let st = state.clone();
        match web::block(move || st.auditor.run_scan(None, false)).await {
            Ok(Ok(s)) => tracing::info!(run = s.id, filed = s.counts.filed, "scheduled scan done"),
            Ok(Err(ScanError::Busy)) => tracing::info!("scheduled scan skipped: another instance is scanning"),
            Ok(Err(ScanError::Failed(e))) => tracing::error!(error = %format!("{e:#}"), "scheduled scan failed"),
            Err(e) => tracing::error!(error = %e, "scheduled scan could not run"),
        }
        deliver_once(&state, true).await;
    }
}

/// Drains the outbox every `mail.deliver_every_seconds`.
pub async fn delivery_loop(state: Data<AppState>) {
    let every = StdDuration::from_secs(state.auditor.mail.deliver_every_seconds);
    loop {
        deliver_once(&state, true).await;
        actix_web::rt::time::sleep(every).await;
    }
}

pub async fn deliver_once(
    state: &Data<AppState>,
    respect_backoff: bool,
) -> Option<crate::mail::delivery::DeliveryReport> {
    let mailer = state.mailer.clone()?;
    let pool = state.pool.clone();
    match web::block(move || crate::mail::delivery::deliver(&pool, &mailer, respect_backoff)).await {
        Ok(Ok(r)) => Some(r),
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "mail delivery failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "mail delivery could not run");
            None
        }
    }
}
