//! `POST /api/v1/scans` runs one scan now (then delivers pending mail and
//! webhook reports);
//! `GET /api/v1/scans` lists the latest runs.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::audit::ScanError;
use crate::store::tokens::Role;
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

/// What a scan is asked for; an empty body asks for a scan as of now.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// RFC 3339 with offset; default now; not in the future
    #[schema(format = DateTime)]
    pub as_of: Option<String>,
    /// every case, not only those changed or due
    pub full: Option<bool>,
}

/// The body as a [`ScanRequest`]: empty means the defaults; anything else
/// must be a JSON object with only these fields, sent as JSON (a form or a
/// misspelled field never turns into a scan as of now).
fn scan_request(req: &actix_web::HttpRequest, body: &[u8]) -> Result<ScanRequest, AppError> {
    if body.is_empty() {
        return Ok(ScanRequest::default());
    }
    let json = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !json {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "kroppen ska vara JSON med Content-Type: application/json, t.ex. {\"as_of\": \"2026-05-04T12:00:00+02:00\"}",
        ));
    }
    let shape = || {
        AppError::new(
            ErrorCode::BadRequest,
            "kroppen ska vara ett JSON-objekt {\"as_of\", \"full\"} (båda valfria)",
        )
    };
    // JSON `null` is no body; an array never reads as the object's fields.
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Null) => return Ok(ScanRequest::default()),
        Ok(serde_json::Value::Object(_)) | Err(_) => {}
        Ok(_) => return Err(shape()),
    }
    serde_json::from_slice(body).map_err(|e| {
        AppError::new(
            ErrorCode::BadRequest,
            format!(
                "kroppen ska vara {{\"as_of\", \"full\"}} (båda valfria): {}",
                crate::web::fallback::json_reason(&e)
            ),
        )
    })
}

#[utoipa::path(post, path = "/api/v1/scans", tag = "granskning",
    request_body(content = Option<ScanRequest>, content_type = "application/json"),
    responses((status = 200, description = "granskningens sammanfattning, den e-post och de rapporter till avvikelsesystem (webhook) som levererades"),
        (status = 400, description = "en kropp som inte är ett JSON-objekt med as_of och full, eller ett as_of i framtiden eller som inte går att läsa"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "inte admin"), (status = 409, description = "en annan granskning pågår; försök igen om en stund")))]
#[post("/scans")]
async fn post_scan(
    state: web::Data<AppState>,
    auth: Auth,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin])?;
    let ScanRequest { as_of, full } = scan_request(&req, &body)?;
    let full = full.unwrap_or(false);
    let as_of = as_of
        .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&chrono::Utc)))
        .transpose()
        .map_err(|_| {
            AppError::new(
                ErrorCode::BadRequest,
                "as_of ska vara en tidpunkt enligt RFC 3339 med tidszon, t.ex. 2026-05-04T12:00:00+02:00",
            )
        })?
        .map(crate::audit::requested_as_of)
        .transpose()
        .map_err(|e| AppError::new(ErrorCode::BadRequest, e))?;
    let services = state.clone().into_inner();
    let summary = match crate::jobs::scan_once(&services, as_of, full).await {
        Ok(s) => s,
        Err(ScanError::Busy) => {
            return Err(AppError::new(
                ErrorCode::Conflict,
                "en annan granskning pågår; försök igen om en stund",
            ))
        }
        Err(ScanError::Failed(e)) => return Err(AppError::from(e)),
    };
    let mail = crate::jobs::deliver_once(&services, false).await;
    let webhook = crate::jobs::deliver_hooks_once(&services, false).await;
    Ok(HttpResponse::Ok().json(json!({"scan": summary, "mail": mail, "webhook": webhook})))
}

#[utoipa::path(get, path = "/api/v1/scans", tag = "granskning",
    responses((status = 200, description = "de senaste 100 granskningarna"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "en roll som inte får läsa granskningar")))]
#[get("/scans")]
async fn get_scans(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Ledning])?;
    let rows = web::block(move || -> Result<_, AppError> {
        let mut conn = state.pool.get()?;
        Ok(crate::audit::recent_runs(&mut conn, 100)?)
    })
    .await??;
    let list: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            json!({"id": r.id, "started_at": r.started_at.and_utc().to_rfc3339(),
                "finished_at": r.finished_at.map(|t| t.and_utc().to_rfc3339()),
                "as_of": r.as_of.and_utc().to_rfc3339(), "full": r.full_scan, "cases_evaluated": r.cases_evaluated,
                "findings": r.findings, "filed": r.filed, "updated": r.updated, "withdrawn": r.withdrawn,
                "errors": r.errors, "status": r.status})
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(post_scan).service(get_scans);
}
