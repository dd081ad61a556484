//! The follow-up (SPEC §7) on a small fixed county, every figure checked
//! against a hand-computed expectation: betalningsansvar under both models
//! (a kommun over 3 days three months in a row, settlement from month four
//! with its amount, the exclusions), lead times and SKR's indicators,
//! readmissions on day 30 and day 31, an obligation due exactly on a period
//! boundary, a late event that turns a missing into met after a re-scan,
//! and the scope of every report endpoint and page.

use diesel::prelude::*;
use serde_json::{json, Value};
use svu_vakt::store::schema::deviation_history;
use svu_vakt::store::tokens::Role;
use svu_vakt::store::DbConn;

use crate::handling::{create_user, Session};
use crate::helpers::{spawn_app_with, token, Backend, TestApp};

crate::on_both!(
    betalningsansvar_lead_times_and_exclusions_match_the_hand_computed_figures,
    readmission_on_day_30_counts_and_on_day_31_not_by_age_band,
    adherence_counts_a_boundary_due_in_the_next_period_and_a_late_event_corrects_it,
    every_report_and_page_is_scoped_to_the_callers_units,
    handling_times_and_the_quarterly_report_in_every_format,
    forvarning_lists_what_comes_due_and_a_unit_without_staffing_is_reminded_once,
    day_counts_kept_by_differences_equal_a_count_from_scratch,
);

const UNITS: &str = r#"[
 {"id":"KLIN","name":"Medicinkliniken","kind":"slutenvard","huvudman":"Region Test","storhelg":false},
 {"id":"AVD","name":"Avdelning 1","kind":"slutenvard","huvudman":"Region Test","parent":"KLIN","storhelg":false,"email":"avd@region.example.se"},
 {"id":"VC","name":"Vårdcentralen","kind":"oppenvard","huvudman":"Region Test","storhelg":false},
 {"id":"HT-A","name":"Hemtjänst A","kind":"kommun","huvudman":"Kommun A","storhelg":false},
 {"id":"HT-B","name":"Hemtjänst B","kind":"kommun","huvudman":"Kommun B","storhelg":false}
]"#;

pub(crate) fn app(b: Backend) -> TestApp {
    let app = spawn_app_with(b, |c| {
        c.followup.model = svu_vakt::followup::leadtimes::Model::Vasterbotten;
        c.followup.prices = svu_vakt::followup::leadtimes::Prices([(2026, 10_000)].into());
    });
    assert_eq!(app.post_units(UNITS).status, 200);
    app
}

/// A valid personnummer born on `ymd` (YYYYMMDD).
fn pnr(ymd: &str, serial: &str) -> String {
    let nine = format!("{}{serial}", &ymd[2..]);
    format!("{ymd}{serial}{}", svu_vakt::domain::patient::luhn(&nine))
}

fn line(v: Value) -> String {
    v.to_string() + "\n"
}

/// A stay sent to `kommun_unit`: inskrivning, IM (after `im_hours`), UK at
/// `uk`, utskrivning at `ut` (each optional), with the kvittens so the
/// kvittens rule is met.
struct Stay<'a> {
    case: &'a str,
    ins: &'a str,
    im_hours: Option<i64>,
    uk: Option<&'a str>,
    ut: Option<&'a str>,
    to: &'a str,
    patient: Option<String>,
    sip: bool,
}

fn stay_lines(s: &Stay) -> String {
    let c = s.case;
    let at = |t: &str| t.to_string();
    let mut out = String::new();
    let mut ins = json!({"id": format!("{c}-ins"), "case": c, "type": "inskrivning", "at": at(s.ins), "unit": "AVD"});
    if let Some(p) = &s.patient {
        ins["patient"] = json!(p);
    }
    out += &line(ins);
    if let Some(h) = s.im_hours {
        let t = chrono::DateTime::parse_from_rfc3339(s.ins).unwrap() + chrono::Duration::hours(h);
        out += &line(
            json!({"id": format!("{c}-im"), "case": c, "type": "inskrivningsmeddelande", "at": t.to_rfc3339(), "unit": "AVD", "to": [s.to, "VC"]}),
        );
    }
    if s.sip {
        out += &line(
            json!({"id": format!("{c}-sip"), "case": c, "type": "behov_av_sip", "at": at(s.ins), "unit": "AVD", "value": true}),
        );
        out += &line(
            json!({"id": format!("{c}-fvk"), "case": c, "type": "fast_vardkontakt", "at": at(s.ins), "unit": "VC"}),
        );
    }
    if let Some(uk) = s.uk {
        out += &line(
            json!({"id": format!("{c}-uk"), "case": c, "type": "utskrivningsklar", "at": at(uk), "unit": "AVD", "to": [s.to]}),
        );
        out += &line(
            json!({"id": format!("{c}-kv"), "case": c, "type": "kvittens", "at": at(uk), "unit": s.to, "ref": format!("{c}-uk")}),
        );
    }
    if let Some(ut) = s.ut {
        out += &line(json!({"id": format!("{c}-ut"), "case": c, "type": "utskrivning", "at": at(ut), "unit": "AVD"}));
    }
    out
}

