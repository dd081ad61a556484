//! The deviation page (`/avvikelser/{id}`): the report as mailed, the
//! case's events, the history, comments, and the forms that change its
//! status, assign it and comment on it — each form one call into
//! `handling`, then back to the page (POST, redirect, GET).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::{json, Value};

use super::list::age;
use super::{blocking, check_csrf, error_page, page_user, see_other, PageUser, Pages};
use crate::audit::report::{self, local_text};
use crate::domain::handling::StatusChange;
use crate::domain::EventType;
use crate::handling;
use crate::rules::Units;
use crate::store::tokens::{self, Caller};
use crate::store::{events, units, users, DbConn};
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

fn event_text(k: EventType) -> &'static str {
    match k {
        EventType::Inskrivning => "Inskrivning",
        EventType::Bedomning => "Bedömning",
        EventType::Inskrivningsmeddelande => "Inskrivningsmeddelande",
        EventType::Kvittens => "Kvittens",
        EventType::FastVardkontakt => "Fast vårdkontakt",
        EventType::BehovAvSip => "Behov av SIP",
        EventType::SamtyckeSip => "Samtycke till SIP",
        EventType::Sparfarg => "Spårfärg",
        EventType::Utskrivningsklar => "Utskrivningsklar",
        EventType::AtertagUtskrivningsklar => "Återtagen utskrivningsklar",
        EventType::KallelseSip => "Kallelse till SIP",
        EventType::SipMote => "SIP-möte",
        EventType::Overflyttning => "Överflyttning",
        EventType::Utskrivning => "Utskrivning",
        EventType::Avslut => "Avslut",
        EventType::Bemanning => "Bemanning",
    }
}

/// Everything the deviation page shows, read (and logged) as `caller`.
fn deviation_data(state: &AppState, caller: &Caller, id: i64) -> Result<Value, AppError> {
    let mut conn = state.pool.get()?;
    let (scope, d) = handling::open(&mut conn, caller, id)?;
    let registered = units::all(&mut conn)?;
    let names: HashMap<String, String> = registered.iter().map(|u| (u.id.0.clone(), u.name.clone())).collect();
    let units = Units::new(registered);
    let now = Utc::now();
    let parties = crate::store::deviations::parties_of(&mut conn, &[d.id])?
        .remove(&d.id)
        .unwrap_or_default();
    let report = report::data(&d, &parties, &units, &state.auditor.mail, &state.auditor.templates, now)?;
    let name = |u: &str| names.get(u).cloned().unwrap_or_else(|| u.to_string());
    let timeline: Vec<Value> = match &d.case_id {
        Some(case) => {
            tokens::log_access(&mut conn, caller, "read_case", case)?;
            events::case_events(&mut conn, case)?
                .iter()
                .map(|e| {
                    json!({
                        "at": local_text(e.at.naive_utc()),
                        "kind": event_text(e.kind),
                        "unit": name(e.unit.as_str()),
                        "to": e.to.iter().map(|u| name(u.as_str())).collect::<Vec<_>>().join(", "),
                    })
                })
                .collect()
        }
        None => Vec::new(),
    };
    let x = handling::detail(&mut conn, caller, scope, d)?;
    let history: Vec<Value> = x
        .history
        .iter()
        .map(|h| {
            let change = match h.from_status {
                Some(f) if f != h.to_status => format!("{} → {}", f.label(), h.to_status.label()),
                Some(_) => "Uppgifter".to_string(),
                None => format!("Registrerad som {}", h.to_status.label().to_lowercase()),
            };
            json!({"at": local_text(h.at), "actor": h.actor, "change": change, "note": h.note})
        })
        .collect();
    let comments: Vec<Value> = x
        .comments
        .iter()
        .map(|c| json!({"at": local_text(c.at), "actor": c.actor, "text": c.text}))
        .collect();
    let choices: Vec<Value> = x
        .allowed
        .iter()
        .map(|s| json!({"value": s, "label": s.label()}))
        .collect();
    let mut workers = Vec::new();
    for u in users::list(&mut conn)? {
        if handling::may_work(&mut conn, &u, x.deviation.unit.as_deref())? {
            let selected = x.assignee.as_deref() == Some(u.username.as_str());
            workers.push(json!({"username": u.username, "selected": selected}));
        }
    }
    let d = &x.deviation;
    let (age_text, overdue) = age(d, now.naive_utc());
    Ok(json!({
        "d": {"id": d.id, "status": d.status, "case_id": d.case_id},
        "status_text": d.status.label(),
        "age": if age_text == "–" { Value::Null } else { json!(format!("{age_text} sedan tidsgränsen")) },
        "overdue": overdue,
        "report": report,
        "timeline": timeline,
        "history": history,
        "comments": comments,
        "atgard": x.atgard,
        "reason": x.reason,
        "choices": choices,
        "assignee": x.assignee,
        "workers": workers,
    }))
}

