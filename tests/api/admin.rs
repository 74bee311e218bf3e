//! `ADMIN_TOKEN`: when set, the admin routes need it as a bearer token; a
//! project token is not an admin token and the admin token is not a project
//! token. When unset, the admin routes are open.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, run_body};

backend_tests!(
    admin_routes_without_an_authorization_header_are_401_in_the_envelope,
    admin_routes_with_a_wrong_token_are_401_invalid_token,
    the_admin_token_opens_every_admin_route,
    a_project_token_is_not_an_admin_token,
    the_admin_token_is_not_a_project_token,
    admin_routes_are_open_when_no_admin_token_is_set,
);

/// Shaped like a project token on purpose: the shape must not matter.
const ADMIN_TOKEN: &str =
    "ta_live_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

async fn app_with_admin_token(backend: Backend) -> Option<TestApp> {
    TestApp::with_config(backend, |config| {
        config.admin_token = Some(ADMIN_TOKEN.to_owned().into());
    })
    .await
}

/// One request to each admin route, with whatever ids and bodies it needs.
fn admin_requests(project_id: &str, token_id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/orgs".to_owned(),
            Some(json!({"name": "Globex"})),
        ),
        (
            Method::POST,
            "/projects".to_owned(),
            Some(json!({"organization_id": uuid::Uuid::new_v4(), "name": "p"})),
        ),
        (
            Method::POST,
            "/tokens".to_owned(),
            Some(json!({"project_id": project_id})),
        ),
        (Method::GET, format!("/projects/{project_id}/tokens"), None),
        (Method::DELETE, format!("/tokens/{token_id}"), None),
    ]
}

async fn admin_routes_without_an_authorization_header_are_401_in_the_envelope(backend: Backend) {
    let Some(app) = app_with_admin_token(backend).await else {
        return;
    };
    let project = app.create_project_with_token().await;

    for (method, path, body) in admin_requests(&project.project_id, &project.token_id) {
        let response = app.request(method.clone(), &path, &[], body).await;

        response.assert_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing Authorization header",
        );
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer"),
            "{method} {path}"
        );
    }
    assert_eq!(app.count_rows("organizations").await, 1);
    assert_eq!(app.count_rows("api_tokens").await, 1);
}

async fn admin_routes_with_a_wrong_token_are_401_invalid_token(backend: Backend) {
    let Some(app) = app_with_admin_token(backend).await else {
        return;
    };
    let project = app.create_project_with_token().await;
    let almost = format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    let longer = format!("Bearer {ADMIN_TOKEN}0");

    for wrong in [almost.as_str(), longer.as_str(), "Bearer admin"] {
        for (method, path, body) in admin_requests(&project.project_id, &project.token_id) {
            let headers = [("authorization", wrong)];

            let response = app.request(method, &path, &headers, body).await;

            response.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid token");
            assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        }
    }
    let listed = app.list_tokens(&project.project_id).await;
    assert_eq!(listed.body["data"][0]["revoked_at"], Value::Null);
}

async fn the_admin_token_opens_every_admin_route(backend: Backend) {
    let Some(app) = app_with_admin_token(backend).await else {
        return;
    };

    let project = app.create_project_with_token().await;
    let listed = app.list_tokens(&project.project_id).await;
    let revoked = app.revoke_token(&project.token_id).await;

    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["data"][0]["id"], project.token_id.as_str());
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
}

async fn a_project_token_is_not_an_admin_token(backend: Backend) {
    let Some(app) = app_with_admin_token(backend).await else {
        return;
    };
    let project = app.create_project_with_token().await;
    let bearer = format!("Bearer {}", project.token);

    for (method, path, body) in admin_requests(&project.project_id, &project.token_id) {
        let headers = [("authorization", bearer.as_str())];

        let response = app.request(method, &path, &headers, body).await;

        response.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid token");
    }
    let ingested = app
        .ingest(&project.token, run_body(&uuid::Uuid::new_v4().to_string()))
        .await;
    assert_eq!(ingested.status, StatusCode::CREATED, "{}", ingested.text);
}

async fn the_admin_token_is_not_a_project_token(backend: Backend) {
    let Some(app) = app_with_admin_token(backend).await else {
        return;
    };
    app.create_project_with_token().await;

    let response = app
        .ingest(ADMIN_TOKEN, run_body(&uuid::Uuid::new_v4().to_string()))
        .await;

    response.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid token");
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn admin_routes_are_open_when_no_admin_token_is_set(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    assert!(app.state.config.admin_token.is_none());

    let org = app
        .request(Method::POST, "/orgs", &[], Some(json!({"name": "Open"})))
        .await;
    let project = app.create_project_with_token().await;
    let listed = app
        .request(
            Method::GET,
            &format!("/projects/{}/tokens", project.project_id),
            &[],
            None,
        )
        .await;
    let revoked = app
        .request(
            Method::DELETE,
            &format!("/tokens/{}", project.token_id),
            &[],
            None,
        )
        .await;

    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text);
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
}
