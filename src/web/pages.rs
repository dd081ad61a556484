//! The pages people work in: Swedish, server-rendered Handlebars from
//! `templates/pages/` and one stylesheet, all compiled into the binary.
//! Login, the deviation list of the user's scope (filters, paging, sorting
//! by age, CSV export) and the deviation page with the report, the case's
//! events, the history, comments and the handling form. Pages use the
//! session cookie only; every form that changes something carries the
//! session's CSRF token as the field `csrf`. The same scope, access log and
//! handling rules as the API apply: the page handlers call the same
//! functions.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{NaiveDateTime, Utc};
use handlebars::Handlebars;
use serde_json::{json, Value};

use super::api::deviations as api;
use super::api::session::{log_in, session_cookie, Credentials};
use super::auth::{cookie, same_secret, SESSION_COOKIE};
use super::error::{AppError, ErrorCode};
use super::AppState;
use crate::audit::report::{self, local_text};
use crate::domain::handling::DeviationStatus::{self, Atgardad, Mottagen, Ny, Skickad, Utreds};
use crate::domain::handling::{StatusChange, STATUSES};
use crate::domain::{EventType, Role};
use crate::handling;
use crate::rules::{RuleId, Units};
use crate::store::deviations::{self, DeviationRow, ListFilter};
use crate::store::tokens::{self, Caller};
use crate::store::{events, units, users, DbConn};

const CSS: &str = crate::report::quarterly::STYLESHEET;

const TEMPLATES: [(&str, &str); 17] = [
    ("layout", include_str!("../../templates/pages/layout.hbs")),
    ("login", include_str!("../../templates/pages/login.hbs")),
    ("error", include_str!("../../templates/pages/error.hbs")),
    ("list", include_str!("../../templates/pages/list.hbs")),
    ("deviation", include_str!("../../templates/pages/deviation.hbs")),
    ("runs", include_str!("../../templates/pages/runs.hbs")),
    ("units", include_str!("../../templates/pages/units.hbs")),
    ("users", include_str!("../../templates/pages/users.hbs")),
    ("log", include_str!("../../templates/pages/log.hbs")),
    ("start", include_str!("../../templates/pages/start.hbs")),
    ("adherence", include_str!("../../templates/pages/adherence.hbs")),
    (
        "unit_adherence",
        include_str!("../../templates/pages/unit_adherence.hbs"),
    ),
    ("leadtimes", include_str!("../../templates/pages/leadtimes.hbs")),
    ("liability", include_str!("../../templates/pages/liability.hbs")),
    ("quarterly", crate::report::quarterly::TEMPLATE),
    ("warnings", include_str!("../../templates/pages/warnings.hbs")),
    ("staffing", include_str!("../../templates/pages/staffing.hbs")),
];

/// The compiled page templates (HTML-escaped).
pub struct Pages {
    hb: Handlebars<'static>,
}

impl Pages {
    pub fn new() -> anyhow::Result<Pages> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(false);
        for (name, text) in TEMPLATES {
            hb.register_template_string(name, text)
                .map_err(|e| anyhow::anyhow!("sidmallen {name}: {e}"))?;
        }
        Ok(Pages { hb })
    }

    pub(super) fn render(
        &self,
        status: StatusCode,
        name: &str,
        title: &str,
        user: Option<&PageUser>,
        data: Value,
    ) -> HttpResponse {
        let user = user.map(|u| {
            json!({"name": u.caller.name, "role_text": role_text(u.caller.role), "csrf": u.csrf,
                   "admin": u.caller.role == Role::Admin,
                   "reader": matches!(u.caller.role, Role::Admin | Role::Ledning)})
        });
        let mut data = data;
        if let Some(o) = data.as_object_mut() {
            o.insert("user".into(), user.clone().unwrap_or(Value::Null));
        }
        let body = match self.hb.render(name, &data) {
            Ok(b) => b,
            Err(e) => return actix_web::ResponseError::error_response(&AppError::internal(e)),
        };
        match self
            .hb
            .render("layout", &json!({"title": title, "body": body, "user": user}))
        {
            Ok(page) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header(("X-Frame-Options", "DENY"))
                .insert_header((
                    "Content-Security-Policy",
                    "default-src 'self'; style-src 'self' 'unsafe-inline'",
                ))
                .body(page),
            Err(e) => actix_web::ResponseError::error_response(&AppError::internal(e)),
        }
    }
}

/// A person on the pages: who, and the session's CSRF token for forms.
pub struct PageUser {
    pub caller: Caller,
    pub csrf: String,
}

