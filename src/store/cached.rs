//! A statement of fixed text that diesel keeps prepared on SQLite.
//!
//! Diesel prepares a `sql_query` anew every time it runs (it cannot know
//! that the text is fixed), and a multi-row INSERT too (its text depends on
//! the row count). On the scan's one writing thread that preparing was a
//! sixth of a first full scan: one UPDATE per case, one multi-row INSERT
//! per table and chunk. A [`Cached`] statement, made by [`cached!`], tells
//! diesel's statement cache that its text is the same each time: it is
//! prepared once per connection and only bound and stepped after that. The
//! cache finds it by a type of its own, made at the macro's call site (one
//! text literal per site): keyed by its text, diesel built the text and
//! hashed it on every run, a twentieth of the statements' cost.

use std::marker::PhantomData;

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::HasSqlType;
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl};

/// One bound value of SQL type `ST`.
pub struct Param<ST, V>(V, PhantomData<ST>);

/// `param::<Text, _>(value)`: a value for the next `?` of a [`Cached`] text.
pub fn param<ST, V>(value: V) -> Param<ST, V> {
    Param(value, PhantomData)
}

/// A [`Param`] of any SQL type, for the list a [`Cached`] statement binds.
pub trait Bind {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()>;
}

impl<ST, V> Bind for Param<ST, V>
where
    Sqlite: HasSqlType<ST>,
    V: ToSql<ST, Sqlite>,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_bind_param::<ST, V>(&self.0)
    }
}

/// `cached!("… ? …", &[&param::<Text, _>(x), …])`: the text (a literal,
/// one `?` per value, no `?` in a literal of the text) as a [`Cached`]
/// statement whose cache key is a type made here, run like any query.
macro_rules! cached {
    ($sql:literal, $binds:expr $(,)?) => {{
        /// The cache key of this call site's statement.
        struct Site;
        $crate::store::cached::Cached::<Site>::new($sql, $binds)
    }};
}
pub(crate) use cached;

/// A statement of fixed text with its values; `Q` is its cache key, one
/// type per text ([`cached!`] makes one per call site).
pub struct Cached<'a, Q> {
    sql: &'static str,
    binds: &'a [&'a dyn Bind],
    site: PhantomData<Q>,
}

impl<'a, Q> Cached<'a, Q> {
    pub fn new(sql: &'static str, binds: &'a [&'a dyn Bind]) -> Cached<'a, Q> {
        Cached {
            sql,
            binds,
            site: PhantomData,
        }
    }
}

impl<Q> QueryFragment<Sqlite> for Cached<'_, Q> {
    /// The text's pieces between its `?`s, each `?` bound to the next value.
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let mut binds = self.binds.iter();
        for (i, piece) in self.sql.split('?').enumerate() {
            if i > 0 {
                let bind = binds.next().ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(format!("för få värden till {:?}", self.sql).into())
                })?;
                bind.push(&mut out)?;
            }
            out.push_sql(piece);
        }
        if binds.next().is_some() {
            return Err(diesel::result::Error::QueryBuilderError(
                format!("för många värden till {:?}", self.sql).into(),
            ));
        }
        Ok(())
    }
}

/// The statement's type is its cache key: nothing in `walk_ast` marks it
/// unsafe to cache, so diesel keeps it, found without building its text.
impl<Q: 'static> QueryId for Cached<'_, Q> {
    type QueryId = Q;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q, Conn> RunQueryDsl<Conn> for Cached<'_, Q> {}

#[cfg(test)]
mod tests {
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel::sql_types::{BigInt, Integer, Text};
    use diesel::{Connection, SqliteConnection};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Counts the statements put in the connection's cache.
    struct Prepares(Arc<Mutex<usize>>);

    impl Instrumentation for Prepares {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                *self.0.lock().unwrap() += 1;
            }
        }
    }

    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    #[test]
    fn a_cached_statement_is_prepared_once_and_binds_its_values_in_order() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        let cached = Arc::new(Mutex::new(0));
        c.set_instrumentation(Prepares(cached.clone()));
        diesel::sql_query("CREATE TABLE t (x INTEGER, y TEXT)")
            .execute(&mut c)
            .unwrap();
        for x in 0..5 {
            let y = format!("y{x}");
            cached!(
                "INSERT INTO t (x, y) VALUES (?, ?)",
                &[&param::<Integer, _>(x), &param::<Text, _>(y.as_str())]
            )
            .execute(&mut c)
            .unwrap();
        }
        assert_eq!(*cached.lock().unwrap(), 1, "prepared once, then taken from the cache");
        let n: N = diesel::sql_query("SELECT count(*) AS n FROM t WHERE y = 'y' || x")
            .get_result(&mut c)
            .unwrap();
        assert_eq!(n.n, 5, "every run inserted its own values");
        // Another text at another site is a statement of its own, however
        // the two alternate.
        for x in 5..7 {
            cached!("INSERT INTO t (x, y) VALUES (?, 'z')", &[&param::<Integer, _>(x)])
                .execute(&mut c)
                .unwrap();
            cached!("DELETE FROM t WHERE x = ?", &[&param::<Integer, _>(x - 5)])
                .execute(&mut c)
                .unwrap();
        }
        assert_eq!(*cached.lock().unwrap(), 3, "each text prepared once");
        let n: N = diesel::sql_query("SELECT count(*) AS n FROM t WHERE y = 'z' AND x IN (5, 6)")
            .get_result(&mut c)
            .unwrap();
        assert_eq!(n.n, 2);
        let n: N = diesel::sql_query("SELECT count(*) AS n FROM t WHERE x IN (0, 1)")
            .get_result(&mut c)
            .unwrap();
        assert_eq!(n.n, 0, "the other statement deleted its rows");
        // A plain sql_query is never cached.
        diesel::sql_query("INSERT INTO t (x, y) VALUES (9, 'y9')")
            .execute(&mut c)
            .unwrap();
        assert_eq!(*cached.lock().unwrap(), 3);
    }

    #[test]
    fn a_count_of_values_that_does_not_match_the_text_is_an_error_not_a_statement() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(&mut c).unwrap();
        let few = cached!("INSERT INTO t (x) VALUES (?)", &[]).execute(&mut c);
        assert!(format!("{:?}", few.unwrap_err()).contains("för få värden"));
        let many = cached!(
            "INSERT INTO t (x) VALUES (?)",
            &[&param::<Integer, _>(1), &param::<Integer, _>(2)]
        )
        .execute(&mut c);
        assert!(format!("{:?}", many.unwrap_err()).contains("för många värden"));
        let n: N = diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result(&mut c)
            .unwrap();
        assert_eq!(n.n, 0);
    }
}
