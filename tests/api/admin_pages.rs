//! The admin pages over real HTTP with a session: who may open them, the
//! unit register with the chef's e-mail, users made and disabled from the
//! page, loggkontroll by user and by case, and scan runs.

use svu_vakt::store::tokens::Role;

use crate::handling::{create_user, form, Session, PASSWORD};
use crate::helpers::{spawn_app, Backend, TestApp, CASE_EVENTS, UNITS};

crate::on_both!(
    admin_pages_are_for_admins_and_scan_runs_for_ledning_too,
    an_admin_registers_a_unit_and_changes_its_addresses_from_the_page,
    an_admin_creates_and_disables_users_from_the_page,
    an_admin_gives_units_and_an_hsa_id_from_the_page,
    loggkontroll_finds_reads_by_user_and_by_case,
);

fn county(b: Backend) -> TestApp {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    assert_eq!(app.post_events(CASE_EVENTS).status, 200);
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    create_user(&app, "admin.anna", Role::Admin, &[]);
    create_user(&app, "chef.lan", Role::Ledning, &[]);
    create_user(&app, "bo.k1", Role::Handlaggare, &["K1"]);
    app
}

fn admin_pages_are_for_admins_and_scan_runs_for_ledning_too(b: Backend) {
    let app = county(b);
    let admin = Session::login(&app, "admin.anna");
    let ledning = Session::login(&app, "chef.lan");
    let h = Session::login(&app, "bo.k1");
    for page in ["/enheter", "/anvandare", "/loggkontroll", "/loggkontroll.csv"] {
        assert_eq!(admin.get(&app, page).status, 200, "{page}");
        assert_eq!(ledning.get(&app, page).status, 403, "{page}");
        assert_eq!(h.get(&app, page).status, 403, "{page}");
    }
    let runs = ledning.get(&app, "/granskningar");
    assert_eq!(runs.status, 200);
    assert!(runs.body.contains("<td>klar</td>"), "{}", runs.body);
    assert_eq!(h.get(&app, "/granskningar").status, 403);
    // The navigation shows a person only what they may open.
    let nav = h.get(&app, "/avvikelser").body;
    assert!(!nav.contains("href=\"/loggkontroll\"") && !nav.contains("href=\"/granskningar\""));
    assert!(admin.get(&app, "/avvikelser").body.contains("href=\"/loggkontroll\""));
}

fn an_admin_registers_a_unit_and_changes_its_addresses_from_the_page(b: Backend) {
    let app = county(b);
    let admin = Session::login(&app, "admin.anna");
    let unit = |id: &str| svu_vakt::store::units::get(&mut app.conn(), id).unwrap();
    let fields = |email: &str, chef: &str| {
        vec![
            ("csrf", admin.csrf.clone()),
            ("id", "K1-HSV".to_string()),
            ("name", "Hemsjukvård Nord".to_string()),
            ("kind", "kommun".to_string()),
            ("huvudman", "Linköpings kommun".to_string()),
            ("parent", "K1".to_string()),
            ("email", email.to_string()),
            ("chef_email", chef.to_string()),
            ("storhelg", "true".to_string()),
        ]
    };
    let post = |f: Vec<(&str, String)>| {
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form(&app, &admin, "/enheter", &f)
    };
    // A bad address is refused with the field named, and nothing is stored.
    let r = post(fields("hsv@", ""));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("email"), "{}", r.body);
    assert!(unit("K1-HSV").is_none());
    let r = post(fields("hsv@linkoping.example.se", "chef.hsv@linkoping.example.se"));
    assert_eq!(r.status, 303, "{}", r.body);
    let u = unit("K1-HSV").unwrap();
    assert_eq!(u.email.as_deref(), Some("hsv@linkoping.example.se"));
    assert_eq!(u.chef_email.as_deref(), Some("chef.hsv@linkoping.example.se"));
    assert_eq!(u.parent.unwrap().0, "K1");
    // Emptying the chef's address clears it.
    assert_eq!(post(fields("hsv@linkoping.example.se", "")).status, 303);
    assert_eq!(unit("K1-HSV").unwrap().chef_email, None);
    // Without the form's token nothing changes.
    let mut f = fields("annan@example.se", "");
    f[0].1 = "fel".into();
    assert_eq!(post(f).status, 403);
    assert_eq!(
        unit("K1-HSV").unwrap().email.as_deref(),
        Some("hsv@linkoping.example.se")
    );
    // The chef's address arrives by import too, and a handläggare never sees it.
    let r = app.post_units(
        r#"[{"id":"AVD1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Östergötland","chef_email":"chef.avd1@example.se"}]"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        unit("AVD1").unwrap().chef_email.as_deref(),
        Some("chef.avd1@example.se")
    );
    assert_eq!(
        unit("AVD1").unwrap().email.as_deref(),
        Some("avd1@example.se"),
        "email kept"
    );
    let k1 = crate::helpers::token(&app.pool, Role::Handlaggare, Some("K1"));
    let listed = app.request("GET", "/api/v1/units", Some(&k1), None).body;
    assert!(!listed.contains("chef.avd1@example.se"), "{listed}");
    assert!(app.get("/api/v1/units").body.contains("chef.avd1@example.se"));
}

