//! Hostile input: whatever bytes arrive, on whatever route, with whatever
//! headers, the answer is never a 5xx and every error is the envelope.
//! A proptest over raw bytes and arbitrary JSON, then the classic attacks one
//! by one: oversized and non-ASCII `Authorization`, unknown tokens of the
//! right shape, huge integers, deep nesting, repeated keys, NUL bytes.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestResponse, run_body};

backend_tests!(
    arbitrary_requests_on_every_route_never_get_a_5xx_and_errors_are_the_envelope,
    oversized_and_non_ascii_authorization_headers_are_401,
    a_well_shaped_token_that_does_not_exist_is_401_invalid_token,
    huge_integers_are_400_not_500,
    deeply_nested_json_is_400,
    duplicate_json_keys_are_400_naming_each_repeated_field,
    nul_bytes_in_names_and_fields_are_400_not_500,
);

/// Every route of the service, and some that are not.
const PATHS: [&str; 14] = [
    "/orgs",
    "/projects",
    "/tokens",
    "/ingest",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/runs",
    "/runs/770e8400-e29b-41d4-a716-446655440002",
    "/stats?from=x&to=%00",
    "/projects/00000000-0000-0000-0000-000000000000/tokens",
    "/tokens/not-a-uuid",
    "/",
];

/// The fields the request bodies read, so arbitrary values land on them.
const FIELDS: [&str; 8] = [
    "name",
    "organization_id",
    "project_id",
    "run_id",
    "status",
    "duration_ms",
    "timestamp",
    "",
];

/// One generated request.
#[derive(Clone, Debug)]
struct Attempt {
    method: Method,
    path: String,
    content_type: Option<String>,
    authorization: Option<Vec<u8>>,
    body: Vec<u8>,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("550e8400-e29b-41d4-a716-446655440000")),
        Just(json!("2026-01-12T10:10:00Z")),
        Just(json!("passed")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,12}", inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A JSON object whose keys are the API's field names.
fn field_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(&FIELDS[..]), json_value()), 0..8).prop_map(
        |pairs| {
            Value::Object(
                pairs
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect(),
            )
        },
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|value| value.to_string().into_bytes()),
        field_object().prop_map(|value| value.to_string().into_bytes()),
    ]
}

fn attempt(token: String) -> impl Strategy<Value = Attempt> {
    let method = prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ]);
    let path = prop_oneof![
        prop::sample::select(&PATHS[..]).prop_map(str::to_owned),
        "/[a-zA-Z0-9_.~%-]{0,30}(/[a-zA-Z0-9_.~%-]{0,30}){0,3}",
    ];
    let content_type = prop::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("application/json; charset=utf-8".to_owned()),
        "[ -~]{0,30}",
    ]);
    let authorization = prop::option::of(prop_oneof![
        Just(format!("Bearer {token}").into_bytes()),
        "Bearer ta_live_[0-9a-f]{64}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..100).prop_map(|bytes| bytes
            .into_iter()
            .filter(|b| *b >= 0x20 && *b != 0x7f)
            .collect()),
    ]);
    (method, path, content_type, authorization, body()).prop_map(
        |(method, path, content_type, authorization, body)| Attempt {
            method,
            path,
            content_type,
            authorization,
            body,
        },
    )
}

/// Asserts the response is no 5xx, holds neither the token nor its hash, and
/// is an envelope whenever it is an error (a `HEAD` answer carries no body,
/// as HTTP requires, so only its status counts).
fn check(
    method: &Method,
    response: &TestResponse,
    secrets: &[String],
) -> Result<(), TestCaseError> {
    prop_assert!(
        response.status.as_u16() < 500,
        "{} {}",
        response.status,
        response.text
    );
    for secret in secrets {
        prop_assert!(
            !response.text.contains(secret.as_str()),
            "a secret leaked: {}",
            response.text
        );
    }
    prop_assert!(response.header("x-request-id").is_some());
    if response.status.is_client_error() && method != Method::HEAD {
        let error = &response.body["error"];
        prop_assert!(error["code"].is_string(), "{}", response.text);
        prop_assert!(error["message"].is_string(), "{}", response.text);
        prop_assert!(error["details"].is_array(), "{}", response.text);
        prop_assert_eq!(
            error["request_id"].as_str(),
            response.header("x-request-id")
        );
    }
    Ok(())
}

/// The SHA-256 hex digest of a token, as the service stores it.
fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

async fn send(app: &TestApp, attempt: &Attempt) -> TestResponse {
    let mut builder = Request::builder()
        .method(attempt.method.clone())
        .uri(attempt.path.as_str());
    if let Some(content_type) = &attempt.content_type {
        builder = builder.header("content-type", content_type.as_str());
    }
    if let Some(authorization) = &attempt.authorization
        && let Ok(value) = HeaderValue::from_bytes(authorization)
    {
        builder = builder.header("authorization", value);
    }
    let request = builder
        .body(Body::from(attempt.body.clone()))
        .expect("a valid request");
    app.send(request).await
}

