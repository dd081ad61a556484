//! The HTTP edge: application state, route wiring, request metrics.

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod fallback;
pub mod followup_pages;
pub mod oidc;
pub mod ops;
pub mod pages;

use std::time::Instant;

use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};

/// What every handler may use: the service's one set of operations.
pub type AppState = crate::service::Services;

/// Binds the listener and returns the server, not yet awaited.
pub fn server(
    listener: std::net::TcpListener,
    state: web::Data<AppState>,
    max_body: usize,
    workers: usize,
) -> std::io::Result<actix_web::dev::Server> {
    let pages = web::Data::new(pages::Pages::new().map_err(std::io::Error::other)?);
    let server = HttpServer::new(move || {
        let metrics = state.metrics.clone();
        App::new()
            .app_data(state.clone())
            .app_data(pages.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .wrap_fn(move |req, srv| {
                let started = Instant::now();
                let method = crate::metrics::Metrics::method_label(req.method().as_str());
                let metrics = metrics.clone();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                    let status = res.status().as_u16();
                    let secs = started.elapsed().as_secs_f64();
                    metrics.observe_request(method, &route, status, secs);
                    tracing::info!(%method, %route, status, ms = secs * 1000.0, "anrop");
                    Ok(res)
                }
            })
            .configure(fallback::extractors)
            .configure(ops::config)
            .configure(api::config)
            .configure(pages::config)
            .configure(oidc::config)
            .configure(admin::config)
            .configure(followup_pages::config)
            .default_service(web::to(fallback::default_service))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}
