//! The one place with backend-specific code: what `MultiConnection` cannot
//! express portably (multi-row inserts, upserts, `BEGIN IMMEDIATE`, row
//! locks, `SKIP LOCKED`, advisory locks). Each function matches on the
//! connection and runs the same query on the inner connection.

use diesel::prelude::*;

use super::cases::NewCase;
use super::events::NewEvent;
use super::schema::{cases, events};
use super::DbConn;

/// Rows per INSERT or per id list: 15 columns × 500 stays far below the
/// bundled SQLite's variable limit (32 766) and PostgreSQL's (65 535).
pub(super) const CHUNK: usize = 500;

/// An event row's values in the columns' order of [`insert_events`].
impl super::cached::Row for NewEvent<'_> {
    fn bind<'b>(&'b self, out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
        super::cached::bind!(out;
            Text => &self.id,
            Nullable<Text> => &self.case_id,
            Text => &self.event_type,
            Timestamp => &self.at,
            Integer => &self.at_offset,
            Text => &self.unit,
            Text => &self.to_units,
            Nullable<Text> => &self.ref_id,
            Nullable<Text> => &self.value,
            Nullable<Text> => &self.patient_hash,
            Text => &self.content_hash,
            Text => &self.raw,
            BigInt => &self.batch_id,
            Timestamp => &self.received_at,
            Nullable<Text> => &self.kommun,
        )
    }
}

/// A batch's event rows: on SQLite in multi-row statements prepared once
/// per connection; PostgreSQL loads them with `COPY … FROM STDIN (FORMAT
/// binary)`, one statement per batch, inside the batch's transaction.
pub fn insert_events(conn: &mut DbConn, rows: &[NewEvent<'_>]) -> QueryResult<usize> {
    match conn {
        // In statements of a fixed number of rows, prepared once: one
        // statement per row spent a third of the insert on finding the
        // cached statement and stepping it. The rows are bound as they are
        // borrowed: diesel's own multi-row statement is cached only for
        // owned rows, and copying every field of every event into owned
        // strings cost a tenth of the insert.
        DbConn::Sqlite(c) => super::cached::insert_rows!(
            c,
            "INSERT INTO events (id, case_id, event_type, at, at_offset, unit, to_units, ref_id, value, \
             patient_hash, content_hash, raw, batch_id, received_at, kommun) VALUES ",
            rows
        ),
        DbConn::Pg(c) => diesel::copy_from(events::table).from_insertable(rows).execute(c),
    }
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

/// Runs `f` in a transaction that may write. On SQLite it is `BEGIN
/// IMMEDIATE`: the write lock is taken when the transaction begins, so a
/// transaction that reads and then writes never fails because another
/// writer committed in between (a deferred transaction cannot upgrade its
/// read snapshot and gets SQLITE_BUSY at once, whatever the busy timeout).
/// Every read-then-write transaction of the service goes through here.
/// Inside one already it is a savepoint.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    begin_write(conn)?;
    match f(conn) {
        Ok(value) => {
            commit(conn)?;
            Ok(value)
        }
        Err(e) => {
            rollback(conn);
            Err(e)
        }
    }
}

type Manager = <DbConn as Connection>::TransactionManager;

/// Begins what [`write_tx`] runs in: `BEGIN IMMEDIATE` on SQLite, a
/// savepoint inside a transaction. For a transaction that spans calls (an
/// import's group of batches); it ends with [`commit`] or [`rollback`].
pub fn begin_write(conn: &mut DbConn) -> QueryResult<()> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        DbConn::Sqlite(c) => match AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE") {
            Ok(()) => Ok(()),
            // Inside a write transaction already: a savepoint, the lock is held.
            Err(diesel::result::Error::AlreadyInTransaction) => Manager::begin_transaction(conn),
            Err(e) => Err(e),
        },
        DbConn::Pg(_) => Manager::begin_transaction(conn),
    }
}

pub fn commit(conn: &mut DbConn) -> QueryResult<()> {
    use diesel::connection::TransactionManager;
    Manager::commit_transaction(conn)
}

