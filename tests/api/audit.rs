//! The scan: deviations filed once, written as the county routine asks,
//! mailed over real SMTP to the routed recipients, exactly once.

use std::collections::HashSet;

use svu_vakt::config::Config;
use svu_vakt::domain::{PatientHasher, Secret};
use svu_vakt::mail::{MailMode, Route, SmtpUrl};

use crate::helpers::{bin, demo_into, spawn_app_with, spawn_on, Backend, TestApp, TestDb, TEST_KEY};
use crate::smtp::{free_port, SmtpServer};

crate::on_both!(
    mails_reach_the_routed_recipients_with_every_report_field_and_no_patient_identity,
    smtp_down_for_several_scans_then_up_mails_each_deviation_exactly_once,
    a_late_event_withdraws_a_deviation_and_a_missing_that_turns_late_is_updated_quietly,
    evidence_removed_again_reopens_and_reports_once_more_and_turns_the_facts_back,
    a_scan_killed_midway_and_run_again_files_and_mails_nothing_twice,
    two_instances_on_one_database_scan_one_at_a_time_and_send_no_mail_twice,
    digest_mode_sends_one_mail_per_recipient_per_scan,
    the_service_scans_on_its_schedule_and_mails_without_being_asked,
    old_data_arriving_after_the_first_scan_is_judged_in_full,
    an_old_staffing_day_is_judged_again_by_a_late_bemanning_a_removed_batch_and_a_unit_leaving_storhelg,
    an_event_stored_ahead_of_its_time_is_judged_when_it_happens,
);

const UNITS: &str = r#"[
 {"id":"AVD1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Östergötland","email":"avd1@region.example.se"},
 {"id":"VC1","name":"Vårdcentralen Centrum","kind":"oppenvard","huvudman":"Region Östergötland"},
 {"id":"K1","name":"Socialförvaltningen","kind":"kommun","huvudman":"Linköpings kommun"},
 {"id":"K1-HT","name":"Hemtjänst Nord","kind":"kommun","huvudman":"Linköpings kommun","parent":"K1","storhelg":false}
]"#;

/// IM 90 minutes late (AVD1); UK not acknowledged by K1-HT; K1 unstaffed on 15 May.
const EVENTS: &str = r#"{"id":"e1","case":"C1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1","patient":"19900101-0017"}
{"id":"e2","case":"C1","type":"inskrivningsmeddelande","at":"2026-05-05T09:30:00+02:00","unit":"AVD1","to":["K1-HT","VC1"]}
{"id":"e3","case":"C1","type":"utskrivningsklar","at":"2026-05-08T10:00:00+02:00","unit":"AVD1","to":["K1-HT"]}
{"id":"e4","case":"C1","type":"utskrivning","at":"2026-05-09T10:00:00+02:00","unit":"AVD1"}
{"id":"b1","type":"bemanning","at":"2026-05-15T08:05:00+02:00","unit":"AVD1"}
{"id":"b2","type":"bemanning","at":"2026-05-15T09:00:00+02:00","unit":"VC1"}
"#;

const AS_OF: &str = "2026-05-16T00:00:00+02:00";

fn routes() -> Vec<Route> {
    vec![Route {
        huvudman: Some("Linköpings kommun".into()),
        kind: None,
        unit: None,
        to: Some("socialtjanst@linkoping.example.se".into()),
        cc: vec!["svu-processagare@region.example.se".into()],
        ..Default::default()
    }]
}

