//! The state every handler can reach.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::app_metrics;
use crate::config::Config;
use crate::db::Database;
use crate::token_cache::TokenCache;
use crate::token_usage::TokenUsage;

/// Shared by all requests; cloning it (axum does, for every request) costs
/// one reference count.
#[derive(Clone, Debug)]
pub struct AppState(Arc<SharedState>);

/// What [`AppState`] gives access to.
#[derive(Debug)]
pub struct SharedState {
    /// The database the service runs on.
    pub db: Database,
    /// The settings the process started with.
    pub config: Arc<Config>,
    /// Set once a shutdown signal arrives; `/readyz` then answers `503`.
    pub draining: AtomicBool,
    /// Renders the process's metrics for `/metrics`.
    pub metrics: PrometheusHandle,
    /// When each token's `last_used_at` was last written.
    pub token_usage: TokenUsage,
    /// Tokens recently found active; revoking a token must forget it here.
    pub token_cache: TokenCache,
}

impl AppState {
    /// State for a service on `db`; installs the metrics recorder on first use.
    pub fn new(db: Database, config: Config) -> Self {
        Self(Arc::new(SharedState {
            db,
            config: Arc::new(config),
            draining: AtomicBool::new(false),
            metrics: app_metrics::handle(),
            token_usage: TokenUsage::default(),
            token_cache: TokenCache::default(),
        }))
    }

    /// Marks the service as shutting down: from now on it is not ready.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether a shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

impl Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}