fn stay<'a>(case: &'a str, ins: &'a str, uk: &'a str, ut: &'a str) -> Stay<'a> {
    Stay {
        case,
        ins,
        im_hours: Some(2),
        uk: Some(uk),
        ut: Some(ut),
        to: "HT-A",
        patient: None,
        sip: false,
    }
}

/// Kommun A: January 5 days, February and March 4 (three months over 3),
/// April 2, 3, 4 and 0 days (mean 2.25) with three stays excluded.
pub(crate) fn liability_county(app: &TestApp) {
    let mut body = String::new();
    body += &stay_lines(&stay(
        "J1",
        "2026-01-08T08:00:00+01:00",
        "2026-01-10T10:00:00+01:00",
        "2026-01-15T10:00:00+01:00",
    ));
    body += &stay_lines(&stay(
        "F1",
        "2026-02-08T08:00:00+01:00",
        "2026-02-10T10:00:00+01:00",
        "2026-02-14T10:00:00+01:00",
    ));
    body += &stay_lines(&stay(
        "M1",
        "2026-03-08T08:00:00+01:00",
        "2026-03-10T10:00:00+01:00",
        "2026-03-14T10:00:00+01:00",
    ));
    // Counted: 2 and 3 days (the UK after 12:00: dag 0 is the next day).
    body += &stay_lines(&stay(
        "A1",
        "2026-04-08T08:00:00+02:00",
        "2026-04-10T10:00:00+02:00",
        "2026-04-12T10:00:00+02:00",
    ));
    body += &stay_lines(&stay(
        "A2",
        "2026-04-18T08:00:00+02:00",
        "2026-04-20T13:00:00+02:00",
        "2026-04-24T10:00:00+02:00",
    ));
    // Excluded: the IM 30 h after the inskrivning (4 days).
    body += &stay_lines(&Stay {
        im_hours: Some(30),
        ..stay(
            "A3",
            "2026-04-02T08:00:00+02:00",
            "2026-04-05T09:00:00+02:00",
            "2026-04-09T10:00:00+02:00",
        )
    });
    // Excluded: SIP needed and no kallelse (home on dag 0).
    body += &stay_lines(&Stay {
        sip: true,
        ..stay(
            "A4",
            "2026-04-03T08:00:00+02:00",
            "2026-04-06T09:00:00+02:00",
            "2026-04-06T15:00:00+02:00",
        )
    });
    // Excluded: discharged without a UK.
    body += &stay_lines(&Stay {
        uk: None,
        ..stay("A5", "2026-04-04T08:00:00+02:00", "", "2026-04-08T10:00:00+02:00")
    });
    let r = app.post_events(&body);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.scan("2026-11-01T12:00:00+01:00");
    assert_eq!(r.status, 200, "{}", r.body);
}

fn month<'a>(k: &'a Value, m: &str) -> &'a Value {
    k["months"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["month"] == m)
        .unwrap_or_else(|| panic!("{m}: {k}"))
}

