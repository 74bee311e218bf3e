//! The integration suite: the real router on a real database, SQLite always,
//! PostgreSQL when a server is reachable (required in CI).

mod admin;
mod auth;
mod batching;
mod durability;
mod errors;
mod formats;
mod health;
mod helpers;
mod hostile;
mod ingest;
mod logs;
mod metrics;
mod openapi;
mod orgs;
mod projects;
mod properties;
mod request_ids;
mod run_properties;
mod runs;
mod smoke;
mod storms;
mod token_cache;
mod token_lifecycle;
mod tokens;
