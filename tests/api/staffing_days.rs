//! Which storhelg staffing days an incremental scan judges whole: the
//! lookback window's, and an older day the last scan judged before it was
//! over. A day whose acts are all in by T and whose grace has passed
//! changes only by its units' entries in the unit-day register; one judged
//! earlier can still change by an act that happens later that day, or by
//! its grace running out.

use svu_vakt::config::Config;

use crate::helpers::{spawn_app_with, Backend, TestApp};

crate::on_both!(
    a_staffing_day_judged_before_it_was_over_is_judged_again_when_it_is,
    a_staffing_day_judged_within_its_grace_is_judged_again_when_the_grace_has_passed
);

const UNITS: &str = r#"[
 {"id":"K1","name":"Socialförvaltningen","kind":"kommun","huvudman":"Linköpings kommun"}
]"#;

/// K1's act of 10 May, and its `bemanning` of 15 May (a staffing day, due
/// 15:00) at 20:00, registered ahead of its time.
const EVENTS: &str = r#"{"id":"k1","case":"C1","type":"inskrivning","at":"2026-05-10T08:00:00+02:00","unit":"K1"}
{"id":"b1","type":"bemanning","at":"2026-05-15T20:00:00+02:00","unit":"K1"}
"#;

fn app(b: Backend, grace_minutes: i64) -> TestApp {
    let app = spawn_app_with(b, move |c: &mut Config| {
        c.scan.grace = chrono::Duration::minutes(grace_minutes);
        // No arrival margin: the entries, stored before the first scan,
        // are not among the changed for the next.
        c.scan.arrival_margin = chrono::Duration::zero();
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    assert_eq!(app.post_events(EVENTS).status, 200);
    app
}

/// The status of K1's staffing deviation of 15 May, if any.
fn staffing(app: &TestApp, as_of: &str) -> Option<String> {
    let r = app.scan(as_of);
    assert_eq!(r.status, 200, "{}", r.body);
    app.deviations()
        .into_iter()
        .find(|d| d.rule == "bemanning_storhelg" && d.due.to_string() == "2026-05-15 13:00:00")
        .map(|d| d.status.as_str().to_string())
}

/// At 18:00 K1 has not shown staffing: filed. Its `bemanning` at 20:00
/// was stored before that scan, so no entry changes after it; the scan
/// at 21:00 still sees it happen and withdraws, and later scans keep that.
fn a_staffing_day_judged_before_it_was_over_is_judged_again_when_it_is(b: Backend) {
    let app = app(b, 60);
    assert_eq!(staffing(&app, "2026-05-15T18:00:00+02:00").as_deref(), Some("ny"));
    assert_eq!(
        staffing(&app, "2026-05-15T21:00:00+02:00").as_deref(),
        Some("aterkallad")
    );
    assert_eq!(
        staffing(&app, "2026-05-20T00:00:00+02:00").as_deref(),
        Some("aterkallad")
    );
}

/// A grace of 48 hours and a lookback of one day: the day of 15 May is
/// older than the window when its grace runs out (17 May 15:00). The scan
/// of 17 May 10:00 files nothing (within the grace); the scan of 18 May,
/// whose window starts on 16 May, judges 15 May whole again because the
/// last scan judged it within its grace, and files the deviation.
fn a_staffing_day_judged_within_its_grace_is_judged_again_when_the_grace_has_passed(b: Backend) {
    let app = spawn_app_with(b, |c: &mut Config| {
        c.scan.grace = chrono::Duration::hours(48);
        c.scan.staffing_lookback_days = 1;
        c.scan.arrival_margin = chrono::Duration::zero();
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    let events = EVENTS.replace("2026-05-15T20:00:00+02:00", "2026-05-20T20:00:00+02:00");
    assert_eq!(app.post_events(&events).status, 200);
    assert_eq!(staffing(&app, "2026-05-17T10:00:00+02:00"), None);
    assert_eq!(staffing(&app, "2026-05-18T10:00:00+02:00").as_deref(), Some("ny"));
}
