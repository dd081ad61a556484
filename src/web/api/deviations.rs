//! `GET /api/v1/deviations` and `GET /api/v1/deviations/{id}` (with its
//! history). A handläggare sees only deviations of their unit and below,
//! and another unit's deviation answers as one that does not exist; every
//! read, list reads included, is logged.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::store::deviations::{self, DeviationRow};
use crate::store::tokens::{self, Role};
use crate::web::auth::{Auth, Scope};
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

/// A deviation as the API shows it; the mail addresses only to those who
/// may see every unit's (not a handläggare).
fn view(d: &DeviationRow, scope: &Scope) -> serde_json::Value {
    let recipients = match scope {
        Scope::All => serde_json::from_str::<serde_json::Value>(&d.recipients).unwrap_or_default(),
        Scope::Units(_) => serde_json::Value::Null,
    };
    json!({
        "id": d.id, "rule": d.rule, "case": d.case_id, "unit": d.unit,
        "due": crate::calendar::in_stockholm(d.due.and_utc()).to_rfc3339(),
        "finding_status": d.finding_status,
        "done": d.done_at.map(|t| crate::calendar::in_stockholm(t.and_utc()).to_rfc3339()),
        "late_minutes": d.late_minutes, "status": d.status,
        "risk": {"sannolikhet": d.sannolikhet, "konsekvens": d.konsekvens, "varde": d.sannolikhet * d.konsekvens},
        "recipients": recipients,
        "created_at": d.created_at.and_utc().to_rfc3339(),
    })
}

#[get("/deviations")]
async fn list(state: web::Data<AppState>, auth: Auth, req: HttpRequest) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&[Role::Admin, Role::Ledning, Role::Handlaggare])?.clone();
    let filter = req.query_string().to_string();
    let out = web::block(move || -> Result<Vec<serde_json::Value>, AppError> {
        let mut conn = state.pool.get()?;
        let scope = Scope::of(&caller, &mut conn)?;
        // A list read is a read of every deviation in it: logged with its filter.
        tokens::log_access(&mut conn, &caller, "list_deviations", &format!("?{filter}"))?;
        Ok(deviations::all(&mut conn)?
            .iter()
            .filter(|d| scope.contains(d.unit.as_deref()))
            .map(|d| view(d, &scope))
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
        let scope = Scope::of(&caller, &mut conn)?;
        // Out of scope answers exactly as an id that does not exist.
        let d = deviations::get(&mut conn, id)?
            .filter(|d| scope.contains(d.unit.as_deref()))
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such deviation"))?;
        tokens::log_access(&mut conn, &caller, "read_deviation", &id.to_string())?;
        let history = deviations::history_of(&mut conn, id)?;
        let mut v = view(&d, &scope);
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
