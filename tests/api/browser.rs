//! The pages in headless Chromium: a handläggare logs in, filters the list,
//! opens a deviation and works it to closure; another unit's deviation
//! cannot be opened by its URL; an admin searches the access log. A
//! screenshot of each page goes to `target/screenshots/`. (Forms without
//! the CSRF token: `handling.rs`, over plain HTTP.)

use svu_vakt::store::tokens::Role;

use crate::handling::{create_user, PASSWORD};
use crate::helpers::{Backend, TestApp};
use crate::webdriver::{enabled, Browser};

crate::on_both!(
    a_handlaggare_logs_in_finds_a_deviation_and_works_it_to_closure,
    another_units_deviation_cannot_be_opened_by_its_url,
    an_admin_searches_the_access_log,
    ledning_opens_the_start_page_drills_down_and_opens_the_quarterly_report,
);

fn skip(name: &str) -> bool {
    if enabled() {
        return false;
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "browser::{name} skipped: SVU_VAKT_TEST_BROWSER is not set"
    );
    true
}

/// The county of `handling.rs`, every deviation mailed (`skickad`).
fn county(b: Backend) -> TestApp {
    let app = crate::handling::county(b);
    for d in app.deviations() {
        use diesel::prelude::*;
        use svu_vakt::store::schema::deviations;
        let mut c = app.conn();
        let conn: &mut svu_vakt::store::DbConn = &mut c;
        diesel::update(deviations::table.find(d.id))
            .set(deviations::status.eq("skickad"))
            .execute(conn)
            .unwrap();
    }
    app
}

fn log_in(browser: &Browser, app: &TestApp, name: &str) {
    browser.goto(&format!("{}/", app.base));
    assert!(browser.current_url().ends_with("/login"), "{}", browser.current_url());
    browser.type_into("#username", name);
    browser.type_into("#password", PASSWORD);
    browser.click_and_wait("button[type=submit]");
}

fn a_handlaggare_logs_in_finds_a_deviation_and_works_it_to_closure(b: Backend) {
    if skip("a_handlaggare_logs_in_finds_a_deviation_and_works_it_to_closure") {
        return;
    }
    let app = county(b);
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    let browser = Browser::start();
    // A wrong password first: the login page says so, in Swedish.
    browser.goto(&format!("{}/login", app.base));
    browser.type_into("#username", "anna.avd1");
    browser.type_into("#password", "inte rätt lösenord");
    browser.click_and_wait("button[type=submit]");
    assert!(browser.text(".error").contains("fel användarnamn eller lösenord"));
    browser.screenshot("inloggning-fel");
    log_in(&browser, &app, "anna.avd1");
    assert!(
        browser.current_url().ends_with("/avvikelser"),
        "{}",
        browser.current_url()
    );
    assert_eq!(browser.text("h1"), "Mina avvikelser");
    let own = app
        .deviations()
        .into_iter()
        .filter(|d| d.unit.as_deref() == Some("AVD1"))
        .count();
    assert_eq!(browser.count("tbody tr"), own);
    browser.screenshot("avvikelser");
    // Filter on status and one case: one row, the filter kept in the form.
    browser.select("#f-status", "skickad");
    browser.type_into("#f-case", "C3");
    browser.click_and_wait("form.filters button[type=submit]");
    assert_eq!(browser.count("tbody tr"), 1);
    assert!(browser.current_url().contains("case=C3"), "{}", browser.current_url());
    assert!(
        browser.current_url().contains("status=skickad"),
        "{}",
        browser.current_url()
    );
    browser.screenshot("avvikelser-filter");
    // Open it: the report, the case's events, the history, no patient number.
    browser.click_and_wait("tbody tr a");
    let title = browser.text("h1");
    assert!(title.starts_with("Avvikelse "), "{title}");
    assert!(title.contains("Inskrivningsmeddelande senare än 24 timmar"), "{title}");
    let page = browser.source();
    assert!(page.contains("Händelse") && page.contains("Konsekvens") && page.contains("Förbättringsförslag"));
    assert!(page.contains("Ärendets händelser"));
    assert!(!page.contains("19900101"), "a personnummer on the page");
    browser.screenshot("avvikelse");
    let id: i64 = browser.current_url().rsplit('/').next().unwrap().parse().unwrap();
    // Åtgärdad without an åtgärd is refused with the reason; the status stays.
    let steps: [(&str, &[(&str, &str)]); 4] = [
        ("mottagen", &[]),
        ("utreds", &[("#note", "Vi går igenom rutinen på APT")]),
        ("atgardad", &[("#atgard", "Checklista för IM införd på avdelningen")]),
        ("avslutad", &[]),
    ];
    for (status, fields) in steps {
        if status == "atgardad" {
            browser.click("#s-atgardad");
            browser.click_and_wait("form[action$='/status'] button[type=submit]");
            assert!(browser.text(".error").contains("åtgärd"), "{}", browser.source());
            browser.screenshot("avvikelse-atgard-saknas");
            let stored = svu_vakt::store::deviations::get(&mut app.conn(), id).unwrap().unwrap();
            assert_eq!(stored.status, "utreds");
        }
        browser.click(&format!("#s-{status}"));
        for (field, text) in fields {
            browser.type_into(field, text);
        }
        browser.click_and_wait("form[action$='/status'] button[type=submit]");
        assert_eq!(browser.text(".notice"), "Statusen är sparad.", "{status}");
        let stored = svu_vakt::store::deviations::get(&mut app.conn(), id).unwrap().unwrap();
        assert_eq!(stored.status, status);
    }
    // Closed: no change is offered to a handläggare, and the history shows each step by name.
    assert!(browser.source().contains("Du kan inte ändra status"));
    let history = browser.text("section[aria-labelledby=h-historik]");
    for step in [
        "Skickad → Mottagen",
        "Mottagen → Utreds",
        "Utreds → Åtgärdad",
        "Åtgärdad → Avslutad",
    ] {
        assert!(history.contains(step), "{step} missing: {history}");
    }
    assert!(history.contains("anna.avd1"));
    assert!(history.contains("Åtgärd: Checklista för IM införd på avdelningen"));
    // A comment.
    browser.type_into("#text", "Uppföljning på nästa APT");
    browser.click_and_wait("form[action$='/kommentarer'] button[type=submit]");
    assert_eq!(browser.text(".notice"), "Kommentaren är sparad.");
    assert!(browser.source().contains("Uppföljning på nästa APT"));
    browser.screenshot("avvikelse-avslutad");
    // Logging out ends the session: the list leads to the login again.
    browser.click_and_wait("header form button[type=submit]");
    browser.goto(&format!("{}/avvikelser", app.base));
    assert!(
        browser.current_url().ends_with("/login?next=/avvikelser"),
        "{}",
        browser.current_url()
    );
}

