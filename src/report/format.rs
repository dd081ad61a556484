//! How the follow-up's figures read on a page and in the standalone report:
//! Swedish numbers, percentages, kronor and month names, rule titles, the
//! trend and lead-time charts, the betalningsansvar rows. Pure: figures in,
//! text and JSON for the templates out.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::audit::report::rule_title;
use crate::followup::adherence::TrendPoint;
use crate::followup::charts::{self, Line};
use crate::followup::leadtimes::{self, exclusion_text};
use crate::followup::Month;
use crate::rules::RuleId;

/// "87,5 %", or "–" when nothing fell due.
pub fn pct(share: Option<f64>) -> String {
    match share {
        Some(s) => format!("{:.1} %", s * 100.0).replace('.', ","),
        None => "–".into(),
    }
}

pub fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{v:.1}").replace('.', ","))
}

pub fn kr(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('\u{a0}');
        }
        out.push(c);
    }
    format!("{}{out} kr", if n < 0 { "-" } else { "" })
}

pub fn title_of(rule: &str) -> String {
    RuleId::parse(rule).map_or_else(|| rule.to_string(), |r| rule_title(r).to_string())
}

pub fn month_name(m: Month) -> String {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
    ];
    format!("{} {}", NAMES[(m.month - 1) as usize], m.year)
}

/// Trend lines per rule over `months`, as a chart.
pub fn trend_chart(
    title: &str,
    months: &[Month],
    trend: &BTreeMap<String, Vec<TrendPoint>>,
    markers: &[(f64, String)],
) -> String {
    let labels: Vec<String> = months.iter().map(|m| month_name(*m)).collect();
    let lines: Vec<Line> = trend
        .iter()
        .map(|(rule, points)| Line {
            label: title_of(rule),
            points: months
                .iter()
                .map(|m| points.iter().find(|p| p.month == *m).and_then(|p| p.share))
                .collect(),
        })
        .collect();
    charts::trend(title, &labels, &lines, markers)
}

pub fn lead_rows(rows: &[leadtimes::LeadRow]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            json!({"kommun": r.kommun, "month": month_name(r.month), "discharges": r.discharges,
                   "mean": num(r.mean_days), "dag0": pct(r.share_dag0), "uk_days": r.uk_days, "over": r.over_limit})
        })
        .collect()
}

/// Mean days per kommun over the rows (discharge-weighted), as bars.
pub fn lead_chart(rows: &[leadtimes::LeadRow], title: &str) -> String {
    let mut acc: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
    for r in rows {
        if let Some(m) = r.mean_days {
            let e = acc.entry(r.kommun.as_str()).or_default();
            e.0 += m * r.discharges as f64;
            e.1 += r.discharges;
        }
    }
    let bars: Vec<(String, f64)> = acc
        .into_iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(k, (s, n))| (k.replace(" kommun", ""), s / n as f64))
        .collect();
    charts::bars(title, "dagar från dag 0", &bars, Some(leadtimes::LIMIT_DAYS))
}

pub fn liability_view(k: &leadtimes::KommunLiability) -> Value {
    let state_text = |s: &str| match s {
        "ok" => "inom målet",
        "analys" => "gemensam analys",
        "reglering" => "ekonomisk reglering",
        "betalningsansvar" => "betalningsansvar",
        _ => "–",
    };
    let months: Vec<Value> = k
        .months
        .iter()
        .map(|m| {
            let reasons: Vec<String> = m
                .excluded
                .iter()
                .map(|(r, n)| format!("{n} {}", exclusion_text(r)))
                .collect();
            let excluded = if m.excluded_patients == 0 {
                "0".to_string()
            } else {
                format!("{} ({})", m.excluded_patients, reasons.join("; "))
            };
            json!({"month": month_name(m.month), "discharges": m.discharges, "mean": num(m.mean_days),
                   "rolling": num(m.rolling_mean_days), "state": state_text(&m.state),
                   "billed": m.state == "reglering" || m.state == "betalningsansvar",
                   "counted": m.counted, "excluded": excluded, "days": m.days, "amount": kr(m.amount)})
        })
        .collect();
    let cases: Option<Vec<Value>> = k.cases.as_ref().map(|c| {
        c.iter()
            .map(|l| {
                let reasons: Vec<&str> = l.reasons.iter().map(|r| exclusion_text(r)).collect();
                json!({"case": l.case, "month": month_name(l.month), "dag0": l.dag0, "utskrivning": l.utskrivning,
                       "days": l.days, "counts": l.counts, "reasons": reasons.join("; ")})
            })
            .collect()
    });
    json!({"kommun": k.kommun, "months": months, "days": k.days, "amount": kr(k.amount), "cases": cases,
           "link": format!("/betalningsansvar?kommun={}", encode(&k.kommun))})
}

/// Percent-encodes a path and query for a link (`?kommun=`, `?next=`).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
