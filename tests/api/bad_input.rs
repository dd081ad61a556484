//! The bad-input corpus (docs/RELIABILITY.md): every kind of bad export,
//! sent the three ways a region sends them: `POST /api/v1/events`,
//! `svu-vakt import` and the drop folder. Each gets a clear 4xx or a
//! failed-file report naming the line and the field, and nothing of it is
//! stored. A byte order mark and CRLF line ends are what Windows tools
//! write: those files are read, and a bad line in them is named by its
//! true number.
//!
//! The long line is `SVU_VAKT_LONG_LINE_MB` (default 2, past the 1 MiB
//! cap; `ops/reliability/run` sends 1024).

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use svu_vakt::store::tokens::Role;

use crate::helpers::{bin, spawn_app_with, token, Backend, TEST_KEY};

crate::on_both!(every_bad_input_is_refused_naming_line_and_field_and_nothing_is_stored);

/// How a corpus entry is sent: JSON Lines go all three ways, CSV through
/// the mapping by `import` and the drop folder.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Jsonl,
    Csv,
}

struct Case {
    name: &'static str,
    kind: Kind,
    body: Vec<u8>,
    /// The line and field the error must name (the API may say `line` or
    /// `rad` for a line it could not read as JSON).
    line: usize,
    field: &'static str,
}

fn ev(id: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{id}","case":"BAD-{id}","type":"inskrivning","at":"2026-11-19T08:00:00+01:00","unit":"AVD1"{extra}}}"#
    )
}

fn good_lines(prefix: &str, n: usize) -> String {
    (0..n).map(|i| ev(&format!("{prefix}{i}"), "") + "\n").collect()
}

fn long_line_bytes() -> usize {
    std::env::var("SVU_VAKT_LONG_LINE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize)
        << 20
}

const CSV_HEADER: &str =
    "Händelse-id;Ärendenummer;Händelsetyp;Tidpunkt;Utförande enhet;Mottagare;Avser;Värde;Personnummer\n";

fn csv_row(id: &str) -> String {
    format!("{id};C-{id};Inskrivning;2026-11-19 08:00;AVD1;;;;\n")
}

fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut jsonl = |name, body: String, line, field| {
        cases.push(Case {
            name,
            kind: Kind::Jsonl,
            body: body.into_bytes(),
            line,
            field,
        })
    };
    jsonl("broken JSON", good_lines("a", 1) + "{\"id\":\"a9\",\n", 2, "line");
    jsonl(
        "a wrong type",
        good_lines("b", 2) + &ev("b9", ",\"value\":{\"x\":1}").replace("inskrivning", "behov_av_sip") + "\n",
        3,
        "value",
    );
    jsonl(
        "a missing field",
        good_lines("c", 1)
            + "{\"id\":\"c9\",\"type\":\"inskrivning\",\"at\":\"2026-11-19T08:00:00+01:00\",\"unit\":\"AVD1\"}\n",
        2,
        "case",
    );
    jsonl(
        "a timestamp without offset",
        ev("d1", "").replace("08:00:00+01:00", "08:00:00") + "\n",
        1,
        "at",
    );
    jsonl(
        "an unknown type",
        ev("e1", "").replace("inskrivning", "kaffepaus") + "\n",
        1,
        "type",
    );
    jsonl(
        "an invalid personnummer",
        good_lines("f", 3) + &ev("f9", ",\"patient\":\"19900101-0018\"") + "\n",
        4,
        "patient",
    );
    jsonl(
        "a line that is not an object",
        good_lines("g", 1) + "[1,2,3]\n",
        2,
        "line",
    );
    // Windows line ends and a byte order mark: the bad line is still line 3.
    jsonl(
        "BOM and CRLF, a bad third line",
        format!(
            "\u{feff}{}\r\n{}\r\n{}\r\n",
            ev("h1", ""),
            ev("h2", ""),
            ev("h3", "").replace("+01:00", "")
        ),
        3,
        "at",
    );
    let mut utf8 = good_lines("i", 2).into_bytes();
    utf8.extend_from_slice(b"{\"id\":\"i9\",\"case\":\"\xff\xfe\",\"type\":\"inskrivning\"}\n");
    cases.push(Case {
        name: "invalid UTF-8",
        kind: Kind::Jsonl,
        body: utf8,
        line: 3,
        field: "rad",
    });
    let mut long = good_lines("j", 1).into_bytes();
    long.extend(std::iter::repeat_n(b'x', long_line_bytes()));
    long.extend_from_slice(b"\n");
    long.extend(good_lines("j2-", 1).into_bytes());
    cases.push(Case {
        name: "a line past the cap",
        kind: Kind::Jsonl,
        body: long,
        line: 2,
        field: "rad",
    });

    let mut csv = |name, body: String, line, field| {
        cases.push(Case {
            name,
            kind: Kind::Csv,
            body: body.into_bytes(),
            line,
            field,
        })
    };
    csv(
        "CSV without a mapped column",
        CSV_HEADER.replace(";Tidpunkt", "") + "k1;C;Inskrivning;AVD1;;;;\n",
        1,
        "at",
    );
    csv(
        "CSV with a missing column in a row",
        format!("{CSV_HEADER}{}l2;C;Inskrivning;2026-11-19 08:00;AVD1\n", csv_row("l1")),
        3,
        "line",
    );
    csv(
        "CSV with an extra column in a row",
        format!(
            "{CSV_HEADER}{}{}m3;C;Inskrivning;2026-11-19 08:00;AVD1;;;;;extra\n",
            csv_row("m1"),
            csv_row("m2")
        ),
        4,
        "line",
    );
    csv(
        "CSV with BOM and CRLF, a bad second row",
        format!(
            "\u{feff}{}{}n2;C;Inskrivning;19/11/2026;AVD1;;;;\r\n",
            CSV_HEADER.replace('\n', "\r\n"),
            csv_row("n1").replace('\n', "\r\n")
        ),
        3,
        "at",
    );
    let mut utf8 = format!("{CSV_HEADER}{}", csv_row("o1")).into_bytes();
    utf8.extend_from_slice(b"o2;C\xff;Inskrivning;2026-11-19 08:00;AVD1;;;;\n");
    cases.push(Case {
        name: "CSV with invalid UTF-8",
        kind: Kind::Csv,
        body: utf8,
        line: 3,
        field: "line",
    });
    let mut long = format!("{CSV_HEADER}{}", csv_row("p1")).into_bytes();
    long.extend(std::iter::repeat_n(b'y', long_line_bytes()));
    long.extend_from_slice(b"\n");
    cases.push(Case {
        name: "CSV with a line past the cap",
        kind: Kind::Csv,
        body: long,
        line: 3,
        field: "rad",
    });
    cases
}

