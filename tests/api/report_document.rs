//! `GET /api/v1/deviations/{id}/report.json` (SPEC §6.0): the report as the
//! one JSON document a huvudman's system gets, for a system that pulls —
//! read, scoped and logged as reading the deviation is, and described in
//! the OpenAPI document as it is served.

use diesel::prelude::*;
use svu_vakt::store::schema::{access_log, deviations};
use svu_vakt::store::tokens::Role;
use svu_vakt::store::DbConn;

use crate::helpers::{token, Backend, TestApp};

crate::on_both!(
    the_report_document_answers_each_role_as_reading_the_deviation_does,
    the_report_document_is_described_as_it_is_served,
);

fn avd1_deviation(app: &TestApp) -> svu_vakt::store::deviations::DeviationRow {
    app.deviations()
        .into_iter()
        .find(|d| d.unit.as_deref() == Some("AVD1") && d.case_id.as_deref() == Some("C2"))
        .expect("a deviation of AVD1 for C2")
}

fn last_access(app: &TestApp) -> (String, String) {
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    access_log::table
        .order(access_log::id.desc())
        .select((access_log::action, access_log::object))
        .first(conn)
        .unwrap()
}

fn the_report_document_answers_each_role_as_reading_the_deviation_does(b: Backend) {
    let app = crate::handling::county(b);
    let d = avd1_deviation(&app);
    let path = format!("/api/v1/deviations/{}/report.json", d.id);

    let admin = app.get(&path);
    assert_eq!(admin.status, 200, "{}", admin.body);
    let doc = admin.json();
    assert_eq!(doc["id"], d.id);
    assert_eq!(doc["fingerprint"], d.fingerprint.as_str());
    assert_eq!(doc["kind"], "rapport");
    assert_eq!(doc["rule"], "inskrivningsmeddelande_24h");
    assert_eq!(doc["case"], "C2");
    assert_eq!(doc["unit"]["id"], "AVD1");
    assert_eq!(doc["unit"]["huvudman"], "Region Östergötland");
    assert_eq!(doc["status"], "missing");
    assert!(doc["done"].is_null() && doc["late_minutes"].is_null(), "{doc}");
    assert_eq!(doc["handling_status"], d.status.to_string());
    let detail = app.get(&format!("/api/v1/deviations/{}", d.id)).json();
    assert_eq!(doc["due"], detail["due"], "the same instant, with its offset");
    assert!(doc["due"].as_str().unwrap().ends_with("+02:00"), "{doc}");
    assert_eq!(doc["link"], format!("https://svu-vakt.example.se/avvikelser/{}", d.id));
    for section in ["handelse", "konsekvens", "atgard", "forbattring", "grund"] {
        assert!(
            !doc["sections"][section].as_str().unwrap().is_empty(),
            "{section}: {doc}"
        );
    }
    assert!(!admin.body.contains("19900101"), "no patient identity: {}", admin.body);
    assert_eq!(last_access(&app), ("read_deviation".into(), d.id.to_string()));

    let ledning = token(&app.pool, Role::Ledning, None);
    let r = app.request("GET", &path, Some(&ledning), None);
    assert_eq!((r.status, r.json()), (200, doc.clone()), "ledning reads the same");

    let own = token(&app.pool, Role::Handlaggare, Some("AVD1"));
    let r = app.request("GET", &path, Some(&own), None);
    assert_eq!((r.status, r.json()), (200, doc.clone()), "the unit's handläggare");
    assert_eq!(last_access(&app), ("read_deviation".into(), d.id.to_string()));

    let other = token(&app.pool, Role::Handlaggare, Some("K1"));
    let hidden = app.request("GET", &path, Some(&other), None);
    let absent = app.request("GET", "/api/v1/deviations/999999/report.json", Some(&other), None);
    assert_eq!(hidden.status, 404);
    assert_eq!(
        (hidden.status, hidden.body.clone()),
        (absent.status, absent.body),
        "out of scope answers exactly as not found"
    );
    assert!(!hidden.body.contains(&d.fingerprint));

    let ingest = token(&app.pool, Role::Inlasning, None);
    assert_eq!(app.request("GET", &path, Some(&ingest), None).status, 403);
    assert_eq!(app.request("GET", &path, None, None).status, 401);

    // Its kind follows the deviation's status now.
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    diesel::update(deviations::table.find(d.id))
        .set(deviations::status.eq("aterkallad"))
        .execute(conn)
        .unwrap();
    let doc = app.get(&path).json();
    assert_eq!(
        (doc["kind"].as_str(), doc["handling_status"].as_str()),
        (Some("aterkallad"), Some("aterkallad"))
    );
}

fn the_report_document_is_described_as_it_is_served(b: Backend) {
    let app = crate::handling::county(b);
    let d = avd1_deviation(&app);
    let served = app.get(&format!("/api/v1/deviations/{}/report.json", d.id)).json();
    let api = app.get("/api/v1/openapi.json").json();
    let op = &api["paths"]["/api/v1/deviations/{id}/report.json"]["get"];
    let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(schema["$ref"], "#/components/schemas/ReportDocument", "{op}");
    let doc = &api["components"]["schemas"]["ReportDocument"];
    let properties = doc["properties"].as_object().unwrap();
    let keys: Vec<&String> = served.as_object().unwrap().keys().collect();
    let mut described: Vec<&String> = properties.keys().collect();
    let mut keys = keys;
    keys.sort();
    described.sort();
    assert_eq!(keys, described, "every field served is described, and no more");
    let statuses = properties["handling_status"]["enum"].as_array().unwrap();
    assert!(statuses.contains(&served["handling_status"]), "{statuses:?}");
    for nested in ["UnitRef", "RiskView", "Sections", "Kind", "FindingStatus"] {
        assert!(api["components"]["schemas"][nested].is_object(), "{nested} missing");
    }
    let required: Vec<&str> = doc["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for always in [
        "kind",
        "id",
        "fingerprint",
        "rule",
        "due",
        "status",
        "risk",
        "sections",
        "link",
    ] {
        assert!(required.contains(&always), "{always} is not required: {required:?}");
    }
}
