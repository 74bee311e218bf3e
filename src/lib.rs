//! A multi-tenant test analytics backend: CI pipelines post test runs to
//! `/ingest` with a project token; admins manage organizations, projects and
//! tokens over HTTP.
//!
//! The binary is a thin shell around [`run`]; tests build the same router with
//! [`app`] and serve it with [`serve`].

pub mod app_metrics;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod models;
pub mod request_id;
pub mod routes;
pub mod services;
pub mod state;
pub mod telemetry;
pub mod timestamp;
pub mod token;
pub mod token_cache;
pub mod token_usage;
pub mod validation;

use std::io;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::{Command, Config};
use crate::db::Database;
use crate::state::AppState;

/// The complete application: every route behind the middleware stack.
pub fn app(state: AppState) -> Router {
    let config = state.config.clone();

    let (router, _document) = routes::api_router().split_for_parts();

    // Layers listed first run innermost.
    router
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout(),
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::track_request))
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then stops
/// accepting (the listener is closed, so new connections are refused) and
/// lets in-flight requests finish.
///
/// Each connection speaks HTTP/1.1 and must send its request headers within
/// `HEADER_READ_TIMEOUT_SECS`, which also bounds how long an idle keep-alive
/// connection is kept: a client that opens a connection and stalls cannot
/// hold it forever.
///
/// From the moment `shutdown` resolves, before the listener closes, the
/// state is draining and `/readyz` answers `503`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let header_read_timeout = state.config.header_read_timeout();
    let draining = state.clone();
    let router = app(state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    pause_after_accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses are small and written whole; waiting to coalesce them only adds latency.
        let _ = stream.set_nodelay(true);

        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection closed with an error");
            }
        });
    }

    draining.begin_draining();
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Accept fails for reasons of one connection (reset before it was taken)
/// and for reasons of the process (out of file descriptors). Neither stops
/// the server; the second is given a moment to clear instead of a busy loop.
async fn pause_after_accept_error(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};

    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %error, "accepting a connection failed");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// What the binary does: a maintenance command, or serve until SIGTERM/Ctrl-C.
pub async fn run(config: Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let db = Database::connect(&config).await?;
    let described = db.describe(&config);
    let schema_version = db.schema_version().await?;

    if let Some(Command::CleanDb { yes }) = &config.command {
        if !*yes {
            return Err("clean-db deletes every row; run it again with --yes to confirm".into());
        }
        db.delete_all_rows().await?;
        tracing::info!(database = %described.location, "all rows deleted");
        db.close().await;
        return Ok(());
    }

    let listener = TcpListener::bind((config.host, config.port)).await?;
    tracing::info!(
        address = %listener.local_addr()?,
        database = described.backend,
        location = %described.location,
        schema_version,
        "listening"
    );
    if config.admin_token.is_none() {
        tracing::warn!(
            "ADMIN_TOKEN is not set: the admin routes are open to anyone who can reach them"
        );
    }

    let drain_deadline = config.shutdown_timeout();
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel();
    let server = serve(listener, AppState::new(db.clone(), config), async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received; draining in-flight requests");
        let _ = signalled_tx.send(());
    });
    let deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(drain_deadline).await;
        } else {
            std::future::pending::<()>().await;
        }
    };

    tokio::select! {
        served = server => served?,
        () = deadline => tracing::warn!("drain deadline passed; abandoning open connections"),
    }
    db.close().await;
    tracing::info!("drained; database closed");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
