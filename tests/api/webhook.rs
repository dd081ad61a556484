//! Reports into the huvudman's own deviation system (SPEC §6.0), over real
//! HTTP to the test receiver and real SMTP: the signed document and its
//! headers, retries on 5xx, 429, no answer and a dropped connection, a
//! refusal for good, webhook only (`mail = false`), the central intake
//! first, a withdrawal and a closing, and a `serve` process killed between
//! the POST and marking the row sent.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use svu_vakt::config::Config;
use svu_vakt::domain::Secret;
use svu_vakt::mail::outbox::{Channel, MailRow};
use svu_vakt::mail::{Route, SmtpUrl};

use crate::helpers::{bin, spawn_app_with, Backend, Child, TestApp, UNITS};
use crate::smtp::SmtpServer;
use crate::webhook_receiver::{Answer, Delivery, Receiver};

crate::on_both!(
    a_report_arrives_signed_with_its_key_and_the_document_of_both_sides,
    a_receiver_answering_500_gets_the_report_again_and_takes_it_once,
    a_receiver_answering_429_gets_the_report_again,
    a_receiver_that_does_not_answer_gets_the_report_again_after_the_timeout,
    a_dropped_connection_gets_the_report_again,
    a_receiver_that_asks_to_wait_holds_up_only_its_own_reports,
    a_refusal_is_final_listed_counted_and_told_to_the_default_address,
    a_webhook_only_route_sends_no_mail,
    intake_first_mails_the_central_intake_with_the_unit_as_copy,
    a_withdrawn_deviation_is_withdrawn_at_the_receiver_under_its_fingerprint,
    a_closed_deviation_is_closed_at_the_receiver_with_its_atgard,
    a_serve_process_killed_after_the_post_sends_it_again_under_the_same_key,
);

const SECRET: &str = "hemlig-nyckel-for-testerna-0123456789";
const DEFAULT_TO: &str = "svu-processagare@region.example.se";

/// A case of AVD1 (Region Östergötland) with no inskrivningsmeddelande:
/// one deviation of AVD1, due 2026-05-05 08:00.
const IM_MISSING: &str =
    r#"{"id":"w1","case":"W1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}"#;

/// AVD1's IM to a hemtjänst and a vårdcentral, 90 minutes late.
const IM_LATE: &str = r#"{"id":"w3","case":"W3","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD1"}
{"id":"w4","case":"W3","type":"inskrivningsmeddelande","at":"2026-05-05T09:30:00+02:00","unit":"AVD1","to":["K1-HT","VC1"]}
"#;

/// The IM of `IM_MISSING`, sent in time: evidence that withdraws.
const IM_IN_TIME: &str = r#"{"id":"w2","case":"W1","type":"inskrivningsmeddelande","at":"2026-05-04T20:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#;

fn hook_route(receiver: &Receiver) -> Route {
    Route {
        unit: Some("AVD1".into()),
        webhook_url: Some(receiver.url()),
        webhook_secret: Some(Secret::new(SECRET.as_bytes().to_vec())),
        ..Default::default()
    }
}

