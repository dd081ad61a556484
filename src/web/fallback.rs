//! What answers when no handler does, or before one runs: the extractors'
//! errors (a path, query, form or JSON body that cannot be read), an
//! unknown address and a known address asked with a method it does not
//! take. Under `/api/` every such answer is the API's JSON error with a
//! Swedish message; elsewhere it is the pages' error page. A known API path
//! asked with another method answers 405 with `Allow`, from the methods the
//! OpenAPI document declares for it (a test holds the document to the routes).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::error::{AppError, ErrorCode};
use super::pages::Pages;

/// The largest form a page takes: the longest field (4000 characters, up to
/// four bytes each, twelve once percent-encoded) three times over, with room
/// for the rest. A body over it is answered with the error page.
pub const FORM_LIMIT: usize = 256 * 1024;

/// The extractor settings every route shares.
pub fn extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|e, req| reject(req, path_error(&e.to_string()))))
        .app_data(web::QueryConfig::default().error_handler(|e, req| reject(req, query_error(&e.to_string()))))
        .app_data(web::FormConfig::default().limit(FORM_LIMIT).error_handler(|e, req| {
            let error = match e {
                actix_web::error::UrlencodedError::Overflow { .. } => AppError::new(
                    ErrorCode::TooLarge,
                    "formuläret är större än tjänsten tar emot; korta texten",
                ),
                _ => AppError::new(ErrorCode::BadRequest, "formuläret kunde inte läsas"),
            };
            reject(req, error)
        }))
        .app_data(web::JsonConfig::default().error_handler(|e, req| {
            let error = match &e {
                actix_web::error::JsonPayloadError::Deserialize(d) => AppError::new(
                    ErrorCode::BadRequest,
                    format!("kroppen kunde inte läsas: {}", json_reason(d)),
                ),
                actix_web::error::JsonPayloadError::Overflow { .. }
                | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                    AppError::new(ErrorCode::TooLarge, "kroppen är större än tjänsten tar emot")
                }
                actix_web::error::JsonPayloadError::ContentType => AppError::new(
                    ErrorCode::BadRequest,
                    "kroppen ska vara JSON (Content-Type: application/json)",
                ),
                _ => AppError::new(ErrorCode::BadRequest, "kroppen kunde inte läsas som JSON"),
            };
            reject(req, error)
        }));
}

/// A path segment that cannot be what the route takes (an id that is not a
/// number): that thing does not exist.
fn path_error(_: &str) -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        "finns inte: adressen pekar inte ut något som finns",
    )
}

fn query_error(e: &str) -> AppError {
    // serde_urlencoded's messages name the field; the value is not repeated.
    let field = e
        .split('`')
        .nth(1)
        .map(|f| format!(" (fältet `{f}`)"))
        .unwrap_or_default();
    AppError::new(
        ErrorCode::BadRequest,
        format!("frågeparametrarna kunde inte läsas{field}"),
    )
}

/// The answer to an error before a handler: JSON under `/api/`, the error
/// page elsewhere.
fn reject(req: &HttpRequest, error: AppError) -> actix_web::Error {
    if is_api(req) {
        return error.into();
    }
    let page = page_for(req, &error);
    actix_web::error::InternalError::from_response(error, page).into()
}

fn is_api(req: &HttpRequest) -> bool {
    req.path().starts_with("/api/")
}

fn page_for(req: &HttpRequest, error: &AppError) -> HttpResponse {
    match req.app_data::<web::Data<Pages>>() {
        Some(pages) => super::pages::error_page(pages, None, error),
        None => error.error_response(),
    }
}

/// The service behind every route: 405 with `Allow` for a path of the API
/// document (`/api/…`, `/healthz`, `/readyz`, `/metrics`) asked with another
/// method, else 404.
pub async fn default_service(req: HttpRequest) -> HttpResponse {
    // The path as routing reads it (percent-decoded), as the routes matched it.
    if let Some(allowed) = api_methods(req.match_info().as_str()) {
        let error = AppError::new(
            ErrorCode::MethodNotAllowed,
            format!(
                "adressen tar inte emot {}; den tar emot {allowed}",
                crate::metrics::Metrics::method_label(req.method().as_str())
            ),
        );
        let mut res = error.error_response();
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allowed) {
            res.headers_mut().insert(actix_web::http::header::ALLOW, v);
        }
        return res;
    }
    if is_api(&req) {
        return AppError::new(
            ErrorCode::NotFound,
            "ingen sådan adress i API:t (se /api/v1/openapi.json)",
        )
        .error_response();
    }
    let error = AppError::new(ErrorCode::NotFound, "Sidan finns inte.");
    let mut res = page_for(&req, &error);
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}

/// The methods the OpenAPI document declares for the path, comma-separated,
/// or `None` for a path it does not have.
fn api_methods(path: &str) -> Option<String> {
    static TABLE: OnceLock<Vec<(Vec<String>, BTreeSet<&'static str>)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let doc = <super::api::openapi::ApiDoc as utoipa::OpenApi>::openapi();
        let value = serde_json::to_value(&doc.paths).unwrap_or_default();
        let mut out = Vec::new();
        if let Some(paths) = value.get("paths").and_then(|p| p.as_object()).or(value.as_object()) {
            for (template, item) in paths {
                let methods: BTreeSet<&'static str> = ["get", "put", "post", "delete", "patch"]
                    .into_iter()
                    .filter(|m| item.get(*m).is_some())
                    .collect();
                out.push((template.split('/').map(str::to_string).collect(), methods));
            }
        }
        out
    });
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &[String]| {
        template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
    };
    let methods: BTreeSet<&str> = table
        .iter()
        .filter(|(t, _)| matches(t))
        .flat_map(|(_, m)| m.iter().copied())
        .collect();
    (!methods.is_empty()).then(|| {
        methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// A serde_json error told in Swedish: where, and what kind, never the
/// value that was sent.
pub fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let place = format!("rad {}, tecken {}", e.line(), e.column());
    let quoted = text.split('`').nth(1).unwrap_or("");
    match e.classify() {
        serde_json::error::Category::Eof => format!("JSON:en tar slut för tidigt ({place})"),
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            format!("är inte giltig JSON ({place})")
        }
        serde_json::error::Category::Data if text.starts_with("unknown field") => {
            format!("okänt fält `{quoted}`")
        }
        serde_json::error::Category::Data if text.starts_with("missing field") => {
            format!("fältet `{quoted}` saknas men krävs")
        }
        serde_json::error::Category::Data if text.starts_with("invalid type") => {
            format!("ett värde har fel typ ({place})")
        }
        serde_json::error::Category::Data => format!("ett värde är inte tillåtet ({place})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_told_in_swedish_without_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            full: Option<bool>,
        }
        let reason = |t: &str| json_reason(&serde_json::from_str::<S>(t).unwrap_err());
        assert_eq!(reason(r#"{"asof": 1}"#), "okänt fält `asof`");
        assert!(reason(r#"{"full": "hemligt"}"#).starts_with("ett värde har fel typ"));
        assert!(!reason(r#"{"full": "hemligt"}"#).contains("hemligt"));
        assert!(reason("{").starts_with("JSON:en tar slut"));
        assert!(reason("\0").starts_with("är inte giltig JSON"));
    }

    #[test]
    fn known_api_paths_name_their_methods() {
        assert_eq!(api_methods("/api/v1/scans").as_deref(), Some("GET, POST"));
        assert_eq!(api_methods("/api/v1/deviations/12/status").as_deref(), Some("POST"));
        assert_eq!(api_methods("/api/v1/nothing"), None);
    }
}
