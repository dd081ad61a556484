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
            .wrap(
                actix_web::middleware::ErrorHandlers::new()
                    .handler(actix_web::http::StatusCode::PAYLOAD_TOO_LARGE, super::error::too_large),
            )
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

/// The request body as UTF-8 text, without a byte order mark.
pub(crate) fn body_text(body: &[u8]) -> Result<&str, super::error::AppError> {
    utf8_body(body).map_err(|e| {
        super::error::AppError::new(
            super::error::ErrorCode::BadRequest,
            format!("rad {}: {}", e.line, e.message),
        )
    })
}

/// The body as UTF-8 text without a byte order mark, or a field error
/// naming the line of the first byte that is not UTF-8.
pub(crate) fn utf8_body(body: &[u8]) -> Result<&str, crate::domain::FieldError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    std::str::from_utf8(body).map_err(|e| {
        let good = &body[..e.valid_up_to()];
        let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // `good` is valid UTF-8 up to the bad byte: count characters, not bytes.
        let column = std::str::from_utf8(&good[line_start..]).map_or(0, |t| t.chars().count()) + 1;
        crate::domain::FieldError::new(line, "rad", &format!("är inte giltig UTF-8 (tecken {column})"))
    })
}
