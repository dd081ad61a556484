//! svu-vakt: audits samverkan vid utskrivning (Lag (2017:612)). The library
//! holds everything; `main.rs` only parses the command line.

pub mod audit;
pub mod calendar;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod ingest;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod rules;
pub mod store;
pub mod telemetry;
pub mod web;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web::Data;

use config::Config;
use domain::PatientHasher;
use metrics::Metrics;
use web::AppState;

/// The built service: migrated database, bound port, not yet running.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    state: Data<AppState>,
}

impl Application {
    /// Opens the pool, runs the migrations and binds `config.listen`
    /// (port 0 picks a free port, as the tests do).
    pub fn build(config: &Config) -> anyhow::Result<Application> {
        let state = Data::new(app_state(config)?);
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let port = listener.local_addr()?.port();
        let server = web::server(listener, state.clone(), config.max_body_bytes, config.workers)?;
        Ok(Application { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from outside (tests, signal handling).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> Data<AppState> {
        self.state.clone()
    }

    /// Serves HTTP and runs the scheduled scan and the mail delivery loop.
    pub async fn run(self) -> std::io::Result<()> {
        if let Some(cron) = self.state.auditor.scan.schedule.clone() {
            actix_web::rt::spawn(jobs::scan_loop(self.state.clone(), cron));
        }
        if self.state.mailer.is_some() {
            actix_web::rt::spawn(jobs::delivery_loop(self.state.clone()));
        }
        self.server.await
    }
}

/// Pool, migrations and shared state, as `serve` and the CLI commands use them.
pub fn app_state(config: &Config) -> anyhow::Result<AppState> {
    let pool = store::pool(&config.database_url, config.pool_size)?;
    let mut conn = pool.get().map_err(|e| {
        anyhow::anyhow!(
            "cannot open the database {}: {e}",
            store::redact_url(&config.database_url_text)
        )
    })?;
    store::migrate(&mut conn)?;
    drop(conn);
    let auditor = Arc::new(audit::Auditor::new(pool.clone(), config)?);
    let mailer = mail::delivery::Mailer::from_config(&config.mail)?.map(Arc::new);
    Ok(AppState {
        pool,
        hasher: PatientHasher::new(config.patient_key.clone()),
        metrics: Arc::new(Metrics::default()),
        auditor,
        mailer,
    })
}
