//! People: local accounts (argon2id password hashes), their units, login
//! with lock-out, and sessions (SPEC §9). A session is known by the SHA-256
//! of its cookie; the cookie itself is never stored.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::schema::{sessions, units, user_units, users};
use super::tokens::{Caller, Role};
use super::{backend, now, DbConn};

/// Failed logins in a row that lock an account, and for how long.
pub const LOCK_AFTER: i32 = 5;
pub const LOCK_MINUTES: i64 = 15;

/// A password shorter than this is refused.
pub const MIN_PASSWORD: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub email: Option<String>,
    /// The HSA-id a login through the identity provider is matched on.
    pub hsa_id: Option<String>,
    pub units: Vec<String>,
    pub disabled: bool,
    pub locked_until: Option<NaiveDateTime>,
}

/// Why a login did not give a session. Unknown user, wrong password and a
/// disabled account are one answer to the person trying (no user names
/// are revealed); the locked account says when to try again.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginRefused {
    Wrong,
    Locked(NaiveDateTime),
}

/// Session lifetimes (config `session.idle_minutes`, `session.absolute_hours`).
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("systemet gav inga slumptal: {e}"))?;
    Ok(hex::encode(b))
}

/// A generated password: 20 characters from an alphabet without look-alikes.
pub fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 20];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("systemet gav inga slumptal: {e}"))?;
    Ok(b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect())
}

/// Passwords shorter than [`MIN_PASSWORD`] are refused.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD,
        "lösenordet måste ha minst {MIN_PASSWORD} tecken"
    );
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("kunde inte hasha lösenordet: {e}"))
}

fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

pub(crate) fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Creates a user. A handläggare needs at least one unit; every unit must
/// be registered. `inlasning` is for tokens, not people.
pub fn create(
    conn: &mut DbConn,
    username: &str,
    password: &str,
    role: Role,
    unit_ids: &[String],
    email: Option<&str>,
) -> anyhow::Result<i64> {
    anyhow::ensure!(
        valid_username(username),
        "användarnamnet får bara ha bokstäverna a–z, siffror och . _ - @ (högst 64 tecken)"
    );
    anyhow::ensure!(
        role != Role::Inlasning,
        "rollen inlasning är för API-nycklar, inte för personer"
    );
    anyhow::ensure!(
        role != Role::Handlaggare || !unit_ids.is_empty(),
        "en handläggare behöver minst en enhet (--unit): den ser bara sina enheter och enheterna under dem"
    );
    if let Some(e) = email {
        crate::domain::parse_mailbox(e).map_err(|m| anyhow::anyhow!("e-postadressen {e}: {m}"))?;
    }
    let hash = hash_password(password)?;
    backend::write_tx(conn, |conn| -> anyhow::Result<i64> {
        check_units(conn, unit_ids)?;
        let taken: i64 = users::table
            .filter(users::username.eq(username))
            .count()
            .get_result(conn)?;
        anyhow::ensure!(taken == 0, "användaren {username} finns redan");
        let id: i64 = diesel::insert_into(users::table)
            .values((
                users::username.eq(username),
                users::password_hash.eq(&hash),
                users::role.eq(role.as_str()),
                users::email.eq(email),
                users::failed_logins.eq(0),
                users::created_at.eq(now()),
            ))
            .returning(users::id)
            .get_result(conn)?;
        for u in unit_ids {
            diesel::insert_into(user_units::table)
                .values((user_units::user_id.eq(id), user_units::unit_id.eq(u)))
                .execute(conn)?;
        }
        Ok(id)
    })
}

pub(crate) fn check_units(conn: &mut DbConn, unit_ids: &[String]) -> anyhow::Result<()> {
    for u in unit_ids {
        let known: i64 = units::table.filter(units::id.eq(u)).count().get_result(conn)?;
        anyhow::ensure!(known == 1, "enheten {u} är inte registrerad");
    }
    Ok(())
}

pub(crate) fn id_of(conn: &mut DbConn, username: &str) -> anyhow::Result<i64> {
    users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| anyhow::anyhow!("ingen användare heter {username}"))
}

