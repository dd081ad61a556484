//! Tokens and roles, the access log, and the patient number never in clear.

use svu_vakt::store::tokens::{self, Role};

use crate::helpers::{spawn_app, token, Backend, CASE_EVENTS, UNITS};

crate::on_both!(
    no_token_gives_401_and_the_wrong_role_403,
    a_handlaggare_sees_only_cases_of_their_units_and_reads_are_logged,
    an_invalid_personnummer_is_rejected_and_a_valid_one_is_never_stored_in_clear,
    a_handlaggare_without_a_unit_sees_nothing,
    out_of_scope_answers_exactly_as_not_found,
    list_reads_are_logged_with_their_filter,
    only_an_admin_changes_units_and_an_update_without_email_keeps_it,
    a_handlaggare_is_not_shown_unit_addresses,
);

/// A handläggare token whose unit is not set (as a hand-edited or migrated
/// row could be): its scope cannot be determined, so it sees nothing.
fn a_handlaggare_without_a_unit_sees_nothing(b: Backend) {
    use diesel::prelude::*;
    use svu_vakt::store::schema::api_tokens;
    let app = spawn_app(b);
    app.post_units(UNITS);
    app.post_events(CASE_EVENTS);
    let t = token(&app.pool, Role::Handlaggare, Some("K1"));
    let mut c = app.conn();
    let conn: &mut svu_vakt::store::DbConn = &mut c;
    diesel::update(api_tokens::table.filter(api_tokens::role.eq("handlaggare")))
        .set(api_tokens::unit.eq(None::<String>))
        .execute(conn)
        .unwrap();
    for path in [
        "/api/v1/deviations",
        "/api/v1/deviations/1",
        "/api/v1/cases/C1",
        "/api/v1/units",
    ] {
        let r = app.request("GET", path, Some(&t), None);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(!r.body.contains("C1\""), "{path} leaks: {}", r.body);
    }
}

fn out_of_scope_answers_exactly_as_not_found(b: Backend) {
    let app = spawn_app(b);
    app.post_units(UNITS);
    app.post_events(CASE_EVENTS);
    app.post_events(r#"{"id":"o1","case":"C2","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#);
    // IM for C2 never sent: a deviation of AVD1, outside K1's scope.
    assert_eq!(app.scan("2026-05-10T00:00:00+02:00").status, 200);
    let devs = app.deviations();
    let avd1 = devs
        .iter()
        .find(|d| d.case_id.as_deref() == Some("C2"))
        .expect("C2 deviation");
    let k1 = token(&app.pool, Role::Handlaggare, Some("K1"));
    let hidden = app.request("GET", "/api/v1/cases/C2", Some(&k1), None);
    let absent = app.request("GET", "/api/v1/cases/NO-SUCH-CASE", Some(&k1), None);
    assert_eq!(
        (hidden.status, hidden.body.clone()),
        (absent.status, absent.body.clone())
    );
    assert_eq!(hidden.status, 404);
    let hidden = app.request("GET", &format!("/api/v1/deviations/{}", avd1.id), Some(&k1), None);
    let absent = app.request("GET", "/api/v1/deviations/999999", Some(&k1), None);
    assert_eq!(
        (hidden.status, hidden.body.clone()),
        (absent.status, absent.body.clone())
    );
    assert_eq!(hidden.status, 404);
    let list = app.request("GET", "/api/v1/deviations", Some(&k1), None).json();
    assert!(
        list.as_array().unwrap().iter().all(|d| d["case"] != "C2"),
        "another unit's deviation in the list: {list}"
    );
    assert!(
        list.as_array().unwrap().iter().all(|d| d["recipients"].is_null()),
        "no addresses for a handläggare: {list}"
    );
    // The unit's own handläggare does see it.
    let own = token(&app.pool, Role::Handlaggare, Some("AVD1"));
    let r = app.request("GET", &format!("/api/v1/deviations/{}", avd1.id), Some(&own), None);
    assert_eq!(r.status, 200, "{}", r.body);
}

fn list_reads_are_logged_with_their_filter(b: Backend) {
    use diesel::prelude::*;
    use svu_vakt::store::schema::access_log;
    let app = spawn_app(b);
    let k1 = token(&app.pool, Role::Handlaggare, Some("K1"));
    let before = tokens::access_log_count(&mut app.conn()).unwrap();
    assert_eq!(
        app.request("GET", "/api/v1/deviations?status=ny", Some(&k1), None)
            .status,
        200
    );
    assert_eq!(tokens::access_log_count(&mut app.conn()).unwrap(), before + 1);
    let mut c = app.conn();
    let conn: &mut svu_vakt::store::DbConn = &mut c;
    let (action, object): (String, String) = access_log::table
        .order(access_log::id.desc())
        .select((access_log::action, access_log::object))
        .first(conn)
        .unwrap();
    assert_eq!(action, "list_deviations");
    assert_eq!(object, "?status=ny");
}

fn only_an_admin_changes_units_and_an_update_without_email_keeps_it(b: Backend) {
    let app = spawn_app(b);
    app.post_units(UNITS);
    let inlasning = token(&app.pool, Role::Inlasning, None);
    let reroute = r#"[{"id":"AVD1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Östergötland","email":"attacker@example.com"}]"#;
    let r = app.request(
        "POST",
        "/api/v1/units",
        Some(&inlasning),
        Some(("application/json", reroute)),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let stored = |app: &crate::helpers::TestApp| {
        svu_vakt::store::units::get(&mut app.conn(), "AVD1")
            .unwrap()
            .unwrap()
            .email
    };
    assert_eq!(stored(&app).as_deref(), Some("avd1@example.se"));
    // An admin renames the ward without naming its e-mail: the address stays.
    let rename =
        r#"[{"id":"AVD1","name":"Avdelning 1 (ortopedi)","kind":"slutenvard","huvudman":"Region Östergötland"}]"#;
    assert_eq!(app.post_units(rename).status, 200);
    assert_eq!(stored(&app).as_deref(), Some("avd1@example.se"));
    let csv = "id,name,kind,huvudman,email\nAVD1,Avdelning 1,slutenvard,Region Östergötland,\n";
    let r = app.request(
        "POST",
        "/api/v1/units",
        Some(&app.admin.clone()),
        Some(("text/csv", csv)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        stored(&app).as_deref(),
        Some("avd1@example.se"),
        "an empty CSV cell keeps it"
    );
    // Null clears it, explicitly.
    let clear =
        r#"[{"id":"AVD1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Östergötland","email":null}]"#;
    assert_eq!(app.post_units(clear).status, 200);
    assert_eq!(stored(&app), None);
    // An address the mailer could not use is refused at registration.
    let bad = r#"[{"id":"AVD2","name":"Avdelning 2","kind":"slutenvard","huvudman":"Region Östergötland","email":"avd2@@example.se"}]"#;
    let r = app.post_units(bad);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["errors"][0]["field"], "email");
}

fn a_handlaggare_is_not_shown_unit_addresses(b: Backend) {
    let app = spawn_app(b);
    app.post_units(UNITS);
    let k1 = token(&app.pool, Role::Handlaggare, Some("K1"));
    let r = app.request("GET", "/api/v1/units", Some(&k1), None);
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("avd1@example.se"), "{}", r.body);
    assert!(
        app.get("/api/v1/units").body.contains("avd1@example.se"),
        "an admin sees it"
    );
}

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
    assert_eq!(app.request("GET", "/api/v1/cases/C2", Some(&k1), None).status, 404);
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
