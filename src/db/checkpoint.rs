//! WAL checkpoints off the commit path.
//!
//! SQLite's own checkpoint runs inside the commit that crosses its threshold,
//! so one batch in every few dozen waits for pages to be copied into the
//! database file and synced. Here a task of its own runs a `PASSIVE`
//! checkpoint a few times a second on a connection of its own: it copies what
//! the WAL holds while the writer goes on committing, and never blocks the
//! writer or a reader. The writer keeps a high threshold of its own as a
//! backstop, for a WAL the task cannot keep small.

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Notify;

use crate::db::background::BackgroundTask;

/// How often the WAL is checkpointed.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// WAL pages after which the group-commit writer checkpoints in its own
/// commit: 16 MiB of 4 KiB pages. Only reached when the task falls behind.
pub const WRITER_CHECKPOINT_PAGES: u32 = 4096;

/// The running checkpoint task; [`Checkpointer::stop`] ends it.
#[derive(Clone, Debug)]
pub struct Checkpointer(BackgroundTask);

impl Checkpointer {
    /// Opens the task's connection and starts checkpointing.
    pub async fn start(options: SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let connection = options.connect().await?;
        Ok(Self(BackgroundTask::spawn(|stopping| {
            checkpoint_until_stopped(connection, stopping)
        })))
    }

    /// Ends the task and closes its connection.
    pub async fn stop(&self) {
        if let Err(error) = self.0.stop().await {
            tracing::error!(error = %error, "the checkpoint task failed");
        }
    }
}

async fn checkpoint_until_stopped(mut connection: SqliteConnection, stopping: Arc<Notify>) {
    let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stopping.notified() => break,
        }
        // A failure (the disk is full, the file read-only) is the writer's to
        // report: its commits fail too. The next tick tries again.
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut connection)
            .await
        {
            tracing::debug!(error = %error, "WAL checkpoint failed");
        }
    }
    let _ = connection.close().await;
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Row};

    use crate::services::orgs;

    /// Organizations in the main database file alone (`None` before the
    /// schema itself is there): an `immutable` connection does not read the
    /// WAL, so it sees checkpointed rows only.
    async fn checkpointed_orgs(path: &std::path::Path) -> Option<i64> {
        let mut file_only = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .immutable(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("SELECT COUNT(*) FROM organizations")
            .fetch_one(&mut file_only)
            .await
            .ok()
            .map(|row| row.get(0))
    }

    /// Polls the file for up to five seconds until it holds `wanted` organizations.
    async fn wait_for_orgs(path: &std::path::Path, wanted: impl Fn(i64) -> bool) -> Option<i64> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let found = checkpointed_orgs(path).await;
            if found.is_some_and(&wanted) || std::time::Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn committed_writes_reach_the_database_file_without_a_commit_crossing_the_threshold() {
        let (dir, db) = crate::db::temporary_sqlite().await;
        let path = dir.path().join("test.db");
        // The migrations were committed to the WAL; the task copies them too.
        let before = wait_for_orgs(&path, |_| true)
            .await
            .expect("the schema reaches the database file");

        // Ten commits, a few dozen WAL pages: far below the writer's own
        // threshold, so only the checkpoint task can copy them.
        for n in 0..10 {
            orgs::insert_org(&db, format!("org {n}")).await.unwrap();
        }
        let after = wait_for_orgs(&path, |count| count == before + 10).await;

        assert_eq!(after, Some(before + 10));
        db.close().await;
    }
}
