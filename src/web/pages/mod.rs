//! The pages people work in: Swedish, server-rendered Handlebars from
//! `templates/pages/` and one stylesheet, all compiled into the binary.
//! This module holds what every page shares (the templates, the layout,
//! who is logged in, the CSRF check, the error page); the areas are its
//! submodules: `login` (login and logout), `list` (the deviation list of
//! the user's scope: filters, paging, sorting by age, CSV export) and
//! `deviation` (the deviation page with the report, the case's events, the
//! history, comments and the handling form). Pages use the session cookie
//! only; every form that changes something carries the session's CSRF
//! token as the field `csrf`. The same scope, access log and handling rules
//! as the API apply: the page handlers call the same functions.

mod deviation;
mod list;
mod login;

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use handlebars::Handlebars;
use serde_json::{json, Value};

use super::auth::{cookie, same_secret, SESSION_COOKIE};
use super::error::{AppError, ErrorCode};
use super::AppState;
use crate::domain::Role;
use crate::store::tokens::Caller;
use crate::store::users;

pub(super) use login::{local_next, oidc_button, start_of};

const CSS: &str = crate::report::quarterly::STYLESHEET;

const TEMPLATES: [(&str, &str); 17] = [
    ("layout", include_str!("../../../templates/pages/layout.hbs")),
    ("login", include_str!("../../../templates/pages/login.hbs")),
    ("error", include_str!("../../../templates/pages/error.hbs")),
    ("list", include_str!("../../../templates/pages/list.hbs")),
    ("deviation", include_str!("../../../templates/pages/deviation.hbs")),
    ("runs", include_str!("../../../templates/pages/runs.hbs")),
    ("units", include_str!("../../../templates/pages/units.hbs")),
    ("users", include_str!("../../../templates/pages/users.hbs")),
    ("log", include_str!("../../../templates/pages/log.hbs")),
    ("start", include_str!("../../../templates/pages/start.hbs")),
    ("adherence", include_str!("../../../templates/pages/adherence.hbs")),
    (
        "unit_adherence",
        include_str!("../../../templates/pages/unit_adherence.hbs"),
    ),
    ("leadtimes", include_str!("../../../templates/pages/leadtimes.hbs")),
    ("liability", include_str!("../../../templates/pages/liability.hbs")),
    ("quarterly", crate::report::quarterly::TEMPLATE),
    ("warnings", include_str!("../../../templates/pages/warnings.hbs")),
    ("staffing", include_str!("../../../templates/pages/staffing.hbs")),
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

/// Runs blocking work (the database) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    web::block(f).await.map_err(AppError::internal)?
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(home).service(css);
    login::config(cfg);
    list::config(cfg);
    deviation::config(cfg);
}
