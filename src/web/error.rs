//! The one error type at the HTTP edge. Every failure leaves as
//! `{"error": "<stable_snake_case_code>", "message": "<text, Swedish where a person acts on it>"}`,
//! plus `errors` (per-line field errors) or `conflicts` where they apply.
//! Causes are logged with the request's route, never with patient data.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use crate::domain::FieldErrors;
use crate::ingest::IngestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    InvalidBatch,
    Conflict,
    Unprocessable,
    TooManyRequests,
    BadRequest,
    TooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidBatch => "invalid_batch",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidBatch | ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub extra: Option<(&'static str, Value)>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %cause, "anropet misslyckades");
        AppError::new(ErrorCode::Internal, "internt fel; orsaken finns i serverns logg")
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({"error": self.code.as_str(), "message": self.message});
        if let (Some((key, value)), Some(obj)) = (&self.extra, body.as_object_mut()) {
            obj.insert((*key).to_string(), value.clone());
        }
        HttpResponse::build(self.status_code()).json(body)
    }
}

impl From<IngestError> for AppError {
    fn from(e: IngestError) -> AppError {
        match e {
            IngestError::Invalid(errors) => AppError {
                code: ErrorCode::InvalidBatch,
                message: format!("batchen avvisades hel: {}; inget sparades", errors.summary()),
                extra: Some(("errors", json!(errors.listed()))),
            },
            IngestError::Conflict(conflicts) => {
                let listed = &conflicts[..conflicts.len().min(FieldErrors::LISTED)];
                let shown = if listed.len() < conflicts.len() {
                    format!(" (de första {} listas)", listed.len())
                } else {
                    String::new()
                };
                AppError {
                    code: ErrorCode::Conflict,
                    message: format!(
                        "{} händelse-id finns redan med annat innehåll{shown}; inget sparades",
                        conflicts.len()
                    ),
                    extra: Some(("conflicts", json!(listed))),
                }
            }
            IngestError::Db(e) => AppError::from(e),
        }
    }
}

/// A body over `server.max_body_mb`, refused by actix before any handler
/// ran (its answer a plain-text 413): the API's JSON error instead.
pub fn too_large<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    let (req, _) = res.into_parts();
    let answer = AppError::new(
        ErrorCode::TooLarge,
        "kroppen är större än servern tar emot (server.max_body_mb): inget sparades; dela upp den i mindre batcher",
    )
    .error_response();
    Ok(actix_web::middleware::ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, answer).map_into_right_body(),
    ))
}

impl From<crate::store::units::UnitsError> for AppError {
    fn from(e: crate::store::units::UnitsError) -> AppError {
        match e {
            crate::store::units::UnitsError::Cycle(_) => AppError::new(ErrorCode::BadRequest, e.to_string()),
            crate::store::units::UnitsError::Db(e) => AppError::from(e),
        }
    }
}

/// The deviation lifecycle's refusals as the API answers them (SPEC §6.1:
/// 409 for a change not allowed, 422 for one without its text; SPEC §9: out
/// of scope is not found, no scope is forbidden).
impl From<crate::handling::HandlingError> for AppError {
    fn from(e: crate::handling::HandlingError) -> AppError {
        use crate::handling::HandlingError as H;
        let code = match &e {
            H::NotFound => ErrorCode::NotFound,
            H::NoScope => ErrorCode::Forbidden,
            H::NotAllowed { .. } => ErrorCode::Conflict,
            H::Missing { .. } | H::Invalid(_) => ErrorCode::Unprocessable,
            H::Db(_) | H::Report(_) => ErrorCode::Internal,
        };
        match e {
            H::Db(e) => AppError::from(e),
            H::Report(e) => AppError::from(e),
            e => AppError::new(code, e.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> AppError {
        AppError::internal(e)
    }
}

/// A write refused for want of room: 503, nothing of it stored.
fn full(e: &dyn std::fmt::Display) -> AppError {
    tracing::error!(error = %e, "databasen är full");
    AppError::new(
        ErrorCode::Unavailable,
        "databasen är full: inget av detta sparades; skicka igen när driften har frigjort utrymme",
    )
}

/// The database gone in the middle of a request (restarted, its sessions
/// ended): 503. The open transaction was rolled back; one that committed
/// just before may have lost only its answer, so the request is sent again
/// (ingest and scans take nothing twice).
fn unreachable(e: &dyn std::fmt::Display) -> AppError {
    tracing::error!(error = %e, "förbindelsen med databasen bröts");
    AppError::new(ErrorCode::Unavailable, UNREACHABLE)
}

const UNREACHABLE: &str =
    "databasen svarar inte: skicka igen om en stund (det som redan hann sparas sparas inte två gånger)";

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> AppError {
        if crate::store::is_full(&e) {
            full(&e)
        } else if crate::store::is_unreachable_db(&e) {
            unreachable(&e)
        } else {
            AppError::internal(e)
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> AppError {
        if crate::store::is_full(&e) {
            full(&e)
        } else if crate::store::is_unreachable(&e) {
            unreachable(&e)
        } else {
            AppError::internal(e)
        }
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> AppError {
        tracing::error!(error = %e, "ingen databasförbindelse");
        AppError::new(ErrorCode::Unavailable, UNREACHABLE)
    }
}
