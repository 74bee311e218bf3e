//! The integration suite: the real router on a real database, SQLite always,
//! PostgreSQL when a server is reachable (required in CI).

mod helpers;
mod smoke;
