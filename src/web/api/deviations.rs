//! Deviations: the list (filters and paging, SPEC §8), one deviation with
//! its history, handling and comments, a change of status (SPEC §6.1) and
//! a comment. A handläggare sees only deviations of their units and below,
//! and another unit's deviation answers as one that does not exist; every
//! read by anyone, list reads included with their filter, is logged.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Deserialize;
use serde_json::json;

use crate::domain::handling::{self, Refused, StatusChange};
use crate::store::deviations::{self, DeviationRow, ListFilter};
use crate::store::tokens::{self, Caller, Role};
use crate::store::{backend, DbConn};
use crate::web::auth::{Auth, Scope};
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
fn view(d: &DeviationRow, scope: &Scope) -> serde_json::Value {
    let recipients = match scope {
        Scope::All => serde_json::from_str::<serde_json::Value>(&d.recipients).unwrap_or_default(),
        Scope::Units(_) => serde_json::Value::Null,
    };
    json!({
        "id": d.id, "rule": d.rule, "case": d.case_id, "unit": d.unit,
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
    let status = empty_none(q.status);
    if let Some(s) = &status {
        if !handling::STATUSES.contains(&s.as_str()) {
            return Err(bad(format!(
                "{s} är ingen status; giltiga är {}",
                handling::STATUSES.join(", ")
            )));
        }
    }
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
    params(("status" = Option<String>, Query, pattern = "^(ny|skickad|mottagen|utreds|atgardad|avslutad|aterkallad|makulerad)?$", description = "ny, skickad, mottagen, utreds, atgardad, avslutad, aterkallad eller makulerad"),
        ("rule" = Option<String>, Query, description = "ett regel-id"),
        ("unit" = Option<String>, Query, description = "den ansvariga enheten"),
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
        let scope = Scope::of(&caller, &mut conn)?;
        // A list read is a read of every deviation in it: logged with its filter.
        tokens::log_access(
            &mut conn,
            &caller,
            "list_deviations",
            &filter.logged(page, per_page, PER_PAGE),
        )?;
        let (rows, total) = deviations::page(&mut conn, &filter, scope.units(), page, per_page)?;
        Ok((rows.iter().map(|d| view(d, &scope)).collect(), total))
    })
    .await??;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .insert_header(("X-Page", page.to_string()))
        .insert_header(("X-Per-Page", per_page.to_string()))
        .json(rows))
}

/// The deviation if the caller may see it: out of scope is not found.
pub fn visible(conn: &mut DbConn, scope: &Scope, id: i64) -> Result<DeviationRow, AppError> {
    deviations::get(conn, id)?
        .filter(|d| scope.contains(d.unit.as_deref()))
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::NotFound,
                "avvikelsen finns inte, eller hör inte till dina enheter",
            )
        })
}

/// The deviation with its history, handling, comments and the changes the
/// caller may make now.
pub fn detail(
    conn: &mut DbConn,
    caller: &Caller,
    scope: &Scope,
    d: &DeviationRow,
) -> Result<serde_json::Value, AppError> {
    let history = deviations::history_of(conn, d.id)?;
    let comments = deviations::comments_of(conn, d.id)?;
    let handled = deviations::handling_of(conn, d.id)?.unwrap_or_default();
    let mut v = view(d, scope);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "history".into(),
            json!(history
                .iter()
                .map(|h| json!({"at": stockholm(h.at), "actor": h.actor,
                    "from": h.from_status, "to": h.to_status, "note": note_for(h.note.as_deref(), scope)}))
                .collect::<Vec<_>>()),
        );
        o.insert(
            "comments".into(),
            json!(comments
                .iter()
                .map(|c| json!({"at": stockholm(c.at), "actor": c.actor, "text": c.text}))
                .collect::<Vec<_>>()),
        );
        let assignee = match handled.assigned_to {
            Some(uid) => crate::store::users::get(conn, uid)?.map(|u| u.username),
            None => None,
        };
        o.insert("assigned_to".into(), json!(assignee));
        o.insert("atgard".into(), json!(handled.atgard));
        o.insert("reason".into(), json!(handled.reason));
        o.insert("allowed".into(), json!(handling::choices(caller.role, &d.status)));
    }
    Ok(v)
}

