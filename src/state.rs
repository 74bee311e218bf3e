//! The state every handler can reach.

use std::sync::Arc;

use crate::config::Config;
use crate::db::Database;

/// Shared by all requests; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database the service runs on.
    pub db: Database,
    /// The settings the process started with.
    pub config: Arc<Config>,
}

impl AppState {
    pub fn new(db: Database, config: Config) -> Self {
        Self {
            db,
            config: Arc::new(config),
        }
    }
}