/// Sets a new password, lifts a lock-out and ends the user's sessions.
pub fn set_password(conn: &mut DbConn, username: &str, password: &str) -> anyhow::Result<()> {
    let hash = hash_password(password)?;
    backend::write_tx(conn, |conn| -> anyhow::Result<()> {
        let id = id_of(conn, username)?;
        diesel::update(users::table.find(id))
            .set((
                users::password_hash.eq(&hash),
                users::failed_logins.eq(0),
                users::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        end_all(conn, id)?;
        Ok(())
    })
}

/// Disables a user (kept for the history and the access log) and ends its sessions.
pub fn disable(conn: &mut DbConn, username: &str) -> anyhow::Result<()> {
    backend::write_tx(conn, |conn| -> anyhow::Result<()> {
        let id = id_of(conn, username)?;
        diesel::update(users::table.find(id))
            .set(users::disabled_at.eq(Some(now())))
            .execute(conn)?;
        end_all(conn, id)?;
        Ok(())
    })
}

/// A change to a user: each field that is `Some` replaces what is there.
/// Roles and units live here, whichever way a person logs in.
#[derive(Debug, Default, Clone)]
pub struct Change {
    pub role: Option<Role>,
    pub units: Option<Vec<String>>,
    /// `Some(None)` removes the HSA-id.
    pub hsa_id: Option<Option<String>>,
}

/// Changes a user's role, units or HSA-id. A handläggare still needs a
/// unit, except one made by a login through the identity provider that
/// has never had any (it sees nothing until given units). The user's
/// sessions end when role or units change, so the next request sees them.
pub fn update(conn: &mut DbConn, username: &str, change: &Change) -> anyhow::Result<()> {
    let mut change = change.clone();
    if let Some(Some(h)) = &mut change.hsa_id {
        *h = hsa_id_form(h);
        anyhow::ensure!(valid_hsa_id(h), "HSA-id {h} har fel form (t.ex. SE2321000016-1234)");
    }
    let change = &change;
    anyhow::ensure!(
        change.role != Some(Role::Inlasning),
        "rollen inlasning är för API-nycklar, inte för personer"
    );
    backend::write_tx(conn, |conn| -> anyhow::Result<()> {
        let id = id_of(conn, username)?;
        let current = get(conn, id)?.ok_or_else(|| anyhow::anyhow!("ingen användare heter {username}"))?;
        let role = change.role.or_else(|| Role::parse(&current.role));
        let units = change.units.clone().unwrap_or(current.units.clone());
        anyhow::ensure!(
            role != Some(Role::Handlaggare) || !units.is_empty() || change.units.is_none(),
            "en handläggare behöver minst en enhet: den ser bara sina enheter och enheterna under dem"
        );
        if let Some(Some(h)) = &change.hsa_id {
            let taken: i64 = users::table
                .filter(users::hsa_id.eq(h))
                .filter(users::id.ne(id))
                .count()
                .get_result(conn)?;
            anyhow::ensure!(taken == 0, "HSA-id {h} tillhör redan en annan användare");
        }
        if let Some(r) = change.role {
            diesel::update(users::table.find(id))
                .set(users::role.eq(r.as_str()))
                .execute(conn)?;
        }
        if let Some(h) = &change.hsa_id {
            diesel::update(users::table.find(id))
                .set(users::hsa_id.eq(h.as_deref()))
                .execute(conn)?;
        }
        if let Some(u) = &change.units {
            check_units(conn, u)?;
            diesel::delete(user_units::table.filter(user_units::user_id.eq(id))).execute(conn)?;
            for unit in u {
                diesel::insert_into(user_units::table)
                    .values((user_units::user_id.eq(id), user_units::unit_id.eq(unit)))
                    .execute(conn)?;
            }
        }
        if change.role.is_some() || change.units.is_some() {
            end_all(conn, id)?;
        }
        Ok(())
    })
}

/// An HSA-id: letters, digits and `-`, 4 to 64 characters (Inera's form is
/// the issuing organisation's id, a dash and a serial).
pub fn valid_hsa_id(h: &str) -> bool {
    (4..=64).contains(&h.len()) && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// An HSA-id as stored and compared: trimmed, in capitals (Inera issues
/// them so; an id typed in lower case is the same id).
pub fn hsa_id_form(h: &str) -> String {
    h.trim().to_ascii_uppercase()
}

fn end_all(conn: &mut DbConn, user_id: i64) -> QueryResult<usize> {
    diesel::update(sessions::table.filter(sessions::user_id.eq(user_id)))
        .filter(sessions::ended_at.is_null())
        .set(sessions::ended_at.eq(Some(now())))
        .execute(conn)
}

type UserRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    i32,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

fn user_row(conn: &mut DbConn, filter_username: Option<&str>, filter_id: Option<i64>) -> QueryResult<Option<UserRow>> {
    let mut q = users::table
        .select((
            users::id,
            users::username,
            users::password_hash,
            users::role,
            users::email,
            users::failed_logins,
            users::locked_until,
            users::disabled_at,
        ))
        .into_boxed();
    if let Some(u) = filter_username {
        q = q.filter(users::username.eq(u.to_string()));
    }
    if let Some(id) = filter_id {
        q = q.filter(users::id.eq(id));
    }
    q.first(conn).optional()
}

fn units_of(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<String>> {
    user_units::table
        .filter(user_units::user_id.eq(user_id))
        .select(user_units::unit_id)
        .order(user_units::unit_id)
        .load(conn)
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<User>> {
    let ids: Vec<i64> = users::table.select(users::id).order(users::username).load(conn)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(u) = get(conn, id)? {
            out.push(u);
        }
    }
    Ok(out)
}

pub fn get(conn: &mut DbConn, id: i64) -> QueryResult<Option<User>> {
    let Some(row) = user_row(conn, None, Some(id))? else {
        return Ok(None);
    };
    let units = units_of(conn, id)?;
    let hsa_id = users::table.find(id).select(users::hsa_id).first(conn)?;
    Ok(Some(User {
        id: row.0,
        username: row.1,
        role: row.3,
        email: row.4,
        hsa_id,
        units,
        disabled: row.7.is_some(),
        locked_until: row.6,
    }))
}

/// What a login attempt verifies the password against: the user's hash, or
/// for an unknown name a dummy hash, so that both cost the same time.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: Option<i64>,
    hash: String,
}

/// Login, step one: the hash to verify against. Verification itself
/// ([`Candidate::verify`]) needs no database connection and should not
/// hold one: argon2 takes tens of milliseconds.
pub fn login_candidate(conn: &mut DbConn, username: &str) -> QueryResult<Candidate> {
    Ok(match user_row(conn, Some(username), None)? {
        Some(row) => Candidate {
            id: Some(row.0),
            hash: row.2,
        },
        None => Candidate {
            id: None,
            hash: DUMMY_HASH.to_string(),
        },
    })
}

impl Candidate {
    pub fn verify(&self, password: &str) -> bool {
        // A user without a password (one who logs in only through the
        // identity provider) costs the same argon2 run as anyone else.
        let hash = if PasswordHash::new(&self.hash).is_ok() {
            self.hash.as_str()
        } else {
            DUMMY_HASH
        };
        let good = verify(password, hash);
        self.id.is_some() && hash == self.hash && good
    }
}

/// Login, step two: records the outcome on the locked user row. A locked
/// account stays locked even for the right password; five failures in a row
/// lock it for fifteen minutes; a success clears the count. Concurrent
/// attempts are counted one by one (the row is locked, the lock re-read).
pub fn login_record(conn: &mut DbConn, candidate: &Candidate, good: bool) -> anyhow::Result<Result<i64, LoginRefused>> {
    let Some(id) = candidate.id else {
        return Ok(Err(LoginRefused::Wrong));
    };
    backend::write_tx(conn, |conn| -> anyhow::Result<Result<i64, LoginRefused>> {
        // The same pruning an unknown name's failure runs: equal cost.
        super::unknown_logins::prune(conn, now(), LOCK_MINUTES)?;
        backend::lock_user(conn, id)?;
        let (failed, locked_until, disabled_at): (i32, Option<NaiveDateTime>, Option<NaiveDateTime>) = users::table
            .find(id)
            .select((users::failed_logins, users::locked_until, users::disabled_at))
            .first(conn)?;
        let at = now();
        if let Some(until) = locked_until.filter(|u| *u > at) {
            return Ok(Err(LoginRefused::Locked(until)));
        }
        if good && disabled_at.is_none() {
            diesel::update(users::table.find(id))
                .set((
                    users::failed_logins.eq(0),
                    users::locked_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            return Ok(Ok(id));
        }
        let failed = failed + 1;
        if failed >= LOCK_AFTER {
            let until = at + Duration::minutes(LOCK_MINUTES);
            diesel::update(users::table.find(id))
                .set((users::failed_logins.eq(0), users::locked_until.eq(Some(until))))
                .execute(conn)?;
            tracing::warn!(user = id, "kontot låst efter {LOCK_AFTER} misslyckade inloggningar");
            return Ok(Err(LoginRefused::Locked(until)));
        }
        diesel::update(users::table.find(id))
            .set(users::failed_logins.eq(failed))
            .execute(conn)?;
        Ok(Err(LoginRefused::Wrong))
    })
}

/// An argon2id hash of a random password, verified against when the user
/// name is unknown so that timing does not tell which names exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3Z1LXZha3QtZHVtbXk$1oXbBp3Uu9V0a4m0yCqkQ6ZbV8kQJ9tJ0p0y3mS4W2E";

/// A new session for the user: the cookie value and the session's CSRF token.
pub fn start_session(conn: &mut DbConn, user_id: i64) -> anyhow::Result<(String, String)> {
    let cookie = random_hex(32)?;
    let csrf = random_hex(32)?;
    let at = now();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(digest(&cookie)),
            sessions::user_id.eq(user_id),
            sessions::csrf.eq(&csrf),
            sessions::created_at.eq(at),
            sessions::last_seen_at.eq(at),
        ))
        .execute(conn)?;
    Ok((cookie, csrf))
}

/// The person a session cookie belongs to, with the session's CSRF token,
/// if the session is live: not ended, not idle longer than `limits.idle`,
/// not older than `limits.absolute`, the user not disabled. A live
/// session's idle clock restarts (written at most once a minute).
pub fn session_caller(
    conn: &mut DbConn,
    cookie: &str,
    limits: SessionLimits,
) -> anyhow::Result<Option<(Caller, String)>> {
    let hash = digest(cookie);
    let row: Option<(i64, String, NaiveDateTime, NaiveDateTime)> = sessions::table
        .filter(sessions::id_hash.eq(&hash))
        .filter(sessions::ended_at.is_null())
        .select((
            sessions::user_id,
            sessions::csrf,
            sessions::created_at,
            sessions::last_seen_at,
        ))
        .first(conn)
        .optional()?;
    let Some((user_id, csrf, created, seen)) = row else {
        return Ok(None);
    };
    let at = now();
    if at - seen > limits.idle || at - created > limits.absolute {
        diesel::update(sessions::table.find(&hash))
            .set(sessions::ended_at.eq(Some(at)))
            .execute(conn)?;
        return Ok(None);
    }
    let Some(row) = user_row(conn, None, Some(user_id))? else {
        return Ok(None);
    };
    if row.7.is_some() {
        return Ok(None);
    }
    let Some(role) = Role::parse(&row.3) else {
        return Ok(None);
    };
    if at - seen > Duration::minutes(1) {
        diesel::update(sessions::table.find(&hash))
            .set(sessions::last_seen_at.eq(at))
            .execute(conn)?;
    }
    let units = units_of(conn, user_id)?;
    Ok(Some((
        Caller {
            token_id: None,
            user_id: Some(user_id),
            name: row.1,
            role,
            units,
        },
        csrf,
    )))
}

/// Ends a session (logout).
pub fn end_session(conn: &mut DbConn, cookie: &str) -> QueryResult<usize> {
    diesel::update(sessions::table.find(digest(cookie)))
        .set(sessions::ended_at.eq(Some(now())))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_valid_hash_that_no_password_matches() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify("", DUMMY_HASH));
        let h = hash_password("ett långt lösenord").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("ett långt lösenord", &h));
        assert!(!verify("ett annat lösenord", &h));
        assert!(hash_password("kort").is_err());
    }
}