pub(super) fn role_text(r: Role) -> &'static str {
    match r {
        Role::Admin => "administratör",
        Role::Ledning => "ledning",
        Role::Handlaggare => "handläggare",
        Role::Inlasning => "inläsning",
    }
}

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
        EventType::Overflyttning => "Överflyttning",
        EventType::Utskrivning => "Utskrivning",
        EventType::Avslut => "Avslut",
        EventType::Bemanning => "Bemanning",
    }
}

pub(super) use crate::report::format::encode;

pub(super) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

/// The logged-in person, or the redirect to the login page.
pub(super) async fn page_user(state: &web::Data<AppState>, req: &HttpRequest) -> Result<PageUser, HttpResponse> {
    let to_login = || {
        let here = match req.query_string() {
            "" => req.path().to_string(),
            q => format!("{}?{q}", req.path()),
        };
        see_other(&format!("/login?next={}", encode(&here)))
    };
    let Some(value) = cookie(req, SESSION_COOKIE) else {
        return Err(to_login());
    };
    let st = state.clone();
    let found = web::block(move || -> anyhow::Result<Option<(Caller, String)>> {
        let mut conn = st.pool.get()?;
        users::session_caller(&mut conn, &value, st.session)
    })
    .await;
    match found {
        Ok(Ok(Some((caller, csrf)))) => Ok(PageUser { caller, csrf }),
        Ok(Ok(None)) => Err(to_login()),
        Ok(Err(e)) => Err(actix_web::ResponseError::error_response(&AppError::internal(e))),
        Err(e) => Err(actix_web::ResponseError::error_response(&AppError::internal(e))),
    }
}

/// The logged-in person if their role is one of `roles`; else the login
/// redirect, or a 403 page that says `refusal`.
pub(super) async fn user_in_role(
    state: &web::Data<AppState>,
    pages: &Pages,
    req: &HttpRequest,
    roles: &[Role],
    refusal: &str,
) -> Result<PageUser, HttpResponse> {
    let user = page_user(state, req).await?;
    if roles.contains(&user.caller.role) {
        Ok(user)
    } else {
        Err(error_page(
            pages,
            Some(&user),
            &AppError::new(ErrorCode::Forbidden, refusal.to_string()),
        ))
    }
}

/// A form's CSRF field against the session's; refused with 403.
pub(super) fn check_csrf(user: &PageUser, form: &HashMap<String, String>) -> Result<(), AppError> {
    let given = form.get("csrf").map(String::as_str).unwrap_or_default();
    if same_secret(given, &user.csrf) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::Forbidden,
            "formuläret saknar giltig CSRF-token; ladda om sidan och försök igen",
        ))
    }
}

pub(super) fn error_page(pages: &Pages, user: Option<&PageUser>, e: &AppError) -> HttpResponse {
    let heading = match e.code {
        ErrorCode::NotFound => "Finns inte",
        ErrorCode::Forbidden => "Inte tillåtet",
        _ => "Något gick fel",
    };
    let message = match e.code {
        ErrorCode::NotFound => "Avvikelsen finns inte, eller så hör den inte till dina enheter.".to_string(),
        ErrorCode::Internal | ErrorCode::Unavailable => {
            "Tjänsten kunde inte svara just nu. Försök igen om en stund.".to_string()
        }
        _ => e.message.clone(),
    };
    let status = actix_web::ResponseError::status_code(e);
    pages.render(
        status,
        "error",
        heading,
        user,
        json!({"heading": heading, "message": message}),
    )
}

#[get("/")]
async fn home(req: HttpRequest) -> HttpResponse {
    match cookie(&req, SESSION_COOKIE) {
        Some(_) => see_other("/oversikt"),
        None => see_other("/login"),
    }
}

#[get("/static/app.css")]
async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

/// Only a path on this site: never another host after login. A path is
/// `/` followed by plain characters only (no second `/` first, no
/// backslash, space or control character a browser would strip into `//`).
/// Empty when there is none: then the person's start page (by role) after login.
pub(super) fn local_next(next: Option<&String>) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/_-.?=&%~+".contains(c);
    match next.map(String::as_str) {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && n.chars().all(plain) => n.to_string(),
        _ => String::new(),
    }
}

/// Where a person lands after login: ledning and admins on the overview,
/// a handläggare on their deviations.
pub(super) fn start_of(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Ledning => "/oversikt",
        _ => "/avvikelser",
    }
}

/// The identity provider's button text, when login through it is configured.
pub(super) fn oidc_button(state: &AppState) -> Option<String> {
    state.oidc.as_ref().map(|o| o.config.button.clone())
}

#[get("/login")]
async fn login_form(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let next = local_next(query.get("next"));
    pages.render(
        StatusCode::OK,
        "login",
        "Logga in",
        None,
        json!({"next": next, "next_query": encode(&next), "oidc": oidc_button(&state)}),
    )
}