/// A history note as the caller may read it: the mail addresses in "mejlad
/// till …" only for those who may see every unit's addresses.
pub fn note_for(note: Option<&str>, scope: &Scope) -> Option<String> {
    let note = note?;
    match scope {
        Scope::Units(_) if note.starts_with("mejlad till ") => Some("mejlad till mottagaren".into()),
        _ => Some(note.to_string()),
    }
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
        let scope = Scope::of(&caller, &mut conn)?;
        let d = visible(&mut conn, &scope, id)?;
        tokens::log_access(&mut conn, &caller, "read_deviation", &id.to_string())?;
        detail(&mut conn, &caller, &scope, &d)
    })
    .await??;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: Option<String>,
    note: Option<String>,
    atgard: Option<String>,
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

/// Refusals of SPEC §6.1 as the API answers them.
pub fn refusal(r: Refused) -> AppError {
    let code = match r {
        Refused::NotAllowed { .. } => ErrorCode::Conflict,
        Refused::UnknownStatus(_) | Refused::Missing(_) => ErrorCode::Unprocessable,
    };
    AppError::new(code, r.message())
}

/// Applies a change of status as `caller`; the deviation as it is after.
/// Nothing changes when the change is refused.
pub fn change_status(
    conn: &mut DbConn,
    mail: &crate::mail::MailConfig,
    caller: &Caller,
    id: i64,
    change: &StatusChange,
) -> Result<serde_json::Value, AppError> {
    let scope = Scope::of(caller, conn)?;
    backend::write_tx(conn, |conn| -> Result<(), AppError> {
        // Ordered with a scan or a mail on its way that touches the same row.
        backend::lock_deviations(conn, &[id])?;
        let d = visible(conn, &scope, id)?;
        let note = handling::check(caller.role, &d.status, change).map_err(refusal)?;
        let text = |t: &Option<String>| t.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        deviations::apply_change(
            conn,
            &d,
            &change.status,
            &caller.name,
            note.as_deref(),
            text(&change.atgard).as_deref().filter(|_| change.status == "atgardad"),
            text(&change.reason).as_deref().filter(|_| change.status == "makulerad"),
        )?;
        if change.status == "avslutad" {
            queue_closing_notice(conn, mail, &d)?;
        }
        Ok(())
    })?;
    let d = visible(conn, &scope, id)?;
    // The answer shows the deviation again: a read like any other.
    tokens::log_access(conn, caller, "read_deviation", &id.to_string())?;
    detail(conn, caller, &scope, &d)
}

/// The report's copies hear that it is closed, with the åtgärd, when the
/// route of its unit asks for it (`notify_on_close`).
fn queue_closing_notice(conn: &mut DbConn, mail: &crate::mail::MailConfig, d: &DeviationRow) -> Result<(), AppError> {
    use crate::mail::routing::{matching_route, Recipients};
    let units = crate::rules::Units::new(crate::store::units::all(conn)?);
    let unit = d.unit.clone().map(crate::domain::UnitId);
    if !matching_route(unit.as_ref(), &units, mail).is_some_and(|r| r.notify_on_close) {
        return Ok(());
    }
    let copies = Recipients::from_json(&d.recipients).cc;
    let Some((first, rest)) = copies.split_first() else {
        return Ok(());
    };
    let atgard = deviations::handling_of(conn, d.id)?
        .and_then(|h| h.atgard)
        .unwrap_or_else(|| "–".into());
    let n = deviations::history_count(conn, d.id)?;
    let m = crate::mail::outbox::notice(
        crate::mail::outbox::AVSLUTAD,
        d,
        Recipients {
            to: first.clone(),
            cc: rest.to_vec(),
            via: String::new(),
        },
        json!({"atgard": atgard}),
        &n.to_string(),
        &mail.domain(),
    );
    crate::mail::outbox::enqueue(conn, &[m])?;
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/deviations/{id}/status", tag = "avvikelser",
    params(("id" = i64, Path, description = "avvikelsens id")),
    request_body(content = crate::web::api::openapi::StatusRequest, content_type = "application/json"),
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
    let b: StatusBody = json_body(&body)?;
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
        change_status(&mut conn, &state.auditor.mail, &caller, id, &change)
    })
    .await??;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    username: Option<String>,
}

