//! `POST /api/v1/scans` runs one scan now (then delivers pending mail);
//! `GET /api/v1/scans` lists the latest runs.

use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::audit::ScanError;
use crate::store::schema::scan_runs;
use crate::store::tokens::Role;
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

#[derive(Deserialize)]
struct ScanRequest {
    /// RFC 3339 with offset; default now.
    as_of: Option<String>,
    #[serde(default)]
    full: bool,
}

#[utoipa::path(post, path = "/api/v1/scans", tag = "granskning",
    request_body(content = Option<crate::web::api::openapi::ScanRequest>, content_type = "application/json"),
    responses((status = 200, description = "the scan's summary and the mail delivered"),
        (status = 400, description = "an as_of in the future or unreadable"), (status = 401, description = "no valid token or session"),
        (status = 403, description = "not an admin"), (status = 409, description = "another scan is running")))]
#[post("/scans")]
async fn post_scan(
    state: web::Data<AppState>,
    auth: Auth,
    body: Option<web::Json<ScanRequest>>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin])?;
    let (as_of, full) = match body.map(web::Json::into_inner) {
        Some(r) => (r.as_of, r.full),
        None => (None, false),
    };
    let as_of = as_of
        .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&chrono::Utc)))
        .transpose()
        .map_err(|_| AppError::new(ErrorCode::BadRequest, "as_of must be RFC 3339 with offset"))?
        .map(crate::audit::requested_as_of)
        .transpose()
        .map_err(|e| AppError::new(ErrorCode::BadRequest, e))?;
    let services = state.clone().into_inner();
    let summary = match crate::jobs::scan_once(&services, as_of, full).await {
        Ok(s) => s,
        Err(ScanError::Busy) => return Err(AppError::new(ErrorCode::Conflict, "another scan is running")),
        Err(ScanError::Failed(e)) => return Err(AppError::internal(format!("{e:#}"))),
    };
    let mail = crate::jobs::deliver_once(&services, false).await;
    Ok(HttpResponse::Ok().json(json!({"scan": summary, "mail": mail})))
}

#[utoipa::path(get, path = "/api/v1/scans", tag = "granskning",
    responses((status = 200, description = "the latest 100 scan runs"), (status = 401, description = "no valid token or session"),
        (status = 403, description = "a role that may not read scan runs")))]
#[get("/scans")]
async fn get_scans(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Ledning])?;
    type Row = (
        i64,
        NaiveDateTime,
        Option<NaiveDateTime>,
        NaiveDateTime,
        bool,
        i32,
        i32,
        i32,
        i32,
        i32,
        i32,
        String,
    );
    let rows: Vec<Row> = web::block(move || -> Result<Vec<Row>, AppError> {
        let mut conn = state.pool.get()?;
        Ok(scan_runs::table
            .order(scan_runs::id.desc())
            .limit(100)
            .select((
                scan_runs::id,
                scan_runs::started_at,
                scan_runs::finished_at,
                scan_runs::as_of,
                scan_runs::full_scan,
                scan_runs::cases_evaluated,
                scan_runs::findings,
                scan_runs::filed,
                scan_runs::updated,
                scan_runs::withdrawn,
                scan_runs::errors,
                scan_runs::status,
            ))
            .load(&mut conn)?)
    })
    .await??;
    let list: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            json!({"id": r.0, "started_at": r.1.and_utc().to_rfc3339(), "finished_at": r.2.map(|t| t.and_utc().to_rfc3339()),
                "as_of": r.3.and_utc().to_rfc3339(), "full": r.4, "cases_evaluated": r.5, "findings": r.6, "filed": r.7,
                "updated": r.8, "withdrawn": r.9, "errors": r.10, "status": r.11})
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(post_scan).service(get_scans);
}
