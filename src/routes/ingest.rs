//! `POST /ingest`: the endpoint CI pipelines call.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::ProjectScope;
use crate::error::AppResult;
use crate::extract::AppJson;
use crate::models::NewRun;
use crate::services::ingest;
use crate::state::AppState;
use crate::validation::{self, FieldErrors};

/// Set to `true` on a `200` that returns a run stored by an earlier request.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Body of `POST /ingest`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object")]
pub struct IngestRunRequest {
    run_id: Option<Value>,
    status: Option<Value>,
    duration_ms: Option<Value>,
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

pub fn router() -> Router<AppState> {
    Router::new().route("/ingest", post(ingest_run))
}

/// Stores a run for the token's project: `201` with the new run; `200` with
/// `Idempotent-Replayed: true` and the stored run when the project already has
/// that `run_id`; `400` for bad fields; `401` for a missing or bad token.
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
