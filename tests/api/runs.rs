//! `GET /runs`, `GET /runs/{run_id}` and `GET /stats`: examples of each
//! contract, every `400`, and isolation between projects.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestResponse, run_body};

backend_tests!(
    get_run_returns_the_run_exactly_as_ingest_returned_it,
    get_run_is_the_same_404_whether_or_not_another_project_has_the_run,
    get_run_with_a_run_id_that_is_not_a_uuid_is_400_naming_run_id,
    every_read_route_is_401_without_a_valid_token,
    list_runs_returns_pages_of_50_by_default_newest_first,
    list_runs_orders_by_the_instant_not_by_the_submitted_text,
    list_runs_rejects_each_malformed_parameter_naming_it,
    list_runs_lists_every_bad_parameter_at_once,
    list_runs_with_a_bad_percent_encoding_is_400_in_the_envelope,
    stats_rejects_a_malformed_or_backwards_window_naming_the_parameter,
    stats_of_a_project_without_runs_are_zero_with_null_durations,
    stats_count_and_measure_the_runs_of_the_window,
    no_token_reads_another_projects_runs_or_counts,
);

/// `GET path` with the project's bearer token.
pub async fn get_as(app: &TestApp, token: &str, path: &str) -> TestResponse {
    let bearer = format!("Bearer {token}");
    app.request(Method::GET, path, &[("authorization", &bearer)], None)
        .await
}

/// Percent-encodes a query value; enough for RFC 3339 times (`+` offsets) and hex.
pub fn encode_query_value(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace(' ', "%20")
        .replace('&', "%26")
}

/// Ingests a run and returns the stored record; panics unless it is new.
async fn ingest_new(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app.ingest(token, body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body
}

fn run_at(status: &str, duration_ms: u64, timestamp: &str) -> Value {
    json!({
        "run_id": uuid::Uuid::new_v4().to_string(),
        "status": status,
        "duration_ms": duration_ms,
        "timestamp": timestamp,
    })
}

async fn get_run_returns_the_run_exactly_as_ingest_returned_it(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let run_id = "770e8400-e29b-41d4-a716-446655440002";
    let stored = ingest_new(&app, &project.token, run_body(run_id)).await;

    let response = get_as(&app, &project.token, &format!("/runs/{run_id}")).await;
    let uppercase = get_as(
        &app,
        &project.token,
        &format!("/runs/{}", run_id.to_uppercase()),
    )
    .await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body, stored);
    assert_eq!(uppercase.body, stored);
}

async fn get_run_is_the_same_404_whether_or_not_another_project_has_the_run(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let ours = app.create_project_with_token().await;
    let theirs = app.create_project_with_token().await;
    let their_run = "770e8400-e29b-41d4-a716-446655440002";
    ingest_new(&app, &theirs.token, run_body(their_run)).await;
    let nobodys_run = "770e8400-e29b-41d4-a716-446655440003";

    let fetch = |run_id: &'static str| {
        let bearer = format!("Bearer {}", ours.token);
        let app = &app;
        async move {
            let headers = [
                ("authorization", bearer.as_str()),
                ("x-request-id", "req_same"),
            ];
            app.request(Method::GET, &format!("/runs/{run_id}"), &headers, None)
                .await
        }
    };
    let held_elsewhere = fetch(their_run).await;
    let held_nowhere = fetch(nobodys_run).await;

    held_elsewhere.assert_error(StatusCode::NOT_FOUND, "not_found", "Run not found");
    assert_eq!(held_elsewhere.text, held_nowhere.text);
    assert_eq!(held_elsewhere.headers, held_nowhere.headers);
}

async fn get_run_with_a_run_id_that_is_not_a_uuid_is_400_naming_run_id(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    for path in [
        "/runs/not-a-uuid",
        "/runs/770e8400e29b41d4a716446655440002",
        "/runs/%FF",
    ] {
        let response = get_as(&app, &project.token, path).await;

        response.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Validation failed",
        );
        assert_eq!(response.detail_fields(), ["run_id"], "{path}");
    }
}

