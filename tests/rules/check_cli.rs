//! `svu-vakt check` and `svu-vakt calendar` as analysts run them: the JSON
//! contract, the text table, bad input, and the streaming modes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_svu-vakt"))
        .args(args)
        .output()
        .unwrap()
}

fn check(units: &str, events: &str, as_of: &str, extra: &[&str]) -> Output {
    let args = [
        &["check", "--units", units, "--events", events, "--as-of", as_of][..],
        extra,
    ]
    .concat();
    bin(&args)
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

const UNITS: &str = r#"[
 {"id":"AVD1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region"},
 {"id":"VC1","name":"Vårdcentralen","kind":"oppenvard","huvudman":"Region"},
 {"id":"K1","name":"Hemtjänst","kind":"kommun","huvudman":"Kommunen","storhelg":false}
]"#;

const EVENTS: &str = r#"{"id":"i","case":"C1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","patient":"19900101-0017"}
{"id":"m","case":"C1","type":"inskrivningsmeddelande","at":"2026-05-05T09:30:00+02:00","unit":"AVD1","to":["K1","VC1"]}
{"id":"u","case":"C1","type":"utskrivningsklar","at":"2026-05-08T12:00:00+02:00","unit":"AVD1","to":["K1"]}
{"id":"k","case":"C1","type":"kvittens","at":"2026-05-09T10:00:00+02:00","unit":"K1","ref":"u"}
{"id":"x","case":"C2","type":"utskrivning","at":"2026-05-06T10:00:00+02:00","unit":"AVD1"}
"#;

fn files(dir: &Path, events: &str) -> (String, String) {
    std::fs::write(dir.join("units.json"), UNITS).unwrap();
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    (
        dir.join("units.json").display().to_string(),
        dir.join("events.jsonl").display().to_string(),
    )
}

#[test]
fn check_prints_the_contract_json() {
    let dir = tempfile::tempdir().unwrap();
    let (u, e) = files(dir.path(), EVENTS);
    let out = check(&u, &e, "2026-06-01T00:00:00+02:00", &["--format", "json"]);
    let v = json_of(&out);
    let expected = serde_json::json!([
        {"rule": "inskrivningsmeddelande_24h", "case": "C1", "unit": "AVD1", "due": "2026-05-05T08:00:00+02:00",
         "status": "late", "done": "2026-05-05T09:30:00+02:00", "late_minutes": 90},
        {"rule": "utskrivningsklar_saknas", "case": "C2", "unit": "AVD1", "due": "2026-05-06T10:00:00+02:00",
         "status": "missing", "done": null, "late_minutes": null},
        {"rule": "bemanning_storhelg", "case": null, "unit": "AVD1", "due": "2026-05-15T15:00:00+02:00",
         "status": "missing", "done": null, "late_minutes": null},
        {"rule": "bemanning_storhelg", "case": null, "unit": "VC1", "due": "2026-05-15T15:00:00+02:00",
         "status": "missing", "done": null, "late_minutes": null},
    ]);
    assert_eq!(v, expected);
    // The UK at 12:00:00 counts from the next day: the kvittens at 10:00 the 9th is in time.
    let keys: Vec<&String> = v[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7);
}

#[test]
fn rules_and_profile_flags_choose_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (u, e) = files(dir.path(), EVENTS);
    let run = |extra: &[&str]| check(&u, &e, "2026-06-01T00:00:00+02:00", extra);
    let only = json_of(&run(&["--rules", "utskrivningsklar_saknas"]));
    assert_eq!(only.as_array().unwrap().len(), 1);
    let vb = json_of(&run(&[
        "--profile",
        "vasterbotten",
        "--rules",
        "kvittens_inskrivningsmeddelande",
    ]));
    let units: Vec<&str> = vb
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["K1", "VC1"]);
    let bad = run(&["--rules", "inskrivning_48h"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("inskrivning_48h"));
    assert!(!run(&["--profile", "skane"]).status.success());
}

#[test]
fn a_config_file_overrides_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let (u, e) = files(dir.path(), EVENTS);
    let cfg = dir.path().join("svu.toml");
    std::fs::write(
        &cfg,
        "[rules]\nprofile = \"nationell\"\nenabled = [\"inskrivningsmeddelande_24h\"]\n",
    )
    .unwrap();
    let out = bin(&[
        "--config",
        cfg.to_str().unwrap(),
        "check",
        "--units",
        &u,
        "--events",
        &e,
        "--as-of",
        "2026-06-01T00:00:00+02:00",
    ]);
    let v = json_of(&out);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["rule"], "inskrivningsmeddelande_24h");
}

