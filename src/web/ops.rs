//! Health, readiness and metrics: open to all, for load balancers and Prometheus.

use actix_web::{get, web, HttpResponse};
use diesel::connection::SimpleConnection;

use super::AppState;

#[utoipa::path(get, path = "/healthz", tag = "drift", security(()),
    responses((status = 200, description = "processen svarar")))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready when a pooled connection answers a query.
#[utoipa::path(get, path = "/readyz", tag = "drift", security(()),
    responses((status = 200, description = "databasen svarar"), (status = 503, description = "databasen svarar inte")))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ok = web::block(move || state.pool.get().ok().map(|mut c| c.batch_execute("SELECT 1").is_ok()))
        .await
        .ok()
        .flatten()
        .unwrap_or(false);
    if ok {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "database unreachable"}))
    }
}

/// The process's counters, and the outbox as the database has it (every
/// instance's work, not only this process's).
#[utoipa::path(get, path = "/metrics", tag = "drift", security(()),
    responses((status = 200, description = "Prometheus-text")))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut text = state.metrics.render();
    let st = state.clone();
    let gauges = web::block(move || -> anyhow::Result<(i64, i64)> {
        let mut conn = st.pool.get()?;
        Ok((
            crate::mail::outbox::failed_count(&mut conn)?,
            crate::mail::outbox::pending_count(&mut conn)?,
        ))
    })
    .await;
    if let Ok(Ok((failed, pending))) = gauges {
        use std::fmt::Write as _;
        for (name, help, v) in [
            (
                "svu_vakt_outbox_failed",
                "Meddelanden som vägrats permanent, i utkorgen.",
                failed,
            ),
            (
                "svu_vakt_outbox_pending",
                "Meddelanden som väntar på att skickas.",
                pending,
            ),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}
