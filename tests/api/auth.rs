//! Bearer tokens on `POST /ingest` (SPEC section 3): every refusal is a `401`
//! with `WWW-Authenticate: Bearer` and one of three messages that say what to
//! fix without saying which tokens exist.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestResponse, run_body, send_over_socket};

backend_tests!(
    a_missing_authorization_header_is_named_in_the_401,
    a_header_that_is_not_bearer_and_a_token_asks_for_that_form,
    the_bearer_scheme_is_matched_in_any_case,
    unknown_misshapen_and_revoked_tokens_all_get_invalid_token,
    a_token_revoked_through_the_api_gets_invalid_token_from_then_on,
    an_authorization_header_with_non_ascii_bytes_is_401_not_500,
    a_huge_authorization_header_is_401_not_500,
    a_huge_authorization_header_over_a_socket_is_never_a_5xx,
    an_unauthenticated_request_is_refused_before_its_body_is_judged,
);

/// `POST /ingest` with `authorization` set to raw bytes, and a valid body.
async fn ingest_with_authorization(app: &TestApp, value: HeaderValue) -> TestResponse {
    let body = run_body(&uuid::Uuid::new_v4().to_string()).to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/ingest")
        .header("content-type", "application/json")
        .header("authorization", value)
        .body(Body::from(body))
        .expect("a valid request");
    app.send(request).await
}

fn assert_unauthorized(response: &TestResponse, message: &str) {
    response.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    assert_eq!(response.body["error"]["details"], json!([]));
}

const MALFORMED: &str = "Authorization header must be: Bearer <token>";

async fn a_missing_authorization_header_is_named_in_the_401(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    app.create_project_with_token().await;

    let response = app
        .post_json("/ingest", run_body(&uuid::Uuid::new_v4().to_string()))
        .await;

    assert_unauthorized(&response, "Missing Authorization header");
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn a_header_that_is_not_bearer_and_a_token_asks_for_that_form(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let token = &project.token;

    for value in [
        String::new(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        token.clone(),
        format!("Basic {token}"),
        format!("Token {token}"),
        format!("Bearer {token} extra"),
        format!("Bearer: {token}"),
    ] {
        let value = HeaderValue::from_str(&value).expect("a header value");
        let response = ingest_with_authorization(&app, value).await;

        assert_unauthorized(&response, MALFORMED);
    }
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn the_bearer_scheme_is_matched_in_any_case(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    for scheme in ["bearer", "BEARER", "Bearer"] {
        let value = HeaderValue::from_str(&format!("{scheme} {}", project.token)).unwrap();
        let response = ingest_with_authorization(&app, value).await;

        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{scheme}: {}",
            response.text
        );
    }
}

async fn unknown_misshapen_and_revoked_tokens_all_get_invalid_token(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let revoked = app.create_token(&project.project_id).await;
    let revoked = revoked.str("token").to_owned();
    app.execute(&format!(
        "UPDATE api_tokens SET revoked_at = created_at WHERE token_hash = '{}'",
        crate::formats::sha256_hex(&revoked)
    ))
    .await;
    let secret = &project.token["ta_live_".len()..];

    let refused = [
        format!("ta_live_{}", "0".repeat(64)),
        format!("ta_live_{}", secret.to_uppercase()),
        format!("ta_test_{secret}"),
        format!("{}0", project.token),
        project.token[..project.token.len() - 1].to_owned(),
        "ta_live_".to_owned(),
        "x".to_owned(),
        revoked,
    ];
    for token in refused {
        let response = app
            .ingest(&token, run_body(&uuid::Uuid::new_v4().to_string()))
            .await;

        assert_unauthorized(&response, "Invalid token");
        assert!(
            token.len() < 8 || !response.text.contains(&token),
            "{}",
            response.text
        );
    }
    assert_eq!(app.count_rows("test_runs").await, 0);
    let valid = app
        .ingest(&project.token, run_body(&uuid::Uuid::new_v4().to_string()))
        .await;
    assert_eq!(valid.status, StatusCode::CREATED, "{}", valid.text);
}

async fn an_authorization_header_with_non_ascii_bytes_is_401_not_500(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    for bytes in [
        format!("Bearer {}\u{e9}", project.token).into_bytes(),
        b"Bearer \xff\xfe".to_vec(),
        b"\xc3\xa9 token".to_vec(),
    ] {
        let value = HeaderValue::from_bytes(&bytes).expect("obs-text is a valid header value");
        let response = ingest_with_authorization(&app, value).await;

        assert_unauthorized(&response, MALFORMED);
    }
}

async fn a_huge_authorization_header_is_401_not_500(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    app.create_project_with_token().await;

    let huge = format!("Bearer ta_live_{}", "a".repeat(1024 * 1024));
    let response = ingest_with_authorization(&app, HeaderValue::from_str(&huge).unwrap()).await;

    assert_unauthorized(&response, "Invalid token");
    assert!(
        response.text.len() < 1024,
        "the token was echoed: {} bytes",
        response.text.len()
    );
}

async fn a_huge_authorization_header_over_a_socket_is_never_a_5xx(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let server = app.spawn_server().await;
    let body = run_body(&uuid::Uuid::new_v4().to_string());

    let mut statuses = Vec::new();
    for size in [16 * 1024, 64 * 1024] {
        let huge = format!("Bearer ta_live_{}", "a".repeat(size));
        let headers = [("authorization", huge.as_str())];
        let response = send_over_socket(
            server.address,
            Method::POST,
            "/ingest",
            &headers,
            Some(body.clone()),
        )
        .await
        .expect("a response");
        statuses.push(response.status);
    }
    server.stop().await;

    assert_eq!(statuses, [StatusCode::UNAUTHORIZED; 2]);
}

async fn an_unauthenticated_request_is_refused_before_its_body_is_judged(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = app
        .request(
            Method::POST,
            "/ingest",
            &[("authorization", "Bearer nope")],
            Some(json!({"run_id": "x"})),
        )
        .await;

    assert_unauthorized(&response, "Invalid token");
}

async fn a_token_revoked_through_the_api_gets_invalid_token_from_then_on(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let doomed = app.create_token(&project.project_id).await;
    let doomed_token = doomed.str("token").to_owned();
    let before = app
        .ingest(&doomed_token, run_body(&uuid::Uuid::new_v4().to_string()))
        .await;

    let revoked = app
        .request(
            Method::DELETE,
            &format!("/tokens/{}", doomed.str("id")),
            &[],
            None,
        )
        .await;
    let after = app
        .ingest(&doomed_token, run_body(&uuid::Uuid::new_v4().to_string()))
        .await;
    let sibling = app
        .ingest(&project.token, run_body(&uuid::Uuid::new_v4().to_string()))
        .await;

    assert_eq!(before.status, StatusCode::CREATED, "{}", before.text);
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    assert_unauthorized(&after, "Invalid token");
    assert_eq!(sibling.status, StatusCode::CREATED, "{}", sibling.text);
    assert_eq!(app.count_rows("test_runs").await, 2);
}
