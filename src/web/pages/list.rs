//! The deviation list of the user's scope (`/avvikelser`): filters, paging,
//! sorting by age and what waits for someone; and the same filter as CSV
//! (`/avvikelser.csv`). Read through `handling::list`, as the API's list.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::{encode, error_page, page_user, Pages};
use crate::audit::report::{self, local_text};
use crate::domain::handling::DeviationStatus::{self, Atgardad, Mottagen, Ny, Skickad, Utreds};
use crate::domain::handling::STATUSES;
use crate::domain::Role;
use crate::handling;
use crate::rules::RuleId;
use crate::store::deviations::{self, DeviationRow, ListFilter};
use crate::store::tokens::Caller;
use crate::store::{units, DbConn};
use crate::web::api::deviations as api;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

/// Days since the due, for an open deviation: "idag", "1 dag", "12 dagar".
pub(super) fn age(d: &DeviationRow, now: NaiveDateTime) -> (String, bool) {
    if !d.status.is_open() {
        return ("–".into(), false);
    }
    let days = (now - d.due).num_days().max(0);
    let text = match days {
        0 => "idag".to_string(),
        1 => "1 dag".to_string(),
        n => format!("{n} dagar"),
    };
    (text, days >= 7)
}

struct ListParams {
    filter: ListFilter,
    page: i64,
    per_page: i64,
    newest: bool,
    query: String,
    raw: HashMap<String, String>,
}

