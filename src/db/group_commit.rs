//! Group commit on SQLite.
//!
//! One task owns a dedicated write connection. Writes wait in a bounded
//! queue; the task takes whatever is waiting (up to [`MAX_BATCH`]), writes it in
//! one `BEGIN IMMEDIATE` transaction, commits, and only then answers each
//! request. A lone request is written at once: the task never waits for
//! company. With `synchronous=FULL` every acknowledged write is on disk, and
//! the cost of the sync is shared by the whole batch.
//!
//! Two kinds of write share the queue: ingested runs, stored with one
//! multi-row insert and at most one lookup per batch, and single statements
//! (the admin inserts), run one after another in the same transaction. A
//! batch of runs alone skips `BEGIN` and `COMMIT`: its one insert is a
//! transaction by itself, and the lookup of the runs it skipped follows.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteQueryResult};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row, Sqlite, SqliteTransaction};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::app_metrics;
use crate::db::background::BackgroundTask;
use crate::error::{AppError, AppResult, AuthFailure};
use crate::models::TestRun;
use crate::services::ingest::Ingested;
use crate::services::runs::sqlite_run;
use crate::timestamp;

/// The most requests written in one transaction.
pub const MAX_BATCH: usize = 256;

/// The most requests that may wait for the writer; beyond it, `503`.
pub const QUEUE_CAPACITY: usize = 4096;

/// A statement with its arguments bound, ready to hand to the writer.
pub type SqliteQuery = Query<'static, Sqlite, SqliteArguments>;

/// What a statement run by the writer did: its own result, which the caller
/// interprets (a UNIQUE violation is a `409` to one caller, a bug to another).
pub type StatementOutcome = Result<SqliteQueryResult, sqlx::Error>;

const INSERT_COLUMNS: &str = r#"
    INSERT INTO test_runs
        (id, project_id, run_id, status, duration_ms, timestamp, timestamp_us, created_at)
    VALUES
"#;

const INSERT_CONFLICT: &str = r#"
    ON CONFLICT (project_id, run_id) DO NOTHING
    RETURNING id
"#;

const SELECT_STORED: &str = r#"
    SELECT t.id, t.project_id, t.run_id, t.status, t.duration_ms, t.timestamp, t.created_at
    FROM (VALUES
"#;

const SELECT_STORED_JOIN: &str = r#"
    ) AS wanted
    JOIN test_runs AS t
      ON t.project_id = wanted.column1
     AND t.run_id = wanted.column2
"#;

/// A run to store, with the reply its request is waiting on.
struct RunWrite {
    run: TestRun,
    timestamp_us: i64,
    reply: oneshot::Sender<AppResult<Ingested>>,
}

/// A statement to run, with the reply its request is waiting on.
struct StatementWrite {
    query: SqliteQuery,
    reply: oneshot::Sender<AppResult<StatementOutcome>>,
}

enum Pending {
    Run(RunWrite),
    Statement(StatementWrite),
}

/// The handle requests submit writes through; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    task: BackgroundTask,
}

