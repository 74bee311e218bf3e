//! Graceful shutdown: SIGTERM while requests are in flight. Each in-flight
//! request is answered as it would have been, the listener is closed at once
//! (new connections are refused), the process exits 0 within its drain
//! deadline, and what it acknowledged is there after a restart.
//!
//! A request is held in flight without any sleep in the service: the client
//! sends its headers with `Expect: 100-continue`, waits for the server's
//! `100 Continue` (sent when the handler starts reading the body, so the
//! request has been accepted and authenticated), and only then sends the body.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::process::ServerProcess;
use crate::support::{self, HANG, Tenant};

/// Requests in flight when the signal arrives.
const IN_FLIGHT: usize = 8;

/// An ingest whose headers the server has read and whose body it waits for.
struct HeldRequest {
    stream: TcpStream,
    run_id: String,
    body: String,
}

impl HeldRequest {
    /// Sends the headers and waits until the handler asks for the body.
    async fn open(address: SocketAddr, tenant: &Tenant) -> Self {
        let run_id = uuid::Uuid::new_v4().to_string();
        let body = support::run_body(&run_id).to_string();
        let head = format!(
            "POST /ingest HTTP/1.1\r\nHost: {address}\r\nAuthorization: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\n\r\n",
            tenant.bearer(),
            body.len()
        );
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(head.as_bytes())
            .await
            .expect("send the headers");

        let mut seen = Vec::new();
        let mut buffer = [0_u8; 256];
        tokio::time::timeout(HANG, async {
            while !String::from_utf8_lossy(&seen).contains("100 Continue\r\n\r\n") {
                let n = stream.read(&mut buffer).await.expect("read 100 Continue");
                assert!(
                    n > 0,
                    "closed before 100 Continue: {}",
                    String::from_utf8_lossy(&seen)
                );
                seen.extend_from_slice(&buffer[..n]);
            }
        })
        .await
        .expect("no 100 Continue");
        Self {
            stream,
            run_id,
            body,
        }
    }

    /// Sends the body and reads the answer until the server closes.
    async fn finish(mut self) -> (String, Vec<u8>) {
        self.stream
            .write_all(self.body.as_bytes())
            .await
            .expect("send the body");
        let response = support::read_until_closed(&mut self.stream).await;
        support::record_raw("held ingest", &response);
        (self.run_id, response)
    }
}

/// Polls until connecting fails; returns whether it did within `HANG`.
async fn connections_refused(address: SocketAddr) -> bool {
    let deadline = Instant::now() + HANG;
    while Instant::now() < deadline {
        if TcpStream::connect(address).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_refuses_new_ones_and_exits_0() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = dir.path().join("shutdown.db");
    let env = [
        ("DATABASE_PATH", path.to_str().expect("a UTF-8 path")),
        ("SHUTDOWN_TIMEOUT_SECS", "10"),
    ];
    let mut server = ServerProcess::start(&env);
    let tenant = support::provision(server.address).await;
    let before = uuid::Uuid::new_v4().to_string();
    let stored_before = support::ingest(server.address, &tenant, &before).await;
    assert_eq!(
        stored_before.status,
        StatusCode::CREATED,
        "{}",
        stored_before.text
    );
    let mut held = Vec::new();
    for _ in 0..IN_FLIGHT {
        held.push(HeldRequest::open(server.address, &tenant).await);
    }

    server.terminate();
    let signalled = Instant::now();
    let refused = connections_refused(server.address).await;
    let mut finished = Vec::new();
    for request in held {
        finished.push(tokio::spawn(request.finish()));
    }
    let mut answered = Vec::new();
    for task in finished {
        answered.push(task.await.expect("finish task"));
    }
    let exit = server.wait_for_exit(Duration::from_secs(15));
    let drained_in = signalled.elapsed();

    assert!(refused, "new connections were still accepted after SIGTERM");
    for (run_id, response) in &answered {
        assert_eq!(
            support::raw_status(response),
            Some(201),
            "{}",
            String::from_utf8_lossy(response)
        );
        assert_eq!(support::raw_body(response)["run_id"], run_id.as_str());
    }
    assert!(exit.is_some_and(|status| status.success()), "{exit:?}");
    let messages: Vec<_> = server
        .log_records()
        .iter()
        .map(|record| record["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        messages.iter().any(|m| m == "drained; database closed"),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("drain deadline passed")),
        "{messages:?}"
    );
    support::record_logs("graceful shutdown", &server);

    let mut restarted = ServerProcess::start(&env);
    for run_id in answered.iter().map(|(run_id, _)| run_id).chain([&before]) {
        let replay = support::ingest(restarted.address, &tenant, run_id).await;
        assert_eq!(
            replay.status,
            StatusCode::OK,
            "lost after shutdown: {}",
            replay.text
        );
    }
    restarted.terminate();
    assert!(restarted.wait_for_exit(HANG).is_some_and(|s| s.success()));
    support::record_logs("after graceful shutdown", &restarted);
    eprintln!(
        "graceful shutdown: {IN_FLIGHT} in-flight ingests answered 201, exit 0 after {drained_in:?}"
    );
    support::assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_cannot_hold_shutdown_past_the_drain_deadline() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = dir.path().join("stuck.db");
    let env = [
        ("DATABASE_PATH", path.to_str().expect("a UTF-8 path")),
        ("SHUTDOWN_TIMEOUT_SECS", "1"),
        ("REQUEST_TIMEOUT_SECS", "60"),
    ];
    let mut server = ServerProcess::start(&env);
    let tenant = support::provision(server.address).await;
    let stuck = HeldRequest::open(server.address, &tenant).await;

    server.terminate();
    let exit = server.wait_for_exit(HANG);

    assert!(exit.is_some_and(|status| status.success()), "{exit:?}");
    let messages: Vec<_> = server
        .log_records()
        .iter()
        .map(|record| record["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("drain deadline passed")),
        "{messages:?}"
    );
    drop(stuck);
    support::record_logs("stuck shutdown", &server);
    support::assert_no_secret_leaked();
}
