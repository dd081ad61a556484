//! API tokens, stored as SHA-256 of the token (the token itself is shown once,
//! at creation), and the access log for loggkontroll (SPEC §9).

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::{access_log, api_tokens};
use super::{now, DbConn};

pub use crate::domain::Role;

/// Who is calling: a machine's token or a person's session, with the role
/// and the units that bound what it may see (see `handling::Scope`).
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
        "en token för handlaggare behöver --unit: den ser bara den enheten och enheterna under den"
    );
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("systemet gav inga slumptal: {e}"))?;
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

/// One line of the access log, as loggkontroll shows it.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct LogRow {
    pub id: i64,
    pub at: chrono::NaiveDateTime,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub object: String,
}

/// Loggkontroll: the access log by person (`actor`, exact), by object (a
/// case id, a deviation id, or a list filter containing it), by period;
/// newest first, at most `limit` lines.
pub fn search_log(
    conn: &mut DbConn,
    actor: Option<&str>,
    object: Option<&str>,
    from: Option<chrono::NaiveDateTime>,
    to: Option<chrono::NaiveDateTime>,
    limit: i64,
) -> QueryResult<Vec<LogRow>> {
    let mut q = access_log::table
        .select((
            access_log::id,
            access_log::at,
            access_log::actor,
            access_log::role,
            access_log::action,
            access_log::object,
        ))
        .into_boxed();
    if let Some(a) = actor {
        q = q.filter(access_log::actor.eq(a.to_string()));
    }
    if let Some(o) = object {
        // An exact id, or a list read or export whose filter names the case:
        // filters are logged decoded and encoded one way
        // (`ListFilter::logged`), so the case is spelled as here.
        let case = super::deviations::log_encode(o)
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut any = Box::new(access_log::object.eq(o.to_string()))
            as Box<dyn BoxableExpression<access_log::table, _, SqlType = diesel::sql_types::Bool>>;
        for pattern in [
            format!("%?case={case}"),
            format!("%?case={case}&%"),
            format!("%&case={case}"),
            format!("%&case={case}&%"),
        ] {
            any = Box::new(any.or(access_log::object.like(pattern).escape('\\')));
        }
        q = q.filter(any);
    }
    if let Some(f) = from {
        q = q.filter(access_log::at.ge(f));
    }
    if let Some(t) = to {
        q = q.filter(access_log::at.lt(t));
    }
    q.order(access_log::id.desc()).limit(limit).load(conn)
}
