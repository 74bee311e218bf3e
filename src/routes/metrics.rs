//! `GET /metrics`: every metric of the process in the Prometheus text format.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app_metrics;
use crate::state::AppState;

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(render_metrics))
}

/// Renders the metrics, sampling the database pools first. Unauthenticated;
/// no label carries a token, a run id or a raw path.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain; version=0.0.4"))
)]
async fn render_metrics(State(state): State<AppState>) -> Response {
    app_metrics::sample_pools(&state.db);

    let body = state.metrics.render();

    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    )];
    (content_type, body).into_response()
}
