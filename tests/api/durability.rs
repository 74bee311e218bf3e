//! Power-loss durability is a setting: every connection the service writes
//! or reads through runs with SQLite `synchronous=FULL` (the WAL is synced
//! on each commit, before the response leaves), and on PostgreSQL with
//! `synchronous_commit=on`, unless the operator opts out.

use sqlx::Row;
use test_analytics::config::Durability;
use test_analytics::db::Database;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(every_service_connection_syncs_each_commit_to_disk_by_default);

/// `PRAGMA synchronous` and `journal_mode` on one connection of each SQLite pool.
async fn sqlite_settings(app: &TestApp) -> Vec<(i64, String)> {
    let Database::Sqlite(db) = &app.state.db else {
        panic!("not a SQLite app");
    };
    let mut settings = Vec::new();
    for pool in [&db.writer, &db.reader] {
        let mut connection = pool.acquire().await.expect("a pooled connection");
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *connection)
            .await
            .expect("read synchronous");
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *connection)
            .await
            .expect("read journal_mode");
        settings.push((synchronous, journal));
    }
    settings
}

async fn every_service_connection_syncs_each_commit_to_disk_by_default(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    match &app.state.db {
        Database::Sqlite(_) => {
            let full = sqlite_settings(&app).await;
            let normal = TestApp::with_config(backend, |config| {
                config.sqlite_synchronous = Durability::Normal;
            })
            .await
            .expect("a SQLite app");
            let opted_out = sqlite_settings(&normal).await;

            assert_eq!(full, [(2, "wal".to_owned()), (2, "wal".to_owned())]);
            assert_eq!(opted_out, [(1, "wal".to_owned()), (1, "wal".to_owned())]);
        }
        Database::Postgres(pool) => {
            let row = sqlx::query(
                "SELECT current_setting('synchronous_commit'), current_setting('fsync')",
            )
            .fetch_one(pool)
            .await
            .expect("read the settings");

            assert_eq!(row.get::<String, _>(0), "on");
            assert_eq!(row.get::<String, _>(1), "on");
        }
    }
}