fn betalningsansvar_lead_times_and_exclusions_match_the_hand_computed_figures(b: Backend) {
    let app = app(b);
    liability_county(&app);
    let r = app.get("/api/v1/reports/betalningsansvar?from=2026-01-01&to=2026-07-31&kommun=Kommun%20A");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["model"], "vasterbotten");
    let k = &v["kommuner"][0];
    assert_eq!(k["kommun"], "Kommun A");
    let states: Vec<&str> = k["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    // Three months over 3 days: analysis; settlement from month four, until three months at or under 3.
    assert_eq!(
        states,
        [
            "analys",
            "analys",
            "analys",
            "reglering",
            "reglering",
            "reglering",
            "ok"
        ]
    );
    let april = month(k, "2026-04");
    assert_eq!(april["discharges"], 4);
    assert_eq!(april["mean_days"], 2.3);
    assert_eq!(april["counted"], 2);
    assert_eq!(april["excluded_patients"], 3);
    assert_eq!(
        april["excluded"],
        json!({"inskrivningsmeddelande_24h": 1, "kallelse_sip": 1, "utskrivningsklar": 1})
    );
    assert_eq!(april["days"], 5);
    assert_eq!(april["price_per_day"], 10_000);
    assert_eq!(april["amount"], 50_000);
    assert_eq!(month(k, "2026-05")["amount"], 0);
    assert_eq!(k["amount"], 50_000);
    // Case by case, with the reasons.
    let cases = k["cases"].as_array().unwrap();
    let why = |c: &str| cases.iter().find(|x| x["case"] == c).unwrap_or_else(|| panic!("{c}"));
    assert_eq!(why("A1")["counts"], true);
    assert_eq!(why("A2")["days"], 3);
    assert_eq!(why("A3")["reasons"], json!(["inskrivningsmeddelande_24h"]));
    assert_eq!(why("A4")["reasons"], json!(["kallelse_sip"]));
    assert_eq!(why("A5")["reasons"], json!(["utskrivningsklar"]));
    assert_eq!(why("A5")["dag0"], Value::Null);
    // Without `kommun` no case list.
    let all = app
        .get("/api/v1/reports/betalningsansvar?from=2026-04-01&to=2026-04-30")
        .json();
    assert!(all["kommuner"][0].get("cases").is_none(), "{all}");

    // The rolling model: March pools January to March (13 days / 3 = 4.3): liable,
    // M1's 4 days; April pools February to April (17 / 6 = 2.8): not.
    let v = app
        .get("/api/v1/reports/betalningsansvar?from=2026-03-01&to=2026-04-30&model=rullande")
        .json();
    let k = &v["kommuner"][0];
    let march = month(k, "2026-03");
    assert_eq!(
        (march["state"].as_str(), march["rolling_mean_days"].as_f64()),
        (Some("betalningsansvar"), Some(4.3))
    );
    assert_eq!(
        (march["days"].as_i64(), march["amount"].as_i64()),
        (Some(4), Some(40_000))
    );
    let april = month(k, "2026-04");
    assert_eq!(
        (april["state"].as_str(), april["rolling_mean_days"].as_f64()),
        (Some("ok"), Some(2.8))
    );
    assert_eq!(april["amount"], 0);

    // Lead times: April 2, 3, 4 and 0 days; the days after dag 0 in April: 2 + 3 + 4 + 0.
    let rows = app
        .get("/api/v1/reports/leadtimes?from=2026-03-01&to=2026-04-30")
        .json();
    let row = |m: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["month"] == m && r["kommun"] == "Kommun A")
            .unwrap()
            .clone()
    };
    let april = row("2026-04");
    assert_eq!(april["discharges"], 4);
    assert_eq!(april["mean_days"], 2.3);
    assert_eq!(april["share_dag0"], 0.25);
    assert_eq!(april["uk_days"], 9);
    assert_eq!(april["over_limit"], false);
    let march = row("2026-03");
    assert_eq!(
        (
            march["mean_days"].as_f64(),
            march["over_limit"].as_bool(),
            march["uk_days"].as_i64()
        ),
        (Some(4.0), Some(true), Some(4))
    );
    // Nothing for Kommun B, which got no UK.
    assert!(
        rows.as_array().unwrap().iter().all(|r| r["kommun"] == "Kommun A"),
        "{rows}"
    );
}

