//! The holes found by trying to break the service from the outside (issue
//! 20), each shut and held shut: memory and metric series an anonymous
//! caller could grow, clear text kept from CSV rows, a personnummer as an
//! id, a unit loop widening a scope, a scan body misread, English or empty
//! errors, list reads the access-log search missed.

use std::io::{Read, Write};
use std::net::TcpStream;

use diesel::prelude::*;
use svu_vakt::store::tokens::{self, Role};

use crate::handling::{county, create_user, form, Session};
use crate::helpers::{bin, spawn_app, spawn_app_with, spawn_on, token, Backend, Child, TestApp};

crate::on_both!(
    a_user_name_is_bounded_and_unknown_names_lock_in_the_database,
    made_up_methods_and_paths_add_no_metric_series,
    a_csv_import_keeps_only_the_mapped_fields,
    an_id_that_is_a_personnummer_is_refused_and_nothing_is_stored,
    a_unit_loop_is_refused_everywhere_and_a_stored_one_never_widens_a_scope,
    a_scan_body_that_cannot_be_read_is_refused,
    errors_before_a_handler_are_ours_in_swedish,
    a_list_read_is_found_by_its_case_however_the_query_is_spelled,
    what_the_document_forbids_is_refused_and_what_it_allows_is_taken,
    csv_rows_stored_before_are_scrubbed_by_the_migration,
    two_updates_at_once_never_store_a_loop,
);

/// A request written by hand, for methods and bodies a client would not send.
fn raw_http(app: &TestApp, head: &str, body: &[u8]) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.replace('\n', "\r\n").as_bytes()).unwrap();
    s.write_all(b"\r\n").unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

fn login_as(app: &TestApp, name: &str) -> u16 {
    let body = serde_json::json!({"username": name, "password": "fel lösenord"}).to_string();
    app.request("POST", "/api/v1/session", None, Some(("application/json", &body)))
        .status
}

