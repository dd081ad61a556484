//! The `svu-vakt` binary: import with a CSV mapping, token creation, demo.

use std::process::Command;

use crate::helpers::{spawn_app, Backend, CASE_EVENTS, UNITS};

crate::on_both!(
    csv_import_with_a_mapping_gives_the_same_events_as_json_lines,
    token_create_prints_the_token_alone_on_its_last_line,
    a_bad_import_names_the_line_and_field_and_stores_nothing,
    demo_writes_units_and_events_into_the_database,
    routes_shows_where_a_units_deviations_go,
    demo_files_import_in_batches_and_a_second_import_adds_nothing,
    a_bad_cron_expression_in_the_config_stops_the_start,
    an_id_conflicting_with_a_stored_event_in_a_late_batch_stores_nothing,
    an_id_repeated_with_other_content_batches_apart_stores_nothing,
);

/// 25 000 events: three batches of the import.
fn many_events(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"m{i}\",\"case\":\"M{}\",\"type\":\"bedomning\",\"at\":\"2026-05-04T08:00:00+02:00\",\"unit\":\"AVD1\"}}\n",
                i / 10
            )
        })
        .collect()
}

fn import_file(app: &crate::helpers::TestApp, text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, text).unwrap();
    bin()
        .args(["import", "--database-url", &app.db.url()])
        .arg("--events")
        .arg(&path)
        .output()
        .unwrap()
}

fn an_id_conflicting_with_a_stored_event_in_a_late_batch_stores_nothing(b: Backend) {
    let app = spawn_app(b);
    let stored = r#"{"id":"m24000","case":"X","type":"bedomning","at":"2026-05-01T08:00:00+02:00","unit":"AVD1"}"#;
    assert_eq!(app.post_events(stored).status, 200);
    let out = import_file(&app, &many_events(25_000));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rad 24001, id m24000"), "{stderr}");
    assert_eq!(app.event_count(), 1, "nothing of the file stored");
    assert_eq!(app.batch_count(), 1);
}

fn an_id_repeated_with_other_content_batches_apart_stores_nothing(b: Backend) {
    let app = spawn_app(b);
    let mut text = many_events(25_000);
    text.push_str(r#"{"id":"m5","case":"X","type":"bedomning","at":"2026-05-01T08:00:00+02:00","unit":"AVD1"}"#);
    text.push('\n');
    let out = import_file(&app, &text);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("id m5"), "{stderr}");
    assert!(stderr.contains("inget sparades"), "{stderr}");
    assert_eq!(app.event_count(), 0, "the batches already stored were taken back");
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_svu-vakt"));
    c.env("SVU_VAKT_PATIENT_KEY", crate::helpers::TEST_KEY)
        .env("SVU_VAKT_LOG_LEVEL", "warn");
    c
}

/// The same case as `CASE_EVENTS`, as a coordination-system export.
pub const EXPORT: &str = "\
Händelse-id;Ärendenummer;Händelsetyp;Tidpunkt;Utförande enhet;Mottagare;Avser;Värde;Personnummer
e3;C1;Kvittens;2026-05-04 13:00;K1-HT;;e2;;
e1;C1;Inskrivning;2026-05-04 08:00;AVD1;;;;19900101-0017
e2;C1;Inskrivningsmeddelande;2026-05-04 11:42;AVD1;K1-HT, VC1;;;
e4;C1;Behov av SIP;2026-05-05 09:00;VC1;;;Ja;
e5;C1;Spårfärg;2026-05-05 12:00;AVD1;;;Gul;
";

pub const MAPPING: &str = r#"
delimiter = ";"
list_separator = ","
at_format = "%Y-%m-%d %H:%M"
timezone = "Europe/Stockholm"

[columns]
id = "Händelse-id"
case = "Ärendenummer"
type = "Händelsetyp"
at = "Tidpunkt"
unit = "Utförande enhet"
to = "Mottagare"
ref = "Avser"
value = "Värde"
patient = "Personnummer"

[types]
"Inskrivning" = "inskrivning"
"Inskrivningsmeddelande" = "inskrivningsmeddelande"
"Kvittens" = "kvittens"
"Behov av SIP" = "behov_av_sip"
"Spårfärg" = "sparfarg"

[values]
"Ja" = "true"
"Nej" = "false"
"Gul" = "gul"
"#;

fn csv_import_with_a_mapping_gives_the_same_events_as_json_lines(b: Backend) {
    let app = spawn_app(b);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.csv"), EXPORT).unwrap();
    std::fs::write(dir.path().join("mapping.toml"), MAPPING).unwrap();
    std::fs::write(dir.path().join("units.json"), UNITS).unwrap();
    let out = bin()
        .args(["import", "--database-url", &app.db.url()])
        .arg("--units")
        .arg(dir.path().join("units.json"))
        .arg("--events")
        .arg(dir.path().join("export.csv"))
        .arg("--mapping")
        .arg(dir.path().join("mapping.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 nya sparade"));
    // The JSON Lines of the same case are then all duplicates: same ids, same content.
    let r = app.post_events(CASE_EVENTS);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json()["stored"].as_i64(), r.json()["duplicates"].as_i64()),
        (Some(0), Some(5))
    );
    let case = app.get("/api/v1/cases/C1").json();
    assert_eq!(case["events"][1]["at"], "2026-05-04T11:42:00+02:00");
    assert_eq!(case["events"][1]["to"], serde_json::json!(["K1-HT", "VC1"]));
    assert!(!app.db.dump().contains("19900101-0017"));
}

