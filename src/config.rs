//! Runtime configuration: command-line flags, each backed by an environment
//! variable (and so by a `.env` file), documented by `--help`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// The service's settings. Every flag can also be given as the environment
/// variable named beside it.
#[derive(Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// SQLite database file, created and migrated on first start.
    #[arg(long, env = "DATABASE_PATH", default_value = "./test_analytics.db")]
    pub database_path: PathBuf,

    /// When set to a postgres:// URL, PostgreSQL is used instead of SQLite.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Log level (error, warn, info, debug, trace) or a tracing filter directive.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Bearer token the admin routes require; when unset they are open.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Longest a request may take before it is answered 408 or 503, in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 15)]
    pub request_timeout_secs: u64,

    /// Longest a client may take to send a request's headers, and longest an
    /// idle keep-alive connection is kept open, in seconds.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Longest the drain on SIGTERM or Ctrl-C may take, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// SQLite `synchronous` setting: `full` makes every acknowledged write
    /// survive a power cut; `normal` survives a process crash only.
    #[arg(long, env = "SQLITE_SYNCHRONOUS", value_enum, default_value_t = Durability::Full)]
    pub sqlite_synchronous: Durability,

    /// How long a statement waits for a lock held by another process before
    /// the request is answered 503, in milliseconds.
    #[arg(long, env = "DATABASE_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    pub database_busy_timeout_ms: u64,

    /// Maintenance task to run instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Maintenance subcommands. With none, the binary serves HTTP.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Delete every row of every table, keeping the schema.
    CleanDb {
        /// Confirm that all data is to be deleted.
        #[arg(long)]
        yes: bool,
    },
}

/// How hard SQLite works to keep a committed transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// Sync the WAL on every commit: survives power loss.
    Full,
    /// Sync at checkpoints only: survives a process crash, not a power cut.
    Normal,
}

impl Config {
    /// The deadline for a single request.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The deadline for a request's headers, and for an idle connection.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// The deadline for draining in-flight requests at shutdown.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// The SQLite busy timeout.
    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.database_busy_timeout_ms)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("host", &self.host)
            .field("database_path", &self.database_path)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("log_level", &self.log_level)
            .field("admin_token", &self.admin_token)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .finish_non_exhaustive()
    }
}

/// A secret setting whose `Debug` never prints its value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A database URL with any password replaced by `***`, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/ta"),
            "postgres://app:***@db:5432/ta"
        );
        assert_eq!(redact_url("postgres://db/ta"), "postgres://db/ta");
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let config = Config::try_parse_from(["test-analytics"]).unwrap();

        assert_eq!(config.port, 3000);
        assert_eq!(config.host.to_string(), "0.0.0.0");
        assert_eq!(config.database_path, PathBuf::from("./test_analytics.db"));
        assert_eq!(config.log_level, "info");
        assert_eq!(config.sqlite_synchronous, Durability::Full);
    }
}
