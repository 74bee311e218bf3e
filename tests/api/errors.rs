//! The framework's own rejections (SPEC section 4) in the same envelope as
//! every other error: bad JSON, wrong content type, unknown route, wrong
//! method, oversized body.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestResponse};

backend_tests!(
    malformed_json_is_400_in_the_envelope,
    a_body_that_is_not_a_json_object_is_400,
    a_body_without_a_json_content_type_is_415,
    a_json_content_type_with_a_charset_is_accepted,
    an_unknown_route_is_404_in_the_envelope,
    a_wrong_method_is_405_and_keeps_the_allow_header,
    a_body_over_one_mebibyte_is_413_whether_or_not_its_length_is_declared,
    a_body_of_exactly_the_limit_is_read,
    duplicate_keys_are_400_naming_each_repeated_field,
    admin_routes_reject_bad_json_the_same_way,
);

/// `method path` with raw body bytes and an optional content type.
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> TestResponse {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    app.send(builder.body(body.into()).expect("a valid request"))
        .await
}

fn assert_plain_error(response: &TestResponse, status: StatusCode, code: &str, message: &str) {
    response.assert_error(status, code, message);
    assert_eq!(
        response.body["error"]["details"],
        json!([]),
        "{}",
        response.text
    );
    let keys: Vec<_> = response.body["error"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["code", "message", "request_id", "details"]);
}

const JSON: Option<&str> = Some("application/json");

async fn malformed_json_is_400_in_the_envelope(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    for body in [
        &b"{\"name\": "[..],
        b"{name: 'Acme'}",
        b"",
        b"{\"name\": \"Acme\"} trailing",
        b"{\"name\": \"\xff\xfe\"}",
    ] {
        let response = send_raw(&app, Method::POST, "/orgs", JSON, body.to_vec()).await;

        assert_plain_error(
            &response,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Request body is not valid JSON",
        );
    }
    assert_eq!(app.count_rows("organizations").await, 0);
}

async fn a_body_that_is_not_a_json_object_is_400(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    for body in [
        r#"[{"name": "Acme"}]"#,
        r#"["Acme"]"#,
        r#""Acme""#,
        "42",
        "null",
        "true",
    ] {
        let response = send_raw(&app, Method::POST, "/orgs", JSON, body).await;

        assert_plain_error(
            &response,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Request body must be a JSON object",
        );
    }
    assert_eq!(app.count_rows("organizations").await, 0);
}

async fn a_body_without_a_json_content_type_is_415(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let body = r#"{"name": "Acme"}"#;

    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let response = send_raw(&app, Method::POST, "/orgs", content_type, body).await;

        assert_plain_error(
            &response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Request body must be sent with Content-Type: application/json",
        );
    }
    assert_eq!(app.count_rows("organizations").await, 0);
}

async fn a_json_content_type_with_a_charset_is_accepted(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = send_raw(
        &app,
        Method::POST,
        "/orgs",
        Some("application/json; charset=utf-8"),
        r#"{"name": "Acme"}"#,
    )
    .await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
}

async fn an_unknown_route_is_404_in_the_envelope(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/nope"),
        (Method::POST, "/orgs/extra"),
        (Method::POST, "/ingest/"),
    ] {
        let response = app.request(method, path, &[], None).await;

        assert_plain_error(
            &response,
            StatusCode::NOT_FOUND,
            "not_found",
            "No route matches this path",
        );
    }
}

async fn a_wrong_method_is_405_and_keeps_the_allow_header(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    for (method, path) in [
        (Method::GET, "/orgs"),
        (Method::PUT, "/projects"),
        (Method::DELETE, "/tokens"),
        (Method::GET, "/ingest"),
        (Method::PATCH, "/ingest"),
    ] {
        let response = app.request(method, path, &[], None).await;

        assert_plain_error(
            &response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This route does not accept that method",
        );
        let allow = response.header("allow").expect("an Allow header");
        assert!(
            allow.split(',').any(|m| m.trim() == "POST"),
            "{path}: Allow: {allow}"
        );
    }
}

/// A JSON object of `size` bytes: `{"name": "Acme", "pad": "xxx…"}`.
fn object_of_size(size: usize) -> String {
    let frame = r#"{"name": "Acme", "pad": ""}"#.len();
    format!(
        r#"{{"name": "Acme", "pad": "{}"}}"#,
        "x".repeat(size - frame)
    )
}

async fn a_body_over_one_mebibyte_is_413_whether_or_not_its_length_is_declared(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let oversized = object_of_size(1024 * 1024 + 1);

    let declared = Request::builder()
        .method(Method::POST)
        .uri("/orgs")
        .header("content-type", "application/json")
        .header("content-length", oversized.len())
        .body(Body::from(oversized.clone()))
        .unwrap();
    let declared = app.send(declared).await;
    let streamed = send_raw(&app, Method::POST, "/orgs", JSON, oversized).await;

    for response in [declared, streamed] {
        assert_plain_error(
            &response,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Request body is larger than the limit",
        );
    }
    assert_eq!(app.count_rows("organizations").await, 0);
}

async fn a_body_of_exactly_the_limit_is_read(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let body = object_of_size(1024 * 1024);

    let response = send_raw(&app, Method::POST, "/orgs", JSON, body).await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
}

async fn duplicate_keys_are_400_naming_each_repeated_field(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let bearer = format!("Bearer {}", project.token);
    let body = r#"{"run_id": "770e8400-e29b-41d4-a716-446655440002", "status": "failed",
        "duration_ms": 1, "timestamp": "2026-01-12T10:10:00Z", "status": "passed",
        "duration_ms": 2, "status": "failed"}"#;

    let ingest = Request::builder()
        .method(Method::POST)
        .uri("/ingest")
        .header("content-type", "application/json")
        .header("authorization", &bearer)
        .body(Body::from(body))
        .unwrap();
    let ingest = app.send(ingest).await;
    let org = send_raw(
        &app,
        Method::POST,
        "/orgs",
        JSON,
        r#"{"name": "A", "name": "B"}"#,
    )
    .await;

    ingest.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(
        ingest.body["error"]["details"],
        json!([
            { "field": "status", "message": "must appear only once" },
            { "field": "duration_ms", "message": "must appear only once" },
        ])
    );
    org.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(
        org.body["error"]["details"],
        json!([{ "field": "name", "message": "must appear only once" }])
    );
    assert_eq!(app.count_rows("test_runs").await, 0);
    assert_eq!(app.count_rows("organizations").await, 1);
}

async fn admin_routes_reject_bad_json_the_same_way(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    for path in ["/projects", "/tokens"] {
        let malformed = send_raw(&app, Method::POST, path, JSON, "{").await;
        let array = send_raw(&app, Method::POST, path, JSON, "[]").await;
        let untyped = send_raw(&app, Method::POST, path, None, "{}").await;

        assert_plain_error(
            &malformed,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Request body is not valid JSON",
        );
        assert_plain_error(
            &array,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Request body must be a JSON object",
        );
        assert_eq!(
            untyped.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{}",
            untyped.text
        );
    }
}
