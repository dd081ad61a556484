//! The follow-up pages (SPEC §7, §8): the start page (adherence per rule for
//! the person's scope with its trend, open deviations by age, the units with
//! the lowest adherence), adherence with drill-down county → huvudman →
//! unit (with the unit's åtgärder on its trend), lead times,
//! betalningsansvar with the reasons per case, the quarterly report
//! (printable on A4), förvarningar and the storhelg calendar of a year. The
//! API's functions compute every figure; these pages only lay them out.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{json, Value};

use super::api::reports::{self as api, ReportQuery, REPORT_READERS, UNIT_READERS};
use super::error::{AppError, ErrorCode};
use super::pages::{error_page, user_in_role, PageUser, Pages};
use super::AppState;
use crate::audit::report::rule_title;
use crate::calendar::{local_date, Calendar};
use crate::domain::Role;
use crate::followup::adherence::{self, Group, TrendPoint};
use crate::followup::charts::{self, Line};
use crate::followup::leadtimes::{self, exclusion_text, Model};
use crate::followup::quarterly::{self, Quarterly};
use crate::followup::{forvarning, handling, Month, Period, Quarter, Visible};
use crate::handling::Scope;
use crate::rules::{RuleId, Units};
use crate::store::DbConn;

/// "87,5 %", or "–" when nothing fell due.
pub fn pct(share: Option<f64>) -> String {
    match share {
        Some(s) => format!("{:.1} %", s * 100.0).replace('.', ","),
        None => "–".into(),
    }
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |v| format!("{v:.1}").replace('.', ","))
}

fn kr(n: i64) -> String {
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

fn title_of(rule: &str) -> String {
    RuleId::parse(rule).map_or_else(|| rule.to_string(), |r| rule_title(r).to_string())
}

fn month_name(m: Month) -> String {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
    ];
    format!("{} {}", NAMES[(m.month - 1) as usize], m.year)
}

/// The twelve calendar months up to this one, and the period from the
/// first of them to today.
fn last_twelve_months() -> (Vec<Month>, Period) {
    let today = local_date(Utc::now());
    let last = Month::of(today);
    let months: Vec<Month> = (0..12).map(|i| last.plus(i - 11)).collect();
    let period = Period {
        from: months[0].first(),
        to: today,
    };
    (months, period)
}

/// The person, if their role may see the page.
async fn reader(
    state: &web::Data<AppState>,
    pages: &Pages,
    req: &HttpRequest,
    roles: &[Role],
) -> Result<PageUser, HttpResponse> {
    user_in_role(state, pages, req, roles, "sidan är för ledning och administratörer").await
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

fn report_query(q: &HashMap<String, String>) -> ReportQuery {
    let get = |k: &str| q.get(k).filter(|v| !v.trim().is_empty()).cloned();
    ReportQuery {
        from: get("from"),
        to: get("to"),
        rule: get("rule"),
        group: None,
        kommun: get("kommun"),
        model: get("modell"),
        unit: None,
    }
}

fn bad_filter() -> AppError {
    AppError::new(
        ErrorCode::BadRequest,
        "Urvalet kunde inte läsas: datum skrivs ÅÅÅÅ-MM-DD, med från-datum före till-datum.",
    )
}

/// Runs `f` with the person's scope (logged as a report read) and renders `name`.
async fn page<F>(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    user: PageUser,
    what: String,
    name: &'static str,
    title: &'static str,
    f: F,
) -> HttpResponse
where
    F: FnOnce(&mut DbConn, &Scope, &AppState) -> Result<Value, AppError> + Send + 'static,
{
    match api::scoped(state, user.caller.clone(), what, f).await {
        Ok(data) => pages.render(StatusCode::OK, name, title, Some(&user), data),
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}

fn rule_options(selected: Option<&str>) -> Vec<Value> {
    RuleId::ALL
        .iter()
        .map(|r| json!({"value": r.as_str(), "text": rule_title(*r), "selected": Some(r.as_str()) == selected}))
        .collect()
}

/// Trend lines per rule over `months`, as a chart.
fn trend_chart(
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

fn adherence_rows(rows: &[adherence::Row], link: impl Fn(&adherence::Row) -> Option<String>) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            json!({"rule": title_of(&r.rule), "group": r.group, "link": link(r), "due": r.due, "met": r.met,
                   "late": r.late, "missing": r.missing, "share": pct(r.share),
                   "low": r.share.is_some_and(|s| s < 0.75)})
        })
        .collect()
}

