//! Ingest: all or nothing, idempotent by id, every bad line named.

use serde_json::Value;

use crate::helpers::{spawn_app, Backend, CASE_EVENTS, UNITS};

crate::on_both!(
    a_valid_batch_is_stored_and_read_back_in_time_order,
    the_same_batch_again_changes_nothing,
    a_conflicting_id_gives_409_and_stores_nothing,
    bad_lines_give_400_naming_each_line_and_field_and_store_nothing,
    a_timestamp_without_offset_is_rejected,
    an_unregistered_unit_is_kept_and_shown_as_unknown,
    ten_thousand_events_as_a_json_array_in_one_request,
    units_are_registered_from_csv_and_updated_from_json,
    metrics_count_ingested_duplicate_and_rejected_events,
);

fn a_valid_batch_is_stored_and_read_back_in_time_order(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    let r = app.post_events(CASE_EVENTS);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["stored"], 5);
    assert_eq!(r.json()["duplicates"], 0);

    let case = app.get("/api/v1/cases/C1").json();
    let ids: Vec<&str> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["e1", "e2", "e3", "e4", "e5"]);
    let im = &case["events"][1];
    assert_eq!(im["type"], "inskrivningsmeddelande");
    assert_eq!(im["at"], "2026-05-04T11:42:00+02:00");
    assert_eq!(im["to"], serde_json::json!(["K1-HT", "VC1"]));
    assert_eq!(case["events"][2]["ref"], "e2");
    assert_eq!(case["events"][3]["value"], true);
    assert_eq!(case["events"][4]["value"], "gul");
    assert_eq!(case["events"][4]["at"], "2026-05-05T10:00:00+00:00");
    assert!(
        case["events"][0].get("patient").is_none(),
        "the patient is never returned"
    );
    assert_eq!(app.get("/api/v1/cases/NOPE").status, 404);
}

fn the_same_batch_again_changes_nothing(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_events(CASE_EVENTS).status, 200);
    let (events, batches) = (app.event_count(), app.batch_count());
    let dump = app.get("/api/v1/cases/C1").body;

    let again = app.post_events(CASE_EVENTS);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["stored"], 0);
    assert_eq!(again.json()["duplicates"], 5);
    assert_eq!(again.json()["batch"], Value::Null);
    assert_eq!(app.event_count(), events);
    assert_eq!(app.batch_count(), batches);
    assert_eq!(app.get("/api/v1/cases/C1").body, dump);

    // The same event twice inside one batch is one event.
    let line = r#"{"id":"x1","case":"C2","type":"utskrivning","at":"2026-05-06T10:00:00+02:00","unit":"AVD1"}"#;
    let r = app.post_events(&format!("{line}\n{line}\n"));
    assert_eq!(
        (r.json()["stored"].as_i64(), r.json()["duplicates"].as_i64()),
        (Some(1), Some(1))
    );
}

fn a_conflicting_id_gives_409_and_stores_nothing(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_events(CASE_EVENTS).status, 200);
    let before = app.event_count();
    let batch = concat!(
        r#"{"id":"new1","case":"C1","type":"utskrivning","at":"2026-05-08T10:00:00+02:00","unit":"AVD1"}"#,
        "\n",
        r#"{"id":"e2","case":"C1","type":"inskrivningsmeddelande","at":"2026-05-04T11:43:00+02:00","unit":"AVD1","to":["K1-HT","VC1"]}"#,
        "\n"
    );
    let r = app.post_events(batch);
    assert_eq!(r.status, 409, "{}", r.body);
    let body = r.json();
    assert_eq!(body["error"], "conflict");
    assert_eq!(body["conflicts"][0]["line"], 2);
    assert_eq!(body["conflicts"][0]["id"], "e2");
    assert_eq!(
        app.event_count(),
        before,
        "the valid new event must not be stored either"
    );
    let case = app.get("/api/v1/cases/C1").json();
    assert_eq!(case["events"][1]["at"], "2026-05-04T11:42:00+02:00");
}

fn bad_lines_give_400_naming_each_line_and_field_and_store_nothing(b: Backend) {
    let app = spawn_app(b);
    let batch = [
        r#"{"id":"ok1","case":"C9","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        r#"{"id":"b1","case":"C9","type":"flyttning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        r#"{"id":"b2","case":"C9","type":"kvittens","at":"2026-05-04T08:00:00+02:00","unit":"K1"}"#,
        r#"{"id":"b3","case":"C9","type":"inskrivningsmeddelande","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        r#"{"id":"b4","case":"C9","type":"sparfarg","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","value":"lila"}"#,
        r#"{"id":"b5","type":"utskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        r#"{"id":"b6","case":"C9","type":"utskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","patient":"19900101-0017"}"#,
        r#"not json"#,
        r#"{"id":"b8","case":"C9","type":"behov_av_sip","at":"2026-05-04T08:00:00+02:00","unit":"VC1","value":"kanske","namn":"x"}"#,
    ]
    .join("\n");
    let r = app.post_events(&batch);
    assert_eq!(r.status, 400, "{}", r.body);
    let body = r.json();
    assert_eq!(body["error"], "invalid_batch");
    let got: Vec<(u64, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap().to_string()))
        .collect();
    let want: Vec<(u64, String)> = [
        (2, "type"),
        (3, "ref"),
        (4, "to"),
        (5, "value"),
        (6, "case"),
        (7, "patient"),
        (8, "line"),
        (9, "namn"),
        (9, "value"),
    ]
    .iter()
    .map(|(l, f)| (*l, f.to_string()))
    .collect();
    assert_eq!(got, want);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ingen känd händelsetyp"));
    assert_eq!(app.event_count(), 0);
    assert_eq!(app.batch_count(), 0);
    assert_eq!(app.get("/api/v1/cases/C9").status, 404);
}

