//! `GET /api/v1/units` and `POST /api/v1/units` (JSON array or CSV).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde_json::json;

use super::body_text;
use crate::ingest;
use crate::store::tokens::Role;
use crate::store::units;
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

#[utoipa::path(post, path = "/api/v1/units", tag = "enheter",
    request_body(content = String, content_type = "application/json", description = "en JSON-array av enheter, eller CSV med Content-Type text/csv (SPEC §3.1)"),
    responses((status = 200, description = "antal skapade och uppdaterade"), (status = 400, description = "ogiltiga rader; inget sparades"),
        (status = 401, description = "ingen giltig token eller session"), (status = 403, description = "inte admin")))]
#[post("/units")]
async fn post_units(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    // Units carry the addresses reports go to: only an admin may change them
    // (SPEC §9: `inlasning` ingests events only).
    auth.require(&[Role::Admin])?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "kroppen är tom: skicka enheterna som en JSON-array eller CSV",
        ));
    }
    let is_csv = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("csv"));
    let list = ingest::parse_units(body_text(&body)?, is_csv).map_err(|errors| AppError {
        code: ErrorCode::InvalidBatch,
        message: format!("enheterna avvisades alla: {}; inget sparades", errors.summary()),
        extra: Some(("errors", json!(errors.listed()))),
    })?;
    if list.is_empty() {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "inga enheter i kroppen: skicka minst en enhet",
        ));
    }
    let (created, updated) = web::block(move || -> Result<_, AppError> {
        let mut conn = state.pool.get()?;
        Ok(units::upsert(&mut conn, &list)?)
    })
    .await??;
    Ok(HttpResponse::Ok().json(json!({"created": created, "updated": updated})))
}

/// Registered units, then the units events name that are not registered
/// (`"registered": false`, no kind: they count as unknown, SPEC §4.6).
#[utoipa::path(get, path = "/api/v1/units", tag = "enheter",
    responses((status = 200, description = "registrerade enheter (adresser bara för anropare med hela länet), sedan oregistrerade enheter som händelser nämner"),
        (status = 401, description = "ingen giltig token eller session"), (status = 403, description = "en roll som inte får läsa enheter")))]
#[get("/units")]
async fn get_units(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&[Role::Admin, Role::Ledning, Role::Handlaggare])?.clone();
    // Addresses route reports: shown only to those who see the whole county.
    let (known, unknown, show_addresses) = web::block(move || -> Result<_, AppError> {
        let mut conn = state.pool.get()?;
        let scope = crate::handling::Scope::of(&caller, &mut conn)?;
        let all = matches!(scope, crate::handling::Scope::All);
        Ok((units::all(&mut conn)?, units::unknown(&mut conn)?, all))
    })
    .await??;
    let mut out: Vec<serde_json::Value> = known
        .into_iter()
        .map(|u| {
            let mut v = json!(u);
            if let Some(o) = v.as_object_mut() {
                o.insert("registered".into(), json!(true));
                if !show_addresses {
                    o.remove("email");
                    o.remove("chef_email");
                }
            }
            v
        })
        .collect();
    out.extend(unknown.into_iter().map(|id| json!({"id": id, "registered": false})));
    Ok(HttpResponse::Ok().json(out))
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(post_units).service(get_units);
}