#[get("/oversikt")]
async fn start(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match reader(&state, &pages, &req, &UNIT_READERS).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (months, period) = last_twelve_months();
    let hours = state.followup.forvarning_hours;
    page(
        state,
        pages,
        user,
        "oversikt".into(),
        "start",
        "Översikt",
        move |conn, scope, st| {
            let visible = Visible(scope.units());
            let per_rule = adherence::report(conn, period, None, Group::County, visible)?;
            let trend = adherence::trend(conn, &months, None, visible, &|_| true)?;
            let chart = trend_chart("Följsamhet per regel och månad", &months, &trend, &[]);
            let open = handling::open_by_age(conn, visible, crate::store::now())?;
            let units = crate::store::units::all(conn)?;
            let names: HashMap<&str, &str> = units.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect();
            let mut by_unit = adherence::report(conn, period, None, Group::Unit, visible)?;
            by_unit.retain(|r| r.due >= 10 && r.group != adherence::NO_UNIT);
            by_unit.sort_by(|a, b| a.share.partial_cmp(&b.share).unwrap_or(std::cmp::Ordering::Equal));
            by_unit.truncate(5);
            let lowest: Vec<Value> = by_unit
                .iter()
                .map(|r| {
                    json!({"unit": r.group, "name": names.get(r.group.as_str()).copied().unwrap_or(r.group.as_str()),
                       "rule": title_of(&r.rule), "share": pct(r.share), "due": r.due,
                       "link": format!("/foljsamhet/enhet/{}", super::pages::encode(&r.group))})
                })
                .collect();
            let rules = Units::new(units.clone());
            let coming = forvarning::list(conn, &rules, &st.auditor.profile, Utc::now(), hours, visible)
                .map_err(AppError::internal)?
                .len();
            Ok(json!({
                "period": format!("{} – {}", period.from, period.to),
                "rows": adherence_rows(&per_rule, |_| None),
                "chart": chart,
                "open": open, "open_total": open.iter().map(|b| b.open).sum::<i64>(),
                "lowest": lowest, "coming": coming, "hours": hours,
                "county": scope.units().is_none(),
            }))
        },
    )
    .await
}

#[get("/foljsamhet")]
async fn adherence_page(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match reader(&state, &pages, &req, &UNIT_READERS).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let q = query(&req);
    let rq = report_query(&q);
    let (period, rule) = match (api::period_of(&rq), api::rule_of(&rq)) {
        (Ok(p), Ok(r)) => (p, r),
        _ => return error_page(&pages, Some(&user), &bad_filter()),
    };
    let huvudman = q.get("huvudman").filter(|h| !h.is_empty()).cloned();
    let what = format!("foljsamhet {}..{}", period.from, period.to);
    page(
        state,
        pages,
        user,
        what,
        "adherence",
        "Följsamhet",
        move |conn, scope, _| {
            let visible = Visible(scope.units());
            let units = crate::store::units::all(conn)?;
            let rule_s = rule.map(RuleId::as_str);
            let county = adherence::report(conn, period, rule_s, Group::County, visible)?;
            let base = format!("from={}&to={}&rule={}", period.from, period.to, rule_s.unwrap_or(""));
            let (level, rows) = match &huvudman {
                None => {
                    let rows = adherence::report(conn, period, rule_s, Group::Huvudman, visible)?;
                    let link = |r: &adherence::Row| {
                        Some(format!(
                            "/foljsamhet?{base}&huvudman={}",
                            super::pages::encode(&r.group)
                        ))
                    };
                    ("huvudman", adherence_rows(&rows, link))
                }
                Some(h) => {
                    let ids: std::collections::HashSet<&str> = units
                        .iter()
                        .filter(|u| &u.huvudman == h)
                        .map(|u| u.id.as_str())
                        .collect();
                    let mut rows = adherence::report(conn, period, rule_s, Group::Unit, visible)?;
                    rows.retain(|r| ids.contains(r.group.as_str()));
                    let names: HashMap<&str, &str> = units.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect();
                    for r in &mut rows {
                        if let Some(n) = names.get(r.group.as_str()) {
                            r.group = format!("{n} ({})", r.group);
                        }
                    }
                    let link = |r: &adherence::Row| {
                        let id = r
                            .group
                            .rsplit_once(" (")
                            .map_or(r.group.as_str(), |(_, id)| id.trim_end_matches(')'));
                        Some(format!("/foljsamhet/enhet/{}", super::pages::encode(id)))
                    };
                    ("enhet", adherence_rows(&rows, link))
                }
            };
            Ok(json!({
                "from": period.from.to_string(), "to": period.to.to_string(), "rules": rule_options(rule_s),
                "county": adherence_rows(&county, |_| None), "level": level, "rows": rows,
                "huvudman": huvudman, "up": format!("/foljsamhet?{base}"),
            }))
        },
    )
    .await
}