fn list_params(req: &HttpRequest) -> Result<ListParams, AppError> {
    let raw: HashMap<String, String> = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let newest = raw.get("sort").map(String::as_str) != Some("aldst");
    // The API's parser checks the filters; the page adds only `sort`.
    const KNOWN: [&str; 9] = [
        "status", "rule", "unit", "berord", "case", "from", "to", "page", "per_page",
    ];
    let api_query: Vec<(String, String)> = raw
        .iter()
        .filter(|(k, v)| KNOWN.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let encoded = api_query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let (mut filter, page, per_page) = api::parse_list(&encoded).map_err(|_| {
        AppError::new(
            ErrorCode::BadRequest,
            "Filtret kunde inte läsas: datum skrivs ÅÅÅÅ-MM-DD, och sidnumret är ett heltal från 1.",
        )
    })?;
    filter.oldest_first = !newest;
    Ok(ListParams {
        filter,
        page,
        per_page: if raw.contains_key("per_page") { per_page } else { 50 },
        newest,
        query: req.query_string().to_string(),
        raw,
    })
}

fn with_page(raw: &HashMap<String, String>, page: i64) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .iter()
        .filter(|(k, v)| k.as_str() != "page" && !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pairs.sort();
    pairs.push(("page".into(), page.to_string()));
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// What the list page reads: one page of the deviations in scope, how many
/// match, what waits per status in the whole scope, and the units' names.
struct Listed {
    rows: Vec<DeviationRow>,
    total: i64,
    waiting: Vec<(DeviationStatus, i64, Option<NaiveDateTime>)>,
    names: HashMap<String, String>,
    /// The berörd part of each row (SPEC §6).
    parties: std::collections::BTreeMap<i64, Vec<String>>,
}

fn read_list(state: &AppState, caller: &Caller, filter: &ListFilter, page: (i64, i64)) -> Result<Listed, AppError> {
    let mut conn = state.pool.get()?;
    let logged = filter.logged(page.0, page.1, 50);
    let (scope, rows, total) = handling::list(&mut conn, caller, filter, page, "list_deviations", &logged)?;
    let waiting = deviations::open_counts(&mut conn, scope.units())?;
    let names = unit_names(&mut conn)?;
    let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
    let parties = deviations::parties_of(&mut conn, &ids)?;
    Ok(Listed {
        rows,
        total,
        waiting,
        names,
        parties,
    })
}

#[get("/avvikelser")]
async fn list(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match page_user(&state, &req).await {
        Ok(u) => u,
        Err(redirect) => return redirect,
    };
    let params = match list_params(&req) {
        Ok(p) => p,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let (st, caller, filter) = (state.clone(), user.caller.clone(), params.filter.clone());
    let page = (params.page, params.per_page);
    let listed = match web::block(move || read_list(&st, &caller, &filter, page)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return error_page(&pages, Some(&user), &e),
        Err(e) => return error_page(&pages, Some(&user), &AppError::internal(e)),
    };
    let heading = if user.caller.role == Role::Handlaggare {
        "Mina avvikelser"
    } else {
        "Avvikelser"
    };
    let data = list_view(&listed, &params, heading, Utc::now().naive_utc());
    pages.render(StatusCode::OK, "list", heading, Some(&user), data)
}

/// The list page's data for `templates/pages/list.hbs`.
fn list_view(listed: &Listed, params: &ListParams, heading: &str, now: NaiveDateTime) -> Value {
    let (page, per_page, total) = (params.page, params.per_page, listed.total);
    let pages_n = ((total + per_page - 1) / per_page).max(1);
    let rows: Vec<Value> = listed
        .rows
        .iter()
        .map(|d| row_view(d, &listed.names, listed.parties.get(&d.id), now))
        .collect();
    let (statuses, rules) = filter_choices(&params.raw);
    json!({
        "heading": heading,
        "waiting": waiting_view(&listed.waiting, now),
        "rows": rows,
        "total": total,
        "page": page,
        "pages": pages_n,
        "newest": params.newest,
        "statuses": statuses,
        "rules": rules,
        "filter": {
            "unit": params.raw.get("unit"), "berord": params.raw.get("berord"), "case": params.raw.get("case"),
            "from": params.raw.get("from"), "to": params.raw.get("to"),
        },
        "query": params.query,
        "prev": (page > 1).then(|| with_page(&params.raw, page - 1)),
        "next": (page < pages_n).then(|| with_page(&params.raw, page + 1)),
    })
}

/// One deviation as a row of the list.
fn row_view(
    d: &DeviationRow,
    names: &HashMap<String, String>,
    parties: Option<&Vec<String>>,
    now: NaiveDateTime,
) -> Value {
    let (age, overdue) = age(d, now);
    let name = |u: &String| names.get(u).cloned().unwrap_or_else(|| u.clone());
    let berord: Vec<String> = parties.into_iter().flatten().map(name).collect();
    json!({
        "id": d.id,
        "rule": RuleId::parse(&d.rule).map_or(d.rule.clone(), |r| report::rule_title(r).to_string()),
        "case": d.case_id.clone().unwrap_or_else(|| "–".into()),
        "unit": d.unit.as_ref().map_or("–".to_string(), |u| names.get(u).cloned().unwrap_or_else(|| u.clone())),
        "berord": if berord.is_empty() { "–".to_string() } else { berord.join(", ") },
        "due": local_text(d.due),
        "age": age, "overdue": overdue,
        "status": d.status, "status_text": d.status.label(),
    })
}

/// What waits for someone, per step (a mailed deviation counts as new
/// until it is received): how many, and how long the oldest has waited.
fn waiting_view(waiting: &[(DeviationStatus, i64, Option<NaiveDateTime>)], now: NaiveDateTime) -> Vec<Value> {
    let labels = [
        (Ny, "Nya, inte mottagna"),
        (Mottagen, "Mottagna"),
        (Utreds, "Utreds"),
        (Atgardad, "Åtgärdade, väntar på avslut"),
    ];
    labels
        .iter()
        .map(|(status, label)| {
            let of: Vec<&(DeviationStatus, i64, Option<NaiveDateTime>)> = waiting
                .iter()
                .filter(|(s, _, _)| s == status || (*status == Ny && *s == Skickad))
                .collect();
            let count: i64 = of.iter().map(|(_, n, _)| n).sum();
            let oldest = of.iter().filter_map(|(_, _, o)| *o).min().map(|o| {
                let days = (now - o).num_days().max(0);
                if days == 1 {
                    "1 dag".to_string()
                } else {
                    format!("{days} dagar")
                }
            });
            json!({"label": label, "count": count, "oldest": oldest})
        })
        .collect()
}

/// The filter form's choices of status and rule, the chosen ones selected.
fn filter_choices(raw: &HashMap<String, String>) -> (Vec<Value>, Vec<Value>) {
    let selected = |k: &str, v: &str| raw.get(k).map(String::as_str) == Some(v);
    let statuses = STATUSES
        .iter()
        .map(|s| json!({"value": s, "label": s.label(), "selected": selected("status", s.as_str())}))
        .collect();
    let rules = RuleId::ALL
        .iter()
        .map(
            |r| json!({"value": r.as_str(), "label": report::rule_title(*r), "selected": selected("rule", r.as_str())}),
        )
        .collect();
    (statuses, rules)
}

fn unit_names(conn: &mut DbConn) -> anyhow::Result<HashMap<String, String>> {
    Ok(units::all(conn)?
        .into_iter()
        .map(|u| (u.id.0.clone(), u.name.clone()))
        .collect())
}

/// The list as CSV (semicolon-separated, UTF-8 with BOM, for Swedish Excel),
/// every page of the filter; logged as an export with its filter.
#[get("/avvikelser.csv")]
async fn export(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    let user = match page_user(&state, &req).await {
        Ok(u) => u,
        Err(redirect) => return redirect,
    };
    let params = match list_params(&req) {
        Ok(p) => p,
        Err(e) => return error_page(&pages, Some(&user), &e),
    };
    let caller = user.caller.clone();
    let st = state.clone();
    let filter = params.filter.clone();
    let result = web::block(move || -> Result<String, AppError> {
        let mut conn = st.pool.get()?;
        let logged = filter.logged(1, 0, 0);
        let (_, rows, _) = handling::list(
            &mut conn,
            &caller,
            &filter,
            (1, i64::MAX / 2),
            "export_deviations",
            &logged,
        )?;
        let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
        let sides = crate::report::exports::Sides {
            units: crate::store::units::all(&mut conn)?
                .into_iter()
                .map(|u| (u.id.0, (u.name, u.huvudman)))
                .collect(),
            parties: deviations::parties_of(&mut conn, &ids)?,
            routine: st.auditor.templates.routine().to_string(),
        };
        crate::report::exports::deviations(&rows, &sides).map_err(AppError::internal)
    })
    .await;
    match result {
        Ok(Ok(csv)) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"avvikelser.csv\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(csv),
        Ok(Err(e)) => error_page(&pages, Some(&user), &e),
        Err(e) => error_page(&pages, Some(&user), &AppError::internal(e)),
    }
}

pub(super) fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(export);
}