fn readmission_on_day_30_counts_and_on_day_31_not_by_age_band(b: Backend) {
    let app = app(b);
    let p1 = pnr("19400315", "123"); // 86 at the time: 80+
    let p2 = pnr("19550610", "456"); // 70: 65–79
    let mut body = String::new();
    let to_b = |s: Stay<'static>| Stay { to: "HT-B", ..s };
    body += &stay_lines(&Stay {
        patient: Some(p1.clone()),
        ..to_b(stay(
            "R1",
            "2026-04-25T08:00:00+02:00",
            "2026-04-30T09:00:00+02:00",
            "2026-05-01T10:00:00+02:00",
        ))
    });
    // Back on day 30 after 1 May.
    body += &line(
        json!({"id":"R2-ins","case":"R2","type":"inskrivning","at":"2026-05-31T23:30:00+02:00","unit":"AVD","patient":p1}),
    );
    body += &stay_lines(&Stay {
        patient: Some(p2.clone()),
        ..to_b(stay(
            "R3",
            "2026-04-26T08:00:00+02:00",
            "2026-04-30T09:00:00+02:00",
            "2026-05-02T10:00:00+02:00",
        ))
    });
    // Back on day 31 after 2 May.
    body += &line(
        json!({"id":"R4-ins","case":"R4","type":"inskrivning","at":"2026-06-02T00:30:00+02:00","unit":"AVD","patient":p2}),
    );
    assert_eq!(app.post_events(&body).status, 200);
    assert_eq!(app.scan("2026-11-01T12:00:00+01:00").status, 200);
    let rows = app
        .get("/api/v1/reports/readmissions?from=2026-05-01&to=2026-05-31")
        .json();
    assert_eq!(
        rows,
        json!([
            {"kommun":"Kommun B","month":"2026-05","age_band":"65_79","discharges":1,"readmitted":0,"share":0.0},
            {"kommun":"Kommun B","month":"2026-05","age_band":"80_plus","discharges":1,"readmitted":1,"share":1.0},
        ])
    );
    // The number itself is nowhere in the database.
    let dump = app.db.dump();
    assert!(!dump.contains(&p1) && !dump.contains(&p2[2..]));
}

