//! What every reliability test needs: a tenant provisioned over HTTP, a
//! request helper that keeps every response for the secret check, raw
//! sockets, and a look at the SQLite file and at the process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::keepalive::WireClient;
use crate::process::ServerProcess;
use crate::wire::{WireResponse, send_over_socket};

/// Longest any single step may take before the test calls it a hang.
pub const HANG: Duration = Duration::from_secs(20);

/// A count from the environment, or `default` when unset.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Whether the faults that need root (mounts, file attributes) must run;
/// without it a test that cannot create its fault says so and returns.
pub fn faults_required() -> bool {
    std::env::var("TEST_REQUIRE_FAULTS").is_ok_and(|v| v == "1")
}

/// A number in `0..bound` from the OS random source, via a v4 UUID.
pub fn random_below(bound: u64) -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut word = [0_u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word) % bound.max(1)
}

/// A project and the token that ingests into it.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub project_id: String,
    pub token: String,
}

impl Tenant {
    /// The `Authorization` header value for this tenant's token.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

/// Everything the suite has seen: tokens created, and every response and log
/// line captured, for the check that no secret leaked.
#[derive(Default)]
pub struct Ledger {
    tokens: Vec<String>,
    texts: Vec<(String, String)>,
}

static LEDGER: Mutex<Ledger> = Mutex::new(Ledger {
    tokens: Vec::new(),
    texts: Vec::new(),
});

fn ledger() -> MutexGuard<'static, Ledger> {
    LEDGER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps the status, headers and body of a response for the secret check.
pub fn record_response(origin: &str, response: &WireResponse) {
    let mut text = format!("{}\n", response.status);
    for (name, value) in &response.headers {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push_str(&response.text);
    ledger().texts.push((origin.to_owned(), text));
}

/// Keeps raw bytes read from a socket for the secret check.
pub fn record_raw(origin: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    ledger().texts.push((origin.to_owned(), text));
}

/// Keeps everything a server process has logged so far.
pub fn record_logs(origin: &str, server: &ServerProcess) {
    let lines = server.log_lines().join("\n");
    ledger()
        .texts
        .push((format!("{origin} (server log)"), lines));
}

/// The SHA-256 hex digest of a token, as the service stores it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Panics if any token the suite created, or its hash, appears in anything
/// captured so far other than the response that created it.
pub fn assert_no_secret_leaked() {
    let ledger = ledger();
    for token in &ledger.tokens {
        let hash = token_hash(token);
        for (origin, text) in &ledger.texts {
            assert!(
                !text.contains(token.as_str()),
                "a raw token leaked into {origin}"
            );
            assert!(!text.contains(&hash), "a token hash leaked into {origin}");
        }
    }
}

/// How many texts and tokens the secret check has covered so far.
pub fn ledger_size() -> (usize, usize) {
    let ledger = ledger();
    (ledger.tokens.len(), ledger.texts.len())
}

/// Sends one request on a new connection and records the response.
pub async fn send(
    address: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> WireResponse {
    let response = tokio::time::timeout(
        HANG,
        send_over_socket(address, method.clone(), path, headers, body),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {path} hung"))
    .unwrap_or_else(|error| panic!("{method} {path} failed: {error}"));
    record_response(path, &response);
    response
}

/// `POST /ingest` of `run_body(run_id)` on a new connection.
pub async fn ingest(address: SocketAddr, tenant: &Tenant, run_id: &str) -> WireResponse {
    let bearer = tenant.bearer();
    let headers = [("authorization", bearer.as_str())];
    send(
        address,
        Method::POST,
        "/ingest",
        &headers,
        Some(run_body(run_id)),
    )
    .await
}

/// `POST /ingest` on a kept-alive connection; the error is the caller's to judge.
pub async fn ingest_on(
    client: &mut WireClient,
    tenant: &Tenant,
    run_id: &str,
) -> Result<WireResponse, Box<dyn std::error::Error + Send + Sync>> {
    let bearer = tenant.bearer();
    let headers = [("authorization", bearer.as_str())];
    let response = client
        .send(Method::POST, "/ingest", &headers, Some(run_body(run_id)))
        .await?;
    record_response("/ingest", &response);
    Ok(response)
}

/// A valid ingest body for `run_id`.
pub fn run_body(run_id: &str) -> Value {
    json!({
        "run_id": run_id,
        "status": "failed",
        "duration_ms": 4321,
        "timestamp": "2026-01-12T10:10:00Z",
    })
}

/// An organization, a project and a token, created over HTTP. The token is
/// registered with the secret check; the one response that carries it is
/// the only one not recorded.
pub async fn provision(address: SocketAddr) -> Tenant {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let org = send(
        address,
        Method::POST,
        "/orgs",
        &[],
        Some(json!({"name": suffix})),
    )
    .await;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text);
    let project = send(
        address,
        Method::POST,
        "/projects",
        &[],
        Some(json!({"organization_id": org.body["id"], "name": "reliability"})),
    )
    .await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text);
    let project_id = project.body["id"]
        .as_str()
        .expect("a project id")
        .to_owned();

    Tenant {
        token: create_token(address, &project_id).await,
        project_id,
    }
}

/// `POST /tokens` for a project; the raw token is registered, the response not recorded.
pub async fn create_token(address: SocketAddr, project_id: &str) -> String {
    let body = json!({ "project_id": project_id });
    let created = tokio::time::timeout(
        HANG,
        send_over_socket(address, Method::POST, "/tokens", &[], Some(body)),
    )
    .await
    .expect("POST /tokens hung")
    .expect("POST /tokens");
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let token = created.body["token"].as_str().expect("a token").to_owned();
    ledger().tokens.push(token.clone());
    token
}

/// Asserts the error envelope with its `code`, and returns the message.
pub fn assert_envelope(response: &WireResponse, status: StatusCode, code: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    let error = &response.body["error"];
    assert_eq!(error["code"], code, "{}", response.text);
    assert!(error["message"].is_string(), "{}", response.text);
    assert!(error["details"].is_array(), "{}", response.text);
    let request_id = error["request_id"].as_str().unwrap_or_default();
    assert!(request_id.starts_with("req_"), "{}", response.text);
    assert_eq!(
        response
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(request_id)
    );
}

/// Asserts a `503 unavailable` envelope that tells the client when to retry.
pub fn assert_unavailable(response: &WireResponse) {
    assert_envelope(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let retry_after = response
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry_after.is_some(),
        "no Retry-After: {:?}",
        response.headers
    );
}

/// `PRAGMA integrity_check` on the file, from a connection of our own.
pub async fn integrity_check(path: &Path) -> Vec<String> {
    let options = SqliteConnectOptions::new().filename(path);
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .expect("open the database file");
    let report: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut connection)
        .await
        .expect("run integrity_check");
    connection
        .close()
        .await
        .expect("close the check connection");
    report
}

/// The number of stored runs, read from the file directly.
pub async fn stored_runs(path: &Path) -> i64 {
    let options = SqliteConnectOptions::new().filename(path);
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .expect("open the database file");
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM test_runs")
        .fetch_one(&mut connection)
        .await
        .expect("count runs");
    connection
        .close()
        .await
        .expect("close the count connection");
    count
}

/// A second connection to the service's file, as another process would hold.
pub async fn open_side_connection(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(5));
    SqliteConnection::connect_with(&options)
        .await
        .expect("open a second connection")
}

/// Peak resident memory of a process (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

/// Writes `bytes` on a raw connection and reads until the server closes it
/// or `HANG` passes; returns what was read.
pub async fn raw_exchange(address: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(bytes).await.expect("write the request");
    read_until_closed(&mut stream).await
}

/// Reads until end of stream or a reset; panics after `HANG`.
pub async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(HANG, async {
        let mut buffer = [0_u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {HANG:?}"
    );
    received
}

/// The status code of a raw HTTP/1.1 response, `None` if nothing came back.
pub fn raw_status(response: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(response);
    let line = text
        .lines()
        .find(|line| !line.starts_with("HTTP/1.1 100"))?;
    line.split(' ').nth(1)?.parse().ok()
}

/// The JSON body of a raw response (after the blank line), or `Null`.
pub fn raw_body(response: &[u8]) -> Value {
    let text = String::from_utf8_lossy(response);
    text.rsplit_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null)
}
