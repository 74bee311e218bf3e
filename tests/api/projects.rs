//! `POST /projects` (SPEC section 3): creation, field rules, the owning
//! organization, and names unique within an organization only.

use axum::http::StatusCode;
use serde_json::json;

use crate::backend_tests;
use crate::formats::{is_lowercase_uuid, is_utc_millis};
use crate::helpers::{Backend, TestApp};

backend_tests!(
    creating_a_project_returns_201_with_its_fields,
    project_name_follows_the_org_name_rules,
    organization_id_is_stored_lowercase_whatever_its_case,
    a_missing_or_non_uuid_organization_id_is_400_not_404,
    every_bad_project_field_is_listed,
    an_unknown_organization_is_404_and_stores_nothing,
    the_same_project_name_twice_in_one_org_is_409,
    the_same_project_name_in_another_org_is_allowed,
);

async fn org_id(app: &TestApp, name: &str) -> String {
    let org = app.create_org(name).await;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text);
    org.str("id").to_owned()
}

async fn creating_a_project_returns_201_with_its_fields(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let organization_id = org_id(&app, "Acme").await;

    let response = app.create_project(&organization_id, "  Backend API ").await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let body = response.body.as_object().expect("an object");
    assert_eq!(
        body.keys().collect::<Vec<_>>(),
        ["id", "organization_id", "name", "created_at"]
    );
    assert!(is_lowercase_uuid(response.str("id")), "{}", response.text);
    assert_eq!(response.str("organization_id"), organization_id);
    assert_eq!(response.str("name"), "Backend API");
    assert!(
        is_utc_millis(response.str("created_at")),
        "{}",
        response.text
    );
    assert_eq!(app.count_rows("projects").await, 1);
}

async fn project_name_follows_the_org_name_rules(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let organization_id = org_id(&app, "Acme").await;
    let cases = [
        (None, "is required"),
        (Some(json!(7)), "must be a string"),
        (Some(json!(null)), "is required"),
        (Some(json!("   ")), "must not be empty"),
        (
            Some(json!("p".repeat(201))),
            "must be at most 200 characters",
        ),
    ];

    for (name, message) in cases {
        let mut body = json!({ "organization_id": organization_id });
        if let Some(name) = name {
            body["name"] = name;
        }
        let response = app.post_json("/projects", body).await;

        response.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Validation failed",
        );
        assert_eq!(
            response.body["error"]["details"],
            json!([{ "field": "name", "message": message }])
        );
    }
    let longest = app.create_project(&organization_id, &"p".repeat(200)).await;
    assert_eq!(longest.status, StatusCode::CREATED, "{}", longest.text);
    assert_eq!(app.count_rows("projects").await, 1);
}

async fn organization_id_is_stored_lowercase_whatever_its_case(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let organization_id = org_id(&app, "Acme").await;

    let response = app
        .create_project(&organization_id.to_uppercase(), "Backend")
        .await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.str("organization_id"), organization_id);
}

async fn a_missing_or_non_uuid_organization_id_is_400_not_404(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let cases = [
        (None, "is required"),
        (Some(json!("not-a-uuid")), "must be a UUID"),
        (
            Some(json!("550e8400e29b41d4a716446655440000")),
            "must be a UUID",
        ),
        (
            Some(json!("{550e8400-e29b-41d4-a716-446655440000}")),
            "must be a UUID",
        ),
        (
            Some(json!("550e8400-e29b-41d4-a716-44665544000g")),
            "must be a UUID",
        ),
        (Some(json!(12345)), "must be a UUID string"),
        (Some(json!(null)), "is required"),
    ];

    for (organization_id, message) in cases {
        let mut body = json!({ "name": "Backend" });
        if let Some(id) = organization_id {
            body["organization_id"] = id;
        }
        let response = app.post_json("/projects", body).await;

        response.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Validation failed",
        );
        assert_eq!(
            response.body["error"]["details"],
            json!([{ "field": "organization_id", "message": message }]),
            "{}",
            response.text
        );
    }
    assert_eq!(app.count_rows("projects").await, 0);
}

async fn every_bad_project_field_is_listed(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = app
        .post_json("/projects", json!({"organization_id": "nope", "name": ""}))
        .await;

    response.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(
        response.body["error"]["details"],
        json!([
            { "field": "organization_id", "message": "must be a UUID" },
            { "field": "name", "message": "must not be empty" },
        ])
    );
}

async fn an_unknown_organization_is_404_and_stores_nothing(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    org_id(&app, "Acme").await;

    let response = app
        .create_project("550e8400-e29b-41d4-a716-446655440000", "Backend")
        .await;

    response.assert_error(StatusCode::NOT_FOUND, "not_found", "Organization not found");
    assert_eq!(response.body["error"]["details"], json!([]));
    assert_eq!(app.count_rows("projects").await, 0);
}

async fn the_same_project_name_twice_in_one_org_is_409(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let organization_id = org_id(&app, "Acme").await;
    let first = app.create_project(&organization_id, "Backend").await;

    let second = app.create_project(&organization_id, " Backend ").await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    second.assert_error(
        StatusCode::CONFLICT,
        "conflict",
        "This organization already has a project with this name",
    );
    assert_eq!(app.count_rows("projects").await, 1);
}

async fn the_same_project_name_in_another_org_is_allowed(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let acme = org_id(&app, "Acme").await;
    let globex = org_id(&app, "Globex").await;

    let first = app.create_project(&acme, "Backend").await;
    let second = app.create_project(&globex, "Backend").await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert_ne!(first.str("id"), second.str("id"));
    assert_eq!(second.str("organization_id"), globex);
    assert_eq!(app.count_rows("projects").await, 2);
}
