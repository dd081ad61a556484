//! The JSON API under `/api/v1`.

mod cases;
pub mod deviations;
mod events;
pub mod openapi;
mod outbox;
pub mod reports;
mod scans;
pub mod session;
mod units;

use actix_web::web;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .configure(events::config)
            .configure(units::config)
            .configure(cases::config)
            .configure(deviations::config)
            .configure(scans::config)
            .configure(outbox::config)
            .configure(reports::config)
            .configure(session::config)
            .configure(openapi::config),
    );
}

/// The request body as UTF-8 text.
pub(crate) fn body_text(body: &[u8]) -> Result<&str, super::error::AppError> {
    std::str::from_utf8(body).map_err(|e| {
        super::error::AppError::new(
            super::error::ErrorCode::BadRequest,
            format!("the body is not UTF-8: {e}"),
        )
    })
}
