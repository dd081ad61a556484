//! API tokens, stored as SHA-256 of the token (the token itself is shown once,
//! at creation), and the access log for loggkontroll (SPEC §9).

use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::schema::{access_log, api_tokens};
use super::{now, DbConn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Ledning,
    Handlaggare,
    Inlasning,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ledning => "ledning",
            Role::Handlaggare => "handlaggare",
            Role::Inlasning => "inlasning",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Ledning, Role::Handlaggare, Role::Inlasning]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Who is calling: the token's id, role and (for handläggare) unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: i64,
    pub role: Role,
    pub unit: Option<String>,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token and returns it in clear; only its hash is stored.
pub fn create(conn: &mut DbConn, role: Role, unit: Option<&str>, label: Option<&str>) -> anyhow::Result<String> {
    anyhow::ensure!(
        role != Role::Handlaggare || unit.is_some(),
        "a handlaggare token needs --unit: it sees only that unit and the units below it"
    );
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let token = format!("svk_{}", hex::encode(bytes));
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::token_hash.eq(digest(&token)),
            api_tokens::role.eq(role.as_str()),
            api_tokens::unit.eq(unit),
            api_tokens::label.eq(label),
            api_tokens::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The caller a token belongs to, if it is known and not revoked.
pub fn lookup(conn: &mut DbConn, token: &str) -> QueryResult<Option<Caller>> {
    let row: Option<(i64, String, Option<String>)> = api_tokens::table
        .filter(api_tokens::token_hash.eq(digest(token)))
        .filter(api_tokens::revoked_at.is_null())
        .select((api_tokens::id, api_tokens::role, api_tokens::unit))
        .first(conn)
        .optional()?;
    Ok(row.and_then(|(token_id, role, unit)| Role::parse(&role).map(|role| Caller { token_id, role, unit })))
}

/// Records that a caller read something about a case or deviation.
pub fn log_access(conn: &mut DbConn, caller: &Caller, action: &str, object: &str) -> QueryResult<()> {
    diesel::insert_into(access_log::table)
        .values((
            access_log::at.eq(now()),
            access_log::token_id.eq(caller.token_id),
            access_log::role.eq(caller.role.as_str()),
            access_log::action.eq(action),
            access_log::object.eq(object),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn access_log_count(conn: &mut DbConn) -> QueryResult<i64> {
    access_log::table.count().get_result(conn)
}