fn adherence_counts_a_boundary_due_in_the_next_period_and_a_late_event_corrects_it(b: Backend) {
    let app = app(b);
    // Admitted at 00:00 on 30 June: the IM is due at exactly 00:00 on 1 July, in July.
    let body = stay_lines(&stay(
        "B1",
        "2026-06-30T00:00:00+02:00",
        "2026-07-02T09:00:00+02:00",
        "2026-07-03T10:00:00+02:00",
    )) + &line(
        json!({"id":"L1-ins","case":"L1","type":"inskrivning","at":"2026-08-03T08:00:00+02:00","unit":"AVD"}),
    );
    assert_eq!(app.post_events(&body).status, 200);
    assert_eq!(app.scan("2026-08-05T12:00:00+02:00").status, 200);
    let im = |from: &str, to: &str| {
        let r = app.get(&format!(
            "/api/v1/reports/adherence?from={from}&to={to}&rule=inskrivningsmeddelande_24h&group=county"
        ));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    assert_eq!(im("2026-06-01", "2026-06-30"), json!([]));
    assert_eq!(
        im("2026-07-01", "2026-07-31"),
        json!([{"rule":"inskrivningsmeddelande_24h","group":"länet","due":1,"met":1,"late":0,"missing":0,"share":1.0}])
    );
    // L1 has no IM by 5 August: missing.
    assert_eq!(im("2026-08-01", "2026-08-31")[0]["missing"], 1);
    let by_unit = app
        .get("/api/v1/reports/adherence?from=2026-08-01&to=2026-08-31&rule=inskrivningsmeddelande_24h")
        .json();
    assert_eq!(by_unit[0]["group"], "AVD");
    let subtree = app
        .get("/api/v1/reports/adherence?from=2026-07-01&to=2026-08-31&rule=inskrivningsmeddelande_24h&group=subtree")
        .json();
    let groups: Vec<(&str, i64)> = subtree
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["group"].as_str().unwrap(), r["due"].as_i64().unwrap()))
        .collect();
    assert_eq!(groups, [("AVD", 2), ("KLIN", 2)]);
    // The IM was sent in time but arrives late; the next scan corrects the figure, never counting twice.
    let late = line(
        json!({"id":"L1-im","case":"L1","type":"inskrivningsmeddelande","at":"2026-08-03T20:00:00+02:00","unit":"AVD","to":["HT-A"]}),
    );
    assert_eq!(app.post_events(&late).status, 200);
    assert_eq!(app.scan("2026-08-06T12:00:00+02:00").status, 200);
    assert_eq!(
        im("2026-08-01", "2026-08-31"),
        json!([{"rule":"inskrivningsmeddelande_24h","group":"länet","due":1,"met":1,"late":0,"missing":0,"share":1.0}])
    );
    // A full re-scan changes nothing.
    let before = app
        .get("/api/v1/reports/adherence?from=2026-01-01&to=2026-11-30&group=county")
        .body;
    let r = app.request(
        "POST",
        "/api/v1/scans",
        Some(&app.admin.clone()),
        Some(("application/json", r#"{"full":true}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.get("/api/v1/reports/adherence?from=2026-01-01&to=2026-11-30&group=county")
            .body,
        before
    );
    // The CLI gives the same rows.
    let out = crate::helpers::bin()
        .args([
            "report",
            "adherence",
            "--from",
            "2026-08-01",
            "--to",
            "2026-08-31",
            "--group",
            "county",
            "--rule",
            "inskrivningsmeddelande_24h",
        ])
        .env("SVU_VAKT_DATABASE_URL", app.db.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, im("2026-08-01", "2026-08-31"));
}

fn every_report_and_page_is_scoped_to_the_callers_units(b: Backend) {
    let app = app(b);
    liability_county(&app);
    let body = stay_lines(&Stay {
        to: "HT-B",
        ..stay(
            "B9",
            "2026-04-08T08:00:00+02:00",
            "2026-04-10T10:00:00+02:00",
            "2026-04-16T10:00:00+02:00",
        )
    });
    assert_eq!(app.post_events(&body).status, 200);
    assert_eq!(app.scan("2026-11-01T12:00:00+01:00").status, 200);
    let a = token(&app.pool, Role::Ledning, Some("HT-A"));
    let h = token(&app.pool, Role::Handlaggare, Some("HT-A"));
    let i = token(&app.pool, Role::Inlasning, None);
    let get = |t: &str, p: &str| app.request("GET", p, Some(t), None);
    let q = "?from=2026-01-01&to=2026-06-30";
    // Ledning of Kommun A's unit: only Kommun A.
    for p in ["/api/v1/reports/leadtimes", "/api/v1/reports/readmissions"] {
        let v = get(&a, &format!("{p}{q}")).json();
        assert!(
            v.as_array().unwrap().iter().all(|r| r["kommun"] == "Kommun A"),
            "{p}: {v}"
        );
    }
    let v = get(&a, &format!("/api/v1/reports/betalningsansvar{q}")).json();
    assert_eq!(v["kommuner"].as_array().unwrap().len(), 1);
    let v = get(&a, &format!("/api/v1/reports/betalningsansvar{q}&kommun=Kommun%20B")).json();
    assert_eq!(v["kommuner"], json!([]));
    let v = get(&a, &format!("/api/v1/reports/adherence{q}")).json();
    assert!(!v.as_array().unwrap().is_empty());
    assert!(v.as_array().unwrap().iter().all(|r| r["group"] == "HT-A"), "{v}");
    let v = get(&a, "/api/v1/reports/quarterly/2026-Q2").json();
    assert_eq!(v["county"], false);
    assert!(
        v["leadtimes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kommun"] == "Kommun A"),
        "{v}"
    );
    // The county sees both kommuner.
    let v = app.get(&format!("/api/v1/reports/leadtimes{q}")).json();
    assert!(v.as_array().unwrap().iter().any(|r| r["kommun"] == "Kommun B"));
    // A handläggare: adherence and förvarningar of the unit, no management reports.
    assert_eq!(get(&h, &format!("/api/v1/reports/adherence{q}")).status, 200);
    assert_eq!(get(&h, "/api/v1/forvarningar").status, 200);
    for p in [
        "/api/v1/reports/leadtimes",
        "/api/v1/reports/betalningsansvar",
        "/api/v1/reports/readmissions",
        "/api/v1/reports/handling",
        "/api/v1/reports/quarterly/2026-Q2",
    ] {
        assert_eq!(get(&h, p).status, 403, "{p}");
        assert_eq!(get(&i, p).status, 403, "{p}");
    }
    assert_eq!(app.request("GET", "/api/v1/reports/adherence", None, None).status, 401);
    assert_eq!(
        get(&a, "/api/v1/reports/adherence?from=2026-05-01&to=2026-04-01").status,
        400
    );
    assert_eq!(get(&a, "/api/v1/reports/quarterly/2026-Q5").status, 400);
    assert_eq!(get(&a, "/api/v1/forvarningar?within_hours=0").status, 400);
    // Every read is in the access log.
    let log = app.get("/api/v1/deviations?per_page=1");
    assert_eq!(log.status, 200);
    let n: i64 = {
        use svu_vakt::store::schema::access_log;
        let mut c = app.conn();
        let conn: &mut DbConn = &mut c;
        access_log::table
            .filter(access_log::action.eq("rapport"))
            .count()
            .get_result(conn)
            .unwrap()
    };
    // Nine answered reads; refusals and bad requests read nothing.
    assert_eq!(n, 9);

    // The pages, by person.
    create_user(&app, "chef.a", Role::Ledning, &["HT-A"]);
    create_user(&app, "hl.a", Role::Handlaggare, &["HT-A"]);
    let chef = Session::login(&app, "chef.a");
    let page = chef.get(&app, "/ledtider?from=2026-01-01&to=2026-06-30");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Kommun A") && !page.body.contains("Kommun B"),
        "{}",
        page.body
    );
    assert_eq!(chef.get(&app, "/foljsamhet/enhet/HT-B").status, 404);
    assert_eq!(chef.get(&app, "/foljsamhet/enhet/HT-A").status, 200);
    let q2 = chef.get(&app, "/kvartalsrapport?kvartal=2026-Q2");
    assert_eq!(q2.status, 200);
    assert!(!q2.body.contains("Kommun B"));
    let hl = Session::login(&app, "hl.a");
    assert_eq!(hl.get(&app, "/kvartalsrapport").status, 403);
    assert_eq!(hl.get(&app, "/betalningsansvar").status, 403);
    assert_eq!(hl.get(&app, "/oversikt").status, 200);
    assert_eq!(hl.get(&app, "/forvarningar").status, 200);
}

