//! Deviations: the list (filters and paging, SPEC §8), one deviation with
//! its history, handling and comments, its report as the JSON document of
//! SPEC §6.0, a change of status (SPEC §6.1) and a comment. A handläggare sees only deviations of their units and below,
//! and another unit's deviation answers as one that does not exist; every
//! read by anyone, list reads included with their filter, is logged.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Deserialize;
use serde_json::json;

use crate::domain::handling::{valid_words, DeviationStatus, StatusChange};
use crate::handling::{self, Detail, Scope};
use crate::store::deviations::{DeviationRow, ListFilter};
use crate::store::tokens::Role;
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

const READERS: [Role; 3] = [Role::Admin, Role::Ledning, Role::Handlaggare];

/// Rows per page unless `per_page` says otherwise, and at most.
pub const PER_PAGE: i64 = 100;
pub const MAX_PER_PAGE: i64 = 1000;

fn stockholm(t: NaiveDateTime) -> String {
    crate::calendar::in_stockholm(t.and_utc()).to_rfc3339()
}

/// A deviation as the API shows it; the mail addresses only to those who
/// may see every unit's (not a handläggare).
fn view(d: &DeviationRow, scope: &Scope, parties: &[String]) -> serde_json::Value {
    let recipients = if scope.sees_addresses() {
        serde_json::from_str::<serde_json::Value>(&d.recipients).unwrap_or_default()
    } else {
        serde_json::Value::Null
    };
    json!({
        "id": d.id, "rule": d.rule, "case": d.case_id, "unit": d.unit, "berord": parties,
        "due": stockholm(d.due),
        "finding_status": d.finding_status,
        "done": d.done_at.map(stockholm),
        "late_minutes": d.late_minutes, "status": d.status,
        "risk": {"sannolikhet": d.sannolikhet, "konsekvens": d.konsekvens, "varde": d.sannolikhet * d.konsekvens},
        "recipients": recipients,
        "created_at": d.created_at.and_utc().to_rfc3339(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    rule: Option<String>,
    unit: Option<String>,
    berord: Option<String>,
    case: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<i64>,
    per_page: Option<i64>,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::BadRequest, message)
}

/// `from`/`to`: a date (the whole day in Swedish time; `to` includes it) or
/// an RFC 3339 instant.
fn bound(name: &str, v: &str, end: bool) -> Result<NaiveDateTime, AppError> {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = if end { d.succ_opt().unwrap_or(d) } else { d };
        return Ok(crate::calendar::local_instant(day, NaiveTime::MIN).naive_utc());
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.naive_utc())
        .map_err(|_| {
            bad(format!(
                "{name} ska vara ett datum (ÅÅÅÅ-MM-DD) eller en tidpunkt enligt RFC 3339"
            ))
        })
}

fn empty_none(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

pub fn parse_list(query: &str) -> Result<(ListFilter, i64, i64), AppError> {
    let q = web::Query::<ListQuery>::from_query(query)
        .map_err(|e| bad(format!("frågesträngen kan inte läsas: {e}")))?
        .into_inner();
    let status = empty_none(q.status)
        .map(|s| {
            s.parse::<DeviationStatus>()
                .map_err(|_| bad(format!("{s} är ingen status; giltiga är {}", valid_words())))
        })
        .transpose()?;
    let rule = empty_none(q.rule);
    if let Some(r) = rule
        .as_deref()
        .filter(|r| crate::rules::profile::RuleId::parse(r).is_none())
    {
        return Err(bad(format!("okänd regel `{r}`")));
    }
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(PER_PAGE);
    if !(1..=1_000_000).contains(&page) || !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(bad(format!("page ska vara 1–1000000 och per_page 1–{MAX_PER_PAGE}")));
    }
    let filter = ListFilter {
        status,
        rule,
        unit: empty_none(q.unit),
        berord: empty_none(q.berord),
        case: empty_none(q.case),
        // A date given empty is not a date (the document says `format: date`).
        from: q.from.map(|v| bound("from", &v, false)).transpose()?,
        to: q.to.map(|v| bound("to", &v, true)).transpose()?,
        oldest_first: false,
    };
    Ok((filter, page, per_page))
}

/// `GET /deviations`: one page as a JSON array, newest due first; the total
/// in `X-Total-Count`, the page in `X-Page` and `X-Per-Page`.
#[utoipa::path(get, path = "/api/v1/deviations", tag = "avvikelser",
    // `status`: its description and pattern come from `DeviationStatus` (`openapi::with_statuses`).
    params(("status" = Option<String>, Query),
        ("rule" = Option<String>, Query, description = "ett regel-id"),
        ("unit" = Option<String>, Query, description = "den ansvariga enheten"),
        ("berord" = Option<String>, Query, description = "en enhet bland den berörda parten: det som rapporterats för dess räkning"),
        ("case" = Option<String>, Query, description = "ett ärende-id"),
        ("from" = Option<String>, Query, format = Date, description = "förfaller från: ÅÅÅÅ-MM-DD (svensk dag) eller RFC 3339"),
        ("to" = Option<String>, Query, format = Date, description = "förfaller till: ÅÅÅÅ-MM-DD (den dagen medräknad) eller RFC 3339"),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "från 1"),
        ("per_page" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 till 1000, standard 100")),
    responses((status = 200, description = "en sida, senaste förfallotid först; X-Total-Count, X-Page, X-Per-Page"),
        (status = 400, description = "ett filter som inte går att läsa"),
        (status = 401, description = "ingen giltig token eller session"), (status = 403, description = "en roll som inte får läsa avvikelser")))]