/// SQLite rolls a whole transaction back itself after some errors (a full
/// database or disk): then ROLLBACK, or ROLLBACK TO a savepoint, finds none.
/// The first error is the one to report (diesel's own `transaction` would
/// report the rollback's "no such savepoint" instead); a connection whose
/// rollback failed is marked broken and the pool drops it.
pub fn rollback(conn: &mut DbConn) {
    use diesel::connection::TransactionManager;
    if let Err(r) = Manager::rollback_transaction(conn) {
        tracing::warn!(error = %r, "rollback efter en misslyckad skrivtransaktion");
    }
}

/// Locks deviation rows until the transaction ends (PostgreSQL `FOR
/// UPDATE`), so a withdrawal and the marking of a sent mail see each
/// other's change. SQLite's write transactions are serial already.
pub fn lock_deviations(conn: &mut DbConn, ids: &[i64]) -> QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        use super::schema::deviations::dsl as d;
        for chunk in ids.chunks(CHUNK) {
            let _: Vec<i64> = d::deviations
                .filter(d::id.eq_any(chunk))
                .order(d::id)
                .select(d::id)
                .for_update()
                .load(c)?;
        }
    }
    Ok(())
}

/// Locks a user row for the rest of the transaction (PostgreSQL `FOR
/// UPDATE`; SQLite's write transactions are serial already).
pub fn lock_user(conn: &mut DbConn, id: i64) -> QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        use super::schema::users::dsl as u;
        let _: Vec<i64> = u::users.filter(u::id.eq(id)).select(u::id).for_update().load(c)?;
    }
    Ok(())
}

/// Serialises changes of the unit register until the transaction ends
/// (PostgreSQL; SQLite's write transactions are serial already), so two
/// updates that each alone make no loop of parents cannot together.
pub fn lock_units(conn: &mut DbConn) -> QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        diesel::sql_query("LOCK TABLE units IN SHARE ROW EXCLUSIVE MODE").execute(c)?;
    }
    Ok(())
}

/// The key of the transaction lock that keeps a scan's writing of the
/// staffing obligations (`staffing::replace`) and their forgetting
/// (`staffing::forget`: a removed batch, a unit's storhelg flag) apart.
const STAFFING_LOCK_KEY: i64 = 0x7376_752d_7374_6166;

/// Serialises the staffing obligations' writers until the transaction ends
/// (PostgreSQL; SQLite's write transactions are serial already): `replace`
/// leaves the rows it found as they were, so a `forget` committed between
/// its read and its commit would leave the day with only the rows that
/// changed, and the day taken for judged. A statement of its own, so the
/// reads after it see what the other committed.
pub fn lock_staffing(conn: &mut DbConn) -> QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({STAFFING_LOCK_KEY})")).execute(c)?;
    }
    Ok(())
}

/// Makes sure an unknown name's row exists (failed 0) and, on PostgreSQL,
/// locks it for the rest of the transaction, so concurrent failures under
/// one name are counted one by one.
pub fn touch_unknown_login(conn: &mut DbConn, key: &str, at: chrono::NaiveDateTime) -> QueryResult<()> {
    use super::schema::unknown_logins::dsl as ul;
    let row = (ul::name_hash.eq(key), ul::failed.eq(0), ul::touched.eq(at));
    match conn {
        DbConn::Sqlite(c) => {
            diesel::insert_into(ul::unknown_logins)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?;
        }
        DbConn::Pg(c) => {
            diesel::insert_into(ul::unknown_logins)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?;
            let _: Vec<String> = ul::unknown_logins
                .filter(ul::name_hash.eq(key))
                .select(ul::name_hash)
                .for_update()
                .load(c)?;
        }
    }
    Ok(())
}