fn a_user_name_is_bounded_and_unknown_names_lock_in_the_database(b: Backend) {
    let app = spawn_app(b);
    let long = "å".repeat(201);
    assert_eq!(login_as(&app, &long), 400);
    let count = |app: &TestApp| svu_vakt::store::unknown_logins::count(&mut app.conn()).unwrap();
    assert_eq!(count(&app), 0, "a refused name is not kept");
    // Five failures lock a name no account has, like a real one's.
    let answers: Vec<u16> = (0..5).map(|_| login_as(&app, "ingen.sadan")).collect();
    assert_eq!(answers, [401, 401, 401, 401, 429]);
    assert_eq!(count(&app), 1);
    let dump = app.db.dump();
    assert!(!dump.contains("ingen.sadan"), "only the name's keyed hash is kept");
    use sha2::Digest as _;
    let plain = hex::encode(sha2::Sha256::digest(b"ingen.sadan"));
    assert!(
        !dump.contains(&plain),
        "an unkeyed hash of a typed name can be reversed"
    );
    // The lock is in the database: another instance (or a restart) keeps it.
    let cfg = crate::helpers::config(&app.db);
    let again = spawn_on(crate::helpers::TestDb::Shared { url: app.db.url() }, cfg);
    assert_eq!(login_as(&again, "ingen.sadan"), 429);
    // However many names are tried, at most KEPT are remembered.
    {
        let mut c = again.conn();
        let conn: &mut svu_vakt::store::DbConn = &mut c;
        diesel::sql_query(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             INSERT INTO unknown_logins (name_hash, failed, touched) SELECT 'h' || i, 1, CURRENT_TIMESTAMP FROM n",
            svu_vakt::store::unknown_logins::KEPT
        ))
        .execute(conn)
        .unwrap();
    }
    assert_eq!(login_as(&again, "en.till"), 401);
    assert!(
        count(&again) <= svu_vakt::store::unknown_logins::KEPT,
        "{}",
        count(&again)
    );
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The release-like case of the report: a real `serve`, 130 logins with
/// 2 MB user names from an anonymous caller; the process keeps none of them.
#[test]
fn sqlite_long_user_names_do_not_grow_the_servers_memory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("svu.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Child(
        bin()
            .args([
                "serve",
                "--database-url",
                &url,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    // Up to a minute, and a clear failure past it: ten seconds were too
    // few for a `serve` started while the whole suite runs on two cores.
    crate::reliability::wait_ready(&base);
    let login = |name: &str| {
        let body = serde_json::json!({"username": name, "password": "x"}).to_string();
        match ureq::post(&format!("{base}/api/v1/session"))
            .set("Content-Type", "application/json")
            .send_string(&body)
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    };
    // Warm up the allocator and the workers before measuring.
    for i in 0..10 {
        login(&format!("{i}{}", "x".repeat(2 << 20)));
    }
    let before = rss_kib(child.0.id());
    for i in 0..130 {
        assert_eq!(login(&format!("{i}{}", "n".repeat(2 << 20))), 400);
    }
    let grown = rss_kib(child.0.id()).saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "resident memory grew by {grown} KiB over 130 long names"
    );
}

fn series(app: &TestApp) -> (usize, usize) {
    let text = app.request("GET", "/metrics", None, None).body;
    let n = text
        .lines()
        .filter(|l| l.starts_with("svu_vakt_http_request_duration_seconds_count"))
        .count();
    (n, text.len())
}

fn made_up_methods_and_paths_add_no_metric_series(b: Backend) {
    let app = spawn_app(b);
    series(&app);
    let (before, _) = series(&app);
    for i in 0..20 {
        raw_http(
            &app,
            &format!("BREW{i} /api/v1/scans HTTP/1.1\nHost: x\nConnection: close\n"),
            b"",
        );
        raw_http(
            &app,
            &format!("GET /finns/inte/{i} HTTP/1.1\nHost: x\nConnection: close\n"),
            b"",
        );
    }
    let (status, _) = raw_http(
        &app,
        &format!("{} / HTTP/1.1\nHost: x\nConnection: close\n", "X".repeat(8000)),
        b"",
    );
    assert_ne!(status, 200);
    let (after, size) = series(&app);
    // Whatever the method and path: `other` on an API path (405), `other`
    // and GET on unknown paths (404), nothing per request.
    assert!(after <= before + 3, "{before} series before, {after} after");
    let text = app.request("GET", "/metrics", None, None).body;
    assert!(!text.contains("BREW") && !text.contains("XXXX") && !text.contains("/finns/inte"));
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(size < 40_000, "the scrape is {size} bytes");
}

fn a_csv_import_keeps_only_the_mapped_fields(b: Backend) {
    let app = spawn_app(b);
    let dir = tempfile::tempdir().unwrap();
    let export = crate::import::EXPORT
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{l};Patientnamn;Kommentar\n"),
            _ => format!("{l};Tolvan Tolvansson;pnr 19121212-1212 ringde\n"),
        })
        .collect::<String>();
    std::fs::write(dir.path().join("export.csv"), export).unwrap();
    std::fs::write(dir.path().join("mapping.toml"), crate::import::MAPPING).unwrap();
    let out = bin()
        .args(["import", "--database-url", &app.db.url(), "--events"])
        .arg(dir.path().join("export.csv"))
        .arg("--mapping")
        .arg(dir.path().join("mapping.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.event_count(), 5);
    let dump = app.db.dump();
    for secret in ["Tolvan", "ringde", "19121212", "19900101-0017", "199001010017"] {
        assert!(!dump.contains(secret), "`{secret}` is stored");
    }
    // A bad row's report names the line and field, never a cell's content.
    let bad = "Händelse-id;Ärendenummer;Händelsetyp;Tidpunkt;Utförande enhet;Mottagare;Avser;Värde;Personnummer;Patientnamn\n\
               b1;C9;Inskrivning;2026-05-04 08:00;AVD1;;;;19121212-1213;Tolvan Tolvansson\n";
    std::fs::write(dir.path().join("bad.csv"), bad).unwrap();
    let out = bin()
        .args(["import", "--database-url", &app.db.url(), "--events"])
        .arg(dir.path().join("bad.csv"))
        .arg("--mapping")
        .arg(dir.path().join("mapping.toml"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(said.contains("rad 2") && said.contains("patient"), "{said}");
    assert!(!said.contains("Tolvan") && !said.contains("1212-1213"), "{said}");
}

fn an_id_that_is_a_personnummer_is_refused_and_nothing_is_stored(b: Backend) {
    let app = spawn_app(b);
    let good =
        r#"{"id":"ok1","case":"SVU-1-000068","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#;
    for (field, line) in [
        (
            "case",
            r#"{"id":"p1","case":"19121212-1212","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        ),
        (
            "case",
            r#"{"id":"p2","case":"SVU-19121212-1212","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        ),
        (
            "id",
            r#"{"id":"121212+1212","case":"C1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        ),
        (
            "id",
            r#"{"id":"191212121212","case":"C1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        ),
        (
            "case",
            r#"{"id":"p5","case":"1212121212","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        ),
        (
            "ref",
            r#"{"id":"p6","case":"C1","type":"kvittens","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","ref":"19121212-1212"}"#,
        ),
        (
            "case",
            r#"{"id":"p7","case":"19121212–1212","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#,
        ),
    ] {
        let r = app.post_events(&format!("{good}\n{line}\n"));
        assert_eq!(r.status, 400, "{line}: {}", r.body);
        let errors = r.json()["errors"].clone();
        assert_eq!(errors[0]["line"], 2, "{}", r.body);
        assert_eq!(errors[0]["field"], field, "{}", r.body);
        assert!(
            !r.body.contains("1212-1212") && !r.body.contains("121212+"),
            "{}",
            r.body
        );
        assert_eq!(app.event_count(), 0, "nothing of the batch is stored");
    }
    // A source whose own ids are bare ten-digit numbers switches that form off.
    let lenient = spawn_app_with(b, |c| c.ingest.refuse_ten_digit_ids = false);
    let ten = r#"{"id":"1212121212","case":"1212121212","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#;
    assert_eq!(lenient.post_events(ten).status, 200);
    let dashed =
        r#"{"id":"x","case":"121212-1212","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#;
    assert_eq!(lenient.post_events(dashed).status, 400);
}

/// Two wards under one klinik; a handläggare of ward W1.
const TREE: &str = r#"[
 {"id":"KL","name":"Kliniken","kind":"slutenvard","huvudman":"Region Östergötland"},
 {"id":"W1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Östergötland","parent":"KL"},
 {"id":"W2","name":"Avdelning 2","kind":"slutenvard","huvudman":"Region Östergötland","parent":"KL"},
 {"id":"U4","name":"U4","kind":"kommun","huvudman":"Linköpings kommun"},
 {"id":"U5","name":"U5","kind":"kommun","huvudman":"Linköpings kommun","parent":"U4"}
]"#;

fn visible_cases(app: &TestApp, t: &str) -> Vec<String> {
    let list = app
        .request("GET", "/api/v1/deviations?per_page=1000", Some(t), None)
        .json();
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["case"].as_str().unwrap().to_string())
        .collect()
}

fn a_unit_loop_is_refused_everywhere_and_a_stored_one_never_widens_a_scope(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_units(TREE).status, 200);
    for (i, ward) in ["W1", "W2"].iter().enumerate() {
        let ev = format!(
            r#"{{"id":"i{i}","case":"C-{ward}","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"{ward}"}}"#
        );
        assert_eq!(app.post_events(&ev).status, 200);
    }
    assert_eq!(app.scan("2026-05-10T00:00:00+02:00").status, 200);
    let w1 = token(&app.pool, Role::Handlaggare, Some("W1"));
    assert_eq!(visible_cases(&app, &w1), ["C-W1"]);
    let before = app.get("/api/v1/units").body;
    for loop_ in [
        r#"[{"id":"U4","name":"U4","kind":"kommun","huvudman":"Linköpings kommun","parent":"U5"}]"#,
        r#"[{"id":"KL","name":"Kliniken","kind":"slutenvard","huvudman":"Region Östergötland","parent":"W1"}]"#,
        r#"[{"id":"W1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Östergötland","parent":"W1"}]"#,
    ] {
        let r = app.post_units(loop_);
        assert_eq!(r.status, 400, "{loop_}: {}", r.body);
        assert!(
            r.body.contains("slinga") || r.body.contains("sin egen överordnade"),
            "{}",
            r.body
        );
    }
    assert!(app.post_units(TREE).body.contains("\"updated\":5"));
    assert_eq!(
        app.get("/api/v1/units").body,
        before,
        "nothing of a refused batch is stored"
    );
    assert_eq!(visible_cases(&app, &w1), ["C-W1"]);
    // The CLI import and the units page refuse it too, naming the units.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("units.json");
    std::fs::write(
        &file,
        r#"[{"id":"KL","name":"Kliniken","kind":"slutenvard","huvudman":"Region Östergötland","parent":"W2"}]"#,
    )
    .unwrap();
    let out = bin()
        .args(["import", "--database-url", &app.db.url(), "--units"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("KL") && said.contains("W2") && said.contains("slinga"),
        "{said}"
    );
    create_user(&app, "ida.it", Role::Admin, &[]);
    let ida = Session::login(&app, "ida.it");
    let fields = [
        ("csrf", ida.csrf.as_str()),
        ("id", "KL"),
        ("name", "Kliniken"),
        ("kind", "slutenvard"),
        ("huvudman", "Region Östergötland"),
        ("parent", "W1"),
        ("storhelg", "true"),
    ];
    let r = form(&app, &ida, "/enheter", &fields);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("slinga") && r.body.contains("W1"), "{}", r.body);
    assert_eq!(app.get("/api/v1/units").body, before);
    // A loop already stored (by hand, or before loops were refused) is not
    // followed: the ward's handläggare still sees only the ward.
    {
        use svu_vakt::store::schema::units;
        let mut c = app.conn();
        let conn: &mut svu_vakt::store::DbConn = &mut c;
        diesel::update(units::table.find("KL"))
            .set(units::parent.eq(Some("W1")))
            .execute(conn)
            .unwrap();
    }
    assert_eq!(visible_cases(&app, &w1), ["C-W1"]);
    // A report that walks the tree upwards answers too (the loop lies
    // outside the ward's scope, so a walk bounded by what it sees would spin).
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(30))
        .build();
    let r = agent
        .get(&format!(
            "{}/api/v1/reports/adherence?from=2026-01-01&to=2026-12-31&group=subtree",
            app.base
        ))
        .set("Authorization", &format!("Bearer {w1}"))
        .call()
        .expect("the adherence report answers with a loop stored");
    assert_eq!(r.status(), 200);
    let kl = token(&app.pool, Role::Handlaggare, Some("KL"));
    let mut seen = visible_cases(&app, &kl);
    seen.sort();
    assert_eq!(
        seen,
        ["C-W2"],
        "on a loop, KL keeps what is below it and W1 is no longer under it"
    );
}

fn scan_runs(app: &TestApp) -> usize {
    app.get("/api/v1/scans").json().as_array().unwrap().len()
}

fn a_scan_body_that_cannot_be_read_is_refused(b: Backend) {
    let app = spawn_app(b);
    let admin = app.admin.clone();
    let post = |ct: &str, body: &str| app.request("POST", "/api/v1/scans", Some(&admin), Some((ct, body)));
    for (ct, body) in [
        (
            "application/x-www-form-urlencoded",
            r#"{"as_of": "2026-11-01T00:00:00+01:00"}"#,
        ),
        ("application/json", r#"{"asof": "2026-11-01T00:00:00+01:00"}"#),
        ("application/json", r#"{"full": "yes"}"#),
        ("application/json", "\0"),
        ("application/json", "[]"),
    ] {
        let r = post(ct, body);
        assert_eq!(r.status, 400, "{ct} {body}: {}", r.body);
        assert_eq!(r.json()["error"], "bad_request");
        assert!(r.json()["message"].as_str().unwrap().contains("kroppen"), "{}", r.body);
    }
    assert_eq!(scan_runs(&app), 0, "no refused request scanned");
    let r = app.request("POST", "/api/v1/scans", Some(&admin), None);
    assert_eq!(r.status, 200, "an empty body is a scan as of now: {}", r.body);
    let r = post(
        "application/json",
        r#"{"as_of": "2026-11-01T00:00:00+01:00", "full": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["scan"]["as_of"], "2026-11-01T00:00:00+01:00", "{}", r.body);
    assert_eq!(r.json()["scan"]["full"], true, "{}", r.body);
}

fn errors_before_a_handler_are_ours_in_swedish(b: Backend) {
    let app = county(b);
    let api = |method: &str, path: &str| app.request(method, path, Some(&app.admin.clone()), None);
    let r = api("GET", "/api/v1/deviations/abc");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "not_found");
    let r = api("GET", "/api/v1/forvarningar?within_hours=abc");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "bad_request");
    assert!(
        r.json()["message"].as_str().unwrap().contains("frågeparametrarna"),
        "{}",
        r.body
    );
    let r = api("GET", "/api/v1/finns-inte");
    assert_eq!((r.status, r.json()["error"].as_str()), (404, Some("not_found")));
    let (status, text) = raw_http(
        &app,
        &format!(
            "PUT /api/v1/scans HTTP/1.1\nHost: x\nAuthorization: Bearer {}\nContent-Length: 0\nConnection: close\n",
            app.admin
        ),
        b"",
    );
    assert_eq!(status, 405, "{text}");
    assert!(
        text.contains("allow: GET, POST") || text.contains("Allow: GET, POST"),
        "{text}"
    );
    let (status, text) = raw_http(
        &app,
        "DELETE /api/v1/sc%61ns HTTP/1.1\nHost: x\nContent-Length: 0\nConnection: close\n",
        b"",
    );
    assert_eq!(status, 405, "a percent-encoded path is the path routing reads: {text}");
    assert!(text.contains("method_not_allowed"), "{text}");
    for path in ["/finns-inte", "/avvikelser/abc"] {
        let r = app.request("GET", path, None, None);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.body.contains("<h1") && r.body.contains("finns inte"),
            "{path}: {}",
            r.body
        );
    }
    // A comment of 4000 å is within what the API takes: the page takes it too.
    create_user(&app, "ida.it", Role::Admin, &[]);
    let ida = Session::login(&app, "ida.it");
    let id = app.deviations()[0].id;
    let text = "å".repeat(4000);
    let r = form(
        &app,
        &ida,
        &format!("/avvikelser/{id}/kommentarer"),
        &[("csrf", &ida.csrf), ("text", &text)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let huge = "å".repeat(200_000);
    let r = form(
        &app,
        &ida,
        &format!("/avvikelser/{id}/kommentarer"),
        &[("csrf", &ida.csrf), ("text", &huge)],
    );
    assert_eq!(r.status, 413);
    assert!(r.body.contains("<h1") && r.body.contains("formuläret"), "{}", r.body);
}

fn a_list_read_is_found_by_its_case_however_the_query_is_spelled(b: Backend) {
    let app = county(b);
    let k1 = token(&app.pool, Role::Admin, None);
    for query in ["?case=C%32", "?cas%65=C2", "?case=C2&status="] {
        let r = app.request("GET", &format!("/api/v1/deviations{query}"), Some(&k1), None);
        assert_eq!(r.status, 200, "{query}");
        assert!(r.body.contains("\"C2\""), "{query}: {}", r.body);
    }
    let found = tokens::search_log(&mut app.conn(), None, Some("C2"), None, None, 100).unwrap();
    let lists: Vec<&str> = found
        .iter()
        .filter(|l| l.action == "list_deviations")
        .map(|l| l.object.as_str())
        .collect();
    assert_eq!(lists, ["?case=C2", "?case=C2", "?case=C2"], "{found:?}");
    // A case id with LIKE's wildcards is matched as written, not as a pattern.
    assert!(tokens::search_log(&mut app.conn(), None, Some("C_"), None, None, 100)
        .unwrap()
        .is_empty());
}

/// The constraints the OpenAPI document states are the handlers' own
/// (ops/api-check/run holds the rest with schemathesis).
fn what_the_document_forbids_is_refused_and_what_it_allows_is_taken(b: Backend) {
    let app = county(b);
    let admin = app.admin.clone();
    let doc = app.get("/api/v1/openapi.json").json();
    let params = &doc["paths"]["/api/v1/deviations"]["get"]["parameters"];
    let param = |name: &str| params.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["schema"].clone();
    assert_eq!(param("per_page")["maximum"], 1000, "{params}");
    assert_eq!(param("to")["format"], "date");
    assert!(param("rule")["enum"]
        .as_array()
        .unwrap()
        .contains(&"kallelse_sip".into()));
    for (method, path, body) in [
        ("GET", "/api/v1/deviations?to=", None),
        ("GET", "/api/v1/deviations?rule=null", None),
        ("GET", "/api/v1/deviations?per_page=1001", None),
        ("GET", "/api/v1/outbox", None),
        ("GET", "/api/v1/forvarningar?within_hours=169", None),
        ("GET", "/api/v1/reports/quarterly/2026-Q5", None),
        ("POST", "/api/v1/events", Some("")),
        ("POST", "/api/v1/units", Some("[]")),
        ("POST", "/api/v1/scans", Some("[null, null]")),
    ] {
        let r = app.request(method, path, Some(&admin), body.map(|b| ("application/json", b)));
        assert_eq!(r.status, 400, "{method} {path} {body:?}: {}", r.body);
    }
    let r = app.request(
        "POST",
        "/api/v1/scans",
        Some(&admin),
        Some(("application/json", "null")),
    );
    assert_eq!(r.status, 200, "JSON null is no body: {}", r.body);
    let id = app.deviations()[0].id;
    let comment = |text: &str| {
        let body = serde_json::json!({ "text": text }).to_string();
        app.request(
            "POST",
            &format!("/api/v1/deviations/{id}/comments"),
            Some(&admin),
            Some(("application/json", &body)),
        )
        .status
    };
    assert_eq!(comment("\u{85}\u{feff} "), 422, "blank by the document's pattern");
    assert_eq!(
        comment(&format!(" {}", "a".repeat(4000))),
        422,
        "over 4000 characters as sent"
    );
    assert_eq!(comment(&"å".repeat(4000)), 201);
    for path in ["/healthz", "/metrics"] {
        let (status, text) = raw_http(
            &app,
            &format!("TRACE {path} HTTP/1.1\nHost: x\nConnection: close\n"),
            b"",
        );
        assert_eq!(status, 405, "{text}");
        assert!(text.to_ascii_lowercase().contains("allow: get"), "{text}");
    }
}

/// An installation that imported CSV before only the mapped fields were kept:
/// the upgrade's migration rewrites every such row from its stored fields.
fn csv_rows_stored_before_are_scrubbed_by_the_migration(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.post_events(crate::helpers::CASE_EVENTS).status, 200);
    let mut c = app.conn();
    let conn: &mut svu_vakt::store::DbConn = &mut c;
    // Back to before the scrubbing migration (later ones are undone first).
    crate::helpers::revert_through(conn, b, "20261202000014");
    {
        use svu_vakt::store::schema::events;
        diesel::update(events::table.find("e1"))
            .set(events::raw.eq("e1;C1;Inskrivning;2026-05-04 08:00;AVD1;;;;hmac:x;Tolvan Tolvansson;pnr ringde"))
            .execute(conn)
            .unwrap();
    }
    assert!(app.db.dump().contains("Tolvan"));
    svu_vakt::store::migrate(conn).unwrap();
    let dump = app.db.dump();
    assert!(
        !dump.contains("Tolvan") && !dump.contains("ringde"),
        "the old row is kept in clear"
    );
    let raw: String = {
        use svu_vakt::store::schema::events;
        events::table.find("e1").select(events::raw).first(conn).unwrap()
    };
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["case"].as_str(), v["type"].as_str()),
        (Some("e1"), Some("C1"), Some("inskrivning"))
    );
    assert_eq!(v["at"], "2026-05-04T06:00:00Z");
    assert!(v["patient"].as_str().unwrap().starts_with("hmac:"), "{raw}");
}

/// Each update alone makes no loop; at once they would (U4 under U5 and U5
/// under U4): one of them is refused, on PostgreSQL too.
fn two_updates_at_once_never_store_a_loop(b: Backend) {
    let app = spawn_app(b);
    let flat = r#"[{"id":"U4","name":"U4","kind":"kommun","huvudman":"K"},{"id":"U5","name":"U5","kind":"kommun","huvudman":"K"}]"#;
    for round in 0..10 {
        assert_eq!(app.post_units(flat).status, 200);
        let answers: Vec<u16> = std::thread::scope(|s| {
            let one = s.spawn(|| {
                app.post_units(r#"[{"id":"U4","name":"U4","kind":"kommun","huvudman":"K","parent":"U5"}]"#)
                    .status
            });
            let two = s.spawn(|| {
                app.post_units(r#"[{"id":"U5","name":"U5","kind":"kommun","huvudman":"K","parent":"U4"}]"#)
                    .status
            });
            vec![one.join().unwrap(), two.join().unwrap()]
        });
        let units = app.get("/api/v1/units").json();
        let parent = |id: &str| units.as_array().unwrap().iter().find(|u| u["id"] == id).unwrap()["parent"].clone();
        assert!(
            parent("U4").is_null() || parent("U5").is_null(),
            "round {round}: a loop was stored ({answers:?})"
        );
        assert!(
            answers.contains(&200) && answers.contains(&400),
            "round {round}: {answers:?}"
        );
    }
}
