//! The HTTP API: every route of the service, merged in one place.
//!
//! Each resource module returns an [`OpenApiRouter`] whose routes are
//! registered with `.routes(routes!(handler))`, which serves the handler at
//! the path of its `#[utoipa::path]` attribute and adds that attribute to the
//! OpenAPI document. To add a route, annotate the handler with
//! `#[utoipa::path(method, path = "...", responses(...))]` and add one line,
//! `.routes(routes!(handler))`, to its module's `router()`. A handler added
//! with plain `.route()` would be served but missing from the document; the
//! OpenAPI test lists every route the service serves to catch that.

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

mod health;
mod ingest;
mod metrics;
pub mod openapi;
mod orgs;
mod projects;
mod runs;
mod tokens;

/// All routes, without the middleware stack, with their OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(orgs::router())
        .merge(projects::router())
        .merge(tokens::router())
        .merge(ingest::router())
        .merge(runs::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
}