/// New facts for many deviations, one UPDATE per 500: the rows' values
/// joined as a `VALUES` list (`UPDATE … FROM`, SQLite 3.33 and PostgreSQL
/// alike; only the placeholders differ). Diesel's `update` sets one value
/// for every row it matches, so this one is written out.
pub fn update_facts(conn: &mut DbConn, rows: &[super::deviations::FactsUpdate<'_>]) -> QueryResult<usize> {
    use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
    macro_rules! bound {
        ($query:expr, $chunk:expr) => {{
            let mut q = $query;
            for r in $chunk {
                q = q
                    .bind::<BigInt, _>(r.id)
                    .bind::<Text, _>(r.finding_status)
                    .bind::<Nullable<Timestamp>, _>(r.done_at)
                    .bind::<Nullable<BigInt>, _>(r.late_minutes);
            }
            q
        }};
    }
    let mut n = 0;
    for chunk in rows.chunks(CHUNK) {
        n += match conn {
            DbConn::Sqlite(c) => {
                let sql = facts_sql(chunk.len(), |_| "?".to_string());
                bound!(diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>(), chunk).execute(c)?
            }
            DbConn::Pg(c) => {
                let sql = facts_sql(chunk.len(), |i| format!("${i}"));
                bound!(diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>(), chunk).execute(c)?
            }
        };
    }
    Ok(n)
}

/// `rows` rows of (id, finding_status, done_at, late_minutes), placeholder
/// `mark(i)` for the i-th value (from 1).
fn facts_sql(rows: usize, mark: impl Fn(usize) -> String) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let m: Vec<String> = (1..=4).map(|c| mark(r * 4 + c)).collect();
            format!("({})", m.join(", "))
        })
        .collect();
    format!(
        "WITH v (id, finding_status, done_at, late_minutes) AS (VALUES {}) \
         UPDATE deviations SET finding_status = v.finding_status, done_at = v.done_at, \
         late_minutes = v.late_minutes FROM v WHERE deviations.id = v.id",
        values.join(", ")
    )
}