#[test]
fn the_text_format_is_a_swedish_table() {
    let dir = tempfile::tempdir().unwrap();
    let (u, e) = files(dir.path(), EVENTS);
    let out = check(&u, &e, "2026-06-01T00:00:00+02:00", &["--format", "text"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Regel"), "{text}");
    assert!(text.contains("inskrivningsmeddelande_24h") && text.contains("sen") && text.contains("saknas"));
    assert!(text.contains("4 avvikelser (1 sena, 3 saknas)"), "{text}");
}

#[test]
fn bad_input_stops_naming_the_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = format!("{EVENTS}{{\"id\":\"z\",\"case\":\"C3\",\"type\":\"kvittens\",\"at\":\"2026-05-09 10:00\",\"unit\":\"K1\",\"ref\":\"u\"}}\n");
    let (u, e) = files(dir.path(), &bad);
    let out = check(&u, &e, "2026-06-01T00:00:00+02:00", &[]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no partial output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rad 6, fält at"), "{err}");
    let out = check(&u, &e, "2026-06-01T00:00:00", &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--as-of"));
    std::fs::write(
        dir.path().join("units.json"),
        r#"[{"id":"A","name":"A","kind":"avdelning","huvudman":"R"}]"#,
    )
    .unwrap();
    let out = check(&u, &e, "2026-06-01T00:00:00+02:00", &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("rad 1, fält kind"));
}

#[test]
fn a_file_not_grouped_by_case_gives_the_same_findings() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(&[
        "demo",
        "--seed",
        "9",
        "--cases",
        "700",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let u = dir.path().join("units.json").display().to_string();
    let grouped = dir.path().join("events.jsonl");
    // Reverse the lines: every case now comes back after others.
    let text = std::fs::read_to_string(&grouped).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // More than two of check's blocks (4 096 lines), so cases are cut
    // between blocks and evaluated on the workers and on the caller's thread.
    assert!(lines.len() > 2 * 4096, "{} lines", lines.len());
    let array = dir.path().join("events.json");
    std::fs::write(&array, format!("[\n{}\n]\n", lines.join(",\n"))).unwrap();
    lines.reverse();
    let shuffled = dir.path().join("reversed.jsonl");
    std::fs::write(&shuffled, lines.join("\n")).unwrap();
    let run = |p: &Path| {
        json_of(&bin(&[
            "check",
            "--units",
            &u,
            "--events",
            p.to_str().unwrap(),
            "--as-of",
            "2027-01-10T00:00:00+01:00",
        ]))
    };
    let (a, b) = (run(&grouped), run(&shuffled));
    assert!(a.as_array().unwrap().len() > 100, "the demo county has breaches");
    assert_eq!(a, b);
    assert_eq!(a, run(&array), "a JSON array of the same events");
    let rules: std::collections::BTreeSet<&str> = a
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for r in [
        "inskrivningsmeddelande_24h",
        "kallelse_sip",
        "kvittens_utskrivningsklar",
        "utskrivningsklar_saknas",
        "bemanning_storhelg",
    ] {
        assert!(rules.contains(r), "demo data exercises {r}");
    }
}

#[test]
fn calendar_prints_the_contract_json_and_text() {
    let v = json_of(&bin(&["calendar", "2026", "--format", "json"]));
    assert_eq!(v["holidays"].as_array().unwrap().len(), 17);
    let staffing: Vec<&str> = v["staffing_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        staffing,
        [
            "2026-01-02",
            "2026-01-05",
            "2026-04-05",
            "2026-05-03",
            "2026-05-15",
            "2026-06-21",
            "2026-12-26"
        ]
    );
    let text = String::from_utf8(bin(&["calendar", "2026", "--format", "text"]).stdout).unwrap();
    assert!(text.contains("2026-06-21  söndag"), "{text}");
    assert!(!bin(&["calendar", "1989"]).status.success());
}

/// Errors in many of check's blocks (4 096 lines each): every one counted,
/// the first 200 listed in line order, nothing judged.
#[test]
fn errors_across_blocks_are_all_counted_and_the_first_listed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let u = dir.path().join("units.json");
    std::fs::write(&u, UNITS).unwrap();
    let e = dir.path().join("events.jsonl");
    let lines: Vec<String> = (0..9000)
        .map(|i| format!(r#"{{"id":"E{i}","case":"C{i}","type":"inskrivning","unit":"AVD1"}}"#))
        .collect();
    std::fs::write(&e, lines.join("\n")).unwrap();
    let out = check(
        u.to_str().unwrap(),
        e.to_str().unwrap(),
        "2026-06-01T00:00:00+02:00",
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("9000 fel, ingen granskning gjord"), "{err}");
    let listed: Vec<&str> = err.lines().filter(|l| l.trim_start().starts_with("rad ")).collect();
    assert_eq!(listed.len(), 200);
    assert!(listed[0].contains("rad 1, fält at"), "{}", listed[0]);
    assert!(listed[199].contains("rad 200, fält at"), "{}", listed[199]);
    assert!(err.contains("… och 8800 fel till"), "{err}");
}

/// A file with bytes that are not UTF-8 (an export in Latin-1, say) stops
/// the check naming the line, the first line as any other; nothing printed.
#[test]
fn bytes_that_are_not_utf8_stop_the_check_naming_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let (u, e) = files(dir.path(), EVENTS);
    let latin1 = |line: usize| {
        let mut lines: Vec<Vec<u8>> = EVENTS.lines().map(|l| l.as_bytes().to_vec()).collect();
        // "Vårdcentralen" in Latin-1: å is the single byte 0xE5.
        lines[line - 1] = b"{\"id\":\"V\xe5rd\",\"case\":\"C9\",\"type\":\"utskrivning\",\"at\":\"2026-05-06T10:00:00+02:00\",\"unit\":\"AVD1\"}".to_vec();
        std::fs::write(&e, lines.join(&b'\n')).unwrap();
    };
    for line in [1, 3, 5] {
        latin1(line);
        let out = check(&u, &e, "2026-06-01T00:00:00+02:00", &[]);
        assert!(!out.status.success(), "line {line}");
        assert!(out.stdout.is_empty(), "no partial output");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("rad {line} är inte giltig UTF-8")), "{err}");
    }
}
