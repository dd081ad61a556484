//! Issue 22 through the service: both sides of a deviation (SPEC §6) kept,
//! listed, filtered and read by whom SPEC §9 lets read them, and the rest of
//! the guideline's rules filed by a scan.

use std::collections::BTreeSet;

use svu_vakt::store::tokens::Role;

use crate::handling::{create_user, Session};
use crate::helpers::{spawn_app, Backend, TestApp, UNITS};

crate::on_both!(
    the_berord_part_is_kept_listed_and_read_by_the_kommuns_ledning,
    closing_the_case_early_files_samordning_stangd_and_keeps_the_kallelse,
);

/// IM and UK to Hemtjänst Nord (K1-HT) and the vårdcentral; Ja on Behov av
/// SIP; no kallelse; the vårdcentral closes the case the day after the UK.
const EVENTS: &str = r#"{"id":"e1","case":"C1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","kommun":"Linköpings kommun"}
{"id":"e2","case":"C1","type":"inskrivningsmeddelande","at":"2026-05-04T10:00:00+02:00","unit":"AVD1","to":["K1-HT","VC1"],"value":"2026-05-08"}
{"id":"e3","case":"C1","type":"behov_av_sip","at":"2026-05-05T09:00:00+02:00","unit":"VC1","value":true}
{"id":"e4","case":"C1","type":"utskrivningsklar","at":"2026-05-11T16:00:00+02:00","unit":"AVD1","to":["K1-HT","VC1"]}
{"id":"e5","case":"C1","type":"utskrivning","at":"2026-05-12T10:00:00+02:00","unit":"AVD1"}
{"id":"e6","case":"C1","type":"avslut","at":"2026-05-12T11:00:00+02:00","unit":"VC1","value":"utskriven"}
"#;

fn app(b: Backend) -> TestApp {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    let r = app.post_events(EVENTS);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.scan("2026-06-01T00:00:00+02:00").status, 200);
    app
}

fn rules_of(list: &serde_json::Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap().to_string())
        .collect()
}

fn the_berord_part_is_kept_listed_and_read_by_the_kommuns_ledning(b: Backend) {
    let app = app(b);
    let kallelse = app
        .deviations()
        .into_iter()
        .find(|d| d.rule == "kallelse_sip")
        .expect("the kallelse is missing");
    assert_eq!(kallelse.unit.as_deref(), Some("VC1"));
    create_user(&app, "admin.lan", Role::Admin, &[]);
    create_user(&app, "chef.kommun", Role::Ledning, &["K1"]);
    create_user(&app, "hl.hemtjanst", Role::Handlaggare, &["K1-HT"]);
    let admin = Session::login(&app, "admin.lan");
    // Both sides in the API: the berörd part of the kallelse is the kommun's unit.
    let all = admin.get(&app, "/api/v1/deviations?rule=kallelse_sip").json();
    assert_eq!(all[0]["berord"], serde_json::json!(["K1-HT"]), "{all}");
    // The filter by the other side.
    let on_behalf = admin.get(&app, "/api/v1/deviations?berord=K1-HT").json();
    let rules = rules_of(&on_behalf);
    assert!(
        rules.contains("kallelse_sip") && rules.contains("samordning_stangd"),
        "{rules:?}"
    );
    assert!(on_behalf
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["berord"].as_array().unwrap().contains(&serde_json::json!("K1-HT"))));
    // Nothing here hurt the ward (the UK's kvittens ended with the avslut).
    let ward = rules_of(&admin.get(&app, "/api/v1/deviations?berord=AVD1").json());
    assert!(ward.is_empty(), "{ward:?}");

    // The kommun's ledning reads what was reported on its behalf, and cannot handle it.
    let chef = Session::login(&app, "chef.kommun");
    let seen = rules_of(&chef.get(&app, "/api/v1/deviations?per_page=1000").json());
    assert!(seen.contains("kallelse_sip"), "{seen:?}");
    let detail = chef.get(&app, &format!("/api/v1/deviations/{}", kallelse.id));
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.json()["allowed"], serde_json::json!([]), "{}", detail.body);
    let change = chef.post(
        &app,
        &format!("/api/v1/deviations/{}/status", kallelse.id),
        &serde_json::json!({"status": "mottagen"}),
    );
    assert_eq!(change.status, 404, "only the responsible side handles: {}", change.body);
    // A handläggare reads its own units' only (SPEC §9).
    let hl = Session::login(&app, "hl.hemtjanst");
    let own = hl.get(&app, "/api/v1/deviations?per_page=1000").json();
    assert!(own.as_array().unwrap().iter().all(|d| d["unit"] == "K1-HT"), "{own}");
    assert_eq!(hl.get(&app, &format!("/api/v1/deviations/{}", kallelse.id)).status, 404);
    // The list page and its CSV name both sides, with the huvudman and the routine.
    let page = admin.get(&app, "/avvikelser?berord=K1-HT");
    assert!(
        page.body.contains("Berörd part") && page.body.contains("Hemtjänst Nord"),
        "{}",
        page.body
    );
    let csv = admin.get(&app, "/avvikelser.csv?rule=kallelse_sip");
    assert!(csv.body.contains("enhetens huvudman;berörd part;"), "{}", csv.body);
    assert!(csv.body.contains("Hemtjänst Nord (Linköpings kommun)"), "{}", csv.body);
    assert!(csv.body.contains("Lag (2017:612)"), "{}", csv.body);
    let report = admin.get(&app, &format!("/avvikelser/{}", kallelse.id));
    assert!(
        report.body.contains("Hemtjänst Nord (Linköpings kommun)"),
        "{}",
        report.body
    );
}

fn closing_the_case_early_files_samordning_stangd_and_keeps_the_kallelse(b: Backend) {
    let app = app(b);
    let filed: BTreeSet<(String, Option<String>)> = app.deviations().into_iter().map(|d| (d.rule, d.unit)).collect();
    // The vårdcentral's avslut does not end the SIP chain (SPEC §4.6) and is itself the finding.
    for want in [
        ("kallelse_sip", "VC1"),
        ("samordning_stangd", "VC1"),
        ("fast_vardkontakt_saknas", "VC1"),
    ] {
        assert!(
            filed.contains(&(want.0.to_string(), Some(want.1.to_string()))),
            "{want:?} not filed: {filed:?}"
        );
    }
}
