//! The follow-up (SPEC §7, §8): adherence, lead times, betalningsansvar,
//! readmissions, handling times, åtgärder and their effect, the quarterly
//! report, and förvarningar. Every answer is scoped: a caller with units
//! sees the obligations of those units and below, and the kommun figures of
//! the kommuner whose units are among them; the county sees everything.
//! Each read is logged.

use actix_web::{get, web, HttpResponse};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::calendar::local_date;
use crate::followup::adherence::{self, Group};
use crate::followup::leadtimes::{self, Model};
use crate::followup::{forvarning, handling, quarterly, readmissions, Month, Period, Quarter, Visible};
use crate::handling::Scope;
use crate::rules::{RuleId, Units};
use crate::store::tokens::{self, Caller, Role};
use crate::store::DbConn;
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

/// Who reads reports: management and admins (SPEC §9).
pub const REPORT_READERS: [Role; 2] = [Role::Admin, Role::Ledning];
/// Adherence and förvarningar also serve a handläggare, for their own units.
pub const UNIT_READERS: [Role; 3] = [Role::Admin, Role::Ledning, Role::Handlaggare];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub rule: Option<String>,
    pub group: Option<String>,
    pub kommun: Option<String>,
    pub model: Option<String>,
    pub unit: Option<String>,
}

fn bad(e: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::BadRequest, e)
}

/// `from`/`to`, by default the twelve months up to today.
pub fn period_of(q: &ReportQuery) -> Result<Period, AppError> {
    let today = local_date(Utc::now());
    let to = match &q.to {
        Some(t) => t.clone(),
        None => today.to_string(),
    };
    let from = match &q.from {
        Some(f) => f.clone(),
        None => {
            let to_date = NaiveDate::parse_from_str(&to, "%Y-%m-%d").unwrap_or(today);
            Month::of(to_date).plus(-11).first().to_string()
        }
    };
    Period::parse(&from, &to).map_err(bad)
}

pub fn rule_of(q: &ReportQuery) -> Result<Option<RuleId>, AppError> {
    q.rule
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| RuleId::parse(r).ok_or_else(|| bad(format!("okänd regel `{r}`"))))
        .transpose()
}

pub fn model_of(state: &AppState, q: &ReportQuery) -> Result<Model, AppError> {
    match q.model.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => Model::parse(m).map_err(bad),
        None => Ok(state.followup.model),
    }
}

/// What the access log says was read: the report, its period and the kommun asked for.
fn logged(report: &str, period: Period, q: &ReportQuery) -> String {
    let kommun = q.kommun.as_deref().map(|k| format!(" kommun={k}")).unwrap_or_default();
    format!("{report} {}..{}{kommun}", period.from, period.to)
}

/// Runs `f` on a connection with the caller's scope, after logging the read.
pub async fn scoped<T, F>(state: web::Data<AppState>, caller: Caller, what: String, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, &Scope, &AppState) -> Result<T, AppError> + Send + 'static,
{
    web::block(move || -> Result<T, AppError> {
        let mut conn = state.pool.get()?;
        let scope = Scope::of(&caller, &mut conn)?;
        tokens::log_access(&mut conn, &caller, "rapport", &what)?;
        f(&mut conn, &scope, &state)
    })
    .await?
}

/// A kommun asked for that the caller may not see answers as unknown: no rows.
fn kommun_allowed(conn: &mut DbConn, scope: &Scope, kommun: Option<&str>) -> Result<bool, AppError> {
    let Some(k) = kommun else { return Ok(true) };
    let units = crate::store::units::all(conn)?;
    Ok(quarterly::kommuner_in_scope(&units, Visible(scope.units())).is_none_or(|s| s.contains(k)))
}

/// The rows of the kommuner the caller may see.
pub fn in_scope_kommun<T>(
    conn: &mut DbConn,
    scope: &Scope,
    mut rows: Vec<T>,
    kommun: impl Fn(&T) -> &str,
) -> Result<Vec<T>, AppError> {
    let units = crate::store::units::all(conn)?;
    quarterly::keep_visible_kommuner(&mut rows, &units, Visible(scope.units()), kommun);
    Ok(rows)
}

#[utoipa::path(get, path = "/api/v1/reports/adherence", tag = "uppföljning",
    params(("from" = Option<String>, Query, format = Date, description = "första dag, ÅÅÅÅ-MM-DD (standard: den första i månaden elva månader tillbaka)"),
        ("to" = Option<String>, Query, format = Date, description = "sista dag, ÅÅÅÅ-MM-DD (standard i dag)"),
        ("rule" = Option<String>, Query, description = "en regel"),
        ("group" = Option<String>, Query, pattern = "^(unit|subtree|huvudman|county)$", description = "unit (standard), subtree, huvudman eller county")),
    responses((status = 200, description = "skyldigheter som förföll under perioden och hur många som uppfylldes, var sena eller saknas", body = [adherence::Row]),
        (status = 400, description = "en felaktig parameter"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "en roll som inte får läsa följsamhet")))]
