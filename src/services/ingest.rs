//! Test runs: idempotent ingestion.
//!
//! The UNIQUE (project_id, run_id) constraint is the only arbiter of
//! "already stored". The insert always goes first; when it conflicts, the
//! stored row is read and returned unchanged. Checking first and inserting
//! second would let two concurrent requests both see "absent".
//!
//! On SQLite runs are handed to the group-commit writer
//! ([`crate::db::group_commit`]), which applies the same rule to a whole
//! batch in one transaction; PostgreSQL takes concurrent inserts itself.

use uuid::Uuid;

use crate::app_metrics;
use crate::db::Database;
use crate::error::{AppError, AppResult, AuthFailure};
use crate::models::{NewRun, TestRun};
use crate::services::is_foreign_key_violation;
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

    let pool = match db {
        Database::Sqlite(db) => return db.group_commit.store_run(run, timestamp_us).await,
        Database::Postgres(pool) => pool,
    };

    let inserted = sqlx::query(INSERT_RUN)
        .bind(run.id)
        .bind(run.project_id)
        .bind(run.run_id)
        .bind(run.status.as_str())
        .bind(run.duration_ms)
        .bind(&run.timestamp)
        .bind(timestamp_us)
        .bind(run.created_at)
        .execute(pool)
        .await;
    let inserted = match inserted {
        Ok(done) => done.rows_affected(),
        // The token's project was deleted after the token was checked.
        Err(e) if is_foreign_key_violation(&e) => {
            return Err(AppError::Unauthorized(AuthFailure::InvalidToken));
        }
        Err(e) => return Err(e.into()),
    };
    // On PostgreSQL every ingest is its own transaction: a batch of one.
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
