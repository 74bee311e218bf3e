//! `POST /projects`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppResult;
use crate::extract::AppJson;
use crate::models::Project;
use crate::services::projects;
use crate::state::AppState;
use crate::validation::{self, FieldErrors};

/// Body of `POST /projects`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object")]
pub struct CreateProjectRequest {
    organization_id: Option<Value>,
    name: Option<Value>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/projects", post(create_project))
}

/// Creates a project: `201` with it, `400` for bad fields, `404` for an
/// unknown organization, `409` when the organization has a project of that name.
async fn create_project(
    State(state): State<AppState>,
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

    tracing::info!(project_id = %project.id, organization_id = %project.organization_id, "project created");
    Ok((StatusCode::CREATED, Json(project)))
}
