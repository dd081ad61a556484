//! Login for people over the API: `POST /session` with user name and
//! password sets the session cookie and answers the CSRF token that every
//! changing request under the session must send as `X-CSRF-Token`;
//! `GET /session` says who is logged in; `DELETE /session` logs out.
//! Five failed logins in a row lock the account for 15 minutes, and
//! failures from one address slow that address down.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::store::tokens::Caller;
use crate::store::users::{self, LoginRefused};
use crate::web::auth::{Auth, SESSION_COOKIE};
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// How long failures from one address are remembered.
const ADDRESS_MEMORY: Duration = Duration::from_secs(15 * 60);

/// The pause before answering an address that has failed `n` times lately:
/// 200 ms per failure, at most 4 s.
fn pause_for(n: u32) -> Duration {
    Duration::from_millis(200 * u64::from(n.min(20)))
}

fn failures(state: &AppState, ip: Option<IpAddr>) -> u32 {
    let (Some(ip), Ok(mut map)) = (ip, state.login_failures.lock()) else {
        return 0;
    };
    map.retain(|_, (_, at)| at.elapsed() < ADDRESS_MEMORY);
    map.get(&ip).map_or(0, |(n, _)| *n)
}

/// A failure counts against the address for 15 minutes; a success does not
/// clear it (one valid account must not reset the brake for guessing others).
fn record_failure(state: &AppState, ip: Option<IpAddr>) {
    let (Some(ip), Ok(mut map)) = (ip, state.login_failures.lock()) else {
        return;
    };
    let e = map.entry(ip).or_insert((0, Instant::now()));
    e.0 += 1;
    e.1 = Instant::now();
}

/// The `Set-Cookie` value for a session (or, with `None`, its removal).
pub fn session_cookie(state: &AppState, value: Option<&str>) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    match value {
        Some(v) => format!(
            "{SESSION_COOKIE}={v}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            state.session.absolute.num_seconds()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

/// Checks the credentials (slowed per address) and starts a session: the
/// cookie value and the CSRF token, or why not, in Swedish.
pub async fn log_in(
    state: web::Data<AppState>,
    req: &HttpRequest,
    creds: Credentials,
) -> Result<Result<(String, String, Caller), AppError>, AppError> {
    let ip = req.peer_addr().map(|a| a.ip());
    let n = failures(&state, ip);
    if n > 0 {
        actix_web::rt::time::sleep(pause_for(n)).await;
    }
    let st = state.clone();
    let outcome = web::block(
        move || -> Result<Result<(String, String, Caller), LoginRefused>, AppError> {
            let mut conn = st.pool.get()?;
            match users::login(&mut conn, creds.username.trim(), &creds.password)? {
                Ok(user_id) => {
                    let (cookie, csrf) = users::start_session(&mut conn, user_id)?;
                    let (caller, _) = users::session_caller(&mut conn, &cookie, st.session)?
                        .ok_or_else(|| AppError::internal("a new session is not live"))?;
                    Ok(Ok((cookie, csrf, caller)))
                }
                Err(r) => Ok(Err(r)),
            }
        },
    )
    .await??;
    if outcome.is_err() {
        record_failure(&state, ip);
    }
    Ok(outcome.map_err(|r| match r {
        LoginRefused::Wrong => AppError::new(ErrorCode::Unauthorized, "fel användarnamn eller lösenord"),
        LoginRefused::Locked(until) => AppError::new(
            ErrorCode::TooManyRequests,
            format!(
                "kontot är låst efter {} misslyckade inloggningar, till {}",
                users::LOCK_AFTER,
                crate::calendar::in_stockholm(until.and_utc()).format("%H:%M")
            ),
        ),
    }))
}

fn who(caller: &Caller, csrf: Option<&str>) -> serde_json::Value {
    json!({"username": caller.name, "role": caller.role.as_str(), "units": caller.units, "csrf": csrf})
}

#[post("/session")]
async fn create(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let creds: Credentials = serde_json::from_slice(&body).map_err(|e| {
        AppError::new(
            ErrorCode::BadRequest,
            format!("the body must be {{\"username\", \"password\"}}: {e}"),
        )
    })?;
    let (cookie, csrf, caller) = log_in(state.clone(), &req, creds).await??;
    Ok(HttpResponse::Ok()
        .insert_header(("Set-Cookie", session_cookie(&state, Some(&cookie))))
        .json(who(&caller, Some(&csrf))))
}

#[get("/session")]
async fn show(auth: Auth) -> HttpResponse {
    HttpResponse::Ok().json(who(&auth.caller, auth.csrf.as_deref()))
}

#[delete("/session")]
async fn end(state: web::Data<AppState>, req: HttpRequest, auth: Auth) -> Result<HttpResponse, AppError> {
    if auth.csrf.is_some() {
        if let Some(cookie) = crate::web::auth::cookie(&req, SESSION_COOKIE) {
            let st = state.clone();
            web::block(move || -> Result<(), AppError> {
                let mut conn = st.pool.get()?;
                users::end_session(&mut conn, &cookie)?;
                Ok(())
            })
            .await??;
        }
    }
    Ok(HttpResponse::NoContent()
        .insert_header(("Set-Cookie", session_cookie(&state, None)))
        .finish())
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(create).service(show).service(end);
}
