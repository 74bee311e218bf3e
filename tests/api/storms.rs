//! Duplicate storms: hundreds of identical ingests at once, each on its own
//! connection to a real socket, as a fleet of CI runners retrying the same
//! result would send them. Exactly one is created; the rest find it stored.

use axum::http::{Method, StatusCode};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, WireClient, run_body};

backend_tests!(
    five_hundred_identical_concurrent_ingests_create_exactly_one_run,
    identical_ingests_through_two_tokens_of_one_project_create_exactly_one_run,
);

/// Connections opened at once.
const STORM: usize = 500;

/// Sends `run_id` once per bearer in `bearers`, all at once, each on its own
/// connection; returns every status.
async fn storm(app: &TestApp, bearers: Vec<String>, run_id: &str) -> Vec<StatusCode> {
    let server = app.spawn_server().await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(bearers.len()));
    let requests: Vec<_> = bearers
        .into_iter()
        .map(|bearer| {
            let (barrier, body) = (barrier.clone(), run_body(run_id));
            let address = server.address;
            tokio::spawn(async move {
                let mut client = WireClient::connect(address).await.expect("connect");
                barrier.wait().await;
                let headers = [("authorization", bearer.as_str())];
                client
                    .send(Method::POST, "/ingest", &headers, Some(body))
                    .await
                    .expect("a response")
            })
        })
        .collect();

    let mut statuses = Vec::new();
    for request in requests {
        let response = request.await.expect("request task");
        assert_eq!(response.body["run_id"], run_id, "{}", response.text);
        statuses.push(response.status);
    }
    server.stop().await;
    statuses
}

fn assert_one_created(statuses: &[StatusCode]) {
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let found = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((created, found), (1, statuses.len() - 1), "{statuses:?}");
}

async fn five_hundred_identical_concurrent_ingests_create_exactly_one_run(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let run_id = uuid::Uuid::new_v4().to_string();

    let bearers = vec![format!("Bearer {}", project.token); STORM];
    let statuses = storm(&app, bearers, &run_id).await;

    assert_one_created(&statuses);
    assert_eq!(app.count_rows("test_runs").await, 1);
}

async fn identical_ingests_through_two_tokens_of_one_project_create_exactly_one_run(
    backend: Backend,
) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let second = app.create_token(&project.project_id).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    let run_id = uuid::Uuid::new_v4().to_string();

    let bearers = (0..STORM)
        .map(|i| match i % 2 {
            0 => format!("Bearer {}", project.token),
            _ => format!("Bearer {}", second.str("token")),
        })
        .collect();
    let statuses = storm(&app, bearers, &run_id).await;

    assert_one_created(&statuses);
    assert_eq!(app.count_rows("test_runs").await, 1);
}