/// An app whose AVD1 reports go to `receiver` (and mail to `smtp`, if any).
fn app_with(b: Backend, smtp: Option<&SmtpServer>, route: Route) -> TestApp {
    let smtp_url = smtp.map(SmtpServer::url).unwrap_or_default();
    let app = spawn_app_with(b, move |c: &mut Config| {
        c.mail.smtp_url = SmtpUrl(smtp_url);
        c.mail.default_to = DEFAULT_TO.into();
        c.mail.webhook_timeout_seconds = 2;
        c.mail.routes = vec![route];
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    app
}

fn scan(app: &TestApp, as_of: &str) -> serde_json::Value {
    let r = app.scan(as_of);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn hooks(app: &TestApp) -> Vec<MailRow> {
    app.outbox()
        .into_iter()
        .filter(|m| m.channel == Channel::Webhook)
        .collect()
}

fn the_deviation(app: &TestApp) -> svu_vakt::store::deviations::DeviationRow {
    let mut avd1: Vec<_> = app
        .deviations()
        .into_iter()
        .filter(|d| d.unit.as_deref() == Some("AVD1") && d.case_id.as_deref() == Some("W1"))
        .collect();
    assert_eq!(avd1.len(), 1, "{avd1:?}");
    avd1.remove(0)
}

fn hmac_hex(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Each request as the receiver saw it: its headers are what SPEC §6.0 says.
fn checked(d: &Delivery) -> serde_json::Value {
    assert_eq!(d.path, "/avvikelser");
    assert_eq!(d.header("Content-Type"), Some("application/json"), "{:?}", d.headers);
    assert_eq!(
        d.header("X-Svu-Vakt-Signature"),
        Some(hmac_hex(&d.body).as_str()),
        "HMAC-SHA256 of the body under the route's secret"
    );
    assert!(!d.body.contains("19900101"), "no personnummer: {}", d.body);
    let doc = d.json();
    let key = format!(
        "{}:{}",
        doc["fingerprint"].as_str().unwrap(),
        doc["kind"].as_str().unwrap()
    );
    assert!(
        d.header("Idempotency-Key").unwrap().starts_with(&key),
        "{:?} for {key}",
        d.header("Idempotency-Key")
    );
    doc
}

fn a_report_arrives_signed_with_its_key_and_the_document_of_both_sides(b: Backend) {
    let receiver = Receiver::start();
    let app = app_with(b, None, hook_route(&receiver));
    // W1: AVD1 sent no IM. W3: AVD1 sent it late to a kommun's hemtjänst
    // and a vårdcentral: the berörd part is both, each with its huvudman.
    assert_eq!(app.post_events(crate::helpers::CASE_EVENTS).status, 200);
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    assert_eq!(app.post_events(IM_LATE).status, 200);
    let r = scan(&app, "2026-05-10T00:00:00+02:00");
    let avd1: Vec<_> = app
        .deviations()
        .into_iter()
        .filter(|d| d.unit.as_deref() == Some("AVD1"))
        .collect();
    assert!(avd1.len() >= 2, "{avd1:?}");
    assert_eq!(r["webhook"]["sent"], avd1.len(), "{r}");
    assert_eq!(r["webhook"]["pending"], 0, "{r}");
    let got = receiver.deliveries();
    assert_eq!(got.len(), avd1.len(), "one POST per report of the route's unit");
    for d in &got {
        let doc = checked(d);
        let key = format!("{}:rapport", doc["fingerprint"].as_str().unwrap());
        assert_eq!(d.header("Idempotency-Key"), Some(key.as_str()));
        assert_eq!(doc["kind"], "rapport");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["unit"]["id"], "AVD1");
        assert_eq!(doc["unit"]["huvudman"], "Region Östergötland");
        // The same document a system that pulls gets.
        let pulled = app.get(&format!("/api/v1/deviations/{}/report.json", doc["id"])).json();
        assert_eq!(pulled, doc);
    }
    let late = got
        .iter()
        .map(Delivery::json)
        .find(|doc| doc["case"] == "W3")
        .expect("the late IM's report");
    assert_eq!(late["status"], "late");
    assert_eq!(late["late_minutes"], 90);
    assert_eq!(late["done"], "2026-05-05T09:30:00+02:00");
    let berord: Vec<(&str, &str)> = late["berord"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), u["huvudman"].as_str().unwrap()))
        .collect();
    assert_eq!(
        berord,
        [("K1-HT", "Linköpings kommun"), ("VC1", "Region Östergötland")],
        "{late}"
    );
    assert!(hooks(&app).iter().all(|m| m.sent_at.is_some() && m.attempts == 1));
    // Reports to the webhook leave the deviations as they were: `skickad` means mailed.
    assert!(avd1.iter().all(|d| d.status == "ny"));
    // Nothing goes twice.
    scan(&app, "2026-05-10T01:00:00+02:00");
    assert_eq!(receiver.deliveries().len(), got.len());
}

/// The receiver answers `first` once, then 200: the report is retried with
/// the mail's backoff and taken once, under the same key and body.
fn retried_after(b: Backend, first: Answer) {
    let receiver = Receiver::start();
    receiver.answer_next(&[first]);
    let app = app_with(b, None, hook_route(&receiver));
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    let started = Instant::now();
    let r = scan(&app, "2026-05-10T00:00:00+02:00");
    assert_eq!(r["webhook"]["sent"], 0, "{r}");
    assert_eq!(r["webhook"]["failed"], 1, "{r}");
    assert_eq!(r["webhook"]["refused"], 0, "{r}");
    assert_eq!(r["webhook"]["pending"], 1, "{r}");
    if first == Answer::Hang {
        assert!(started.elapsed() >= Duration::from_secs(2), "waited for the timeout");
    }
    let row = hooks(&app).remove(0);
    assert_eq!((row.attempts, row.sent_at, row.failed_at), (1, None, None));
    assert!(row.last_error.is_some());
    let wait = row.next_attempt_at - row.created_at;
    assert!(
        wait >= chrono::Duration::seconds(50) && wait <= chrono::Duration::seconds(70),
        "the mail's backoff: a minute after the first failure ({wait})"
    );
    let r = scan(&app, "2026-05-10T01:00:00+02:00");
    assert_eq!(r["webhook"]["sent"], 1, "{r}");
    let got = receiver.deliveries();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("Idempotency-Key"), got[1].header("Idempotency-Key"));
    assert_eq!(got[0].body, got[1].body, "the same document");
    checked(&got[1]);
    let row = hooks(&app).remove(0);
    assert!(row.sent_at.is_some() && row.attempts == 2);
    scan(&app, "2026-05-10T02:00:00+02:00");
    assert_eq!(receiver.deliveries().len(), 2, "taken once, sent no more");
}

