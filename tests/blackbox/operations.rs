//! SPEC sections 7 and 8 as an operator and an admin see them from the
//! binary: health, readiness, metrics, the OpenAPI document, the admin token
//! and the token lifecycle.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::Storage;
use crate::wire::{WireResponse, send_over_socket};

const ADMIN_TOKEN: &str = "an-operator-secret-of-some-length";

#[tokio::test]
async fn the_sqlite_binary_serves_health_metrics_openapi_and_the_token_lifecycle() {
    serves_operations(false).await;
}

#[tokio::test]
async fn the_postgres_binary_serves_health_metrics_openapi_and_the_token_lifecycle() {
    serves_operations(true).await;
}

async fn call(
    address: SocketAddr,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> WireResponse {
    let authorization = bearer.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .as_deref()
        .map(|value| ("authorization", value))
        .into_iter()
        .collect();
    send_over_socket(address, method, path, &headers, body)
        .await
        .expect("a response")
}

/// The value of one exactly named sample in a Prometheus text body.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .and_then(|(_, value)| value.parse().ok())
}

async fn serves_operations(postgres: bool) {
    let Some(storage) = Storage::fresh(postgres).await else {
        return;
    };
    let mut server = storage.start(&[("ADMIN_TOKEN", ADMIN_TOKEN)]);
    let address = server.address;
    let admin = Some(ADMIN_TOKEN);

    // Health, readiness and the document need no token.
    let health = call(address, Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (health.status, health.body.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let ready = call(address, Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.body.clone()),
        (StatusCode::OK, json!({"status": "ready"}))
    );
    let document = call(address, Method::GET, "/openapi.json", None, None).await;
    assert!(
        document.body["openapi"]
            .as_str()
            .unwrap()
            .starts_with("3.1.")
    );
    assert!(document.body["paths"]["/tokens/{token_id}"]["delete"].is_object());

    // The admin routes need the admin token.
    let refused = call(
        address,
        Method::POST,
        "/orgs",
        None,
        Some(json!({"name": "Acme"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    assert_eq!(refused.headers["www-authenticate"], "Bearer");
    let org = call(
        address,
        Method::POST,
        "/orgs",
        admin,
        Some(json!({"name": "Acme"})),
    )
    .await;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text);
    let body = json!({"organization_id": org.body["id"], "name": "api"});
    let project = call(address, Method::POST, "/projects", admin, Some(body)).await;
    let project_id = project.body["id"]
        .as_str()
        .expect("a project id")
        .to_owned();
    let body = json!({"project_id": project_id});
    let created = call(address, Method::POST, "/tokens", admin, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let token_id = created.body["id"].as_str().unwrap().to_owned();

    // A project token is not an admin token, and the admin token is not a project token.
    let run = json!({"run_id": uuid::Uuid::new_v4(), "status": "passed",
                     "duration_ms": 5, "timestamp": "2026-01-12T10:10:00Z"});
    let as_admin = call(address, Method::POST, "/ingest", admin, Some(run.clone())).await;
    assert_eq!(
        as_admin.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        as_admin.text
    );
    let tokens_path = format!("/projects/{project_id}/tokens");
    let as_project = call(address, Method::GET, &tokens_path, Some(&token), None).await;
    assert_eq!(
        as_project.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        as_project.text
    );
    let stored = call(
        address,
        Method::POST,
        "/ingest",
        Some(&token),
        Some(run.clone()),
    )
    .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);

    // The list shows the prefix and when the token was last used.
    let listed = call(address, Method::GET, &tokens_path, admin, None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let entry = &listed.body["data"][0];
    assert_eq!(entry["id"], token_id.as_str());
    assert_eq!(entry["prefix"], &token[..12]);
    assert!(
        entry["last_used_at"]
            .as_str()
            .unwrap()
            .ends_with(":00.000Z"),
        "{entry}"
    );
    assert!(!listed.text.contains(&token[..13]));

    // Revoked: the very next ingest is refused.
    let path = format!("/tokens/{token_id}");
    let revoked = call(address, Method::DELETE, &path, admin, None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let after = call(address, Method::POST, "/ingest", Some(&token), Some(run)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);
    assert_eq!(after.body["error"]["message"], "Invalid token");

    // A fresh process: the counters hold exactly this test's requests.
    let metrics = call(address, Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = &metrics.text;
    for (result, count) in [("created", 1.0), ("replayed", 0.0), ("rejected", 2.0)] {
        let series = format!(r#"ta_ingest_total{{result="{result}"}}"#);
        assert_eq!(sample(text, &series), Some(count), "{series} in {text}");
    }
    let series = r#"ta_http_requests_total{method="POST",route="/orgs",status="401"}"#;
    assert_eq!(sample(text, series), Some(1.0), "{text}");
    let bucket = concat!(
        r#"ta_http_request_duration_seconds_bucket"#,
        r#"{method="DELETE",route="/tokens/{token_id}",status="204",le="+Inf"}"#
    );
    assert_eq!(sample(text, bucket), Some(1.0), "{text}");
    assert!(!text.contains(&token_id) && !text.contains(&project_id) && !text.contains("ta_live_"));

    server.terminate();
    let status = server
        .wait_for_exit(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let records = server.log_records();
    assert!(
        !records.iter().any(|r| r["message"]
            .as_str()
            .is_some_and(|m| m.contains("ADMIN_TOKEN is not set"))),
        "warned about open admin routes although ADMIN_TOKEN is set"
    );
    let log = server.log_lines().join("\n");
    assert!(!log.contains(ADMIN_TOKEN) && !log.contains(&token));
}
