//! Project tokens: `POST /tokens`, `GET /projects/{project_id}/tokens`,
//! `DELETE /tokens/{token_id}`. All three are admin routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::AdminAccess;
use crate::error::{AppResult, Envelope};
use crate::extract::AppJson;
use crate::models::TokenSummary;
use crate::services::tokens;
use crate::state::AppState;
use crate::validation;

/// Shown with every new token.
pub const TOKEN_WARNING: &str = "Store this token securely. It will not be shown again.";

/// Body of `POST /tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(expecting = "a JSON object")]
pub struct CreateTokenRequest {
    /// The project the token will act for.
    #[schema(value_type = String, format = Uuid, required = true)]
    project_id: Option<Value>,
}

/// The one response that ever contains a raw token.
#[derive(Serialize, ToSchema)]
pub struct CreatedTokenResponse {
    pub id: Uuid,
    /// `ta_live_` and 64 hex digits. Shown here once and never again.
    #[schema(example = "ta_live_1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809")]
    pub token: String,
    pub project_id: Uuid,
    #[schema(example = "Store this token securely. It will not be shown again.")]
    pub warning: &'static str,
}

/// Body of `GET /projects/{project_id}/tokens`.
#[derive(Serialize, ToSchema)]
pub struct TokenListResponse {
    /// Every token of the project, oldest first, revoked ones included.
    pub data: Vec<TokenSummary>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token))
        .routes(routes!(list_tokens))
        .routes(routes!(revoke_token))
}

/// Creates a token for a project: `201` with the raw token (never shown
/// again), `400` for a bad `project_id`, `404` for an unknown project.
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "admin",
    request_body = CreateTokenRequest,
    security((), ("admin_token" = [])),
    responses(
        (status = 201, description = "The token, shown this once", body = CreatedTokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "project_id is not a UUID", body = Envelope),
        (status = 401, description = "ADMIN_TOKEN is set and was not presented",
            body = Envelope),
        (status = 404, description = "No project has that id", body = Envelope),
        (status = 413, description = "The body is larger than the limit", body = Envelope),
        (status = 415, description = "The body is not sent as JSON", body = Envelope),
        (status = 503, description = "The database is unavailable; retry", body = Envelope),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    _admin: AdminAccess,
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

/// Lists a project's tokens by id and 12-character prefix, with when each was
/// created, last used (to the minute) and revoked: `200`; `400` for a bad
/// `project_id`; `404` for an unknown project.
#[utoipa::path(
    get,
    path = "/projects/{project_id}/tokens",
    tag = "admin",
    params(("project_id" = Uuid, Path, description = "The project's id")),
    security((), ("admin_token" = [])),
    responses(
        (status = 200, description = "The project's tokens", body = TokenListResponse),
        (status = 400, description = "project_id is not a UUID", body = Envelope),
        (status = 401, description = "ADMIN_TOKEN is set and was not presented",
            body = Envelope),
        (status = 404, description = "No project has that id", body = Envelope),
        (status = 503, description = "The database is unavailable; retry", body = Envelope),
    )
)]
async fn list_tokens(
    State(state): State<AppState>,
    _admin: AdminAccess,
    Path(project_id): Path<String>,
) -> AppResult<Json<TokenListResponse>> {
    let project_id = validation::field("project_id", validation::path_uuid(&project_id))?;

    let data = tokens::list_tokens(&state.db, project_id).await?;

    Ok(Json(TokenListResponse { data }))
}

/// Revokes a token: `204`, and from then on the token is refused with `401`;
/// revoking it again is also `204`. `400` for a bad id, `404` for an unknown one.
#[utoipa::path(
    delete,
    path = "/tokens/{token_id}",
    tag = "admin",
    params(("token_id" = Uuid, Path, description = "The token's id, as POST /tokens returned it")),
    security((), ("admin_token" = [])),
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 400, description = "token_id is not a UUID", body = Envelope),
        (status = 401, description = "ADMIN_TOKEN is set and was not presented",
            body = Envelope),
        (status = 404, description = "No token has that id", body = Envelope),
        (status = 503, description = "The database is unavailable; retry", body = Envelope),
    )
)]
async fn revoke_token(
    State(state): State<AppState>,
    _admin: AdminAccess,
    Path(token_id): Path<String>,
) -> AppResult<StatusCode> {
    let token_id = validation::field("token_id", validation::path_uuid(&token_id))?;

    tokens::revoke_token(&state.db, token_id).await?;
    state.token_usage.forget(token_id);
    state.token_cache.forget(token_id);

    tracing::info!(%token_id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
