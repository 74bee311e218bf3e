//! A multi-tenant test analytics backend: CI pipelines post test runs to
//! `/ingest` with a project token; admins manage organizations, projects and
//! tokens over HTTP.
//!
//! The binary is a thin shell around [`run`]; tests build the same router with
//! [`app`] and serve it with [`serve`].

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
pub mod validation;

use std::io;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
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

    // Layers listed first run innermost.
    routes::api_router()
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

/// Serves `app(state)` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
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
