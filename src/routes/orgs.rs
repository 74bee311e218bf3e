//! `POST /orgs`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppResult;
use crate::extract::AppJson;
use crate::models::Organization;
use crate::services::orgs;
use crate::state::AppState;
use crate::validation;

/// Body of `POST /orgs`. Fields are loose JSON so each is checked on its own.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object")]
pub struct CreateOrgRequest {
    name: Option<Value>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/orgs", post(create_org))
}

/// Creates an organization: `201` with it, `400` for a bad name, `409` when
/// the name is taken.
async fn create_org(
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateOrgRequest>,
) -> AppResult<(StatusCode, Json<Organization>)> {
    let name = validation::field("name", validation::name(body.name))?;

    let org = orgs::insert_org(&state.db, name).await?;

    tracing::info!(organization_id = %org.id, "organization created");
    Ok((StatusCode::CREATED, Json(org)))
}
