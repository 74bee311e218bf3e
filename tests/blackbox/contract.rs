//! SPEC sections 3-6 as a client and an operator see them from the binary:
//! status codes, bodies, headers, error envelopes, request ids, log lines.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Storage;
use crate::wire::{WireResponse, send_over_socket};

#[tokio::test]
async fn the_sqlite_binary_keeps_the_whole_core_contract() {
    keeps_the_whole_core_contract(false).await;
}

#[tokio::test]
async fn the_postgres_binary_keeps_the_whole_core_contract() {
    keeps_the_whole_core_contract(true).await;
}

async fn call(
    address: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> WireResponse {
    send_over_socket(address, method, path, &[], body)
        .await
        .expect("a response")
}

async fn call_with(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> WireResponse {
    send_over_socket(address, method, path, headers, body)
        .await
        .expect("a response")
}

fn assert_envelope(response: &WireResponse, status: StatusCode, code: &str, message: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    let error = &response.body["error"];
    assert_eq!(error["code"], code, "{}", response.text);
    assert_eq!(error["message"], message, "{}", response.text);
    let header_id = response.headers["x-request-id"].to_str().expect("ascii id");
    assert_eq!(error["request_id"], header_id, "{}", response.text);
    assert!(error["details"].is_array(), "{}", response.text);
}

fn is_millisecond_utc(text: &str) -> bool {
    // 2026-01-12T10:10:05.000Z
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[10] == b'T'
        && text.as_bytes()[19] == b'.'
        && text[20..23].bytes().all(|b| b.is_ascii_digit())
}

fn is_lowercase_uuid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok() && text.len() == 36 && text == text.to_lowercase()
}

async fn keeps_the_whole_core_contract(postgres: bool) {
    let Some(storage) = Storage::fresh(postgres).await else {
        return;
    };
    let mut server = storage.start(&[]);
    let address = server.address;
    let mut seen_request_ids = Vec::new();

    // Organizations.
    let org = call(
        address,
        Method::POST,
        "/orgs",
        Some(json!({"name": "  Acme Corp "})),
    )
    .await;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text);
    assert_eq!(org.body["name"], "Acme Corp");
    assert!(
        is_lowercase_uuid(org.body["id"].as_str().unwrap()),
        "{}",
        org.text
    );
    assert!(
        is_millisecond_utc(org.body["created_at"].as_str().unwrap()),
        "{}",
        org.text
    );
    let organization_id = org.body["id"].as_str().unwrap().to_owned();

    let taken = call(
        address,
        Method::POST,
        "/orgs",
        Some(json!({"name": "Acme Corp"})),
    )
    .await;
    assert_envelope(
        &taken,
        StatusCode::CONFLICT,
        "conflict",
        "An organization with this name already exists",
    );
    let unnamed = call(address, Method::POST, "/orgs", Some(json!({"name": "  "}))).await;
    assert_envelope(
        &unnamed,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(unnamed.body["error"]["details"][0]["field"], "name");

    // Projects.
    let project_body = json!({"organization_id": organization_id, "name": "Backend API"});
    let project = call(
        address,
        Method::POST,
        "/projects",
        Some(project_body.clone()),
    )
    .await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text);
    assert_eq!(project.body["organization_id"], organization_id.as_str());
    assert!(is_millisecond_utc(
        project.body["created_at"].as_str().unwrap()
    ));
    let project_id = project.body["id"].as_str().unwrap().to_owned();

    let twice = call(address, Method::POST, "/projects", Some(project_body)).await;
    assert_envelope(
        &twice,
        StatusCode::CONFLICT,
        "conflict",
        "This organization already has a project with this name",
    );
    let not_a_uuid = json!({"organization_id": "42", "name": "x"});
    let bad = call(address, Method::POST, "/projects", Some(not_a_uuid)).await;
    assert_envelope(
        &bad,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    let orphan = json!({"organization_id": uuid::Uuid::new_v4(), "name": "x"});
    let missing = call(address, Method::POST, "/projects", Some(orphan)).await;
    assert_envelope(
        &missing,
        StatusCode::NOT_FOUND,
        "not_found",
        "Organization not found",
    );

    // Tokens.
    let created = call(
        address,
        Method::POST,
        "/tokens",
        Some(json!({"project_id": project_id})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["project_id"], project_id.as_str());
    assert_eq!(
        created.body["warning"],
        "Store this token securely. It will not be shown again."
    );
    assert_eq!(created.headers["cache-control"], "no-store");
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with("ta_live_") && token.len() == 72,
        "{token}"
    );
    assert!(
        token[8..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{token}"
    );
    let unknown_project = json!({"project_id": uuid::Uuid::new_v4()});
    let missing = call(address, Method::POST, "/tokens", Some(unknown_project)).await;
    assert_envelope(
        &missing,
        StatusCode::NOT_FOUND,
        "not_found",
        "Project not found",
    );

    // Ingest: 201, then 200 replayed with the stored record unchanged.
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let run = json!({
        "run_id": "770E8400-E29B-41D4-A716-446655440002",
        "status": "passed",
        "duration_ms": 1234,
        "timestamp": "2026-01-12T12:10:00.123+02:00",
    });
    let first = call_with(address, Method::POST, "/ingest", &auth, Some(run)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["run_id"], "770e8400-e29b-41d4-a716-446655440002");
    assert_eq!(first.body["timestamp"], "2026-01-12T12:10:00.123+02:00");
    assert_eq!(first.body["project_id"], project_id.as_str());
    assert!(is_millisecond_utc(
        first.body["created_at"].as_str().unwrap()
    ));
    assert!(!first.headers.contains_key("idempotent-replayed"));

    let changed = json!({
        "run_id": "770e8400-e29b-41d4-a716-446655440002",
        "status": "failed",
        "duration_ms": 1,
        "timestamp": "2026-01-12T10:10:00Z",
    });
    let again = call_with(address, Method::POST, "/ingest", &auth, Some(changed)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, first.body);

    // Ingest errors.
    let bad_fields =
        json!({"run_id": "nope", "status": "ok", "duration_ms": -1, "timestamp": "2026-01-12"});
    let invalid = call_with(address, Method::POST, "/ingest", &auth, Some(bad_fields)).await;
    assert_envelope(
        &invalid,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    let fields: Vec<&str> = invalid.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["run_id", "status", "duration_ms", "timestamp"]);

    let anonymous = call(address, Method::POST, "/ingest", Some(json!({}))).await;
    assert_envelope(
        &anonymous,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Missing Authorization header",
    );
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
    let basic = [("authorization", "Basic dXNlcjpwYXNz")];
    let wrong_scheme = call_with(address, Method::POST, "/ingest", &basic, Some(json!({}))).await;
    assert_envelope(
        &wrong_scheme,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authorization header must be: Bearer <token>",
    );
    let stranger = format!("Bearer ta_live_{}", "0".repeat(64));
    let unknown = [("authorization", stranger.as_str())];
    let unknown = call_with(address, Method::POST, "/ingest", &unknown, Some(json!({}))).await;
    assert_envelope(
        &unknown,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Invalid token",
    );

    // The framework's own rejections, in the same envelope.
    let nowhere = call(address, Method::GET, "/nowhere", None).await;
    assert_envelope(
        &nowhere,
        StatusCode::NOT_FOUND,
        "not_found",
        "No route matches this path",
    );
    let wrong_method = call(address, Method::GET, "/orgs", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.body["error"]["code"], "method_not_allowed");
    assert!(wrong_method.headers.contains_key("allow"));
    let plain = [("content-type", "text/plain")];
    let no_json = call_with(address, Method::POST, "/orgs", &plain, None).await;
    assert_eq!(
        no_json.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        no_json.text
    );
    assert_eq!(no_json.body["error"]["code"], "unsupported_media_type");
    let huge = json!({"name": "x".repeat(2 * 1024 * 1024)});
    let too_big = call(address, Method::POST, "/orgs", Some(huge)).await;
    assert_eq!(
        too_big.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_big.text
    );
    assert_eq!(too_big.body["error"]["code"], "payload_too_large");

    // Request ids: a well-formed one is kept; anything else is replaced.
    let kept = [("x-request-id", "ci-build-42.retry_1")];
    let echoed = call_with(address, Method::GET, "/nowhere", &kept, None).await;
    assert_eq!(echoed.headers["x-request-id"], "ci-build-42.retry_1");
    assert_eq!(echoed.body["error"]["request_id"], "ci-build-42.retry_1");
    let long = "a".repeat(65);
    let replaced = [("x-request-id", long.as_str())];
    let replaced = call_with(address, Method::GET, "/nowhere", &replaced, None).await;
    let fresh = replaced.headers["x-request-id"].to_str().unwrap();
    assert!(fresh.starts_with("req_") && fresh.len() >= 20, "{fresh}");
    assert!(
        fresh[4..].bytes().all(|b| b.is_ascii_alphanumeric()),
        "{fresh}"
    );

    for response in [
        &org, &project, &created, &first, &again, &invalid, &anonymous, &nowhere,
    ] {
        seen_request_ids.push(
            response.headers["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }

    // Shutdown: SIGTERM drains and exits 0.
    server.terminate();
    let status = server
        .wait_for_exit(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");

    // Logs: flat JSON lines, one completion line per request, no secrets.
    let records = server.log_records();
    for record in &records {
        let object = record.as_object().expect("each line is an object");
        assert!(
            !object.contains_key("fields") && !object.contains_key("span"),
            "{record}"
        );
        assert!(
            is_millisecond_utc(record["timestamp"].as_str().unwrap()),
            "{record}"
        );
        assert!(
            record["level"].is_string() && record["message"].is_string(),
            "{record}"
        );
    }
    let listening = records
        .iter()
        .find(|r| r["message"] == "listening")
        .expect("a start line");
    assert_eq!(
        listening["database"],
        if postgres { "postgres" } else { "sqlite" }
    );
    assert!(
        listening["schema_version"].as_i64().unwrap() >= 1,
        "{listening}"
    );
    assert!(listening["address"].is_string());
    assert!(
        records.iter().any(|r| r["level"] == "warn"),
        "no warning about open admin routes"
    );
    assert!(
        records
            .iter()
            .any(|r| r["message"].as_str().unwrap().contains("drained"))
    );

    let completed: Vec<&Value> = records
        .iter()
        .filter(|r| r["message"] == "request completed")
        .collect();
    let logged_ids: HashSet<&str> = completed
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    for id in &seen_request_ids {
        assert!(
            logged_ids.contains(id.as_str()),
            "no completion line for {id}"
        );
    }
    for record in &completed {
        for field in ["request_id", "method", "path", "status", "duration_ms"] {
            assert!(!record[field].is_null(), "{field} missing in {record}");
        }
    }
    let ingest_created = completed
        .iter()
        .find(|r| r["path"] == "/ingest" && r["status"] == 201)
        .expect("the 201 ingest is logged");
    assert_eq!(ingest_created["project_id"], project_id.as_str());
    assert_eq!(ingest_created["level"], "info");

    let log_text = server.log_lines().join("\n");
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    assert!(!log_text.contains(&token), "the raw token reached the log");
    assert!(
        !log_text.contains(&digest),
        "the token hash reached the log"
    );
    assert!(
        !log_text.contains("Bearer"),
        "an Authorization value reached the log"
    );
}