#[post("/login")]
async fn login_submit(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let username = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let next = local_next(form.get("next"));
    let refused = |e: AppError| {
        let status = actix_web::ResponseError::status_code(&e);
        pages.render(
            status,
            "login",
            "Logga in",
            None,
            json!({"next": next, "next_query": encode(&next), "username": username, "error": e.message,
                   "oidc": oidc_button(&state)}),
        )
    };
    match log_in(
        state.clone(),
        &req,
        Credentials {
            username: username.clone(),
            password,
        },
    )
    .await
    {
        Ok(Ok((cookie, _, caller))) => HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                if next.is_empty() {
                    start_of(caller.role)
                } else {
                    next.as_str()
                },
            ))
            .insert_header((header::SET_COOKIE, session_cookie(&state, Some(&cookie))))
            .finish(),
        Ok(Err(e)) | Err(e) => refused(e),
    }
}

#[post("/logout")]
async fn logout(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match page_user(&state, &req).await {
        Ok(u) => u,
        Err(_) => return see_other("/login"),
    };
    if let Err(e) = check_csrf(&user, &form) {
        return error_page(&pages, Some(&user), &e);
    }
    if let Some(value) = cookie(&req, SESSION_COOKIE) {
        let st = state.clone();
        let _ = web::block(move || -> anyhow::Result<()> {
            let mut conn = st.pool.get()?;
            users::end_session(&mut conn, &value)?;
            Ok(())
        })
        .await;
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .insert_header((header::SET_COOKIE, session_cookie(&state, None)))
        .finish()
}

/// Days since the due, for an open deviation: "idag", "1 dag", "12 dagar".
fn age(d: &DeviationRow, now: NaiveDateTime) -> (String, bool) {
    if !d.status.is_open() {
        return ("–".into(), false);
    }
    let days = (now - d.due).num_days().max(0);
    let text = match days {
        0 => "idag".to_string(),
        1 => "1 dag".to_string(),
        n => format!("{n} dagar"),
    };
    (text, days >= 7)
}

struct ListParams {
    filter: ListFilter,
    page: i64,
    per_page: i64,
    newest: bool,
    query: String,
    raw: HashMap<String, String>,
}

fn list_params(req: &HttpRequest) -> Result<ListParams, AppError> {
    let raw: HashMap<String, String> = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let newest = raw.get("sort").map(String::as_str) != Some("aldst");
    // The API's parser checks the filters; the page adds only `sort`.
    const KNOWN: [&str; 8] = ["status", "rule", "unit", "case", "from", "to", "page", "per_page"];
    let api_query: Vec<(String, String)> = raw
        .iter()
        .filter(|(k, v)| KNOWN.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let encoded = api_query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let (mut filter, page, per_page) = api::parse_list(&encoded).map_err(|_| {
        AppError::new(
            ErrorCode::BadRequest,
            "Filtret kunde inte läsas: datum skrivs ÅÅÅÅ-MM-DD, och sidnumret är ett heltal från 1.",
        )
    })?;
    filter.oldest_first = !newest;
    Ok(ListParams {
        filter,
        page,
        per_page: if raw.contains_key("per_page") { per_page } else { 50 },
        newest,
        query: req.query_string().to_string(),
        raw,
    })
}

fn with_page(raw: &HashMap<String, String>, page: i64) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .iter()
        .filter(|(k, v)| k.as_str() != "page" && !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pairs.sort();
    pairs.push(("page".into(), page.to_string()));
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[get("/avvikelser")]
async fn list(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match page_user(&state, &req).await {
        Ok(u) => u,
        Err(redirect) => return redirect,
    };
    let params = match list_params(&req) {
        Ok(p) => p,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let caller = user.caller.clone();
    let st = state.clone();
    let filter = params.filter.clone();
    let (page, per_page) = (params.page, params.per_page);
    let result = web::block(move || -> Result<_, AppError> {
        let mut conn = st.pool.get()?;
        let logged = filter.logged(page, per_page, 50);
        let (scope, rows, total) = handling::list(
            &mut conn,
            &caller,
            &filter,
            (page, per_page),
            "list_deviations",
            &logged,
        )?;
        let waiting = deviations::open_counts(&mut conn, scope.units())?;
        let names = unit_names(&mut conn)?;
        Ok((rows, total, waiting, names))
    })
    .await;
    let (rows, total, waiting, names) = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return error_page(&pages, Some(&user), &e),
        Err(e) => return error_page(&pages, Some(&user), &AppError::internal(e)),
    };
    let now = Utc::now().naive_utc();
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|d| {
            let (age, overdue) = age(&d, now);
            json!({
                "id": d.id,
                "rule": RuleId::parse(&d.rule).map_or(d.rule.clone(), |r| report::rule_title(r).to_string()),
                "case": d.case_id.clone().unwrap_or_else(|| "–".into()),
                "unit": d.unit.as_ref().map_or("–".to_string(), |u| names.get(u).cloned().unwrap_or_else(|| u.clone())),
                "due": local_text(d.due),
                "age": age, "overdue": overdue,
                "status": d.status, "status_text": d.status.label(),
            })
        })
        .collect();
    let labels = [
        (Ny, "Nya, inte mottagna"),
        (Mottagen, "Mottagna"),
        (Utreds, "Utreds"),
        (Atgardad, "Åtgärdade, väntar på avslut"),
    ];
    let waiting: Vec<Value> = labels
        .iter()
        .map(|(status, label)| {
            let of: Vec<&(DeviationStatus, i64, Option<NaiveDateTime>)> = waiting
                .iter()
                .filter(|(s, _, _)| s == status || (*status == Ny && *s == Skickad))
                .collect();
            let count: i64 = of.iter().map(|(_, n, _)| n).sum();
            let oldest = of.iter().filter_map(|(_, _, o)| *o).min().map(|o| {
                let days = (now - o).num_days().max(0);
                if days == 1 {
                    "1 dag".to_string()
                } else {
                    format!("{days} dagar")
                }
            });
            json!({"label": label, "count": count, "oldest": oldest})
        })
        .collect();
    let pages_n = ((total + per_page - 1) / per_page).max(1);
    let selected = |k: &str, v: &str| params.raw.get(k).map(String::as_str) == Some(v);
    let statuses: Vec<Value> = STATUSES
        .iter()
        .map(|s| json!({"value": s, "label": s.label(), "selected": selected("status", s.as_str())}))
        .collect();
    let rules: Vec<Value> = RuleId::ALL
        .iter()
        .map(
            |r| json!({"value": r.as_str(), "label": report::rule_title(*r), "selected": selected("rule", r.as_str())}),
        )
        .collect();
    let heading = if user.caller.role == Role::Handlaggare {
        "Mina avvikelser"
    } else {
        "Avvikelser"
    };
    let data = json!({
        "heading": heading,
        "waiting": waiting,
        "rows": rows,
        "total": total,
        "page": page,
        "pages": pages_n,
        "newest": params.newest,
        "statuses": statuses,
        "rules": rules,
        "filter": {
            "unit": params.raw.get("unit"), "case": params.raw.get("case"),
            "from": params.raw.get("from"), "to": params.raw.get("to"),
        },
        "query": params.query,
        "prev": (page > 1).then(|| with_page(&params.raw, page - 1)),
        "next": (page < pages_n).then(|| with_page(&params.raw, page + 1)),
    });
    pages.render(StatusCode::OK, "list", heading, Some(&user), data)
}

fn unit_names(conn: &mut DbConn) -> anyhow::Result<HashMap<String, String>> {
    Ok(units::all(conn)?
        .into_iter()
        .map(|u| (u.id.0.clone(), u.name.clone()))
        .collect())
}

/// The list as CSV (semicolon-separated, UTF-8 with BOM, for Swedish Excel),
/// every page of the filter; logged as an export with its filter.
#[get("/avvikelser.csv")]
async fn export(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match page_user(&state, &req).await {
        Ok(u) => u,
        Err(redirect) => return redirect,
    };
    let params = match list_params(&req) {
        Ok(p) => p,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let caller = user.caller.clone();
    let st = state.clone();
    let filter = params.filter.clone();
    let result = web::block(move || -> Result<String, AppError> {
        let mut conn = st.pool.get()?;
        let logged = filter.logged(1, 0, 0);
        let (_, rows, _) = handling::list(
            &mut conn,
            &caller,
            &filter,
            (1, i64::MAX / 2),
            "export_deviations",
            &logged,
        )?;
        crate::report::exports::deviations(&rows).map_err(AppError::internal)
    })
    .await;
    match result {
        Ok(Ok(csv)) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"avvikelser.csv\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(csv),
        Ok(Err(e)) => error_page(&pages, Some(&user), &e),
        Err(e) => error_page(&pages, Some(&user), &AppError::internal(e)),
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
    let report = report::data(&d, &units, &state.auditor.mail, &state.auditor.templates, now)?;
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

/// Runs blocking work (the database) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    web::block(f).await.map_err(AppError::internal)?
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

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(home)
        .service(css)
        .service(login_form)
        .service(login_submit)
        .service(logout)
        .service(list)
        .service(export)
        .service(deviation)
        .service(change_status)
        .service(assign)
        .service(add_comment);
}