fn handling_times_and_the_quarterly_report_in_every_format(b: Backend) {
    let app = app(b);
    liability_county(&app);
    // Two of AVD's IM deviations (A3 late; a missing one) mailed and worked,
    // at hand-set times: received after 2 h and 4 h, one closed after 50 h.
    let body =
        line(json!({"id":"X1-ins","case":"X1","type":"inskrivning","at":"2026-05-04T08:00:00+02:00","unit":"AVD"}));
    assert_eq!(app.post_events(&body).status, 200);
    assert_eq!(app.scan("2026-11-01T12:00:00+01:00").status, 200);
    let ids: Vec<i64> = app
        .deviations()
        .iter()
        .filter(|d| d.rule == "inskrivningsmeddelande_24h")
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 2, "{:?}", app.deviations());
    let t = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    let steps = [
        (ids[0], "skickad", t("2026-05-06 08:00")),
        (ids[0], "mottagen", t("2026-05-06 10:00")),
        (ids[0], "avslutad", t("2026-05-08 10:00")),
        (ids[1], "skickad", t("2026-05-06 08:00")),
        (ids[1], "mottagen", t("2026-05-06 12:00")),
    ];
    {
        let mut c = app.conn();
        let conn: &mut DbConn = &mut c;
        for (id, to, at) in steps {
            diesel::insert_into(deviation_history::table)
                .values((
                    deviation_history::deviation_id.eq(id),
                    deviation_history::at.eq(at),
                    deviation_history::actor.eq("test"),
                    deviation_history::to_status.eq(to),
                ))
                .execute(conn)
                .unwrap();
        }
    }
    let v = app.get("/api/v1/reports/handling?from=2026-05-01&to=2026-05-31").json();
    let row = &v["rows"][0];
    assert_eq!(
        (row["unit"].as_str(), row["rule"].as_str()),
        (Some("AVD"), Some("inskrivningsmeddelande_24h"))
    );
    assert_eq!(
        (row["sent"].as_i64(), row["received"].as_i64(), row["closed"].as_i64()),
        (Some(2), Some(2), Some(1))
    );
    assert_eq!(
        (row["to_received_median_h"].as_f64(), row["to_received_p90_h"].as_f64()),
        (Some(2.0), Some(4.0))
    );
    assert_eq!(row["to_closed_median_h"], 50.0);

    // The quarterly report: JSON from the API, and CSV and HTML from the CLI.
    let q = app.get("/api/v1/reports/quarterly/2026-Q2").json();
    assert_eq!(q["quarter"], "2026-Q2");
    assert_eq!(q["adherence"].as_array().unwrap().len(), 4);
    assert_eq!(q["adherence"][0]["quarter"], "2025-Q3");
    let kommun_a = q["betalningsansvar"]["kommuner"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kommun"] == "Kommun A")
        .unwrap()
        .clone();
    assert_eq!(month(&kommun_a, "2026-04")["state"], "reglering");
    assert_eq!(kommun_a["amount"], 50_000);
    assert_eq!(q["handling"][0]["sent"], 2);
    let run = |format: &str| {
        let out = crate::helpers::bin()
            .args([
                "report",
                "quarterly",
                "2026-Q2",
                "--format",
                format,
                "--model",
                "vasterbotten",
            ])
            .env("SVU_VAKT_DATABASE_URL", app.db.url())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = run("csv");
    assert!(csv.contains("# Betalningsansvar (modell vasterbotten)"), "{csv}");
    assert!(
        csv.contains("Kommun A,2026-04,4,2.3,,reglering,2,3,5,9300,46500"),
        "{csv}"
    );
    let html = run("html");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("lang=\"sv\""));
    assert!(
        html.contains("Kvartalsrapport 2026-Q2") && html.contains("<svg"),
        "{html}"
    );
    assert!(html.contains("@page") && html.contains("break-inside: avoid"));
    let json: Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(json["leadtimes"], q["leadtimes"]);
}

