//! Bearer-token authentication: the [`Caller`] extractor looks the token up
//! (hashed) and handlers state which roles may pass. No token: 401. Wrong
//! role: 403.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::error::{AppError, ErrorCode};
use super::AppState;
use crate::store::tokens::{self, Caller, Role};

pub struct Auth(pub Caller);

impl Auth {
    pub fn require(&self, roles: &[Role]) -> Result<&Caller, AppError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            Err(AppError::new(
                ErrorCode::Forbidden,
                format!("the role {} may not do this", self.0.role.as_str()),
            ))
        }
    }
}

/// What a caller may see. A handläggare sees its unit and every unit below
/// it; a handläggare whose unit is not set has no determinable scope and is
/// denied (SPEC §9: a scope that cannot be determined denies).
pub enum Scope {
    All,
    Units(std::collections::HashSet<String>),
}

impl Scope {
    pub fn of(caller: &Caller, conn: &mut crate::store::DbConn) -> Result<Scope, AppError> {
        match (caller.role, caller.unit.as_deref()) {
            (Role::Handlaggare, Some(u)) if !u.trim().is_empty() => {
                Ok(Scope::Units(crate::store::units::subtree(conn, u)?))
            }
            (Role::Handlaggare, _) => Err(AppError::new(
                ErrorCode::Forbidden,
                "this token has no unit, so what it may see cannot be determined",
            )),
            _ => Ok(Scope::All),
        }
    }

    pub fn contains(&self, unit: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Units(own) => unit.is_some_and(|u| own.contains(u)),
        }
    }
}

impl FromRequest for Auth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Auth, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        Box::pin(async move {
            let unauthorized = || AppError::new(ErrorCode::Unauthorized, "a valid bearer token is required");
            let (Some(state), Some(token)) = (state, token) else {
                return Err(unauthorized());
            };
            let caller = web::block(move || -> Result<Option<Caller>, AppError> {
                let mut conn = state.pool.get()?;
                Ok(tokens::lookup(&mut conn, &token)?)
            })
            .await??;
            caller.map(Auth).ok_or_else(unauthorized)
        })
    }
}