/// Whether `user` may work a deviation of `unit`: an active person whose
/// scope holds the unit (a handläggare or ledning of the unit or above it,
/// a ledning user of the county, an admin).
pub fn may_work(conn: &mut DbConn, user: &crate::store::users::User, unit: Option<&str>) -> Result<bool, AppError> {
    let Some(role) = Role::parse(&user.role) else {
        return Ok(false);
    };
    if user.disabled || role == Role::Inlasning {
        return Ok(false);
    }
    let as_caller = Caller {
        token_id: None,
        user_id: Some(user.id),
        name: user.username.clone(),
        role,
        units: user.units.clone(),
    };
    match Scope::of(&as_caller, conn) {
        Ok(scope) => Ok(scope.contains(unit)),
        Err(_) => Ok(false),
    }
}

/// Assigns a deviation in the caller's scope to a person who may work it
/// (or to nobody, with `None`); 422 for anyone else.
pub fn assign(
    conn: &mut DbConn,
    caller: &Caller,
    id: i64,
    username: Option<&str>,
) -> Result<serde_json::Value, AppError> {
    let scope = Scope::of(caller, conn)?;
    backend::write_tx(conn, |conn| -> Result<(), AppError> {
        backend::lock_deviations(conn, &[id])?;
        let d = visible(conn, &scope, id)?;
        let target = match username.map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(name) => {
                let user = crate::store::users::list(conn)?
                    .into_iter()
                    .find(|u| u.username == name)
                    .filter(|u| may_work(conn, u, d.unit.as_deref()).unwrap_or(false))
                    .ok_or_else(|| {
                        AppError::new(
                            ErrorCode::Unprocessable,
                            format!("{name} finns inte eller arbetar inte med avvikelsens enhet"),
                        )
                    })?;
                Some((user.id, user.username))
            }
        };
        deviations::assign(conn, &d, target.as_ref().map(|(i, n)| (*i, n.as_str())), &caller.name)?;
        Ok(())
    })?;
    let d = visible(conn, &scope, id)?;
    tokens::log_access(conn, caller, "read_deviation", &id.to_string())?;
    detail(conn, caller, &scope, &d)
}

#[utoipa::path(post, path = "/api/v1/deviations/{id}/assignee", tag = "avvikelser",
    params(("id" = i64, Path, description = "avvikelsens id")),
    request_body(content = crate::web::api::openapi::AssigneeRequest, content_type = "application/json"),
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
    let b: AssignBody = json_body(&body)?;
    let out = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = state.pool.get()?;
        assign(&mut conn, &caller, id, b.username.as_deref())
    })
    .await??;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: Option<String>,
}

/// Longest comment accepted.
pub const MAX_COMMENT: usize = 4000;

/// Adds a comment as `caller` to a deviation in scope.
pub fn comment(conn: &mut DbConn, caller: &Caller, id: i64, text: &str) -> Result<serde_json::Value, AppError> {
    // Counted as sent, blank as the document's pattern `[^\s\u0085]` says
    // (ECMAScript's blanks and Unicode's: the same set as here).
    let blank = |c: char| c.is_whitespace() || c == '\u{feff}';
    let long = text.chars().count() > MAX_COMMENT;
    let text = text.trim_matches(blank);
    if text.is_empty() {
        return Err(AppError::new(ErrorCode::Unprocessable, "kommentaren är tom"));
    }
    if long {
        return Err(AppError::new(
            ErrorCode::Unprocessable,
            format!("kommentaren är längre än {MAX_COMMENT} tecken"),
        ));
    }
    let scope = Scope::of(caller, conn)?;
    let d = visible(conn, &scope, id)?;
    deviations::add_comment(conn, d.id, &caller.name, text)?;
    tokens::log_access(conn, caller, "read_deviation", &id.to_string())?;
    detail(conn, caller, &scope, &d)
}

#[utoipa::path(post, path = "/api/v1/deviations/{id}/comments", tag = "avvikelser",
    params(("id" = i64, Path, description = "avvikelsens id")),
    request_body(content = crate::web::api::openapi::CommentRequest, content_type = "application/json"),
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
    let b: CommentBody = json_body(&body)?;
    let text = b.text.unwrap_or_default();
    let out = web::block(move || -> Result<serde_json::Value, AppError> {
        let mut conn = state.pool.get()?;
        comment(&mut conn, &caller, id, &text)
    })
    .await??;
    Ok(HttpResponse::Created().json(out))
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(one)
        .service(post_status)
        .service(post_comment)
        .service(post_assignee);
}