#[get("/foljsamhet/enhet/{id}")]
async fn unit_page(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let user = match reader(&state, &pages, &req, &UNIT_READERS).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let (months, period) = last_twelve_months();
    page(state, pages, user, format!("foljsamhet enhet {id}"), "unit_adherence", "Följsamhet för en enhet", move |conn, scope, _| {
        let visible = Visible(scope.units());
        let unit = crate::store::units::get(conn, &id)?
            .filter(|u| visible.unit(Some(u.id.as_str())))
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "Enheten finns inte, eller så hör den inte till dina enheter."))?;
        let keep = |u: Option<&str>| u == Some(id.as_str());
        let trend = adherence::trend(conn, &months, None, visible, &keep)?;
        let effects = adherence::effects(conn, period, Some(&id), None, visible, crate::store::now())?;
        let markers: Vec<(f64, String)> = effects
            .iter()
            .filter_map(|e| {
                let at = chrono::DateTime::parse_from_rfc3339(&e.at).ok()?.date_naive();
                let i = months.iter().position(|m| *m == Month::of(at))?;
                let frac = (at.day() as f64 - 1.0) / Month::of(at).last().day() as f64;
                Some((i as f64 + frac - 0.5, "åtgärd".to_string()))
            })
            .collect();
        let chart = trend_chart(&format!("Följsamhet, {}", unit.name), &months, &trend, &markers);
        let rows = adherence::report(conn, period, None, Group::Unit, visible)?
            .into_iter()
            .filter(|r| r.group == id)
            .collect::<Vec<_>>();
        let eff: Vec<Value> = effects
            .iter()
            .map(|e| {
                json!({"deviation": e.deviation, "rule": title_of(&e.rule), "at": e.at.get(..10).unwrap_or(&e.at),
                       "before": pct(e.before.share), "before_due": e.before.due,
                       "after": pct(e.after.share), "after_due": e.after.due,
                       "verdict": match e.improved { Some(true) => "förbättrad", Some(false) => "inte förbättrad", None => "för tidigt att säga" },
                       "failed": e.improved == Some(false)})
            })
            .collect();
        Ok(json!({"unit": unit.name, "id": unit.id.as_str(), "rows": adherence_rows(&rows, |_| None), "chart": chart,
                  "effects": eff, "failed": effects.iter().filter(|e| e.improved == Some(false)).count()}))
    })
    .await
}

fn lead_rows(rows: &[leadtimes::LeadRow]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            json!({"kommun": r.kommun, "month": month_name(r.month), "discharges": r.discharges,
                   "mean": num(r.mean_days), "dag0": pct(r.share_dag0), "uk_days": r.uk_days, "over": r.over_limit})
        })
        .collect()
}

/// Mean days per kommun over the rows (discharge-weighted), as bars.
fn lead_chart(rows: &[leadtimes::LeadRow], title: &str) -> String {
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

#[get("/ledtider")]
async fn leadtimes_page(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match reader(&state, &pages, &req, &REPORT_READERS).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let q = query(&req);
    let Ok(period) = api::period_of(&report_query(&q)) else {
        return error_page(&pages, Some(&user), &bad_filter());
    };
    page(
        state,
        pages,
        user,
        format!("ledtider {}..{}", period.from, period.to),
        "leadtimes",
        "Ledtider",
        move |conn, scope, _| {
            let stays = leadtimes::load(conn, Some(period.from), period.to)?;
            let rows = leadtimes::rows(&stays, period, local_date(Utc::now()), None);
            let rows = api::in_scope_kommun(conn, scope, rows, |r| &r.kommun)?;
            Ok(
                json!({"from": period.from.to_string(), "to": period.to.to_string(), "rows": lead_rows(&rows),
                  "chart": lead_chart(&rows, "Medelvårdtid som utskrivningsklar per kommun")}),
            )
        },
    )
    .await
}

fn liability_view(k: &leadtimes::KommunLiability) -> Value {
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
           "link": format!("/betalningsansvar?kommun={}", super::pages::encode(&k.kommun))})
}

