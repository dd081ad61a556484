//! Reminders, escalation and the closing notice (SPEC §6.1), mailed through
//! the outbox to a real SMTP server: once per period, to the right address,
//! never for closed deviations.

use diesel::prelude::*;
use svu_vakt::config::Config;
use svu_vakt::mail::{Route, SmtpUrl};
use svu_vakt::store::schema::deviation_history;
use svu_vakt::store::tokens::Role;
use svu_vakt::store::DbConn;

use crate::handling::{create_user, Session};
use crate::helpers::{spawn_app_with, Backend, TestApp, UNITS};
use crate::smtp::SmtpServer;

crate::on_both!(
    an_unhandled_deviation_reminds_its_recipient_then_tells_the_chef_once_per_period,
    closed_and_unmailed_deviations_get_no_reminder_and_escalation_falls_back_to_the_route,
    closing_a_deviation_tells_the_copies_what_was_done,
);

const PROCESS_OWNER: &str = "svu-processagare@region.example.se";

fn app(b: Backend, smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    let app = spawn_app_with(b, move |c: &mut Config| {
        c.mail.smtp_url = SmtpUrl(url);
        c.mail.routes = vec![Route {
            huvudman: Some("Region Östergötland".into()),
            cc: vec![PROCESS_OWNER.into()],
            escalate_to: Some("verksamhetschef@region.example.se".into()),
            notify_on_close: true,
            ..Default::default()
        }];
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    app
}

/// Cases C2..C(n+1) of AVD1 without an IM, scanned and mailed: their ids.
fn mailed_deviations(app: &TestApp, n: usize) -> Vec<i64> {
    let events: String = (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"x{i}\",\"case\":\"C{}\",\"type\":\"inskrivning\",\"at\":\"2026-05-{}T08:00:00+02:00\",\"unit\":\"AVD1\"}}\n",
                i + 2,
                i + 12
            )
        })
        .collect();
    assert_eq!(app.post_events(&events).status, 200);
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    let ids: Vec<i64> = app
        .deviations()
        .iter()
        .filter(|d| d.rule == "inskrivningsmeddelande_24h")
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), n);
    for id in &ids {
        assert_eq!(status_of(app, *id), "skickad");
    }
    ids
}

fn status_of(app: &TestApp, id: i64) -> String {
    svu_vakt::store::deviations::get(&mut app.conn(), id)
        .unwrap()
        .unwrap()
        .status
        .to_string()
}

/// Moves every history line of `id` (and so its last step) `days` back.
fn age(app: &TestApp, id: i64, days: i64) {
    let mut c = app.conn();
    let conn: &mut DbConn = &mut c;
    let rows: Vec<(i64, chrono::NaiveDateTime)> = deviation_history::table
        .filter(deviation_history::deviation_id.eq(id))
        .select((deviation_history::id, deviation_history::at))
        .load(conn)
        .unwrap();
    for (hid, at) in rows {
        diesel::update(deviation_history::table.find(hid))
            .set(deviation_history::at.eq(at - chrono::Duration::days(days)))
            .execute(conn)
            .unwrap();
    }
}

fn kinds_to(smtp: &SmtpServer, prefix: &str) -> Vec<(String, String)> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.subject().starts_with(prefix))
        .map(|m| (m.rcpt.join(","), m.subject()))
        .collect()
}