fn forvarning_lists_what_comes_due_and_a_unit_without_staffing_is_reminded_once(b: Backend) {
    let smtp = crate::smtp::SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(b, move |c| c.mail.smtp_url = svu_vakt::mail::SmtpUrl(url));
    assert_eq!(app.post_units(UNITS).status, 200);
    let more = r#"[
     {"id":"HT-C","name":"Hemtjänst C","kind":"kommun","huvudman":"Kommun C","storhelg":true,"email":"ht-c@kommun.example.se"},
     {"id":"HT-D","name":"Hemtjänst D","kind":"kommun","huvudman":"Kommun D","storhelg":true,"email":"ht-d@kommun.example.se"}
    ]"#;
    assert_eq!(app.post_units(more).status, 200);
    // Admitted two hours ago without an IM; a UK an hour ago not acknowledged.
    let now = chrono::Utc::now();
    let ago = |h: i64| (now - chrono::Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let body = line(json!({"id":"W1-ins","case":"W1","type":"inskrivning","at":ago(2),"unit":"AVD"}))
        + &line(json!({"id":"W2-uk","case":"W2","type":"utskrivningsklar","at":ago(1),"unit":"AVD","to":["HT-A"]}));
    assert_eq!(app.post_events(&body).status, 200);
    let r = app.request(
        "POST",
        "/api/v1/scans",
        Some(&app.admin.clone()),
        Some(("application/json", "{}")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let list = app.get("/api/v1/forvarningar?within_hours=48").json();
    let rules: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["rule"].as_str().unwrap(), w["unit"].as_str().unwrap()))
        .collect();
    assert!(rules.contains(&("inskrivningsmeddelande_24h", "AVD")), "{list}");
    assert!(rules.contains(&("kvittens_utskrivningsklar", "HT-A")), "{list}");
    let im = list
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["rule"] == "inskrivningsmeddelande_24h")
        .unwrap();
    let left = im["minutes_left"].as_i64().unwrap();
    assert!((21 * 60..=22 * 60).contains(&left), "{im}");
    // The unit's handläggare sees its own line only.
    let h = token(&app.pool, Role::Handlaggare, Some("HT-A"));
    let own = app
        .request("GET", "/api/v1/forvarningar?within_hours=48", Some(&h), None)
        .json();
    assert!(own.as_array().unwrap().iter().all(|w| w["unit"] == "HT-A"), "{own}");
    assert_eq!(own.as_array().unwrap().len(), 1);
    // The IM goes out: its line is gone at once, before any scan.
    let im =
        line(json!({"id":"W1-im","case":"W1","type":"inskrivningsmeddelande","at":ago(0),"unit":"AVD","to":["HT-A"]}));
    assert_eq!(app.post_events(&im).status, 200);
    let list = app.get("/api/v1/forvarningar?within_hours=48").json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|w| w["rule"] != "inskrivningsmeddelande_24h"),
        "{list}"
    );

    // Before the Christmas staffing day: HT-D has registered, HT-C has not.
    let cal = svu_vakt::calendar::Calendar::new();
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let day = cal.staffing_days(d("2026-12-20"), d("2026-12-31"), &Default::default())[0].date;
    let bem = line(json!({"id":"BEM-D","type":"bemanning","at":format!("{day}T08:00:00+01:00"),"unit":"HT-D"}));
    assert_eq!(app.post_events(&bem).status, 200);
    let at = svu_vakt::calendar::local_instant(
        day - chrono::Duration::days(3),
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
    );
    let profile = svu_vakt::rules::Profile::nationell();
    let mail = crate::helpers::config(&app.db).mail;
    let units = svu_vakt::rules::Units::new(svu_vakt::store::units::all(&mut app.conn()).unwrap());
    let queue = || {
        svu_vakt::followup::forvarning::queue_staffing_reminders(&mut app.conn(), &units, &profile, &mail, 7, at)
            .unwrap()
    };
    assert_eq!(queue(), 1);
    assert_eq!(queue(), 0, "once per unit and day");
    let r = app.request(
        "POST",
        "/api/v1/scans",
        Some(&app.admin.clone()),
        Some(("application/json", "{}")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got: Vec<_> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.subject().contains("bemanning"))
        .collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].header("To").unwrap().contains("ht-c@kommun.example.se"));
    assert!(got[0].text().contains(&day.to_string()), "{}", got[0].text());
}

