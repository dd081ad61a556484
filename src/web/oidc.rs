//! The login pages' way through the region's identity provider:
//! `GET /login/oidc` sends the browser there, `GET /login/oidc/retur`
//! takes it back and starts a session (`crate::oidc`, docs/OPERATIONS.md).
//!
//! The state is bound twice: to the browser by a short-lived cookie (a
//! login begun in another browser is refused) and to this service by a
//! row in `oidc_logins` that the return deletes (a replayed return, or a
//! state this service never gave, is refused).

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde_json::json;

use super::api::session::session_cookie;
use super::auth::{cookie, same_secret};
use super::error::AppError;
use super::pages::{blocking, local_next, oidc_button, start_of, Pages};
use super::AppState;
use crate::oidc::{Identity, Oidc, OidcError, Unknown};
use crate::store::oidc::{self as pending, Found, Pending};
use crate::store::{users, DbConn};

/// The cookie that ties a begun login to the browser that began it.
const STATE_COOKIE: &str = "svu_oidc";

fn state_cookie(state: &AppState, value: Option<&str>) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let (v, age) = match value {
        Some(v) => (v, pending::LOGIN_MINUTES * 60),
        None => ("", 0),
    };
    format!("{STATE_COOKIE}={v}; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age={age}{secure}")
}

/// The login page again, with why the login did not go through.
fn refused(state: &AppState, pages: &Pages, status: StatusCode, message: &str) -> HttpResponse {
    let mut page = pages.render(
        status,
        "login",
        "Logga in",
        None,
        json!({"error": message, "next": "", "oidc": oidc_button(state)}),
    );
    if let Ok(v) = header::HeaderValue::from_str(&state_cookie(state, None)) {
        page.headers_mut().append(header::SET_COOKIE, v);
    }
    page
}

fn not_configured(state: &AppState, pages: &Pages) -> HttpResponse {
    refused(
        state,
        pages,
        StatusCode::NOT_FOUND,
        "inloggning via regionens inloggningstjänst är inte inställd här",
    )
}

#[get("/login/oidc")]
async fn begin(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(oidc) = state.oidc.clone() else {
        return not_configured(&state, &pages);
    };
    let next = local_next(query.get("next"));
    let st = state.clone();
    let started = blocking(move || {
        let started = oidc.begin().map_err(|e| {
            tracing::warn!(error = %e, "inloggning via inloggningstjänsten kunde inte påbörjas");
            super::error::AppError::new(super::error::ErrorCode::Unavailable, e.for_person())
        })?;
        let mut conn = st.pool.get()?;
        pending::begin(
            &mut conn,
            &started.state,
            &Pending {
                nonce: started.nonce.clone(),
                verifier: started.verifier.clone(),
                next,
            },
        )?;
        Ok(started)
    })
    .await;
    match started {
        Ok(s) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, s.url))
            .insert_header((header::SET_COOKIE, state_cookie(&state, Some(&s.state))))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => refused(&state, &pages, StatusCode::SERVICE_UNAVAILABLE, &e.message),
    }
}

/// What the return from the identity provider led to.
enum Outcome {
    Session { cookie: String, to: String },
    Refused(StatusCode, String),
}

#[get("/login/oidc/retur")]
async fn finish(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(oidc) = state.oidc.clone() else {
        return not_configured(&state, &pages);
    };
    let given = query.get("state").cloned().unwrap_or_default();
    let browser = cookie(&req, STATE_COOKIE).unwrap_or_default();
    if given.is_empty() || !same_secret(&given, &browser) {
        tracing::warn!("en retur från inloggningstjänsten utan webbläsarens inloggningsstatus avvisades");
        return refused(
            &state,
            &pages,
            StatusCode::BAD_REQUEST,
            "inloggningen påbörjades inte i den här webbläsaren, eller har redan använts; logga in igen",
        );
    }
    let back = Return {
        state: given,
        code: query.get("code").cloned(),
        provider_error: query.get("error").cloned(),
    };
    let st = state.clone();
    let outcome = blocking(move || complete(&st, &oidc, back)).await;
    match outcome {
        Ok(Outcome::Session { cookie, to }) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to))
            .append_header((header::SET_COOKIE, session_cookie(&state, Some(&cookie))))
            .append_header((header::SET_COOKIE, state_cookie(&state, None)))
            .finish(),
        Ok(Outcome::Refused(status, message)) => refused(&state, &pages, status, &message),
        Err(e) => refused(&state, &pages, actix_web::ResponseError::status_code(&e), &e.message),
    }
}

