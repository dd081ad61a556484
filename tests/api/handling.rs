//! People and the handling of a deviation (SPEC §6.1, §8, §9): the change
//! table by role, required texts, comments, login sessions with CSRF,
//! lock-out and expiry, the list's filters and paging under scope, and the
//! `user` command as a separate process.

use std::io::Write as _;

use diesel::prelude::*;
use svu_vakt::store::schema::{access_log, deviation_history, deviations, sessions};
use svu_vakt::store::tokens::Role;
use svu_vakt::store::DbConn;

use crate::helpers::{bin, spawn_app, token, Backend, Reply, TestApp, CASE_EVENTS, UNITS};

crate::on_both!(
    every_change_of_status_by_every_role_is_allowed_or_refused_as_the_table_says,
    a_change_without_its_required_text_is_422_and_changes_nothing,
    a_deviation_is_worked_to_closure_and_its_history_says_who_did_what,
    comments_are_kept_with_who_wrote_them_and_only_in_scope,
    a_session_works_for_the_api_and_a_change_without_its_csrf_token_is_refused,
    five_failed_logins_lock_the_account_and_a_new_password_lifts_it,
    an_idle_or_old_session_expires,
    the_list_filters_and_pages_and_counts_only_what_the_caller_may_see,
    users_are_created_disabled_and_given_passwords_by_the_command,
    pages_refuse_a_form_without_its_csrf_token_and_export_only_the_scope,
    concurrent_wrong_logins_lock_the_account_and_unknown_names_answer_alike,
    login_never_redirects_off_the_site_nor_takes_a_cross_site_post,
    a_handlaggare_reads_no_mail_address_in_the_history,
    a_deviation_is_assigned_only_to_a_person_of_its_unit,
);

/// Units AVD1, VC1, K1 with K1-HT below it; case C1 (kvittens late) and
/// three cases of AVD1 without an IM, scanned: deviations of AVD1 and more.
pub fn county(b: Backend) -> TestApp {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    assert_eq!(app.post_events(CASE_EVENTS).status, 200);
    let more: String = (2..=4)
        .map(|i| {
            format!(
                "{{\"id\":\"x{i}\",\"case\":\"C{i}\",\"type\":\"inskrivning\",\"at\":\"2026-05-0{i}T08:00:00+02:00\",\"unit\":\"AVD1\"}}\n"
            )
        })
        .collect();
    assert_eq!(app.post_events(&more).status, 200);
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    app
}

fn avd1_deviation(app: &TestApp) -> i64 {
    app.deviations()
        .iter()
        .find(|d| d.unit.as_deref() == Some("AVD1") && d.case_id.as_deref() == Some("C2"))
        .expect("a deviation of AVD1 for C2")
        .id
}

fn force_status(app: &TestApp, id: i64, status: &str) {
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    diesel::update(deviations::table.find(id))
        .set(deviations::status.eq(status))
        .execute(conn)
        .unwrap();
}

fn status_of(app: &TestApp, id: i64) -> String {
    svu_vakt::store::deviations::get(&mut app.conn(), id)
        .unwrap()
        .unwrap()
        .status
        .to_string()
}

fn history_len(app: &TestApp, id: i64) -> i64 {
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    deviation_history::table
        .filter(deviation_history::deviation_id.eq(id))
        .count()
        .get_result(conn)
        .unwrap()
}

fn change(app: &TestApp, who: &str, id: i64, body: serde_json::Value) -> Reply {
    app.request(
        "POST",
        &format!("/api/v1/deviations/{id}/status"),
        Some(who),
        Some(("application/json", &body.to_string())),
    )
}

const STATUSES: [&str; 8] = [
    "ny",
    "skickad",
    "mottagen",
    "utreds",
    "atgardad",
    "avslutad",
    "aterkallad",
    "makulerad",
];

/// SPEC §6.1, written out again here so that the test does not read the
/// code's own table.
fn spec_allows(role: &str, from: &str, to: &str) -> bool {
    let open = ["ny", "skickad", "mottagen", "utreds", "atgardad"];
    match (from, to) {
        ("ny" | "skickad", "mottagen") | ("mottagen", "utreds") | ("mottagen" | "utreds", "atgardad") => {
            matches!(role, "handlaggare" | "admin")
        }
        ("atgardad", "avslutad") => true,
        ("atgardad" | "avslutad", "utreds") => matches!(role, "ledning" | "admin"),
        (f, "makulerad") => open.contains(&f),
        _ => false,
    }
}