fn app(b: Backend, smtp: &str, mode: MailMode) -> TestApp {
    let smtp = smtp.to_string();
    let app = spawn_app_with(b, move |c: &mut Config| {
        c.mail.smtp_url = SmtpUrl(smtp);
        c.mail.routes = routes();
        c.mail.mode = mode;
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    assert_eq!(app.post_events(EVENTS).status, 200);
    app
}

fn scan_ok(app: &TestApp, as_of: &str) -> serde_json::Value {
    let r = app.scan(as_of);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn mails_reach_the_routed_recipients_with_every_report_field_and_no_patient_identity(b: Backend) {
    let smtp = SmtpServer::start();
    let app = app(b, &smtp.url(), MailMode::PerAvvikelse);
    let r = scan_ok(&app, AS_OF);
    assert_eq!(r["scan"]["filed"], 3, "{r}");
    assert_eq!(r["mail"]["sent"], 3, "{r}");
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 3);

    let im = msgs
        .iter()
        .find(|m| m.subject().contains("Inskrivningsmeddelande senare än 24 timmar"))
        .unwrap();
    assert_eq!(im.rcpt, ["avd1@region.example.se"]);
    assert!(im.subject().contains("C1"));
    let text = im.text();
    for want in [
        "Händelse",
        "Inskrivningsmeddelandet i ärende C1 skulle ha skickats senast 2026-05-05 kl. 08:00",
        "2026-05-05 kl. 09:30, 1 tim 30 min för sent",
        "Konsekvens",
        "Sannolikhet 3 × konsekvens 3 = riskvärde 9 (hög)",
        "Åtgärd",
        "Förbättringsförslag",
        "Klinik/avd./enhet: Avdelning 1 (AVD1), Region Östergötland",
        "Datum och tid",
        "Lag (2017:612)",
        "https://svu-vakt.example.se/avvikelser/",
        "<th align=\"left\" valign=\"top\">Händelse</th>",
        // SPEC §6: both sides with their huvudman, and the routine (seed 002).
        "Berörd part: Hemtjänst Nord (Linköpings kommun), Vårdcentralen Centrum (Region Östergötland)",
        "Avvikelse från följsamhet till rutinen \"Lag (2017:612) om samverkan vid utskrivning från sluten hälso- och sjukvård\".",
    ] {
        assert!(text.contains(want), "the IM report lacks `{want}`:\n{text}");
    }

    let kv = msgs
        .iter()
        .find(|m| m.subject().contains("Utskrivningsklar inte kvitterad"))
        .unwrap();
    let rcpt: HashSet<&str> = kv.rcpt.iter().map(String::as_str).collect();
    assert_eq!(
        rcpt,
        HashSet::from([
            "socialtjanst@linkoping.example.se",
            "svu-processagare@region.example.se"
        ])
    );
    assert!(kv.text().contains("Hemtjänst Nord"));
    assert!(
        kv.text().contains("Berörd part: Avdelning 1 (Region Östergötland)"),
        "the kvittens hurts the ward that sent the UK:\n{}",
        kv.text()
    );
    let bem = msgs.iter().find(|m| m.subject().contains("bemanning")).unwrap();
    assert!(bem.text().contains("rekommendation"), "{}", bem.text());
    assert!(bem.text().contains("Socialförvaltningen"));

    let hash = PatientHasher::new(Secret::new(TEST_KEY.as_bytes().to_vec()))
        .hash("19900101-0017")
        .unwrap()
        .0;
    for m in &msgs {
        for clear in ["19900101", "900101-0017", "199001010017", hash.as_str(), "0017"] {
            assert!(
                !m.raw.contains(clear) && !m.text().contains(clear),
                "a mail carries `{clear}`"
            );
        }
    }
    let ids: HashSet<String> = msgs.iter().map(|m| m.message_id()).collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter()
            .all(|id| id.starts_with("<avvikelse-") && id.ends_with("@region.example.se>")),
        "{ids:?}"
    );
    assert!(app.deviations().iter().all(|d| d.status == "skickad"));

    // A handläggare of the kommun sees its own deviations, with their history.
    let k1 = crate::helpers::token(&app.pool, svu_vakt::store::tokens::Role::Handlaggare, Some("K1"));
    let own = app.request("GET", "/api/v1/deviations", Some(&k1), None).json();
    let rules: HashSet<&str> = own
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        HashSet::from(["kvittens_utskrivningsklar", "bemanning_storhelg"])
    );
    let avd = app
        .deviations()
        .into_iter()
        .find(|d| d.unit.as_deref() == Some("AVD1"))
        .unwrap();
    assert_eq!(
        app.request("GET", &format!("/api/v1/deviations/{}", avd.id), Some(&k1), None)
            .status,
        404
    );
    let one = app.get(&format!("/api/v1/deviations/{}", avd.id)).json();
    let steps: Vec<&str> = one["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["ny", "skickad"]);
    assert_eq!(one["risk"]["varde"], 9);

    let metrics = app.request("GET", "/metrics", None, None).body;
    for want in [
        "svu_vakt_scans_total 1",
        "svu_vakt_deviations_filed_total 3",
        "svu_vakt_mail_sent_total 3",
    ] {
        assert!(metrics.contains(want), "metrics lack `{want}`");
    }

    // The next scan finds the same breaches and sends nothing new.
    let r = scan_ok(&app, "2026-05-16T06:00:00+02:00");
    assert_eq!(
        (r["scan"]["filed"].as_i64(), r["mail"]["sent"].as_i64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(smtp.messages().len(), 3);
    assert_eq!(app.deviations().len(), 3);
}

fn smtp_down_for_several_scans_then_up_mails_each_deviation_exactly_once(b: Backend) {
    let port = free_port();
    let app = app(b, &format!("smtp://127.0.0.1:{port}"), MailMode::PerAvvikelse);
    let r = scan_ok(&app, AS_OF);
    assert_eq!(r["scan"]["filed"], 3);
    assert_eq!(r["mail"]["sent"], 0);
    assert!(
        app.deviations().iter().all(|d| d.status == "ny"),
        "filed even though SMTP is down"
    );
    let mut r = r;
    for hour in ["03", "06", "09"] {
        r = scan_ok(&app, &format!("2026-05-16T{hour}:00:00+02:00"));
        assert_eq!(
            (r["scan"]["filed"].as_i64(), r["mail"]["sent"].as_i64()),
            (Some(0), Some(0))
        );
    }
    let outbox = app.outbox();
    assert_eq!(outbox.len(), 3);
    assert!(outbox.iter().all(|m| m.sent_at.is_none()));
    // Each round's connection test met the closed port: no mail was claimed,
    // none was marked failed, all wait for a server.
    assert!(outbox
        .iter()
        .all(|m| m.failed_at.is_none() && m.claimed_until.is_none()));
    assert!(
        r["mail"]["failed"].as_i64().unwrap() >= 1,
        "the round reports the failure: {r}"
    );

    let smtp = SmtpServer::start_on(port);
    let r = scan_ok(&app, "2026-05-16T12:00:00+02:00");
    assert_eq!(r["mail"]["sent"], 3, "{r}");
    scan_ok(&app, "2026-05-16T15:00:00+02:00");
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs.iter().map(|m| m.message_id()).collect::<HashSet<_>>().len(), 3);
    assert!(app.deviations().iter().all(|d| d.status == "skickad"));
}

fn a_late_event_withdraws_a_deviation_and_a_missing_that_turns_late_is_updated_quietly(b: Backend) {
    let smtp = SmtpServer::start();
    let app = app(b, &smtp.url(), MailMode::PerAvvikelse);
    app.post_events(r#"{"id":"c2-1","case":"C2","type":"inskrivning","at":"2026-05-12T08:00:00+02:00","unit":"AVD1"}"#);
    scan_ok(&app, AS_OF);
    assert_eq!(smtp.messages().len(), 4);
    let c2 = app
        .deviations()
        .into_iter()
        .find(|d| d.case_id.as_deref() == Some("C2"))
        .unwrap();
    assert_eq!(c2.finding_status, "missing");

    // K1-HT's kvittens was made in time but reached us late; C2's IM went out late.
    let late = concat!(
        r#"{"id":"e5","case":"C1","type":"kvittens","at":"2026-05-08T20:00:00+02:00","unit":"K1-HT","ref":"e3"}"#,
        "\n",
        r#"{"id":"c2-2","case":"C2","type":"inskrivningsmeddelande","at":"2026-05-16T01:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#
    );
    assert_eq!(app.post_events(late).status, 200);
    let r = scan_ok(&app, "2026-05-16T06:00:00+02:00");
    assert_eq!(
        (
            r["scan"]["withdrawn"].as_i64(),
            r["scan"]["updated"].as_i64(),
            r["scan"]["filed"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{r}"
    );

    let devs = app.deviations();
    let kv = devs.iter().find(|d| d.rule == "kvittens_utskrivningsklar").unwrap();
    assert_eq!(kv.status, "aterkallad");
    let c2 = devs.iter().find(|d| d.case_id.as_deref() == Some("C2")).unwrap();
    // Due 13 May 08:00, sent 16 May 01:00: 65 hours late.
    assert_eq!((c2.finding_status.as_str(), c2.late_minutes), ("late", Some(65 * 60)));
    assert_eq!(c2.status, "skickad", "facts updated, no new report");

    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 5, "only the withdrawal notice is new");
    let notice = msgs.last().unwrap();
    assert!(
        notice.subject().starts_with("Återkallad avvikelse"),
        "{}",
        notice.subject()
    );
    assert!(notice.rcpt.contains(&"socialtjanst@linkoping.example.se".to_string()));
    let original = msgs
        .iter()
        .find(|m| m.subject().contains("Utskrivningsklar inte kvitterad"))
        .unwrap();
    assert_eq!(notice.header("In-Reply-To"), Some(original.message_id()));
    assert!(notice.text().contains("Ingen åtgärd behövs"));
}

/// Each kind of action in one scan on several deviations at once: a batch
/// of late evidence updates two deviations' facts and withdraws one; with
/// the batch removed, the next scan turns both facts back and reopens the
/// withdrawn one, which is reported again under a Message-ID of its own.
fn evidence_removed_again_reopens_and_reports_once_more_and_turns_the_facts_back(b: Backend) {
    let smtp = SmtpServer::start();
    let app = app(b, &smtp.url(), MailMode::PerAvvikelse);
    let admitted = concat!(
        r#"{"id":"c2-1","case":"C2","type":"inskrivning","at":"2026-05-12T08:00:00+02:00","unit":"AVD1"}"#,
        "\n",
        r#"{"id":"c3-1","case":"C3","type":"inskrivning","at":"2026-05-12T09:00:00+02:00","unit":"AVD1"}"#
    );
    assert_eq!(app.post_events(admitted).status, 200);
    let r = scan_ok(&app, AS_OF);
    assert_eq!(r["scan"]["filed"], 5, "{r}");
    assert_eq!(smtp.messages().len(), 5);

    let late = concat!(
        r#"{"id":"e5","case":"C1","type":"kvittens","at":"2026-05-08T20:00:00+02:00","unit":"K1-HT","ref":"e3"}"#,
        "\n",
        r#"{"id":"c2-2","case":"C2","type":"inskrivningsmeddelande","at":"2026-05-16T01:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#,
        "\n",
        r#"{"id":"c3-2","case":"C3","type":"inskrivningsmeddelande","at":"2026-05-16T02:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#
    );
    let r = app.post_events(late);
    assert_eq!(r.status, 200, "{}", r.body);
    let batch = r.json()["batch"].as_i64().unwrap();
    let r = scan_ok(&app, "2026-05-16T06:00:00+02:00");
    let counts = |r: &serde_json::Value| {
        (
            r["scan"]["filed"].as_i64(),
            r["scan"]["updated"].as_i64(),
            r["scan"]["withdrawn"].as_i64(),
        )
    };
    assert_eq!(counts(&r), (Some(0), Some(2), Some(1)), "{r}");
    assert_eq!(smtp.messages().len(), 6, "the withdrawal notice");

    let out = bin()
        .args([
            "remove-batch",
            "--batch",
            &batch.to_string(),
            "--yes",
            "--database-url",
            &app.db.url(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = scan_ok(&app, "2026-05-16T09:00:00+02:00");
    assert_eq!(counts(&r), (Some(1), Some(2), Some(0)), "{r}");
    assert_eq!(r["mail"]["sent"], 1, "{r}");

    let devs = app.deviations();
    let kv = devs.iter().find(|d| d.rule == "kvittens_utskrivningsklar").unwrap();
    assert_eq!(kv.status, "skickad", "reopened and reported again");
    let history = svu_vakt::store::deviations::history_of(&mut app.conn(), kv.id).unwrap();
    let steps: Vec<(Option<&str>, &str)> = history
        .iter()
        .map(|h| (h.from_status.map(|s| s.as_str()), h.to_status.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (None, "ny"),
            (Some("ny"), "skickad"),
            (Some("skickad"), "aterkallad"),
            (Some("aterkallad"), "ny"),
            (Some("ny"), "skickad")
        ]
    );
    for case in ["C2", "C3"] {
        let d = devs.iter().find(|d| d.case_id.as_deref() == Some(case)).unwrap();
        assert_eq!(
            (d.finding_status.as_str(), d.done_at, d.late_minutes, d.status.as_str()),
            ("missing", None, None, "skickad"),
            "{case}: the facts back as they were, quietly"
        );
    }
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 7);
    let reports: Vec<_> = msgs
        .iter()
        .filter(|m| m.subject().contains("Utskrivningsklar inte kvitterad") && !m.subject().starts_with("Återkallad"))
        .collect();
    assert_eq!(reports.len(), 2, "the first report and the one after reopening");
    assert_ne!(reports[0].message_id(), reports[1].message_id());
    assert!(reports[1]
        .rcpt
        .contains(&"socialtjanst@linkoping.example.se".to_string()));
}

fn scan_bin(url: &str, smtp: &str, fault: Option<&str>) -> std::process::Output {
    let mut c = bin();
    c.args([
        "scan",
        "--as-of",
        "2026-11-20T00:00:00+01:00",
        "--database-url",
        url,
        "--smtp-url",
        smtp,
    ]);
    if let Some(n) = fault {
        c.env("SVU_VAKT_FAULT_ABORT_AFTER_CHUNKS", n);
    }
    // Several chunks of the 700 demo cases, so a kill after the first leaves work undone.
    c.env("SVU_VAKT_SCAN_CHUNK_CASES", "250");
    // A year of demo history, all of it to be mailed here.
    c.env("SVU_VAKT_MAIL_MAX_AGE_DAYS", "100000");
    c.output().unwrap()
}

fn a_scan_killed_midway_and_run_again_files_and_mails_nothing_twice(b: Backend) {
    let smtp = SmtpServer::start();
    let crashed = spawn_app_with(b, |_| {});
    let clean = spawn_app_with(b, |_| {});
    for app in [&crashed, &clean] {
        demo_into(&app.db.url(), "700");
    }
    let out = scan_bin(&crashed.db.url(), &smtp.url(), Some("1"));
    assert!(!out.status.success(), "the fault injection kills the scan");
    let partial = crashed.deviations().len();
    assert!(partial > 0, "the first chunk was committed");
    assert!(smtp.messages().is_empty(), "killed before delivery");

    let out = scan_bin(&crashed.db.url(), &smtp.url(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference = SmtpServer::start();
    assert!(scan_bin(&clean.db.url(), &reference.url(), None).status.success());

    let fingerprints = |app: &TestApp| {
        app.deviations()
            .into_iter()
            .map(|d| d.fingerprint)
            .collect::<HashSet<_>>()
    };
    let (after_crash, without_crash) = (fingerprints(&crashed), fingerprints(&clean));
    assert!(after_crash.len() > partial, "the re-run finished the job");
    assert_eq!(
        after_crash, without_crash,
        "the same deviations as a scan that never crashed"
    );
    assert_eq!(crashed.deviations().len(), after_crash.len());
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), after_crash.len(), "one mail per deviation");
    assert_eq!(
        msgs.iter().map(|m| m.message_id()).collect::<HashSet<_>>().len(),
        msgs.len()
    );
    // Once more: nothing new.
    assert!(scan_bin(&crashed.db.url(), &smtp.url(), None).status.success());
    assert_eq!(smtp.messages().len(), msgs.len());
}

fn two_instances_on_one_database_scan_one_at_a_time_and_send_no_mail_twice(b: Backend) {
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let url_a = smtp_url.clone();
    let a = spawn_app_with(b, move |c| {
        c.mail.smtp_url = SmtpUrl(url_a);
        c.mail.max_age_days = 100_000;
    });
    let mut cfg_b = crate::helpers::config(&a.db);
    cfg_b.mail.smtp_url = SmtpUrl(smtp_url.clone());
    cfg_b.mail.max_age_days = 100_000;
    let b_app = spawn_on(TestDb::Shared { url: a.db.url() }, cfg_b.clone());
    demo_into(&a.db.url(), "700");

    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| a.scan("2026-11-20T00:00:00+01:00"));
        let hb = s.spawn(|| b_app.scan("2026-11-20T00:00:00+01:00"));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let statuses = [ra.status, rb.status];
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?} {} {}",
        ra.body,
        rb.body
    );
    assert!(statuses.contains(&200));
    let runs = runs(&a);
    for (i, x) in runs.iter().enumerate() {
        for y in &runs[i + 1..] {
            assert!(x.1 <= y.0 || y.1 <= x.0, "two scans overlapped: {x:?} {y:?}");
        }
    }
    let filed = a.deviations().len();
    assert!(filed > 100);

    // SMTP comes up; both instances drain the outbox at the same time.
    let smtp = SmtpServer::start_on(port);
    let templates = std::sync::Arc::new(svu_vakt::mail::templates::Templates::load(None).unwrap());
    let mailer_a = svu_vakt::mail::delivery::Mailer::from_config(&cfg_b.mail, templates.clone())
        .unwrap()
        .unwrap();
    let mailer_b = svu_vakt::mail::delivery::Mailer::from_config(&cfg_b.mail, templates)
        .unwrap()
        .unwrap();
    std::thread::scope(|s| {
        s.spawn(|| svu_vakt::mail::delivery::deliver(&a.pool, &mailer_a, false).unwrap());
        s.spawn(|| svu_vakt::mail::delivery::deliver(&b_app.pool, &mailer_b, false).unwrap());
    });
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), filed, "every deviation mailed");
    assert_eq!(
        msgs.iter().map(|m| m.message_id()).collect::<HashSet<_>>().len(),
        filed,
        "none twice"
    );
    drop(b_app);
}

fn runs(app: &TestApp) -> Vec<(chrono::NaiveDateTime, chrono::NaiveDateTime)> {
    use diesel::prelude::*;
    use svu_vakt::store::schema::scan_runs;
    let mut c = app.conn();
    let conn: &mut svu_vakt::store::DbConn = &mut c;
    let rows: Vec<(chrono::NaiveDateTime, Option<chrono::NaiveDateTime>)> = scan_runs::table
        .select((scan_runs::started_at, scan_runs::finished_at))
        .load(conn)
        .unwrap();
    rows.into_iter().map(|(s, f)| (s, f.unwrap())).collect()
}

fn digest_mode_sends_one_mail_per_recipient_per_scan(b: Backend) {
    let smtp = SmtpServer::start();
    let app = app(b, &smtp.url(), MailMode::Sammanstallning);
    // A second unacknowledged UK for K1-HT: two deviations for one recipient.
    app.post_events(r#"{"id":"c3","case":"C3","type":"utskrivningsklar","at":"2026-05-10T10:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#);
    let r = scan_ok(&app, AS_OF);
    assert_eq!(r["scan"]["filed"], 4);
    let msgs = smtp.messages();
    assert_eq!(
        msgs.len(),
        3,
        "avd1; socialtjänst (two kvittens deviations and the staffing one); the process owner's copy of socialtjänst's"
    );
    let social = msgs
        .iter()
        .find(|m| m.rcpt.contains(&"socialtjanst@linkoping.example.se".to_string()))
        .unwrap();
    assert!(social.subject().starts_with("3 nya avvikelser"), "{}", social.subject());
    assert_eq!(social.text().matches("==== Avvikelse").count(), 3);
    assert!(app.deviations().iter().all(|d| d.status == "skickad"));
    let r = scan_ok(&app, "2026-05-16T06:00:00+02:00");
    assert_eq!(r["mail"]["sent"], 0);
    assert_eq!(smtp.messages().len(), 3);
}

fn the_service_scans_on_its_schedule_and_mails_without_being_asked(b: Backend) {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(b, move |c: &mut Config| {
        c.mail.smtp_url = SmtpUrl(url);
        c.mail.routes = routes();
        c.mail.deliver_every_seconds = 1;
        c.mail.max_age_days = 100_000;
        c.scan = svu_vakt::config::ScanConfig::parse("* * * * * *", 60, 14).unwrap();
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    // Due long ago (now is after 2026-05): the scheduled scan must find it.
    assert_eq!(app.post_events(EVENTS).status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while smtp.messages().len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        smtp.messages().len() >= 3,
        "the scheduled scan and delivery mailed the deviations; scans: {}; outbox: {:?}",
        app.get("/api/v1/scans").body,
        app.outbox()
            .iter()
            .map(|m| (m.attempts, m.last_error.clone()))
            .collect::<Vec<_>>()
    );
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let msgs = smtp.messages();
    assert_eq!(
        msgs.iter().map(|m| m.message_id()).collect::<HashSet<_>>().len(),
        msgs.len(),
        "every mail once"
    );
    let runs = app.get("/api/v1/scans").json();
    assert!(runs.as_array().unwrap().len() >= 2, "scans run every second: {runs}");
}

fn old_data_arriving_after_the_first_scan_is_judged_in_full(b: Backend) {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(b, move |c: &mut Config| {
        c.mail.smtp_url = SmtpUrl(url);
        c.mail.routes = routes();
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    // The installation's first scan finds nothing; months later the history is loaded.
    assert_eq!(scan_ok(&app, "2026-11-01T00:00:00+01:00")["scan"]["filed"], 0);
    assert_eq!(app.post_events(EVENTS).status, 200);
    let r = scan_ok(&app, "2026-11-01T06:00:00+01:00");
    let rules: HashSet<String> = app.deviations().into_iter().map(|d| d.rule).collect();
    assert!(
        rules.contains("bemanning_storhelg"),
        "staffing of 15 May is judged although it is outside the lookback: {r}"
    );
    assert!(rules.contains("inskrivningsmeddelande_24h") && rules.contains("kvittens_utskrivningsklar"));
}

/// Months after 15 May, K1's bemanning of that day reaches us (registered
/// late). The day lies long before the incremental scan's lookback, so the
/// scan judges again only the (unit, day) pairs the arrival touched: K1's
/// deviation is withdrawn, K2's of the same day stays as it was. Then what
/// changes an old day without an arrival: the bemanning's batch removed,
/// K2 leaving the storhelg recommendation.
fn an_old_staffing_day_is_judged_again_by_a_late_bemanning_a_removed_batch_and_a_unit_leaving_storhelg(b: Backend) {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(b, move |c: &mut Config| {
        c.mail.smtp_url = SmtpUrl(url);
        c.mail.routes = routes();
    });
    let units = UNITS.replace(
        "\n]",
        ",\n {\"id\":\"K2\",\"name\":\"Äldreomsorgen\",\"kind\":\"kommun\",\"huvudman\":\"Linköpings kommun\"}\n]",
    );
    assert_eq!(app.post_units(&units).status, 200);
    assert_eq!(app.post_events(EVENTS).status, 200);
    scan_ok(&app, AS_OF);
    let staffing = |app: &TestApp| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = app
            .deviations()
            .into_iter()
            // 15 May, 15:00 in Stockholm (the later storhelger are filed too).
            .filter(|d| d.rule == "bemanning_storhelg" && d.due.to_string() == "2026-05-15 13:00:00")
            .map(|d| (d.unit.unwrap_or_default(), d.status.as_str().to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        staffing(&app),
        [
            ("K1".to_string(), "skickad".to_string()),
            ("K2".to_string(), "skickad".to_string())
        ]
    );
    // A quiet scan in October moves the lookback past May.
    assert_eq!(scan_ok(&app, "2026-10-01T00:00:00+02:00")["scan"]["withdrawn"], 0);
    let late = r#"{"id":"b3","type":"bemanning","at":"2026-05-15T10:00:00+02:00","unit":"K1"}"#;
    let r = app.post_events(late);
    assert_eq!(r.status, 200, "{}", r.body);
    let batch = r.json()["batch"].as_i64().unwrap();
    let r = scan_ok(&app, "2026-11-01T00:00:00+01:00");
    assert_eq!(
        (r["scan"]["withdrawn"].as_i64(), r["scan"]["filed"].as_i64()),
        (Some(1), Some(0)),
        "{r}"
    );
    let pair = |k1: &str, k2: &str| [("K1".to_string(), k1.to_string()), ("K2".to_string(), k2.to_string())];
    assert_eq!(staffing(&app), pair("aterkallad", "skickad"));

    // The bemanning was a mistake: its batch is removed. No event arrives,
    // yet the next scan judges 15 May again and reopens K1's deviation.
    let out = bin()
        .args([
            "remove-batch",
            "--batch",
            &batch.to_string(),
            "--yes",
            "--database-url",
            &app.db.url(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    scan_ok(&app, "2026-11-01T06:00:00+01:00");
    assert_eq!(staffing(&app), pair("skickad", "skickad"));

    // K2 leaves the storhelg recommendation: every judged staffing day is
    // judged again, and K2's deviation of 15 May is withdrawn, as a full
    // scan would.
    let k2_out = units.replace(
        "\"huvudman\":\"Linköpings kommun\"}\n]",
        "\"huvudman\":\"Linköpings kommun\",\"storhelg\":false}\n]",
    );
    assert_eq!(app.post_units(&k2_out).status, 200);
    scan_ok(&app, "2026-11-01T12:00:00+01:00");
    assert_eq!(staffing(&app), pair("skickad", "aterkallad"));
}

/// An event received before its `at` (a clock ahead, or a scan judging an
/// earlier instant) has not happened at the first scan: C2's IM is missing.
/// When it has happened, the next scan looks at C2 again though nothing new
/// arrived, and the missing turns late.
fn an_event_stored_ahead_of_its_time_is_judged_when_it_happens(b: Backend) {
    let smtp = SmtpServer::start();
    let app = app(b, &smtp.url(), MailMode::PerAvvikelse);
    let c2 = concat!(
        r#"{"id":"c2-1","case":"C2","type":"inskrivning","at":"2026-05-12T08:00:00+02:00","unit":"AVD1"}"#,
        "\n",
        r#"{"id":"c2-2","case":"C2","type":"inskrivningsmeddelande","at":"2026-05-16T01:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#
    );
    assert_eq!(app.post_events(c2).status, 200);
    scan_ok(&app, AS_OF);
    let of_c2 = |app: &TestApp| {
        app.deviations()
            .into_iter()
            .find(|d| d.case_id.as_deref() == Some("C2"))
            .map(|d| (d.finding_status, d.late_minutes))
    };
    assert_eq!(of_c2(&app), Some(("missing".to_string(), None)));
    let r = scan_ok(&app, "2026-05-16T06:00:00+02:00");
    assert_eq!(of_c2(&app), Some(("late".to_string(), Some(65 * 60))), "{r}");
}
