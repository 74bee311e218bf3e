//! Group commit on SQLite.
//!
//! One thread owns a dedicated write connection. Writes wait in a bounded
//! queue; the thread takes whatever is waiting (up to [`MAX_BATCH`]), writes
//! it in one transaction, commits, and only then answers each request. A
//! lone request is written at once: the thread never waits for company. With
//! `synchronous=FULL` every acknowledged write is on disk, and the cost of
//! the sync is shared by the whole batch.
//!
//! Two kinds of write share the queue: ingested runs, stored with one
//! multi-row insert and at most one lookup per batch, and single statements
//! (the admin writes), run one after another in the same transaction. A
//! batch of runs alone skips `BEGIN` and `COMMIT`: its one insert is a
//! transaction by itself, and the lookup of the runs it skipped follows.
//!
//! The connection is driven synchronously through rusqlite, on the thread
//! that owns it: sqlx would run it on a worker thread of its own and hand
//! every statement and every row across a channel, which measured as more
//! work than SQLite's own.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::types::{Type, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::app_metrics;
use crate::db::Violation;
use crate::db::checkpoint::WRITER_CHECKPOINT_PAGES;
use crate::db::recent_runs::{RecentRuns, RunKey};
use crate::error::{AppError, AppResult, AuthFailure};
use crate::models::{RunStatus, TestRun};
use crate::services::ingest::Ingested;
use crate::timestamp;

/// The most requests written in one transaction.
pub const MAX_BATCH: usize = 256;

/// The most requests that may wait for the writer; beyond it, `503`.
pub const QUEUE_CAPACITY: usize = 4096;

/// What a statement run by the writer did: the rows it changed, or the
/// constraint it broke, which the caller gives its meaning (a UNIQUE
/// violation is a `409` to one caller, a bug to another).
pub type StatementOutcome = Result<u64, Violation>;

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

/// How the writer opens its connection.
#[derive(Clone, Debug)]
pub struct WriterSettings {
    /// The database file.
    pub path: PathBuf,
    /// `FULL` (every commit synced) or `NORMAL`.
    pub synchronous: &'static str,
    /// How long a write waits for a lock another connection holds.
    pub busy_timeout: Duration,
}

/// One SQL statement with its values, for the writer to run in its next
/// batch. Parameters are `$1`, `$2`, ... (as in the PostgreSQL dialect) or `?`.
#[derive(Clone, Debug)]
pub struct Statement {
    sql: &'static str,
    values: Vec<Value>,
}

impl Statement {
    pub fn new(sql: &'static str) -> Self {
        Self {
            sql,
            values: Vec::new(),
        }
    }

    /// Binds the next parameter.
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Binds the next parameter to a UUID in its hyphenated text form, as
    /// the schema stores it.
    pub fn bind_uuid(self, id: Uuid) -> Self {
        self.bind(id.hyphenated().to_string())
    }
}

/// A run to store, with the reply its request is waiting on.
struct RunWrite {
    run: TestRun,
    timestamp_us: i64,
    reply: oneshot::Sender<AppResult<Ingested>>,
}

/// A statement to run, with the reply its request is waiting on.
struct StatementWrite {
    statement: Statement,
    reply: oneshot::Sender<AppResult<StatementOutcome>>,
}

enum Pending {
    Run(RunWrite),
    Statement(StatementWrite),
    /// Ends intake; everything queued before it is still written.
    Close,
}

/// The handle requests submit writes through; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    finished: watch::Receiver<bool>,
}