#[get("/deviations")]
async fn list(state: web::Data<AppState>, auth: Auth, req: HttpRequest) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&READERS)?.clone();
    let query = req.query_string().to_string();
    let (filter, page, per_page) = parse_list(&query)?;
    let (rows, total) = web::block(move || -> Result<(Vec<serde_json::Value>, i64), AppError> {
        let mut conn = state.pool.get()?;
        let logged = filter.logged(page, per_page, PER_PAGE);
        let (scope, rows, total) = handling::list(
            &mut conn,
            &caller,
            &filter,
            (page, per_page),
            "list_deviations",
            &logged,
        )?;
        let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
        let parties = crate::store::deviations::parties_of(&mut conn, &ids)?;
        let empty = Vec::new();
        Ok((
            rows.iter()
                .map(|d| view(d, &scope, parties.get(&d.id).unwrap_or(&empty)))
                .collect(),
            total,
        ))
    })
    .await??;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .insert_header(("X-Page", page.to_string()))
        .insert_header(("X-Per-Page", per_page.to_string()))
        .json(rows))
}

/// The deviation with its history, handling, comments and the changes the
/// caller may make now, as the API shows it.
fn detail_json(x: &Detail) -> serde_json::Value {
    let mut v = view(&x.deviation, &x.scope, &x.parties);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "history".into(),
            json!(x
                .history
                .iter()
                .map(|h| json!({"at": stockholm(h.at), "actor": h.actor,
                    "from": h.from_status, "to": h.to_status, "note": h.note}))
                .collect::<Vec<_>>()),
        );
        o.insert(
            "comments".into(),
            json!(x
                .comments
                .iter()
                .map(|c| json!({"at": stockholm(c.at), "actor": c.actor, "text": c.text}))
                .collect::<Vec<_>>()),
        );
        o.insert("assigned_to".into(), json!(x.assignee));
        o.insert("atgard".into(), json!(x.atgard));
        o.insert("reason".into(), json!(x.reason));
        o.insert("allowed".into(), json!(x.allowed));
    }
    v
}

#[utoipa::path(get, path = "/api/v1/deviations/{id}", tag = "avvikelser",
    params(("id" = i64, Path, description = "avvikelsens id")),
    responses((status = 200, description = "avvikelsen med historik, kommentarer, åtgärd, ansvarig handläggare och de ändringar anroparen får göra"),
        (status = 401, description = "ingen giltig token eller session"),
        (status = 404, description = "avvikelsen finns inte, eller ligger utanför anroparens enheter")))]
#[get("/deviations/{id}")]
async fn one(state: web::Data<AppState>, auth: Auth, path: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&READERS)?.clone();
    let id = path.into_inner();
    let out = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = state.pool.get()?;
        Ok(detail_json(&handling::read(&mut conn, &caller, id)?))
    })
    .await??;
    Ok(HttpResponse::Ok().json(out))
}

// The report as the one JSON document a huvudman's deviation system gets
// by webhook (SPEC §6.0), for a system that pulls: read, scoped and logged
// as `GET /deviations/{id}` is. (No doc comment: it would become the
// document's English summary.)
#[utoipa::path(get, path = "/api/v1/deviations/{id}/report.json", tag = "avvikelser",
    params(("id" = i64, Path, description = "avvikelsens id")),
    responses((status = 200, description = "rapporten som ett JSON-dokument, detsamma som en webhook får; kind efter avvikelsens status nu (aterkallad, avslutad, annars rapport)",
            body = crate::mail::document::ReportDocument),
        (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "en roll som inte får läsa avvikelser, eller en handläggare utan enhet"),
        (status = 404, description = "avvikelsen finns inte, eller ligger utanför anroparens enheter")))]
