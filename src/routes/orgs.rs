//! `POST /orgs`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminAccess;
use crate::error::{AppResult, Envelope};
use crate::extract::AppJson;
use crate::models::Organization;
use crate::services::orgs;
use crate::state::AppState;
use crate::validation;

/// Body of `POST /orgs`. Fields are loose JSON so each is checked on its own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(expecting = "a JSON object")]
pub struct CreateOrgRequest {
    /// Unique among organizations; trimmed; 1-200 characters, no control characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200,
        example = "Acme Corp")]
    name: Option<Value>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_org))
}

/// Creates an organization: `201` with it, `400` for a bad name, `409` when
/// the name is taken.
#[utoipa::path(
    post,
    path = "/orgs",
    tag = "admin",
    request_body = CreateOrgRequest,
    security((), ("admin_token" = [])),
    responses(
        (status = 201, description = "The organization", body = Organization),
        (status = 400, description = "The name is invalid", body = Envelope),
        (status = 401, description = "ADMIN_TOKEN is set and was not presented",
            body = Envelope),
        (status = 409, description = "The name is taken", body = Envelope),
        (status = 413, description = "The body is larger than the limit", body = Envelope),
        (status = 415, description = "The body is not sent as JSON", body = Envelope),
        (status = 503, description = "The database is unavailable; retry", body = Envelope),
    )
)]
async fn create_org(
    State(state): State<AppState>,
    _admin: AdminAccess,
    AppJson(body): AppJson<CreateOrgRequest>,
) -> AppResult<(StatusCode, Json<Organization>)> {
    let name = validation::field("name", validation::name(body.name))?;

    let org = orgs::insert_org(&state.db, name).await?;

    tracing::info!(organization_id = %org.id, "organization created");
    Ok((StatusCode::CREATED, Json(org)))
}