impl fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit")
            .field("waiting", &(QUEUE_CAPACITY - self.queue.capacity()))
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Opens the write connection and starts the writer thread, which owns
    /// it from now on. After a failed batch the thread opens a fresh
    /// connection, so that a fault that has cleared (a full disk, a
    /// read-only file) leaves nothing behind.
    pub fn start(settings: WriterSettings) -> std::io::Result<Self> {
        let connection = open(&settings).map_err(std::io::Error::other)?;
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let (finish, finished) = watch::channel(false);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                write_until_closed(&settings, connection, receiver);
                finish.send_replace(true);
            })?;
        Ok(Self { queue, finished })
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
    /// the batch has committed (a statement that broke a constraint changes
    /// nothing).
    ///
    /// `503` when the queue is full, the writer has stopped, or the batch
    /// could not be written.
    pub async fn execute(&self, statement: Statement) -> AppResult<StatementOutcome> {
        let (reply, answer) = oneshot::channel();
        self.submit(Pending::Statement(StatementWrite { statement, reply }))?;
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
        // Waits for room rather than failing: a full queue drains by itself.
        // An error means the thread has already stopped taking writes.
        let _ = self.queue.send(Pending::Close).await;
        let mut finished = self.finished.clone();
        // An error means the thread ended without saying so: it panicked.
        if finished.wait_for(|done| *done).await.is_err() {
            tracing::error!("the group-commit writer thread failed");
        }
    }
}

fn stopped() -> AppError {
    AppError::Unavailable("the writer stopped before answering".into())
}

/// Opens a write connection with the service's settings.
fn open(settings: &WriterSettings) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        &settings.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(settings.busy_timeout)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", settings.synchronous)?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
    // One insert and one lookup per batch size may be prepared: keep them all.
    connection.set_prepared_statement_cache_capacity(MAX_BATCH * 2 + 16);
    Ok(connection)
}

fn write_until_closed(
    settings: &WriterSettings,
    connection: Connection,
    mut receiver: mpsc::Receiver<Pending>,
) {
    let mut writer = Some(Writer::new(connection));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // After a close, what is still queued is received; then `0` ends the loop.
    while receive(&mut receiver, &mut batch) > 0 {
        if batch
            .iter()
            .any(|pending| matches!(pending, Pending::Close))
        {
            receiver.close();
        }

        let mut current = match writer.take() {
            Some(current) => current,
            None => match open(settings) {
                Ok(connection) => Writer::new(connection),
                Err(error) => {
                    fail_batch(&mut batch, &error);
                    continue;
                }
            },
        };
        if write_batch(&mut current, &mut batch) {
            writer = Some(current);
        }
        // Otherwise the failed transaction may have left the connection in
        // any state, and what it remembers may not be what is stored:
        // dropping both closes the connection.
    }

    if let Some(current) = writer
        && let Err((_, error)) = current.connection.close()
    {
        tracing::warn!(error = %error, "closing the group-commit connection failed");
    }
}

/// Takes what is waiting, up to [`MAX_BATCH`], into `batch`; `0` once the
/// queue is closed and empty. When nothing is waiting it keeps looking for a
/// moment before it sleeps: under load the next write is usually microseconds
/// away, and waking a sleeping thread costs its sender a system call.
fn receive(receiver: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) -> usize {
    let looking = std::time::Instant::now();
    while receiver.is_empty() && !receiver.is_closed() && looking.elapsed() < SPIN {
        std::thread::yield_now();
    }
    receiver.blocking_recv_many(batch, MAX_BATCH)
}

const SPIN: Duration = Duration::from_micros(50);