#[get("/betalningsansvar")]
async fn liability_page(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match reader(&state, &pages, &req, &REPORT_READERS).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let q = query(&req);
    let rq = report_query(&q);
    let (Ok(period), Ok(model)) = (api::period_of(&rq), api::model_of(&state, &rq)) else {
        return error_page(&pages, Some(&user), &bad_filter());
    };
    let kommun = rq.kommun.clone();
    let what = format!(
        "betalningsansvar {}..{} {}",
        period.from,
        period.to,
        kommun.clone().unwrap_or_default()
    );
    page(state, pages, user, what, "liability", "Betalningsansvar", move |conn, scope, st| {
        let stays = leadtimes::load(conn, None, period.to)?;
        let list = leadtimes::liability(&stays, period, model, &st.followup.prices, kommun.as_deref());
        let list = api::in_scope_kommun(conn, scope, list, |k| &k.kommun)?;
        let models = [Model::Vasterbotten, Model::Rullande]
            .map(|m| json!({"value": m.as_str(), "text": if m == Model::Vasterbotten { "Västerbotten (tre månader i följd)" } else { "rullande tremånadersmedel" }, "selected": m == model}));
        Ok(json!({"from": period.from.to_string(), "to": period.to.to_string(), "models": models,
                  "rullande": model == Model::Rullande, "kommun": kommun,
                  "kommuner": list.iter().map(liability_view).collect::<Vec<_>>()}))
    })
    .await
}

/// The view of a quarterly report for `templates/pages/quarterly.hbs`.
pub fn quarterly_view(q: &Quarterly, units: &[crate::domain::Unit]) -> Value {
    let names: HashMap<&str, &str> = units.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect();
    let quarters: Vec<String> = q.adherence.iter().map(|a| a.quarter.label()).collect();
    // Huvudman × rule with one share per quarter, the report's quarter last.
    let mut matrix: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut current: BTreeMap<(String, String), &adherence::Row> = BTreeMap::new();
    for (i, qa) in q.adherence.iter().enumerate() {
        for r in &qa.rows {
            let e = matrix
                .entry((r.group.clone(), r.rule.clone()))
                .or_insert_with(|| vec!["–".to_string(); quarters.len()]);
            e[i] = pct(r.share);
            if i == q.adherence.len() - 1 {
                current.insert((r.group.clone(), r.rule.clone()), r);
            }
        }
    }
    let adherence: Vec<Value> = matrix
        .iter()
        .map(|((h, rule), shares)| {
            let c = current.get(&(h.clone(), rule.clone()));
            json!({"huvudman": h, "rule": title_of(rule), "shares": shares,
                   "due": c.map_or(0, |r| r.due), "late": c.map_or(0, |r| r.late), "missing": c.map_or(0, |r| r.missing)})
        })
        .collect();
    let first = q.quarter.minus(3).first_month();
    let months: Vec<Month> = (0..12).map(|i| first.plus(i)).collect();
    let chart = trend_chart("Följsamhet per regel, fyra kvartal", &months, &q.trend, &[]);
    let statuses = [
        "ny",
        "skickad",
        "mottagen",
        "utreds",
        "atgardad",
        "avslutad",
        "aterkallad",
        "makulerad",
    ];
    let mut dev: BTreeMap<String, [i64; 8]> = BTreeMap::new();
    for d in &q.deviations {
        if let Some(i) = statuses.iter().position(|s| *s == d.status) {
            dev.entry(d.rule.clone()).or_default()[i] += d.count;
        }
    }
    let deviations: Vec<Value> = dev
        .iter()
        .map(|(rule, c)| json!({"rule": title_of(rule), "counts": c, "total": c.iter().sum::<i64>()}))
        .collect();
    let handling: Vec<Value> = q
        .handling
        .iter()
        .map(|h| {
            json!({"unit": names.get(h.unit.as_str()).copied().unwrap_or(h.unit.as_str()), "rule": title_of(&h.rule),
                   "sent": h.sent, "received": h.received, "r50": num(h.to_received_median_h), "r90": num(h.to_received_p90_h),
                   "closed": h.closed, "c50": num(h.to_closed_median_h), "c90": num(h.to_closed_p90_h)})
        })
        .collect();
    let staffing: Vec<Value> = q
        .staffing
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
            json!({"unit": names.get(u.unit.as_str()).copied().unwrap_or(u.unit.as_str()), "cells": cells})
        })
        .collect();
    let readmissions: Vec<Value> = q
        .readmissions
        .iter()
        .map(|r| {
            let band = crate::domain::AgeBand::parse(&r.age_band).map_or("okänd ålder", |b| b.label());
            json!({"kommun": r.kommun, "month": month_name(r.month), "band": band, "discharges": r.discharges,
                   "readmitted": r.readmitted, "share": pct(r.share)})
        })
        .collect();
    json!({
        "quarter": q.quarter.label(), "from": q.from, "to": q.to,
        "generated": q.generated_at.get(..16).unwrap_or(&q.generated_at).replace('T', " kl. "),
        "county": q.county, "quarters": quarters, "adherence": adherence, "chart": chart,
        "statuses": ["Ny", "Skickad", "Mottagen", "Utreds", "Åtgärdad", "Avslutad", "Återkallad", "Makulerad"],
        "deviations": deviations, "handling": handling, "open": q.open_by_age,
        "staffing_days": q.staffing.days, "staffing": staffing,
        "leadtimes": lead_rows(&q.leadtimes),
        "lead_chart": lead_chart(&q.leadtimes, "Medelvårdtid som utskrivningsklar per kommun, kvartalet"),
        "model": q.betalningsansvar.model, "rullande": q.betalningsansvar.model == "rullande",
        "kommuner": q.betalningsansvar.kommuner.iter().map(liability_view).collect::<Vec<_>>(),
        "readmissions": readmissions,
    })
}

