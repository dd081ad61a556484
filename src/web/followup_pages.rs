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
use crate::followup::adherence::{self, Group};
use crate::followup::leadtimes::{self, Model};
use crate::followup::quarterly;
use crate::followup::{forvarning, handling, Month, Period, Quarter, Visible};
use crate::handling::Scope;
use crate::report::format::{encode, lead_chart, lead_rows, liability_view, pct, title_of, trend_chart};
use crate::report::quarterly as quarterly_report;
use crate::rules::{RuleId, Units};
use crate::store::DbConn;

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
                       "link": format!("/foljsamhet/enhet/{}", encode(&r.group))})
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
                    let link = |r: &adherence::Row| Some(format!("/foljsamhet?{base}&huvudman={}", encode(&r.group)));
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
                        Some(format!("/foljsamhet/enhet/{}", encode(id)))
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
            let mut view = quarterly_report::view(&report, &units);
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
