//! The log of a full flow (SPEC section 6): flat JSON lines, one completion
//! line per request with the fields operators filter on, and no secret.
//!
//! The subscriber is installed for this thread only, so the flow runs on a
//! current-thread runtime where every request's events are seen.

use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use test_analytics::telemetry::{LogSink, subscriber};

use crate::formats::{is_utc_millis, sha256_hex};
use crate::helpers::{Backend, TestApp, TestResponse, run_body};

mod sqlite {
    #[test]
    fn a_full_flow_logs_flat_json_lines_with_one_completion_line_per_request_and_no_secret() {
        super::a_full_flow_logs_flat_json_lines(super::Backend::Sqlite);
    }
}

mod postgres {
    #[test]
    fn a_full_flow_logs_flat_json_lines_with_one_completion_line_per_request_and_no_secret() {
        super::a_full_flow_logs_flat_json_lines(super::Backend::Postgres);
    }
}

/// What one request of the flow should log on completion.
struct Expected {
    request_id: String,
    method: &'static str,
    path: &'static str,
    status: u16,
    project_id: Option<String>,
}

impl Expected {
    fn post(response: &TestResponse, path: &'static str, project_id: Option<&str>) -> Self {
        Self {
            request_id: response.header("x-request-id").expect("an id").to_owned(),
            method: "POST",
            path,
            status: response.status.as_u16(),
            project_id: project_id.map(str::to_owned),
        }
    }
}

/// Everything the flow handled that must never be written to the log.
struct Secrets {
    token: String,
    unknown_token: String,
}

fn a_full_flow_logs_flat_json_lines(backend: Backend) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let logs = subscriber("debug", LogSink::Buffer(buffer.clone())).expect("a valid filter");
    let _installed = tracing::subscriber::set_default(logs);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    let Some((expected, secrets)) = runtime.block_on(run_flow(backend)) else {
        return;
    };

    let text = String::from_utf8(buffer.lock().unwrap().clone()).expect("UTF-8 logs");
    assert_every_line_is_a_flat_json_object(&text);
    assert_one_completion_line_per_request(&text, &expected);
    assert_no_secret_is_logged(&text, &secrets);
}

/// Org, project, token, the same run twice, a refused token, a bad body.
async fn run_flow(backend: Backend) -> Option<(Vec<Expected>, Secrets)> {
    let app = TestApp::new(backend).await?;
    let mut expected = Vec::new();

    let org = app.create_org("Acme").await;
    expected.push(Expected::post(&org, "/orgs", None));
    let project = app.create_project(org.str("id"), "Backend").await;
    expected.push(Expected::post(&project, "/projects", None));
    let project_id = project.str("id").to_owned();
    let token = app.create_token(&project_id).await;
    expected.push(Expected::post(&token, "/tokens", None));
    let token = token.str("token").to_owned();

    let run_id = uuid::Uuid::new_v4().to_string();
    let created = app.ingest(&token, run_body(&run_id)).await;
    let replayed = app.ingest(&token, run_body(&run_id)).await;
    let unknown_token = format!("ta_live_{}", "0123456789abcdef".repeat(4));
    let refused = app.ingest(&unknown_token, run_body(&run_id)).await;
    let invalid = app
        .ingest(&token, json!({"run_id": run_id, "status": "?"}))
        .await;
    let unrouted = app.request(Method::GET, "/nope", &[], None).await;

    let statuses = [
        created.status,
        replayed.status,
        refused.status,
        invalid.status,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::BAD_REQUEST
        ]
    );
    expected.push(Expected::post(&created, "/ingest", Some(&project_id)));
    expected.push(Expected::post(&replayed, "/ingest", Some(&project_id)));
    expected.push(Expected::post(&refused, "/ingest", None));
    expected.push(Expected::post(&invalid, "/ingest", Some(&project_id)));
    expected.push(Expected {
        method: "GET",
        ..Expected::post(&unrouted, "/nope", None)
    });
    app.state.db.close().await;
    Some((
        expected,
        Secrets {
            token,
            unknown_token,
        },
    ))
}

fn parse_lines(text: &str) -> Vec<serde_json::Map<String, Value>> {
    text.lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(object)) => object,
            _ => panic!("not one JSON object: {line}"),
        })
        .collect()
}

fn assert_every_line_is_a_flat_json_object(text: &str) {
    assert!(text.ends_with('\n'), "the log ends mid-line");
    let lines = parse_lines(text);
    assert!(lines.len() >= 7, "only {} lines:\n{text}", lines.len());

    for line in &lines {
        assert!(
            !line.contains_key("fields") && !line.contains_key("span"),
            "{line:?}"
        );
        assert!(!line.contains_key("spans"), "{line:?}");
        for (key, value) in line {
            assert!(
                !value.is_object() && !value.is_array(),
                "{key} is nested: {line:?}"
            );
        }
        let timestamp = line["timestamp"].as_str().expect("a timestamp");
        assert!(is_utc_millis(timestamp), "{timestamp}");
        let level = line["level"].as_str().expect("a level");
        assert!(
            ["error", "warn", "info", "debug", "trace"].contains(&level),
            "{level}"
        );
        assert!(line["message"].is_string(), "{line:?}");
    }
}

fn assert_one_completion_line_per_request(text: &str, expected: &[Expected]) {
    let completed: Vec<_> = parse_lines(text)
        .into_iter()
        .filter(|line| line["message"] == "request completed")
        .collect();
    assert_eq!(completed.len(), expected.len(), "{text}");

    for (line, request) in completed.iter().zip(expected) {
        assert_eq!(line["level"], "info", "{line:?}");
        assert_eq!(line["request_id"], request.request_id.as_str(), "{line:?}");
        assert_eq!(line["method"], request.method, "{line:?}");
        assert_eq!(line["path"], request.path, "{line:?}");
        assert_eq!(line["status"], request.status, "{line:?}");
        let duration = line["duration_ms"].as_f64().expect("a numeric duration_ms");
        assert!(duration >= 0.0, "{line:?}");
        match &request.project_id {
            Some(project_id) => assert_eq!(line["project_id"], project_id.as_str(), "{line:?}"),
            None => assert!(!line.contains_key("project_id"), "{line:?}"),
        }
    }

    let ids: Vec<_> = expected.iter().map(|r| r.request_id.as_str()).collect();
    for line in parse_lines(text) {
        if let Some(id) = line.get("request_id") {
            assert!(
                ids.contains(&id.as_str().unwrap()),
                "a stray request id: {line:?}"
            );
        }
    }
}

fn assert_no_secret_is_logged(text: &str, secrets: &Secrets) {
    for secret in [&secrets.token, &secrets.unknown_token] {
        assert!(!text.contains(secret.as_str()), "a raw token was logged");
        assert!(
            !text.contains(&sha256_hex(secret)),
            "a token hash was logged"
        );
        assert!(
            !text.contains(&secret["ta_live_".len()..]),
            "a token's secret was logged"
        );
    }
    assert!(
        !text.to_lowercase().contains("bearer"),
        "an Authorization value was logged"
    );
}