fn a_timestamp_without_offset_is_rejected(b: Backend) {
    let app = spawn_app(b);
    for at in [
        "2026-05-04T11:42:00",
        "2026-05-04 11:42",
        "2026-05-04",
        "2026-13-04T11:42:00+02:00",
    ] {
        let line = format!(r#"{{"id":"t1","case":"C1","type":"utskrivning","at":"{at}","unit":"AVD1"}}"#);
        let r = app.post_events(&line);
        assert_eq!(r.status, 400, "{at} must be rejected");
        assert_eq!(r.json()["errors"][0]["field"], "at");
        assert_eq!(r.json()["errors"][0]["line"], 1);
    }
    assert_eq!(app.event_count(), 0);
}

fn an_unregistered_unit_is_kept_and_shown_as_unknown(b: Backend) {
    let app = spawn_app(b);
    app.post_units(UNITS);
    let line = r#"{"id":"u1","case":"C5","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD-NY"}"#;
    assert_eq!(app.post_events(line).json()["stored"], 1);
    let units = app.get("/api/v1/units").json();
    let unknown: Vec<&Value> = units
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["registered"] == false)
        .collect();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0]["id"], "AVD-NY");
    assert_eq!(
        app.get("/api/v1/cases/C5").json()["events"][0]["unit_registered"],
        false
    );
}

fn ten_thousand_events_as_a_json_array_in_one_request(b: Backend) {
    let app = spawn_app(b);
    let events: Vec<Value> = (0..10_000)
        .map(|i| {
            serde_json::json!({"id": format!("big-{i}"), "case": format!("B{}", i / 10), "type": "bemanning",
                "at": "2026-06-21T09:00:00+02:00", "unit": "AVD1"})
        })
        .collect();
    let r = app.post_events(&serde_json::to_string(&events).unwrap());
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(500)]);
    assert_eq!(r.json()["stored"], 10_000);
    assert_eq!(app.event_count(), 10_000);
    // A bad element of an array is named by its position.
    let bad =
        r#"[{"id":"a","case":"C","type":"utskrivning","at":"2026-06-21T09:00:00+02:00","unit":"AVD1"},{"id":"b"}]"#;
    let r = app.post_events(bad);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0]["line"], 2);
}

fn units_are_registered_from_csv_and_updated_from_json(b: Backend) {
    let app = spawn_app(b);
    let csv = "id;name;kind;huvudman;parent;email;storhelg\nK2;Motala kommun;kommun;Motala kommun;;avvikelse@motala.example.se;ja\nK2-HT;Hemtjänst;kommun;Motala kommun;K2;;nej\n";
    let r = app.request("POST", "/api/v1/units", Some(&app.admin), Some(("text/csv", csv)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["created"], 2);
    let r = app.post_units(
        r#"[{"id":"K2-HT","name":"Hemtjänst Motala","kind":"kommun","huvudman":"Motala kommun","parent":"K2"}]"#,
    );
    assert_eq!(r.json()["updated"], 1);
    let units = app.get("/api/v1/units").json();
    let ht = units.as_array().unwrap().iter().find(|u| u["id"] == "K2-HT").unwrap();
    assert_eq!(ht["name"], "Hemtjänst Motala");
    assert_eq!(ht["storhelg"], true);
    let bad = app.post_units(
        r#"[{"id":"X","name":"X","kind":"sjukhus","huvudman":"R"},{"id":"Y","kind":"kommun","huvudman":"K"}]"#,
    );
    assert_eq!(bad.status, 400);
    let fields: Vec<(i64, String)> = bad.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["field"].as_str().unwrap().into()))
        .collect();
    assert_eq!(fields, [(1, "kind".to_string()), (2, "name".to_string())]);
    assert_eq!(app.get("/api/v1/units").json().as_array().unwrap().len(), 2);
}

fn metrics_count_ingested_duplicate_and_rejected_events(b: Backend) {
    let app = spawn_app(b);
    app.post_events(CASE_EVENTS);
    app.post_events(CASE_EVENTS);
    app.post_events("{\"id\":1}\n{}\n");
    let m = app.request("GET", "/metrics", None, None);
    assert_eq!(m.status, 200);
    for want in [
        "svu_vakt_events_ingested_total 5",
        "svu_vakt_events_duplicate_total 5",
        "svu_vakt_events_rejected_total 2",
        "svu_vakt_batches_rejected_total 1",
        "route=\"/api/v1/events\",status=\"400\"",
    ] {
        assert!(m.body.contains(want), "metrics lack `{want}`:\n{}", m.body);
    }
    assert_eq!(app.request("GET", "/healthz", None, None).status, 200);
    assert_eq!(app.request("GET", "/readyz", None, None).json()["status"], "ready");
}
