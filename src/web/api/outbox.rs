//! `GET /api/v1/outbox?status=failed`: for admins, the mail the SMTP server
//! and the reports a webhook's receiver refused permanently (never
//! retried), newest first, with the answer. No patient identity: deviation
//! ids, addresses and the receiver's URL (without its query) only.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::mail::outbox;
use crate::store::tokens::Role;
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

#[derive(Deserialize)]
struct Query {
    status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/outbox", tag = "e-post",
    params(("status" = String, Query, pattern = "^failed$", description = "failed: e-post som SMTP-servern och rapporter som ett avvikelsesystem (webhook) vägrade permanent")),
    responses((status = 200, description = "vägrade utskick, nyast först; channel mail eller webhook"), (status = 400, description = "en annan status"),
        (status = 401, description = "ingen giltig token eller session"), (status = 403, description = "inte admin")))]
#[get("/outbox")]
async fn list(state: web::Data<AppState>, auth: Auth, q: web::Query<Query>) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin])?;
    if q.status.as_deref() != Some("failed") {
        return Err(AppError::new(ErrorCode::BadRequest, "status kan bara vara `failed`"));
    }
    let rows = web::block(move || -> Result<_, AppError> {
        let mut conn = state.pool.get()?;
        Ok(outbox::failed(&mut conn, 500)?)
    })
    .await??;
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|m| {
            let r = m.recipients();
            let to = m.webhook_url().map_or(r.to, |u| crate::mail::webhook::shown(&u));
            json!({
                "id": m.id, "message_id": m.message_id, "kind": m.kind, "channel": m.channel, "deviations": m.ids(),
                "to": to, "cc": r.cc, "attempts": m.attempts,
                "created_at": m.created_at.and_utc().to_rfc3339(),
                "failed_at": m.failed_at.map(|t| t.and_utc().to_rfc3339()),
                "error": m.last_error,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(list);
}
