//! The service's background jobs: the scheduled scan, the drop folder and
//! the outbox drain (mail and webhooks).
//! Plain async functions over the shared [`Services`]; a failed run is
//! logged (and recorded in `scan_runs` by the scan itself), never a panic,
//! and the loops go on.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use crate::audit::schedule::Schedule;
use crate::audit::{ScanError, ScanSummary};
use crate::mail::delivery::DeliveryReport;
use crate::mail::webhook_delivery::HookReport;
use crate::service::Services;

/// Runs the scan at every firing of the cron schedule (Europe/Stockholm).
pub async fn scan_loop(services: Arc<Services>, cron: cron::Schedule) {
    let mut schedule = Schedule::new(cron);
    loop {
        let Some(firing) = schedule.next_after(Utc::now()) else {
            tracing::warn!("granskningsschemat har inga fler tider; schemalagda granskningar upphör");
            return;
        };
        let wait = (firing.at - Utc::now()).to_std().unwrap_or(StdDuration::ZERO);
        actix_web::rt::time::sleep(wait).await;
        schedule.fired(firing);
        match scan_once(&services, None, false).await {
            Ok(s) => tracing::info!(run = s.id, filed = s.counts.filed, "schemalagd granskning klar"),
            Err(ScanError::Busy) => tracing::info!("schemalagd granskning hoppades över: en annan instans granskar"),
            Err(ScanError::Failed(_)) => {}
        }
        deliver_once(&services, true).await;
        deliver_hooks_once(&services, true).await;
    }
}

/// Drains the outbox every `mail.deliver_every_seconds`.
pub async fn delivery_loop(services: Arc<Services>) {
    let every = StdDuration::from_secs(services.auditor.mail.deliver_every_seconds);
    loop {
        deliver_once(&services, true).await;
        actix_web::rt::time::sleep(every).await;
    }
}

/// Drains the outbox's webhook rows every `mail.deliver_every_seconds`,
/// beside the mail (a receiver that does not answer holds up no mail).
pub async fn webhook_loop(services: Arc<Services>) {
    let every = StdDuration::from_secs(services.auditor.mail.deliver_every_seconds);
    loop {
        deliver_hooks_once(&services, true).await;
        actix_web::rt::time::sleep(every).await;
    }
}

/// Looks into the drop folder every `feed.poll`. A failed look (the
/// database down, the folder unreadable) is logged; its files stay and are
/// taken at a later look.
pub async fn feed_loop(services: Arc<Services>) {
    let Some(cfg) = services.feed.clone() else { return };
    loop {
        let s = services.clone();
        let c = cfg.clone();
        let result =
            actix_web::rt::task::spawn_blocking(move || crate::feed::poll_once(&s.pool, &s.hasher, &c, &s.metrics))
                .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "inkorgen kunde inte läsas in"),
            Err(e) => tracing::error!(error = %e, "inkorgen kunde inte läsas in"),
        }
        actix_web::rt::time::sleep(cfg.poll).await;
    }
}

/// One scan on the blocking pool.
pub async fn scan_once(
    services: &Arc<Services>,
    as_of: Option<DateTime<Utc>>,
    full: bool,
) -> Result<ScanSummary, ScanError> {
    let s = services.clone();
    actix_web::rt::task::spawn_blocking(move || s.scan(as_of, full))
        .await
        .map_err(|e| ScanError::Failed(anyhow::anyhow!("granskningen kunde inte köras: {e}")))?
}

/// One round of delivery on the blocking pool, if an SMTP server is configured.
pub async fn deliver_once(services: &Arc<Services>, respect_backoff: bool) -> Option<DeliveryReport> {
    let s = services.clone();
    match actix_web::rt::task::spawn_blocking(move || s.deliver(respect_backoff)).await {
        Ok(Some(Ok(r))) => Some(r),
        Ok(_) => None,
        Err(e) => {
            tracing::error!(error = %e, "e-postutskicket kunde inte köras");
            None
        }
    }
}

/// One round of delivery to the webhooks on the blocking pool; None when it failed (logged).
pub async fn deliver_hooks_once(services: &Arc<Services>, respect_backoff: bool) -> Option<HookReport> {
    let s = services.clone();
    match actix_web::rt::task::spawn_blocking(move || s.deliver_hooks(respect_backoff)).await {
        Ok(Ok(r)) => Some(r),
        Ok(Err(_)) => None,
        Err(e) => {
            tracing::error!(error = %e, "utskicket till avvikelsesystemen kunde inte köras");
            None
        }
    }
}
