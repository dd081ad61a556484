//! What a login through the identity provider keeps here: the logins on
//! their way (state, nonce, PKCE verifier; each taken once) and the link
//! from the provider's claim to a user (`crate::oidc`, docs/OPERATIONS.md).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::{oidc_logins, users};
use super::tokens::Role;
use super::{backend, now, DbConn};
use crate::oidc::{Identity, MatchBy};

/// How long a begun login may take at the identity provider.
pub const LOGIN_MINUTES: i64 = 10;

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A begun login, as kept until the browser returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub nonce: String,
    pub verifier: String,
    pub next: String,
}

/// Keeps a begun login under its state; forgets the ones that ran out.
pub fn begin(conn: &mut DbConn, state: &str, pending: &Pending) -> QueryResult<()> {
    let at = now();
    backend::write_tx(conn, |conn| {
        diesel::delete(oidc_logins::table.filter(oidc_logins::created_at.lt(at - Duration::minutes(LOGIN_MINUTES))))
            .execute(conn)?;
        diesel::insert_into(oidc_logins::table)
            .values((
                oidc_logins::state_hash.eq(digest(state)),
                oidc_logins::nonce.eq(&pending.nonce),
                oidc_logins::pkce_verifier.eq(&pending.verifier),
                oidc_logins::next.eq(&pending.next),
                oidc_logins::created_at.eq(at),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Takes the login begun under `state`: once, and only within
/// [`LOGIN_MINUTES`]. A second return with the same state (a replay, or
/// two tabs racing) finds nothing: the row is deleted by whichever comes
/// first, and only the one whose delete removed it goes on.
pub fn take(conn: &mut DbConn, state: &str) -> QueryResult<Option<Pending>> {
    let hash = digest(state);
    backend::write_tx(conn, |conn| {
        let row: Option<(String, String, String, NaiveDateTime)> = oidc_logins::table
            .find(&hash)
            .select((
                oidc_logins::nonce,
                oidc_logins::pkce_verifier,
                oidc_logins::next,
                oidc_logins::created_at,
            ))
            .first(conn)
            .optional()?;
        let removed = diesel::delete(oidc_logins::table.find(&hash)).execute(conn)?;
        Ok(match row {
            Some((nonce, verifier, next, at)) if removed == 1 && now() - at <= Duration::minutes(LOGIN_MINUTES) => {
                Some(Pending { nonce, verifier, next })
            }
            _ => None,
        })
    })
}

/// Whom a login through the identity provider is.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    User(i64),
    /// The user exists and is disabled.
    Disabled,
    /// No user has this HSA-id or e-mail.
    Unknown,
    /// Several users share the e-mail: none is chosen.
    Ambiguous,
}

/// The user the identity names: by HSA-id exactly, or by e-mail without
/// regard to case.
pub fn find(conn: &mut DbConn, by: MatchBy, value: &str) -> QueryResult<Found> {
    let rows: Vec<(i64, Option<NaiveDateTime>)> = match by {
        MatchBy::HsaId => users::table
            .filter(users::hsa_id.eq(super::users::hsa_id_form(value)))
            .select((users::id, users::disabled_at))
            .load(conn)?,
        MatchBy::Email => users::table
            .filter(users::email.is_not_null())
            .select((users::id, users::disabled_at, users::email))
            .load::<(i64, Option<NaiveDateTime>, Option<String>)>(conn)?
            .into_iter()
            .filter(|(_, _, e)| e.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(value)))
            .map(|(id, d, _)| (id, d))
            .collect(),
    };
    Ok(match rows.as_slice() {
        [] => Found::Unknown,
        [(_, Some(_))] => Found::Disabled,
        [(id, None)] => Found::User(*id),
        _ => Found::Ambiguous,
    })
}

/// Makes a user for a person the identity provider vouches for
/// (`oidc.unknown_users = "create"`): a handläggare with no unit and no
/// password, who sees nothing until an administrator gives units. The user
/// name is the claim's value.
pub fn create(conn: &mut DbConn, by: MatchBy, identity: &Identity) -> anyhow::Result<i64> {
    let name = match by {
        MatchBy::HsaId => super::users::hsa_id_form(&identity.value),
        MatchBy::Email => identity.value.clone(),
    };
    let name = name.as_str();
    anyhow::ensure!(
        super::users::valid_username(name),
        "uppgiften från inloggningstjänsten duger inte som användarnamn"
    );
    let hsa_id = match by {
        MatchBy::HsaId => {
            anyhow::ensure!(
                super::users::valid_hsa_id(name),
                "HSA-id från inloggningstjänsten har fel form"
            );
            Some(name)
        }
        MatchBy::Email => None,
    };
    let email = match by {
        MatchBy::Email => Some(name),
        MatchBy::HsaId => identity.email.as_deref(),
    }
    .filter(|e| crate::domain::parse_mailbox(e).is_ok());
    backend::write_tx(conn, |conn| -> anyhow::Result<i64> {
        let taken: i64 = users::table.filter(users::username.eq(name)).count().get_result(conn)?;
        anyhow::ensure!(
            taken == 0,
            "det finns redan en användare med det namnet; en administratör behöver koppla ihop kontona"
        );
        Ok(diesel::insert_into(users::table)
            .values((
                users::username.eq(name),
                // Not an argon2 hash: no password ever matches it.
                users::password_hash.eq(NO_PASSWORD),
                users::role.eq(Role::Handlaggare.as_str()),
                users::email.eq(email),
                users::hsa_id.eq(hsa_id),
                users::failed_logins.eq(0),
                users::created_at.eq(now()),
            ))
            .returning(users::id)
            .get_result(conn)?)
    })
}

/// The password hash of a user who logs in only through the identity provider.
pub const NO_PASSWORD: &str = "!oidc";