async fn arbitrary_requests_on_every_route_never_get_a_5xx_and_errors_are_the_envelope(
    backend: Backend,
) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let cases = std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let runtime = tokio::runtime::Handle::current();
    let secrets = [project.token.clone(), token_hash(&project.token)];

    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let failure = tokio::task::block_in_place(|| {
        runner
            .run(&attempt(project.token.clone()), |attempt| {
                let response = runtime.block_on(send(&app, &attempt));
                check(&attempt.method, &response, &secrets)
            })
            .err()
            .map(|failure| failure.to_string())
    });

    assert!(failure.is_none(), "{}", failure.unwrap_or_default());
}

async fn oversized_and_non_ascii_authorization_headers_are_401(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let oversized = format!("Bearer ta_live_{}", "a".repeat(100_000));
    let values = [
        HeaderValue::from_str(&oversized).expect("a header value"),
        HeaderValue::from_bytes("Bearer ta_live_é€".as_bytes()).expect("a header value"),
        HeaderValue::from_bytes(&[b'B', 0xff, 0xfe, b' ', 0x80]).expect("a header value"),
    ];

    for value in values {
        let request = Request::post("/ingest")
            .header("content-type", "application/json")
            .header("authorization", value)
            .body(Body::from(
                run_body("770e8400-e29b-41d4-a716-446655440002").to_string(),
            ))
            .expect("a valid request");
        let response = app.send(request).await;

        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            response.text
        );
        assert_eq!(response.body["error"]["code"], "unauthorized");
        assert!(!response.text.contains("ta_live_a"), "{}", response.text);
    }
}

async fn a_well_shaped_token_that_does_not_exist_is_401_invalid_token(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    app.create_project_with_token().await;

    let unknown = format!("ta_live_{}", "ab".repeat(32));
    let response = app
        .ingest(&unknown, run_body("770e8400-e29b-41d4-a716-446655440002"))
        .await;

    response.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid token");
    assert_eq!(app.count_rows("test_runs").await, 0);
}

/// A raw body sent to `path`, with a token when given.
async fn post_raw(app: &TestApp, path: &str, token: Option<&str>, body: String) -> TestResponse {
    let mut builder = Request::post(path).header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    app.send(builder.body(Body::from(body)).expect("a valid request"))
        .await
}

async fn huge_integers_are_400_not_500(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    for huge in [
        "1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "9007199254740992",
        "123456789012345678901234567890123456789012345678901234567890",
    ] {
        let run_id = uuid::Uuid::new_v4();
        let body = format!(
            "{{\"run_id\":\"{run_id}\",\"status\":\"passed\",\"duration_ms\":{huge},\
             \"timestamp\":\"2026-01-12T10:10:00Z\"}}"
        );
        let response = post_raw(&app, "/ingest", Some(&project.token), body).await;

        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{huge}: {}",
            response.text
        );
        assert_eq!(response.body["error"]["code"], "invalid_request");
    }
    let name = post_raw(&app, "/orgs", None, r#"{"name": 1e999999}"#.to_owned()).await;
    assert_eq!(name.status, StatusCode::BAD_REQUEST, "{}", name.text);
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn deeply_nested_json_is_400(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    for depth in [200, 100_000] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let as_body = post_raw(&app, "/orgs", None, nested.clone()).await;
        let as_field = post_raw(
            &app,
            "/ingest",
            Some(&project.token),
            format!(r#"{{"run_id": {nested}}}"#),
        )
        .await;

        for response in [as_body, as_field] {
            assert_eq!(
                response.status,
                StatusCode::BAD_REQUEST,
                "{depth}: {}",
                response.text
            );
            assert_eq!(response.body["error"]["code"], "invalid_request");
        }
    }
}

async fn duplicate_json_keys_are_400_naming_each_repeated_field(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    let org = post_raw(
        &app,
        "/orgs",
        None,
        r#"{"name": 42, "name": "Last"}"#.to_owned(),
    )
    .await;
    let run = post_raw(
        &app,
        "/ingest",
        Some(&project.token),
        r#"{"run_id": "770e8400-e29b-41d4-a716-446655440002", "status": "passed",
            "status": "failed", "duration_ms": 1, "duration_ms": 2,
            "timestamp": "2026-01-12T10:10:00Z"}"#
            .to_owned(),
    )
    .await;

    org.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(org.detail_fields(), ["name"]);
    run.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(run.detail_fields(), ["status", "duration_ms"]);
    assert_eq!(app.count_rows("organizations").await, 1);
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn nul_bytes_in_names_and_fields_are_400_not_500(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let run_id = "770e8400-e29b-41d4-a716-446655440002";

    let org = app.create_org("nul\u{0}org").await;
    let padded = app.create_org("\u{0}").await;
    let project_name = app
        .create_project(&project.organization_id, "nul\u{0}project")
        .await;
    let mut ingests = Vec::new();
    for (field, value) in [
        ("run_id", json!(format!("{run_id}\u{0}"))),
        ("status", json!("passed\u{0}")),
        ("timestamp", json!("2026-01-12T10:10:00Z\u{0}")),
    ] {
        let mut body = run_body(run_id);
        body[field] = value;
        ingests.push(app.ingest(&project.token, body).await);
    }

    for response in [&org, &padded, &project_name].into_iter().chain(&ingests) {
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{}",
            response.text
        );
        assert_eq!(response.body["error"]["code"], "invalid_request");
    }
    assert_eq!(app.count_rows("organizations").await, 1);
    assert_eq!(app.count_rows("test_runs").await, 0);
}
