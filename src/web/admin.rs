//! The pages for admins (and, for scan runs, ledning): scan runs, the unit
//! register (register a unit, change its e-mail and chef's e-mail), users
//! (create with a generated password, new password, disable) and
//! loggkontroll: the access log by user, case or deviation and period, as a
//! page and as CSV. Every form carries the session's CSRF token.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{json, Value};

use super::error::{AppError, ErrorCode};
use super::pages::{blocking, check_csrf, error_page, role_text, user_in_role, PageUser, Pages};
use super::AppState;
use crate::audit::report::local_text;
use crate::domain::Role;
use crate::store::tokens;

mod units;
mod users;

/// Lines loggkontroll shows (and exports) at most per search.
const LOG_LIMIT: i64 = 5000;

async fn admin_user(
    state: &web::Data<AppState>,
    pages: &Pages,
    req: &HttpRequest,
    roles: &[Role],
) -> Result<PageUser, HttpResponse> {
    user_in_role(state, pages, req, roles, "sidan är bara för administratörer").await
}

/// An admin's form: the person (an admin) and the form's CSRF token checked.
async fn admin_form(
    state: &web::Data<AppState>,
    pages: &Pages,
    req: &HttpRequest,
    form: &HashMap<String, String>,
) -> Result<PageUser, HttpResponse> {
    let user = admin_user(state, pages, req, &[Role::Admin]).await?;
    match check_csrf(&user, form) {
        Ok(()) => Ok(user),
        Err(e) => Err(error_page(pages, Some(&user), &e)),
    }
}

#[get("/granskningar")]
async fn runs(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match admin_user(&state, &pages, &req, &[Role::Admin, Role::Ledning]).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let st = state.clone();
    let (rows, files) = match blocking(move || {
        let mut conn = st.pool.get()?;
        Ok((
            crate::audit::recent_runs(&mut conn, 100)?,
            crate::store::feed::recent(&mut conn, 50)?,
        ))
    })
    .await
    {
        Ok(r) => r,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let runs: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let kind = match (r.full_scan, r.backfill) {
                (_, true) => "bakåt i tiden",
                (true, false) => "fullständig",
                (false, false) => "ändrade ärenden",
            };
            let status = r.status.label();
            json!({"id": r.id, "started": local_text(r.started_at), "finished": r.finished_at.map(local_text),
                   "as_of": local_text(r.as_of), "kind": kind, "cases": r.cases_evaluated, "filed": r.filed,
                   "updated": r.updated, "withdrawn": r.withdrawn, "unmailed": r.unmailed, "status": status,
                   "error": r.error_text})
        })
        .collect();
    let files: Vec<Value> = files
        .into_iter()
        .map(|f| {
            let outcome = match f.outcome.as_str() {
                crate::store::feed::IMPORTED => "inläst",
                crate::store::feed::FAILED => "fel",
                crate::store::feed::REPEATED => "redan inläst",
                other => other,
            };
            json!({"received": local_text(f.received_at), "name": f.name, "bytes": f.bytes,
                   "outcome": outcome, "failed": f.outcome == crate::store::feed::FAILED,
                   "received_events": f.events_received, "stored": f.events_stored,
                   "duplicates": f.duplicates, "errors": f.errors, "moved_to": f.moved_to})
        })
        .collect();
    let feed = state.feed.as_ref().map(|f| f.directory.display().to_string());
    pages.render(
        StatusCode::OK,
        "runs",
        "Granskningar",
        Some(&user),
        json!({"runs": runs, "files": files, "feed": feed}),
    )
}

/// A form field, trimmed; `None` when empty or absent.
fn field(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The `units` field: unit ids separated by commas.
fn unit_list(form: &HashMap<String, String>) -> Vec<String> {
    form.get("units")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

struct LogQuery {
    actor: Option<String>,
    object: Option<String>,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
    raw: HashMap<String, String>,
}

fn log_query(req: &HttpRequest) -> Result<LogQuery, AppError> {
    let raw: HashMap<String, String> = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let text = |k: &str| raw.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let day = |k: &str, end: bool| -> Result<Option<NaiveDateTime>, AppError> {
        match text(k) {
            None => Ok(None),
            Some(v) => {
                let d = NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|_| {
                    AppError::new(ErrorCode::BadRequest, format!("{k} ska vara ett datum (ÅÅÅÅ-MM-DD)"))
                })?;
                let d = if end { d.succ_opt().unwrap_or(d) } else { d };
                Ok(Some(crate::calendar::local_instant(d, NaiveTime::MIN).naive_utc()))
            }
        }
    };
    Ok(LogQuery {
        actor: text("anvandare"),
        object: text("objekt"),
        from: day("from", false)?,
        to: day("to", true)?,
        raw,
    })
}

fn search(state: &AppState, q: &LogQuery) -> Result<Vec<tokens::LogRow>, AppError> {
    let mut conn = state.pool.get()?;
    Ok(tokens::search_log(
        &mut conn,
        q.actor.as_deref(),
        q.object.as_deref(),
        q.from,
        q.to,
        LOG_LIMIT,
    )?)
}

fn action_text(a: &str) -> &str {
    match a {
        "read_deviation" => "läste avvikelse",
        "read_case" => "läste ärende",
        "list_deviations" => "läste listan",
        "export_deviations" => "exporterade listan",
        other => other,
    }
}

#[get("/loggkontroll")]
async fn log_page(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match admin_user(&state, &pages, &req, &[Role::Admin]).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let q = match log_query(&req) {
        Ok(q) => q,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let st = state.clone();
    let filter = json!({"anvandare": q.raw.get("anvandare"), "objekt": q.raw.get("objekt"),
                        "from": q.raw.get("from"), "to": q.raw.get("to")});
    let rows = match blocking(move || search(&st, &q)).await {
        Ok(r) => r,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let count = rows.len();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"at": local_text(r.at), "actor": r.actor, "role": Role::parse(&r.role).map_or(r.role.clone(), |x| role_text(x).to_string()),
                        "action": action_text(&r.action), "object": r.object})
        })
        .collect();
    let data = json!({"rows": rows, "count": count, "capped": count as i64 >= LOG_LIMIT,
                      "filter": filter, "query": req.query_string()});
    pages.render(StatusCode::OK, "log", "Loggkontroll", Some(&user), data)
}

#[get("/loggkontroll.csv")]
async fn log_csv(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match admin_user(&state, &pages, &req, &[Role::Admin]).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let q = match log_query(&req) {
        Ok(q) => q,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let st = state.clone();
    let rows = match blocking(move || search(&st, &q)).await {
        Ok(r) => r,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let cells = rows.into_iter().map(|r| {
        let action = action_text(&r.action).to_string();
        [local_text(r.at), r.actor, r.role, action, r.object]
    });
    let out = match crate::report::exports::access_log(cells) {
        Ok(out) => out,
        Err(e) => return error_page(&pages, Some(&user), &AppError::internal(e)),
    };
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"loggkontroll.csv\""))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(out)
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(runs)
        .service(units::units_get)
        .service(units::units_post)
        .service(users::users_get)
        .service(users::users_create)
        .service(users::users_password)
        .service(users::users_disable)
        .service(users::users_change)
        .service(log_page)
        .service(log_csv);
}
