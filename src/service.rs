//! The service's operations as one set, used alike by the command line, the
//! HTTP API and the background jobs: the pool, the patient hasher, the
//! metrics, the auditor and the mailer, and the one way to run a scan or a
//! round of delivery (so the metrics count every one, whoever asked).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::audit::{Auditor, ScanError, ScanSummary};
use crate::config::Config;
use crate::domain::PatientHasher;
use crate::mail::delivery::{DeliveryReport, Mailer};
use crate::mail::webhook_delivery::HookReport;
use crate::metrics::Metrics;
use crate::store::{self, Pool};

pub struct Services {
    pub pool: Pool,
    pub hasher: PatientHasher,
    pub metrics: Arc<Metrics>,
    pub auditor: Arc<Auditor>,
    pub mailer: Option<Arc<Mailer>>,
    pub session: crate::store::users::SessionLimits,
    pub handling: crate::config::HandlingConfig,
    pub followup: crate::config::FollowupConfig,
    /// The drop folder, when `[feed] directory` is set.
    pub feed: Option<Arc<crate::feed::FeedConfig>>,
    /// Login through the region's identity provider, when `[oidc]` is set.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// Whether session cookies get `Secure` (the service is reached over https).
    pub secure_cookies: bool,
    /// Failed logins per client address, to slow guessing from one place
    /// (at most `web::api::session::ADDRESSES_KEPT` addresses; the names
    /// that no account has are counted in the database, `store::unknown_logins`).
    pub login_failures: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
    /// Password verifications running at once (argon2 costs memory and CPU;
    /// a flood of logins must not starve the rest of the service).
    pub login_slots: tokio::sync::Semaphore,
}

impl Services {
    /// Pool, migrations, validated mail settings and compiled templates.
    pub fn build(config: &Config) -> anyhow::Result<Services> {
        let pool = store::pool_limited(
            &config.database_url,
            config.pool_size,
            (config.sqlite_max_mb > 0).then(|| config.sqlite_max_mb * 1024 * 1024),
        )?;
        let mut conn = pool.get().map_err(|e| {
            anyhow::anyhow!(
                "kan inte öppna databasen {}: {e}",
                store::redact_url(&config.database_url_text)
            )
        })?;
        store::migrate(&mut conn)?;
        drop(conn);
        let auditor = Arc::new(Auditor::new(pool.clone(), config)?);
        let mailer = Mailer::from_config(&auditor.mail, auditor.templates.clone())?.map(Arc::new);
        Ok(Services {
            pool,
            hasher: PatientHasher::new(config.patient_key.clone())
                .with_ten_digit_ids(config.ingest.refuse_ten_digit_ids),
            metrics: Arc::new(Metrics::default()),
            session: config.session,
            handling: config.handling,
            followup: config.followup.clone(),
            feed: config.feed.clone().map(Arc::new),
            oidc: config
                .oidc
                .clone()
                .map(crate::oidc::Oidc::new)
                .transpose()?
                .map(Arc::new),
            secure_cookies: auditor.mail.base_url.starts_with("https://"),
            auditor,
            mailer,
            login_failures: Default::default(),
            login_slots: tokio::sync::Semaphore::new(2),
        })
    }

    /// One scan (blocking), counted in the metrics.
    pub fn scan(&self, as_of: Option<DateTime<Utc>>, full: bool) -> Result<ScanSummary, ScanError> {
        let result = self.auditor.run_scan(as_of, full);
        let m = &self.metrics;
        match &result {
            Ok(s) => {
                // Reminders go by the clock, after each scan; a failure here
                // is logged and tried again after the next scan.
                if let Err(e) = self.remind() {
                    tracing::error!(error = %format!("{e:#}"), "påminnelserna om hantering misslyckades");
                }
                if let Err(e) = self.remind_staffing() {
                    tracing::error!(error = %format!("{e:#}"), "påminnelserna om bemanning misslyckades");
                }
                Metrics::add(&m.scans, 1);
                Metrics::add(&m.deviations_filed, s.counts.filed);
                Metrics::add(&m.deviations_withdrawn, s.counts.withdrawn);
                Metrics::add(&m.deviations_unmailed, s.counts.unmailed);
            }
            Err(ScanError::Failed(e)) => {
                Metrics::add(&m.scans_failed, 1);
                tracing::error!(error = %format!("{e:#}"), "granskningen misslyckades");
            }
            Err(ScanError::Busy) => {}
        }
        result
    }

    /// Queues the reminders and escalations due now (SPEC §6.1).
    pub fn remind(&self) -> anyhow::Result<crate::reminders::Reminded> {
        let mut conn = self.pool.get()?;
        crate::reminders::run(&mut conn, &self.handling, &self.auditor.mail)
    }

    /// Queues the opt-in förvarning before storhelg staffing days (SPEC §7).
    pub fn remind_staffing(&self) -> anyhow::Result<usize> {
        let days = self.followup.staffing_reminder_days;
        if days == 0 {
            return Ok(0);
        }
        let mut conn = self.pool.get()?;
        let units = crate::rules::Units::new(crate::store::units::all(&mut conn)?);
        crate::followup::forvarning::queue_staffing_reminders(
            &mut conn,
            &units,
            &self.auditor.profile,
            &self.auditor.mail,
            days,
            Utc::now(),
        )
    }

    /// One round of delivery to the routes' webhooks (blocking), whether or
    /// not an SMTP server is configured.
    pub fn deliver_hooks(&self, respect_backoff: bool) -> anyhow::Result<HookReport> {
        let a = &self.auditor;
        let result = crate::mail::webhook_delivery::deliver(&self.pool, &a.mail, &a.templates, respect_backoff);
        match &result {
            Ok(r) => {
                let m = &self.metrics;
                Metrics::add(&m.webhook_sent, r.sent);
                Metrics::add(&m.webhook_failed, r.failed);
                Metrics::add(&m.webhook_refused, r.refused);
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "utskicket till avvikelsesystemen misslyckades"),
        }
        result
    }

    /// One round of delivery (blocking), if an SMTP server is configured.
    pub fn deliver(&self, respect_backoff: bool) -> Option<anyhow::Result<DeliveryReport>> {
        let mailer = self.mailer.as_ref()?;
        let result = crate::mail::delivery::deliver(&self.pool, mailer, respect_backoff);
        match &result {
            Ok(r) => {
                let m = &self.metrics;
                Metrics::add(&m.mail_sent, r.sent);
                Metrics::add(&m.mail_failed, r.failed);
                Metrics::add(&m.mail_refused, r.refused);
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "e-postutskicket misslyckades"),
        }
        Some(result)
    }
}
