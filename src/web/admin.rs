//! The pages for admins (and, for scan runs, ledning): scan runs, the unit
//! register (register a unit, change its e-mail and chef's e-mail), users
//! (create with a generated password, new password, disable) and
//! loggkontroll: the access log by user, case or deviation and period, as a
//! page and as CSV. Every form carries the session's CSRF token.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{json, Map, Value};

use super::error::{AppError, ErrorCode};
use super::pages::{blocking, check_csrf, error_page, role_text, see_other, user_in_role, PageUser, Pages};
use super::AppState;
use crate::audit::report::local_text;
use crate::domain::{Role, Unit};
use crate::store::{tokens, units, users};

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

fn unit_json(u: &Unit) -> Value {
    json!({"id": u.id.0, "name": u.name, "kind": u.kind.as_str(), "huvudman": u.huvudman,
           "parent": u.parent.as_ref().map(|p| p.0.clone()), "email": u.email,
           "chef_email": u.chef_email, "storhelg": u.storhelg})
}

async fn units_page(
    state: &web::Data<AppState>,
    pages: &Pages,
    user: &PageUser,
    status: StatusCode,
    edit: Option<String>,
    extra: Value,
) -> HttpResponse {
    let st = state.clone();
    let list = match blocking(move || {
        let mut conn = st.pool.get()?;
        Ok(units::all(&mut conn)?)
    })
    .await
    {
        Ok(l) => l,
        Err(e) => return error_page(pages, Some(user), &e),
    };
    let editing = edit
        .and_then(|id| list.iter().find(|u| u.id.0 == id).map(unit_json))
        .unwrap_or_else(|| json!({"kind": "slutenvard", "storhelg": true}));
    let mut data = json!({"units": list.iter().map(unit_json).collect::<Vec<_>>(), "edit": editing});
    if let (Some(o), Value::Object(more)) = (data.as_object_mut(), extra) {
        o.extend(more);
    }
    pages.render(status, "units", "Enheter", Some(user), data)
}

#[get("/enheter")]
async fn units_get(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_user(&state, &pages, &req, &[Role::Admin]).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let notice = query.get("sparad").map(|id| format!("Enheten {id} är sparad."));
    units_page(
        &state,
        &pages,
        &user,
        StatusCode::OK,
        query.get("andra").cloned(),
        json!({"notice": notice}),
    )
    .await
}

/// Registers or changes one unit from the form, with the same validation
/// as an import (`Unit::from_json`); an empty e-mail field clears it.
#[post("/enheter")]
async fn units_post(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut obj = Map::new();
    for key in [
        "id",
        "name",
        "kind",
        "huvudman",
        "parent",
        "email",
        "chef_email",
        "storhelg",
    ] {
        obj.insert(
            key.into(),
            Value::String(form.get(key).map(|v| v.trim().to_string()).unwrap_or_default()),
        );
    }
    let unit = match Unit::from_json(&obj, 1) {
        Ok(u) => u,
        Err(errors) => {
            let text = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let edit = form.get("id").cloned();
            return units_page(
                &state,
                &pages,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                edit,
                json!({"error": format!("Enheten sparades inte: {text}")}),
            )
            .await;
        }
    };
    let id = unit.id.0.clone();
    let st = state.clone();
    match blocking(move || {
        let mut conn = st.pool.get()?;
        Ok(units::upsert(&mut conn, &[unit]))
    })
    .await
    {
        Ok(Ok(_)) => see_other(&format!("/enheter?sparad={}", super::pages::encode(&id))),
        Ok(Err(units::UnitsError::Cycle(cycle))) => {
            let text = format!(
                "Enheten sparades inte: överordnad enhet skulle bilda en slinga ({})",
                cycle.join(" → ")
            );
            units_page(
                &state,
                &pages,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(id),
                json!({"error": text}),
            )
            .await
        }
        Ok(Err(units::UnitsError::Db(e))) => error_page(&pages, Some(&user), &AppError::from(e)),
        Err(e) => error_page(&pages, Some(&user), &e),
    }
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

async fn users_page(
    state: &web::Data<AppState>,
    pages: &Pages,
    user: &PageUser,
    status: StatusCode,
    extra: Value,
) -> HttpResponse {
    let st = state.clone();
    let list = match blocking(move || {
        let mut conn = st.pool.get()?;
        Ok(users::list(&mut conn)?)
    })
    .await
    {
        Ok(l) => l,
        Err(e) => return error_page(pages, Some(user), &e),
    };
    let now = chrono::Utc::now().naive_utc();
    let rows: Vec<Value> = list
        .iter()
        .map(|u| {
            let state = match (u.disabled, u.locked_until) {
                (true, _) => "avstängd".to_string(),
                (false, Some(t)) if t > now => format!("låst till {}", local_text(t)),
                _ => "aktiv".to_string(),
            };
            let role = Role::parse(&u.role).map_or(u.role.clone(), |r| role_text(r).to_string());
            json!({"id": u.id, "username": u.username, "role": role, "role_id": u.role, "units": u.units.join(", "),
                   "email": u.email, "hsa_id": u.hsa_id, "state": state, "disabled": u.disabled,
                   "no_units": u.units.is_empty() && u.role == Role::Handlaggare.as_str()})
        })
        .collect();
    let mut data = json!({"users": rows});
    if let (Some(o), Value::Object(more)) = (data.as_object_mut(), extra) {
        o.extend(more);
    }
    pages.render(status, "users", "Användare", Some(user), data)
}

#[get("/anvandare")]
async fn users_get(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    match admin_user(&state, &pages, &req, &[Role::Admin]).await {
        Ok(user) => users_page(&state, &pages, &user, StatusCode::OK, json!({})).await,
        Err(r) => r,
    }
}

#[post("/anvandare")]
async fn users_create(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let username = form.get("username").map(|s| s.trim().to_string()).unwrap_or_default();
    let role = form.get("role").and_then(|r| Role::parse(r));
    let unit_ids = unit_list(&form);
    let email = field(&form, "email");
    let st = state.clone();
    let name = username.clone();
    let result = blocking(move || {
        let role = role.ok_or_else(|| AppError::new(ErrorCode::Unprocessable, "välj en roll"))?;
        let password = users::generate_password()?;
        let mut conn = st.pool.get()?;
        users::create(&mut conn, &name, &password, role, &unit_ids, email.as_deref())
            .map_err(|e| AppError::new(ErrorCode::Unprocessable, e.to_string()))?;
        Ok(password)
    })
    .await;
    match result {
        Ok(password) => {
            users_page(
                &state,
                &pages,
                &user,
                StatusCode::OK,
                json!({"password": {"user": username, "value": password}}),
            )
            .await
        }
        Err(e) if e.code == ErrorCode::Unprocessable => {
            users_page(
                &state,
                &pages,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": format!("Användaren skapades inte: {}", e.message)}),
            )
            .await
        }
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}

fn username_of(conn: &mut crate::store::DbConn, id: i64) -> Result<String, AppError> {
    users::get(conn, id)?
        .map(|u| u.username)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "ingen sådan användare"))
}

