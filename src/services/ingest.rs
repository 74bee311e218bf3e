//! Test runs: idempotent ingestion.
//!
//! The UNIQUE (project_id, run_id) constraint is the only arbiter of
//! "already stored". The insert always goes first; when it conflicts, the
//! stored row is read and returned unchanged. Checking first and inserting
//! second would let two concurrent requests both see "absent".

use uuid::Uuid;

use crate::app_metrics;
use crate::db::Database;
use crate::error::{AppError, AppResult};
use crate::models::{NewRun, TestRun};
use crate::services::runs::find_run;
use crate::timestamp;

/// What ingesting a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// The stored run: the new one, or the one stored first.
    pub run: TestRun,
    /// `true` when this request stored it, `false` when it was already there.
    pub created: bool,
}

const INSERT_RUN: &str = r#"
    INSERT INTO test_runs
        (id, project_id, run_id, status, duration_ms, timestamp, timestamp_us, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (project_id, run_id) DO NOTHING
"#;

/// Stores a run for a project, or returns the run already stored under the
/// same `run_id` in that project.
pub async fn store_run(db: &Database, project_id: Uuid, new: NewRun) -> AppResult<Ingested> {
    let run = TestRun {
        id: Uuid::now_v7(),
        project_id,
        run_id: new.run_id,
        status: new.status,
        duration_ms: new.duration_ms,
        timestamp: new.timestamp,
        created_at: timestamp::now(),
    };
    let timestamp_us = timestamp::to_micros(new.timestamp_at);

    let inserted = match db {
        Database::Sqlite(db) => sqlx::query(INSERT_RUN)
            .bind(run.id.hyphenated())
            .bind(run.project_id.hyphenated())
            .bind(run.run_id.hyphenated())
            .bind(run.status.as_str())
            .bind(run.duration_ms)
            .bind(&run.timestamp)
            .bind(timestamp_us)
            .bind(timestamp::format_millis(run.created_at))
            .execute(&db.writer)
            .await?
            .rows_affected(),
        Database::Postgres(pool) => sqlx::query(INSERT_RUN)
            .bind(run.id)
            .bind(run.project_id)
            .bind(run.run_id)
            .bind(run.status.as_str())
            .bind(run.duration_ms)
            .bind(&run.timestamp)
            .bind(timestamp_us)
            .bind(run.created_at)
            .execute(pool)
            .await?
            .rows_affected(),
    };
    app_metrics::record_write_batch(1);
    if inserted == 1 {
        return Ok(Ingested { run, created: true });
    }

    let stored = find_run(db, project_id, run.run_id)
        .await?
        .ok_or_else(|| AppError::internal("insert conflicted but no stored run was found"))?;
    Ok(Ingested {
        run: stored,
        created: false,
    })
}