fn every_change_of_status_by_every_role_is_allowed_or_refused_as_the_table_says(b: Backend) {
    let app = county(b);
    let id = avd1_deviation(&app);
    let callers = [
        ("admin", app.admin.clone()),
        ("ledning", token(&app.pool, Role::Ledning, None)),
        ("handlaggare", token(&app.pool, Role::Handlaggare, Some("AVD1"))),
    ];
    let inlasning = token(&app.pool, Role::Inlasning, None);
    let full = |to: &str| serde_json::json!({"status": to, "note": "anteckning", "atgard": "rutinen ändrad", "reason": "fel underlag"});
    let mut checked = 0;
    for (role, t) in &callers {
        for from in STATUSES {
            for to in STATUSES {
                force_status(&app, id, from);
                let before = history_len(&app, id);
                let r = change(&app, t, id, full(to));
                if spec_allows(role, from, to) {
                    assert_eq!(r.status, 200, "{role} {from} → {to}: {}", r.body);
                    assert_eq!(r.json()["status"], to);
                    assert_eq!(status_of(&app, id), to);
                    assert_eq!(
                        history_len(&app, id),
                        before + 1,
                        "{role} {from} → {to} not in the history"
                    );
                } else {
                    assert_eq!(r.status, 409, "{role} {from} → {to} must be refused: {}", r.body);
                    assert_eq!(status_of(&app, id), from, "{role} {from} → {to} changed the status");
                    assert_eq!(history_len(&app, id), before, "{role} {from} → {to} wrote history");
                }
                checked += 1;
            }
        }
        // The ingest role changes nothing at all.
        let r = change(&app, &inlasning, id, full("mottagen"));
        assert_eq!(r.status, 403, "{}", r.body);
    }
    assert_eq!(checked, 3 * 8 * 8);
    // Another unit's handläggare cannot even find it.
    force_status(&app, id, "skickad");
    let other = token(&app.pool, Role::Handlaggare, Some("K1"));
    let r = change(&app, &other, id, full("mottagen"));
    let absent = change(&app, &other, 999_999, full("mottagen"));
    assert_eq!((r.status, r.body), (absent.status, absent.body));
    assert_eq!(status_of(&app, id), "skickad");
}

