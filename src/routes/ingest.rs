//! `POST /ingest`: the endpoint CI pipelines call.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::ProjectScope;
use crate::error::{AppResult, Envelope};
use crate::extract::AppJson;
use crate::models::{NewRun, RunStatus, TestRun};
use crate::services::ingest;
use crate::state::AppState;
use crate::validation::{self, FieldErrors};

/// Set to `true` on a `200` that returns a run stored by an earlier request.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Body of `POST /ingest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(expecting = "a JSON object")]
pub struct IngestRunRequest {
    /// The client's id for the run; sending the same one again is a replay.
    #[schema(value_type = String, format = Uuid, required = true)]
    run_id: Option<Value>,
    #[schema(value_type = RunStatus, required = true)]
    status: Option<Value>,
    /// A JSON integer from 0 to 2^53 - 1.
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 9007199254740991_i64)]
    duration_ms: Option<Value>,
    /// RFC 3339 with `Z` or an offset; stored and returned exactly as sent.
    #[schema(value_type = String, format = DateTime, required = true,
        example = "2026-01-12T10:10:00Z")]
    timestamp: Option<Value>,
}

impl IngestRunRequest {
    /// Checks every field, reporting all the bad ones at once.
    pub fn validate(self) -> Result<NewRun, FieldErrors> {
        let run_id = validation::uuid(self.run_id);
        let status = validation::status(self.status);
        let duration_ms = validation::duration_ms(self.duration_ms);
        let timestamp = validation::timestamp(self.timestamp);

        match (run_id, status, duration_ms, timestamp) {
            (Ok(run_id), Ok(status), Ok(duration_ms), Ok((timestamp, timestamp_at))) => {
                Ok(NewRun {
                    run_id,
                    status,
                    duration_ms,
                    timestamp,
                    timestamp_at,
                })
            }
            (run_id, status, duration_ms, timestamp) => Err(FieldErrors::default()
                .check("run_id", &run_id)
                .check("status", &status)
                .check("duration_ms", &duration_ms)
                .check("timestamp", &timestamp)),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest_run))
}

/// Stores a run for the token's project: `201` with the new run; `200` with
/// `Idempotent-Replayed: true` and the stored run when the project already has
/// that `run_id`; `400` for bad fields; `401` for a missing or bad token.
#[utoipa::path(
    post,
    path = "/ingest",
    tag = "ingest",
    request_body = IngestRunRequest,
    security(("project_token" = [])),
    responses(
        (status = 201, description = "The run was stored", body = TestRun),
        (status = 200, description = "The project already had this run_id; the stored run \
            is returned unchanged, with Idempotent-Replayed: true", body = TestRun,
            headers(("Idempotent-Replayed" = String, description = "Always `true`"))),
        (status = 400, description = "A field is invalid; each is listed in details",
            body = Envelope),
        (status = 401, description = "The token is missing, malformed, unknown or revoked",
            body = Envelope),
        (status = 413, description = "The body is larger than the limit", body = Envelope),
        (status = 415, description = "The body is not sent as JSON", body = Envelope),
        (status = 503, description = "The database is unavailable; retry, it is safe",
            body = Envelope),
    )
)]
async fn ingest_run(
    State(state): State<AppState>,
    scope: ProjectScope,
    AppJson(body): AppJson<IngestRunRequest>,
) -> AppResult<Response> {
    let new_run = body.validate()?;

    let ingested = ingest::store_run(&state.db, scope.project_id, new_run).await?;

    if ingested.created {
        tracing::debug!(run_id = %ingested.run.run_id, "run stored");
        return Ok((StatusCode::CREATED, Json(ingested.run)).into_response());
    }
    tracing::debug!(run_id = %ingested.run.run_id, "run replayed");
    let replayed = [(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))];
    Ok((StatusCode::OK, replayed, Json(ingested.run)).into_response())
}
