//! A deviation's fingerprint is unique with its case (migration
//! 2026-12-06-000022): the migration keeps every deviation and every row
//! that refers to one, the uniqueness still holds, and on SQLite a
//! rebuild that finds a broken reference changes nothing.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use svu_vakt::store::DbConn;

use crate::helpers::{revert_through, token, Backend, TestApp};
use svu_vakt::store::tokens::Role;

crate::on_both!(the_migration_keeps_every_deviation_and_what_refers_to_it);

#[test]
fn sqlite_a_rebuild_that_finds_a_broken_reference_changes_nothing() {
    a_rebuild_that_finds_a_broken_reference_changes_nothing(Backend::Sqlite);
}

const MIGRATION: &str = "20261206000022";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    t: String,
}

fn count(conn: &mut DbConn, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

/// Every row of the deviations and of the four tables that refer to them.
fn snapshot(conn: &mut DbConn) -> Vec<String> {
    let mut out = Vec::new();
    for (table, cols) in [
        (
            "deviations",
            "id, fingerprint, rule, case_id, unit, due, status, recipients, scan_id",
        ),
        ("deviation_history", "id, deviation_id, actor, to_status"),
        ("deviation_handling", "deviation_id, atgard"),
        ("deviation_comments", "id, deviation_id, text"),
        ("deviation_parties", "deviation_id, unit"),
    ] {
        let rows: Vec<Line> = diesel::sql_query(format!(
            "SELECT CAST(({}) AS TEXT) AS t FROM {table} ORDER BY 1",
            cols.split(", ")
                .map(|c| format!("COALESCE(CAST({c} AS TEXT), '-')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ")
        ))
        .load(conn)
        .unwrap();
        out.extend(rows.into_iter().map(|r| format!("{table}: {}", r.t)));
    }
    out
}

/// A scanned county with a comment, a handling row and a berörd part on
/// one deviation.
fn handled_county(b: Backend) -> (TestApp, i64) {
    let app = crate::handling::county(b);
    let id = app
        .deviations()
        .iter()
        .find(|d| d.unit.as_deref() == Some("AVD1"))
        .unwrap()
        .id;
    let h = token(&app.pool, Role::Handlaggare, Some("AVD1"));
    let r = app.request(
        "POST",
        &format!("/api/v1/deviations/{id}/comments"),
        Some(&h),
        Some(("application/json", r#"{"text":"Ringde avdelningschefen"}"#)),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    diesel::sql_query(format!(
        "INSERT INTO deviation_handling (deviation_id, atgard, changed_at) VALUES ({id}, 'Rutinen ses över', '2026-05-21 08:00:00')"
    ))
    .execute(conn)
    .unwrap();
    // A berörd part: its rows go with their deviation (ON DELETE CASCADE),
    // which a rebuild with foreign keys on would have done.
    diesel::sql_query(format!(
        "INSERT INTO deviation_parties (deviation_id, unit) VALUES ({id}, 'K1') ON CONFLICT DO NOTHING"
    ))
    .execute(conn)
    .unwrap();
    (app, id)
}

/// An insert of the deviation `id` again (a new id, the same case and
/// fingerprint), or of a case-less one with `fingerprint`.
fn insert_again(conn: &mut DbConn, id: i64, case_less: Option<&str>) -> QueryResult<usize> {
    let (fingerprint, case_id) = match case_less {
        Some(f) => (format!("'{f}'"), "NULL"),
        None => ("fingerprint".to_string(), "case_id"),
    };
    diesel::sql_query(format!(
        "INSERT INTO deviations (fingerprint, rule, case_id, unit, due, finding_status, status, sannolikhet, konsekvens, recipients, scan_id, created_at) \
         SELECT {fingerprint}, rule, {case_id}, unit, due, finding_status, status, sannolikhet, konsekvens, recipients, scan_id, created_at \
         FROM deviations WHERE id = {id}"
    ))
    .execute(conn)
}

fn the_migration_keeps_every_deviation_and_what_refers_to_it(b: Backend) {
    let (app, id) = handled_county(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let before = snapshot(conn);
    for table in [
        "deviations",
        "deviation_history",
        "deviation_handling",
        "deviation_comments",
        "deviation_parties",
    ] {
        assert!(
            before.iter().any(|r| r.starts_with(&format!("{table}: "))),
            "{table} has rows to keep: {before:?}"
        );
    }
    revert_through(conn, b, MIGRATION);
    assert_eq!(snapshot(conn), before, "the way back keeps every row");
    // The newest deviation deleted by hand: its id is never given again.
    let newest = count(conn, "SELECT max(id) AS n FROM deviations");
    diesel::sql_query(format!("DELETE FROM deviation_history WHERE deviation_id = {newest}"))
        .execute(conn)
        .unwrap();
    diesel::sql_query(format!("DELETE FROM deviations WHERE id = {newest}"))
        .execute(conn)
        .unwrap();
    let before = snapshot(conn);
    svu_vakt::store::migrate(conn).unwrap();
    assert_eq!(snapshot(conn), before, "the migration keeps every row");

    // The same case and fingerprint again is refused; so is a case-less
    // fingerprint twice. A new deviation is still filed.
    let refused = insert_again(conn, id, None).unwrap_err().to_string();
    assert!(refused.to_lowercase().contains("unique"), "{refused}");
    assert_eq!(insert_again(conn, id, Some("bemanning-x")).unwrap(), 1);
    assert!(
        count(conn, "SELECT max(id) AS n FROM deviations") > newest,
        "the id of the deleted deviation given again"
    );
    let refused = insert_again(conn, id, Some("bemanning-x")).unwrap_err().to_string();
    assert!(refused.to_lowercase().contains("unique"), "{refused}");
    // The references still hold: a comment on no deviation is refused,
    // and the scan and the deviation's page work on the rebuilt table.
    let orphan = diesel::sql_query(
        "INSERT INTO deviation_comments (deviation_id, at, actor, text) VALUES (999999, '2026-05-21 08:00:00', 'x', 'y')",
    )
    .execute(conn);
    assert!(orphan.is_err(), "a comment on no deviation was stored");
    drop(c);
    assert_eq!(app.scan("2026-05-22T00:00:00+02:00").status, 200);
    let page = app.get(&format!("/api/v1/deviations/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["comments"][0]["text"], "Ringde avdelningschefen");
}

/// A reference that points nowhere (written with foreign keys off) stops
/// the rebuild before its commit: the old table and its rows are there,
/// the connection is out of the migration's transaction with foreign keys
/// on, and once the reference is mended the migration runs.
fn a_rebuild_that_finds_a_broken_reference_changes_nothing(b: Backend) {
    let (app, _) = handled_county(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    revert_through(conn, b, MIGRATION);
    let before = snapshot(conn);
    diesel::sql_query("PRAGMA foreign_keys = OFF").execute(conn).unwrap();
    diesel::sql_query(
        "INSERT INTO deviation_comments (deviation_id, at, actor, text) VALUES (999999, '2026-05-21 08:00:00', 'x', 'y')",
    )
    .execute(conn)
    .unwrap();
    diesel::sql_query("PRAGMA foreign_keys = ON").execute(conn).unwrap();

    let err = svu_vakt::store::migrate(conn).unwrap_err().to_string();
    assert!(err.contains("migreringen misslyckades"), "{err}");
    let schema: Line = diesel::sql_query("SELECT sql AS t FROM sqlite_master WHERE name = 'deviations'")
        .get_result(conn)
        .unwrap();
    assert!(schema.t.contains("fingerprint TEXT NOT NULL UNIQUE"), "{}", schema.t);
    assert_eq!(
        count(
            conn,
            "SELECT count(*) AS n FROM sqlite_master WHERE name = 'deviations_new'"
        ),
        0
    );
    assert_eq!(count(conn, "SELECT foreign_keys AS n FROM pragma_foreign_keys"), 1);
    let mut now = snapshot(conn);
    now.retain(|r| !r.contains("|y"));
    assert_eq!(now, before, "nothing changed");

    diesel::sql_query("DELETE FROM deviation_comments WHERE deviation_id = 999999")
        .execute(conn)
        .unwrap();
    assert!(svu_vakt::store::migrate(conn).unwrap().contains(&MIGRATION.to_string()));
    assert_eq!(snapshot(conn), before);

    // Run again, as a second process that listed it as pending before the
    // first ran it would: it stops before touching the table.
    use diesel::migration::MigrationSource;
    use diesel_migrations::MigrationHarness;
    let DbConn::Sqlite(sqlite) = conn else { unreachable!() };
    let all = MigrationSource::<diesel::sqlite::Sqlite>::migrations(&svu_vakt::store::SQLITE_MIGRATIONS).unwrap();
    let again = all
        .iter()
        .find(|m| m.name().version().to_string() == MIGRATION)
        .unwrap();
    let err = sqlite.run_migration(again.as_ref()).unwrap_err().to_string();
    assert!(err.contains("CHECK"), "{err}");
    let _ = diesel::connection::SimpleConnection::batch_execute(sqlite, "ROLLBACK; PRAGMA foreign_keys = ON");
    assert_eq!(snapshot(conn), before, "nothing rebuilt");
}
