//! A task that runs until told to stop, then finishes its work and is awaited.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::task::{JoinError, JoinHandle};

/// A spawned task with its stop signal; cheap to clone, stopped once.
#[derive(Clone, Debug)]
pub struct BackgroundTask {
    stop: Arc<Notify>,
    handle: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl BackgroundTask {
    /// Spawns `run`, which is given the signal it must watch.
    pub fn spawn<F>(run: impl FnOnce(Arc<Notify>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = Arc::new(Notify::new());
        let handle = tokio::spawn(run(stop.clone()));
        Self {
            stop,
            handle: Arc::new(Mutex::new(Some(handle))),
        }
    }

    /// Signals the task and waits for it to end. Later calls return at once.
    pub async fn stop(&self) -> Result<(), JoinError> {
        // notify_one keeps the signal for a task not yet waiting on it.
        self.stop.notify_one();
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match handle {
            Some(handle) => handle.await,
            None => Ok(()),
        }
    }
}
