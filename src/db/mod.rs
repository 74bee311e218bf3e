//! The storage seam: one SQLite file by default, PostgreSQL when
//! `DATABASE_URL` names one. Services match on [`Database`] and keep the SQL of
//! both dialects side by side, so the two never drift apart unnoticed.

pub mod background;
pub mod checkpoint;
pub mod group_commit;
mod recent_runs;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::{Config, Durability, redact_url};
use crate::db::checkpoint::Checkpointer;
use crate::db::group_commit::{GroupCommit, WriterSettings};
use crate::error::AppError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections to whichever database the service runs on.
#[derive(Clone, Debug)]
pub enum Database {
    /// The embedded default.
    Sqlite(SqliteDb),
    /// The scale-out backend.
    Postgres(PgPool),
}

/// A SQLite file opened as two write connections and a pool of readers.
///
/// SQLite allows one writer at a time. Ingested runs and the single-statement
/// admin inserts go through the [`GroupCommit`] writer, which shares one
/// commit among all the writes waiting; migrations and multi-statement
/// maintenance go through the one connection of `writer`. The two write
/// connections wait for each other through the busy timeout instead of
/// failing with "database is locked": each write is a single statement or a
/// `BEGIN IMMEDIATE` transaction, which the busy handler retries (a deferred
/// transaction that upgrades to a write would not be).
#[derive(Clone, Debug)]
pub struct SqliteDb {
    /// The connection for migrations and multi-statement writes.
    pub writer: SqlitePool,
    /// The writer that batches runs and single statements into shared commits.
    pub group_commit: GroupCommit,
    /// Connections for queries that only read.
    pub reader: SqlitePool,
    /// Copies the WAL into the database file, away from the writer's commits.
    pub checkpointer: Checkpointer,
}

/// A constraint a write broke, named so that services give it a meaning
/// (a name taken, a parent missing) the same way on either backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A UNIQUE or PRIMARY KEY constraint.
    Unique,
    /// A FOREIGN KEY constraint.
    ForeignKey,
}

/// A constraint its caller did not expect to break: a bug, not the client's.
impl From<Violation> for AppError {
    fn from(violation: Violation) -> Self {
        AppError::internal(format!(
            "a write broke an unexpected {violation:?} constraint"
        ))
    }
}

/// Which backend, and where, for the start-up log. Never contains a password.
#[derive(Clone, Debug)]
pub struct Description {
    pub backend: &'static str,
    pub location: String,
}

impl Database {
    /// Opens the configured database, creating a SQLite file if it is missing,
    /// and applies the embedded migrations.
    pub async fn connect(config: &Config) -> Result<Self, sqlx::Error> {
        let database = match &config.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::Postgres(connect_postgres(url).await?)
            }
            Some(url) => {
                return Err(sqlx::Error::Configuration(
                    format!(
                        "DATABASE_URL must be a postgres:// URL, got {}",
                        redact_url(url)
                    )
                    .into(),
                ));
            }
            None => Self::Sqlite(connect_sqlite(config).await?),
        };
        database.migrate().await?;
        Ok(database)
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(db) => SQLITE_MIGRATIONS.run(&db.writer).await?,
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// The highest migration version applied.
    pub async fn schema_version(&self) -> Result<i64, sqlx::Error> {
        const SQL: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        match self {
            Self::Sqlite(db) => sqlx::query_scalar(SQL).fetch_one(&db.reader).await,
            Self::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await,
        }
    }

    /// Runs a trivial query: whether the database answers at all.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(db) => sqlx::query("SELECT 1")
                .execute(&db.reader)
                .await
                .map(drop)?,
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        };
        Ok(())
    }

    /// Deletes every row of every table, children first; keeps the schema.
    pub async fn delete_all_rows(&self) -> Result<(), sqlx::Error> {
        const TABLES: [&str; 4] = [
            "DELETE FROM test_runs",
            "DELETE FROM api_tokens",
            "DELETE FROM projects",
            "DELETE FROM organizations",
        ];
        match self {
            Self::Sqlite(db) => {
                let mut tx = db.writer.begin_with("BEGIN IMMEDIATE").await?;
                for sql in TABLES {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for sql in TABLES {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
        }
    }

    /// Waits for pending writes and closes every connection; on SQLite this
    /// writes every run still queued for the ingest writer, then checkpoints
    /// the WAL into the main file.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(db) => {
                db.checkpointer.stop().await;
                db.group_commit.close().await;
                db.reader.close().await;
                db.writer.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// What the start-up log says about the database.
    pub fn describe(&self, config: &Config) -> Description {
        match self {
            Self::Sqlite(_) => Description {
                backend: "sqlite",
                location: config.database_path.display().to_string(),
            },
            Self::Postgres(_) => Description {
                backend: "postgres",
                location: config
                    .database_url
                    .as_deref()
                    .map(redact_url)
                    .unwrap_or_default(),
            },
        }
    }
}

async fn connect_sqlite(config: &Config) -> Result<SqliteDb, sqlx::Error> {
    let synchronous = match config.sqlite_synchronous {
        Durability::Full => SqliteSynchronous::Full,
        Durability::Normal => SqliteSynchronous::Normal,
    };
    let options = SqliteConnectOptions::new()
        .filename(&config.database_path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(config.busy_timeout());

    // The writer opens first so that WAL mode is set before any reader connects.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(config.busy_timeout() + Duration::from_secs(1))
        .connect_with(options.clone())
        .await?;
    let group_commit = GroupCommit::start(WriterSettings {
        path: config.database_path.clone(),
        synchronous: match config.sqlite_synchronous {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
        busy_timeout: config.busy_timeout(),
    })
    .map_err(sqlx::Error::Io)?;
    let checkpointer = Checkpointer::start(options.clone()).await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(config.busy_timeout() + Duration::from_secs(1))
        .connect_with(options)
        .await?;
    Ok(SqliteDb {
        writer,
        group_commit,
        reader,
        checkpointer,
    })
}

async fn connect_postgres(url: &str) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    // A request waits for a pooled connection up to 10 s, inside the 15 s
    // request deadline, so that a burst queues instead of failing fast.
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// A migrated database on a fresh SQLite file in a temporary directory, for
/// unit tests; the file is `test.db` in the directory, which lives as long as
/// the returned handle.
#[cfg(test)]
pub async fn temporary_sqlite() -> (tempfile::TempDir, Database) {
    use clap::Parser;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let config =
        Config::try_parse_from(["test-analytics", "--database-path", path.to_str().unwrap()])
            .unwrap();
    let db = Database::connect(&config).await.unwrap();
    (dir, db)
}
