//! The lifecycle without HTTP: the refusals of SPEC §6.1 as `domain::handling`
//! decides them, what a comment may be, and on a SQLite file that a refused
//! change changes nothing, an allowed one is kept with its history line, and
//! scope hides what is not the caller's.

use super::*;
use crate::domain::handling::StatusChange;
use crate::domain::{Role, Unit, UnitId, UnitKind};
use crate::mail::{MailConfig, MailMode, SmtpUrl};
use crate::store::deviations::NewDeviation;

#[test]
fn refusals_keep_the_words_of_domain_handling() {
    let refused = Refused::NotAllowed {
        from: "ny".parse().unwrap(),
        to: "avslutad".parse().unwrap(),
    };
    let e = HandlingError::from(refused.clone());
    assert!(matches!(&e, HandlingError::NotAllowed { from, to } if from == "ny" && to == "avslutad"));
    assert_eq!(e.to_string(), refused.message());
    for field in ["atgard", "reason", "note"] {
        let e = HandlingError::from(Refused::Missing(field));
        assert!(matches!(e, HandlingError::Missing { field: f } if f == field));
        assert_eq!(e.to_string(), Refused::Missing(field).message());
    }
    let unknown = Refused::UnknownStatus("klar".into());
    let e = HandlingError::from(unknown.clone());
    assert!(matches!(&e, HandlingError::Invalid(m) if *m == unknown.message()));
}

#[test]
fn a_comment_is_trimmed_and_refused_empty_or_too_long_as_sent() {
    assert_eq!(comment_text("  Ringt enheten \n").unwrap(), "Ringt enheten");
    assert!(matches!(comment_text(" \u{feff}\u{85}\t"), Err(HandlingError::Invalid(m)) if m == "kommentaren är tom"));
    let full = "a".repeat(MAX_COMMENT);
    assert_eq!(comment_text(&full).unwrap(), full);
    // Counted as sent: the blank that takes it over the limit counts too.
    assert!(matches!(
        comment_text(&format!("{full} ")),
        Err(HandlingError::Invalid(_))
    ));
}

fn mail() -> MailConfig {
    MailConfig {
        smtp_url: SmtpUrl("smtp://127.0.0.1:1".into()),
        from: "svu-vakt@example.se".into(),
        default_to: "avvikelser@example.se".into(),
        mode: MailMode::PerAvvikelse,
        base_url: "http://localhost".into(),
        templates_dir: None,
        deliver_every_seconds: 60,
        smtp_timeout_seconds: 10,
        webhook_timeout_seconds: 10,
        claim_seconds: 300,
        max_age_days: 30,
        routes: Vec::new(),
    }
}

fn unit(id: &str, parent: Option<&str>) -> Unit {
    Unit {
        id: UnitId(id.into()),
        name: format!("Enhet {id}"),
        kind: UnitKind::Slutenvard,
        huvudman: "Region".into(),
        parent: parent.map(|p| UnitId(p.into())),
        email: None,
        chef_email: None,
        storhelg: false,
        email_given: false,
        chef_email_given: false,
    }
}

fn caller(role: Role, units: &[&str]) -> Caller {
    Caller {
        token_id: None,
        user_id: None,
        name: format!("{}-test", role.as_str()),
        role,
        units: units.iter().map(|u| u.to_string()).collect(),
    }
}

/// A migrated SQLite file with units A (B below it) and C, and one
/// deviation of unit B in status `ny` (mailed to b@, a copy to kopia@): its id.
fn database(dir: &std::path::Path) -> (crate::store::Pool, i64) {
    let url = crate::store::DbUrl::Sqlite(dir.join("handling.db"));
    let pool = crate::store::pool(&url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    crate::store::migrate(&mut conn).unwrap();
    let units = [unit("A", None), unit("B", Some("A")), unit("C", None)];
    crate::store::units::upsert(&mut conn, &units).unwrap();
    let at = chrono::NaiveDate::from_ymd_opt(2026, 5, 4)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .unwrap();
    let at = crate::store::stamp::Stamp(at);
    let row = NewDeviation {
        fingerprint: "fp-1",
        rule: "inskrivningsmeddelande_24h",
        case_id: Some("K1"),
        unit: Some("B"),
        due: at,
        finding_status: "late",
        done_at: Some(at),
        late_minutes: Some(60),
        status: "ny".parse().unwrap(),
        sannolikhet: 2,
        konsekvens: 3,
        recipients: r#"{"to":"b@example.se","cc":["kopia@example.se"],"via":""}"#.into(),
        queued_at: None,
        scan_id: 0,
        created_at: at,
    };
    let ids = deviations::insert_many(&mut conn, &[row]).unwrap();
    drop(conn);
    (pool, ids[0].0)
}

fn change(status: &str) -> StatusChange {
    StatusChange {
        status: status.into(),
        ..Default::default()
    }
}

#[test]
fn a_refused_change_changes_nothing_and_an_allowed_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, id) = database(dir.path());
    let conn = &mut pool.get().unwrap();
    let h = caller(Role::Handlaggare, &["A"]);
    let before = deviations::history_of(conn, id).unwrap().len();
    let e = change_status(conn, &mail(), &h, id, &change("avslutad")).unwrap_err();
    assert!(matches!(e, HandlingError::NotAllowed { .. }));
    let ledning = caller(Role::Ledning, &[]);
    let e = change_status(conn, &mail(), &ledning, id, &change("makulerad")).unwrap_err();
    assert!(matches!(e, HandlingError::Missing { field: "reason" }));
    let e = change_status(conn, &mail(), &h, id, &change("klar")).unwrap_err();
    assert!(matches!(e, HandlingError::Invalid(_)));
    assert_eq!(deviations::history_of(conn, id).unwrap().len(), before);
    assert_eq!(deviations::get(conn, id).unwrap().unwrap().status, "ny");

    let x = change_status(conn, &mail(), &h, id, &change("mottagen")).unwrap();
    assert_eq!(x.deviation.status, "mottagen");
    assert_eq!(x.history.len(), before + 1);
    assert_eq!(x.history.last().map(|l| l.actor.as_str()), Some("handlaggare-test"));
    assert_eq!(x.allowed, ["utreds", "atgardad", "makulerad"]);
}

