//! `POST /api/v1/events`: JSON Lines or a JSON array, all or nothing.

use actix_web::{post, web, HttpResponse};

use super::utf8_body;
use crate::ingest::{self, IngestError};
use crate::metrics::Metrics;
use crate::store::tokens::Role;
use crate::web::auth::Auth;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

#[utoipa::path(post, path = "/api/v1/events", tag = "inläsning",
    request_body(content = String, content_type = "application/x-ndjson", description = "JSON Lines (eller en JSON-array) av händelser, SPEC §3.2"),
    responses((status = 200, description = "sparad: received, stored, duplicates, batch"),
        (status = 400, description = "ogiltiga rader, var och en med line, field och message; inget sparades"),
        (status = 401, description = "ingen giltig token eller session"), (status = 403, description = "en roll som inte får läsa in"),
        (status = 409, description = "ett händelse-id som finns sparat med annat innehåll; inget sparades")))]
#[post("/events")]
#[tracing::instrument(skip_all, fields(bytes = body.len()))]
async fn post_events(state: web::Data<AppState>, auth: Auth, body: web::Bytes) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Admin, Role::Inlasning])?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "kroppen är tom: skicka händelser som JSON Lines eller en JSON-array",
        ));
    }
    let st = state.clone();
    let result = web::block(move || -> Result<_, IngestError> {
        let text = utf8_body(&body).map_err(|e| IngestError::Invalid(e.into()))?;
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
            tracing::info!(stored = outcome.stored, duplicates = outcome.duplicates, batch = ?outcome.batch, "batch sparad");
            Ok(HttpResponse::Ok().json(outcome))
        }
        Err(e) => {
            match &e {
                IngestError::Invalid(errors) => Metrics::add(&m.events_rejected, errors.lines()),
                IngestError::Conflict(c) => Metrics::add(&m.events_conflict, c.len()),
                IngestError::Db(_) => {}
            }
            Metrics::add(&m.batches_rejected, 1);
            Err(e.into())
        }
    }
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(post_events);
}
