//! Tokens and roles, the access log, and the patient number never in clear.

use svu_vakt::store::tokens::{self, Role};

use crate::helpers::{spawn_app, token, Backend, CASE_EVENTS, UNITS};

crate::on_both!(
    no_token_gives_401_and_the_wrong_role_403,
    a_handlaggare_sees_only_cases_of_their_units_and_reads_are_logged,
    an_invalid_personnummer_is_rejected_and_a_valid_one_is_never_stored_in_clear,
);

fn no_token_gives_401_and_the_wrong_role_403(b: Backend) {
    let app = spawn_app(b);
    let ev = Some(("application/x-ndjson", CASE_EVENTS));
    assert_eq!(app.request("POST", "/api/v1/events", None, ev).status, 401);
    assert_eq!(
        app.request("POST", "/api/v1/events", Some("svk_not-a-token"), ev)
            .status,
        401
    );
    assert_eq!(app.request("GET", "/api/v1/units", None, None).status, 401);
    let body = app.request("GET", "/api/v1/units", None, None).json();
    assert_eq!(body["error"], "unauthorized");

    let ledning = token(&app.pool, Role::Ledning, None);
    let inlasning = token(&app.pool, Role::Inlasning, None);
    let r = app.request("POST", "/api/v1/events", Some(&ledning), ev);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");
    assert_eq!(app.event_count(), 0);
    assert_eq!(app.request("POST", "/api/v1/events", Some(&inlasning), ev).status, 200);
    assert_eq!(
        app.request("GET", "/api/v1/cases/C1", Some(&inlasning), None).status,
        403
    );
    assert_eq!(app.request("GET", "/api/v1/units", Some(&inlasning), None).status, 403);
    assert_eq!(app.request("GET", "/api/v1/cases/C1", Some(&ledning), None).status, 200);
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(app.request("GET", open, None, None).status, 200, "{open} is open");
    }
}

fn a_handlaggare_sees_only_cases_of_their_units_and_reads_are_logged(b: Backend) {
    let app = spawn_app(b);
    app.post_units(UNITS);
    app.post_events(CASE_EVENTS);
    app.post_events(r#"{"id":"o1","case":"C2","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD9"}"#);
    // K1's handläggare: C1 was sent to K1-HT, a unit below K1.
    let k1 = token(&app.pool, Role::Handlaggare, Some("K1"));
    let before = tokens::access_log_count(&mut app.conn()).unwrap();
    assert_eq!(app.request("GET", "/api/v1/cases/C1", Some(&k1), None).status, 200);
    assert_eq!(app.request("GET", "/api/v1/cases/C2", Some(&k1), None).status, 403);
    assert_eq!(tokens::access_log_count(&mut app.conn()).unwrap(), before + 1);
    app.get("/api/v1/cases/C2");
    assert_eq!(tokens::access_log_count(&mut app.conn()).unwrap(), before + 2);
}

fn an_invalid_personnummer_is_rejected_and_a_valid_one_is_never_stored_in_clear(b: Backend) {
    let app = spawn_app(b);
    for bad in ["19900101-0018", "19901301-0017", "1990-01-01", "12345"] {
        let line = format!(
            r#"{{"id":"p1","case":"P","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","patient":"{bad}"}}"#
        );
        let r = app.post_events(&line);
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["errors"][0]["field"], "patient");
        assert!(!r.body.contains(bad), "an error must not echo the number");
    }
    // A personnummer and a samordningsnummer, in short and long forms.
    let batch = concat!(
        r#"{"id":"p1","case":"P1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","patient":"19900101-0017"}"#,
        "\n",
        r#"{"id":"p2","case":"P2","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","patient":"701063-2391"}"#,
        "\n"
    );
    assert_eq!(app.post_events(batch).status, 200);
    let dump = app.db.dump();
    assert!(
        dump.contains("p1") && dump.contains("AVD1"),
        "the dump must see the stored rows"
    );
    for clear in [
        "199001010017",
        "19900101-0017",
        "9001010017",
        "900101-0017",
        "197010632391",
        "701063-2391",
        "7010632391",
    ] {
        assert!(!dump.contains(clear), "{clear} is stored in clear");
    }
    let case = app.get("/api/v1/cases/P1");
    assert!(!case.body.contains("0017"));
    assert_eq!(case.json()["events"][0]["patient_recorded"], true);
}
