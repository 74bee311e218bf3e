//! `POST /tokens` (SPEC section 3): the one response with a raw token, and
//! what is stored instead of it.

use axum::http::StatusCode;
use serde_json::json;

use crate::backend_tests;
use crate::formats::{is_lowercase_uuid, is_raw_token, sha256_hex};
use crate::helpers::{Backend, TestApp, run_body};

backend_tests!(
    creating_a_token_returns_201_with_the_raw_token_once_and_no_store,
    only_the_sha256_digest_and_a_12_character_prefix_are_stored,
    each_token_is_new_and_every_token_of_a_project_works,
    project_id_is_stored_lowercase_whatever_its_case,
    a_missing_or_non_uuid_project_id_is_400,
    an_unknown_project_is_404_and_stores_no_token,
);

const WARNING: &str = "Store this token securely. It will not be shown again.";

async fn project_id(app: &TestApp) -> String {
    let org = app.create_org("Acme").await;
    let project = app.create_project(org.str("id"), "Backend").await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text);
    project.str("id").to_owned()
}

async fn creating_a_token_returns_201_with_the_raw_token_once_and_no_store(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project_id = project_id(&app).await;

    let response = app.create_token(&project_id).await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.body.as_object().expect("an object");
    let mut keys: Vec<_> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "project_id", "token", "warning"]);
    assert!(is_raw_token(response.str("token")), "{}", response.text);
    assert!(is_lowercase_uuid(response.str("id")), "{}", response.text);
    assert_eq!(response.str("project_id"), project_id);
    assert_eq!(response.str("warning"), WARNING);
    assert_eq!(app.count_rows("api_tokens").await, 1);
}

async fn only_the_sha256_digest_and_a_12_character_prefix_are_stored(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project_id = project_id(&app).await;
    let response = app.create_token(&project_id).await;
    let token = response.str("token");

    let rows = app
        .text_rows(
            "SELECT CAST(id AS TEXT), CAST(project_id AS TEXT), token_hash, prefix, \
             CAST(last_used_at AS TEXT), CAST(revoked_at AS TEXT) FROM api_tokens",
        )
        .await;

    let expected = vec![
        Some(response.str("id").to_owned()),
        Some(project_id.clone()),
        Some(sha256_hex(token)),
        Some(token[..12].to_owned()),
        None,
        None,
    ];
    assert_eq!(rows, [expected]);
    let everything = app
        .text_rows("SELECT CAST(id AS TEXT) FROM api_tokens WHERE token_hash LIKE '%ta_live_%'")
        .await;
    assert!(everything.is_empty(), "a raw token was stored");
}

async fn each_token_is_new_and_every_token_of_a_project_works(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project_id = project_id(&app).await;

    let first = app.create_token(&project_id).await;
    let second = app.create_token(&project_id).await;

    assert_ne!(first.str("token"), second.str("token"));
    assert_ne!(first.str("id"), second.str("id"));
    let run_a = uuid::Uuid::new_v4().to_string();
    let run_b = uuid::Uuid::new_v4().to_string();
    let a = app.ingest(first.str("token"), run_body(&run_a)).await;
    let b = app.ingest(second.str("token"), run_body(&run_b)).await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(a.str("project_id"), project_id);
    assert_eq!(b.str("project_id"), project_id);
}

async fn project_id_is_stored_lowercase_whatever_its_case(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project_id = project_id(&app).await;

    let response = app.create_token(&project_id.to_uppercase()).await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.str("project_id"), project_id);
}

async fn a_missing_or_non_uuid_project_id_is_400(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let cases = [
        (json!({}), "is required"),
        (json!({"project_id": "abc"}), "must be a UUID"),
        (json!({"project_id": ""}), "must be a UUID"),
        (json!({"project_id": 1}), "must be a UUID string"),
        (
            json!({"project_id": ["550e8400-e29b-41d4-a716-446655440000"]}),
            "must be a UUID string",
        ),
    ];

    for (body, message) in cases {
        let response = app.post_json("/tokens", body).await;

        response.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Validation failed",
        );
        assert_eq!(
            response.body["error"]["details"],
            json!([{ "field": "project_id", "message": message }]),
            "{}",
            response.text
        );
        assert!(!response.text.contains("ta_live_"), "{}", response.text);
    }
    assert_eq!(app.count_rows("api_tokens").await, 0);
}

async fn an_unknown_project_is_404_and_stores_no_token(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let real = project_id(&app).await;
    let organization_id = app
        .text_rows("SELECT CAST(id AS TEXT) FROM organizations")
        .await;

    for unknown in [
        "550e8400-e29b-41d4-a716-446655440000".to_owned(),
        organization_id[0][0].clone().expect("an organization id"),
    ] {
        assert_ne!(unknown, real);
        let response = app.create_token(&unknown).await;

        response.assert_error(StatusCode::NOT_FOUND, "not_found", "Project not found");
        assert!(response.header("cache-control").is_none());
        assert!(!response.text.contains("ta_live_"), "{}", response.text);
    }
    assert_eq!(app.count_rows("api_tokens").await, 0);
}
