//! A file's batches as `store::file_batches` stores them, on a real
//! database: on PostgreSQL every other batch on a second connection
//! (`file_batches::beside`) while the import's own stores the next. What
//! the caller hears must be what was committed, in the file's order, so a
//! refused import can take back all of it.

use svu_vakt::domain::patient::{PatientHasher, Secret};
use svu_vakt::domain::IngestEvent;
use svu_vakt::store::events::{BatchOutcome, FileContext, StoreBatchError};
use svu_vakt::store::file_batches::FileBatches;

use crate::helpers::{spawn_app, Backend, TEST_KEY};

crate::on_both!(a_conflict_beside_takes_back_what_both_connections_committed);

/// The first case of the events of batch `id`.
fn first_case(conn: &mut svu_vakt::store::DbConn, id: i64) -> String {
    use diesel::prelude::*;
    use svu_vakt::store::schema::events;
    events::table
        .filter(events::batch_id.eq(id))
        .select(diesel::dsl::min(events::case_id))
        .first::<Option<String>>(conn)
        .unwrap()
        .unwrap_or_default()
}

/// `n` events of cases `{prefix}0…`, one each; `extra` lines after them.
fn batch(prefix: &str, n: usize, extra: &[&str]) -> Vec<IngestEvent> {
    let mut lines: Vec<String> = (0..n)
        .map(|i| {
            format!(r#"{{"id":"{prefix}{i}","case":"{prefix}{i}","type":"bedomning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}}"#)
        })
        .collect();
    lines.extend(extra.iter().map(|l| l.to_string()));
    let hasher = PatientHasher::new(Secret::new(TEST_KEY.as_bytes().to_vec()));
    svu_vakt::ingest::parse_events(&lines.join("\n"), &hasher).expect("valid lines")
}

/// Four batches, the third with an id stored with other content: on
/// PostgreSQL the third goes to the connection beside while the fourth is
/// stored here, so the fourth is committed and heard of before the third's
/// conflict is; on SQLite the group of the first three rolls back at the
/// third and the first two are stored again one by one. Either way what was heard of is all that is stored, and taking
/// it back leaves only the event stored before.
fn a_conflict_beside_takes_back_what_both_connections_committed(b: Backend) {
    let app = spawn_app(b);
    let stored = r#"{"id":"X1","case":"X","type":"bedomning","at":"2026-05-01T08:00:00+02:00","unit":"AVD1"}"#;
    assert_eq!(app.post_events(stored).status, 200);
    let other = r#"{"id":"X1","case":"X","type":"bedomning","at":"2026-05-02T08:00:00+02:00","unit":"AVD1"}"#;
    let batches = [
        batch("A", 300, &[]),
        batch("B", 300, &[]),
        batch("C", 300, &[other]),
        batch("D", 300, &[]),
    ];
    let mut conn = app.conn();
    let mut heard: Vec<BatchOutcome> = Vec::new();
    let mut refused = None;
    {
        let mut writer = FileBatches::new(&mut conn, FileContext::of_new_ids("import")).with_spare(Some(app.conn()));
        for batch in batches {
            if let Err(e) = writer.store(batch, &mut |o| heard.push(o)) {
                refused = Some(e);
                break;
            }
        }
        if refused.is_none() {
            if let Err(e) = writer.finish(&mut |o| heard.push(o)) {
                refused = Some(e);
            }
        }
        writer.rolled_back(&mut |o| heard.push(o));
    }
    match refused {
        Some(StoreBatchError::Conflict(c)) => assert_eq!(c[0].id, "X1", "{c:?}"),
        other => panic!("the stored id's other content refused: {other:?}"),
    }
    let ids: Vec<i64> = heard.iter().filter_map(|o| o.batch).collect();
    let stored_now: usize = heard.iter().map(|o| o.stored).sum();
    assert_eq!(
        app.event_count(),
        1 + stored_now as i64,
        "what was heard of is what is stored"
    );
    let first_cases: Vec<String> = ids.iter().map(|id| first_case(&mut conn, *id)).collect();
    match b {
        // A and B, then D stored here beside C's failure.
        Backend::Postgres => assert_eq!(first_cases, ["A0", "B0", "D0"], "{heard:?}"),
        // The group of A, B and C failed on the stored id; A and B were
        // stored again one by one, C refused.
        Backend::Sqlite => assert_eq!(first_cases, ["A0", "B0"], "{heard:?}"),
    }
    svu_vakt::store::events::remove_batches(&mut conn, &ids).unwrap();
    assert_eq!(app.event_count(), 1, "taken back, the stored event left");
}
