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
    /// Only through [`cached!`]: two texts under one `Q` would share one
    /// prepared statement, and the second would run the first's.
    pub(in crate::store) fn new(sql: &'static str, binds: &'a [&'a dyn Bind]) -> Cached<'a, Q> {
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

/// A row of a multi-row [`Rows`] statement: its values bound in its
/// columns' order, separated by `, ` (no parentheses).
pub trait Row {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()>;
}

/// `bind!(out; Text => &row.a, Nullable<Timestamp> => &row.b, …)`: the
/// values of a [`Row`], in order.
macro_rules! bind {
    ($out:ident; $first_ty:ty => $first:expr $(, $ty:ty => $value:expr)* $(,)?) => {{
        $out.push_bind_param::<$first_ty, _>($first)?;
        $(
            $out.push_sql(", ");
            $out.push_bind_param::<$ty, _>($value)?;
        )*
        Ok(())
    }};
}
pub(crate) use bind;

/// `N` rows inserted by one statement: `head` (the statement up to
/// `VALUES `), then each row's values in parentheses. Prepared once per
/// connection and per `N`, found in diesel's cache by `Q`, a type made at
/// the call site of [`insert_rows!`] (as [`cached!`]). A statement per row
/// spent a fifth of a first full scan's inserts on starting the statement
/// and opening its table and indexes.
pub struct Rows<'a, Q, R, const N: usize> {
    head: &'static str,
    rows: &'a [R; N],
    site: PhantomData<Q>,
}

impl<'a, Q, R, const N: usize> Rows<'a, Q, R, N> {
    /// Only through [`insert_rows!`], as [`Cached::new`].
    pub(in crate::store) fn new(head: &'static str, rows: &'a [R; N]) -> Rows<'a, Q, R, N> {
        Rows {
            head,
            rows,
            site: PhantomData,
        }
    }
}

impl<Q, R: Row, const N: usize> QueryFragment<Sqlite> for Rows<'_, Q, R, N> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(self.head);
        for (i, row) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            row.bind(&mut out)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

/// Keyed by the call site and the number of rows: one text each.
impl<Q: 'static, R, const N: usize> QueryId for Rows<'_, Q, R, N> {
    type QueryId = (Q, [(); N]);
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q, R, const N: usize, Conn> RunQueryDsl<Conn> for Rows<'_, Q, R, N> {}

/// Rows per multi-row statement of [`insert_rows!`].
pub const ROWS: usize = 32;

/// `insert_rows!(conn, "INSERT INTO t (a, b) VALUES ", &rows)`: every row
/// of a slice, in statements of [`ROWS`] rows and the rest of one row,
/// each prepared once. The rows inserted.
macro_rules! insert_rows {
    ($conn:expr, $head:literal, $rows:expr $(,)?) => {{
        /// The cache key of this call site's statements.
        struct Site;
        $crate::store::cached::insert_all::<Site, _>($conn, $head, $rows)
    }};
}
pub(crate) use insert_rows;

/// What [`insert_rows!`] runs, `Q` its call site's key.
pub(in crate::store) fn insert_all<Q: 'static, R: Row>(
    c: &mut diesel::SqliteConnection,
    head: &'static str,
    rows: &[R],
) -> QueryResult<usize> {
    let mut n = 0;
    let mut whole = rows.chunks_exact(ROWS);
    for chunk in whole.by_ref() {
        let block = <&[R; ROWS]>::try_from(chunk)
            .map_err(|_| diesel::result::Error::QueryBuilderError("fel antal rader i ett block".into()))?;
        n += Rows::<Q, R, ROWS>::new(head, block).execute(c)?;
    }
    for row in whole.remainder() {
        n += Rows::<Q, R, 1>::new(head, std::array::from_ref(row)).execute(c)?;
    }
    Ok(n)
}

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

    /// A database in memory with the table `create`, and the count of the
    /// statements its connection puts in its cache.
    fn counting(create: &str) -> (SqliteConnection, Arc<Mutex<usize>>) {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        let cached = Arc::new(Mutex::new(0));
        c.set_instrumentation(Prepares(cached.clone()));
        diesel::sql_query(create).execute(&mut c).unwrap();
        (c, cached)
    }

    #[test]
    fn a_cached_statement_is_prepared_once_and_binds_its_values_in_order() {
        let (mut c, cached) = counting("CREATE TABLE t (x INTEGER, y TEXT)");
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

    /// A row of the test table `t (x, y)`.
    struct T(i32, Option<String>);

    impl Row for T {
        fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
            use diesel::sql_types::Nullable;
            bind!(out; Integer => &self.0, Nullable<Text> => &self.1)
        }
    }

    #[test]
    fn rows_are_inserted_in_blocks_and_one_by_one_each_statement_prepared_once() {
        let (mut c, cached) = counting("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x INTEGER, y TEXT)");
        let rows: Vec<T> = (0..(2 * ROWS as i32 + 6))
            .map(|x| T(x, (x % 3 != 0).then(|| format!("y{x}"))))
            .collect();
        for part in [&rows[..], &rows[..ROWS + 1]] {
            let n = insert_rows!(&mut c, "INSERT INTO t (x, y) VALUES ", part).unwrap();
            assert_eq!(n, part.len());
        }
        assert_eq!(*cached.lock().unwrap(), 2, "the block's statement and the one row's");
        #[derive(diesel::QueryableByName, PartialEq, Debug)]
        struct Stored {
            #[diesel(sql_type = Integer)]
            x: i32,
            #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
            y: Option<String>,
        }
        let stored: Vec<Stored> = diesel::sql_query("SELECT x, y FROM t ORDER BY id")
            .load(&mut c)
            .unwrap();
        let expected: Vec<Stored> = rows
            .iter()
            .chain(&rows[..ROWS + 1])
            .map(|T(x, y)| Stored { x: *x, y: y.clone() })
            .collect();
        assert_eq!(stored, expected, "every row, its values in their columns, in order");
        assert_eq!(
            insert_rows!(&mut c, "INSERT INTO t (x, y) VALUES ", &rows[..0]).unwrap(),
            0
        );
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