/// The last quarter that has ended.
fn last_quarter() -> Quarter {
    Quarter::of(local_date(Utc::now())).minus(1)
}

#[get("/kvartalsrapport")]
async fn quarterly_page(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match reader(&state, &pages, &req, &REPORT_READERS).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let q = query(&req);
    let quarter = match q.get("kvartal").filter(|k| !k.is_empty()) {
        None => last_quarter(),
        Some(k) => match Quarter::parse(k) {
            Ok(q) => q,
            Err(_) => {
                return error_page(
                    &pages,
                    Some(&user),
                    &AppError::new(ErrorCode::BadRequest, "Kvartalet skrivs ÅÅÅÅ-QN, till exempel 2026-Q2."),
                )
            }
        },
    };
    let model = state.followup.model;
    page(
        state,
        pages,
        user,
        format!("kvartalsrapport {}", quarter.label()),
        "quarterly",
        "Kvartalsrapport",
        move |conn, scope, st| {
            let report = quarterly::build(
                conn,
                quarter,
                Visible(scope.units()),
                model,
                &st.followup.prices,
                Utc::now(),
            )
            .map_err(AppError::internal)?;
            let units = crate::store::units::all(conn)?;
            let mut view = quarterly_view(&report, &units);
            if let Some(o) = view.as_object_mut() {
                o.insert("page".into(), json!(true));
                o.insert("previous".into(), json!(quarter.minus(1).label()));
                o.insert("next".into(), json!(quarter.minus(-1).label()));
            }
            Ok(view)
        },
    )
    .await
}

/// "3 tim 20 min", "45 min".
fn left_text(minutes: i64) -> String {
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} tim {m} min"),
        _ => format!("{d} dygn {h} tim"),
    }
}

