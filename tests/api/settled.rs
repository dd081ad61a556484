//! A case whose findings are the ones the last scan filed is not filed
//! again (`cases.findings_hash`): a full re-scan reads none of its
//! deviations. What can still change what filing would do with the same
//! findings — a backfill from an earlier instant, a person's change of
//! status — has the next scan file the case in full, so a full scan
//! updates and withdraws exactly as it did before the hash existed.

use crate::core::{im_in_time, im_missing, post_scan, UNITS};
use crate::helpers::{spawn_app, Backend, TestApp};

crate::on_both!(
    a_full_rescan_of_the_same_findings_counts_them_and_changes_nothing,
    a_deviation_a_person_reopens_after_its_evidence_came_is_withdrawn_by_the_next_full_scan,
    what_a_backfill_filed_from_an_earlier_instant_is_withdrawn_by_the_next_full_scan,
    a_reopened_deviation_whose_facts_changed_gets_them_from_the_next_full_scan,
);

const IM_RULE: &str = "inskrivningsmeddelande_24h";

fn county(b: Backend) -> TestApp {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    app
}

/// The one deviation of the IM rule for `case`: (id, status, finding status).
fn im_deviation(app: &TestApp, case: &str) -> (i64, String, String) {
    let all: Vec<_> = app
        .deviations()
        .into_iter()
        .filter(|d| d.rule == IM_RULE && d.case_id.as_deref() == Some(case))
        .collect();
    assert_eq!(all.len(), 1, "one IM deviation for {case}: {all:?}");
    (all[0].id, all[0].status.to_string(), all[0].finding_status.clone())
}

fn a_full_rescan_of_the_same_findings_counts_them_and_changes_nothing(b: Backend) {
    let app = county(b);
    let events = format!("{}\n{}\n", im_missing("C1", 4), im_missing("C2", 5));
    assert_eq!(app.post_events(&events).status, 200);
    let first = post_scan(&app, "2026-05-10T00:00:00+02:00", true);
    let found = first["scan"]["findings"].as_u64().unwrap();
    assert!(found >= 2, "{first}");
    let before = app.deviations();

    let again = post_scan(&app, "2026-05-10T01:00:00+02:00", true);
    assert_eq!(
        again["scan"]["findings"].as_u64(),
        Some(found),
        "the same findings counted: {again}"
    );
    for n in ["filed", "updated", "withdrawn"] {
        assert_eq!(again["scan"][n], 0, "{n}: {again}");
    }
    assert_eq!(
        format!("{:?}", app.deviations()),
        format!("{before:?}"),
        "not a deviation touched"
    );

    // The IM of C1 comes, a day late: its finding changed, its deviation follows.
    let late = r#"{"id":"C1-im","case":"C1","type":"inskrivningsmeddelande","at":"2026-05-06T08:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#;
    assert_eq!(app.post_events(late).status, 200);
    let r = post_scan(&app, "2026-05-10T02:00:00+02:00", true);
    assert_eq!(r["scan"]["updated"], 1, "{r}");
    assert_eq!(im_deviation(&app, "C1").2, "late");
    assert_eq!(im_deviation(&app, "C2").2, "missing");
}

fn change(app: &TestApp, id: i64, body: serde_json::Value) {
    let r = app.request(
        "POST",
        &format!("/api/v1/deviations/{id}/status"),
        Some(&app.admin.clone()),
        Some(("application/json", &body.to_string())),
    );
    assert_eq!(r.status, 200, "{body}: {}", r.body);
}

