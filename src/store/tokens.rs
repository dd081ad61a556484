//! API tokens, stored as SHA-256 of the token (the token itself is shown once,
//! at creation), and the access log for loggkontroll (SPEC §9).

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::{access_log, api_tokens};
use super::{now, DbConn};

pub use crate::domain::Role;

/// Who is calling: a machine's token or a person's session, with the role
/// and the units that bound what it may see (see `web::auth::Scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The user name, or `token:N`: what the access log and a deviation's history show.
    pub name: String,
    pub role: Role,
    pub units: Vec<String>,
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
    Ok(row.and_then(|(token_id, role, unit)| {
        Role::parse(&role).map(|role| Caller {
            token_id: Some(token_id),
            user_id: None,
            name: format!("token:{token_id}"),
            role,
            units: unit.into_iter().collect(),
        })
    }))
}

/// Records that a caller read something about a case or deviation.
pub fn log_access(conn: &mut DbConn, caller: &Caller, action: &str, object: &str) -> QueryResult<()> {
    diesel::insert_into(access_log::table)
        .values((
            access_log::at.eq(now()),
            access_log::token_id.eq(caller.token_id),
            access_log::user_id.eq(caller.user_id),
            access_log::actor.eq(&caller.name),
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