fn an_unhandled_deviation_reminds_its_recipient_then_tells_the_chef_once_per_period(b: Backend) {
    let smtp = SmtpServer::start();
    let app = app(b, &smtp);
    let r = app.post_units(
        r#"[{"id":"AVD1","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Östergötland","chef_email":"chef.avd1@example.se"}]"#,
    );
    assert_eq!(r.status, 200);
    let ids = mailed_deviations(&app, 2);
    let (idle, fresh) = (ids[0], ids[1]);
    // Eight days without a step: one reminder to the recipient, the other deviation none.
    age(&app, idle, 8);
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    let reminders = kinds_to(&smtp, "Påminnelse");
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].0, "avd1@example.se");
    assert!(
        reminders[0].1.contains(&format!("avvikelse {idle} har väntat 8 dagar")),
        "{reminders:?}"
    );
    let text = smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().starts_with("Påminnelse"))
        .unwrap()
        .text();
    assert!(text.contains("skickad men inte mottagen"), "{text}");
    assert!(!text.contains("19900101"), "{text}");
    // The next scans the same day: nothing again.
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    assert_eq!(kinds_to(&smtp, "Påminnelse").len(), 1);
    // Fifteen days: the unit's chef hears of it, once (the recipient was
    // reminded moments ago: not again before a week has passed).
    age(&app, idle, 7);
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    let escalations = kinds_to(&smtp, "Ohanterad avvikelse");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0].0, "chef.avd1@example.se");
    assert!(escalations[0].1.contains("15 dagar"), "{escalations:?}");
    assert_eq!(kinds_to(&smtp, "Påminnelse").len(), 1);
    // A handling step restarts the clock: received now, nothing is due.
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    let anna = Session::login(&app, "anna.avd1");
    let r = anna.post(
        &app,
        &format!("/api/v1/deviations/{idle}/status"),
        &serde_json::json!({"status": "mottagen"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    assert_eq!(kinds_to(&smtp, "Påminnelse").len(), 1);
    assert_eq!(kinds_to(&smtp, "Ohanterad avvikelse").len(), 1);
    assert_eq!(status_of(&app, fresh), "skickad");
}

fn closed_and_unmailed_deviations_get_no_reminder_and_escalation_falls_back_to_the_route(b: Backend) {
    let smtp = SmtpServer::start();
    let app = app(b, &smtp);
    let ids = mailed_deviations(&app, 3);
    let set = |id: i64, status: &str| {
        use svu_vakt::store::schema::deviations;
        let mut c = app.conn();
        let conn: &mut DbConn = &mut c;
        diesel::update(deviations::table.find(id))
            .set(deviations::status.eq(status))
            .execute(conn)
            .unwrap();
    };
    set(ids[0], "avslutad");
    set(ids[1], "ny");
    for id in &ids {
        age(&app, *id, 20);
    }
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    // Only the third, still waiting, is chased; AVD1 has no chef: the route's address.
    let escalations = kinds_to(&smtp, "Ohanterad avvikelse");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert!(
        escalations[0].1.contains(&format!("avvikelse {}", ids[2])),
        "{escalations:?}"
    );
    assert_eq!(escalations[0].0, "verksamhetschef@region.example.se");
    let reminders = kinds_to(&smtp, "Påminnelse");
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert!(
        reminders[0].1.contains(&format!("avvikelse {}", ids[2])),
        "{reminders:?}"
    );
}

fn closing_a_deviation_tells_the_copies_what_was_done(b: Backend) {
    let smtp = SmtpServer::start();
    let app = app(b, &smtp);
    let id = mailed_deviations(&app, 1)[0];
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    let anna = Session::login(&app, "anna.avd1");
    for body in [
        serde_json::json!({"status": "mottagen"}),
        serde_json::json!({"status": "atgardad", "atgard": "IM-rutinen gicks igenom med alla sjuksköterskor"}),
    ] {
        let r = anna.post(&app, &format!("/api/v1/deviations/{id}/status"), &body);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    assert!(kinds_to(&smtp, "Avslutad").is_empty(), "not closed yet");
    let r = anna.post(
        &app,
        &format!("/api/v1/deviations/{id}/status"),
        &serde_json::json!({"status": "avslutad"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.scan("2026-05-20T00:00:00+02:00").status, 200);
    let closed = kinds_to(&smtp, "Avslutad");
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].0, PROCESS_OWNER);
    let text = smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().starts_with("Avslutad"))
        .unwrap()
        .text();
    assert!(
        text.contains("Åtgärd: IM-rutinen gicks igenom med alla sjuksköterskor"),
        "{text}"
    );
    // The report's recipient was not sent the notice; the deviation stays closed.
    assert_eq!(status_of(&app, id), "avslutad");
}