fn a_deviation_a_person_reopens_after_its_evidence_came_is_withdrawn_by_the_next_full_scan(b: Backend) {
    let app = county(b);
    assert_eq!(app.post_events(&im_missing("C1", 4)).status, 200);
    post_scan(&app, "2026-05-06T00:00:00+02:00", true);
    let (id, _, _) = im_deviation(&app, "C1");
    change(&app, id, serde_json::json!({"status": "mottagen"}));
    change(&app, id, serde_json::json!({"status": "utreds"}));
    change(
        &app,
        id,
        serde_json::json!({"status": "atgardad", "atgard": "Rutinen genomgången"}),
    );
    change(&app, id, serde_json::json!({"status": "avslutad"}));

    // The IM was sent in time after all: a closed deviation stays closed.
    assert_eq!(app.post_events(&im_in_time("C1", 4)).status, 200);
    let r = post_scan(&app, "2026-05-06T01:00:00+02:00", true);
    assert_eq!(r["scan"]["withdrawn"], 0, "{r}");
    assert_eq!(im_deviation(&app, "C1").1, "avslutad");

    // Ledning opens it again: open, and no finding supports it.
    change(
        &app,
        id,
        serde_json::json!({"status": "utreds", "note": "Granskas igen"}),
    );
    let r = post_scan(&app, "2026-05-06T02:00:00+02:00", true);
    assert_eq!(r["scan"]["withdrawn"], 1, "only evidence withdraws, and it has: {r}");
    assert_eq!(im_deviation(&app, "C1").1, "aterkallad");
}

fn what_a_backfill_filed_from_an_earlier_instant_is_withdrawn_by_the_next_full_scan(b: Backend) {
    let app = county(b);
    // A bedömning 30 hours in moves the IM's due; the IM comes in time for it.
    let events = r#"{"id":"b1","case":"C1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}
{"id":"b2","case":"C1","type":"bedomning","at":"2026-05-05T14:00:00+02:00","unit":"AVD1"}
{"id":"b3","case":"C1","type":"inskrivningsmeddelande","at":"2026-05-06T08:00:00+02:00","unit":"AVD1","to":["K1-HT"]}
"#;
    assert_eq!(app.post_events(events).status, 200);
    let first = post_scan(&app, "2026-05-10T00:00:00+02:00", true);
    assert_eq!(first["scan"]["filed"], 0, "{first}");

    // Before the bedömning the IM was a day overdue: the backfill files it.
    let back = post_scan(&app, "2026-05-05T12:00:00+02:00", true);
    assert_eq!(back["scan"]["filed"], 1, "{back}");
    assert_eq!(im_deviation(&app, "C1").1, "ny");

    let r = post_scan(&app, "2026-05-10T01:00:00+02:00", true);
    assert_eq!(r["scan"]["withdrawn"], 1, "the later evidence withdraws it: {r}");
    assert_eq!(im_deviation(&app, "C1").1, "aterkallad");
}

fn a_reopened_deviation_whose_facts_changed_gets_them_from_the_next_full_scan(b: Backend) {
    use diesel::prelude::*;
    use svu_vakt::store::schema::deviations;
    let app = county(b);
    assert_eq!(app.post_events(&im_missing("C1", 4)).status, 200);
    post_scan(&app, "2026-05-06T00:00:00+02:00", true);
    let (id, _, _) = im_deviation(&app, "C1");
    // Withdrawn, as a scan leaves it when its evidence is taken back.
    let mut c = app.conn();
    let conn: &mut svu_vakt::store::DbConn = &mut c;
    diesel::update(deviations::table.find(id))
        .set(deviations::status.eq("aterkallad"))
        .execute(conn)
        .unwrap();

    // The IM comes, twelve hours late: the finding is back, with other facts.
    let late = r#"{"id":"C1-im","case":"C1","type":"inskrivningsmeddelande","at":"2026-05-05T20:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#;
    assert_eq!(app.post_events(late).status, 200);
    post_scan(&app, "2026-05-06T01:00:00+02:00", true);
    assert_ne!(im_deviation(&app, "C1").1, "aterkallad", "reopened");
    post_scan(&app, "2026-05-06T02:00:00+02:00", true);
    assert_eq!(im_deviation(&app, "C1").2, "late", "its facts follow the finding");
}
