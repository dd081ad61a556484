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
    let st = state.clone();
    let gauges = web::block(move || -> anyhow::Result<(i64, i64)> {
        let mut conn = st.pool.get()?;
        Ok((
            crate::mail::outbox::failed_count(&mut conn)?,
            crate::mail::outbox::pending_count(&mut conn)? + crate::mail::outbox::webhook::pending_count(&mut conn)?,
        ))
    })
    .await;
    let text = state.metrics.render(gauges.ok().and_then(Result::ok));
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text)
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}