/// Answers every request of a batch that found no connection `503`.
fn fail_batch(batch: &mut Vec<Pending>, error: &rusqlite::Error) {
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
            Pending::Close => {}
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
/// The write connection and the runs it has recently stored or read back.
struct Writer {
    connection: Connection,
    recent: RecentRuns,
}

impl Writer {
    fn new(connection: Connection) -> Self {
        Self {
            connection,
            recent: RecentRuns::default(),
        }
    }
}

fn write_batch(writer: &mut Writer, batch: &mut Vec<Pending>) -> bool {
    let mut runs = Vec::new();
    let mut statements = Vec::new();
    let mut statement_replies = Vec::new();
    for pending in batch.drain(..) {
        match pending {
            Pending::Run(run) => runs.push(run),
            Pending::Statement(write) => {
                statements.push(write.statement);
                statement_replies.push(write.reply);
            }
            Pending::Close => {}
        }
    }

    // A request that gave up has nothing to answer; its write stands.
    match try_write_batch(writer, &runs, &statements) {
        Ok((run_outcomes, statement_outcomes)) => {
            if !runs.is_empty() {
                app_metrics::record_write_batch(runs.len());
            }
            // Committed: each run answered is the one stored under its key.
            for outcome in run_outcomes.iter().flatten() {
                writer.recent.remember(&outcome.run);
            }
            for (run, outcome) in runs.into_iter().zip(run_outcomes) {
                let _ = run.reply.send(outcome);
            }
            for (reply, outcome) in statement_replies.into_iter().zip(statement_outcomes) {
                let _ = reply.send(outcome);
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

type BatchOutcomes = (Vec<AppResult<Ingested>>, Vec<AppResult<StatementOutcome>>);

fn try_write_batch(
    writer: &mut Writer,
    runs: &[RunWrite],
    statements: &[Statement],
) -> rusqlite::Result<BatchOutcomes> {
    let Writer { connection, recent } = writer;
    // Runs alone need no explicit transaction: their one insert statement is
    // atomic and durable by itself, and saves the writer two statements. The
    // conflicts are then read after its commit: a stored run never changes.
    if statements.is_empty() {
        let mut outcomes = no_outcomes(runs);
        match insert_runs(connection, runs) {
            Ok(inserted) => {
                mark_created(runs, &inserted, &mut outcomes, 0);
                resolve_conflicts(connection, recent, runs, &mut outcomes)?;
                return Ok((finish(outcomes), Vec::new()));
            }
            // Nothing was written; the transaction below confines the
            // failure to the runs that cause it.
            Err(error) if is_constraint_violation(&error) => {}
            Err(error) => return Err(error),
        }
    }

    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;

    let run_outcomes = if runs.is_empty() {
        Vec::new()
    } else {
        store_runs(&tx, recent, runs)?
    };

    let mut statement_outcomes = Vec::with_capacity(statements.len());
    for statement in statements {
        match run_statement(&tx, statement) {
            Ok(changed) => statement_outcomes.push(Ok(Ok(changed))),
            // As for runs, a constraint error undoes its own statement only.
            Err(error) if is_constraint_violation(&error) => {
                statement_outcomes.push(violation(error).map(Err));
            }
            Err(error) => return Err(error),
        }
    }

    tx.commit()?;
    Ok((run_outcomes, statement_outcomes))
}

/// Runs one statement, binding `$N` parameters by name and `?` by position.
fn run_statement(connection: &Connection, statement: &Statement) -> rusqlite::Result<u64> {
    let mut prepared = connection.prepare_cached(statement.sql)?;
    for (position, value) in statement.values.iter().enumerate() {
        let number = position + 1;
        let index = prepared
            .parameter_index(&format!("${number}"))?
            .unwrap_or(number);
        prepared.raw_bind_parameter(index, value)?;
    }
    let changed = prepared.raw_execute()?;
    Ok(changed as u64)
}

/// Stores the runs of a batch inside its transaction; each run's outcome, in
/// order.
fn store_runs(
    tx: &Connection,
    recent: &mut RecentRuns,
    runs: &[RunWrite],
) -> rusqlite::Result<Vec<AppResult<Ingested>>> {
    let mut outcomes = no_outcomes(runs);

    match insert_runs(tx, runs) {
        Ok(inserted) => mark_created(runs, &inserted, &mut outcomes, 0),
        // A constraint error undoes only the failed statement (SQLite's
        // statement journal); the transaction stays open. Retrying row by row
        // confines the failure to the runs that cause it.
        Err(error) if is_constraint_violation(&error) => {
            for (index, run) in runs.iter().enumerate() {
                let one = std::slice::from_ref(run);
                match insert_runs(tx, one) {
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

    resolve_conflicts(tx, recent, runs, &mut outcomes)?;
    Ok(finish(outcomes))
}

/// One empty outcome per run of the batch.
fn no_outcomes(runs: &[RunWrite]) -> Vec<Option<AppResult<Ingested>>> {
    runs.iter().map(|_| None).collect()
}

/// Answers every run the insert skipped with the run stored under its
/// `(project_id, run_id)`: a run this batch stored (a repeat within the
/// batch), else one the writer remembers, else read back, all the others in
/// one query.
fn resolve_conflicts(
    connection: &Connection,
    recent: &mut RecentRuns,
    runs: &[RunWrite],
    outcomes: &mut [Option<AppResult<Ingested>>],
) -> rusqlite::Result<()> {
    let conflicted: Vec<usize> = (0..runs.len())
        .filter(|&index| outcomes[index].is_none())
        .collect();
    if conflicted.is_empty() {
        return Ok(());
    }

    // Checked before memory: what this batch stored replaces whatever was
    // remembered under the same key (deleted since, by clean-db).
    // Until conflicts are resolved, a run answered `Ok` is one this batch created.
    let stored_here: HashMap<RunKey, usize> = (0..runs.len())
        .filter(|&index| matches!(outcomes[index], Some(Ok(_))))
        .map(|index| (RunKey::of(&runs[index].run), index))
        .collect();
    let mut unknown = Vec::new();
    for index in conflicted {
        let key = RunKey::of(&runs[index].run);
        let known = match stored_here.get(&key) {
            Some(&first) => Some(runs[first].run.clone()),
            None => recent.get(key),
        };
        match known {
            Some(run) => {
                outcomes[index] = Some(Ok(Ingested {
                    run,
                    created: false,
                }))
            }
            None => unknown.push(index),
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }

    let keys: Vec<&TestRun> = unknown.iter().map(|&index| &runs[index].run).collect();
    let stored = select_stored(connection, &keys)?;
    for index in unknown {
        let found = stored
            .get(&RunKey::of(&runs[index].run))
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

/// The SQL of a statement repeating `row` (a parenthesised list of `?`)
/// `count` times between `head` and `tail`. Anonymous `?` placeholders bind
/// by position, with no lookup by name.
fn repeated_rows(head: &str, row: &str, count: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + (row.len() + 1) * count + tail.len());
    sql.push_str(head);
    for index in 0..count {
        if index > 0 {
            sql.push(',');
        }
        sql.push_str(row);
    }
    sql.push_str(tail);
    sql
}

/// One multi-row insert; returns the ids of the rows it stored. Rows whose
/// `(project_id, run_id)` exists, or repeats an earlier row, are skipped.
fn insert_runs(connection: &Connection, runs: &[RunWrite]) -> rusqlite::Result<HashSet<Uuid>> {
    let sql = repeated_rows(
        INSERT_COLUMNS,
        "(?,?,?,?,?,?,?,?)",
        runs.len(),
        INSERT_CONFLICT,
    );
    let mut insert = connection.prepare_cached(&sql)?;

    let mut text = Uuid::encode_buffer();
    let mut index = 0;
    let mut next = || {
        index += 1;
        index
    };
    for write in runs {
        let run = &write.run;
        insert.raw_bind_parameter(next(), &*run.id.hyphenated().encode_lower(&mut text))?;
        insert.raw_bind_parameter(
            next(),
            &*run.project_id.hyphenated().encode_lower(&mut text),
        )?;
        insert.raw_bind_parameter(next(), &*run.run_id.hyphenated().encode_lower(&mut text))?;
        insert.raw_bind_parameter(next(), run.status.as_str())?;
        insert.raw_bind_parameter(next(), run.duration_ms)?;
        insert.raw_bind_parameter(next(), run.timestamp.as_str())?;
        insert.raw_bind_parameter(next(), write.timestamp_us)?;
        insert.raw_bind_parameter(next(), timestamp::format_millis(run.created_at))?;
    }

    let mut inserted = HashSet::with_capacity(runs.len());
    let mut rows = insert.raw_query();
    while let Some(row) = rows.next()? {
        inserted.insert(uuid_column(row.get_ref(0)?, 0)?);
    }
    Ok(inserted)
}

/// The stored runs for the `(project_id, run_id)` pairs of `runs`, in one query.
fn select_stored(
    connection: &Connection,
    runs: &[&TestRun],
) -> rusqlite::Result<HashMap<RunKey, TestRun>> {
    let sql = repeated_rows(SELECT_STORED, "(?,?)", runs.len(), SELECT_STORED_JOIN);
    let mut select = connection.prepare_cached(&sql)?;

    let mut text = Uuid::encode_buffer();
    for (position, run) in runs.iter().enumerate() {
        select.raw_bind_parameter(
            2 * position + 1,
            &*run.project_id.hyphenated().encode_lower(&mut text),
        )?;
        select.raw_bind_parameter(
            2 * position + 2,
            &*run.run_id.hyphenated().encode_lower(&mut text),
        )?;
    }

    let mut stored = HashMap::with_capacity(runs.len());
    let mut rows = select.raw_query();
    while let Some(row) = rows.next()? {
        let run = stored_run(row)?;
        stored.insert(RunKey::of(&run), run);
    }
    Ok(stored)
}

/// Decodes a row of [`SELECT_STORED`].
fn stored_run(row: &rusqlite::Row<'_>) -> rusqlite::Result<TestRun> {
    let text = |index: usize| -> rusqlite::Result<&str> { Ok(row.get_ref(index)?.as_str()?) };
    let bad = |index: usize, what: &'static str| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, what.into())
    };
    Ok(TestRun {
        id: uuid_column(row.get_ref(0)?, 0)?,
        project_id: uuid_column(row.get_ref(1)?, 1)?,
        run_id: uuid_column(row.get_ref(2)?, 2)?,
        status: RunStatus::parse(text(3)?)
            .ok_or_else(|| bad(3, "stored status is not passed or failed"))?,
        duration_ms: row.get(4)?,
        timestamp: text(5)?.to_owned(),
        created_at: timestamp::parse_stored(text(6)?)
            .ok_or_else(|| bad(6, "stored created_at is not RFC 3339"))?,
    })
}

fn uuid_column(value: ValueRef<'_>, index: usize) -> rusqlite::Result<Uuid> {
    Uuid::try_parse(value.as_str()?)
        .map_err(|error| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error.into()))
}

/// A UNIQUE, CHECK, NOT NULL or FOREIGN KEY constraint failed.
fn is_constraint_violation(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

/// The meaning of a constraint a statement broke; any constraint but these
/// two is a bug in the statement.
fn violation(error: rusqlite::Error) -> AppResult<Violation> {
    match extended_code(&error) {
        Some(
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
        ) => Ok(Violation::Unique),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => Ok(Violation::ForeignKey),
        _ => Err(AppError::internal(error)),
    }
}

fn extended_code(error: &rusqlite::Error) -> Option<i32> {
    match error {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code),
        _ => None,
    }
}

/// What a run that broke a constraint on its own is answered with.
fn row_error(error: rusqlite::Error) -> AppError {
    match violation(error) {
        // The token's project was deleted after the token was checked.
        Ok(Violation::ForeignKey) => AppError::Unauthorized(AuthFailure::InvalidToken),
        Ok(unexpected) => unexpected.into(),
        Err(error) => error,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::db::Database;
    use crate::services::{orgs, projects};

    /// A migrated database with two projects, and a second write connection.
    struct Fixture {
        dir: tempfile::TempDir,
        db: Database,
        writer: Writer,
        project_a: Uuid,
        project_b: Uuid,
    }

    async fn fixture() -> Fixture {
        let (dir, db) = crate::db::temporary_sqlite().await;
        let path = dir.path().join("test.db");
        let org = orgs::insert_org(&db, "org".to_owned()).await.unwrap();
        let project_a = projects::insert_project(&db, org.id, "a".to_owned())
            .await
            .unwrap();
        let project_b = projects::insert_project(&db, org.id, "b".to_owned())
            .await
            .unwrap();
        let connection = connect(&path, Duration::from_secs(5));
        Fixture {
            dir,
            db,
            writer: Writer::new(connection),
            project_a: project_a.id,
            project_b: project_b.id,
        }
    }

    fn settings(path: &Path, busy_timeout: Duration) -> WriterSettings {
        WriterSettings {
            path: path.to_owned(),
            synchronous: "FULL",
            busy_timeout,
        }
    }

    fn connect(path: &Path, busy_timeout: Duration) -> Connection {
        open(&settings(path, busy_timeout)).unwrap()
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

    fn run_write(run: &TestRun) -> (Pending, oneshot::Receiver<AppResult<Ingested>>) {
        let (reply, answer) = oneshot::channel();
        let pending = Pending::Run(RunWrite {
            run: run.clone(),
            timestamp_us: 1_768_212_600_000_000,
            reply,
        });
        (pending, answer)
    }

    fn statement_write(
        statement: Statement,
    ) -> (Pending, oneshot::Receiver<AppResult<StatementOutcome>>) {
        let (reply, answer) = oneshot::channel();
        (
            Pending::Statement(StatementWrite { statement, reply }),
            answer,
        )
    }

    fn insert_org(name: &str) -> Statement {
        Statement::new("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind_uuid(Uuid::now_v7())
            .bind(name.to_owned())
            .bind("2026-01-12T10:10:00.000Z".to_owned())
    }

    /// The answer a written batch left for one request.
    fn answer<T>(mut answer: oneshot::Receiver<T>) -> T {
        answer
            .try_recv()
            .expect("answered when the batch is written")
    }

    /// Writes `runs` as one batch and returns each run's answer.
    fn write_runs(writer: &mut Writer, runs: &[TestRun]) -> Vec<AppResult<Ingested>> {
        let (mut batch, answers): (Vec<_>, Vec<_>) = runs.iter().map(run_write).unzip();
        write_batch(writer, &mut batch);
        answers.into_iter().map(answer).collect()
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
        let first = write_runs(&mut f.writer, std::slice::from_ref(&stored_earlier));
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
        let outcomes = write_runs(&mut f.writer, &batch);

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
        write_runs(&mut f.writer, std::slice::from_ref(&replayed));

        let batch = [
            run(f.project_a, Uuid::new_v4()),
            run(Uuid::now_v7(), Uuid::new_v4()),
            run(f.project_b, replayed.run_id),
            run(f.project_b, Uuid::new_v4()),
        ];
        let outcomes = write_runs(&mut f.writer, &batch);

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
        let outcomes = write_runs(&mut f.writer, &batch);

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
    async fn a_failed_run_never_answers_for_a_batch_mate_with_its_key() {
        let mut f = fixture().await;
        let stored = run(f.project_a, Uuid::new_v4());
        write_runs(&mut f.writer, std::slice::from_ref(&stored));
        let mut broken = run(f.project_a, stored.run_id);
        broken.duration_ms = -1;

        let outcomes = write_runs(&mut f.writer, &[broken, run(f.project_a, stored.run_id)]);

        assert!(outcomes[0].is_err());
        assert_eq!(ingested(&outcomes[1]).run, stored);
        assert!(!ingested(&outcomes[1]).created);
    }

    #[tokio::test]
    async fn a_replay_of_a_remembered_run_is_answered_without_reading_it_back() {
        let mut f = fixture().await;
        let stored = run(f.project_a, Uuid::new_v4());
        write_runs(&mut f.writer, std::slice::from_ref(&stored));
        // Stored runs never change; changing one behind the writer's back
        // shows which answers come from memory.
        let other = connect(&f.db_path(), Duration::from_secs(5));
        other
            .execute("UPDATE test_runs SET duration_ms = 1", [])
            .unwrap();

        let fresh_writer = &mut Writer::new(connect(&f.db_path(), Duration::from_secs(5)));
        let read_back = write_runs(fresh_writer, &[run(f.project_a, stored.run_id)]);
        let remembered = write_runs(&mut f.writer, &[run(f.project_a, stored.run_id)]);

        assert_eq!(ingested(&read_back[0]).run.duration_ms, 1);
        assert_eq!(ingested(&remembered[0]).run, stored);
    }

    #[tokio::test]
    async fn a_run_deleted_since_it_was_remembered_is_stored_anew_and_answered_as_stored() {
        let mut f = fixture().await;
        let first = run(f.project_a, Uuid::new_v4());
        write_runs(&mut f.writer, std::slice::from_ref(&first));
        let replay = write_runs(&mut f.writer, &[run(f.project_a, first.run_id)]);
        assert_eq!(
            ingested(&replay[0]).run,
            first,
            "remembered or read, the stored run"
        );

        // clean-db, from a connection of its own.
        f.db.delete_all_rows().await.unwrap();
        let orgs = orgs::insert_org(&f.db, "again".to_owned()).await.unwrap();
        let project = projects::insert_project(&f.db, orgs.id, "a".to_owned())
            .await
            .unwrap();
        let mut second = run(project.id, first.run_id);
        second.status = RunStatus::Failed;
        let mut deleted_project = run(f.project_a, first.run_id);
        deleted_project.status = RunStatus::Failed;
        let outcomes = write_runs(
            &mut f.writer,
            &[
                second.clone(),
                run(project.id, first.run_id),
                deleted_project,
            ],
        );

        assert!(ingested(&outcomes[0]).created);
        assert_eq!(
            ingested(&outcomes[1]).run,
            second,
            "the run stored in this batch"
        );
        assert!(
            matches!(outcomes[2], Err(AppError::Unauthorized(_))),
            "the old project is gone, not remembered: {:?}",
            outcomes[2]
        );
        let later = write_runs(&mut f.writer, &[run(project.id, first.run_id)]);
        assert_eq!(ingested(&later[0]).run, second);
        assert_eq!(count_runs(&f.db).await, 1);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_take_the_write_lock_answers_503_and_stores_nothing() {
        let f = fixture().await;
        let path = f.db_path();
        let mut blocked = Writer::new(connect(&path, Duration::from_millis(50)));
        let holder = connect(&path, Duration::from_secs(5));
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();

        let batch = [
            run(f.project_a, Uuid::new_v4()),
            run(f.project_b, Uuid::new_v4()),
        ];
        let outcomes = write_runs(&mut blocked, &batch);
        holder.execute_batch("ROLLBACK").unwrap();

        for outcome in &outcomes {
            assert!(
                matches!(outcome, Err(AppError::Unavailable(_))),
                "{outcome:?}"
            );
        }
        assert_eq!(count_runs(&f.db).await, 0);
    }

    #[test]
    fn receive_takes_what_waits_up_to_a_batch_and_ends_once_closed_and_empty() {
        let (queue, mut receiver) = mpsc::channel(QUEUE_CAPACITY);
        for _ in 0..MAX_BATCH + 3 {
            queue.try_send(Pending::Close).unwrap();
        }
        let mut batch = Vec::new();

        assert_eq!(receive(&mut receiver, &mut batch), MAX_BATCH);
        batch.clear();
        assert_eq!(receive(&mut receiver, &mut batch), 3);
        batch.clear();

        // A write sent while the writer looks or sleeps is taken when it arrives.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            queue.try_send(Pending::Close).unwrap();
        });
        assert_eq!(receive(&mut receiver, &mut batch), 1);
        sender.join().unwrap();
        batch.clear();

        // Every sender is gone and nothing waits.
        assert_eq!(receive(&mut receiver, &mut batch), 0);
    }

    #[tokio::test]
    async fn the_writer_answers_after_commit_and_close_loses_no_acknowledged_run() {
        let f = fixture().await;
        let writer = GroupCommit::start(settings(&f.db_path(), Duration::from_secs(5))).unwrap();
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
        // Closing again returns at once.
        writer.close().await;
    }

    #[tokio::test]
    async fn statements_share_the_batch_and_a_failing_one_fails_alone() {
        let mut f = fixture().await;
        let (mut batch, answers): (Vec<_>, Vec<_>) =
            [insert_org("fresh"), insert_org("org"), insert_org("other")]
                .into_iter()
                .map(statement_write)
                .unzip();
        let (pending, run_answer) = run_write(&run(f.project_a, Uuid::new_v4()));
        batch.push(pending);

        write_batch(&mut f.writer, &mut batch);

        let outcomes: Vec<StatementOutcome> =
            answers.into_iter().map(|a| answer(a).unwrap()).collect();
        assert_eq!(outcomes[0], Ok(1));
        assert_eq!(
            outcomes[1],
            Err(Violation::Unique),
            "the fixture already has an organization named org"
        );
        assert_eq!(outcomes[2], Ok(1));
        assert!(ingested(&answer(run_answer)).created);
    }

    #[tokio::test]
    async fn numbered_parameters_bind_by_number_wherever_they_appear() {
        let mut f = fixture().await;
        // `$2` comes first in the text: bound by position it would take `$1`'s value.
        let statement =
            Statement::new("UPDATE organizations SET name = $2 WHERE name = $1 AND length($2) > 0")
                .bind("org".to_owned())
                .bind("renamed".to_owned());
        let (pending, outcome) = statement_write(statement);

        write_batch(&mut f.writer, &mut vec![pending]);

        assert_eq!(answer(outcome).unwrap(), Ok(1));
        let Database::Sqlite(db) = &f.db else {
            unreachable!("the fixture is SQLite")
        };
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM organizations")
            .fetch_all(&db.reader)
            .await
            .unwrap();
        assert_eq!(names, ["renamed"]);
    }

    #[tokio::test]
    async fn runs_batched_with_a_statement_get_their_answers_inside_its_transaction() {
        let mut f = fixture().await;
        let stored_earlier = run(f.project_a, Uuid::new_v4());
        write_runs(&mut f.writer, std::slice::from_ref(&stored_earlier));
        let repeated = Uuid::new_v4();
        let runs = [
            run(f.project_a, Uuid::new_v4()),
            run(f.project_a, stored_earlier.run_id),
            run(f.project_b, repeated),
            run(f.project_b, repeated),
        ];

        let (pending, statement_answer) = statement_write(insert_org("batched"));
        let mut batch = vec![pending];
        let mut answers = Vec::new();
        for run in &runs {
            let (pending, answer) = run_write(run);
            batch.push(pending);
            answers.push(answer);
        }
        write_batch(&mut f.writer, &mut batch);

        let outcomes: Vec<AppResult<Ingested>> = answers.into_iter().map(answer).collect();
        let created: Vec<bool> = outcomes.iter().map(|o| ingested(o).created).collect();
        assert_eq!(created, [true, false, true, false]);
        assert_eq!(ingested(&outcomes[1]).run, stored_earlier);
        assert_eq!(ingested(&outcomes[3]).run, runs[2]);
        assert_eq!(answer(statement_answer).unwrap(), Ok(1));
        assert_eq!(count_runs(&f.db).await, 3);
    }

    impl Fixture {
        fn db_path(&self) -> std::path::PathBuf {
            self.dir.path().join("test.db")
        }
    }
}