fn another_units_deviation_cannot_be_opened_by_its_url(b: Backend) {
    if skip("another_units_deviation_cannot_be_opened_by_its_url") {
        return;
    }
    let app = county(b);
    create_user(&app, "bo.k1", Role::Handlaggare, &["K1"]);
    let avd1 = app
        .deviations()
        .into_iter()
        .find(|d| d.unit.as_deref() == Some("AVD1"))
        .unwrap();
    let browser = Browser::start();
    // The mail's link, before login: through the login page and back to it.
    browser.goto(&format!("{}/avvikelser/{}", app.base, avd1.id));
    assert!(
        browser.current_url().contains("/login?next="),
        "{}",
        browser.current_url()
    );
    browser.type_into("#username", "bo.k1");
    browser.type_into("#password", PASSWORD);
    browser.click_and_wait("button[type=submit]");
    // Another unit's deviation reads as one that does not exist.
    assert_eq!(browser.text("h1"), "Finns inte");
    let hidden = browser.source();
    assert!(!hidden.contains(&format!("Avvikelse {}", avd1.id)));
    browser.screenshot("avvikelse-annan-enhet");
    browser.goto(&format!("{}/avvikelser/999999", app.base));
    assert_eq!(browser.text("h1"), "Finns inte");
    // The list shows none of AVD1's, not even as a number.
    browser.goto(&format!("{}/avvikelser?unit=AVD1", app.base));
    assert_eq!(browser.count("tbody tr"), 0);
    assert!(browser.source().contains("0 avvikelser"));
    let stored = svu_vakt::store::deviations::get(&mut app.conn(), avd1.id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, "skickad");
}

