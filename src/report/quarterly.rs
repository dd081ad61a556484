//! The quarterly report (SPEC §7) laid out for `templates/pages/quarterly.hbs`:
//! the view the Kvartalsrapport page shows, and the same body as one
//! standalone HTML document with the stylesheet inline (`svu-vakt report
//! quarterly --format html`, saved or printed outside the service).

use std::collections::{BTreeMap, HashMap};

use handlebars::Handlebars;
use serde_json::{json, Value};

use super::format::{lead_chart, lead_rows, liability_view, month_name, num, pct, title_of, trend_chart};
use crate::domain::handling::{DeviationStatus, STATUSES};
use crate::followup::adherence;
use crate::followup::quarterly::Quarterly;
use crate::followup::Month;

/// The report's template; the pages register the same text.
pub const TEMPLATE: &str = include_str!("../../templates/pages/quarterly.hbs");

/// The stylesheet of the pages, inlined in the standalone document.
pub const STYLESHEET: &str = include_str!("../../static/app.css");

/// Unit ids to names, the id itself for a unit not registered.
type Names<'a> = HashMap<&'a str, &'a str>;

fn name<'a>(names: &Names<'a>, unit: &'a str) -> &'a str {
    names.get(unit).copied().unwrap_or(unit)
}

/// The view of a quarterly report for `templates/pages/quarterly.hbs`.
pub fn view(q: &Quarterly, units: &[crate::domain::Unit]) -> Value {
    let names: Names = units.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect();
    let quarters: Vec<String> = q.adherence.iter().map(|a| a.quarter.label()).collect();
    let first = q.quarter.minus(3).first_month();
    let months: Vec<Month> = (0..12).map(|i| first.plus(i)).collect();
    let chart = trend_chart("Följsamhet per regel, fyra kvartal", &months, &q.trend, &[]);
    json!({
        "quarter": q.quarter.label(), "from": q.from, "to": q.to,
        "generated": q.generated_at.get(..16).unwrap_or(&q.generated_at).replace('T', " kl. "),
        "county": q.county, "quarters": quarters, "adherence": adherence_matrix(q, quarters.len()), "chart": chart,
        "statuses": STATUSES.map(DeviationStatus::label),
        "deviations": deviation_counts(q), "handling": handling_rows(q, &names), "open": q.open_by_age,
        "staffing_days": q.staffing.days, "staffing": staffing_rows(q, &names),
        "leadtimes": lead_rows(&q.leadtimes),
        "lead_chart": lead_chart(&q.leadtimes, "Medelvårdtid som utskrivningsklar per kommun, kvartalet"),
        "model": q.betalningsansvar.model, "rullande": q.betalningsansvar.model == "rullande",
        "kommuner": q.betalningsansvar.kommuner.iter().map(liability_view).collect::<Vec<_>>(),
        "readmissions": readmission_rows(q),
    })
}

/// Huvudman × rule with one share per quarter, the report's quarter last,
/// and that quarter's counts.
fn adherence_matrix(q: &Quarterly, quarters: usize) -> Vec<Value> {
    let mut matrix: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut current: BTreeMap<(String, String), &adherence::Row> = BTreeMap::new();
    for (i, qa) in q.adherence.iter().enumerate() {
        for r in &qa.rows {
            let e = matrix
                .entry((r.group.clone(), r.rule.clone()))
                .or_insert_with(|| vec!["–".to_string(); quarters]);
            e[i] = pct(r.share);
            if i == q.adherence.len() - 1 {
                current.insert((r.group.clone(), r.rule.clone()), r);
            }
        }
    }
    matrix
        .iter()
        .map(|((h, rule), shares)| {
            let c = current.get(&(h.clone(), rule.clone()));
            json!({"huvudman": h, "rule": title_of(rule), "shares": shares,
                   "due": c.map_or(0, |r| r.due), "late": c.map_or(0, |r| r.late), "missing": c.map_or(0, |r| r.missing)})
        })
        .collect()
}

/// Deviations per rule, counted per status in lifecycle order.
fn deviation_counts(q: &Quarterly) -> Vec<Value> {
    let mut dev: BTreeMap<String, [i64; STATUSES.len()]> = BTreeMap::new();
    for d in &q.deviations {
        if let Some(i) = STATUSES.iter().position(|s| *s == d.status.as_str()) {
            dev.entry(d.rule.clone()).or_default()[i] += d.count;
        }
    }
    dev.iter()
        .map(|(rule, c)| json!({"rule": title_of(rule), "counts": c, "total": c.iter().sum::<i64>()}))
        .collect()
}

fn handling_rows(q: &Quarterly, names: &Names) -> Vec<Value> {
    q.handling
        .iter()
        .map(|h| {
            json!({"unit": name(names, h.unit.as_str()), "rule": title_of(&h.rule),
                   "sent": h.sent, "received": h.received, "r50": num(h.to_received_median_h), "r90": num(h.to_received_p90_h),
                   "closed": h.closed, "c50": num(h.to_closed_median_h), "c90": num(h.to_closed_p90_h)})
        })
        .collect()
}

fn staffing_rows(q: &Quarterly, names: &Names) -> Vec<Value> {
    q.staffing
        .units
        .iter()
        .map(|u| {
            let cells: Vec<&str> = u
                .staffed
                .iter()
                .map(|s| match s {
                    Some(true) => "ja",
                    Some(false) => "nej",
                    None => "–",
                })
                .collect();
            json!({"unit": name(names, u.unit.as_str()), "cells": cells})
        })
        .collect()
}

fn readmission_rows(q: &Quarterly) -> Vec<Value> {
    q.readmissions
        .iter()
        .map(|r| {
            let band = crate::domain::AgeBand::parse(&r.age_band).map_or("okänd ålder", |b| b.label());
            json!({"kommun": r.kommun, "month": month_name(r.month), "band": band, "discharges": r.discharges,
                   "readmitted": r.readmitted, "share": pct(r.share)})
        })
        .collect()
}

/// The quarterly report as one standalone HTML document (the CLI's
/// `--format html`): the page's template and stylesheet, no site chrome.
pub fn document(report: &Quarterly, units: &[crate::domain::Unit]) -> anyhow::Result<String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(false);
    hb.register_template_string("quarterly", TEMPLATE)
        .map_err(|e| anyhow::anyhow!("sidmallen quarterly: {e}"))?;
    let body = hb.render("quarterly", &view(report, units))?;
    let title = handlebars::html_escape(&format!("Kvartalsrapport {}", report.quarter.label()));
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"sv\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title} – svu-vakt</title>\n<style>\n{STYLESHEET}</style>\n</head>\n<body>\n<main id=\"innehall\">\n{body}</main>\n</body>\n</html>\n"
    ))
}
