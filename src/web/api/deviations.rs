//! `GET /api/v1/deviations` and `GET /api/v1/deviations/{id}` (with its
//! history). A handläggare sees only deviations of their unit and below;
//! every read of one deviation is logged.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::store::deviations::{self, DeviationRow};
use crate::store::tokens::{self, Role};
use crate::store::units;
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

fn view(d: &DeviationRow) -> serde_json::Value {
    json!({
        "id": d.id, "rule": d.rule, "case": d.case_id, "unit": d.unit,
        "due": crate::calendar::in_stockholm(d.due.and_utc()).to_rfc3339(),
        "finding_status": d.finding_status,
        "done": d.done_at.map(|t| crate::calendar::in_stockholm(t.and_utc()).to_rfc3339()),
        "late_minutes": d.late_minutes, "status": d.status,
        "risk": {"sannolikhet": d.sannolikhet, "konsekvens": d.konsekvens, "varde": d.sannolikhet * d.konsekvens},
        "recipients": serde_json::from_str::<serde_json::Value>(&d.recipients).unwrap_or_default(),
        "created_at": d.created_at.and_utc().to_rfc3339(),
    })
}

#[get("/deviations")]
async fn list(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&[Role::Admin, Role::Ledning, Role::Handlaggare])?.clone();
    let out = web::block(move || -> Result<Vec<serde_json::Value>, AppError> {
        let mut conn = state.pool.get()?;
        let all = deviations::all(&mut conn)?;
        let own = match (&caller.role, &caller.unit) {
            (Role::Handlaggare, Some(u)) => Some(units::subtree(&mut conn, u)?),
            _ => None,
        };
        Ok(all
            .iter()
            .filter(|d| {
                own.as_ref()
                    .is_none_or(|o| d.unit.as_ref().is_some_and(|u| o.contains(u)))
            })
            .map(view)
            .collect())
    })
    .await??;
    Ok(HttpResponse::Ok().json(out))
}

#[get("/deviations/{id}")]
async fn one(state: web::Data<AppState>, auth: Auth, path: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&[Role::Admin, Role::Ledning, Role::Handlaggare])?.clone();
    let id = path.into_inner();
    let out = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = state.pool.get()?;
        let d =
            deviations::get(&mut conn, id)?.ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such deviation"))?;
        if let (Role::Handlaggare, Some(u)) = (&caller.role, &caller.unit) {
            let own = units::subtree(&mut conn, u)?;
            if !d.unit.as_ref().is_some_and(|x| own.contains(x)) {
                return Err(AppError::new(
                    ErrorCode::Forbidden,
                    "this deviation is not for your units",
                ));
            }
        }
        tokens::log_access(&mut conn, &caller, "read_deviation", &id.to_string())?;
        let history = deviations::history_of(&mut conn, id)?;
        let mut v = view(&d);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "history".into(),
                json!(history
                    .iter()
                    .map(|h| json!({"at": h.at.and_utc().to_rfc3339(), "actor": h.actor,
                "from": h.from_status, "to": h.to_status, "note": h.note}))
                    .collect::<Vec<_>>()),
            );
        }
        Ok(v)
    })
    .await??;
    Ok(HttpResponse::Ok().json(out))
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(one);
}
