//! `GET /healthz` and `GET /readyz`, including readiness during a drain.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, send_over_socket};

backend_tests!(
    healthz_is_200_ok_even_when_the_database_is_closed,
    readyz_is_200_ready_when_the_database_answers,
    readyz_is_503_in_the_envelope_when_the_database_does_not_answer,
    readyz_is_503_once_draining_begins_while_healthz_stays_200,
    stopping_the_server_marks_it_draining_before_it_stops_accepting,
);

async fn healthz_is_200_ok_even_when_the_database_is_closed(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    app.state.db.close().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body, json!({"status": "ok"}));
    assert_eq!(response.header("content-type"), Some("application/json"));
}

async fn readyz_is_200_ready_when_the_database_answers(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let response = app.get("/readyz").await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body, json!({"status": "ready"}));
}

async fn readyz_is_503_in_the_envelope_when_the_database_does_not_answer(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    app.state.db.close().await;

    let response = app.get("/readyz").await;

    response.assert_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "The service is temporarily unavailable; retry the request",
    );
    assert_eq!(response.header("retry-after"), Some("1"));
}

async fn readyz_is_503_once_draining_begins_while_healthz_stays_200(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    app.state.begin_draining();
    let ready = app.get("/readyz").await;
    let healthy = app.get("/healthz").await;

    ready.assert_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "The service is temporarily unavailable; retry the request",
    );
    assert_eq!(healthy.status, StatusCode::OK, "{}", healthy.text);
}

async fn stopping_the_server_marks_it_draining_before_it_stops_accepting(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let server = app.spawn_server().await;
    let before = send_over_socket(server.address, Method::GET, "/readyz", &[], None)
        .await
        .expect("a response");

    server.stop().await;

    assert_eq!(before.status, StatusCode::OK);
    assert!(app.state.is_draining());
    assert_eq!(
        app.get("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