/// Inserts history lines: on SQLite statements of a fixed number of rows
/// prepared once (`insert_rows!`), on PostgreSQL by COPY.
pub fn insert_history(conn: &mut DbConn, rows: &[super::deviations::NewHistory<'_>]) -> QueryResult<usize> {
    use super::schema::deviation_history as h;
    let mut n = 0;
    match conn {
        DbConn::Sqlite(c) => {
            n = super::cached::insert_rows!(
                c,
                "INSERT INTO deviation_history (deviation_id, at, actor, from_status, to_status, note) VALUES ",
                rows,
            )?;
        }
        // COPY, as events are loaded: a multi-row INSERT was parsed and
        // planned anew for every 500 rows (a twentieth of the server's time
        // in a first full scan), and built as SQL text by the scan.
        DbConn::Pg(c) if !rows.is_empty() => n = diesel::copy_from(h::table).from_insertable(rows).execute(c)?,
        DbConn::Pg(_) => {}
    }
    Ok(n)
}

/// Inserts outbox rows; a Message-ID already there is skipped.
pub fn insert_mail(conn: &mut DbConn, rows: &[super::outbox::NewMail]) -> QueryResult<usize> {
    use super::schema::outbox;
    let mut n = 0;
    for chunk in rows.chunks(CHUNK) {
        n += match conn {
            DbConn::Sqlite(c) => diesel::insert_into(outbox::table)
                .values(chunk)
                .on_conflict(outbox::message_id)
                .do_nothing()
                .execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(outbox::table)
                .values(chunk)
                .on_conflict(outbox::message_id)
                .do_nothing()
                .execute(c)?,
        };
    }
    Ok(n)
}

/// Claims up to `limit` rows of `channel` that are neither sent, cancelled
/// nor failed, for `lease_until`, and returns their ids. PostgreSQL: rows
/// locked by another instance are skipped (`FOR UPDATE SKIP LOCKED`), so no
/// row is claimed twice. SQLite: one write transaction, serial by nature.
/// A webhook row waits while an earlier row of the same deviation is
/// still on its way: a receiver hears of a deviation in the order its
/// notices were queued (the report before its withdrawal or closing).
pub fn claim_mail(
    conn: &mut DbConn,
    channel: super::outbox::Channel,
    now: chrono::NaiveDateTime,
    lease_until: chrono::NaiveDateTime,
    limit: i64,
    respect_backoff: bool,
) -> QueryResult<Vec<i64>> {
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
    let in_order = if channel == super::outbox::Channel::Webhook {
        "AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.channel = o.channel \
         AND e.deviation_ids = o.deviation_ids AND e.id < o.id \
         AND e.sent_at IS NULL AND e.cancelled_at IS NULL AND e.failed_at IS NULL)"
    } else {
        ""
    };
    let sql = |lock: &str| {
        format!(
            "UPDATE outbox SET claimed_until = $1 WHERE id IN (SELECT id FROM outbox o \
             WHERE channel = $4 AND sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL \
             AND (claimed_until IS NULL OR claimed_until < $2) \
             {backoff} {in_order} ORDER BY id LIMIT $3 {lock}) RETURNING id"
        )
    };
    let query = |sql: String| {
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::Timestamp, _>(lease_until)
            .bind::<diesel::sql_types::Timestamp, _>(now)
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .bind::<diesel::sql_types::Text, _>(channel.as_str())
    };
    let rows: Vec<Id> = match conn {
        DbConn::Pg(c) => query(sql("FOR UPDATE SKIP LOCKED")).load(c)?,
        // `?N` is SQLite's numbered parameter, as `$N` is PostgreSQL's.
        DbConn::Sqlite(c) => c.immediate_transaction(|c| query(sql("").replace('$', "?")).load(c))?,
    };
    let mut ids: Vec<i64> = rows.into_iter().map(|r| r.id).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// The key of the scan's PostgreSQL advisory lock ("svuvakt1").
const SCAN_LOCK_KEY: i64 = 0x7376_7576_616b_7431;

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

#[derive(diesel::QueryableByName)]
struct LockedBy {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// Takes the scan lock for `holder`; the holder to renew it with, or None
/// when another has it. PostgreSQL: a session advisory lock on this
/// connection, released when it closes, so a killed scan never blocks the
/// next; its holder is `pg:<backend pid>`. SQLite: a lease row, taken over
/// when it has expired or when its holder was a process on this machine
/// that no longer runs.
pub fn try_scan_lock(
    conn: &mut DbConn,
    holder: &str,
    lease_until: chrono::NaiveDateTime,
) -> QueryResult<Option<String>> {
    use super::schema::scan_lock::dsl as l;
    match conn {
        DbConn::Pg(c) => {
            // One statement: the lock and the session's pid come together, so
            // no moment exists where the lock is held but its holder unknown.
            let r: LockedBy = diesel::sql_query(format!(
                "SELECT pg_try_advisory_lock({SCAN_LOCK_KEY}) AS locked, pg_backend_pid() AS pid"
            ))
            .get_result(c)?;
            Ok(r.locked.then(|| format!("pg:{}", r.pid)))
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
            Ok(free.then(|| holder.to_string()))
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

/// Extends a SQLite lease while a long scan runs; false when this holder
/// no longer has it (it expired and another scan took it over). On
/// PostgreSQL: whether the lock session still holds the advisory lock (it
/// is gone if that session died: a network cut, a restart, a terminated
/// backend). Called inside each chunk's transaction, so a scan that lost
/// its lock commits nothing more.
pub fn renew_scan_lock(conn: &mut DbConn, holder: &str, lease_until: chrono::NaiveDateTime) -> QueryResult<bool> {
    use super::schema::scan_lock::dsl as l;
    match conn {
        DbConn::Sqlite(c) => {
            // Called inside the chunk's write transaction, so nobody takes
            // the lease between this read and the commit. The lease is
            // written at most every five minutes: a chunk that changes
            // nothing else (a re-scan) then commits without a WAL write and
            // its fsync, and every chunk commits with 25 of its 30 minutes left.
            let (current, expires): (Option<String>, Option<chrono::NaiveDateTime>) =
                l::scan_lock.find(1).select((l::holder, l::expires_at)).first(c)?;
            if current.as_deref() != Some(holder) {
                return Ok(false);
            }
            let now = super::now();
            if expires.is_some_and(|e| e > now && e + chrono::Duration::minutes(5) >= lease_until) {
                return Ok(true);
            }
            let n = diesel::update(l::scan_lock.filter(l::id.eq(1)).filter(l::holder.eq(holder)))
                .set(l::expires_at.eq(lease_until))
                .execute(c)?;
            Ok(n == 1)
        }
        DbConn::Pg(c) => {
            let Some(pid) = holder.strip_prefix("pg:").and_then(|p| p.parse::<i32>().ok()) else {
                return Ok(false);
            };
            let key_hi = SCAN_LOCK_KEY >> 32;
            let key_lo = SCAN_LOCK_KEY & 0xffff_ffff;
            let r: Locked = diesel::sql_query(format!(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND pid = $1 AND classid = {key_hi} AND objid = {key_lo} AND objsubid = 1) AS locked"
            ))
            .bind::<diesel::sql_types::Integer, _>(pid)
            .get_result(c)?;
            Ok(r.locked)
        }
    }
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
