//! The one place with backend-specific code: what `MultiConnection` cannot
//! express portably (multi-row inserts). Each function matches on the
//! connection and runs the same diesel query on the inner connection.

use diesel::prelude::*;

use super::cases::NewCase;
use super::events::NewEvent;
use super::schema::{cases, events};
use super::DbConn;

/// Rows per INSERT: 14 columns × 500 stays far below SQLite's variable limit.
const CHUNK: usize = 500;

pub fn insert_events(conn: &mut DbConn, rows: &[NewEvent<'_>]) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in rows.chunks(CHUNK) {
        n += match conn {
            DbConn::Sqlite(c) => diesel::insert_into(events::table).values(chunk).execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(events::table).values(chunk).execute(c)?,
        };
    }
    Ok(n)
}

pub fn insert_cases(conn: &mut DbConn, rows: &[NewCase<'_>]) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in rows.chunks(CHUNK) {
        n += match conn {
            DbConn::Sqlite(c) => diesel::insert_into(cases::table).values(chunk).execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(cases::table).values(chunk).execute(c)?,
        };
    }
    Ok(n)
}

/// Claims up to `limit` unsent mails for `lease_until`. PostgreSQL: rows
/// locked by another instance are skipped (`FOR UPDATE SKIP LOCKED`), so no
/// mail is claimed twice. SQLite: each row is taken by a conditional update.
pub fn claim_mail(
    conn: &mut DbConn,
    now: chrono::NaiveDateTime,
    lease_until: chrono::NaiveDateTime,
    limit: i64,
    respect_backoff: bool,
) -> QueryResult<Vec<super::deviations::MailRow>> {
    use super::schema::outbox::dsl as o;
    let ids: Vec<i64> = match conn {
        DbConn::Pg(c) => {
            #[derive(diesel::QueryableByName)]
            struct Id {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
            }
            let backoff = if respect_backoff {
                "AND next_attempt_at <= $2"
            } else {
                ""
            };
            let sql = format!(
                "UPDATE outbox SET claimed_until = $1 WHERE id IN (SELECT id FROM outbox \
                 WHERE sent_at IS NULL AND cancelled_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2) \
                 {backoff} ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id"
            );
            let rows: Vec<Id> = diesel::sql_query(sql)
                .bind::<diesel::sql_types::Timestamp, _>(lease_until)
                .bind::<diesel::sql_types::Timestamp, _>(now)
                .bind::<diesel::sql_types::BigInt, _>(limit)
                .load(c)?;
            rows.into_iter().map(|r| r.id).collect()
        }
        DbConn::Sqlite(c) => {
            let mut q = o::outbox
                .filter(o::sent_at.is_null())
                .filter(o::cancelled_at.is_null())
                .filter(o::claimed_until.is_null().or(o::claimed_until.lt(now)))
                .into_boxed();
            if respect_backoff {
                q = q.filter(o::next_attempt_at.le(now));
            }
            let candidates: Vec<i64> = q.select(o::id).order(o::id).limit(limit).load(c)?;
            let mut ids = Vec::new();
            for id in candidates {
                let n = diesel::update(
                    o::outbox
                        .filter(o::id.eq(id))
                        .filter(o::sent_at.is_null())
                        .filter(o::claimed_until.is_null().or(o::claimed_until.lt(now))),
                )
                .set(o::claimed_until.eq(lease_until))
                .execute(c)?;
                if n == 1 {
                    ids.push(id);
                }
            }
            ids
        }
    };
    o::outbox.filter(o::id.eq_any(&ids)).order(o::id).load(conn)
}

/// The key of the scan's PostgreSQL advisory lock ("svuvakt1").
const SCAN_LOCK_KEY: i64 = 0x7376_7576_616b_7431;

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// Takes the scan lock for `holder`. PostgreSQL: a session advisory lock on
/// this connection, released when it closes, so a killed scan never blocks
/// the next. SQLite: a lease row, taken over when it has expired or when its
/// holder was a process on this machine that no longer runs.
pub fn try_scan_lock(conn: &mut DbConn, holder: &str, lease_until: chrono::NaiveDateTime) -> QueryResult<bool> {
    use super::schema::scan_lock::dsl as l;
    match conn {
        DbConn::Pg(c) => {
            let r: Locked =
                diesel::sql_query(format!("SELECT pg_try_advisory_lock({SCAN_LOCK_KEY}) AS locked")).get_result(c)?;
            Ok(r.locked)
        }
        DbConn::Sqlite(c) => c.immediate_transaction(|c| {
            let (current, expires): (Option<String>, Option<chrono::NaiveDateTime>) =
                l::scan_lock.find(1).select((l::holder, l::expires_at)).first(c)?;
            let free = match (current, expires) {
                (None, _) => true,
                (Some(h), Some(e)) => e < super::now() || holder_is_dead(&h),
                (Some(h), None) => holder_is_dead(&h),
            };
            if free {
                diesel::update(l::scan_lock.find(1))
                    .set((l::holder.eq(holder), l::expires_at.eq(lease_until)))
                    .execute(c)?;
            }
            Ok(free)
        }),
    }
}

pub fn release_scan_lock(conn: &mut DbConn, holder: &str) -> QueryResult<()> {
    use super::schema::scan_lock::dsl as l;
    match conn {
        DbConn::Pg(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_unlock({SCAN_LOCK_KEY})")).execute(c)?;
        }
        DbConn::Sqlite(c) => {
            diesel::update(l::scan_lock.filter(l::id.eq(1)).filter(l::holder.eq(holder)))
                .set((
                    l::holder.eq(None::<String>),
                    l::expires_at.eq(None::<chrono::NaiveDateTime>),
                ))
                .execute(c)?;
        }
    }
    Ok(())
}

/// Extends a SQLite lease while a long scan runs (no-op on PostgreSQL).
pub fn renew_scan_lock(conn: &mut DbConn, holder: &str, lease_until: chrono::NaiveDateTime) -> QueryResult<()> {
    use super::schema::scan_lock::dsl as l;
    if let DbConn::Sqlite(c) = conn {
        diesel::update(l::scan_lock.filter(l::id.eq(1)).filter(l::holder.eq(holder)))
            .set(l::expires_at.eq(lease_until))
            .execute(c)?;
    }
    Ok(())
}

/// `host:pid:nonce` of a holder on this machine whose process is gone.
fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    host == this_host() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
