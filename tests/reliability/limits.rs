//! Resource limits: oversized bodies are refused without being read, slow
//! clients are cut off by timeouts while others are served, idle connections
//! neither starve a request nor stay forever, and memory stays bounded
//! (peak RSS, `VmHWM`, is printed and checked against a generous ceiling).
//!
//! `RELIABILITY_IDLE_CONNECTIONS` sets the idle-connection count (1,000).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::process::ServerProcess;
use crate::support::{self, HANG, Tenant};

/// A peak RSS above this means a body, or the connections, were held in memory.
const RSS_CEILING_KIB: u64 = 128 * 1024;

fn start(dir: &tempfile::TempDir, extra: &[(&str, &str)]) -> ServerProcess {
    let path = dir.path().join("limits.db");
    let mut env = vec![("DATABASE_PATH", path.to_str().expect("a UTF-8 path"))];
    env.extend_from_slice(extra);
    ServerProcess::start(&env)
}

/// A normal ingest answered `201` while something else is going on.
async fn assert_served(address: SocketAddr, tenant: &Tenant) {
    let run_id = uuid::Uuid::new_v4().to_string();
    let response = support::ingest(address, tenant, &run_id).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
}

fn finish(name: &str, server: &mut ServerProcess) -> u64 {
    let peak = support::peak_rss_kib(server.pid());
    server.terminate();
    let exit = server.wait_for_exit(HANG);
    assert!(exit.is_some_and(|status| status.success()), "{exit:?}");
    support::record_logs(name, server);
    eprintln!("{name}: peak RSS {peak} KiB");
    assert!(peak < RSS_CEILING_KIB, "{name}: peak RSS {peak} KiB");
    support::assert_no_secret_leaked();
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_as_one_gib_is_answered_413_without_being_read() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut server = start(&dir, &[]);
    let tenant = support::provision(server.address).await;

    for (path, authorization) in [("/orgs", String::new()), ("/ingest", tenant.bearer())] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {authorization}\r\n\
             Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{{\"na"
        );
        let response = support::raw_exchange(server.address, request.as_bytes()).await;
        support::record_raw(path, &response);

        assert_eq!(support::raw_status(&response), Some(413), "{path}");
        let body = support::raw_body(&response);
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    }
    assert_served(server.address, &tenant).await;
    finish("one GiB Content-Length", &mut server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_that_never_ends_is_answered_413_once_past_the_limit() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut server = start(&dir, &[]);
    let tenant = support::provision(server.address).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    let head = format!(
        "POST /ingest HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        tenant.bearer()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the headers");
    let (mut reader, mut writer) = stream.into_split();

    // Up to 256 MiB of chunks, never the closing one; stops when the server hangs up.
    let flood = tokio::spawn(async move {
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        let mut sent = 0_u64;
        while sent < 256 << 20 {
            if writer.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 0x10000;
        }
        sent
    });
    let mut response = Vec::new();
    tokio::time::timeout(HANG, async {
        use tokio::io::AsyncReadExt;
        let mut buffer = [0_u8; 4096];
        while let Ok(n) = reader.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("the server neither answered nor hung up");
    let sent = flood.await.expect("flood task");
    support::record_raw("chunked flood", &response);

    assert_eq!(
        support::raw_status(&response),
        Some(413),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_eq!(
        support::raw_body(&response)["error"]["code"],
        "payload_too_large"
    );
    assert!(sent < 256 << 20, "the server read all {sent} bytes");
    assert_served(server.address, &tenant).await;
    eprintln!("chunked flood: the server hung up after {} KiB", sent >> 10);
    finish("endless chunked body", &mut server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_a_second_is_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut server = start(&dir, &[("REQUEST_TIMEOUT_SECS", "2")]);
    let tenant = support::provision(server.address).await;
    let body = support::run_body(&uuid::Uuid::new_v4().to_string()).to_string();
    let head = format!(
        "POST /ingest HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        tenant.bearer(),
        body.len()
    );
    let stream = TcpStream::connect(server.address).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(head.as_bytes())
        .await
        .expect("send the headers");

    let trickle = tokio::spawn(async move {
        for byte in body.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    assert_served(server.address, &tenant).await;
    let mut response = Vec::new();
    tokio::time::timeout(HANG, async {
        use tokio::io::AsyncReadExt;
        let mut buffer = [0_u8; 4096];
        while let Ok(n) = reader.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("the trickling client was never cut off");
    trickle.abort();
    support::record_raw("trickled body", &response);

    assert_eq!(
        support::raw_status(&response),
        Some(408),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_eq!(
        support::raw_body(&response)["error"]["code"],
        "request_timeout"
    );
    assert_served(server.address, &tenant).await;
    finish("trickled body", &mut server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_never_finish_are_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut server = start(&dir, &[("HEADER_READ_TIMEOUT_SECS", "1")]);
    let tenant = support::provision(server.address).await;
    let mut half = TcpStream::connect(server.address).await.expect("connect");
    half.write_all(b"POST /ingest HTTP/1.1\r\nHost: test\r\nContent-Ty")
        .await
        .expect("send half the headers");
    let mut silent = TcpStream::connect(server.address).await.expect("connect");

    assert_served(server.address, &tenant).await;
    let half_answer = support::read_until_closed(&mut half).await;
    let silent_answer = support::read_until_closed(&mut silent).await;

    support::record_raw("half headers", &half_answer);
    assert!(
        support::raw_status(&half_answer).is_none_or(|status| status >= 400),
        "{}",
        String::from_utf8_lossy(&half_answer)
    );
    assert!(
        silent_answer.is_empty(),
        "{}",
        String::from_utf8_lossy(&silent_answer)
    );
    assert_served(server.address, &tenant).await;
    finish("unfinished headers", &mut server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_neither_starve_a_request_nor_stay_forever() {
    let count = support::env_count("RELIABILITY_IDLE_CONNECTIONS", 1000);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut server = start(&dir, &[]);
    let tenant = support::provision(server.address).await;
    let mut idle = Vec::with_capacity(count);
    for index in 0..count {
        let mut stream = TcpStream::connect(server.address).await.expect("connect");
        if index % 2 == 1 {
            stream
                .write_all(b"GET /orgs HTTP/1.1\r\n")
                .await
                .expect("write");
        }
        idle.push(stream);
    }

    assert_served(server.address, &tenant).await;
    let created = support::send(
        server.address,
        Method::POST,
        "/orgs",
        &[],
        Some(json!({"name": uuid::Uuid::new_v4().to_string()})),
    )
    .await;
    let mut still_open = 0;
    for stream in &idle {
        let mut probe = [0_u8; 1];
        let read = stream.try_read(&mut probe);
        if matches!(read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
            still_open += 1;
        }
    }
    let reaped = idle.into_iter().map(|mut stream| {
        tokio::spawn(async move { support::read_until_closed(&mut stream).await.len() })
    });
    for task in reaped.collect::<Vec<_>>() {
        task.await.expect("reap task");
    }

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        still_open, count,
        "idle connections closed before the request was served"
    );
    assert_served(server.address, &tenant).await;
    finish("idle connections", &mut server);
}