/// The day counts move by differences; after any history of scans they must
/// equal a count from scratch. A county whose events arrive in two parts,
/// with a scan between and a unit reshaped before the last scan, against the
/// same county loaded at once and scanned once.
fn day_counts_kept_by_differences_equal_a_count_from_scratch(b: Backend) {
    use svu_vakt::store::schema::obligation_days as d;
    let opts = svu_vakt::demo::DemoOptions {
        seed: 11,
        cases: 300,
        from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
    };
    let mut events = Vec::new();
    svu_vakt::demo::write_case_range(&opts, 0, opts.cases, &mut events).unwrap();
    let events = String::from_utf8(events).unwrap();
    let (mut early, mut late) = (String::new(), String::new());
    for (i, l) in events.lines().enumerate() {
        let part = if i % 3 == 2 { &mut late } else { &mut early };
        part.push_str(l);
        part.push('\n');
    }
    let mut units: Value = serde_json::from_str(&svu_vakt::demo::units_json()).unwrap();
    let reshaped = units
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|u| u["kind"] == "slutenvard" && u.get("parent").is_some_and(|p| !p.is_null()))
        .unwrap();
    let original = reshaped.clone();
    reshaped.as_object_mut().unwrap().remove("parent");
    let reshaped_units = units.to_string();
    let mut original_units = units.clone();
    let id = original["id"].clone();
    *original_units
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|u| u["id"] == id)
        .unwrap() = original;
    let post = |app: &TestApp, body: &str| {
        let lines: Vec<&str> = body.lines().collect();
        for part in lines.chunks(1000) {
            let r = app.post_events(&(part.join("\n") + "\n"));
            assert_eq!(r.status, 200, "{}", r.body);
        }
    };
    let end = "2026-11-01T00:00:00+01:00";

    let stepwise = spawn_app_with(b, |_| {});
    assert_eq!(stepwise.post_units(&original_units.to_string()).status, 200);
    post(&stepwise, &early);
    assert_eq!(stepwise.scan("2026-06-01T12:00:00+02:00").status, 200);
    post(&stepwise, &late);
    assert_eq!(stepwise.scan("2026-08-15T12:00:00+02:00").status, 200);
    assert_eq!(stepwise.post_units(&reshaped_units).status, 200);
    assert_eq!(stepwise.scan(end).status, 200);

    let at_once = spawn_app_with(b, |_| {});
    assert_eq!(at_once.post_units(&reshaped_units).status, 200);
    post(&at_once, &events);
    assert_eq!(at_once.scan(end).status, 200);

    type DayRow = (String, String, String, i64, i64, i64);
    let days = |app: &TestApp| -> Vec<DayRow> {
        let mut conn = app.conn();
        let rows: Vec<DayRow> = d::table
            .select((d::day, d::rule, d::unit, d::met, d::late, d::missing))
            .order((d::day, d::rule, d::unit))
            .load(&mut *conn)
            .unwrap();
        rows.into_iter().filter(|r| r.3 + r.4 + r.5 != 0).collect()
    };
    let (a, b) = (days(&stepwise), days(&at_once));
    assert!(a.iter().all(|r| r.3 >= 0 && r.4 >= 0 && r.5 >= 0), "a count below zero");
    let judged: i64 = b.iter().map(|r| r.3 + r.4 + r.5).sum();
    assert!(judged > 1000, "only {judged} obligations judged");
    assert_eq!(a, b);
    let year = "/api/v1/reports/adherence?from=2026-01-01&to=2026-12-31&group=subtree";
    assert_eq!(stepwise.get(year).json(), at_once.get(year).json());
}