fn a_change_without_its_required_text_is_422_and_changes_nothing(b: Backend) {
    let app = county(b);
    let id = avd1_deviation(&app);
    let h = token(&app.pool, Role::Handlaggare, Some("AVD1"));
    let ledning = token(&app.pool, Role::Ledning, None);
    let cases = [
        ("utreds", &h, serde_json::json!({"status": "atgardad"}), "atgard"),
        (
            "utreds",
            &h,
            serde_json::json!({"status": "atgardad", "atgard": "   "}),
            "atgard",
        ),
        (
            "mottagen",
            &h,
            serde_json::json!({"status": "makulerad", "note": "dubblett"}),
            "reason",
        ),
        ("avslutad", &ledning, serde_json::json!({"status": "utreds"}), "note"),
        ("ny", &h, serde_json::json!({"note": "ingen status"}), "status"),
        ("ny", &h, serde_json::json!({"status": "klar"}), "klar"),
    ];
    for (from, who, body, named) in cases {
        force_status(&app, id, from);
        let before = history_len(&app, id);
        let r = change(&app, who, id, body.clone());
        assert_eq!(r.status, 422, "{from} with {body}: {}", r.body);
        assert!(r.json()["message"].as_str().unwrap().contains(named), "{}", r.body);
        assert_eq!(status_of(&app, id), from);
        assert_eq!(history_len(&app, id), before);
    }
    // Not JSON at all is a bad request, and changes nothing either.
    force_status(&app, id, "ny");
    let r = app.request(
        "POST",
        &format!("/api/v1/deviations/{id}/status"),
        Some(&h),
        Some(("application/json", "status=mottagen")),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(status_of(&app, id), "ny");
}

fn a_deviation_is_worked_to_closure_and_its_history_says_who_did_what(b: Backend) {
    let app = county(b);
    let id = avd1_deviation(&app);
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    let anna = Session::login(&app, "anna.avd1");
    for (body, expect) in [
        (serde_json::json!({"status": "mottagen"}), "mottagen"),
        (
            serde_json::json!({"status": "utreds", "note": "Ronden tittar på det"}),
            "utreds",
        ),
        (
            serde_json::json!({"status": "atgardad", "atgard": "IM skickas nu vid inskrivning, rutinen gicks igenom på APT"}),
            "atgardad",
        ),
        (serde_json::json!({"status": "avslutad"}), "avslutad"),
    ] {
        let r = anna.post(&app, &format!("/api/v1/deviations/{id}/status"), &body);
        assert_eq!(r.status, 200, "{body}: {}", r.body);
        assert_eq!(r.json()["status"], expect);
    }
    let d = anna.get(&app, &format!("/api/v1/deviations/{id}")).json();
    assert_eq!(
        d["atgard"],
        "IM skickas nu vid inskrivning, rutinen gicks igenom på APT"
    );
    assert_eq!(d["allowed"], serde_json::json!([]), "a handläggare cannot reopen: {d}");
    let steps: Vec<(String, String)> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["actor"] == "anna.avd1")
        .map(|h| {
            (
                h["from"].as_str().unwrap().to_string(),
                h["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let from_first = steps.first().map(|s| s.0.clone()).unwrap();
    assert!(from_first == "ny" || from_first == "skickad", "{steps:?}");
    assert_eq!(
        steps.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        ["mottagen", "utreds", "atgardad", "avslutad"]
    );
    let atgard_note = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["to"] == "atgardad")
        .unwrap()["note"]
        .clone();
    assert_eq!(
        atgard_note,
        "Åtgärd: IM skickas nu vid inskrivning, rutinen gicks igenom på APT"
    );
    // Ledning reopens with a note; the handläggare may then work it again.
    let ledning = token(&app.pool, Role::Ledning, None);
    let r = change(
        &app,
        &ledning,
        id,
        serde_json::json!({"status": "utreds", "note": "Åtgärden når inte orsaken"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = anna.get(&app, &format!("/api/v1/deviations/{id}")).json();
    assert_eq!(d["allowed"], serde_json::json!(["atgardad", "makulerad"]));
    // A scan afterwards leaves the handling alone.
    assert_eq!(app.scan("2026-05-21T00:00:00+02:00").status, 200);
    assert_eq!(status_of(&app, id), "utreds");
}

fn comments_are_kept_with_who_wrote_them_and_only_in_scope(b: Backend) {
    let app = county(b);
    let id = avd1_deviation(&app);
    let h = token(&app.pool, Role::Handlaggare, Some("AVD1"));
    let post = |who: &str, text: &str| {
        app.request(
            "POST",
            &format!("/api/v1/deviations/{id}/comments"),
            Some(who),
            Some(("application/json", &serde_json::json!({"text": text}).to_string())),
        )
    };
    let r = post(&h, "Ringde avdelningschefen");
    assert_eq!(r.status, 201, "{}", r.body);
    // Comments in every state, closed ones included.
    force_status(&app, id, "avslutad");
    assert_eq!(post(&h, "Uppföljning i december").status, 201);
    assert_eq!(post(&h, "   ").status, 422);
    assert_eq!(post(&h, &"x".repeat(4001)).status, 422);
    let other = token(&app.pool, Role::Handlaggare, Some("K1"));
    assert_eq!(post(&other, "smyg").status, 404);
    let d = app.get(&format!("/api/v1/deviations/{id}")).json();
    let texts: Vec<&str> = d["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Ringde avdelningschefen", "Uppföljning i december"]);
    assert!(d["comments"][0]["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(status_of(&app, id), "avslutad", "a comment changes no status");
}

/// A person logged in over the API: the cookie and the CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub const PASSWORD: &str = "ett långt lösenord 42";

pub fn create_user(app: &TestApp, name: &str, role: Role, units: &[&str]) -> i64 {
    let units: Vec<String> = units.iter().map(|u| u.to_string()).collect();
    svu_vakt::store::users::create(&mut app.conn(), name, PASSWORD, role, &units, None).unwrap()
}

fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (Reply, Option<String>) {
    let mut req = ureq::request(method, &format!("{}{path}", app.base));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(text) => req.set("Content-Type", "application/json").send_string(text),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let set_cookie = resp.header("Set-Cookie").map(String::from);
    let status = resp.status();
    (
        Reply {
            status,
            body: resp.into_string().unwrap(),
        },
        set_cookie,
    )
}

fn try_login(app: &TestApp, name: &str, password: &str) -> (Reply, Option<String>) {
    let body = serde_json::json!({"username": name, "password": password}).to_string();
    raw(app, "POST", "/api/v1/session", &[], Some(&body))
}

impl Session {
    pub fn login(app: &TestApp, name: &str) -> Session {
        let (r, set_cookie) = try_login(app, name, PASSWORD);
        assert_eq!(r.status, 200, "{}", r.body);
        let set_cookie = set_cookie.expect("a session cookie");
        let cookie = set_cookie.split(';').next().unwrap().trim().to_string();
        Session {
            cookie,
            csrf: r.json()["csrf"].as_str().unwrap().to_string(),
        }
    }

    pub fn get(&self, app: &TestApp, path: &str) -> Reply {
        raw(app, "GET", path, &[("Cookie", &self.cookie)], None).0
    }

    pub fn post(&self, app: &TestApp, path: &str, body: &serde_json::Value) -> Reply {
        raw(
            app,
            "POST",
            path,
            &[("Cookie", &self.cookie), ("X-CSRF-Token", &self.csrf)],
            Some(&body.to_string()),
        )
        .0
    }

    pub fn value(&self) -> &str {
        self.cookie.split_once('=').unwrap().1
    }
}

fn a_session_works_for_the_api_and_a_change_without_its_csrf_token_is_refused(b: Backend) {
    let app = county(b);
    let id = avd1_deviation(&app);
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    let (r, set_cookie) = try_login(&app, "anna.avd1", PASSWORD);
    assert_eq!(r.status, 200, "{}", r.body);
    let set_cookie = set_cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing: {set_cookie}");
    }
    let anna = Session::login(&app, "anna.avd1");
    let me = anna.get(&app, "/api/v1/session").json();
    assert_eq!(me["username"], "anna.avd1");
    assert_eq!(me["units"], serde_json::json!(["AVD1"]));
    // Reads work; each is logged under the person's name.
    assert_eq!(anna.get(&app, &format!("/api/v1/deviations/{id}")).status, 200);
    assert_eq!(anna.get(&app, "/api/v1/deviations?status=ny").status, 200);
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let logged: Vec<(String, String, String)> = access_log::table
        .filter(access_log::actor.eq("anna.avd1"))
        .order(access_log::id)
        .select((access_log::action, access_log::object, access_log::role))
        .load(conn)
        .unwrap();
    assert_eq!(
        logged,
        [
            ("read_deviation".to_string(), id.to_string(), "handlaggare".to_string()),
            (
                "list_deviations".to_string(),
                "?status=ny".to_string(),
                "handlaggare".to_string()
            )
        ]
    );
    drop(c);
    // A change without the CSRF token, or with a wrong one, is refused.
    let body = serde_json::json!({"status": "mottagen"}).to_string();
    let path = format!("/api/v1/deviations/{id}/status");
    let before = status_of(&app, id);
    let (r, _) = raw(&app, "POST", &path, &[("Cookie", &anna.cookie)], Some(&body));
    assert_eq!(r.status, 403, "{}", r.body);
    let (r, _) = raw(
        &app,
        "POST",
        &path,
        &[("Cookie", &anna.cookie), ("X-CSRF-Token", &"0".repeat(64))],
        Some(&body),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(status_of(&app, id), before);
    // With it, the change is made in her name.
    let r = anna.post(&app, &path, &serde_json::json!({"status": "mottagen"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["history"].as_array().unwrap().last().unwrap()["actor"],
        "anna.avd1"
    );
    // Logging out ends the session on the server, not only in the browser.
    let (r, cleared) = raw(
        &app,
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &anna.cookie), ("X-CSRF-Token", &anna.csrf)],
        None,
    );
    assert_eq!(r.status, 204);
    assert!(cleared.unwrap().contains("Max-Age=0"));
    assert_eq!(anna.get(&app, "/api/v1/session").status, 401);
    // A cookie that was never issued is no session.
    let (r, _) = raw(&app, "GET", "/api/v1/session", &[("Cookie", "svu_session=abc")], None);
    assert_eq!(r.status, 401);
    // A field the document does not name is refused, as in every request body.
    let body = serde_json::json!({"username": "anna.avd1", "password": PASSWORD, "remember": true}).to_string();
    let (r, cookie) = raw(&app, "POST", "/api/v1/session", &[], Some(&body));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("remember"), "{}", r.body);
    assert!(cookie.is_none());
}

fn five_failed_logins_lock_the_account_and_a_new_password_lifts_it(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    create_user(&app, "bo.k1", Role::Handlaggare, &["K1"]);
    // An unknown name and a wrong password get the same answer.
    let (unknown, _) = try_login(&app, "finns.inte", PASSWORD);
    let (wrong, _) = try_login(&app, "bo.k1", "fel lösenord!");
    assert_eq!(unknown.status, 401);
    assert_eq!(
        (unknown.status, unknown.body.clone()),
        (wrong.status, wrong.body.clone())
    );
    for _ in 0..3 {
        assert_eq!(try_login(&app, "bo.k1", "fel lösenord!").0.status, 401);
    }
    // The fifth failure locks; then even the right password is refused.
    let (fifth, _) = try_login(&app, "bo.k1", "fel lösenord!");
    assert_eq!(fifth.status, 429, "{}", fifth.body);
    let (right, cookie) = try_login(&app, "bo.k1", PASSWORD);
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(right.json()["message"].as_str().unwrap().contains("låst"));
    assert!(cookie.is_none());
    // An admin sets a new password: the lock is lifted.
    svu_vakt::store::users::set_password(&mut app.conn(), "bo.k1", "ett nytt långt lösenord").unwrap();
    let (r, _) = try_login(&app, "bo.k1", "ett nytt långt lösenord");
    assert_eq!(r.status, 200, "{}", r.body);
}

fn age(app: &TestApp, s: &Session, created_hours: i64, seen_minutes: i64) {
    use sha2::Digest as _;
    let hash = hex::encode(sha2::Sha256::digest(s.value().as_bytes()));
    let now = chrono::Utc::now().naive_utc();
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let n = diesel::update(sessions::table.find(hash))
        .set((
            sessions::created_at.eq(now - chrono::Duration::hours(created_hours)),
            sessions::last_seen_at.eq(now - chrono::Duration::minutes(seen_minutes)),
        ))
        .execute(conn)
        .unwrap();
    assert_eq!(n, 1);
}

fn an_idle_or_old_session_expires(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    create_user(&app, "cilla", Role::Ledning, &[]);
    let s = Session::login(&app, "cilla");
    age(&app, &s, 1, 29);
    assert_eq!(
        s.get(&app, "/api/v1/session").status,
        200,
        "29 minutes idle is still live"
    );
    age(&app, &s, 1, 31);
    assert_eq!(
        s.get(&app, "/api/v1/session").status,
        401,
        "31 minutes idle has expired"
    );
    // Busy all day: the absolute limit of 12 hours still ends it.
    let s = Session::login(&app, "cilla");
    age(&app, &s, 11, 0);
    assert_eq!(s.get(&app, "/api/v1/session").status, 200);
    age(&app, &s, 13, 0);
    assert_eq!(s.get(&app, "/api/v1/session").status, 401);
}

fn total(r: &Reply) -> usize {
    r.json().as_array().unwrap().len()
}

fn the_list_filters_and_pages_and_counts_only_what_the_caller_may_see(b: Backend) {
    let app = county(b);
    let all = app.deviations();
    assert!(all.len() >= 4, "{all:?}");
    let admin_list = app.get("/api/v1/deviations");
    assert_eq!(total(&admin_list), all.len());
    // Newest due first.
    let dues: Vec<String> = admin_list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["due"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = dues.clone();
    sorted.sort_by(|a, b| {
        chrono::DateTime::parse_from_rfc3339(b)
            .unwrap()
            .cmp(&chrono::DateTime::parse_from_rfc3339(a).unwrap())
    });
    assert_eq!(dues, sorted);
    // Paging: two per page, every deviation exactly once, the total in a header.
    let mut seen = Vec::new();
    for page in 1..=all.len().div_ceil(2) {
        let r = ureq::get(&format!("{}/api/v1/deviations?per_page=2&page={page}", app.base))
            .set("Authorization", &format!("Bearer {}", app.admin))
            .call()
            .unwrap();
        assert_eq!(r.header("X-Total-Count"), Some(all.len().to_string().as_str()));
        let rows: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        seen.extend(rows.as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()));
    }
    seen.sort_unstable();
    let mut ids: Vec<i64> = all.iter().map(|d| d.id).collect();
    ids.sort_unstable();
    assert_eq!(seen, ids);
    // Filters, alone and together.
    let of_avd1 = all.iter().filter(|d| d.unit.as_deref() == Some("AVD1")).count();
    assert_eq!(total(&app.get("/api/v1/deviations?unit=AVD1")), of_avd1);
    let im = all.iter().filter(|d| d.rule == "inskrivningsmeddelande_24h").count();
    assert_eq!(
        total(&app.get("/api/v1/deviations?rule=inskrivningsmeddelande_24h")),
        im
    );
    assert_eq!(
        total(&app.get("/api/v1/deviations?case=C3")),
        all.iter().filter(|d| d.case_id.as_deref() == Some("C3")).count()
    );
    let may3 = all
        .iter()
        .filter(|d| {
            svu_vakt::calendar::in_stockholm(d.due.and_utc()).date_naive()
                == chrono::NaiveDate::from_ymd_opt(2026, 5, 3).unwrap()
        })
        .count();
    assert!(may3 > 0);
    assert_eq!(
        total(&app.get("/api/v1/deviations?from=2026-05-03&to=2026-05-03")),
        may3
    );
    assert_eq!(total(&app.get("/api/v1/deviations?status=avslutad")), 0);
    assert_eq!(app.get("/api/v1/deviations?status=klar").status, 400);
    assert_eq!(app.get("/api/v1/deviations?per_page=0").status, 400);
    assert_eq!(app.get("/api/v1/deviations?from=igår").status, 400);
    // Scope applies to the rows and to the count: K1's handläggare asks for
    // AVD1's deviations and gets none, and the total says none.
    let k1 = token(&app.pool, Role::Handlaggare, Some("K1"));
    let r = ureq::get(&format!("{}/api/v1/deviations?unit=AVD1", app.base))
        .set("Authorization", &format!("Bearer {k1}"))
        .call()
        .unwrap();
    assert_eq!(r.header("X-Total-Count"), Some("0"));
    // A ledning user with units sees that subtree; without, the county.
    create_user(&app, "ledning.k1", Role::Ledning, &["K1"]);
    create_user(&app, "ledning.lan", Role::Ledning, &[]);
    let in_k1 = all
        .iter()
        .filter(|d| matches!(d.unit.as_deref(), Some("K1" | "K1-HT")))
        .count();
    assert_eq!(
        total(&Session::login(&app, "ledning.k1").get(&app, "/api/v1/deviations")),
        in_k1
    );
    assert_eq!(
        total(&Session::login(&app, "ledning.lan").get(&app, "/api/v1/deviations")),
        all.len()
    );
    // A handläggare of two units sees both.
    create_user(&app, "dubbel", Role::Handlaggare, &["AVD1", "K1"]);
    assert_eq!(
        total(&Session::login(&app, "dubbel").get(&app, "/api/v1/deviations")),
        of_avd1 + in_k1
    );
}

fn users_are_created_disabled_and_given_passwords_by_the_command(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    let url = app.db.url();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = bin()
            .args(args)
            .args(["--database-url", &url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, _, err) = run(
        &[
            "user",
            "create",
            "--username",
            "eva.ht",
            "--role",
            "handlaggare",
            "--unit",
            "K1-HT",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    let eva = Session::login(&app, "eva.ht");
    assert_eq!(
        eva.get(&app, "/api/v1/session").json()["units"],
        serde_json::json!(["K1-HT"])
    );
    // Refusals name what is wrong, in Swedish, and create nothing.
    let (ok, _, err) = run(
        &["user", "create", "--username", "utan.enhet", "--role", "handlaggare"],
        Some("x\n"),
    );
    assert!(!ok);
    assert!(err.contains("minst en enhet"), "{err}");
    let (ok, _, err) = run(
        &[
            "user",
            "create",
            "--username",
            "ny",
            "--role",
            "handlaggare",
            "--unit",
            "FINNS-INTE",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(!ok);
    assert!(err.contains("FINNS-INTE"), "{err}");
    let (ok, _, err) = run(
        &["user", "create", "--username", "eva.ht", "--role", "admin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(!ok && err.contains("finns redan"), "{err}");
    let (ok, _, err) = run(
        &["user", "create", "--username", "kort", "--role", "admin"],
        Some("kort\n"),
    );
    assert!(!ok && err.contains("minst 10 tecken"), "{err}");
    assert_eq!(svu_vakt::store::users::list(&mut app.conn()).unwrap().len(), 1);
    // No password given: one is generated and printed once.
    let (ok, out, err) = run(&["user", "create", "--username", "admin2", "--role", "admin"], None);
    assert!(ok, "{err}");
    let generated = out.lines().last().unwrap().trim().to_string();
    assert_eq!(generated.len(), 20, "{out}");
    let (r, _) = try_login(&app, "admin2", &generated);
    assert_eq!(r.status, 200, "{}", r.body);
    // A new password ends the old sessions.
    let (ok, _, err) = run(
        &["user", "passwd", "--username", "eva.ht"],
        Some("ett helt annat lösenord\n"),
    );
    assert!(ok, "{err}");
    assert_eq!(eva.get(&app, "/api/v1/session").status, 401);
    assert_eq!(try_login(&app, "eva.ht", PASSWORD).0.status, 401);
    assert_eq!(try_login(&app, "eva.ht", "ett helt annat lösenord").0.status, 200);
    // Disabled: logged out and no new login, with the same answer as a wrong password.
    let admin2 = Session::login_with(&app, "admin2", &generated);
    let (ok, _, err) = run(&["user", "disable", "--username", "admin2"], None);
    assert!(ok, "{err}");
    assert_eq!(admin2.get(&app, "/api/v1/session").status, 401);
    let (r, _) = try_login(&app, "admin2", &generated);
    assert_eq!(r.status, 401, "{}", r.body);
    // An HSA-id at creation, units and role changed later; the change ends
    // the person's sessions so the next request sees the new scope.
    let (ok, _, err) = run(
        &[
            "user",
            "create",
            "--username",
            "dan.k1",
            "--role",
            "handlaggare",
            "--unit",
            "K1",
            "--hsa-id",
            "SE2321000016-D4N",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    let dan = Session::login(&app, "dan.k1");
    let (ok, out, err) = run(
        &[
            "user",
            "update",
            "--username",
            "dan.k1",
            "--role",
            "ledning",
            "--unit",
            "K1",
            "--unit",
            "K1-HT",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("K1, K1-HT") && out.contains("SE2321000016-D4N"), "{out}");
    assert_eq!(dan.get(&app, "/api/v1/session").status, 401);
    let dan = Session::login(&app, "dan.k1");
    let me = dan.get(&app, "/api/v1/session").json();
    assert_eq!(
        (me["role"].as_str(), me["units"].clone()),
        (Some("ledning"), serde_json::json!(["K1", "K1-HT"]))
    );
    let (ok, _, err) = run(&["user", "update", "--username", "dan.k1"], None);
    assert!(!ok && err.contains("inget att ändra"), "{err}");
    let (ok, _, err) = run(
        &["user", "update", "--username", "eva.ht", "--hsa-id", "SE2321000016-D4N"],
        None,
    );
    assert!(!ok && err.contains("tillhör redan"), "{err}");
    let (ok, _, err) = run(&["user", "update", "--username", "dan.k1", "--no-hsa-id"], None);
    assert!(ok, "{err}");
    let dan_now = svu_vakt::store::users::list(&mut app.conn())
        .unwrap()
        .into_iter()
        .find(|u| u.username == "dan.k1")
        .unwrap();
    assert_eq!(dan_now.hsa_id, None);
}

impl Session {
    pub fn login_with(app: &TestApp, name: &str, password: &str) -> Session {
        let (r, set_cookie) = try_login(app, name, password);
        assert_eq!(r.status, 200, "{}", r.body);
        Session {
            cookie: set_cookie.unwrap().split(';').next().unwrap().trim().to_string(),
            csrf: r.json()["csrf"].as_str().unwrap().to_string(),
        }
    }
}

/// A form posted as the browser would, redirects not followed.
pub fn form(app: &TestApp, s: &Session, path: &str, fields: &[(&str, &str)]) -> Reply {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let resp = agent
        .post(&format!("{}{path}", app.base))
        .set("Cookie", &s.cookie)
        .send_form(fields);
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    Reply {
        status: resp.status(),
        body: resp.into_string().unwrap(),
    }
}

fn pages_refuse_a_form_without_its_csrf_token_and_export_only_the_scope(b: Backend) {
    let app = county(b);
    let id = avd1_deviation(&app);
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    create_user(&app, "bo.k1", Role::Handlaggare, &["K1"]);
    let anna = Session::login(&app, "anna.avd1");
    let before = status_of(&app, id);
    let path = format!("/avvikelser/{id}/status");
    for fields in [
        vec![("status", "mottagen")],
        vec![("status", "mottagen"), ("csrf", "fel")],
    ] {
        let r = form(&app, &anna, &path, &fields);
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("CSRF"), "{}", r.body);
    }
    let r = form(
        &app,
        &anna,
        &format!("/avvikelser/{id}/kommentarer"),
        &[("text", "smyg")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(status_of(&app, id), before);
    assert!(svu_vakt::store::deviations::comments_of(&mut app.conn(), id)
        .unwrap()
        .is_empty());
    // With the token the same form works, and leads back to the page.
    let r = form(&app, &anna, &path, &[("status", "mottagen"), ("csrf", &anna.csrf)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = anna.get(&app, &format!("/avvikelser/{id}?sparat=status"));
    assert!(page.body.contains("Statusen är sparad."));
    assert_eq!(status_of(&app, id), "mottagen");
    // A refused change re-shows the page with the reason and changes nothing.
    let r = form(&app, &anna, &path, &[("status", "avslutad"), ("csrf", &anna.csrf)]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("inte tillåten"), "{}", r.body);
    let r = form(&app, &anna, &path, &[("status", "atgardad"), ("csrf", &anna.csrf)]);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("åtgärd (atgard) krävs"), "{}", r.body);
    assert_eq!(status_of(&app, id), "mottagen");
    // A page without a session leads to the login, keeping where it was going.
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let r = agent.get(&format!("{}/avvikelser/{id}", app.base)).call().unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.header("Location"),
        Some(format!("/login?next=/avvikelser/{id}").as_str())
    );
    // The CSV export holds the caller's scope only, and is logged as an export.
    let bo = Session::login(&app, "bo.k1");
    let csv = bo.get(&app, "/avvikelser.csv");
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with("\u{feff}id;regel;"), "{}", csv.body);
    let in_k1 = app
        .deviations()
        .iter()
        .filter(|d| matches!(d.unit.as_deref(), Some("K1" | "K1-HT")))
        .count();
    assert_eq!(csv.body.lines().count(), 1 + in_k1, "{}", csv.body);
    assert!(!csv.body.contains(";AVD1;"), "{}", csv.body);
    let all = Session::login(&app, "anna.avd1").get(&app, "/avvikelser.csv");
    assert!(all.body.contains(";AVD1;"));
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let exports: i64 = access_log::table
        .filter(access_log::action.eq("export_deviations"))
        .filter(access_log::actor.eq("bo.k1"))
        .count()
        .get_result(conn)
        .unwrap();
    assert_eq!(exports, 1);
}

fn concurrent_wrong_logins_lock_the_account_and_unknown_names_answer_alike(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    create_user(&app, "bo.k1", Role::Handlaggare, &["K1"]);
    // Twelve wrong passwords at once: each is counted, so the account locks.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| s.spawn(|| try_login(&app, "bo.k1", "fel lösenord!").0.status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 4, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    let (r, cookie) = try_login(&app, "bo.k1", PASSWORD);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(cookie.is_none());
    // A name that does not exist answers exactly like one that does: four
    // times "wrong", then locked, with the same words.
    let mut answers = Vec::new();
    for _ in 0..6 {
        let (r, _) = try_login(&app, "finns.inte", "fel lösenord!");
        answers.push(r.status);
        if r.status == 429 {
            assert!(r.json()["message"].as_str().unwrap().contains("kontot är låst"));
        }
    }
    assert_eq!(answers, [401, 401, 401, 401, 429, 429]);
}

fn login_never_redirects_off_the_site_nor_takes_a_cross_site_post(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_units(UNITS).status, 200);
    create_user(&app, "bo.k1", Role::Handlaggare, &["K1"]);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let post = |next: &str, origin: Option<&str>| {
        let mut req = agent.post(&format!("{}/login", app.base));
        if let Some(o) = origin {
            req = req.set("Origin", o);
        }
        match req.send_form(&[("username", "bo.k1"), ("password", PASSWORD), ("next", next)]) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        }
    };
    for next in [
        "//evil.example",
        "/\t/evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/ /evil.example",
    ] {
        let r = post(next, None);
        assert_eq!(r.status(), 303, "{next}");
        assert_eq!(r.header("Location"), Some("/avvikelser"), "{next}");
    }
    let r = post("/avvikelser/5?sparat=status", None);
    assert_eq!(r.header("Location"), Some("/avvikelser/5?sparat=status"));
    // A login posted from another site is refused and starts no session.
    let r = post("/avvikelser", Some("https://evil.example"));
    assert_eq!(r.status(), 403);
    assert!(r.header("Set-Cookie").is_none());
    let host = app.base.trim_start_matches("http://").to_string();
    assert_eq!(post("/avvikelser", Some(&format!("http://{host}"))).status(), 303);
    // The API's login takes JSON only: a cross-site form cannot post it.
    let r = ureq::post(&format!("{}/api/v1/session", app.base))
        .set("Content-Type", "text/plain")
        .send_string(&serde_json::json!({"username": "bo.k1", "password": PASSWORD}).to_string());
    let status = match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status, 400);
}

fn a_handlaggare_reads_no_mail_address_in_the_history(b: Backend) {
    let app = county(b);
    let id = avd1_deviation(&app);
    svu_vakt::store::deviations::history(
        &mut app.conn(),
        id,
        "svu-vakt",
        Some("ny".parse().unwrap()),
        "skickad".parse().unwrap(),
        Some("mejlad till avd1@example.se"),
    )
    .unwrap();
    let h = token(&app.pool, Role::Handlaggare, Some("AVD1"));
    let seen = app
        .request("GET", &format!("/api/v1/deviations/{id}"), Some(&h), None)
        .body;
    assert!(!seen.contains("avd1@example.se"), "{seen}");
    assert!(seen.contains("mejlad till mottagaren"), "{seen}");
    assert!(app
        .get(&format!("/api/v1/deviations/{id}"))
        .body
        .contains("avd1@example.se"));
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    let page = Session::login(&app, "anna.avd1")
        .get(&app, &format!("/avvikelser/{id}"))
        .body;
    assert!(!page.contains("avd1@example.se"), "{page}");
    // A ledning user with units sees no unit addresses either.
    create_user(&app, "chef.k1", Role::Ledning, &["K1"]);
    let units = Session::login(&app, "chef.k1").get(&app, "/api/v1/units").body;
    assert!(!units.contains("avd1@example.se"), "{units}");
}

fn a_deviation_is_assigned_only_to_a_person_of_its_unit(b: Backend) {
    let app = county(b);
    let id = avd1_deviation(&app);
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    create_user(&app, "bo.k1", Role::Handlaggare, &["K1"]);
    let assign = |who: &str, body: serde_json::Value| {
        app.request(
            "POST",
            &format!("/api/v1/deviations/{id}/assignee"),
            Some(who),
            Some(("application/json", &body.to_string())),
        )
    };
    let admin = app.admin.clone();
    let r = assign(&admin, serde_json::json!({"username": "anna.avd1"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["assigned_to"], "anna.avd1");
    // Someone who does not work with the unit cannot be given it.
    let r = assign(&admin, serde_json::json!({"username": "bo.k1"}));
    assert_eq!(r.status, 422, "{}", r.body);
    let r = assign(&admin, serde_json::json!({"username": "finns.inte"}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        app.get(&format!("/api/v1/deviations/{id}")).json()["assigned_to"],
        "anna.avd1"
    );
    // Another unit's handläggare cannot even find it.
    let k1 = token(&app.pool, Role::Handlaggare, Some("K1"));
    assert_eq!(assign(&k1, serde_json::json!({"username": null})).status, 404);
    // On the page, with the form's token; then nobody.
    let anna = Session::login(&app, "anna.avd1");
    let page = anna.get(&app, &format!("/avvikelser/{id}")).body;
    assert!(page.contains("<option value=\"anna.avd1\" selected>"), "{page}");
    assert!(!page.contains("bo.k1"), "only people of the unit are offered: {page}");
    let r = form(
        &app,
        &anna,
        &format!("/avvikelser/{id}/tilldela"),
        &[("csrf", &anna.csrf), ("username", "")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let d = app.get(&format!("/api/v1/deviations/{id}")).json();
    assert!(d["assigned_to"].is_null(), "{d}");
    let notes: Vec<&str> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["note"].as_str())
        .collect();
    assert!(
        notes.contains(&"tilldelad anna.avd1") && notes.contains(&"ingen tilldelad"),
        "{notes:?}"
    );
}
