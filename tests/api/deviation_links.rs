//! A deviation's berörd parts and history lines name a deviation that
//! exists, on both databases: SQLite by its foreign keys, PostgreSQL by
//! statement-level triggers that took their place (migration
//! `deviation_links`: the row-level keys were a quarter of a first full
//! scan there). Each rule the keys kept is tried here as an operator's
//! hand would break it.

use diesel::prelude::*;
use svu_vakt::store::{DbConn, PooledConn};

use crate::core::{im_missing, UNITS};
use crate::helpers::{spawn_app, Backend, TestApp};

crate::on_both!(
    a_party_or_history_line_without_its_deviation_is_refused,
    a_deviation_with_history_is_kept_and_one_without_takes_its_parties_along,
    a_delete_beside_a_history_line_being_added_waits_for_it_and_is_refused
);

const AS_OF: &str = "2026-05-20T00:00:00+02:00";

/// Three cases without an IM, scanned: deviations, each with history.
fn county(b: Backend) -> TestApp {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    let events: Vec<String> = (1..=3).map(|i| im_missing(&format!("C{i}"), i)).collect();
    assert_eq!(app.post_events(&(events.join("\n") + "\n")).status, 200);
    assert_eq!(app.scan(AS_OF).status, 200);
    app
}

fn ids(conn: &mut DbConn) -> Vec<i64> {
    use svu_vakt::store::schema::deviations;
    deviations::table
        .select(deviations::id)
        .order(deviations::id)
        .load(conn)
        .unwrap()
}

pub(crate) fn count(conn: &mut DbConn, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

pub(crate) fn run(conn: &mut DbConn, sql: &str) -> QueryResult<usize> {
    diesel::sql_query(sql).execute(conn)
}

/// The statement fails as a broken foreign key does (SQLSTATE 23503 on
/// PostgreSQL), not for another reason.
pub(crate) fn refused(conn: &mut DbConn, sql: &str) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match run(conn, sql) {
        Err(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => true,
        other => panic!("{sql}: expected a foreign-key violation, got {other:?}"),
    }
}

fn a_party_or_history_line_without_its_deviation_is_refused(b: Backend) {
    let app = county(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let ids = ids(conn);
    assert!(ids.len() >= 3, "a deviation or more for each case: {ids:?}");
    let (known, missing) = (ids[0], ids[ids.len() - 1] + 1000);
    let parties = count(conn, "SELECT count(*) AS n FROM deviation_parties");
    let history = count(conn, "SELECT count(*) AS n FROM deviation_history");

    let mixed = format!(
        "INSERT INTO deviation_parties (deviation_id, unit) VALUES ({known}, 'NY-ENHET'), ({missing}, 'NY-ENHET')"
    );
    assert!(
        refused(conn, &mixed),
        "a party of no deviation, beside one of a deviation"
    );
    let line = format!(
        "INSERT INTO deviation_history (deviation_id, at, actor, to_status) VALUES ({missing}, '2026-05-20 00:00:00', 'test', 'ny')"
    );
    assert!(refused(conn, &line), "a history line of no deviation");
    let moved = format!("UPDATE deviation_history SET deviation_id = {missing} WHERE deviation_id = {known}");
    assert!(refused(conn, &moved), "history moved to no deviation");
    let renumbered = format!("UPDATE deviations SET id = {missing} WHERE id = {known}");
    assert!(
        refused(conn, &renumbered),
        "a deviation renumbered away from its history"
    );
    assert_eq!(
        (
            count(conn, "SELECT count(*) AS n FROM deviation_parties"),
            count(conn, "SELECT count(*) AS n FROM deviation_history")
        ),
        (parties, history),
        "nothing of the refused statements is stored"
    );

    let good = format!("INSERT INTO deviation_parties (deviation_id, unit) VALUES ({known}, 'NY-ENHET')");
    assert_eq!(run(conn, &good).unwrap(), 1, "a party of a deviation that exists");
}

fn a_deviation_with_history_is_kept_and_one_without_takes_its_parties_along(b: Backend) {
    let app = county(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let ids = ids(conn);
    let (kept, gone) = (ids[0], ids[1]);
    for id in [kept, gone] {
        run(
            conn,
            &format!("INSERT INTO deviation_parties (deviation_id, unit) VALUES ({id}, 'NY-ENHET')"),
        )
        .unwrap();
    }
    let parties_of = |conn: &mut DbConn, id: i64| {
        count(
            conn,
            &format!("SELECT count(*) AS n FROM deviation_parties WHERE deviation_id = {id}"),
        )
    };
    let kept_parties = parties_of(conn, kept);

    assert!(
        refused(conn, &format!("DELETE FROM deviations WHERE id = {kept}")),
        "a deviation with history cannot be deleted"
    );
    assert_eq!(
        count(conn, &format!("SELECT count(*) AS n FROM deviations WHERE id = {kept}")),
        1
    );

    run(
        conn,
        &format!("DELETE FROM deviation_history WHERE deviation_id = {gone}"),
    )
    .unwrap();
    assert_eq!(
        run(conn, &format!("DELETE FROM deviations WHERE id = {gone}")).unwrap(),
        1
    );
    assert_eq!(parties_of(conn, gone), 0, "its parties went with it");
    assert_eq!(
        parties_of(conn, kept),
        kept_parties,
        "the other deviation's parties are untouched"
    );
}

/// A history line is being added to a deviation (a transaction still
/// open) while an operator deletes the deviation by hand: the delete waits
/// for it and is refused, as the foreign key's lock made it do.
fn a_delete_beside_a_history_line_being_added_waits_for_it_and_is_refused(b: Backend) {
    let app = county(b);
    let mut writer = app.conn();
    let deleter = app.conn();
    let gone = ids(&mut writer)[1];
    run(
        &mut writer,
        &format!("DELETE FROM deviation_history WHERE deviation_id = {gone}"),
    )
    .unwrap();

    run(
        &mut writer,
        if b == Backend::Sqlite {
            "BEGIN IMMEDIATE"
        } else {
            "BEGIN"
        },
    )
    .unwrap();
    let line = format!(
        "INSERT INTO deviation_history (deviation_id, at, actor, to_status) VALUES ({gone}, '2026-05-20 00:00:00', 'test', 'ny')"
    );
    assert_eq!(run(&mut writer, &line).unwrap(), 1);
    let delete = format!("DELETE FROM deviations WHERE id = {gone}");
    waits_then_refused(&mut writer, deleter, delete, "the history line is there now");
    assert_eq!(
        count(
            &mut writer,
            &format!("SELECT count(*) AS n FROM deviations WHERE id = {gone}")
        ),
        1
    );
}

/// Runs `delete` on `deleter` while `writer`'s transaction is open: it
/// waits for the transaction, which is then committed, and is refused as
/// a broken foreign key is (`why` it must be).
pub(crate) fn waits_then_refused(writer: &mut DbConn, mut deleter: PooledConn, delete: String, why: &str) {
    use std::time::Duration;
    let (done, result) = std::sync::mpsc::channel();
    let deleting = std::thread::spawn(move || {
        let _ = done.send(run(&mut deleter, &delete));
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(result.try_recv().is_err(), "the delete waits for the open transaction");
    run(writer, "COMMIT").unwrap();
    let deleted = result.recv_timeout(Duration::from_secs(20)).expect("the delete ended");
    deleting.join().unwrap();
    assert!(
        matches!(
            deleted,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        ),
        "refused: {why}: {deleted:?}"
    );
}