fn an_admin_searches_the_access_log(b: Backend) {
    if skip("an_admin_searches_the_access_log") {
        return;
    }
    let app = county(b);
    create_user(&app, "bo.k1", Role::Handlaggare, &["K1"]);
    create_user(&app, "admin.anna", Role::Admin, &[]);
    let browser = Browser::start();
    // Bo reads the list filtered on a case and opens it through the API.
    log_in(&browser, &app, "bo.k1");
    browser.goto(&format!("{}/avvikelser?case=C1", app.base));
    browser.click_and_wait("header form button[type=submit]");
    log_in(&browser, &app, "admin.anna");
    for (link, name) in [
        ("/granskningar", "granskningar"),
        ("/enheter", "enheter"),
        ("/anvandare", "anvandare"),
    ] {
        browser.click_and_wait(&format!("header nav a[href='{link}']"));
        browser.screenshot(name);
    }
    browser.click_and_wait("header nav a[href='/loggkontroll']");
    browser.type_into("#l-actor", "bo.k1");
    browser.click_and_wait("form.filters button[type=submit]");
    let rows = browser.text("tbody");
    assert!(rows.contains("bo.k1") && rows.contains("läste listan"), "{rows}");
    assert!(rows.contains("?case=C1"), "{rows}");
    assert!(!rows.contains("admin.anna"), "{rows}");
    browser.screenshot("loggkontroll");
    // By case, over a period that holds today.
    browser.type_into("#l-actor", "");
    browser.type_into("#l-object", "C1");
    browser.click_and_wait("form.filters button[type=submit]");
    assert!(browser.text("tbody").contains("bo.k1"));
}

fn ledning_opens_the_start_page_drills_down_and_opens_the_quarterly_report(b: Backend) {
    if skip("ledning_opens_the_start_page_drills_down_and_opens_the_quarterly_report") {
        return;
    }
    let app = crate::followup::app(b);
    crate::followup::liability_county(&app);
    create_user(&app, "chef.lan", Role::Ledning, &[]);
    let browser = Browser::start();
    log_in(&browser, &app, "chef.lan");
    // Ledning lands on the overview: adherence per rule with its trend chart.
    assert!(
        browser.current_url().ends_with("/oversikt"),
        "{}",
        browser.current_url()
    );
    assert_eq!(browser.text("h1"), "Översikt");
    assert!(browser.count("figure.chart svg") == 1);
    assert!(browser
        .text("main")
        .contains("Inskrivningsmeddelande senare än 24 timmar"));
    browser.assert_accessible();
    browser.screenshot("oversikt");
    // County → huvudman → unit.
    browser.goto(&format!("{}/foljsamhet?from=2026-01-01&to=2026-06-30", app.base));
    browser.assert_accessible();
    browser.screenshot("foljsamhet-lan");
    browser.click_and_wait("a[href*='huvudman=Region']");
    assert_eq!(browser.text("h2:nth-of-type(2)"), "Enheter hos Region Test");
    browser.screenshot("foljsamhet-huvudman");
    browser.click_and_wait("a[href='/foljsamhet/enhet/AVD']");
    assert_eq!(browser.text("h1"), "Avdelning 1");
    assert!(browser.count("figure.chart svg") == 1);
    browser.assert_accessible();
    browser.screenshot("foljsamhet-enhet");
    // The quarterly report: every section, the betalningsansvar of Kommun A in settlement.
    browser.goto(&format!("{}/kvartalsrapport?kvartal=2026-Q2", app.base));
    assert_eq!(browser.text("h1"), "Kvartalsrapport 2026-Q2");
    let text = browser.text("main");
    for heading in [
        "1. Följsamhet per huvudman och regel",
        "2. Avvikelser per regel och status",
        "3. Handläggningstider",
        "4. Storhelgsbemanning",
        "5. Ledtider utskrivningsklar – hemgång",
        "6. Betalningsansvar",
        "7. Återinskrivning inom 30 dagar",
    ] {
        assert!(text.contains(heading), "{heading}");
    }
    assert!(text.contains("ekonomisk reglering"), "{text}");
    assert_eq!(browser.count("figure.chart svg"), 2);
    browser.assert_accessible();
    browser.screenshot("kvartalsrapport");
    for (path, name) in [
        ("/ledtider?from=2026-01-01&to=2026-06-30", "ledtider"),
        (
            "/betalningsansvar?from=2026-01-01&to=2026-07-31&kommun=Kommun%20A",
            "betalningsansvar",
        ),
        ("/forvarningar", "forvarningar"),
        ("/storhelg?ar=2026", "storhelg"),
    ] {
        browser.goto(&format!("{}{path}", app.base));
        browser.assert_accessible();
        browser.screenshot(name);
    }
    assert!(browser.text("main").contains("Storhelgsbemanning 2026"));
}
