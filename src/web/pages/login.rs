//! Login with a password and logout, on the pages (the identity
//! provider's login is `web::oidc`): the same `log_in` as the API, the
//! session as a cookie, and back to where the person was going.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{check_csrf, encode, error_page, page_user, see_other, Pages};
use crate::domain::Role;
use crate::store::users;
use crate::web::api::session::{log_in, session_cookie, Credentials};
use crate::web::auth::{cookie, SESSION_COOKIE};
use crate::web::error::AppError;
use crate::web::AppState;

/// Only a path on this site: never another host after login. A path is
/// `/` followed by plain characters only (no second `/` first, no
/// backslash, space or control character a browser would strip into `//`).
/// Empty when there is none: then the person's start page (by role) after login.
pub(in crate::web) fn local_next(next: Option<&String>) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/_-.?=&%~+".contains(c);
    match next.map(String::as_str) {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && n.chars().all(plain) => n.to_string(),
        _ => String::new(),
    }
}

/// Where a person lands after login: ledning and admins on the overview,
/// a handläggare on their deviations.
pub(in crate::web) fn start_of(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Ledning => "/oversikt",
        _ => "/avvikelser",
    }
}

/// The identity provider's button text, when login through it is configured.
pub(in crate::web) fn oidc_button(state: &AppState) -> Option<String> {
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

pub(super) fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(login_form).service(login_submit).service(logout);
}