async fn every_read_route_is_401_without_a_valid_token(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let run_path = "/runs/770e8400-e29b-41d4-a716-446655440002";

    for path in ["/runs", run_path, "/stats", "/runs?limit=0"] {
        let missing = app.request(Method::GET, path, &[], None).await;
        let unknown = get_as(&app, &format!("ta_live_{}", "0".repeat(64)), path).await;

        missing.assert_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing Authorization header",
        );
        unknown.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid token");
        assert_eq!(unknown.header("www-authenticate"), Some("Bearer"));
    }
}

async fn list_runs_returns_pages_of_50_by_default_newest_first(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let mut stored = Vec::new();
    for minute in 0..51 {
        let timestamp = format!("2026-01-12T10:{minute:02}:00Z");
        stored.push(ingest_new(&app, &project.token, run_at("passed", 1, &timestamp)).await);
    }
    stored.reverse();

    let first = get_as(&app, &project.token, "/runs").await;
    let cursor = first.str("next_cursor").to_owned();
    let second = get_as(&app, &project.token, &format!("/runs?cursor={cursor}")).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["data"].as_array().unwrap(), &stored[..50]);
    assert_eq!(second.body["data"].as_array().unwrap(), &stored[50..]);
    assert_eq!(second.body["next_cursor"], Value::Null);
}

async fn list_runs_orders_by_the_instant_not_by_the_submitted_text(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    // As text, the first sorts last; as instants it is the earliest.
    let earliest = ingest_new(
        &app,
        &project.token,
        run_at("passed", 1, "2026-01-12T11:00:00+02:00"),
    )
    .await;
    let latest = ingest_new(
        &app,
        &project.token,
        run_at("failed", 2, "2026-01-12T09:30:00.5Z"),
    )
    .await;
    let middle = ingest_new(
        &app,
        &project.token,
        run_at("passed", 3, "2026-01-12T04:15:00-05:00"),
    )
    .await;

    let response = get_as(&app, &project.token, "/runs").await;

    assert_eq!(response.body["data"], json!([latest, middle, earliest]));
    assert_eq!(response.body["next_cursor"], Value::Null);
}

async fn list_runs_rejects_each_malformed_parameter_naming_it(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let good_cursor = "00064849a9e6c800019bb1e3d8a37a1b9d2b4fa8e9a6a0c1";

    let cases = [
        ("status=ok", "status"),
        ("status=", "status"),
        ("status=PASSED", "status"),
        ("status=passed&status=failed", "status"),
        ("from=2026-01-12", "from"),
        ("from=2026-01-12T10:00:00", "from"),
        ("from=2026-13-45T99:00:00Z", "from"),
        ("from=", "from"),
        ("to=yesterday", "to"),
        ("to=2026-01-12T10:00:00+02:00", "to"),
        ("from=2026-01-12T10:00:00Z&to=2026-01-12T09:59:59Z", "to"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=abc", "limit"),
        ("limit=", "limit"),
        ("limit=10&limit=20", "limit"),
        ("cursor=", "cursor"),
        ("cursor=zz", "cursor"),
        ("cursor=00064849a9e6c800", "cursor"),
        (
            "cursor=00064849a9e6c800019bb1e3d8a37a1b9d2b4fa8e9a6a0c10",
            "cursor",
        ),
        (
            "cursor=g0064849a9e6c800019bb1e3d8a37a1b9d2b4fa8e9a6a0c1",
            "cursor",
        ),
    ];
    for (query, field) in cases {
        let response = get_as(&app, &project.token, &format!("/runs?{query}")).await;

        response.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Validation failed",
        );
        assert_eq!(response.detail_fields(), [field], "{query}");
    }
    let accepted = get_as(
        &app,
        &project.token,
        &format!("/runs?cursor={good_cursor}&limit=500&status=failed&unknown=1"),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
}

async fn list_runs_lists_every_bad_parameter_at_once(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    let response = get_as(
        &app,
        &project.token,
        "/runs?cursor=x&limit=0&to=now&from=then&status=ok",
    )
    .await;

    response.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(
        response.detail_fields(),
        ["status", "from", "to", "limit", "cursor"]
    );
}

async fn list_runs_with_a_bad_percent_encoding_is_400_in_the_envelope(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    let response = get_as(&app, &project.token, "/runs?status=%FF%FE").await;

    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text
    );
    assert_eq!(response.body["error"]["code"], "invalid_request");
}