/// What the identity provider sent back with the browser.
struct Return {
    state: String,
    code: Option<String>,
    provider_error: Option<String>,
}

/// The return taken (a state is good for one), the code exchanged for a
/// verified identity, the person found or made, and a session started.
fn complete(st: &AppState, oidc: &Oidc, back: Return) -> Result<Outcome, AppError> {
    let mut conn = st.pool.get()?;
    // Taken first, whatever follows: a state is good for one return.
    let Some(p) = pending::take(&mut conn, &back.state)? else {
        tracing::warn!("en retur från inloggningstjänsten med använd eller utgången state avvisades");
        return Ok(Outcome::Refused(
            StatusCode::BAD_REQUEST,
            "inloggningen har redan använts eller tog för lång tid; logga in igen".into(),
        ));
    };
    if let Some(e) = back.provider_error {
        tracing::info!(error = %e, "inloggningstjänsten loggade inte in personen");
        return Ok(Outcome::Refused(
            StatusCode::UNAUTHORIZED,
            "inloggningstjänsten loggade inte in dig; försök igen".into(),
        ));
    }
    let Some(code) = back.code else {
        return Ok(Outcome::Refused(
            StatusCode::BAD_REQUEST,
            "svaret från inloggningstjänsten saknar kod; logga in igen".into(),
        ));
    };
    drop(conn);
    let identity = match oidc.finish(&code, &p.verifier, &p.nonce) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "inloggning via inloggningstjänsten avvisad");
            let status = match e {
                OidcError::Provider(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            return Ok(Outcome::Refused(status, e.for_person().into()));
        }
    };
    let mut conn = st.pool.get()?;
    let user_id = match user_for(&mut conn, oidc, &identity)? {
        Ok(id) => id,
        Err(refusal) => return Ok(refusal),
    };
    let (cookie, _) = users::start_session(&mut conn, user_id)?;
    let to = match (p.next.is_empty(), users::get(&mut conn, user_id)?) {
        (false, _) => p.next,
        (true, Some(u)) => crate::store::tokens::Role::parse(&u.role)
            .map_or("/avvikelser", start_of)
            .to_string(),
        (true, None) => "/avvikelser".into(),
    };
    Ok(Outcome::Session { cookie, to })
}

/// The user a verified identity names (made at the first login when the
/// installation says so), or why the login is refused.
fn user_for(conn: &mut DbConn, oidc: &Oidc, identity: &Identity) -> Result<Result<i64, Outcome>, AppError> {
    let by = oidc.config.match_by;
    let refusal = |message: String| Err(Outcome::Refused(StatusCode::FORBIDDEN, message));
    Ok(match pending::find(conn, by, &identity.value)? {
        Found::User(id) => Ok(id),
        Found::Disabled => {
            tracing::info!("inloggning via inloggningstjänsten av en avstängd användare avvisad");
            refusal("ditt konto i svu-vakt är avstängt; kontakta en administratör".into())
        }
        Found::Ambiguous => {
            tracing::warn!("inloggning via inloggningstjänsten matchar flera användare; avvisad");
            refusal("flera användare har samma e-postadress; en administratör behöver rätta det".into())
        }
        Found::Unknown if oidc.config.unknown == Unknown::Create => match pending::create(conn, by, identity) {
            Ok(id) => {
                tracing::info!(
                    user_id = id,
                    "en användare skapades vid första inloggningen via inloggningstjänsten"
                );
                Ok(id)
            }
            // A database error is logged, not shown; the refusals are Swedish.
            Err(e) if e.downcast_ref::<diesel::result::Error>().is_some() => {
                return Err(AppError::internal(format!("{e:#}")))
            }
            Err(e) => refusal(e.to_string()),
        },
        Found::Unknown => {
            tracing::info!("inloggning via inloggningstjänsten av någon som inte är användare här avvisad");
            refusal(format!(
                "du är inte upplagd som användare i svu-vakt ({} {}); be en administratör lägga upp dig",
                match by {
                    crate::oidc::MatchBy::HsaId => "HSA-id",
                    crate::oidc::MatchBy::Email => "e-post",
                },
                identity.value
            ))
        }
    })
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(begin).service(finish);
}
