//! The HTTP API: every route of the service, merged in one place.

use axum::Router;

use crate::state::AppState;

mod ingest;
mod orgs;
mod projects;
mod runs;
mod tokens;

/// All routes, without the middleware stack.
pub fn api_router() -> Router<AppState> {
    Router::new()
        .merge(orgs::router())
        .merge(projects::router())
        .merge(tokens::router())
        .merge(ingest::router())
        .merge(runs::router())
}