#[test]
fn out_of_scope_is_not_found_and_no_units_is_no_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, id) = database(dir.path());
    let conn = &mut pool.get().unwrap();
    let other = caller(Role::Handlaggare, &["C"]);
    assert!(matches!(read(conn, &other, id), Err(HandlingError::NotFound)));
    assert!(matches!(comment(conn, &other, id, "hej"), Err(HandlingError::NotFound)));
    assert!(matches!(
        change_status(conn, &mail(), &other, id, &change("mottagen")),
        Err(HandlingError::NotFound)
    ));
    let none = caller(Role::Handlaggare, &[]);
    assert!(matches!(read(conn, &none, id), Err(HandlingError::NoScope)));
    assert!(matches!(
        read(conn, &caller(Role::Admin, &[]), id + 1),
        Err(HandlingError::NotFound)
    ));
    let x = comment(conn, &caller(Role::Handlaggare, &["B"]), id, " Ringt ").unwrap();
    assert_eq!(x.comments.len(), 1);
    assert_eq!(x.comments[0].text, "Ringt");
}

#[test]
fn assignment_only_to_a_person_who_works_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, id) = database(dir.path());
    let conn = &mut pool.get().unwrap();
    let admin = caller(Role::Admin, &[]);
    let e = assign(conn, &admin, id, Some("ingen")).unwrap_err();
    assert!(matches!(e, HandlingError::Invalid(m) if m.contains("ingen")));
    let password = "ett langt lösenord för testet";
    let a = ["A".to_string()];
    crate::store::users::create(conn, "anna", password, Role::Handlaggare, &a, None).unwrap();
    let c = ["C".to_string()];
    crate::store::users::create(conn, "carl", password, Role::Handlaggare, &c, None).unwrap();
    assert!(matches!(
        assign(conn, &admin, id, Some("carl")),
        Err(HandlingError::Invalid(_))
    ));
    let x = assign(conn, &admin, id, Some(" anna ")).unwrap();
    assert_eq!(x.assignee.as_deref(), Some("anna"));
    let x = assign(conn, &admin, id, Some("  ")).unwrap();
    assert_eq!(x.assignee, None);
}

#[test]
fn a_list_read_is_scoped_in_the_query_and_logged_first() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, id) = database(dir.path());
    let conn = &mut pool.get().unwrap();
    let filter = ListFilter::default();
    let before = tokens::access_log_count(conn).unwrap();
    let other = caller(Role::Handlaggare, &["C"]);
    let (scope, rows, total) = list(conn, &other, &filter, (1, 10), "list_deviations", "alla").unwrap();
    assert_eq!((rows.len(), total), (0, 0));
    assert!(!scope.contains(Some("B")));
    let own = caller(Role::Handlaggare, &["A"]);
    let (_, rows, total) = list(conn, &own, &filter, (1, 10), "list_deviations", "alla").unwrap();
    assert_eq!((rows.iter().map(|d| d.id).collect::<Vec<_>>(), total), (vec![id], 1));
    assert_eq!(tokens::access_log_count(conn).unwrap(), before + 2);
    let none = caller(Role::Handlaggare, &[]);
    assert!(matches!(
        list(conn, &none, &filter, (1, 10), "list_deviations", "alla"),
        Err(HandlingError::NoScope)
    ));
}

#[test]
fn closing_tells_the_copies_by_mail_unless_the_route_mails_nothing_and_the_webhook_that_has_the_report() {
    use crate::store::outbox::{self, webhook, Channel, MailKind};
    let url = "https://avvikelser.example.se/in";
    for mails in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (pool, id) = database(dir.path());
        let conn = &mut pool.get().unwrap();
        let d = deviations::get(conn, id).unwrap().unwrap();
        outbox::enqueue(conn, &[webhook::row(&d, MailKind::Avvikelse, 1, url)]).unwrap();
        let mut cfg = mail();
        cfg.routes = vec![crate::mail::Route {
            unit: Some("A".into()),
            notify_on_close: true,
            mail: mails,
            webhook_url: Some(url.into()),
            ..Default::default()
        }];
        let admin = caller(Role::Admin, &[]);
        for status in ["mottagen", "atgardad", "avslutad"] {
            let c = StatusChange {
                atgard: Some("Rutinen genomgången".into()),
                ..change(status)
            };
            change_status(conn, &cfg, &admin, id, &c).unwrap();
        }
        let rows = outbox::all(conn).unwrap();
        let closing = |channel: Channel| {
            rows.iter()
                .filter(|m| m.kind == MailKind::Avslutad && m.channel == channel)
                .collect::<Vec<_>>()
        };
        assert_eq!(closing(Channel::Mail).len(), usize::from(mails), "mail = {mails}");
        let hooked = closing(Channel::Webhook);
        assert_eq!(hooked.len(), 1, "mail = {mails}: {rows:?}");
        assert_eq!(hooked[0].message_id, "fp-1:avslutad");
        assert_eq!(hooked[0].webhook_url().as_deref(), Some(url));
    }
}