fn an_admin_creates_and_disables_users_from_the_page(b: Backend) {
    let app = county(b);
    let admin = Session::login(&app, "admin.anna");
    let r = form(
        &app,
        &admin,
        "/anvandare",
        &[
            ("csrf", &admin.csrf),
            ("username", "cia.ht"),
            ("role", "handlaggare"),
            ("units", "K1-HT"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let password = r
        .body
        .split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the password shown once")
        .to_string();
    let cia = Session::login_with(&app, "cia.ht", &password);
    assert_eq!(
        cia.get(&app, "/api/v1/session").json()["units"],
        serde_json::json!(["K1-HT"])
    );
    // A handläggare without a unit is refused with the reason.
    let r = form(
        &app,
        &admin,
        "/anvandare",
        &[
            ("csrf", &admin.csrf),
            ("username", "utan"),
            ("role", "handlaggare"),
            ("units", ""),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("minst en enhet"), "{}", r.body);
    // Disabled from the page: her session ends at once.
    let id = svu_vakt::store::users::list(&mut app.conn())
        .unwrap()
        .into_iter()
        .find(|u| u.username == "cia.ht")
        .unwrap()
        .id;
    let r = form(
        &app,
        &admin,
        &format!("/anvandare/{id}/stang-av"),
        &[("csrf", &admin.csrf)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(cia.get(&app, "/api/v1/session").status, 401);
    assert!(admin.get(&app, "/anvandare").body.contains("avstängd"));
    // An admin cannot lock themself out.
    let me = svu_vakt::store::users::list(&mut app.conn())
        .unwrap()
        .into_iter()
        .find(|u| u.username == "admin.anna")
        .unwrap()
        .id;
    let r = form(
        &app,
        &admin,
        &format!("/anvandare/{me}/stang-av"),
        &[("csrf", &admin.csrf)],
    );
    assert_eq!(r.status, 409);
    assert_eq!(admin.get(&app, "/api/v1/session").status, 200);
    let _ = PASSWORD;
}

fn user_id(app: &TestApp, name: &str) -> i64 {
    svu_vakt::store::users::list(&mut app.conn())
        .unwrap()
        .into_iter()
        .find(|u| u.username == name)
        .unwrap()
        .id
}

/// What a person who came in through the identity provider needs next:
/// units, and the HSA-id they are known by. The page changes both, ends
/// the person's sessions so the next request sees the new scope, and
/// refuses an HSA-id that another user has.
fn an_admin_gives_units_and_an_hsa_id_from_the_page(b: Backend) {
    let app = county(b);
    let admin = Session::login(&app, "admin.anna");
    let bo = Session::login(&app, "bo.k1");
    let id = user_id(&app, "bo.k1");
    let change = |units: &str, hsa: &str| {
        form(
            &app,
            &admin,
            &format!("/anvandare/{id}/andra"),
            &[
                ("csrf", &admin.csrf),
                ("role", "handlaggare"),
                ("units", units),
                ("hsa_id", hsa),
            ],
        )
    };
    let r = change("K1, K1-HT", "SE2321000016-B0K1");
    assert_eq!(r.status, 303, "{}", r.body);
    let u = svu_vakt::store::users::get(&mut app.conn(), id).unwrap().unwrap();
    assert_eq!(u.units, ["K1", "K1-HT"]);
    assert_eq!(u.hsa_id.as_deref(), Some("SE2321000016-B0K1"));
    assert_eq!(
        bo.get(&app, "/api/v1/session").status,
        401,
        "a new scope ends the session"
    );
    let page = admin.get(&app, "/anvandare").body;
    assert!(page.contains("SE2321000016-B0K1"), "{page}");

    // The same HSA-id on a second user: refused, nothing changed.
    create_user(&app, "cia.ht", Role::Handlaggare, &["K1-HT"]);
    let cia = user_id(&app, "cia.ht");
    let r = form(
        &app,
        &admin,
        &format!("/anvandare/{cia}/andra"),
        &[
            ("csrf", &admin.csrf),
            ("role", "ledning"),
            ("units", ""),
            ("hsa_id", "SE2321000016-B0K1"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("tillhör redan en annan användare"), "{}", r.body);
    let c = svu_vakt::store::users::get(&mut app.conn(), cia).unwrap().unwrap();
    assert_eq!((c.role.as_str(), c.hsa_id), ("handlaggare", None), "all or nothing");
    // A malformed HSA-id, and a handläggare left without units: refused.
    assert_eq!(change("K1", "inte ett hsa-id!").status, 422);
    assert_eq!(change("", "").status, 422);
    // Without the session's CSRF token: refused.
    let r = form(
        &app,
        &admin,
        &format!("/anvandare/{id}/andra"),
        &[("role", "admin"), ("units", "K1"), ("hsa_id", "")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        svu_vakt::store::users::get(&mut app.conn(), id).unwrap().unwrap().role,
        "handlaggare"
    );
}

fn loggkontroll_finds_reads_by_user_and_by_case(b: Backend) {
    let app = county(b);
    let bo = Session::login(&app, "bo.k1");
    let chef = Session::login(&app, "chef.lan");
    let k1_dev = app
        .deviations()
        .into_iter()
        .find(|d| matches!(d.unit.as_deref(), Some("K1" | "K1-HT")))
        .expect("a deviation of K1");
    assert_eq!(bo.get(&app, &format!("/avvikelser/{}", k1_dev.id)).status, 200);
    assert_eq!(bo.get(&app, "/avvikelser?case=C1").status, 200);
    assert_eq!(bo.get(&app, "/api/v1/cases/C1").status, 200);
    assert_eq!(chef.get(&app, "/api/v1/cases/C1").status, 200);
    let admin = Session::login(&app, "admin.anna");
    let by_user = admin.get(&app, "/loggkontroll?anvandare=bo.k1");
    assert_eq!(by_user.status, 200);
    assert!(by_user.body.contains("läste avvikelse"), "{}", by_user.body);
    assert!(by_user.body.contains("läste ärende"), "{}", by_user.body);
    assert!(by_user.body.contains("läste listan"), "{}", by_user.body);
    assert!(by_user.body.contains("<td>handläggare</td>"), "{}", by_user.body);
    assert!(!by_user.body.contains("chef.lan"), "{}", by_user.body);
    // By case: the filtered list and the reads of the case.
    let csv = admin.get(&app, "/loggkontroll.csv?objekt=C1");
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.lines().skip(1).collect();
    assert!(
        lines.iter().any(|l| l.contains("bo.k1") && l.contains("läste listan")),
        "{}",
        csv.body
    );
    assert!(
        lines.iter().any(|l| l.contains("bo.k1") && l.contains("läste ärende")),
        "{}",
        csv.body
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("chef.lan") && l.contains("läste ärende")),
        "{}",
        csv.body
    );
    assert!(lines.iter().all(|l| l.contains("C1")), "{}", csv.body);
    // A period before everything finds nothing; a bad date says what is wrong.
    let none = admin.get(&app, "/loggkontroll?from=2020-01-01&to=2020-01-31");
    assert!(none.body.contains("Inga rader."));
    assert_eq!(admin.get(&app, "/loggkontroll?from=igår").status, 400);
}
