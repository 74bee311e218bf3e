//! The in-process cache of valid tokens: it spares the database, and a
//! revocation that tells it to forget a token takes effect on the next request.

use axum::http::StatusCode;
use test_analytics::db::Database;
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, run_body};

backend_tests!(
    a_revoked_token_is_refused_on_the_next_request_once_the_cache_forgets_it,
    unknown_tokens_are_never_cached,
);

async fn a_revoked_token_is_refused_on_the_next_request_once_the_cache_forgets_it(
    backend: Backend,
) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let first = app
        .ingest(&project.token, run_body(&Uuid::new_v4().to_string()))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(app.state.token_cache.len(), 1);

    let token_id = revoke_in_database(&app, &project.project_id).await;
    let cached = app
        .ingest(&project.token, run_body(&Uuid::new_v4().to_string()))
        .await;
    app.state.token_cache.forget(token_id);
    let refused = app
        .ingest(&project.token, run_body(&Uuid::new_v4().to_string()))
        .await;

    assert_eq!(
        cached.status,
        StatusCode::CREATED,
        "served from the cache: {}",
        cached.text
    );
    refused.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid token");
    assert!(app.state.token_cache.is_empty());
}

async fn unknown_tokens_are_never_cached(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    for n in 0..20 {
        let token = format!("ta_live_{n:064x}");
        let response = app
            .ingest(&token, run_body(&Uuid::new_v4().to_string()))
            .await;
        response.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid token");
    }

    assert!(app.state.token_cache.is_empty());
}

/// Marks the project's token revoked directly in the database, as the
/// revocation route does, and returns its id.
async fn revoke_in_database(app: &TestApp, project_id: &str) -> Uuid {
    const REVOKE: &str = r#"
        UPDATE api_tokens
        SET revoked_at = $1
        WHERE project_id = $2
        RETURNING id
    "#;
    let project_id: Uuid = project_id.parse().expect("a project id");
    match &app.state.db {
        Database::Sqlite(db) => {
            let id: String = sqlx::query_scalar(REVOKE)
                .bind("2026-01-12T10:10:00.000Z")
                .bind(project_id.hyphenated())
                .fetch_one(&db.writer)
                .await
                .expect("revoke the token");
            id.parse().expect("a token id")
        }
        Database::Postgres(pool) => sqlx::query_scalar(REVOKE)
            .bind(time::OffsetDateTime::now_utc())
            .bind(project_id)
            .fetch_one(pool)
            .await
            .expect("revoke the token"),
    }
}