impl fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit")
            .field("waiting", &(QUEUE_CAPACITY - self.queue.capacity()))
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Opens the write connection and starts the writer task, which owns it
    /// from now on. After a failed batch the task opens a fresh connection,
    /// so that a fault that has cleared (a full disk, a read-only file)
    /// leaves nothing behind.
    pub async fn connect(options: SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let connection = options.connect().await?;
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let task = BackgroundTask::spawn(|closing| {
            write_until_closed(options, connection, receiver, closing)
        });
        Ok(Self { queue, task })
    }

    /// Stores `run` (whose `id` and `created_at` are already chosen), or
    /// returns the run already stored under its `(project_id, run_id)`.
    ///
    /// Answers once the transaction holding it has committed. `503` when the
    /// queue is full, the writer has stopped, or the batch could not be
    /// written; `401` when the run's project no longer exists.
    pub async fn store_run(&self, run: TestRun, timestamp_us: i64) -> AppResult<Ingested> {
        let (reply, answer) = oneshot::channel();
        self.submit(Pending::Run(RunWrite {
            run,
            timestamp_us,
            reply,
        }))?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Runs one statement in the next batch and returns its own outcome once
    /// the batch has committed (a failed statement changes nothing).
    ///
    /// The outer error is `503`: the queue is full, the writer has stopped,
    /// or the batch could not be written.
    pub async fn execute(&self, query: SqliteQuery) -> AppResult<StatementOutcome> {
        let (reply, answer) = oneshot::channel();
        self.submit(Pending::Statement(StatementWrite { query, reply }))?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn submit(&self, pending: Pending) -> AppResult<()> {
        self.queue.try_send(pending).map_err(|error| {
            let reason = match error {
                TrySendError::Full(_) => "the write queue is full",
                TrySendError::Closed(_) => "the writer has stopped",
            };
            AppError::Unavailable(reason.into())
        })
    }

    /// Stops taking new writes, writes everything already queued, and closes
    /// the write connection. Later writes get `503`.
    pub async fn close(&self) {
        if let Err(error) = self.task.stop().await {
            tracing::error!(error = %error, "the group-commit writer task failed");
        }
    }
}

fn stopped() -> AppError {
    AppError::Unavailable("the writer stopped before answering".into())
}

async fn write_until_closed(
    options: SqliteConnectOptions,
    connection: SqliteConnection,
    mut receiver: mpsc::Receiver<Pending>,
    closing: Arc<Notify>,
) {
    let mut connection = Some(connection);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut open = true;
    loop {
        let received = if open {
            tokio::select! {
                received = receiver.recv_many(&mut batch, MAX_BATCH) => received,
                () = closing.notified() => {
                    // Refuses new writes; those already queued are still received.
                    receiver.close();
                    open = false;
                    continue;
                }
            }
        } else {
            receiver.recv_many(&mut batch, MAX_BATCH).await
        };
        if received == 0 {
            break;
        }

        let mut writer = match connection.take() {
            Some(open) => open,
            None => match options.connect().await {
                Ok(open) => open,
                Err(error) => {
                    fail_batch(&mut batch, &error);
                    continue;
                }
            },
        };
        if write_batch(&mut writer, &mut batch).await {
            connection = Some(writer);
        } else {
            // The failed transaction may have left the connection in any state.
            let _ = writer.close_hard().await;
        }
    }

    if let Some(open) = connection
        && let Err(error) = open.close().await
    {
        tracing::warn!(error = %error, "closing the group-commit connection failed");
    }
}

/// Answers every request of a batch that found no connection `503`.
fn fail_batch(batch: &mut Vec<Pending>, error: &sqlx::Error) {
    tracing::error!(error = %error, writes = batch.len(), "opening the write connection failed");
    let cause = error.to_string();
    for pending in batch.drain(..) {
        match pending {
            Pending::Run(run) => {
                let _ = run.reply.send(Err(unavailable(&cause)));
            }
            Pending::Statement(statement) => {
                let _ = statement.reply.send(Err(unavailable(&cause)));
            }
        }
    }
}

fn unavailable(cause: &str) -> AppError {
    AppError::Unavailable(cause.to_owned().into())
}

/// Writes the batch in one transaction, then answers each request with its
/// own outcome. When the transaction as a whole fails, every request gets
/// `503`, nothing of the batch is stored, and this returns `false`. Leaves
/// `batch` empty.
async fn write_batch(connection: &mut SqliteConnection, batch: &mut Vec<Pending>) -> bool {
    let mut runs = Vec::new();
    let mut queries = Vec::new();
    let mut statement_replies = Vec::new();
    for pending in batch.drain(..) {
        match pending {
            Pending::Run(run) => runs.push(run),
            Pending::Statement(statement) => {
                queries.push(statement.query);
                statement_replies.push(statement.reply);
            }
        }
    }

    // A request that gave up has nothing to answer; its write stands.
    match try_write_batch(connection, &runs, queries).await {
        Ok((run_outcomes, statement_outcomes)) => {
            if !runs.is_empty() {
                app_metrics::record_write_batch(runs.len());
            }
            for (run, outcome) in runs.into_iter().zip(run_outcomes) {
                let _ = run.reply.send(outcome);
            }
            for (reply, outcome) in statement_replies.into_iter().zip(statement_outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            true
        }
        Err(error) => {
            let writes = runs.len() + statement_replies.len();
            tracing::error!(error = %error, writes, "writing a batch failed");
            let cause = error.to_string();
            for run in runs {
                let _ = run.reply.send(Err(unavailable(&cause)));
            }
            for reply in statement_replies {
                let _ = reply.send(Err(unavailable(&cause)));
            }
            false
        }
    }
}

type BatchOutcomes = (Vec<AppResult<Ingested>>, Vec<StatementOutcome>);

async fn try_write_batch(
    connection: &mut SqliteConnection,
    runs: &[RunWrite],
    queries: Vec<SqliteQuery>,
) -> Result<BatchOutcomes, sqlx::Error> {
    // Runs alone need no explicit transaction: their one insert statement is
    // atomic and durable by itself, and saves the writer two round trips. The
    // conflicts are then read after its commit: a stored run never changes.
    if queries.is_empty() {
        let mut outcomes = no_outcomes(runs);
        match insert_runs(connection, runs).await {
            Ok(inserted) => {
                mark_created(runs, &inserted, &mut outcomes, 0);
                resolve_conflicts(connection, runs, &mut outcomes).await?;
                return Ok((finish(outcomes), Vec::new()));
            }
            // Nothing was written; the transaction below confines the
            // failure to the runs that cause it.
            Err(error) if is_constraint_violation(&error) => {}
            Err(error) => return Err(error),
        }
    }

    let mut tx = connection.begin_with("BEGIN IMMEDIATE").await?;

    let run_outcomes = if runs.is_empty() {
        Vec::new()
    } else {
        store_runs(&mut tx, runs).await?
    };

    let mut statement_outcomes = Vec::with_capacity(queries.len());
    for query in queries {
        match query.execute(&mut *tx).await {
            // As for runs, a constraint error undoes its own statement only.
            Err(error) if !is_constraint_violation(&error) => return Err(error),
            outcome => statement_outcomes.push(outcome),
        }
    }

    tx.commit().await?;
    Ok((run_outcomes, statement_outcomes))
}

/// Stores the runs of a batch inside its transaction; each run's outcome, in
/// order.
async fn store_runs(
    tx: &mut SqliteTransaction<'_>,
    runs: &[RunWrite],
) -> Result<Vec<AppResult<Ingested>>, sqlx::Error> {
    let mut outcomes = no_outcomes(runs);

    match insert_runs(tx, runs).await {
        Ok(inserted) => mark_created(runs, &inserted, &mut outcomes, 0),
        // A constraint error undoes only the failed statement (SQLite's
        // statement journal); the transaction stays open. Retrying row by row
        // confines the failure to the runs that cause it.
        Err(error) if is_constraint_violation(&error) => {
            for (index, run) in runs.iter().enumerate() {
                let one = std::slice::from_ref(run);
                match insert_runs(tx, one).await {
                    Ok(inserted) => mark_created(one, &inserted, &mut outcomes, index),
                    Err(error) if is_constraint_violation(&error) => {
                        outcomes[index] = Some(Err(row_error(error)));
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Err(error) => return Err(error),
    }

    resolve_conflicts(tx, runs, &mut outcomes).await?;
    Ok(finish(outcomes))
}

/// One empty outcome per run of the batch.
fn no_outcomes(runs: &[RunWrite]) -> Vec<Option<AppResult<Ingested>>> {
    runs.iter().map(|_| None).collect()
}

/// Answers every run the insert skipped with the run stored under its
/// `(project_id, run_id)`, read in one query.
async fn resolve_conflicts(
    connection: &mut SqliteConnection,
    runs: &[RunWrite],
    outcomes: &mut [Option<AppResult<Ingested>>],
) -> Result<(), sqlx::Error> {
    let conflicted: Vec<usize> = (0..runs.len())
        .filter(|&index| outcomes[index].is_none())
        .collect();
    if conflicted.is_empty() {
        return Ok(());
    }

    let keys: Vec<&TestRun> = conflicted.iter().map(|&index| &runs[index].run).collect();
    let stored = select_stored(connection, &keys).await?;
    for index in conflicted {
        let run = &runs[index].run;
        let found = stored
            .get(&(run.project_id, run.run_id))
            .cloned()
            .map(|run| Ingested {
                run,
                created: false,
            })
            .ok_or_else(|| AppError::internal("insert conflicted but no stored run was found"));
        outcomes[index] = Some(found);
    }
    Ok(())
}

/// The outcomes, every run having one.
fn finish(outcomes: Vec<Option<AppResult<Ingested>>>) -> Vec<AppResult<Ingested>> {
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| Err(AppError::internal("a batched run got no outcome")))
        })
        .collect()
}

/// Records `created` for the runs of `slice` (starting at `offset` in the
/// batch) whose ids the insert returned.
fn mark_created(
    slice: &[RunWrite],
    inserted: &HashSet<Uuid>,
    outcomes: &mut [Option<AppResult<Ingested>>],
    offset: usize,
) {
    for (index, write) in slice.iter().enumerate() {
        if inserted.contains(&write.run.id) {
            outcomes[offset + index] = Some(Ok(Ingested {
                run: write.run.clone(),
                created: true,
            }));
        }
    }
}

/// One multi-row insert; returns the ids of the rows it stored. Rows whose
/// `(project_id, run_id)` exists, or repeats an earlier row, are skipped.
async fn insert_runs(
    connection: &mut SqliteConnection,
    runs: &[RunWrite],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    // Anonymous `?` placeholders: for a numbered `$N`, binding looks each
    // name up with a linear scan, which is quadratic over a batch of 2,048.
    let rows = vec!["(?,?,?,?,?,?,?,?)"; runs.len()].join(",");
    let sql = format!("{INSERT_COLUMNS}{rows}{INSERT_CONFLICT}");

    let mut query = sqlx::query(AssertSqlSafe(sql));
    for write in runs {
        let run = &write.run;
        query = query
            .bind(run.id.hyphenated())
            .bind(run.project_id.hyphenated())
            .bind(run.run_id.hyphenated())
            .bind(run.status.as_str())
            .bind(run.duration_ms)
            .bind(run.timestamp.as_str())
            .bind(write.timestamp_us)
            .bind(timestamp::format_millis(run.created_at));
    }
    let rows = query.fetch_all(&mut *connection).await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<Hyphenated, _>(0)?.into_uuid()))
        .collect()
}

/// The stored runs for the `(project_id, run_id)` pairs of `runs`, in one query.
async fn select_stored(
    connection: &mut SqliteConnection,
    runs: &[&TestRun],
) -> Result<HashMap<(Uuid, Uuid), TestRun>, sqlx::Error> {
    let keys = vec!["(?,?)"; runs.len()].join(",");
    let sql = format!("{SELECT_STORED}{keys}{SELECT_STORED_JOIN}");

    let mut query = sqlx::query(AssertSqlSafe(sql));
    for run in runs {
        query = query
            .bind(run.project_id.hyphenated())
            .bind(run.run_id.hyphenated());
    }
    let rows = query.fetch_all(&mut *connection).await?;
    let mut stored = HashMap::with_capacity(rows.len());
    for row in &rows {
        let run = sqlite_run(row).map_err(|error| sqlx::Error::Decode(error.into()))?;
        stored.insert((run.project_id, run.run_id), run);
    }
    Ok(stored)
}

/// SQLite's primary result code 19: a UNIQUE, CHECK, NOT NULL or FOREIGN KEY
/// constraint failed.
fn is_constraint_violation(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 19)
}