async fn show(
    state: &web::Data<AppState>,
    pages: &Pages,
    user: &PageUser,
    id: i64,
    status: StatusCode,
    extra: Value,
) -> HttpResponse {
    let st = state.clone();
    let caller = user.caller.clone();
    match web::block(move || deviation_data(&st, &caller, id)).await {
        Ok(Ok(mut data)) => {
            if let (Some(o), Value::Object(more)) = (data.as_object_mut(), extra) {
                o.extend(more);
            }
            let title = format!("Avvikelse {id}");
            pages.render(status, "deviation", &title, Some(user), data)
        }
        Ok(Err(e)) => error_page(pages, Some(user), &e),
        Err(e) => error_page(pages, Some(user), &AppError::internal(e)),
    }
}

#[get("/avvikelser/{id}")]
async fn deviation(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let user = match page_user(&state, &req).await {
        Ok(u) => u,
        Err(redirect) => return redirect,
    };
    let notice = match query.get("sparat").map(String::as_str) {
        Some("status") => Some("Statusen är sparad."),
        Some("kommentar") => Some("Kommentaren är sparad."),
        Some("tilldelning") => Some("Tilldelningen är sparad."),
        _ => None,
    };
    show(
        &state,
        &pages,
        &user,
        path.into_inner(),
        StatusCode::OK,
        json!({"notice": notice}),
    )
    .await
}

/// A form on the deviation page: the person and the form's CSRF token
/// checked, `action` run as them on a pooled connection, then back to the
/// page with `saved` as its notice, or the page again with the refusal
/// (409, 422) in place.
async fn deviation_form(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    id: i64,
    form: web::Form<HashMap<String, String>>,
    saved: &str,
    action: impl FnOnce(&mut DbConn, &AppState, &Caller, HashMap<String, String>) -> Result<(), AppError> + Send + 'static,
) -> HttpResponse {
    let user = match page_user(&state, &req).await {
        Ok(u) => u,
        Err(redirect) => return redirect,
    };
    if let Err(e) = check_csrf(&user, &form) {
        return error_page(&pages, Some(&user), &e);
    }
    let st = state.clone();
    let caller = user.caller.clone();
    let fields = form.into_inner();
    let result = blocking(move || {
        let mut conn = st.pool.get()?;
        action(&mut conn, &st, &caller, fields)
    })
    .await;
    match result {
        Ok(_) => see_other(&format!("/avvikelser/{id}?sparat={saved}")),
        Err(e) if matches!(e.code, ErrorCode::Conflict | ErrorCode::Unprocessable) => {
            let status = actix_web::ResponseError::status_code(&e);
            show(&state, &pages, &user, id, status, json!({"error": e.message})).await
        }
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}

#[post("/avvikelser/{id}/status")]
async fn change_status(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let id = path.into_inner();
    deviation_form(state, pages, req, id, form, "status", move |conn, st, caller, f| {
        let change = StatusChange {
            status: f.get("status").cloned().unwrap_or_default(),
            note: f.get("note").cloned(),
            atgard: f.get("atgard").cloned(),
            reason: f.get("reason").cloned(),
        };
        if change.status.trim().is_empty() {
            return Err(AppError::new(ErrorCode::Unprocessable, "välj en ny status"));
        }
        handling::change_status(conn, &st.auditor.mail, caller, id, &change)?;
        Ok(())
    })
    .await
}

#[post("/avvikelser/{id}/tilldela")]
async fn assign(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let id = path.into_inner();
    deviation_form(state, pages, req, id, form, "tilldelning", move |conn, _, caller, f| {
        handling::assign(conn, caller, id, f.get("username").map(String::as_str))?;
        Ok(())
    })
    .await
}

#[post("/avvikelser/{id}/kommentarer")]
async fn add_comment(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let id = path.into_inner();
    deviation_form(state, pages, req, id, form, "kommentar", move |conn, _, caller, f| {
        handling::comment(conn, caller, id, f.get("text").map(String::as_str).unwrap_or_default())?;
        Ok(())
    })
    .await
}

pub(super) fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(deviation)
        .service(change_status)
        .service(assign)
        .service(add_comment);
}
