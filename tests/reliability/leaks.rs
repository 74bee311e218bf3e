//! No secret leaks: with logging at its most verbose, a tenant's token is
//! used in every way a client can use it, right and wrong, through errors and
//! a database fault. No log line and no response, other than the one that
//! created it, contains the raw token, and nothing at all contains its hash.
//! Every other test of this suite adds its own logs and responses to the same
//! check.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::process::ServerProcess;
use crate::support::{self, HANG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_raw_token_or_token_hash_reaches_a_log_line_or_a_response() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = dir.path().join("leaks.db");
    let env = [
        ("DATABASE_PATH", path.to_str().expect("a UTF-8 path")),
        ("LOG_LEVEL", "trace"),
        ("DATABASE_BUSY_TIMEOUT_MS", "200"),
    ];
    let mut server = ServerProcess::start(&env);
    let address = server.address;
    let tenant = support::provision(address).await;
    let second = support::create_token(address, &tenant.project_id).await;
    let run_id = uuid::Uuid::new_v4().to_string();

    let created = support::ingest(address, &tenant, &run_id).await;
    let replayed = support::ingest(address, &tenant, &run_id).await;
    let unknown = format!("ta_live_{}", "0".repeat(64));
    let attempts = [
        format!("Bearer {unknown}"),
        format!("Bearer {second} extra"),
        format!("Basic {second}"),
        format!("Bearer {}", &second[..second.len() - 1]),
        format!("bearer {}", second.to_uppercase()),
        format!("Bearer {second}"),
    ];
    for authorization in &attempts {
        let headers = [("authorization", authorization.as_str())];
        support::send(
            address,
            Method::POST,
            "/ingest",
            &headers,
            Some(json!({"run_id": 1})),
        )
        .await;
        support::send(address, Method::GET, "/ingest", &headers, None).await;
        support::send(address, Method::POST, "/nowhere", &headers, None).await;
    }
    let mut other_process = support::open_side_connection(&path).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other_process)
        .await
        .expect("take the write lock");
    let locked = support::ingest(address, &tenant, &uuid::Uuid::new_v4().to_string()).await;
    sqlx::query("ROLLBACK")
        .execute(&mut other_process)
        .await
        .expect("release the write lock");

    server.terminate();
    let exit = server.wait_for_exit(HANG);
    support::record_logs("trace-level server", &server);

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.text);
    support::assert_unavailable(&locked);
    assert!(exit.is_some_and(|status| status.success()), "{exit:?}");
    let lines = server.log_lines();
    assert!(
        lines.len() > 20,
        "expected a verbose log, got {} lines",
        lines.len()
    );
    assert!(
        !lines
            .iter()
            .any(|line| line.to_lowercase().contains("bearer ")),
        "an Authorization header reached the log"
    );
    support::assert_no_secret_leaked();
    let (tokens, texts) = support::ledger_size();
    eprintln!("secret check: {tokens} tokens against {texts} captured logs and responses");
}
