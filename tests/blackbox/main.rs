//! Black-box checks of the built binary: what a client and an operator see
//! from the outside, on SQLite and on PostgreSQL.

#[path = "../common/postgres.rs"]
mod postgres;
#[path = "../common/process.rs"]
mod process;
#[path = "../common/wire.rs"]
mod wire;

mod contract;
mod instances;
mod maintenance;
mod operations;

use process::ServerProcess;

/// Where a black-box server keeps its data.
pub enum Storage {
    Sqlite(tempfile::TempDir),
    Postgres(postgres::TestDatabase),
}

impl Storage {
    /// A fresh SQLite directory or PostgreSQL database; `None` when the
    /// PostgreSQL half is skipped.
    pub async fn fresh(postgres: bool) -> Option<Self> {
        if postgres {
            return postgres::TestDatabase::create().await.map(Self::Postgres);
        }
        Some(Self::Sqlite(
            tempfile::tempdir().expect("a temporary directory"),
        ))
    }

    /// The environment that points the binary at this storage.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Sqlite(dir) => {
                vec![(
                    "DATABASE_PATH",
                    dir.path().join("blackbox.db").display().to_string(),
                )]
            }
            Self::Postgres(database) => vec![("DATABASE_URL", database.url.clone())],
        }
    }

    /// Starts the binary on this storage with extra settings.
    pub fn start(&self, extra: &[(&str, &str)]) -> ServerProcess {
        let env = self.env();
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        ServerProcess::start(&all)
    }
}
