//! Login for people over the API: `POST /session` with user name and
//! password sets the session cookie and answers the CSRF token that every
//! changing request under the session must send as `X-CSRF-Token`;
//! `GET /session` says who is logged in; `DELETE /session` logs out.
//! Five failed logins in a row lock the account for 15 minutes, and
//! failures from one address slow that address down. A name no account has
//! is counted the same way, in the database (`store::unknown_logins`), so
//! both answers cost one write and nothing an anonymous caller sends is
//! kept in memory beyond a bounded map of addresses.

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

// A login: the JSON body of `POST /api/v1/session` (`LoginRequest` in the
// document, which has no description for it) and the login page's form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = LoginRequest)]
#[serde(deny_unknown_fields)]
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

/// At most this many client addresses are remembered (a fixed-size entry
/// each); past it the one that failed longest ago is forgotten, so rotating
/// source addresses cannot grow the map.
pub const ADDRESSES_KEPT: usize = 10_000;

/// The longest user name a login looks up. Longer is refused before
/// anything is stored or verified (names that accounts have are shorter).
pub const MAX_USERNAME_CHARS: usize = 200;

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
    if map.len() >= ADDRESSES_KEPT && !map.contains_key(&ip) {
        map.retain(|_, (_, at)| at.elapsed() < ADDRESS_MEMORY);
        if map.len() >= ADDRESSES_KEPT {
            if let Some(oldest) = map.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
    }
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

/// Refuses a login posted from another site (login CSRF: a victim logged in
/// as the attacker): a browser says so in `Sec-Fetch-Site`, or its `Origin`
/// names another host than the one it posted to.
pub fn same_site(req: &HttpRequest) -> Result<(), AppError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let cross = header("Sec-Fetch-Site") == Some("cross-site")
        || match (header("Origin"), header("Host")) {
            (Some(origin), Some(host)) if origin != "null" => origin.split_once("://").map(|(_, h)| h) != Some(host),
            (Some("null"), _) => true,
            _ => false,
        };
    if cross {
        Err(AppError::new(
            ErrorCode::Forbidden,
            "inloggning från en annan webbplats tas inte emot",
        ))
    } else {
        Ok(())
    }
}

/// Checks the credentials and starts a session: the cookie value and the
/// CSRF token, or why not, in Swedish. The database connection is not held
/// while the password is verified, at most two verifications run at once,
/// and an address that failed lately waits before its answer.
pub async fn log_in(
    state: web::Data<AppState>,
    req: &HttpRequest,
    creds: Credentials,
) -> Result<Result<(String, String, Caller), AppError>, AppError> {
    same_site(req)?;
    let ip = req.peer_addr().map(|a| a.ip());
    let n = failures(&state, ip);
    if n > 0 {
        actix_web::rt::time::sleep(pause_for(n)).await;
    }
    let username = creds.username.trim().to_string();
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            format!("användarnamnet är längre än {MAX_USERNAME_CHARS} tecken"),
        ));
    }
    let st = state.clone();
    let name = username.clone();
    let candidate = web::block(move || -> Result<users::Candidate, AppError> {
        let mut conn = st.pool.get()?;
        Ok(users::login_candidate(&mut conn, &name)?)
    })
    .await??;
    let slot = match actix_web::rt::time::timeout(Duration::from_secs(10), state.login_slots.acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            return Err(AppError::new(
                ErrorCode::Unavailable,
                "för många inloggningar just nu; försök igen om en stund",
            ))
        }
    };
    let check = candidate.clone();
    let good = web::block(move || check.verify(&creds.password)).await?;
    drop(slot);
    let st = state.clone();
    let outcome = web::block(
        move || -> Result<Result<(String, String, Caller), LoginRefused>, AppError> {
            let mut conn = st.pool.get()?;
            // An unknown name is counted in the database too: the same
            // write, the same time, as a known one (module doc).
            if candidate.id.is_none() {
                let key = st.hasher.keyed("inloggning", &username);
                let locked = crate::store::unknown_logins::record_failure(
                    &mut conn,
                    &key,
                    users::LOCK_AFTER,
                    users::LOCK_MINUTES,
                )?;
                return Ok(Err(locked.map_or(LoginRefused::Wrong, LoginRefused::Locked)));
            }
            match users::login_record(&mut conn, &candidate, good)? {
                Ok(user_id) => {
                    let (cookie, csrf) = users::start_session(&mut conn, user_id)?;
                    let (caller, _) = users::session_caller(&mut conn, &cookie, st.session)?
                        .ok_or_else(|| AppError::internal("en ny session är inte giltig"))?;
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

#[utoipa::path(post, path = "/api/v1/session", tag = "inloggning",
    request_body(content = Credentials, content_type = "application/json"),
    responses((status = 200, description = "inloggad: username, role, units, csrf; sessionskakan sätts"),
        (status = 400, description = "inte JSON"), (status = 401, description = "fel användarnamn eller lösenord"),
        (status = 403, description = "skickat från en annan webbplats"), (status = 429, description = "kontot är låst"),
        (status = 503, description = "för många inloggningar på en gång")))]
#[post("/session")]
async fn create(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, AppError> {
    // A cross-site form cannot send JSON without asking first (CORS preflight).
    let json = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "kroppen måste vara JSON (Content-Type: application/json)",
        ));
    }
    let creds: Credentials = serde_json::from_slice(&body).map_err(|e| {
        AppError::new(
            ErrorCode::BadRequest,
            format!(
                "kroppen ska vara {{\"username\", \"password\"}}: {}",
                crate::web::fallback::json_reason(&e)
            ),
        )
    })?;
    let (cookie, csrf, caller) = log_in(state.clone(), &req, creds).await??;
    Ok(HttpResponse::Ok()
        .insert_header(("Set-Cookie", session_cookie(&state, Some(&cookie))))
        .json(who(&caller, Some(&csrf))))
}

#[utoipa::path(get, path = "/api/v1/session", tag = "inloggning",
    responses((status = 200, description = "vem som är inloggad, med CSRF-token"), (status = 401, description = "ingen giltig token eller session")))]
#[get("/session")]
async fn show(auth: Auth) -> HttpResponse {
    HttpResponse::Ok().json(who(&auth.caller, auth.csrf.as_deref()))
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "inloggning",
    responses((status = 204, description = "utloggad; kakan rensas"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "utan sessionens CSRF-token")))]
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
