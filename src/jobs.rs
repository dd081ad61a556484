//! The service's background jobs, and the one way the service runs a scan or
//! a delivery (so the metrics count them all). Plain async functions over
//! the shared state; a failed run is logged (and recorded in `scan_runs` by
//! the scan itself), never a panic, and the loops go on.

use std::time::Duration as StdDuration;

use actix_web::web::{self, Data};
use chrono::{DateTime, Utc};

use crate::audit::schedule::Schedule;
use crate::audit::{ScanError, ScanSummary};
use crate::mail::delivery::DeliveryReport;
use crate::metrics::Metrics;
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
        match scan_once(&state, None, false).await {
            Ok(s) => tracing::info!(run = s.id, filed = s.counts.filed, "scheduled scan done"),
            Err(ScanError::Busy) => tracing::info!("scheduled scan skipped: another instance is scanning"),
            Err(ScanError::Failed(e)) => tracing::error!(error = %format!("{e:#}"), "scheduled scan failed"),
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

/// One scan on the blocking pool, counted in the metrics.
pub async fn scan_once(
    state: &Data<AppState>,
    as_of: Option<DateTime<Utc>>,
    full: bool,
) -> Result<ScanSummary, ScanError> {
    let st = state.clone();
    let result = web::block(move || st.auditor.run_scan(as_of, full))
        .await
        .map_err(|e| ScanError::Failed(anyhow::anyhow!("the scan could not run: {e}")))
        .and_then(|r| r);
    let m = &state.metrics;
    match &result {
        Ok(s) => {
            Metrics::add(&m.scans, 1);
            Metrics::add(&m.deviations_filed, s.counts.filed);
            Metrics::add(&m.deviations_withdrawn, s.counts.withdrawn);
        }
        Err(ScanError::Failed(_)) => Metrics::add(&m.scans_failed, 1),
        Err(ScanError::Busy) => {}
    }
    result
}

/// One round of delivery, if an SMTP server is configured.
pub async fn deliver_once(state: &Data<AppState>, respect_backoff: bool) -> Option<DeliveryReport> {
    let mailer = state.mailer.clone()?;
    let pool = state.pool.clone();
    match web::block(move || crate::mail::delivery::deliver(&pool, &mailer, respect_backoff)).await {
        Ok(Ok(r)) => {
            Metrics::add(&state.metrics.mail_sent, r.sent);
            Metrics::add(&state.metrics.mail_failed, r.failed);
            Some(r)
        }
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
