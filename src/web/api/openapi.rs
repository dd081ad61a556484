//! `GET /api/v1/openapi.json`: the OpenAPI document of the whole HTTP API,
//! generated from the `#[utoipa::path]` annotations beside each handler
//! (a test holds them to the routes the handlers declare).

use actix_web::{get, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::domain::handling::DeviationStatus;
use crate::web::auth::Auth;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::web::auth::SESSION_COOKIE))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "svu-vakt",
        description = "Granskning av samverkan vid utskrivning (Lag (2017:612)): inläsning, avvikelser, hantering. \
                       Maskiner använder en bearer-token; personer en sessionskaka och skickar X-CSRF-Token vid varje ändring."
    ),
    paths(
        super::events::post_events,
        super::units::post_units,
        super::units::get_units,
        super::cases::get_case,
        super::scans::post_scan,
        super::scans::get_scans,
        super::deviations::list,
        super::deviations::one,
        super::deviations::report_json,
        super::deviations::post_status,
        super::deviations::post_assignee,
        super::deviations::post_comment,
        super::outbox::list,
        super::reports::get_adherence,
        super::reports::get_leadtimes,
        super::reports::get_betalningsansvar,
        super::reports::get_readmissions,
        super::reports::get_handling,
        super::reports::get_atgarder,
        super::reports::get_quarterly,
        super::reports::get_forvarningar,
        super::session::create,
        super::session::show,
        super::session::end,
        crate::web::ops::healthz,
        crate::web::ops::readyz,
        crate::web::ops::metrics,
        document,
    ),
    components(schemas(
        super::deviations::StatusRequest,
        super::deviations::CommentRequest,
        super::deviations::AssigneeRequest,
        super::session::Credentials,
        super::scans::ScanRequest
    )),
    modifiers(&Security),
    security(("token" = []), ("session" = []))
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "drift",
    responses((status = 200, description = "detta dokument"), (status = 401, description = "ingen giltig token eller session")))]
#[get("/openapi.json")]
async fn document(_auth: Auth) -> HttpResponse {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    with_domain_values(&mut doc);
    with_statuses(&mut doc);
    HttpResponse::Ok().json(doc)
}

/// The values a parameter takes, from the types that parse it (so the
/// document cannot drift from them): `rule` the rule ids, `model` the
/// betalningsansvar models; the empty string too, which the handlers read
/// as not given.
fn with_domain_values(doc: &mut serde_json::Value) {
    let mut rules = vec![serde_json::Value::from("")];
    rules.extend(
        crate::rules::profile::RuleId::ALL
            .iter()
            .map(|r| serde_json::Value::from(r.as_str())),
    );
    let models = serde_json::json!(["", "vasterbotten", "rullande"]);
    // Units come as a JSON array of unit objects, at least one (or as CSV).
    let units = "/api/v1/units";
    if let Some(body) = doc.pointer_mut(&format!("/paths/{}/post/requestBody/content", units.replace('/', "~1"))) {
        body["application/json"]["schema"] =
            serde_json::json!({"type": "array", "minItems": 1, "items": {"type": "object"}});
        body["text/csv"] = serde_json::json!({"schema": {"type": "string", "minLength": 1}});
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(|i| i.as_object_mut())
        .flat_map(|i| i.values_mut())
    {
        let Some(params) = operation.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
            continue;
        };
        for p in params {
            let values = match p.get("name").and_then(|n| n.as_str()) {
                Some("rule") => serde_json::Value::from(rules.clone()),
                Some("model") => models.clone(),
                _ => continue,
            };
            p["schema"] = serde_json::json!({"type": "string", "enum": values});
        }
    }
}

/// The statuses of SPEC §6.1, from `DeviationStatus`: the list's `status`
/// filter (empty too, read as not given) and the status a change asks for.
fn with_statuses(doc: &mut serde_json::Value) {
    let words = DeviationStatus::ALL.map(DeviationStatus::as_str);
    let (last, rest) = words.split_last().unwrap_or((&"", &[]));
    let listed = |or: &str| format!("{} {or} {last}", rest.join(", "));
    let alternatives = words.join("|");
    let list = "/paths/~1api~1v1~1deviations/get/parameters";
    if let Some(params) = doc.pointer_mut(list).and_then(|p| p.as_array_mut()) {
        for p in params.iter_mut().filter(|p| p["name"] == "status") {
            p["description"] = listed("eller").into();
            p["schema"] = serde_json::json!({"type": "string", "pattern": format!("^({alternatives})?$")});
        }
    }
    if let Some(status) = doc.pointer_mut("/components/schemas/StatusRequest/properties/status") {
        status["description"] = listed("or").into();
        status["pattern"] = format!("^({alternatives})$").into();
    }
    let handling = "/components/schemas/ReportDocument/properties/handling_status";
    if let Some(status) = doc.pointer_mut(handling) {
        status["enum"] = serde_json::json!(words);
    }
}

pub fn config(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(document);
}