/// One raw HTTP request, its body written beside the reading of the
/// answer: a server that refuses a large body early may close before the
/// client has written it all.
fn raw_post(base: &str, tok: &str, body: &[u8]) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut writer = stream.try_clone().unwrap();
    let body = body.to_vec();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&body));
    });
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let _ = sending.join();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // The answer may be chunked: the JSON is the part between the braces.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => body[a..=b].to_string(),
        _ => body.to_string(),
    };
    (status, json)
}

fn named(errors: &serde_json::Value, line: usize, field: &str) -> bool {
    errors.as_array().is_some_and(|list| {
        list.iter().any(|e| {
            e["line"] == line
                && (e["field"] == field
                    || (field == "line" && e["field"] == "rad")
                    || (field == "rad" && e["field"] == "line"))
        })
    })
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report_of(failed: &Path, file: &str) -> Option<String> {
    std::fs::read_dir(failed)
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with(&format!("-{file}.fel.txt")))
        .and_then(|e| std::fs::read_to_string(e.path()).ok())
}

fn every_bad_input_is_refused_naming_line_and_field_and_nothing_is_stored(b: Backend) {
    let inbox = tempfile::tempdir().unwrap();
    let dir = inbox.path().to_path_buf();
    let app = spawn_app_with(b, |c| {
        c.feed = Some(crate::feed::feed_config(&dir));
        c.max_body_bytes = 4 << 20;
    });
    let tok = token(&app.pool, Role::Inlasning, None);
    let work = tempfile::tempdir().unwrap();
    let mapping = work.path().join("mapping.toml");
    std::fs::write(&mapping, crate::import::MAPPING).unwrap();
    let mut table = Vec::new();

    for (n, case) in corpus().iter().enumerate() {
        let what = case.name;
        let mut outcome = Vec::new();
        // The API: 400 naming line and field, or 413 for a body over the limit.
        if case.kind == Kind::Jsonl {
            let (status, body) = raw_post(&app.base, &tok, &case.body);
            if case.body.len() > 4 << 20 {
                assert_eq!(status, 413, "{what}: {body}");
                let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(answer["error"], "too_large", "{what}: {body}");
                assert!(answer["message"].as_str().unwrap().contains("inget sparades"), "{body}");
                outcome.push("API 413".to_string());
            } else {
                assert_eq!(status, 400, "{what}: {body}");
                let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(answer["error"], "invalid_batch", "{what}: {body}");
                assert!(
                    named(&answer["errors"], case.line, case.field),
                    "{what}: the API's errors do not name line {} field {}: {body}",
                    case.line,
                    case.field
                );
                outcome.push(format!("API 400 (rad {}, fält {})", case.line, case.field));
            }
            assert_eq!(app.event_count(), 0, "{what}: nothing stored through the API");
        }
        // `svu-vakt import`: a failure naming line and field.
        let ext = if case.kind == Kind::Csv { "csv" } else { "jsonl" };
        let file = work.path().join(format!("fall-{n}.{ext}"));
        std::fs::write(&file, &case.body).unwrap();
        let mut import = bin();
        import
            .env("SVU_VAKT_PATIENT_KEY", TEST_KEY)
            .args(["import", "--database-url", &app.db.url(), "--events"])
            .arg(&file);
        if case.kind == Kind::Csv {
            import.arg("--mapping").arg(&mapping);
        }
        let out = import.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: import succeeded");
        let wanted = |text: &str| {
            text.contains(&format!("rad {}, fält {}", case.line, case.field))
                || (case.field == "line" && text.contains(&format!("rad {}, fält rad", case.line)))
        };
        assert!(
            wanted(&stderr),
            "{what}: import does not name rad {} fält {}: {stderr}",
            case.line,
            case.field
        );
        assert_eq!(app.event_count(), 0, "{what}: nothing stored by import");
        outcome.push(format!("import: rad {}, fält {}", case.line, case.field));
        // The drop folder: moved to failed/ with a report.
        let name = match case.kind {
            Kind::Csv => format!("cosmic-{n}.csv"),
            Kind::Jsonl => format!("fall-{n}.jsonl"),
        };
        std::fs::write(dir.join(format!("{name}.part")), &case.body).unwrap();
        std::fs::rename(dir.join(format!("{name}.part")), dir.join(&name)).unwrap();
        wait_for(&format!("{what}: a report in failed/"), || {
            report_of(&dir.join("failed"), &name).is_some()
        });
        let report = report_of(&dir.join("failed"), &name).unwrap();
        assert!(
            wanted(&report),
            "{what}: the report does not name rad {} fält {}: {report}",
            case.line,
            case.field
        );
        assert!(report.contains("inget sparades"), "{report}");
        assert_eq!(app.event_count(), 0, "{what}: nothing stored from the drop folder");
        outcome.push("drop folder: to failed/, the report names them".to_string());
        table.push((what, case.body.len(), outcome.join("; ")));
    }

    // A body over `server.max_body_mb` (4 MiB here) of good events: 413.
    let big = good_lines("stor", 5 << 20 >> 7);
    assert!(big.len() > 4 << 20);
    let (status, body) = raw_post(&app.base, &tok, big.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"too_large\""), "{body}");
    assert_eq!(app.event_count(), 0, "nothing of a body over the limit");
    table.push((
        "a body over server.max_body_mb (good events)",
        big.len(),
        "API 413 too_large".to_string(),
    ));

    // A byte order mark and CRLF line ends in a good file: read, every
    // event once, by every way in.
    let good = format!("\u{feff}{}", good_lines("ok", 3).replace('\n', "\r\n"));
    let (status, body) = raw_post(&app.base, &tok, good.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.event_count(), 3);
    let file = work.path().join("bom.jsonl");
    std::fs::write(
        &file,
        format!("\u{feff}{}", good_lines("okfil", 3).replace('\n', "\r\n")),
    )
    .unwrap();
    let out = bin()
        .env("SVU_VAKT_PATIENT_KEY", TEST_KEY)
        .args(["import", "--database-url", &app.db.url(), "--events"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.event_count(), 6);
    let csv = format!(
        "\u{feff}{}{}{}",
        CSV_HEADER.replace('\n', "\r\n"),
        csv_row("q1").replace('\n', "\r\n"),
        csv_row("q2").replace('\n', "\r\n")
    );
    std::fs::write(dir.join("cosmic-bom.csv"), csv).unwrap();
    wait_for("cosmic-bom.csv in done/", || {
        std::fs::read_dir(dir.join("done")).is_ok_and(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with("-cosmic-bom.csv"))
        })
    });
    assert_eq!(app.event_count(), 8, "the CSV with BOM and CRLF read, two events");
    let stored: Vec<Option<String>> = {
        use diesel::prelude::*;
        use svu_vakt::store::schema::events;
        events::table
            .filter(events::id.like("q%"))
            .select(events::case_id)
            .order(events::id)
            .load(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(
        stored,
        vec![Some("C-q1".to_string()), Some("C-q2".to_string())],
        "no BOM or CR left in the values"
    );

    report(b, &table);
}

fn report(b: Backend, table: &[(&str, usize, String)]) {
    let Ok(dir) = std::env::var("SVU_VAKT_FAULT_REPORT") else {
        return;
    };
    let name = match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let mut text = format!(
        "### Bad input, {name}\n\nEach input sent by `POST /api/v1/events` (JSON Lines only), `svu-vakt import` \
         and the drop folder; events stored after each: 0. A good file with a BOM and CRLF line ends \
         is then read by each way, every event once.\n\n| input | bytes | outcome |\n|---|---|---|\n"
    );
    for (what, bytes, outcome) in table {
        text.push_str(&format!("| {what} | {bytes} | {outcome} |\n"));
    }
    text.push('\n');
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(Path::new(&dir).join(format!("bad-input-{name}.md")), text).unwrap();
}

/// A file of more bad lines than a report lists: the first 1000 are kept
/// (memory stays small), the count is of all of them.
#[test]
fn a_file_of_many_bad_lines_is_counted_whole_and_listed_in_part() {
    let db = crate::helpers::TestDb::new(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("många.jsonl");
    let text: String = (0..25_000)
        .map(|i| ev(&format!("x{i}"), "").replace("inskrivning", "okänd") + "\n")
        .collect();
    std::fs::write(&file, text).unwrap();
    let out = bin()
        .env("SVU_VAKT_PATIENT_KEY", TEST_KEY)
        .args(["import", "--database-url", &db.url(), "--events"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("25000 fel, inget sparades"), "{stderr}");
    assert!(stderr.contains("rad 1, fält type"), "{stderr}");
    assert!(stderr.contains("… och 24950 fel till"), "{stderr}");
}

#[test]
fn a_body_of_many_bad_lines_lists_a_thousand_and_counts_them_all() {
    let app = crate::helpers::spawn_app(Backend::Sqlite);
    let tok = token(&app.pool, Role::Inlasning, None);
    let body: String = (0..30_000)
        .map(|i| ev(&format!("x{i}"), "").replace("inskrivning", "okänd") + "\n")
        .collect();
    let (status, answer) = raw_post(&app.base, &tok, body.as_bytes());
    assert_eq!(status, 400, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("30000 fel i fält (de första 1000 listas)"),
        "{message}"
    );
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1000, "the answer lists the first thousand");
    assert!(named(&answer["errors"], 1, "type"));
    assert!(named(&answer["errors"], 1000, "type"));
    assert_eq!(app.event_count(), 0);
}

#[test]
fn a_file_of_many_conflicting_ids_is_counted_whole_and_listed_in_part() {
    let db = crate::helpers::TestDb::new(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let import = |name: &str, text: String| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        bin()
            .env("SVU_VAKT_PATIENT_KEY", TEST_KEY)
            .args(["import", "--database-url", &db.url(), "--events"])
            .arg(&file)
            .output()
            .unwrap()
    };
    let first = import("först.jsonl", good_lines("k", 1500));
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    // The same ids an hour later: other content for every one of them.
    let again = import("igen.jsonl", good_lines("k", 1500).replace("T08:00", "T09:00"));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        stderr.contains("1500 id:n finns redan med annat innehåll, inget sparades"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rad 1, id k0: en händelse med detta id finns redan sparad"),
        "{stderr}"
    );
    assert!(stderr.contains("… och 1450 till"), "{stderr}");
}