#[post("/anvandare/{id}/losenord")]
async fn users_password(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let st = state.clone();
    let result = blocking(move || {
        let mut conn = st.pool.get()?;
        let name = username_of(&mut conn, id)?;
        let password = users::generate_password()?;
        users::set_password(&mut conn, &name, &password)?;
        Ok((name, password))
    })
    .await;
    match result {
        Ok((name, password)) => {
            users_page(
                &state,
                &pages,
                &user,
                StatusCode::OK,
                json!({"password": {"user": name, "value": password}}),
            )
            .await
        }
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}

#[post("/anvandare/{id}/andra")]
async fn users_change(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let role = form.get("role").and_then(|r| Role::parse(r));
    if user.caller.user_id == Some(id) && role.is_some_and(|r| r != Role::Admin) {
        let e = AppError::new(ErrorCode::Conflict, "du kan inte ta bort din egen administratörsroll");
        return error_page(&pages, Some(&user), &e);
    }
    let units = unit_list(&form);
    let hsa_id = field(&form, "hsa_id");
    let st = state.clone();
    let result = blocking(move || {
        let mut conn = st.pool.get()?;
        let current =
            users::get(&mut conn, id)?.ok_or_else(|| AppError::new(ErrorCode::NotFound, "ingen sådan användare"))?;
        let change = users::Change {
            role: Some(role.ok_or_else(|| AppError::new(ErrorCode::Unprocessable, "välj en roll"))?),
            // An empty field for a user who has no units leaves it so.
            units: (!(units.is_empty() && current.units.is_empty())).then_some(units),
            hsa_id: Some(hsa_id),
        };
        users::update(&mut conn, &current.username, &change)
            .map_err(|e| AppError::new(ErrorCode::Unprocessable, e.to_string()))?;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => see_other("/anvandare"),
        Err(e) if e.code == ErrorCode::Unprocessable => {
            users_page(
                &state,
                &pages,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": format!("Användaren ändrades inte: {}", e.message)}),
            )
            .await
        }
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}

#[post("/anvandare/{id}/stang-av")]
async fn users_disable(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = path.into_inner();
    if user.caller.user_id == Some(id) {
        let e = AppError::new(ErrorCode::Conflict, "du kan inte stänga av dig själv");
        return error_page(&pages, Some(&user), &e);
    }
    let st = state.clone();
    match blocking(move || {
        let mut conn = st.pool.get()?;
        let name = username_of(&mut conn, id)?;
        users::disable(&mut conn, &name)?;
        Ok(())
    })
    .await
    {
        Ok(()) => see_other("/anvandare"),
        Err(e) => error_page(&pages, Some(&user), &e),
    }
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
        .service(units_get)
        .service(units_post)
        .service(users_get)
        .service(users_create)
        .service(users_password)
        .service(users_disable)
        .service(users_change)
        .service(log_page)
        .service(log_csv);
}
