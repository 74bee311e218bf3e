//! Test runs: reading them back.

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::db::Database;
use crate::error::{AppError, AppResult};
use crate::models::{RunStatus, TestRun};
use crate::timestamp;

const SELECT_RUN: &str = r#"
    SELECT id, project_id, run_id, status, duration_ms, timestamp, created_at
    FROM test_runs
    WHERE project_id = $1
      AND run_id = $2
"#;

/// The run stored under `run_id` in a project, if any.
pub async fn find_run(db: &Database, project_id: Uuid, run_id: Uuid) -> AppResult<Option<TestRun>> {
    let run = match db {
        Database::Sqlite(db) => sqlx::query(SELECT_RUN)
            .bind(project_id.hyphenated())
            .bind(run_id.hyphenated())
            .fetch_optional(&db.reader)
            .await?
            .map(|row| sqlite_run(&row))
            .transpose()?,
        Database::Postgres(pool) => sqlx::query(SELECT_RUN)
            .bind(project_id)
            .bind(run_id)
            .fetch_optional(pool)
            .await?
            .map(|row| postgres_run(&row))
            .transpose()?,
    };
    Ok(run)
}

/// Decodes a `test_runs` row read from SQLite.
pub(crate) fn sqlite_run(row: &SqliteRow) -> AppResult<TestRun> {
    let created_at: String = row.try_get("created_at")?;
    Ok(TestRun {
        id: row.try_get::<Hyphenated, _>("id")?.into_uuid(),
        project_id: row.try_get::<Hyphenated, _>("project_id")?.into_uuid(),
        run_id: row.try_get::<Hyphenated, _>("run_id")?.into_uuid(),
        status: parse_status(row.try_get("status")?)?,
        duration_ms: row.try_get("duration_ms")?,
        timestamp: row.try_get("timestamp")?,
        created_at: timestamp::parse_stored(&created_at)
            .ok_or_else(|| AppError::internal("stored created_at is not RFC 3339"))?,
    })
}

/// Decodes a `test_runs` row read from PostgreSQL.
pub(crate) fn postgres_run(row: &PgRow) -> AppResult<TestRun> {
    Ok(TestRun {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        run_id: row.try_get("run_id")?,
        status: parse_status(row.try_get("status")?)?,
        duration_ms: row.try_get("duration_ms")?,
        timestamp: row.try_get("timestamp")?,
        created_at: row.try_get("created_at")?,
    })
}

fn parse_status(text: &str) -> AppResult<RunStatus> {
    RunStatus::parse(text)
        .ok_or_else(|| AppError::internal("stored status is not passed or failed"))
}
