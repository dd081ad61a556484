//! Failed logins under a user name no account has, counted exactly like an
//! account's (`users::login_record`, which passes its limits in): five in a
//! row lock the name for fifteen minutes. What is kept of a name is an HMAC
//! under the installation key (`PatientHasher::keyed`: a typed name may be a
//! personnummer or a password in the wrong field), one row of fixed size, pruned once it is older than the lock time and capped in number,
//! so an anonymous caller cannot make the service keep more than
//! [`KEPT`] rows, whatever names it tries. The row is written in one write
//! transaction, as a known name's is, so the two answers cost the same.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::unknown_logins as ul;
use super::{backend, now, DbConn};

/// At most this many names are remembered; past it the oldest go first.
pub const KEPT: i64 = 10_000;

/// Records a failed login under an unknown name, known by its keyed hash:
/// `Some(until)` when the name is locked (now or already), after
/// `lock_after` failures in a row for `lock_minutes`.
pub fn record_failure(
    conn: &mut DbConn,
    key: &str,
    lock_after: i32,
    lock_minutes: i64,
) -> QueryResult<Option<NaiveDateTime>> {
    let key = key.to_string();
    backend::write_tx(conn, |conn| {
        let at = now();
        prune(conn, at, lock_minutes)?;
        backend::touch_unknown_login(conn, &key, at)?;
        let (failed, locked_until): (i32, Option<NaiveDateTime>) = ul::table
            .find(&key)
            .select((ul::failed, ul::locked_until))
            .first(conn)?;
        if let Some(until) = locked_until.filter(|u| *u > at) {
            diesel::update(ul::table.find(&key))
                .set(ul::touched.eq(at))
                .execute(conn)?;
            return Ok(Some(until));
        }
        let failed = failed + 1;
        let (failed, locked_until) = if failed >= lock_after {
            (0, Some(at + Duration::minutes(lock_minutes)))
        } else {
            (failed, None)
        };
        diesel::update(ul::table.find(&key))
            .set((
                ul::failed.eq(failed),
                ul::locked_until.eq(locked_until),
                ul::touched.eq(at),
            ))
            .execute(conn)?;
        Ok(locked_until)
    })
}

/// Drops names not tried within the lock time (their lock, if any, has
/// run out), then the oldest beyond [`KEPT`]. A known name's login runs it
/// too, so that both cost the same statements.
pub fn prune(conn: &mut DbConn, at: NaiveDateTime, lock_minutes: i64) -> QueryResult<()> {
    let cutoff = at - Duration::minutes(lock_minutes);
    diesel::delete(ul::table.filter(ul::touched.lt(cutoff))).execute(conn)?;
    let n: i64 = ul::table.count().get_result(conn)?;
    if n >= KEPT {
        // Unlocked names go first: a flood of new names must not lift the
        // lock of a name (and tell by that whether an account has it).
        let oldest: Vec<String> = ul::table
            .order((ul::locked_until.is_not_null(), ul::touched, ul::name_hash))
            .select(ul::name_hash)
            .limit(n - KEPT + 1)
            .load(conn)?;
        for chunk in oldest.chunks(500) {
            diesel::delete(ul::table.filter(ul::name_hash.eq_any(chunk))).execute(conn)?;
        }
    }
    Ok(())
}

/// How many names are remembered now.
pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    ul::table.count().get_result(conn)
}
