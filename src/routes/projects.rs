//! `POST /projects`.

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
use crate::models::Project;
use crate::services::projects;
use crate::state::AppState;
use crate::validation::{self, FieldErrors};

/// Body of `POST /projects`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(expecting = "a JSON object")]
pub struct CreateProjectRequest {
    /// The organization the project belongs to.
    #[schema(value_type = String, format = Uuid, required = true)]
    organization_id: Option<Value>,
    /// Unique within the organization; trimmed; 1-200 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200,
        example = "Backend API")]
    name: Option<Value>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_project))
}

/// Creates a project: `201` with it, `400` for bad fields, `404` for an
/// unknown organization, `409` when the organization has a project of that name.
#[utoipa::path(
    post,
    path = "/projects",
    tag = "admin",
    request_body = CreateProjectRequest,
    security((), ("admin_token" = [])),
    responses(
        (status = 201, description = "The project", body = Project),
        (status = 400, description = "A field is invalid", body = Envelope),
        (status = 401, description = "ADMIN_TOKEN is set and was not presented",
            body = Envelope),
        (status = 404, description = "No organization has that id", body = Envelope),
        (status = 409, description = "The organization has a project of that name",
            body = Envelope),
        (status = 413, description = "The body is larger than the limit", body = Envelope),
        (status = 415, description = "The body is not sent as JSON", body = Envelope),
        (status = 503, description = "The database is unavailable; retry", body = Envelope),
    )
)]
async fn create_project(
    State(state): State<AppState>,
    _admin: AdminAccess,
    AppJson(body): AppJson<CreateProjectRequest>,
) -> AppResult<(StatusCode, Json<Project>)> {
    let organization_id = validation::uuid(body.organization_id);
    let name = validation::name(body.name);
    let (Ok(organization_id), Ok(name)) = (&organization_id, &name) else {
        return Err(FieldErrors::default()
            .check("organization_id", &organization_id)
            .check("name", &name)
            .into());
    };

    let project = projects::insert_project(&state.db, *organization_id, name.clone()).await?;

    tracing::info!(
        project_id = %project.id,
        organization_id = %project.organization_id,
        "project created"
    );
    Ok((StatusCode::CREATED, Json(project)))
}
