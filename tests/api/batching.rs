//! Concurrent ingests, which SQLite writes in shared transactions: every
//! request still gets its own answer, whatever else its batch holds.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use test_analytics::db::Database;
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::{Backend, ProjectFixture, TestApp, run_body, send_over_socket};

backend_tests!(
    concurrent_new_runs_replays_and_repeats_each_get_their_own_answer,
    a_run_whose_project_was_deleted_fails_alone_while_concurrent_runs_are_stored,
);

/// One ingest to send, and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    New,
    Replay,
    Repeat,
}

/// What one ingest was answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

/// Sends every `(token, run_id)` at once over its own connection and returns
/// the answers in the same order.
async fn ingest_concurrently(app: &TestApp, sends: &[(String, Uuid)]) -> Vec<Answer> {
    let server = app.spawn_server().await;
    let tasks: Vec<_> = sends
        .iter()
        .map(|(token, run_id)| {
            let bearer = format!("Bearer {token}");
            let body = run_body(&run_id.to_string());
            let address = server.address;
            tokio::spawn(async move {
                let headers = [("authorization", bearer.as_str())];
                send_over_socket(address, Method::POST, "/ingest", &headers, Some(body)).await
            })
        })
        .collect();
    let mut responses = Vec::with_capacity(tasks.len());
    for task in tasks {
        let response = task.await.expect("task").expect("response");
        responses.push(Answer {
            status: response.status,
            replayed: response
                .headers
                .get("idempotent-replayed")
                .is_some_and(|v| v == "true"),
            body: response.body,
        });
    }
    server.stop().await;
    responses
}

async fn concurrent_new_runs_replays_and_repeats_each_get_their_own_answer(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let (a, b) = (
        app.create_project_with_token().await,
        app.create_project_with_token().await,
    );
    let mut stored = HashMap::new();
    for _ in 0..8 {
        let run_id = Uuid::new_v4();
        let response = app.ingest(&a.token, run_body(&run_id.to_string())).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        stored.insert(run_id, response.body);
    }
    let mut sends: Vec<(String, Uuid, Kind)> = Vec::new();
    for _ in 0..16 {
        let run_id = Uuid::new_v4();
        sends.push((a.token.clone(), run_id, Kind::New));
        // The same run id in another project is another run.
        sends.push((b.token.clone(), run_id, Kind::New));
    }
    for run_id in stored.keys() {
        sends.push((a.token.clone(), *run_id, Kind::Replay));
    }
    for _ in 0..6 {
        let run_id = Uuid::new_v4();
        for _ in 0..4 {
            sends.push((b.token.clone(), run_id, Kind::Repeat));
        }
    }

    let pairs: Vec<(String, Uuid)> = sends.iter().map(|(t, r, _)| (t.clone(), *r)).collect();
    let responses = ingest_concurrently(&app, &pairs).await;

    let mut repeats: HashMap<Uuid, Vec<&Answer>> = HashMap::new();
    for ((token, run_id, kind), response) in sends.iter().zip(&responses) {
        let project = if *token == a.token { &a } else { &b };
        assert_eq!(
            response.body["run_id"],
            run_id.to_string(),
            "{:?}",
            response.body
        );
        assert_eq!(response.body["project_id"], project.project_id.as_str());
        match kind {
            Kind::New => assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body),
            Kind::Replay => {
                assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
                assert!(response.replayed);
                assert_eq!(response.body, stored[run_id]);
            }
            Kind::Repeat => repeats.entry(*run_id).or_default().push(response),
        }
    }
    for (run_id, answers) in repeats {
        let created = answers
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count();
        let replayed = answers
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!((created, replayed), (1, 3), "{run_id}");
        let ids: Vec<&Value> = answers.iter().map(|r| &r.body["id"]).collect();
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "one stored row: {ids:?}"
        );
    }
    assert_eq!(app.count_rows("test_runs").await, 8 + 32 + 6);
}

async fn a_run_whose_project_was_deleted_fails_alone_while_concurrent_runs_are_stored(
    backend: Backend,
) {
    let app = crate::app_or_skip!(backend);
    let (kept, doomed) = (
        app.create_project_with_token().await,
        app.create_project_with_token().await,
    );
    // A first ingest leaves the doomed token in the cache of valid tokens.
    let warm = app
        .ingest(&doomed.token, run_body(&Uuid::new_v4().to_string()))
        .await;
    assert_eq!(warm.status, StatusCode::CREATED, "{}", warm.text);
    delete_project_rows(&app, &doomed).await;

    let mut sends: Vec<(String, Uuid)> = (0..24)
        .map(|_| (kept.token.clone(), Uuid::new_v4()))
        .collect();
    sends.insert(12, (doomed.token.clone(), Uuid::new_v4()));
    let responses = ingest_concurrently(&app, &sends).await;

    for (index, response) in responses.iter().enumerate() {
        if index == 12 {
            assert_eq!(
                response.status,
                StatusCode::UNAUTHORIZED,
                "{:?}",
                response.body
            );
            assert_eq!(response.body["error"]["code"], "unauthorized");
        } else {
            assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        }
    }
    assert_eq!(app.count_rows("test_runs").await, 24);
}

/// Deletes a project, its token and its runs behind the service's back.
async fn delete_project_rows(app: &TestApp, project: &ProjectFixture) {
    const STATEMENTS: [&str; 3] = [
        "DELETE FROM test_runs WHERE project_id = $1",
        "DELETE FROM api_tokens WHERE project_id = $1",
        "DELETE FROM projects WHERE id = $1",
    ];
    let id: Uuid = project.project_id.parse().expect("a project id");
    for sql in STATEMENTS {
        match &app.state.db {
            Database::Sqlite(db) => sqlx::query(sql)
                .bind(id.hyphenated())
                .execute(&db.writer)
                .await
                .map(drop),
            Database::Postgres(pool) => sqlx::query(sql).bind(id).execute(pool).await.map(drop),
        }
        .expect("delete the project's rows");
    }
}
