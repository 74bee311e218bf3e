//! The integration suite: the real router on a real database, SQLite always,
//! PostgreSQL when a server is reachable (required in CI).

mod auth;
mod durability;
mod errors;
mod formats;
mod helpers;
mod hostile;
mod ingest;
mod logs;
mod orgs;
mod projects;
mod properties;
mod request_ids;
mod run_properties;
mod runs;
mod smoke;
mod storms;
mod tokens;