async fn stats_rejects_a_malformed_or_backwards_window_naming_the_parameter(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    let cases: [(&str, &[&str]); 6] = [
        ("from=2026-01-12", &["from"]),
        ("to=2026-01-12T10:00:00", &["to"]),
        ("from=x&to=y", &["from", "to"]),
        (
            "from=2026-01-12T10:00:00Z&from=2026-01-12T11:00:00Z",
            &["from"],
        ),
        ("from=2026-01-12T10:00:00Z&to=2026-01-12T09:00:00Z", &["to"]),
        ("to=", &["to"]),
    ];
    for (query, fields) in cases {
        let response = get_as(&app, &project.token, &format!("/stats?{query}")).await;

        response.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Validation failed",
        );
        assert_eq!(response.detail_fields(), fields, "{query}");
    }
}

async fn stats_of_a_project_without_runs_are_zero_with_null_durations(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;

    let response = get_as(&app, &project.token, "/stats").await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(
        response.body,
        json!({
            "total": 0, "passed": 0, "failed": 0, "pass_rate": 0.0,
            "duration_ms": {"avg": null, "p50": null, "p95": null, "max": null},
        })
    );
}

async fn stats_count_and_measure_the_runs_of_the_window(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    for (status, duration_ms, timestamp) in [
        ("passed", 100, "2026-01-12T09:59:59.999Z"),
        ("passed", 10, "2026-01-12T10:00:00Z"),
        ("failed", 40, "2026-01-12T10:30:00Z"),
        ("passed", 20, "2026-01-12T12:59:00+02:00"),
        ("passed", 30, "2026-01-12T11:00:00Z"),
    ] {
        ingest_new(&app, &project.token, run_at(status, duration_ms, timestamp)).await;
    }

    let window = format!(
        "/stats?from={}&to={}",
        encode_query_value("2026-01-12T12:00:00+02:00"),
        encode_query_value("2026-01-12T11:00:00Z"),
    );
    let response = get_as(&app, &project.token, &window).await;

    // From 10:00 (inclusive) to 11:00 (exclusive): durations 10, 20, 40.
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(
        response.body,
        json!({
            "total": 3, "passed": 2, "failed": 1, "pass_rate": 2.0 / 3.0,
            "duration_ms": {"avg": 70.0 / 3.0, "p50": 20, "p95": 40, "max": 40},
        })
    );
}

async fn no_token_reads_another_projects_runs_or_counts(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let ours = app.create_project_with_token().await;
    let theirs = app.create_project_with_token().await;
    let our_run = ingest_new(
        &app,
        &ours.token,
        run_at("passed", 5, "2026-01-12T09:00:00Z"),
    )
    .await;
    let their_run = ingest_new(
        &app,
        &theirs.token,
        run_at("failed", 9, "2026-01-12T10:00:00Z"),
    )
    .await;
    ingest_new(
        &app,
        &theirs.token,
        run_at("failed", 9, "2026-01-12T11:00:00Z"),
    )
    .await;
    let their_run_path = format!("/runs/{}", their_run["run_id"].as_str().unwrap());

    let our_page = get_as(&app, &ours.token, "/runs?limit=500").await;
    let our_stats = get_as(&app, &ours.token, "/stats").await;
    let their_run_through_our_token = get_as(&app, &ours.token, &their_run_path).await;
    let their_first_page = get_as(&app, &theirs.token, "/runs?limit=1").await;
    let their_cursor = their_first_page.str("next_cursor");
    let our_page_from_their_cursor =
        get_as(&app, &ours.token, &format!("/runs?cursor={their_cursor}")).await;

    assert_eq!(our_page.body["data"], json!([our_run]));
    assert_eq!(our_stats.body["total"], 1);
    assert_eq!(our_stats.body["failed"], 0);
    assert_eq!(our_stats.body["duration_ms"]["max"], 5);
    their_run_through_our_token.assert_error(StatusCode::NOT_FOUND, "not_found", "Run not found");
    assert_eq!(our_page_from_their_cursor.body["data"], json!([our_run]));
}
