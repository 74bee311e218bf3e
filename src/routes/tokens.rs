//! `POST /tokens`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppResult;
use crate::extract::AppJson;
use crate::services::tokens;
use crate::state::AppState;
use crate::validation;

/// Shown with every new token.
pub const TOKEN_WARNING: &str = "Store this token securely. It will not be shown again.";

/// Body of `POST /tokens`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object")]
pub struct CreateTokenRequest {
    project_id: Option<Value>,
}

/// The one response that ever contains a raw token.
#[derive(Serialize)]
pub struct CreatedTokenResponse {
    pub id: Uuid,
    pub token: String,
    pub project_id: Uuid,
    pub warning: &'static str,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/tokens", post(create_token))
}

/// Creates a token for a project: `201` with the raw token (never shown
/// again), `400` for a bad `project_id`, `404` for an unknown project.
async fn create_token(
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateTokenRequest>,
) -> AppResult<Response> {
    let project_id = validation::field("project_id", validation::uuid(body.project_id))?;

    let created = tokens::insert_token(&state.db, project_id).await?;

    tracing::info!(token_id = %created.id, project_id = %created.project_id, "token created");
    let body = CreatedTokenResponse {
        id: created.id,
        token: created.token.value,
        project_id: created.project_id,
        warning: TOKEN_WARNING,
    };
    // The raw token must not be kept by any cache between here and the client.
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    Ok((StatusCode::CREATED, no_store, Json(body)).into_response())
}
