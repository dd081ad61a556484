//! `GET /api/v1/cases/{id}`: a case's timeline in time order. Every read is
//! written to the access log (loggkontroll, SPEC §9). A handläggare sees only
//! cases that touch their unit or a unit below it.

use std::collections::HashSet;

use actix_web::{get, web, HttpResponse};
use serde_json::{json, Value};

use crate::domain::Event;
use crate::handling::Scope;
use crate::store::tokens::{self, Role};
use crate::store::{cases, events, units};
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "ärenden",
    params(("id" = String, Path, description = "ärendets id")),
    responses((status = 200, description = "ärendets händelser i tidsordning, utan patientidentitet; läsningen loggas"),
        (status = 401, description = "ingen giltig token eller session"), (status = 403, description = "en roll som inte får läsa ärenden"),
        (status = 404, description = "ärendet finns inte, eller ligger utanför anroparens enheter")))]
#[get("/cases/{id}")]
#[tracing::instrument(skip_all, fields(case = %path))]
async fn get_case(state: web::Data<AppState>, auth: Auth, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&[Role::Admin, Role::Ledning, Role::Handlaggare])?.clone();
    let id = path.into_inner();
    let body = web::block(move || -> Result<Value, AppError> {
        let mut conn = state.pool.get()?;
        let scope = Scope::of(&caller, &mut conn)?;
        // Out of scope answers exactly as a case that does not exist.
        let not_found = || {
            AppError::new(
                ErrorCode::NotFound,
                "ärendet finns inte, eller hör inte till dina enheter",
            )
        };
        if !cases::exists(&mut conn, &id)? {
            return Err(not_found());
        }
        let timeline = events::case_events(&mut conn, &id)?;
        let touches = timeline
            .iter()
            .any(|e| scope.contains(Some(e.unit.as_str())) || e.to.iter().any(|t| scope.contains(Some(t.as_str()))));
        if !touches {
            return Err(not_found());
        }
        let registered: HashSet<String> = units::all(&mut conn)?.into_iter().map(|u| u.id.0).collect();
        tokens::log_access(&mut conn, &caller, "read_case", &id)?;
        let list: Vec<Value> = timeline.iter().map(|e| event_json(e, &registered)).collect();
        Ok(json!({"case": id, "events": list}))
    })
    .await??;
    Ok(HttpResponse::Ok().json(body))
}

/// The event as in the contract, plus `unit_registered`; the patient hash is
/// never returned.
fn event_json(e: &Event, registered: &HashSet<String>) -> Value {
    let mut v = json!({
        "id": e.id,
        "case": e.case,
        "type": e.kind.as_str(),
        "at": e.at.to_rfc3339(),
        "unit": e.unit,
        "unit_registered": registered.contains(e.unit.as_str()),
    });
    if let Some(o) = v.as_object_mut() {
        if e.kind.is_message() || !e.to.is_empty() {
            o.insert("to".into(), json!(e.to));
        }
        if let Some(r) = &e.reference {
            o.insert("ref".into(), json!(r));
        }
        if let Some(val) = &e.value {
            o.insert("value".into(), val.to_json());
        }
        if e.patient.is_some() {
            o.insert("patient_recorded".into(), json!(true));
        }
    }
    v
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(get_case);
}
