//! Several instances against one PostgreSQL database: idempotency holds
//! across processes because the database, not the process, enforces it.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::Storage;
use crate::wire::send_over_socket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_identical_ingests_over_two_instances_store_one_row() {
    let Some(storage) = Storage::fresh(true).await else {
        return;
    };
    let mut first = storage.start(&[]);
    let mut second = storage.start(&[]);
    let token = create_token(first.address).await;
    let bearer = format!("Bearer {token}");
    let run = json!({
        "run_id": uuid::Uuid::new_v4(),
        "status": "failed",
        "duration_ms": 99,
        "timestamp": "2026-01-12T10:10:00Z",
    });

    let addresses = [first.address, second.address];
    let requests: Vec<_> = (0..500)
        .map(|i| {
            let (address, bearer, run) = (addresses[i % 2], bearer.clone(), run.clone());
            tokio::spawn(async move {
                let auth = [("authorization", bearer.as_str())];
                send_over_socket(address, Method::POST, "/ingest", &auth, Some(run)).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for request in requests {
        let response = request.await.expect("task").expect("a response");
        ids.push(response.body["id"].as_str().unwrap_or_default().to_owned());
        statuses.push(response.status);
    }

    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let replayed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((created, replayed), (1, 499), "{statuses:?}");
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every answer names the one stored run"
    );
    assert_eq!(count_runs(&storage).await, 1);

    for server in [&mut first, &mut second] {
        server.terminate();
        let status = server
            .wait_for_exit(Duration::from_secs(15))
            .expect("exits");
        assert!(status.success(), "{status:?}");
    }
}

async fn create_token(address: std::net::SocketAddr) -> String {
    let name = format!("org-{}", uuid::Uuid::new_v4());
    let org = send_over_socket(
        address,
        Method::POST,
        "/orgs",
        &[],
        Some(json!({"name": name})),
    )
    .await
    .expect("create an organization");
    let project_body = json!({"organization_id": org.body["id"], "name": "shared"});
    let project = send_over_socket(address, Method::POST, "/projects", &[], Some(project_body))
        .await
        .expect("create a project");
    let token_body = json!({"project_id": project.body["id"]});
    let token = send_over_socket(address, Method::POST, "/tokens", &[], Some(token_body))
        .await
        .expect("create a token");
    token.body["token"].as_str().expect("a token").to_owned()
}

async fn count_runs(storage: &Storage) -> i64 {
    let Storage::Postgres(database) = storage else {
        unreachable!("PostgreSQL only")
    };
    let pool = sqlx::PgPool::connect(&database.url).await.expect("connect");
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM test_runs")
        .fetch_one(&pool)
        .await
        .expect("count runs");
    pool.close().await;
    count
}