#[get("/forvarningar")]
async fn warnings_page(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match reader(&state, &pages, &req, &UNIT_READERS).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let q = query(&req);
    let hours = match q.get("timmar").filter(|t| !t.is_empty()) {
        None => state.followup.forvarning_hours,
        Some(t) => match t.parse::<i64>() {
            Ok(h) if (1..=forvarning::MAX_HOURS).contains(&h) => h,
            _ => {
                return error_page(
                    &pages,
                    Some(&user),
                    &AppError::new(
                        ErrorCode::BadRequest,
                        "Antalet timmar ska vara ett heltal från 1 till 168.",
                    ),
                )
            }
        },
    };
    page(
        state,
        pages,
        user,
        format!("forvarningar {hours} h"),
        "warnings",
        "Förvarningar",
        move |conn, scope, st| {
            let units = crate::store::units::all(conn)?;
            let names: HashMap<String, String> = units.iter().map(|u| (u.id.0.clone(), u.name.clone())).collect();
            let list = forvarning::list(
                conn,
                &Units::new(units),
                &st.auditor.profile,
                Utc::now(),
                hours,
                Visible(scope.units()),
            )
            .map_err(AppError::internal)?;
            let mut by_unit: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for w in &list {
                let unit = w.unit.clone().unwrap_or_default();
                let due = chrono::DateTime::parse_from_rfc3339(&w.due)
                    .map(|t| t.format("%Y-%m-%d kl. %H:%M").to_string())
                    .unwrap_or_else(|_| w.due.clone());
                by_unit.entry(unit).or_default().push(json!({
                    "rule": title_of(&w.rule), "case": w.case, "due": due, "left": left_text(w.minutes_left),
                    "soon": w.minutes_left < 120,
                }));
            }
            let groups: Vec<Value> = by_unit
                .into_iter()
                .map(|(u, items)| {
                    let name = if u.is_empty() {
                        "Ingen ansvarig enhet".to_string()
                    } else {
                        names.get(&u).cloned().unwrap_or(u.clone())
                    };
                    json!({"unit": name, "id": u, "items": items})
                })
                .collect();
            Ok(json!({"hours": hours, "total": list.len(), "groups": groups}))
        },
    )
    .await
}

#[get("/storhelg")]
async fn staffing_page(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match reader(&state, &pages, &req, &UNIT_READERS).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let q = query(&req);
    let year = match q.get("ar").filter(|y| !y.is_empty()).map(|y| y.parse::<i32>()) {
        None => local_date(Utc::now()).year(),
        Some(Ok(y)) if (crate::calendar::FIRST_YEAR..=crate::calendar::LAST_YEAR).contains(&y) => y,
        Some(_) => {
            return error_page(
                &pages,
                Some(&user),
                &AppError::new(ErrorCode::BadRequest, "Året ska vara mellan 1990 och 2200."),
            )
        }
    };
    page(state, pages, user, format!("storhelg {year}"), "staffing", "Storhelgsbemanning", move |conn, scope, st| {
        let visible = Visible(scope.units());
        let from = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
        let to = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or_default();
        let days = Calendar::new().staffing_days(from, to, &st.auditor.profile.staffing_tables);
        let period = Period { from, to };
        let judged: HashMap<(String, NaiveDate), String> = quarterly::staffing_outcomes(conn, period, visible)?
            .into_iter()
            .map(|(u, day, outcome)| ((u, day), outcome))
            .collect();
        let units = crate::store::units::all(conn)?;
        let covered: Vec<&crate::domain::Unit> =
            units.iter().filter(|u| u.storhelg && visible.unit(Some(u.id.as_str()))).collect();
        let today = local_date(Utc::now());
        let header: Vec<Value> = days
            .iter()
            .map(|d| json!({"date": d.date.to_string(), "weekday": weekday(d.date), "block": format!("{} – {}", d.block_start, d.block_end)}))
            .collect();
        let table: Vec<Value> = covered
            .iter()
            .map(|u| {
                let cells: Vec<Value> = days
                    .iter()
                    .map(|d| {
                        let (text, class) = match judged.get(&(u.id.0.clone(), d.date)).map(String::as_str) {
                            Some("met") => ("bemannad", "ok"),
                            Some("missing") => ("ej bemannad", "late"),
                            Some(_) => ("bedöms", ""),
                            None if d.date >= today => ("kommande", ""),
                            None => ("–", ""),
                        };
                        json!({"text": text, "class": class})
                    })
                    .collect();
                json!({"unit": u.name, "id": u.id.as_str(), "cells": cells})
            })
            .collect();
        Ok(json!({"year": year, "previous": year - 1, "next": year + 1, "days": header, "units": table}))
    })
    .await
}

fn weekday(d: NaiveDate) -> &'static str {
    ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"][d.weekday().num_days_from_monday() as usize]
}

/// The quarterly report as one standalone HTML document (the CLI's
/// `--format html`): the page's template and stylesheet, no site chrome.
pub fn quarterly_document(report: &Quarterly, units: &[crate::domain::Unit]) -> anyhow::Result<String> {
    let pages = Pages::new()?;
    pages.document(
        "quarterly",
        &format!("Kvartalsrapport {}", report.quarter.label()),
        quarterly_view(report, units),
    )
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(start)
        .service(adherence_page)
        .service(unit_page)
        .service(leadtimes_page)
        .service(liability_page)
        .service(quarterly_page)
        .service(warnings_page)
        .service(staffing_page);
}
