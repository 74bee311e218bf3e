//! `GET /healthz` and `GET /readyz`: what a load balancer or an orchestrator
//! polls. Both are logged at debug, not info.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{AppError, AppResult, Envelope};
use crate::state::AppState;

/// Body of a successful health or readiness check.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check_health))
        .routes(routes!(check_readiness))
}

/// Liveness: `200 {"status":"ok"}` while the process runs. Touches no database.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = HealthResponse))
)]
async fn check_health() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok" })
}

/// Readiness: `200 {"status":"ready"}` when the database answers a query;
/// `503` when it does not, and from the moment a shutdown signal arrives.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = HealthResponse,
            example = json!({"status": "ready"})),
        (status = 503, description = "The database does not answer, or the service is \
            shutting down", body = Envelope),
    )
)]
async fn check_readiness(State(state): State<AppState>) -> AppResult<Json<HealthResponse>> {
    if state.is_draining() {
        return Err(AppError::Unavailable("shutting down".into()));
    }

    state
        .db
        .ping()
        .await
        .map_err(|e| AppError::Unavailable(e.into()))?;

    Ok(Json(HealthResponse { status: "ready" }))
}
