//! Who is calling. The [`Auth`] extractor accepts a machine's bearer token
//! (looked up hashed) or a person's session cookie; a request that changes
//! anything under a session must carry the session's CSRF token in the
//! `X-CSRF-Token` header (forms carry it as a field, checked by the page).
//! No credentials: 401. Wrong role: 403.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::Method, web, FromRequest, HttpRequest};

use super::error::{AppError, ErrorCode};
use super::AppState;
use crate::store::tokens::{self, Caller, Role};
use crate::store::users;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "svu_session";

pub struct Auth {
    pub caller: Caller,
    /// The session's CSRF token, when the caller came by session.
    pub csrf: Option<String>,
}

impl Auth {
    pub fn require(&self, roles: &[Role]) -> Result<&Caller, AppError> {
        if roles.contains(&self.caller.role) {
            Ok(&self.caller)
        } else {
            Err(AppError::new(
                ErrorCode::Forbidden,
                format!("rollen {} får inte göra det här", self.caller.role.as_str()),
            ))
        }
    }
}

/// A cookie's value from the request's `Cookie` header.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all("Cookie")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

enum Credential {
    Token(String),
    Session(String),
}

impl FromRequest for Auth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Auth, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let credential = match bearer {
            Some(t) => Some(Credential::Token(t)),
            None => cookie(req, SESSION_COOKIE).map(Credential::Session),
        };
        let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let csrf_header = req
            .headers()
            .get("X-CSRF-Token")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        Box::pin(async move {
            let unauthorized = || {
                AppError::new(
                    ErrorCode::Unauthorized,
                    "en giltig API-token (Bearer) eller en inloggning krävs",
                )
            };
            let (Some(state), Some(credential)) = (state, credential) else {
                return Err(unauthorized());
            };
            let limits = state.session;
            let found = web::block(move || -> Result<Option<(Caller, Option<String>)>, AppError> {
                let mut conn = state.pool.get()?;
                Ok(match credential {
                    Credential::Token(t) => tokens::lookup(&mut conn, &t)?.map(|c| (c, None)),
                    Credential::Session(s) => {
                        users::session_caller(&mut conn, &s, limits)?.map(|(c, csrf)| (c, Some(csrf)))
                    }
                })
            })
            .await??;
            let Some((caller, csrf)) = found else {
                return Err(unauthorized());
            };
            if let (Some(expected), true) = (&csrf, unsafe_method) {
                let given = csrf_header.unwrap_or_default();
                if !same_secret(&given, expected) {
                    return Err(AppError::new(
                        ErrorCode::Forbidden,
                        "CSRF-token saknas eller är fel (huvudet X-CSRF-Token)",
                    ));
                }
            }
            Ok(Auth { caller, csrf })
        })
    }
}
