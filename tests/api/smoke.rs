//! A first end-to-end pass over the four core endpoints.

use axum::http::StatusCode;

use crate::backend_tests;
use axum::http::Method;

use crate::helpers::{Backend, run_body, send_over_socket};

backend_tests!(
    ingesting_the_same_run_twice_returns_201_then_200_with_the_stored_run,
    ingest_without_a_token_is_401_in_the_envelope,
    ingest_lists_every_bad_field_in_details,
    sixty_four_concurrent_identical_ingests_store_one_row_over_real_sockets,
);

async fn ingesting_the_same_run_twice_returns_201_then_200_with_the_stored_run(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let run_id = "770e8400-e29b-41d4-a716-446655440002";

    let first = app.ingest(&project.token, run_body(run_id)).await;
    let second = app.ingest(&project.token, run_body(run_id)).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.body, second.body);
    assert_eq!(app.count_rows("test_runs").await, 1);
}

async fn ingest_without_a_token_is_401_in_the_envelope(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = app
        .post_json("/ingest", run_body(&uuid::Uuid::new_v4().to_string()))
        .await;

    response.assert_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Missing Authorization header",
    );
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
}

async fn ingest_lists_every_bad_field_in_details(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    let body = serde_json::json!({"run_id": "x", "status": "ok", "duration_ms": 1.5});
    let response = app.ingest(&project.token, body).await;

    response.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(
        response.detail_fields(),
        ["run_id", "status", "duration_ms", "timestamp"]
    );
    assert_eq!(app.count_rows("test_runs").await, 0);
    assert!(!project.project_id.is_empty() && !project.organization_id.is_empty());
}

async fn sixty_four_concurrent_identical_ingests_store_one_row_over_real_sockets(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let server = app.spawn_server().await;
    let bearer = format!("Bearer {}", project.token);
    let body = run_body(&uuid::Uuid::new_v4().to_string());

    let requests = (0..64).map(|_| {
        let (bearer, body) = (bearer.clone(), body.clone());
        let address = server.address;
        tokio::spawn(async move {
            let headers = [("authorization", bearer.as_str())];
            send_over_socket(address, Method::POST, "/ingest", &headers, Some(body)).await
        })
    });
    let mut statuses = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        let response = request.await.expect("task").expect("response");
        assert!(response.body["run_id"].is_string(), "{}", response.text);
        assert!(response.headers.contains_key("x-request-id"));
        statuses.push(response.status);
    }
    server.stop().await;

    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let replayed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((created, replayed), (1, 63), "{statuses:?}");
    assert_eq!(app.count_rows("test_runs").await, 1);
    assert!(app.sqlite_path().is_some() == (app.backend == Backend::Sqlite));
}
