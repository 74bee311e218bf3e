//! `GET /metrics`. The recorder is shared by every test in the process, so
//! these tests look for their own series and compare counts before and after,
//! never expecting an exact total.

use axum::http::StatusCode;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, run_body};

backend_tests!(
    metrics_are_prometheus_text_with_latency_histograms_by_matched_route,
    requests_no_route_matches_share_one_route_label,
    ingests_are_counted_as_created_replayed_and_rejected,
    pool_use_and_write_batch_sizes_are_exported,
    no_label_carries_a_token_a_run_id_or_a_raw_path,
);

/// The scraped text.
async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.text
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .and_then(|(_, value)| value.parse().ok())
}

async fn metrics_are_prometheus_text_with_latency_histograms_by_matched_route(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let listed = app.list_tokens(&project.project_id).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);

    let response = app.get("/metrics").await;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.text;
    let route = r#"method="GET",route="/projects/{project_id}/tokens",status="200""#;
    assert!(sample(&text, &format!("ta_http_requests_total{{{route}}}")).unwrap() >= 1.0);
    assert!(text.contains("# TYPE ta_http_request_duration_seconds histogram"));
    let bucket = format!(r#"ta_http_request_duration_seconds_bucket{{{route},le="+Inf"}}"#);
    assert!(sample(&text, &bucket).unwrap() >= 1.0, "{text}");
    assert!(
        !text.contains("quantile="),
        "latencies must be histograms, not summaries"
    );
}

async fn requests_no_route_matches_share_one_route_label(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let path = format!("/no-such-route-{}", uuid::Uuid::new_v4().simple());

    let missing = app.get(&path).await;
    let text = scrape(&app).await;

    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let series = r#"ta_http_requests_total{method="GET",route="unmatched",status="404"}"#;
    assert!(sample(&text, series).unwrap() >= 1.0, "{text}");
    assert!(!text.contains(&path), "a raw path became a label");
}

async fn ingests_are_counted_as_created_replayed_and_rejected(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let series = |result: &str| format!(r#"ta_ingest_total{{result="{result}"}}"#);
    let before = scrape(&app).await;
    let run = run_body(&uuid::Uuid::new_v4().to_string());

    assert_eq!(
        app.ingest(&project.token, run.clone()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.ingest(&project.token, run.clone()).await.status,
        StatusCode::OK
    );
    let invalid = app.ingest(&project.token, json!({"run_id": "x"})).await;
    let unauthenticated = app.post_json("/ingest", run).await;
    let after = scrape(&app).await;

    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    for (result, at_least) in [("created", 1.0), ("replayed", 1.0), ("rejected", 2.0)] {
        let was = sample(&before, &series(result)).unwrap_or(0.0);
        let is = sample(&after, &series(result)).unwrap();
        assert!(is - was >= at_least, "{result}: {was} -> {is}");
    }
}

async fn pool_use_and_write_batch_sizes_are_exported(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let run = run_body(&uuid::Uuid::new_v4().to_string());
    assert_eq!(
        app.ingest(&project.token, run).await.status,
        StatusCode::CREATED
    );

    let text = scrape(&app).await;

    let pools: &[&str] = match backend {
        Backend::Sqlite => &["sqlite_writer", "sqlite_reader"],
        Backend::Postgres => &["postgres"],
    };
    for pool in pools {
        let in_use = format!(r#"ta_db_pool_connections_in_use{{pool="{pool}"}}"#);
        let idle = format!(r#"ta_db_pool_connections_idle{{pool="{pool}"}}"#);
        assert!(sample(&text, &in_use).is_some(), "no {in_use} in {text}");
        assert!(sample(&text, &idle).is_some(), "no {idle} in {text}");
    }
    assert!(
        text.contains("# TYPE ta_ingest_batch_size histogram"),
        "{text}"
    );
    assert!(sample(&text, r#"ta_ingest_batch_size_bucket{le="1"}"#).unwrap() >= 1.0);
}

async fn no_label_carries_a_token_a_run_id_or_a_raw_path(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let run_id = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        app.ingest(&project.token, run_body(&run_id)).await.status,
        StatusCode::CREATED
    );
    let bad = app
        .ingest("ta_live_not-a-real-token", run_body(&run_id))
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.list_tokens(&project.project_id).await.status,
        StatusCode::OK
    );

    let text = scrape(&app).await;

    for secret in [
        project.token.as_str(),
        "ta_live_",
        run_id.as_str(),
        project.project_id.as_str(),
        project.token_id.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} is in the metrics");
    }
}