fn a_receiver_answering_500_gets_the_report_again_and_takes_it_once(b: Backend) {
    retried_after(b, Answer::Status(500));
}

fn a_receiver_answering_429_gets_the_report_again(b: Backend) {
    retried_after(b, Answer::Status(429));
}

fn a_receiver_that_does_not_answer_gets_the_report_again_after_the_timeout(b: Backend) {
    retried_after(b, Answer::Hang);
}

fn a_dropped_connection_gets_the_report_again(b: Backend) {
    retried_after(b, Answer::Drop);
}

/// Two receivers: the region's answers 500 once, the kommun's takes all.
fn a_receiver_that_asks_to_wait_holds_up_only_its_own_reports(b: Backend) {
    let region = Receiver::start();
    region.answer_next(&[Answer::Status(500)]);
    let kommun = Receiver::start();
    let routes = vec![
        hook_route(&region),
        Route {
            unit: None,
            huvudman: Some("Linköpings kommun".into()),
            ..hook_route(&kommun)
        },
    ];
    let app = spawn_app_with(b, move |c: &mut Config| {
        c.mail.webhook_timeout_seconds = 2;
        c.mail.routes = routes;
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    // AVD1: two reports at least (W1 no IM, W3 a late IM); K1-HT: the
    // kvittens of W3's utskrivningsklar never came.
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    assert_eq!(app.post_events(IM_LATE).status, 200);
    let uk = r#"{"id":"w5","case":"W3","type":"utskrivningsklar","at":"2026-05-06T10:00:00+02:00","unit":"AVD1","to":["K1-HT"]}"#;
    assert_eq!(app.post_events(uk).status, 200);
    let r = scan(&app, "2026-05-10T00:00:00+02:00");
    let of = |units: &[&str]| {
        app.deviations()
            .into_iter()
            .filter(|d| d.unit.as_deref().is_some_and(|u| units.contains(&u)))
            .count()
    };
    let (avd1, kommun_units) = (of(&["AVD1"]), of(&["K1", "K1-HT"]));
    assert!(avd1 >= 2 && kommun_units >= 1, "{:?}", app.deviations());
    assert_eq!(region.deliveries().len(), 1, "one 500, then the region's rows wait");
    assert_eq!(
        kommun.deliveries().len(),
        kommun_units,
        "the kommun's went all the same"
    );
    assert_eq!(r["webhook"]["sent"], kommun_units, "{r}");
    assert_eq!(r["webhook"]["pending"], avd1, "{r}");
    let waiting: Vec<MailRow> = hooks(&app).into_iter().filter(|m| m.sent_at.is_none()).collect();
    assert_eq!(waiting.len(), avd1);
    assert!(
        waiting.iter().all(|m| m.claimed_until.is_none()),
        "held only for the round: {waiting:?}"
    );
    assert_eq!(waiting.iter().map(|m| m.attempts).sum::<i32>(), 1, "one was tried");
    let r = scan(&app, "2026-05-10T01:00:00+02:00");
    assert_eq!(r["webhook"]["sent"], avd1, "{r}");
    assert_eq!(region.deliveries().len(), 1 + avd1);
}

fn a_refusal_is_final_listed_counted_and_told_to_the_default_address(b: Backend) {
    let receiver = Receiver::start();
    receiver.answer_always(Answer::Status(400));
    let smtp = SmtpServer::start();
    let app = app_with(b, Some(&smtp), hook_route(&receiver));
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    let r = scan(&app, "2026-05-10T00:00:00+02:00");
    assert_eq!(r["webhook"]["refused"], 1, "{r}");
    assert_eq!(r["webhook"]["pending"], 0, "{r}");
    let row = hooks(&app).remove(0);
    assert!(row.failed_at.is_some() && row.sent_at.is_none(), "{row:?}");
    assert!(row.last_error.as_deref().unwrap().contains("400"), "{row:?}");
    let failed = app.get("/api/v1/outbox?status=failed").json();
    let listed = failed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["channel"] == "webhook")
        .unwrap_or_else(|| panic!("listed for admins: {failed}"));
    assert_eq!(listed["to"], receiver.url());
    assert_eq!(listed["message_id"], row.message_id.as_str());
    let metrics = app.request("GET", "/metrics", None, None).body;
    assert!(metrics.contains("svu_vakt_webhook_refused_total 1"), "{metrics}");
    assert!(metrics.contains("svu_vakt_outbox_failed 1"), "{metrics}");
    // The notice was queued by the webhook round: the next round mails it.
    scan(&app, "2026-05-10T01:00:00+02:00");
    let notice = smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().contains("Avvikelsesystemet tog inte emot"))
        .expect("the default address is told");
    assert_eq!(notice.rcpt, vec![DEFAULT_TO.to_string()]);
    assert!(notice.text().contains(&row.message_id), "{}", notice.text());
    assert!(notice.text().contains("400"), "{}", notice.text());
    assert_eq!(receiver.deliveries().len(), 1, "never retried");
    assert_eq!(hooks(&app).len(), 1);
}