/// What a run that broke a constraint on its own is answered with.
fn row_error(error: sqlx::Error) -> AppError {
    match &error {
        // The token's project was deleted after the token was checked.
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            AppError::Unauthorized(AuthFailure::InvalidToken)
        }
        _ => AppError::internal(error),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use clap::Parser;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Executor};

    use super::*;
    use crate::config::Config;
    use crate::db::Database;
    use crate::models::RunStatus;
    use crate::services::{orgs, projects};

    /// A migrated database with two projects, and a second write connection.
    struct Fixture {
        dir: tempfile::TempDir,
        db: Database,
        connection: SqliteConnection,
        project_a: Uuid,
        project_b: Uuid,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let config =
            Config::try_parse_from(["test-analytics", "--database-path", path.to_str().unwrap()])
                .unwrap();
        let db = Database::connect(&config).await.unwrap();
        let org = orgs::insert_org(&db, "org".to_owned()).await.unwrap();
        let project_a = projects::insert_project(&db, org.id, "a".to_owned())
            .await
            .unwrap();
        let project_b = projects::insert_project(&db, org.id, "b".to_owned())
            .await
            .unwrap();
        let connection = connect(&path, Duration::from_secs(5)).await;
        Fixture {
            dir,
            db,
            connection,
            project_a: project_a.id,
            project_b: project_b.id,
        }
    }

    async fn connect(path: &std::path::Path, busy_timeout: Duration) -> SqliteConnection {
        SqliteConnectOptions::from_str(path.to_str().unwrap())
            .unwrap()
            .foreign_keys(true)
            .busy_timeout(busy_timeout)
            .connect()
            .await
            .unwrap()
    }

    fn run(project_id: Uuid, run_id: Uuid) -> TestRun {
        TestRun {
            id: Uuid::now_v7(),
            project_id,
            run_id,
            status: RunStatus::Passed,
            duration_ms: 1234,
            timestamp: "2026-01-12T10:10:00Z".to_owned(),
            created_at: timestamp::now(),
        }
    }

    /// Writes `runs` as one batch and returns each run's answer.
    async fn write_runs(
        connection: &mut SqliteConnection,
        runs: &[TestRun],
    ) -> Vec<AppResult<Ingested>> {
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        for run in runs {
            let (reply, answer) = oneshot::channel();
            batch.push(Pending::Run(RunWrite {
                run: run.clone(),
                timestamp_us: 1_768_212_600_000_000,
                reply,
            }));
            answers.push(answer);
        }

        write_batch(connection, &mut batch).await;

        answers
            .into_iter()
            .map(|mut answer| {
                answer
                    .try_recv()
                    .expect("answered when the batch is written")
            })
            .collect()
    }

    fn ingested(outcome: &AppResult<Ingested>) -> &Ingested {
        outcome.as_ref().unwrap_or_else(|e| panic!("{e:?}"))
    }

    async fn count_runs(db: &Database) -> i64 {
        let Database::Sqlite(db) = db else {
            unreachable!("the fixture is SQLite")
        };
        sqlx::query_scalar("SELECT COUNT(*) FROM test_runs")
            .fetch_one(&db.reader)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_mixed_batch_gives_every_run_its_own_answer() {
        let mut f = fixture().await;
        let stored_earlier = run(f.project_a, Uuid::new_v4());
        let first = write_runs(&mut f.connection, std::slice::from_ref(&stored_earlier)).await;
        assert!(ingested(&first[0]).created);
        let (new_a, repeated, shared_run_id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

        let batch = [
            run(f.project_a, new_a),
            run(f.project_a, stored_earlier.run_id),
            run(f.project_a, repeated),
            run(f.project_a, repeated),
            run(f.project_a, shared_run_id),
            run(f.project_b, shared_run_id),
            run(f.project_b, stored_earlier.run_id),
        ];
        let outcomes = write_runs(&mut f.connection, &batch).await;

        let answers: Vec<&Ingested> = outcomes.iter().map(ingested).collect();
        let created: Vec<bool> = answers.iter().map(|a| a.created).collect();
        assert_eq!(created, [true, false, true, false, true, true, true]);
        assert_eq!(answers[0].run, batch[0]);
        assert_eq!(
            answers[1].run, stored_earlier,
            "a replay returns the stored run"
        );
        assert_eq!(
            answers[3].run, batch[2],
            "a repeat returns the first of the batch"
        );
        assert_eq!(answers[4].run.project_id, f.project_a);
        assert_eq!(answers[5].run.project_id, f.project_b);
        assert_eq!(answers[6].run, batch[6], "run ids are per project");
        assert_eq!(count_runs(&f.db).await, 6);
    }

    #[tokio::test]
    async fn a_run_whose_project_is_gone_fails_alone_and_its_batch_mates_are_stored() {
        let mut f = fixture().await;
        let replayed = run(f.project_b, Uuid::new_v4());
        write_runs(&mut f.connection, std::slice::from_ref(&replayed)).await;

        let batch = [
            run(f.project_a, Uuid::new_v4()),
            run(Uuid::now_v7(), Uuid::new_v4()),
            run(f.project_b, replayed.run_id),
            run(f.project_b, Uuid::new_v4()),
        ];
        let outcomes = write_runs(&mut f.connection, &batch).await;

        assert!(ingested(&outcomes[0]).created);
        assert!(
            matches!(
                outcomes[1],
                Err(AppError::Unauthorized(AuthFailure::InvalidToken))
            ),
            "{:?}",
            outcomes[1]
        );
        assert_eq!(ingested(&outcomes[2]).run, replayed);
        assert!(ingested(&outcomes[3]).created);
        assert_eq!(count_runs(&f.db).await, 3);
    }

    #[tokio::test]
    async fn a_run_that_breaks_a_check_constraint_fails_alone() {
        let mut f = fixture().await;
        let mut negative = run(f.project_a, Uuid::new_v4());
        negative.duration_ms = -1;

        let batch = [
            run(f.project_a, Uuid::new_v4()),
            negative,
            run(f.project_a, Uuid::new_v4()),
        ];
        let outcomes = write_runs(&mut f.connection, &batch).await;

        assert!(ingested(&outcomes[0]).created);
        assert!(
            matches!(outcomes[1], Err(AppError::Internal(_))),
            "{:?}",
            outcomes[1]
        );
        assert!(ingested(&outcomes[2]).created);
        assert_eq!(count_runs(&f.db).await, 2);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_take_the_write_lock_answers_503_and_stores_nothing() {
        let f = fixture().await;
        let path = f.db_path();
        let mut blocked = connect(&path, Duration::from_millis(50)).await;
        let mut holder = connect(&path, Duration::from_secs(5)).await;
        holder.execute("BEGIN IMMEDIATE").await.unwrap();

        let batch = [
            run(f.project_a, Uuid::new_v4()),
            run(f.project_b, Uuid::new_v4()),
        ];
        let outcomes = write_runs(&mut blocked, &batch).await;
        holder.execute("ROLLBACK").await.unwrap();

        for outcome in &outcomes {
            assert!(
                matches!(outcome, Err(AppError::Unavailable(_))),
                "{outcome:?}"
            );
        }
        assert_eq!(count_runs(&f.db).await, 0);
    }

    #[tokio::test]
    async fn the_writer_answers_after_commit_and_close_loses_no_acknowledged_run() {
        let f = fixture().await;
        let options = SqliteConnectOptions::new()
            .filename(f.db_path())
            .foreign_keys(true);
        let writer = GroupCommit::connect(options).await.unwrap();
        let lone = writer.store_run(run(f.project_a, Uuid::new_v4()), 0).await;
        assert!(ingested(&lone).created);

        let submitted: Vec<_> = (0..200)
            .map(|_| {
                let writer = writer.clone();
                let run = run(f.project_a, Uuid::new_v4());
                tokio::spawn(async move { writer.store_run(run, 0).await })
            })
            .collect();
        writer.close().await;
        let mut acknowledged = 1;
        for task in submitted {
            match task.await.unwrap() {
                Ok(answer) => {
                    assert!(answer.created);
                    acknowledged += 1;
                }
                Err(AppError::Unavailable(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }

        assert_eq!(count_runs(&f.db).await, acknowledged);
        let after = writer.store_run(run(f.project_a, Uuid::new_v4()), 0).await;
        assert!(matches!(after, Err(AppError::Unavailable(_))), "{after:?}");
    }

    #[tokio::test]
    async fn statements_share_the_batch_and_a_failing_one_fails_alone() {
        let mut f = fixture().await;
        let insert_org = |name: &str| {
            sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(Uuid::now_v7().hyphenated())
                .bind(name.to_owned())
                .bind("2026-01-12T10:10:00.000Z")
        };
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        for query in [insert_org("fresh"), insert_org("org"), insert_org("other")] {
            let (reply, answer) = oneshot::channel();
            batch.push(Pending::Statement(StatementWrite { query, reply }));
            answers.push(answer);
        }
        let (reply, mut run_answer) = oneshot::channel();
        batch.push(Pending::Run(RunWrite {
            run: run(f.project_a, Uuid::new_v4()),
            timestamp_us: 0,
            reply,
        }));

        write_batch(&mut f.connection, &mut batch).await;

        let outcomes: Vec<StatementOutcome> = answers
            .into_iter()
            .map(|mut answer| answer.try_recv().unwrap().unwrap())
            .collect();
        assert_eq!(
            outcomes[0].as_ref().map(|done| done.rows_affected()).ok(),
            Some(1)
        );
        assert!(
            matches!(&outcomes[1], Err(sqlx::Error::Database(db)) if db.is_unique_violation()),
            "the fixture already has an organization named org: {:?}",
            outcomes[1]
        );
        assert!(outcomes[2].is_ok());
        assert!(ingested(&run_answer.try_recv().unwrap()).created);
    }

    #[tokio::test]
    async fn runs_batched_with_a_statement_get_their_answers_inside_its_transaction() {
        let mut f = fixture().await;
        let stored_earlier = run(f.project_a, Uuid::new_v4());
        write_runs(&mut f.connection, std::slice::from_ref(&stored_earlier)).await;
        let repeated = Uuid::new_v4();
        let runs = [
            run(f.project_a, Uuid::new_v4()),
            run(f.project_a, stored_earlier.run_id),
            run(f.project_b, repeated),
            run(f.project_b, repeated),
        ];

        let (reply, mut statement_answer) = oneshot::channel();
        let mut batch = vec![Pending::Statement(StatementWrite {
            query: sqlx::query(
                "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)",
            )
            .bind(Uuid::now_v7().hyphenated())
            .bind("batched".to_owned())
            .bind("2026-01-12T10:10:00.000Z"),
            reply,
        })];
        let mut answers = Vec::new();
        for run in &runs {
            let (reply, answer) = oneshot::channel();
            batch.push(Pending::Run(RunWrite {
                run: run.clone(),
                timestamp_us: 0,
                reply,
            }));
            answers.push(answer);
        }
        write_batch(&mut f.connection, &mut batch).await;

        let outcomes: Vec<AppResult<Ingested>> = answers
            .into_iter()
            .map(|mut answer| answer.try_recv().unwrap())
            .collect();
        let created: Vec<bool> = outcomes.iter().map(|o| ingested(o).created).collect();
        assert_eq!(created, [true, false, true, false]);
        assert_eq!(ingested(&outcomes[1]).run, stored_earlier);
        assert_eq!(ingested(&outcomes[3]).run, runs[2]);
        assert!(statement_answer.try_recv().unwrap().unwrap().is_ok());
        assert_eq!(count_runs(&f.db).await, 3);
    }

    impl Fixture {
        fn db_path(&self) -> std::path::PathBuf {
            self.dir.path().join("test.db")
        }
    }
}
