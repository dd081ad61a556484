//! `POST /api/v1/events`: JSON Lines or a JSON array, all or nothing.

use actix_web::{post, web, HttpResponse};

use super::utf8_body;
use crate::ingest::{self, IngestError};
use crate::metrics::Metrics;
use crate::store::tokens::Role;
use crate::web::auth::Auth;
use crate::web::error::AppError;
use crate::web::AppState;

#[utoipa::path(post, path = "/api/v1/events", tag = "inläsning",
    request_body(content = String, content_type = "application/x-ndjson", description = "JSON Lines (or a JSON array) of events, SPEC §3.2"),
    responses((status = 200, description = "stored: received, stored, duplicates, batch"),
        (status = 400, description = "invalid lines, each with line, field and message; nothing stored"),
        (status = 401, description = "no valid token or session"), (status = 403, description = "a role that may not ingest"),
        (status = 409, description = "an event id stored with other content; nothing stored")))]
#[post("/events")]
#[tracing::instrument(skip_all, fields(bytes = body.len()))]
async fn post_events(state: web::Data<AppState>, auth: Auth, body: web::Bytes) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Inlasning])?;
    let st = state.clone();
    let result = web::block(move || -> Result<_, IngestError> {
        let text = utf8_body(&body).map_err(|e| IngestError::Invalid(vec![e]))?;
        let parsed = ingest::parse_events(text, &st.hasher);
        let mut conn = st.pool.get().map_err(|e| IngestError::Db(e.into()))?;
        crate::store::events::store_parsed(&mut conn, parsed, "api")
    })
    .await?;
    let m = &state.metrics;
    match result {
        Ok(outcome) => {
            Metrics::add(&m.events_ingested, outcome.stored);
            Metrics::add(&m.events_duplicate, outcome.duplicates);
            tracing::info!(stored = outcome.stored, duplicates = outcome.duplicates, batch = ?outcome.batch, "batch stored");
            Ok(HttpResponse::Ok().json(outcome))
        }
        Err(e) => {
            match &e {
                IngestError::Invalid(errors) => Metrics::add(&m.events_rejected, distinct_lines(errors)),
                IngestError::Conflict(c) => Metrics::add(&m.events_conflict, c.len()),
                IngestError::Db(_) => {}
            }
            Metrics::add(&m.batches_rejected, 1);
            Err(e.into())
        }
    }
}

fn distinct_lines(errors: &[crate::domain::FieldError]) -> usize {
    let mut lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    lines.dedup();
    lines.len()
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(post_events);
}
