//! Every export guards the same cells the same way: a formula and an
//! expression get an apostrophe, a negative number and a decimal stay
//! numbers — in text columns and in number columns alike.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::followup::leadtimes::LeadRow;
use crate::followup::quarterly::{Betalningsansvar, DeviationCount, QuarterAdherence, StaffingTable};
use crate::followup::{Month, Quarter};

const FORMULA: &str = "=HYPERLINK(\"http://x.example\",\"klicka\")";
const EXPRESSION: &str = "-1+1";

/// Every cell of an export, its title lines (`#`) left out.
fn cells(text: &str, delimiter: u8) -> Vec<String> {
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    reader
        .records()
        .flat_map(|r| r.unwrap().iter().map(String::from).collect::<Vec<_>>())
        .collect()
}

fn assert_guarded(text: &str, delimiter: u8) {
    let cells = cells(text, delimiter);
    for expected in [
        format!("'{FORMULA}"),
        format!("'{EXPRESSION}"),
        "-3".into(),
        "12.5".into(),
    ] {
        assert!(cells.contains(&expected), "{expected} in {text}");
    }
    assert!(
        !cells.iter().any(|c| c.starts_with(['=', '@']) || c == EXPRESSION),
        "{text}"
    );
}

fn deviation(id: i64, case: &str, unit: &str, late: Option<i64>) -> DeviationRow {
    let at = NaiveDate::from_ymd_opt(2026, 5, 4)
        .and_then(|d| d.and_hms_opt(8, 0, 0))
        .unwrap();
    DeviationRow {
        id,
        fingerprint: format!("fp-{id}"),
        rule: "inskrivningsmeddelande_24h".into(),
        case_id: Some(case.into()),
        unit: Some(unit.into()),
        due: at,
        finding_status: "late".into(),
        done_at: Some(at),
        late_minutes: late,
        status: crate::domain::handling::DeviationStatus::Ny,
        sannolikhet: 2,
        konsekvens: 3,
        recipients: "{}".into(),
        queued_at: None,
        scan_id: 1,
        created_at: at,
    }
}

#[test]
fn the_deviation_list() {
    let rows = [
        deviation(1, FORMULA, EXPRESSION, Some(-3)),
        deviation(2, "12.5", "-3", None),
    ];
    let mut sides = Sides::default();
    sides
        .units
        .insert("AVD1".into(), ("Avdelning 1".into(), "Region".into()));
    sides.units.insert("K1".into(), ("Hemtjänst".into(), "Kommunen".into()));
    sides.parties.insert(1, vec!["K1".into()]);
    sides.routine = "Lag (2017:612)".into();
    let text = deviations(&rows, &sides).unwrap();
    assert!(
        text.starts_with("\u{feff}id;regel;ärende;enhet;enhetens huvudman;berörd part;"),
        "{text}"
    );
    assert!(text.contains("Hemtjänst (Kommunen)"), "both sides: {text}");
    assert_guarded(&text, b';');
}

#[test]
fn the_access_log() {
    let row = |what: &str, object: &str| {
        [
            "2026-05-04 kl. 08:00".to_string(),
            "anna".into(),
            "admin".into(),
            what.into(),
            object.into(),
        ]
    };
    let text = access_log([row(FORMULA, EXPRESSION), row("-3", "12.5")]).unwrap();
    assert!(text.starts_with("\u{feff}tid;användare;roll;vad;objekt\r\n"), "{text}");
    assert_guarded(&text, b';');
}

fn adherence_row(rule: &str, group: &str, due: i64, share: Option<f64>) -> adherence::Row {
    adherence::Row {
        rule: rule.into(),
        group: group.into(),
        due,
        met: 0,
        late: 0,
        missing: due,
        share,
    }
}

#[test]
fn adherence_for_the_command_line() {
    let text = adherence(&[adherence_row(FORMULA, EXPRESSION, -3, Some(12.5))]).unwrap();
    assert!(text.starts_with("rule,group,due,"), "{text}");
    assert_guarded(&text, b',');
}

#[test]
fn the_quarterly_report() {
    let quarter = Quarter::parse("2026-Q2").unwrap();
    let q = Quarterly {
        quarter,
        from: "2026-04-01".into(),
        to: "2026-06-30".into(),
        generated_at: "2026-07-01T08:00:00+02:00".into(),
        county: true,
        adherence: vec![QuarterAdherence {
            quarter,
            rows: vec![adherence_row("kallelse_sip", FORMULA, 4, Some(0.5))],
        }],
        trend: BTreeMap::new(),
        deviations: vec![DeviationCount {
            rule: EXPRESSION.into(),
            status: "ny".into(),
            count: -3,
        }],
        handling: Vec::new(),
        open_by_age: Vec::new(),
        staffing: StaffingTable {
            days: Vec::new(),
            units: Vec::new(),
        },
        leadtimes: vec![LeadRow {
            kommun: "Kommun A".into(),
            month: Month { year: 2026, month: 4 },
            discharges: 2,
            mean_days: Some(12.5),
            share_dag0: None,
            uk_days: 25,
            over_limit: true,
        }],
        betalningsansvar: Betalningsansvar {
            model: "vasterbotten".into(),
            kommuner: Vec::new(),
        },
        readmissions: Vec::new(),
    };
    let text = quarterly(&q).unwrap();
    assert!(
        text.starts_with("# Kvartalsrapport 2026-Q2 (2026-04-01 – 2026-06-30)\n\n# Följsamhet"),
        "{text}"
    );
    assert!(
        text.contains("\n\n# Avvikelser per regel och status\nregel,status,antal\n"),
        "{text}"
    );
    assert_guarded(&text, b',');
}