#[get("/deviations/{id}/report.json")]
async fn report_json(state: web::Data<AppState>, auth: Auth, path: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&READERS)?.clone();
    let id = path.into_inner();
    let doc = web::block(move || -> Result<_, AppError> {
        let mut conn = state.pool.get()?;
        let a = &state.auditor;
        Ok(handling::report_document(
            &mut conn,
            &caller,
            id,
            &a.mail,
            &a.templates,
        )?)
    })
    .await??;
    Ok(HttpResponse::Ok().json(doc))
}

/// A change of status (SPEC §6.1).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    // Required; read as optional so that a missing or blank one is answered
    // 422 "status krävs", not 400. Its description and pattern in the
    // document come from `DeviationStatus` (`openapi::with_statuses`).
    #[schema(value_type = String)]
    status: Option<String>,
    /// required when reopening (atgardad/avslutad → utreds)
    note: Option<String>,
    /// what was done: required for atgardad
    atgard: Option<String>,
    /// why: required for makulerad
    reason: Option<String>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "kroppen är inte det JSON-objekt som anropet tar emot: {}",
            crate::web::fallback::json_reason(&e)
        ))
    })
}

#[utoipa::path(post, path = "/api/v1/deviations/{id}/status", tag = "avvikelser",
    params(("id" = i64, Path, description = "avvikelsens id")),
    request_body(content = StatusRequest, content_type = "application/json"),
    responses((status = 200, description = "avvikelsen efter ändringen"),
        (status = 400, description = "kroppen är inte JSON"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "en roll som inte får, eller en sessionsbegäran utan sin CSRF-token"),
        (status = 404, description = "avvikelsen finns inte bland anroparens enheter"),
        (status = 409, description = "en ändring som SPEC §6.1 inte tillåter denna roll från denna status; inget ändrades"),
        (status = 422, description = "en tillåten ändring utan sin atgard, reason eller note, eller ingen status; inget ändrades")))]
#[post("/deviations/{id}/status")]
async fn post_status(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&READERS)?.clone();
    let id = path.into_inner();
    let b: StatusRequest = json_body(&body)?;
    let Some(status) = b.status.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return Err(AppError::new(ErrorCode::Unprocessable, "status krävs"));
    };
    let change = StatusChange {
        status,
        note: b.note,
        atgard: b.atgard,
        reason: b.reason,
    };
    let out = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = state.pool.get()?;
        let x = handling::change_status(&mut conn, &state.auditor.mail, &caller, id, &change)?;
        Ok(detail_json(&x))
    })
    .await??;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssigneeRequest {
    /// a person who works with the deviation's unit; null unassigns
    username: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/deviations/{id}/assignee", tag = "avvikelser",
    params(("id" = i64, Path, description = "avvikelsens id")),
    request_body(content = AssigneeRequest, content_type = "application/json"),
    responses((status = 200, description = "avvikelsen, tilldelad"), (status = 401, description = "ingen giltig token eller session"),
        (status = 400, description = "en kropp som inte är det JSON-objekt anropet tar emot"),
        (status = 404, description = "avvikelsen finns inte bland anroparens enheter"),
        (status = 422, description = "personen finns inte, eller arbetar inte med avvikelsens enhet")))]
#[post("/deviations/{id}/assignee")]
async fn post_assignee(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&READERS)?.clone();
    let id = path.into_inner();
    let b: AssigneeRequest = json_body(&body)?;
    let out = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = state.pool.get()?;
        Ok(detail_json(&handling::assign(
            &mut conn,
            &caller,
            id,
            b.username.as_deref(),
        )?))
    })
    .await??;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// 1–4000 characters, not only blanks
    // Required; read as optional so that a missing one is answered 422
    // "kommentaren är tom" (`handling::comment_text`), not 400.
    #[schema(value_type = String, min_length = 1, max_length = 4000, pattern = "[^\\s\\u0085]")]
    text: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/deviations/{id}/comments", tag = "avvikelser",
    params(("id" = i64, Path, description = "avvikelsens id")),
    request_body(content = CommentRequest, content_type = "application/json"),
    responses((status = 201, description = "avvikelsen med den nya kommentaren"), (status = 401, description = "ingen giltig token eller session"),
        (status = 400, description = "en kropp som inte är det JSON-objekt anropet tar emot"),
        (status = 404, description = "avvikelsen finns inte bland anroparens enheter"), (status = 422, description = "en tom kommentar eller en över 4000 tecken")))]
#[post("/deviations/{id}/comments")]
async fn post_comment(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&READERS)?.clone();
    let id = path.into_inner();
    let b: CommentRequest = json_body(&body)?;
    let text = b.text.unwrap_or_default();
    let out = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = state.pool.get()?;
        Ok(detail_json(&handling::comment(&mut conn, &caller, id, &text)?))
    })
    .await??;
    Ok(HttpResponse::Created().json(out))
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(one)
        .service(report_json)
        .service(post_status)
        .service(post_comment)
        .service(post_assignee);
}