fn token_create_prints_the_token_alone_on_its_last_line(b: Backend) {
    let app = spawn_app(b);
    let out = bin()
        .args(["token", "create", "--role", "ledning", "--database-url", &app.db.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim_end().lines().last().unwrap();
    assert!(token.starts_with("svk_") && !token.contains(' '));
    assert_eq!(app.request("GET", "/api/v1/units", Some(token), None).status, 200);
    let bad = bin()
        .args([
            "token",
            "create",
            "--role",
            "handlaggare",
            "--database-url",
            &app.db.url(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "a handläggare token needs a unit");
}

fn a_bad_import_names_the_line_and_field_and_stores_nothing(b: Backend) {
    let app = spawn_app(b);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let good = CASE_EVENTS.lines().take(2).collect::<Vec<_>>().join("\n");
    std::fs::write(&path, format!("{good}\n{{\"id\":\"z\",\"case\":\"C1\",\"type\":\"kvittens\",\"at\":\"2026-05-04T08:00:00\",\"unit\":\"K1\",\"ref\":\"e2\"}}\n")).unwrap();
    let out = bin()
        .args(["import", "--database-url", &app.db.url()])
        .arg("--events")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rad 3, fält at"), "{stderr}");
    assert_eq!(app.event_count(), 0);
}

fn demo_writes_units_and_events_into_the_database(b: Backend) {
    let app = spawn_app(b);
    let out = bin()
        .args(["demo", "--seed", "5", "--cases", "50", "--database-url", &app.db.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let units = app.get("/api/v1/units").json();
    let kommuner: std::collections::BTreeSet<String> = units
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "kommun")
        .map(|u| u["huvudman"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kommuner.len(), 13);
    let n = app.event_count();
    assert!(n > 400, "50 cases give about 600 events, got {n}");
    // Running it again adds nothing: the demo ids are stable.
    let again = bin()
        .args(["demo", "--seed", "5", "--cases", "50", "--database-url", &app.db.url()])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(app.event_count(), n);
}

fn routes_shows_where_a_units_deviations_go(b: Backend) {
    let app = spawn_app(b);
    app.post_units(UNITS);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("svu.toml");
    std::fs::write(
        &cfg,
        "[mail]\ndefault_to = \"svu@region.example.se\"\n[[mail.routes]]\nunit = \"K1\"\nto = \"soc@linkoping.example.se\"\ncc = [\"svu@region.example.se\"]\n",
    )
    .unwrap();
    let run = |unit: &str| {
        let out = bin()
            .arg("--config")
            .arg(&cfg)
            .args(["routes", "--unit", unit, "--database-url", &app.db.url()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let ht = run("K1-HT");
    assert!(
        ht.contains("går till: soc@linkoping.example.se") && ht.contains("Kopia till: svu@region.example.se"),
        "{ht}"
    );
    assert!(run("AVD1").contains("går till: avd1@example.se"));
    assert!(run("OKAND").contains("går till: svu@region.example.se"));
}

fn a_bad_cron_expression_in_the_config_stops_the_start(b: Backend) {
    let app = spawn_app(b);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("svu.toml");
    std::fs::write(&cfg, "[scan]\nschedule = \"*/15 * * * *\"\n").unwrap();
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &app.db.url()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scan.schedule"));
}

fn demo_files_import_in_batches_and_a_second_import_adds_nothing(b: Backend) {
    let app = spawn_app(b);
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "demo",
            "--seed",
            "4",
            "--cases",
            "1800",
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let events = dir.path().join("events.jsonl");
    let lines = std::fs::read_to_string(&events).unwrap().lines().count() as i64;
    assert!(lines > 20_000, "more than two batches of 10 000: {lines}");
    let import = || {
        bin()
            .args(["import", "--database-url", &app.db.url()])
            .arg("--units")
            .arg(dir.path().join("units.json"))
            .arg("--events")
            .arg(&events)
            .output()
            .unwrap()
    };
    let first = import();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(app.event_count(), lines);
    let second = import();
    assert!(String::from_utf8_lossy(&second.stdout).contains(&format!("0 nya sparade, {lines} fanns redan")));
    assert_eq!(app.event_count(), lines);
}

/// A minified export: a JSON array on one line longer than the 1 MiB line
/// cap is read whole, not refused as a long line; a JSON Lines line that
/// long is refused by number, and nothing of that file is stored.
#[test]
fn a_json_array_on_one_long_line_is_imported_and_a_long_line_refused() {
    let app = crate::helpers::spawn_app(Backend::Sqlite);
    let text = many_events(12_000);
    let items: Vec<&str> = text.lines().collect();
    let array = format!("\u{feff}[{}]", items.join(","));
    assert!(array.len() > 1 << 20);
    let out = import_file(&app, &array);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.event_count(), 12_000);

    let mut lines = many_events(3).replace("\"m", "\"x");
    lines.push_str(&format!("{{\"id\":\"lang\",\"note\":\"{}\"}}\n", "x".repeat(1 << 20)));
    let out = import_file(&app, &lines);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rad 4") && err.contains("längre än"), "{err}");
    assert_eq!(app.event_count(), 12_000);
}
