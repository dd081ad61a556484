//! An event names an ingest batch that exists, on both databases: SQLite
//! by its foreign key, PostgreSQL by statement-level triggers that took its
//! place (migration `event_batch_links`: the row-level key was two thirds
//! of an import's COPY there). Each rule the key kept is tried as an
//! operator's hand would break it, and `remove-batch` beside an import.

use std::sync::mpsc;
use std::time::Duration;

use svu_vakt::store::DbConn;

use crate::core::{im_missing, UNITS};
use crate::deviation_links::{count, refused, run, waits_then_refused};
use crate::helpers::{spawn_app, Backend, TestApp};

crate::on_both!(
    an_event_without_its_batch_is_refused,
    a_batch_with_events_is_kept_and_remove_batch_takes_both,
    a_delete_beside_an_event_being_added_waits_for_it_and_is_refused,
    remove_batch_beside_an_import_removes_only_its_own_and_on_postgres_does_not_wait
);

/// Two batches of one case each (their ids, in order).
fn county(b: Backend) -> (TestApp, Vec<i64>) {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    for (case, day) in [("C1", 1), ("C2", 2)] {
        assert_eq!(app.post_events(&(im_missing(case, day) + "\n")).status, 200);
    }
    let ids = batch_ids(&mut app.conn());
    assert_eq!(ids.len(), 2, "a batch for each post");
    (app, ids)
}

fn batch_ids(conn: &mut DbConn) -> Vec<i64> {
    use diesel::prelude::*;
    use svu_vakt::store::schema::ingest_batches;
    ingest_batches::table
        .select(ingest_batches::id)
        .order(ingest_batches::id)
        .load(conn)
        .unwrap()
}

/// An event row written by hand into `batch`.
fn event(id: &str, batch: i64) -> String {
    format!(
        "INSERT INTO events (id, case_id, event_type, at, at_offset, unit, to_units, content_hash, raw, batch_id, received_at) \
         VALUES ('{id}', 'C9', 'inskrivning', '2026-05-09 06:00:00', 7200, 'AVD1', '[]', 'x', '{{}}', {batch}, '2026-05-20 00:00:00')"
    )
}

fn events(conn: &mut DbConn) -> i64 {
    count(conn, "SELECT count(*) AS n FROM events")
}

fn an_event_without_its_batch_is_refused(b: Backend) {
    let (app, ids) = county(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let (known, missing) = (ids[0], ids[1] + 1000);
    let stored = events(conn);

    let mixed = format!(
        "{}, ('H2', 'C9', 'inskrivning', '2026-05-09 06:00:00', 7200, 'AVD1', '[]', 'x', '{{}}', {missing}, '2026-05-20 00:00:00')",
        event("H1", known)
    );
    assert!(refused(conn, &mixed), "an event of no batch, beside one of a batch");
    let moved = format!("UPDATE events SET batch_id = {missing} WHERE batch_id = {known}");
    assert!(refused(conn, &moved), "an event moved to no batch");
    let renumbered = format!("UPDATE ingest_batches SET id = {missing} WHERE id = {known}");
    assert!(refused(conn, &renumbered), "a batch renumbered away from its events");
    assert_eq!(events(conn), stored, "nothing of the refused statements is stored");

    assert_eq!(
        run(conn, &event("H1", known)).unwrap(),
        1,
        "an event of a batch that exists"
    );
}

fn a_batch_with_events_is_kept_and_remove_batch_takes_both(b: Backend) {
    let (app, ids) = county(b);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    assert!(
        refused(conn, &format!("DELETE FROM ingest_batches WHERE id = {}", ids[0])),
        "a batch with events cannot be deleted"
    );
    assert_eq!(batch_ids(conn), ids);
    if b == Backend::Postgres {
        assert!(
            refused(conn, "TRUNCATE ingest_batches"),
            "the batches cannot be truncated from under their events"
        );
        assert_eq!(batch_ids(conn), ids);
    }

    assert_eq!(svu_vakt::store::events::remove_batches(conn, &[ids[0]]).unwrap(), 1);
    assert_eq!(batch_ids(conn), vec![ids[1]], "the batch went with its events");
    assert_eq!(events(conn), 1, "the other batch's event is kept");
}

/// An event is being added to a batch (a transaction still open) while an
/// operator deletes the batch by hand: the delete waits for it and is
/// refused, as the foreign key's lock made it do.
fn a_delete_beside_an_event_being_added_waits_for_it_and_is_refused(b: Backend) {
    let (app, ids) = county(b);
    let mut writer = app.conn();
    let deleter = app.conn();
    let gone = ids[1];
    run(&mut writer, &format!("DELETE FROM events WHERE batch_id = {gone}")).unwrap();

    begin(&mut writer, b);
    assert_eq!(run(&mut writer, &event("H1", gone)).unwrap(), 1);
    let delete = format!("DELETE FROM ingest_batches WHERE id = {gone}");
    waits_then_refused(&mut writer, deleter, delete, "the event is there now");
    assert_eq!(batch_ids(&mut writer), ids);
}

/// `remove-batch` while another batch is being stored (its transaction
/// open): on PostgreSQL it goes on beside the import (the link locks only
/// the batches being added to), on SQLite it waits for the write lock;
/// either way it takes only the batch it names.
fn remove_batch_beside_an_import_removes_only_its_own_and_on_postgres_does_not_wait(b: Backend) {
    let (app, ids) = county(b);
    let mut writer = app.conn();
    let mut remover = app.conn();
    begin(&mut writer, b);
    assert_eq!(run(&mut writer, &event("H1", ids[1])).unwrap(), 1);
    let (done, result) = mpsc::channel();
    let first = ids[0];
    let remove = std::thread::spawn(move || {
        let _ = done.send(svu_vakt::store::events::remove_batches(&mut remover, &[first]));
    });
    let removed = match b {
        Backend::Postgres => result
            .recv_timeout(Duration::from_secs(10))
            .expect("removed while the import's transaction is open"),
        Backend::Sqlite => {
            std::thread::sleep(Duration::from_millis(500));
            assert!(result.try_recv().is_err(), "the removal waits for the write lock");
            run(&mut writer, "COMMIT").unwrap();
            result.recv_timeout(Duration::from_secs(20)).expect("the removal ended")
        }
    };
    if b == Backend::Postgres {
        run(&mut writer, "COMMIT").unwrap();
    }
    remove.join().unwrap();
    assert_eq!(removed.expect("removed"), 1, "the first batch's one event");
    assert_eq!(batch_ids(&mut writer), vec![ids[1]]);
    assert_eq!(
        events(&mut writer),
        2,
        "the second batch's events, the one added among them"
    );
}

fn begin(conn: &mut DbConn, b: Backend) {
    let sql = match b {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    run(conn, sql).unwrap();
}
