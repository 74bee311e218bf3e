//! Crash safety: the server is killed with SIGKILL at a random moment under
//! concurrent ingest load, restarted on the same file, and every request it
//! had acknowledged is sent again. Each must be found stored (`200`), never
//! created anew (`201`, which would mean the acknowledged run was lost).
//!
//! `RELIABILITY_CRASH_ROUNDS` sets the number of rounds (10 by default).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::keepalive::WireClient;
use crate::process::ServerProcess;
use crate::support::{self, Tenant, integrity_check, random_below};

/// Ingest clients running side by side during a round.
const CLIENTS: usize = 4;

/// What one client saw until the server died under it.
#[derive(Default)]
struct ClientOutcome {
    /// Runs answered `201` or `200`: stored, as far as the client knows.
    acknowledged: Vec<String>,
    /// Runs sent without an answer: stored or not, retrying must be safe.
    in_doubt: Vec<String>,
    /// Answers of `500` or above.
    server_errors: Vec<String>,
}

/// Ingests distinct runs over one kept-alive connection (reconnecting when it
/// drops) until `stop` is set or the server no longer accepts connections.
async fn ingest_until_killed(
    server: std::net::SocketAddr,
    tenant: Tenant,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let mut client = None;
    while !stop.load(Ordering::Relaxed) {
        if client.is_none() {
            match WireClient::connect(server).await {
                Ok(connected) => client = Some(connected),
                Err(_) => break,
            }
        }
        let Some(connection) = client.as_mut() else {
            break;
        };

        let run_id = uuid::Uuid::new_v4().to_string();
        match support::ingest_on(connection, &tenant, &run_id).await {
            Ok(response) if response.status.is_success() => {
                outcome.acknowledged.push(run_id);
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok(response) if response.status.is_server_error() => {
                outcome.server_errors.push(response.text);
            }
            Ok(response) => panic!("unexpected answer under load: {}", response.text),
            Err(_) => {
                outcome.in_doubt.push(run_id);
                client = None;
            }
        }
    }
    outcome
}

/// Sends every run again over a few connections; returns the statuses seen.
async fn replay(server: std::net::SocketAddr, tenant: &Tenant, runs: &[String]) -> Vec<StatusCode> {
    let chunks = runs.chunks(runs.len().div_ceil(CLIENTS).max(1));
    let tasks: Vec<_> = chunks
        .map(|chunk| {
            let (tenant, chunk) = (tenant.clone(), chunk.to_vec());
            tokio::spawn(async move {
                let mut client = WireClient::connect(server)
                    .await
                    .expect("connect to replay");
                let mut statuses = Vec::new();
                for run_id in chunk {
                    let response = support::ingest_on(&mut client, &tenant, &run_id)
                        .await
                        .expect("a replay answered");
                    if response.status == StatusCode::OK {
                        assert_eq!(
                            response.body["run_id"],
                            run_id.as_str(),
                            "{}",
                            response.text
                        );
                    }
                    statuses.push(response.status);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.expect("replay task"));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_run_survives_sigkill_under_concurrent_load() {
    let rounds = support::env_count("RELIABILITY_CRASH_ROUNDS", 10);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = dir.path().join("crash.db");
    let env = [("DATABASE_PATH", path.to_str().expect("a UTF-8 path"))];
    let mut server = ServerProcess::start(&env);
    let tenant = support::provision(server.address).await;
    let (mut acknowledged, mut in_doubt, mut server_errors) = (0, 0, 0);

    for round in 1..=rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (tenant, stop, acks) = (tenant.clone(), stop.clone(), acks.clone());
                tokio::spawn(ingest_until_killed(server.address, tenant, stop, acks))
            })
            .collect();
        // The load is under way once something is acknowledged; the kill comes
        // at a random moment 50-550 ms later.
        let started = Instant::now();
        while acks.load(Ordering::Relaxed) == 0 && started.elapsed() < support::HANG {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50 + random_below(500))).await;
        server.kill();
        stop.store(true, Ordering::Relaxed);
        support::record_logs("crash round", &server);
        let mut round_acked = Vec::new();
        let mut round_doubt = Vec::new();
        for client in clients {
            let outcome = client.await.expect("client task");
            round_acked.extend(outcome.acknowledged);
            round_doubt.extend(outcome.in_doubt);
            server_errors += outcome.server_errors.len();
            assert!(
                outcome.server_errors.is_empty(),
                "{:?}",
                outcome.server_errors
            );
        }

        let report = integrity_check(&path).await;
        assert_eq!(
            report,
            ["ok"],
            "round {round}: integrity_check after the kill"
        );
        server = ServerProcess::start(&env);
        let replayed = replay(server.address, &tenant, &round_acked).await;
        let lost = replayed
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        assert_eq!(lost, 0, "round {round}: {lost} acknowledged runs were lost");
        assert!(
            replayed.iter().all(|s| *s == StatusCode::OK),
            "round {round}: {replayed:?}"
        );
        let retried = replay(server.address, &tenant, &round_doubt).await;
        assert!(
            retried
                .iter()
                .all(|s| matches!(*s, StatusCode::OK | StatusCode::CREATED)),
            "round {round}: retrying an unanswered request gave {retried:?}"
        );

        assert!(
            !round_acked.is_empty(),
            "round {round}: nothing was acknowledged"
        );
        acknowledged += round_acked.len();
        in_doubt += round_doubt.len();
    }

    let stored = support::stored_runs(&path).await;
    server.terminate();
    let exit = server.wait_for_exit(Duration::from_secs(15));
    support::record_logs("crash final", &server);
    assert!(exit.is_some_and(|status| status.success()), "{exit:?}");
    // Every run was either acknowledged or retried until answered: each is stored exactly once.
    assert_eq!(
        stored,
        i64::try_from(acknowledged + in_doubt).expect("a count")
    );
    eprintln!(
        "crash safety: {rounds} rounds, {acknowledged} acknowledged runs replayed (all 200), \
         {in_doubt} unanswered requests retried, {server_errors} 5xx, {stored} runs stored, \
         integrity_check ok every round"
    );
    support::assert_no_secret_leaked();
}