#[get("/reports/adherence")]
async fn get_adherence(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&UNIT_READERS)?.clone();
    let q = query.into_inner();
    let period = period_of(&q)?;
    let rule = rule_of(&q)?;
    let group = Group::parse(q.group.as_deref().unwrap_or("unit")).map_err(bad)?;
    let what = format!("foljsamhet {}..{}", period.from, period.to);
    let rows = scoped(state, caller, what, move |conn, scope, _| {
        Ok(adherence::report(
            conn,
            period,
            rule.map(RuleId::as_str),
            group,
            Visible(scope.units()),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[utoipa::path(get, path = "/api/v1/reports/leadtimes", tag = "uppföljning",
    params(("from" = Option<String>, Query, format = Date, description = "första dag, ÅÅÅÅ-MM-DD"), ("to" = Option<String>, Query, format = Date, description = "sista dag, ÅÅÅÅ-MM-DD"),
        ("kommun" = Option<String>, Query, description = "en kommun (dess huvudmannanamn)")),
    responses((status = 200, description = "ledtider UK → hemgång och SKR:s indikatorer per kommun och månad", body = [leadtimes::LeadRow]),
        (status = 400, description = "en felaktig parameter"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "inte ledning eller admin")))]
#[get("/reports/leadtimes")]
async fn get_leadtimes(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&REPORT_READERS)?.clone();
    let q = query.into_inner();
    let period = period_of(&q)?;
    let what = logged("ledtider", period, &q);
    let rows = scoped(state, caller, what, move |conn, scope, _| {
        if !kommun_allowed(conn, scope, q.kommun.as_deref())? {
            return Ok(Vec::new());
        }
        let stays = leadtimes::load(conn, Some(period.from), period.to)?;
        let rows = leadtimes::rows(&stays, period, local_date(Utc::now()), q.kommun.as_deref());
        in_scope_kommun(conn, scope, rows, |r| &r.kommun)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[utoipa::path(get, path = "/api/v1/reports/betalningsansvar", tag = "uppföljning",
    params(("from" = Option<String>, Query, format = Date, description = "första dag, ÅÅÅÅ-MM-DD"), ("to" = Option<String>, Query, format = Date, description = "sista dag, ÅÅÅÅ-MM-DD"),
        ("kommun" = Option<String>, Query, description = "en kommun: dess ärenden listas, vart och ett med varför det räknas eller inte"),
        ("model" = Option<String>, Query, description = "vasterbotten eller rullande (standard: installationens)")),
    responses((status = 200, description = "varje kommuns månader enligt modellen: läge, räknade och undantagna patienter, dagar och belopp", body = quarterly::Betalningsansvar),
        (status = 400, description = "en felaktig parameter"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "inte ledning eller admin")))]
#[get("/reports/betalningsansvar")]
async fn get_betalningsansvar(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&REPORT_READERS)?.clone();
    let q = query.into_inner();
    let period = period_of(&q)?;
    let model = model_of(&state, &q)?;
    let what = logged("betalningsansvar", period, &q);
    let body = scoped(state, caller, what, move |conn, scope, st| {
        let kommuner = if kommun_allowed(conn, scope, q.kommun.as_deref())? {
            let stays = leadtimes::load(conn, None, period.to)?;
            let rows = leadtimes::liability(&stays, period, model, &st.followup.prices, q.kommun.as_deref());
            in_scope_kommun(conn, scope, rows, |r| &r.kommun)?
        } else {
            Vec::new()
        };
        Ok(quarterly::Betalningsansvar {
            model: model.as_str().to_string(),
            kommuner,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(get, path = "/api/v1/reports/readmissions", tag = "uppföljning",
    params(("from" = Option<String>, Query, format = Date, description = "första dag för utskrivningarna, ÅÅÅÅ-MM-DD"), ("to" = Option<String>, Query, format = Date, description = "sista dag, ÅÅÅÅ-MM-DD"),
        ("kommun" = Option<String>, Query, description = "en kommun")),
    responses((status = 200, description = "utskrivningar och återinskrivningar inom 30 dagar per kommun, månad och åldersgrupp", body = [readmissions::Row]),
        (status = 400, description = "en felaktig parameter"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "inte ledning eller admin")))]
#[get("/reports/readmissions")]
async fn get_readmissions(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&REPORT_READERS)?.clone();
    let q = query.into_inner();
    let period = period_of(&q)?;
    let what = logged("aterinskrivningar", period, &q);
    let rows = scoped(state, caller, what, move |conn, scope, _| {
        let (discharged, admitted) = readmissions::load(conn, period)?;
        let rows = readmissions::rows(&discharged, &admitted, q.kommun.as_deref());
        in_scope_kommun(conn, scope, rows, |r| &r.kommun)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[utoipa::path(get, path = "/api/v1/reports/handling", tag = "uppföljning",
    params(("from" = Option<String>, Query, format = Date, description = "första dag en avvikelse mejlades, ÅÅÅÅ-MM-DD"), ("to" = Option<String>, Query, format = Date, description = "sista dag, ÅÅÅÅ-MM-DD")),
    responses((status = 200, description = "median och 90:e percentil i timmar från skickad till mottagen och till avslutad per enhet och regel, och de öppna avvikelserna efter ålder"),
        (status = 400, description = "en felaktig parameter"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "inte ledning eller admin")))]
#[get("/reports/handling")]
async fn get_handling(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&REPORT_READERS)?.clone();
    let q = query.into_inner();
    let period = period_of(&q)?;
    let what = format!("handlaggningstider {}..{}", period.from, period.to);
    let body = scoped(state, caller, what, move |conn, scope, _| {
        let visible = Visible(scope.units());
        let rows = handling::report(conn, period, visible)?;
        let open = handling::open_by_age(conn, visible, crate::store::now())?;
        Ok(json!({"rows": rows, "open_by_age": open}))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(get, path = "/api/v1/reports/atgarder", tag = "uppföljning",
    params(("from" = Option<String>, Query, format = Date, description = "första dag en åtgärd registrerades, ÅÅÅÅ-MM-DD"), ("to" = Option<String>, Query, format = Date, description = "sista dag, ÅÅÅÅ-MM-DD"),
        ("unit" = Option<String>, Query, description = "en enhet"), ("rule" = Option<String>, Query, description = "en regel")),
    responses((status = 200, description = "varje åtgärd med följsamheten för dess enhet och regel under 91 dagar före och efter; improved är null tills 91 dagar har gått"),
        (status = 400, description = "en felaktig parameter"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "inte ledning eller admin")))]
#[get("/reports/atgarder")]
async fn get_atgarder(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&REPORT_READERS)?.clone();
    let q = query.into_inner();
    let period = period_of(&q)?;
    let rule = rule_of(&q)?;
    let what = format!("atgarder {}..{}", period.from, period.to);
    let rows = scoped(state, caller, what, move |conn, scope, _| {
        Ok(adherence::effects(
            conn,
            period,
            q.unit.as_deref(),
            rule.map(RuleId::as_str),
            Visible(scope.units()),
            crate::store::now(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[utoipa::path(get, path = "/api/v1/reports/quarterly/{quarter}", tag = "uppföljning",
    params(("quarter" = String, Path, pattern = "^(199[0-9]|2[01][0-9][0-9]|2200)-Q[1-4]$", description = "ÅÅÅÅ-QN, t.ex. 2026-Q2"), ("model" = Option<String>, Query, description = "modell för betalningsansvar")),
    responses((status = 200, description = "kvartalsrapporten för LPO/LAG", body = quarterly::Quarterly),
        (status = 400, description = "ett felaktigt kvartal"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "inte ledning eller admin")))]
#[get("/reports/quarterly/{quarter}")]
async fn get_quarterly(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&REPORT_READERS)?.clone();
    let quarter = Quarter::parse(&path.into_inner()).map_err(bad)?;
    let model = model_of(&state, &query)?;
    let what = format!("kvartalsrapport {}", quarter.label());
    let report = scoped(state, caller, what, move |conn, scope, st| {
        quarterly::build(
            conn,
            quarter,
            Visible(scope.units()),
            model,
            &st.followup.prices,
            Utc::now(),
        )
        .map_err(AppError::internal)
    })
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForvarningQuery {
    within_hours: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/forvarningar", tag = "uppföljning",
    params(("within_hours" = Option<i64>, Query, minimum = 1, maximum = 168, description = "fönstret, 1–168 timmar (standard: installationens, 24)")),
    responses((status = 200, description = "skyldigheter som förfaller inom fönstret och ännu inte är uppfyllda, närmast först", body = [forvarning::Warning]),
        (status = 400, description = "ett fönster utanför gränserna"), (status = 401, description = "ingen giltig token eller session"),
        (status = 403, description = "en roll som inte får läsa förvarningar")))]
#[get("/forvarningar")]
async fn get_forvarningar(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ForvarningQuery>,
) -> Result<HttpResponse, AppError> {
    let caller = auth.require(&UNIT_READERS)?.clone();
    let hours = query.within_hours.unwrap_or(state.followup.forvarning_hours);
    if !(1..=forvarning::MAX_HOURS).contains(&hours) {
        return Err(bad(format!(
            "within_hours ska vara ett heltal från 1 till {}",
            forvarning::MAX_HOURS
        )));
    }
    let list = scoped(
        state,
        caller,
        format!("forvarningar {hours} h"),
        move |conn, scope, st| {
            let units = Units::new(crate::store::units::all(conn)?);
            forvarning::list(
                conn,
                &units,
                &st.auditor.profile,
                Utc::now(),
                hours,
                Visible(scope.units()),
            )
            .map_err(AppError::internal)
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(get_adherence)
        .service(get_leadtimes)
        .service(get_betalningsansvar)
        .service(get_readmissions)
        .service(get_handling)
        .service(get_atgarder)
        .service(get_quarterly)
        .service(get_forvarningar);
}
