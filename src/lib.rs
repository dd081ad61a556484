//! svu-vakt: audits samverkan vid utskrivning (Lag (2017:612)). The library
//! holds everything; `main.rs` only parses the command line.

pub mod audit;
pub mod bench;
pub mod calendar;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod feed;
pub mod followup;
pub mod handling;
pub mod ingest;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod parallel;
pub mod reminders;
pub mod report;
pub mod rules;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod web;

use std::net::TcpListener;

use actix_web::web::Data;

use config::Config;
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
            .map_err(|e| anyhow::anyhow!("kan inte lyssna på {}: {e}", config.listen))?;
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

    /// Serves HTTP and runs the scheduled scan, the drop folder and the mail and webhook delivery loops.
    pub async fn run(self) -> std::io::Result<()> {
        let services = self.state.clone().into_inner();
        if let Some(cron) = services.auditor.scan.schedule.clone() {
            actix_web::rt::spawn(jobs::scan_loop(services.clone(), cron));
        }
        if services.feed.is_some() {
            actix_web::rt::spawn(jobs::feed_loop(services.clone()));
        }
        actix_web::rt::spawn(jobs::webhook_loop(services.clone()));
        if services.mailer.is_some() {
            actix_web::rt::spawn(jobs::delivery_loop(services));
        }
        self.server.await
    }
}

/// The service's shared operations, as `serve` and the CLI commands use them.
pub fn app_state(config: &Config) -> anyhow::Result<AppState> {
    service::Services::build(config)
}
