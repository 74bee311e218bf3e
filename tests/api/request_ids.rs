//! Request ids (SPEC section 5): generated or kept, and returned in the
//! `X-Request-Id` header and in every error body.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestResponse};

backend_tests!(
    every_response_gets_a_generated_req_id_when_none_is_sent,
    generated_ids_differ_per_request,
    a_well_formed_incoming_request_id_is_kept_in_header_and_error_body,
    a_malformed_or_65_character_request_id_is_replaced,
);

/// `POST /orgs` with the given `X-Request-Id` bytes.
async fn create_org_with_request_id(app: &TestApp, name: &str, id: HeaderValue) -> TestResponse {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/orgs")
        .header("content-type", "application/json")
        .header("x-request-id", id)
        .body(Body::from(json!({ "name": name }).to_string()))
        .expect("a valid request");
    app.send(request).await
}

/// `req_` followed by at least 16 ASCII letters and digits.
fn is_generated_id(id: &str) -> bool {
    id.strip_prefix("req_")
        .is_some_and(|rest| rest.len() >= 16 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

async fn every_response_gets_a_generated_req_id_when_none_is_sent(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let created = app.create_org("Acme").await;
    let conflict = app.create_org("Acme").await;
    let unknown_route = app.request(Method::GET, "/nope", &[], None).await;
    let unauthorized = app.post_json("/ingest", json!({})).await;

    assert_eq!(created.status, StatusCode::CREATED);
    assert!(is_generated_id(created.header("x-request-id").unwrap()));
    for error in [conflict, unknown_route, unauthorized] {
        let id = error.header("x-request-id").expect("an X-Request-Id");
        assert!(is_generated_id(id), "{id}");
        assert_eq!(error.body["error"]["request_id"], id, "{}", error.text);
    }
}

async fn generated_ids_differ_per_request(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let mut ids = Vec::new();
    for _ in 0..20 {
        let response = app.request(Method::GET, "/nope", &[], None).await;
        ids.push(response.header("x-request-id").unwrap().to_owned());
    }

    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}

async fn a_well_formed_incoming_request_id_is_kept_in_header_and_error_body(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let longest = "a".repeat(64);

    for id in [
        "build-42_retry.1",
        "X",
        longest.as_str(),
        "req_ABCDEFGHIJKLMNOPqrst",
    ] {
        let created =
            create_org_with_request_id(&app, id, HeaderValue::from_str(id).unwrap()).await;
        let conflict =
            create_org_with_request_id(&app, id, HeaderValue::from_str(id).unwrap()).await;

        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        assert_eq!(created.header("x-request-id"), Some(id));
        conflict.assert_error(
            StatusCode::CONFLICT,
            "conflict",
            "An organization with this name already exists",
        );
        assert_eq!(
            conflict.body["error"]["request_id"], id,
            "{}",
            conflict.text
        );
    }
    let bad = app
        .request(
            Method::POST,
            "/orgs",
            &[("x-request-id", "ci-7")],
            Some(json!({})),
        )
        .await;
    bad.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(bad.body["error"]["request_id"], "ci-7");
}

async fn a_malformed_or_65_character_request_id_is_replaced(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let too_long = "a".repeat(65);

    for (i, id) in [
        too_long.as_bytes(),
        b"",
        b"has space",
        b"semi;colon",
        b"quote\"d",
        b"slash/ed",
        "caf\u{e9}".as_bytes(),
        b"\xff\xfe",
    ]
    .into_iter()
    .enumerate()
    {
        let value = HeaderValue::from_bytes(id).expect("a header value");
        let response = create_org_with_request_id(&app, &format!("Acme {i}"), value).await;
        let duplicate = create_org_with_request_id(
            &app,
            &format!("Acme {i}"),
            HeaderValue::from_bytes(id).unwrap(),
        )
        .await;

        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        let kept = response.header("x-request-id").expect("an X-Request-Id");
        assert!(is_generated_id(kept), "{id:?} gave {kept}");
        let error_id = duplicate.header("x-request-id").expect("an X-Request-Id");
        assert!(is_generated_id(error_id), "{error_id}");
        assert_eq!(duplicate.body["error"]["request_id"], error_id);
    }
}
