//! `POST /orgs` (SPEC section 3): creation, name rules, global uniqueness.

use axum::http::StatusCode;
use serde_json::json;

use crate::backend_tests;
use crate::formats::{is_lowercase_uuid, is_utc_millis, seconds_ago};
use crate::helpers::Backend;

backend_tests!(
    creating_an_org_returns_201_with_its_id_name_and_creation_time,
    org_names_are_trimmed_and_may_hold_200_characters,
    org_name_is_required,
    org_name_must_be_a_string,
    org_name_must_not_be_empty_after_trimming,
    org_name_of_201_characters_is_rejected,
    org_name_counts_characters_not_bytes,
    a_second_org_with_the_same_name_is_409_and_stores_nothing,
    org_names_differing_in_case_or_spacing_inside_are_distinct,
    unknown_fields_in_an_org_body_are_ignored,
);

async fn creating_an_org_returns_201_with_its_id_name_and_creation_time(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = app.create_org("Acme Corp").await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.body.as_object().expect("an object");
    assert_eq!(
        body.keys().collect::<Vec<_>>(),
        ["id", "name", "created_at"],
        "{}",
        response.text
    );
    assert!(is_lowercase_uuid(response.str("id")), "{}", response.text);
    assert_eq!(response.str("name"), "Acme Corp");
    assert!(
        is_utc_millis(response.str("created_at")),
        "{}",
        response.text
    );
    assert!(seconds_ago(response.str("created_at")).abs() < 60);
    assert_eq!(app.count_rows("organizations").await, 1);
}

async fn org_names_are_trimmed_and_may_hold_200_characters(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let longest = "n".repeat(200);

    let trimmed = app.create_org("  \t Acme Corp \n ").await;
    let long = app.create_org(&format!("  {longest}  ")).await;

    assert_eq!(trimmed.status, StatusCode::CREATED, "{}", trimmed.text);
    assert_eq!(trimmed.str("name"), "Acme Corp");
    assert_eq!(long.status, StatusCode::CREATED, "{}", long.text);
    assert_eq!(long.str("name"), longest);
}

async fn org_name_is_required(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = app.post_json("/orgs", json!({})).await;

    assert_name_rejected(&response, "is required");
    assert_eq!(app.count_rows("organizations").await, 0);
}

async fn org_name_must_be_a_string(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    for name in [json!(42), json!(true), json!(["Acme"]), json!({"n": 1})] {
        let response = app.post_json("/orgs", json!({ "name": name })).await;

        assert_name_rejected(&response, "must be a string");
    }
    // A JSON null is no value at all: the field counts as missing.
    let null = app.post_json("/orgs", json!({ "name": null })).await;
    assert_name_rejected(&null, "is required");
    assert_eq!(app.count_rows("organizations").await, 0);
}

async fn org_name_must_not_be_empty_after_trimming(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    for name in ["", " ", " \t\n "] {
        let response = app.create_org(name).await;

        assert_name_rejected(&response, "must not be empty");
    }
    assert_eq!(app.count_rows("organizations").await, 0);
}

async fn org_name_of_201_characters_is_rejected(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = app.create_org(&"n".repeat(201)).await;

    assert_name_rejected(&response, "must be at most 200 characters");
    assert_eq!(app.count_rows("organizations").await, 0);
}

async fn org_name_counts_characters_not_bytes(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let fits = app.create_org(&"é".repeat(200)).await;
    let too_long = app.create_org(&"é".repeat(201)).await;

    assert_eq!(fits.status, StatusCode::CREATED, "{}", fits.text);
    assert_name_rejected(&too_long, "must be at most 200 characters");
}

async fn a_second_org_with_the_same_name_is_409_and_stores_nothing(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let first = app.create_org("Acme Corp").await;

    let second = app.create_org("Acme Corp").await;
    let after_trimming = app.create_org("  Acme Corp  ").await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    for response in [second, after_trimming] {
        response.assert_error(
            StatusCode::CONFLICT,
            "conflict",
            "An organization with this name already exists",
        );
        assert_eq!(response.body["error"]["details"], json!([]));
    }
    assert_eq!(app.count_rows("organizations").await, 1);
}

async fn org_names_differing_in_case_or_spacing_inside_are_distinct(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let statuses = [
        app.create_org("Acme Corp").await.status,
        app.create_org("acme corp").await.status,
        app.create_org("Acme  Corp").await.status,
    ];

    assert_eq!(statuses, [StatusCode::CREATED; 3]);
    assert_eq!(app.count_rows("organizations").await, 3);
}

async fn unknown_fields_in_an_org_body_are_ignored(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = app
        .post_json(
            "/orgs",
            json!({"name": "Acme", "id": "00000000-0000-4000-8000-000000000000", "x": [1]}),
        )
        .await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_ne!(response.str("id"), "00000000-0000-4000-8000-000000000000");
}

/// A `400` whose only detail is `name` with `message`.
fn assert_name_rejected(response: &crate::helpers::TestResponse, message: &str) {
    response.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(
        response.body["error"]["details"],
        json!([{ "field": "name", "message": message }]),
        "{}",
        response.text
    );
}