fn a_webhook_only_route_sends_no_mail(b: Backend) {
    let receiver = Receiver::start();
    let smtp = SmtpServer::start();
    let route = Route {
        mail: false,
        cc: vec![DEFAULT_TO.into()],
        notify_on_close: true,
        ..hook_route(&receiver)
    };
    let app = app_with(b, Some(&smtp), route);
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    let r = scan(&app, "2026-05-10T00:00:00+02:00");
    assert_eq!(r["webhook"]["sent"], 1, "{r}");
    assert_eq!(receiver.deliveries().len(), 1);
    assert!(smtp.messages().is_empty(), "no mail, not even to the copies");
    assert!(
        app.outbox().iter().all(|m| m.channel == Channel::Webhook),
        "no mail queued: {:?}",
        app.outbox()
    );
    let d = the_deviation(&app);
    assert_eq!(d.status, "ny", "not mailed, so not skickad");
    // Worked in svu-vakt all the same, then withdrawn by new data: the
    // receiver is told, nobody is mailed.
    let r = app.request(
        "POST",
        &format!("/api/v1/deviations/{}/status", d.id),
        Some(&app.admin.clone()),
        Some(("application/json", r#"{"status": "mottagen"}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.post_events(IM_IN_TIME).status, 200);
    scan(&app, "2026-05-10T01:00:00+02:00");
    assert_eq!(the_deviation(&app).status, "aterkallad");
    let got = receiver.deliveries();
    assert_eq!(got.len(), 2);
    assert_eq!(checked(&got[1])["kind"], "aterkallad");
    assert!(
        smtp.messages().is_empty(),
        "no withdrawal by mail either: {:?}",
        smtp.messages()
    );
}

fn intake_first_mails_the_central_intake_with_the_unit_as_copy(b: Backend) {
    let smtp = SmtpServer::start();
    let intake = "avvikelser@regionostergotland.example.se";
    let route = Route {
        huvudman: Some("Region Östergötland".into()),
        to: Some(intake.into()),
        intake_first: true,
        ..Default::default()
    };
    let app = app_with(b, Some(&smtp), route);
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    let r = scan(&app, "2026-05-10T00:00:00+02:00");
    assert_eq!(r["mail"]["sent"], 1, "{r}");
    let msgs = smtp.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    let mut rcpt = m.rcpt.clone();
    rcpt.sort();
    assert_eq!(rcpt, vec!["avd1@example.se".to_string(), intake.to_string()]);
    assert!(m.header("To").unwrap().contains(intake), "{:?}", m.header("To"));
    assert!(
        m.header("Cc").unwrap().contains("avd1@example.se"),
        "{:?}",
        m.header("Cc")
    );
    let d = the_deviation(&app);
    assert_eq!(d.status, "skickad", "mailed to its recipient, the intake");
    let r: serde_json::Value = serde_json::from_str(&d.recipients).unwrap();
    assert!(r["via"].as_str().unwrap().contains("intake_first"), "{r}");
}

fn a_withdrawn_deviation_is_withdrawn_at_the_receiver_under_its_fingerprint(b: Backend) {
    let receiver = Receiver::start();
    let app = app_with(b, None, hook_route(&receiver));
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    scan(&app, "2026-05-10T00:00:00+02:00");
    let d = the_deviation(&app);
    assert_eq!(app.post_events(IM_IN_TIME).status, 200);
    let r = scan(&app, "2026-05-10T01:00:00+02:00");
    assert_eq!(r["webhook"]["sent"], 1, "{r}");
    let got = receiver.deliveries();
    assert_eq!(got.len(), 2);
    let doc = checked(&got[1]);
    assert_eq!(
        got[1].header("Idempotency-Key"),
        Some(format!("{}:aterkallad", d.fingerprint).as_str())
    );
    assert_eq!(doc["kind"], "aterkallad");
    assert_eq!(doc["fingerprint"], d.fingerprint.as_str(), "the same deviation");
    assert_eq!(doc["id"], d.id);
    assert_eq!(doc["handling_status"], "aterkallad");
    assert_eq!(got[0].json()["fingerprint"], got[1].json()["fingerprint"]);
}

fn a_closed_deviation_is_closed_at_the_receiver_with_its_atgard(b: Backend) {
    let receiver = Receiver::start();
    let app = app_with(b, None, hook_route(&receiver));
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    // The report is refused for now: the closing waits behind it.
    receiver.answer_next(&[Answer::Status(503)]);
    scan(&app, "2026-05-10T00:00:00+02:00");
    let d = the_deviation(&app);
    for (status, extra) in [
        ("mottagen", ""),
        ("atgardad", r#", "atgard": "IM-rutinen genomgången med avdelningen""#),
        ("avslutad", ""),
    ] {
        let body = format!(r#"{{"status": "{status}"{extra}}}"#);
        let r = app.request(
            "POST",
            &format!("/api/v1/deviations/{}/status", d.id),
            Some(&app.admin.clone()),
            Some(("application/json", &body)),
        );
        assert_eq!(r.status, 200, "{status}: {}", r.body);
    }
    let r = scan(&app, "2026-05-10T01:00:00+02:00");
    assert_eq!(r["webhook"]["sent"], 2, "{r}");
    let got = receiver.deliveries();
    let kinds: Vec<String> = got
        .iter()
        .map(|d| checked(d)["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["rapport", "rapport", "avslutad"],
        "the report first, then its closing"
    );
    assert_eq!(
        got[2].header("Idempotency-Key"),
        Some(format!("{}:avslutad", d.fingerprint).as_str())
    );
    let closed = got[2].json();
    assert_eq!(closed["atgard_utford"], "IM-rutinen genomgången med avdelningen");
    assert_eq!(closed["handling_status"], "avslutad");
}

/// A real `serve` (its scheduled scan and delivery loops), killed after the
/// receiver got the POST and before the row was marked sent; started again,
/// it sends the report again with the same Idempotency-Key and body, and
/// the row ends sent.
fn a_serve_process_killed_after_the_post_sends_it_again_under_the_same_key(b: Backend) {
    let receiver = Receiver::start();
    receiver.answer_next(&[Answer::Hang]);
    // The test's own instance loads the data; it has the route too, should
    // its delivery loop's first round ever see the row.
    let app = app_with(b, None, hook_route(&receiver));
    assert_eq!(app.post_events(IM_MISSING).status, 200);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("svu-vakt.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scan]\nschedule = \"*/2 * * * * *\"\n[mail]\ndeliver_every_seconds = 1\nmax_age_days = 100000\n\
             smtp_timeout_seconds = 3\nwebhook_timeout_seconds = 3\nclaim_seconds = 9\ndefault_to = \"{DEFAULT_TO}\"\n\
             [[mail.routes]]\nunit = \"AVD1\"\nwebhook_url = \"{}\"\nmail = false\n",
            receiver.url()
        ),
    )
    .unwrap();
    let url = app.db.url();
    let serve = || {
        Child(
            bin()
                .env("SVU_VAKT_WEBHOOK_SECRET_1", SECRET)
                .arg("--config")
                .arg(&cfg)
                .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
                .spawn()
                .unwrap(),
        )
    };
    let first = serve();
    let deadline = Instant::now() + Duration::from_secs(90);
    while receiver.deliveries().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no POST arrived: {}",
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Killed while the receiver holds the request: never marked sent.
    drop(first);
    let row = hooks(&app).into_iter().next().expect("the report's row");
    assert!(row.sent_at.is_none() && row.claimed_until.is_some(), "{row:?}");
    let second = serve();
    let deadline = Instant::now() + Duration::from_secs(90);
    while hooks(&app).iter().any(|m| m.sent_at.is_none()) {
        assert!(Instant::now() < deadline, "the row was never sent: {:?}", hooks(&app));
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(second);
    let got = receiver.deliveries();
    let mut per_key: HashMap<String, Vec<&Delivery>> = HashMap::new();
    for d in &got {
        checked(d);
        per_key
            .entry(d.header("Idempotency-Key").unwrap().to_string())
            .or_default()
            .push(d);
    }
    let d = the_deviation(&app);
    let key = format!("{}:rapport", d.fingerprint);
    let repeats = &per_key[&key];
    assert_eq!(repeats.len(), 2, "the POST cut off, then once more: {got:?}");
    assert_eq!(repeats[0].body, repeats[1].body, "the same document");
    assert!(per_key.values().all(|v| v.len() <= 2), "{per_key:?}");
    let row = hooks(&app).into_iter().find(|m| m.message_id == key).unwrap();
    assert!(row.sent_at.is_some() && row.failed_at.is_none(), "{row:?}");
}
