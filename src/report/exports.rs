//! The CSV exports, each a table over rows already read (in the caller's
//! scope, the read logged, by `handling` and `store`): the deviation list
//! and the access log of the pages, the quarterly report and adherence for
//! `svu-vakt report`. All through [`super::csv`], so all with one guard.

use super::csv::{Dialect, Table};
use crate::followup::adherence;
use crate::followup::quarterly::Quarterly;
use crate::mail::report::local_text;
use crate::store::deviations::DeviationRow;

/// Both sides of each deviation (SPEC §6): the units' names and huvudmän,
/// each deviation's berörd part, and the routine the reports cite.
#[derive(Default)]
pub struct Sides {
    /// Unit id → (name, huvudman).
    pub units: std::collections::HashMap<String, (String, String)>,
    pub parties: std::collections::BTreeMap<i64, Vec<String>>,
    pub routine: String,
}

impl Sides {
    fn name(&self, id: &str) -> String {
        self.units.get(id).map_or_else(|| id.to_string(), |(n, _)| n.clone())
    }

    fn huvudman(&self, id: &str) -> String {
        self.units.get(id).map_or_else(String::new, |(_, h)| h.clone())
    }

    /// "Hemtjänst Nord (Linköpings kommun), …".
    fn parties_text(&self, id: i64) -> String {
        let Some(units) = self.parties.get(&id) else {
            return String::new();
        };
        units
            .iter()
            .map(|u| format!("{} ({})", self.name(u), self.huvudman(u)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The deviation list (`/avvikelser.csv`), for Swedish Excel.
pub fn deviations(rows: &[DeviationRow], sides: &Sides) -> anyhow::Result<String> {
    let mut t = Table::new(Dialect::EXCEL);
    t.row([
        "id",
        "regel",
        "ärende",
        "enhet",
        "enhetens huvudman",
        "berörd part",
        "senast",
        "utfört",
        "minuter_sent",
        "status",
        "riskvärde",
        "registrerad",
        "rutin",
    ])?;
    for d in rows {
        let unit = d.unit.clone().unwrap_or_default();
        t.row([
            d.id.to_string(),
            d.rule.clone(),
            d.case_id.clone().unwrap_or_default(),
            unit.clone(),
            sides.huvudman(&unit),
            sides.parties_text(d.id),
            local_text(d.due),
            d.done_at.map(local_text).unwrap_or_default(),
            opt(&d.late_minutes),
            d.status.to_string(),
            (d.sannolikhet * d.konsekvens).to_string(),
            local_text(d.created_at),
            sides.routine.clone(),
        ])?;
    }
    t.finish()
}

/// The access log (`/loggkontroll.csv`), for Swedish Excel: rows of time,
/// user, role, what and object, as the page words them.
pub fn access_log(rows: impl IntoIterator<Item = [String; 5]>) -> anyhow::Result<String> {
    let mut t = Table::new(Dialect::EXCEL);
    t.row(["tid", "användare", "roll", "vad", "objekt"])?;
    for r in rows {
        t.row(r)?;
    }
    t.finish()
}

/// `svu-vakt report adherence --format csv`.
pub fn adherence(rows: &[adherence::Row]) -> anyhow::Result<String> {
    let mut t = Table::new(Dialect::PLAIN);
    t.row(["rule", "group", "due", "met", "late", "missing", "share"])?;
    for r in rows {
        t.row([
            r.rule.clone(),
            r.group.clone(),
            r.due.to_string(),
            r.met.to_string(),
            r.late.to_string(),
            r.missing.to_string(),
            opt(&r.share),
        ])?;
    }
    t.finish()
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn yes_no(b: bool) -> String {
    if b { "ja" } else { "nej" }.to_string()
}

const ADHERENCE: [&str; 8] = [
    "kvartal",
    "regel",
    "huvudman",
    "förfallna",
    "i_tid",
    "sena",
    "saknas",
    "andel",
];
const DEVIATIONS: [&str; 3] = ["regel", "status", "antal"];
const HANDLING: [&str; 9] = [
    "enhet",
    "regel",
    "skickade",
    "mottagna",
    "median_till_mottagen",
    "p90_till_mottagen",
    "avslutade",
    "median_till_avslutad",
    "p90_till_avslutad",
];
const AGE: [&str; 2] = ["ålder", "öppna"];
const LEADTIMES: [&str; 7] = [
    "kommun",
    "månad",
    "utskrivna",
    "medelvårdtid_som_utskrivningsklar",
    "andel_dag_0",
    "utskrivningsklara_dagar",
    "över_3_dagar",
];
const LIABILITY: [&str; 11] = [
    "kommun",
    "månad",
    "utskrivna",
    "medel_dagar",
    "rullande_medel",
    "läge",
    "räknas",
    "undantagna",
    "dagar",
    "pris_per_dygn",
    "belopp",
];
const READMISSIONS: [&str; 6] = ["kommun", "månad", "åldersgrupp", "utskrivna", "återinskrivna", "andel"];

/// One section of the quarterly report: its title, header and rows.
type Section = (String, Vec<String>, Vec<Vec<String>>);

fn section(title: &str, header: &[&str], rows: Vec<Vec<String>>) -> Section {
    (title.to_string(), header.iter().map(|h| h.to_string()).collect(), rows)
}

/// The quarterly report (`svu-vakt report quarterly --format csv`): a title
/// line, then each section as a line `# title`, a header and its rows,
/// the sections separated by an empty line.
pub fn quarterly(q: &Quarterly) -> anyhow::Result<String> {
    let mut t = Table::new(Dialect::REPORT);
    t.text(&format!(
        "# Kvartalsrapport {} ({} – {})\n",
        q.quarter.label(),
        q.from,
        q.to
    ));
    let mut staffing_header = vec!["enhet"];
    staffing_header.extend(q.staffing.days.iter().map(String::as_str));
    let liability = format!("Betalningsansvar (modell {})", q.betalningsansvar.model);
    let sections = [
        section("Följsamhet per huvudman och regel", &ADHERENCE, adherence_rows(q)),
        section("Avvikelser per regel och status", &DEVIATIONS, deviation_rows(q)),
        section("Handläggningstider (timmar)", &HANDLING, handling_rows(q)),
        section("Öppna avvikelser efter ålder", &AGE, age_rows(q)),
        section("Bemanning storhelg (ja = bemannad)", &staffing_header, staffing_rows(q)),
        section(
            "Ledtider utskrivningsklar till hemgång per kommun och månad",
            &LEADTIMES,
            lead_rows(q),
        ),
        section(&liability, &LIABILITY, liability_rows(q)),
        section("Återinskrivning inom 30 dagar", &READMISSIONS, readmission_rows(q)),
    ];
    for (title, header, rows) in sections {
        t.text(&format!("\n# {title}\n"));
        t.row(header)?;
        for r in rows {
            t.row(r)?;
        }
    }
    t.finish()
}

fn adherence_rows(q: &Quarterly) -> Vec<Vec<String>> {
    q.adherence
        .iter()
        .flat_map(|qa| {
            qa.rows.iter().map(|r| {
                vec![
                    qa.quarter.label(),
                    r.rule.clone(),
                    r.group.clone(),
                    r.due.to_string(),
                    r.met.to_string(),
                    r.late.to_string(),
                    r.missing.to_string(),
                    opt(&r.share),
                ]
            })
        })
        .collect()
}

fn deviation_rows(q: &Quarterly) -> Vec<Vec<String>> {
    q.deviations
        .iter()
        .map(|d| vec![d.rule.clone(), d.status.clone(), d.count.to_string()])
        .collect()
}

fn handling_rows(q: &Quarterly) -> Vec<Vec<String>> {
    q.handling
        .iter()
        .map(|h| {
            vec![
                h.unit.clone(),
                h.rule.clone(),
                h.sent.to_string(),
                h.received.to_string(),
                opt(&h.to_received_median_h),
                opt(&h.to_received_p90_h),
                h.closed.to_string(),
                opt(&h.to_closed_median_h),
                opt(&h.to_closed_p90_h),
            ]
        })
        .collect()
}

fn age_rows(q: &Quarterly) -> Vec<Vec<String>> {
    q.open_by_age
        .iter()
        .map(|b| vec![b.label.clone(), b.open.to_string()])
        .collect()
}

fn staffing_rows(q: &Quarterly) -> Vec<Vec<String>> {
    q.staffing
        .units
        .iter()
        .map(|u| {
            let mut line = vec![u.unit.clone()];
            line.extend(u.staffed.iter().map(|v| v.map(yes_no).unwrap_or_default()));
            line
        })
        .collect()
}

fn lead_rows(q: &Quarterly) -> Vec<Vec<String>> {
    q.leadtimes
        .iter()
        .map(|l| {
            vec![
                l.kommun.clone(),
                l.month.label(),
                l.discharges.to_string(),
                opt(&l.mean_days),
                opt(&l.share_dag0),
                l.uk_days.to_string(),
                yes_no(l.over_limit),
            ]
        })
        .collect()
}

fn liability_rows(q: &Quarterly) -> Vec<Vec<String>> {
    q.betalningsansvar
        .kommuner
        .iter()
        .flat_map(|k| {
            k.months.iter().map(|m| {
                vec![
                    k.kommun.clone(),
                    m.month.label(),
                    m.discharges.to_string(),
                    opt(&m.mean_days),
                    opt(&m.rolling_mean_days),
                    m.state.clone(),
                    m.counted.to_string(),
                    m.excluded_patients.to_string(),
                    m.days.to_string(),
                    m.price_per_day.to_string(),
                    m.amount.to_string(),
                ]
            })
        })
        .collect()
}

fn readmission_rows(q: &Quarterly) -> Vec<Vec<String>> {
    q.readmissions
        .iter()
        .map(|r| {
            vec![
                r.kommun.clone(),
                r.month.label(),
                r.age_band.clone(),
                r.discharges.to_string(),
                r.readmitted.to_string(),
                opt(&r.share),
            ]
        })
        .collect()
}

#[cfg(test)]
#[path = "exports_tests.rs"]
mod tests;
