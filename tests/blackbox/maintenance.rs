//! The binary's maintenance surface: `--help`, `clean-db`, and a schema that
//! the migration files alone reproduce.

use std::process::{Command, Output};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::Storage;
use crate::wire::send_over_socket;

fn binary(storage: &Storage, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_test-analytics"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_PATH")
        .env("LOG_LEVEL", "warn");
    for (name, value) in storage.env() {
        command.env(name, value);
    }
    command.args(args).output().expect("run the binary")
}

#[test]
fn help_documents_every_setting_with_its_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_test-analytics"))
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success());
    for variable in [
        "PORT",
        "HOST",
        "DATABASE_PATH",
        "DATABASE_URL",
        "LOG_LEVEL",
        "ADMIN_TOKEN",
    ] {
        assert!(
            help.contains(&format!("env: {variable}")),
            "{variable} missing from:\n{help}"
        );
    }
    assert!(help.contains("clean-db"), "{help}");
}

#[tokio::test]
async fn clean_db_on_sqlite_refuses_without_yes_and_then_empties_every_table() {
    clean_db_refuses_without_yes_and_then_empties_every_table(false).await;
}

#[tokio::test]
async fn clean_db_on_postgres_refuses_without_yes_and_then_empties_every_table() {
    clean_db_refuses_without_yes_and_then_empties_every_table(true).await;
}

async fn clean_db_refuses_without_yes_and_then_empties_every_table(postgres: bool) {
    let Some(storage) = Storage::fresh(postgres).await else {
        return;
    };
    let mut server = storage.start(&[]);
    let org = send_over_socket(
        server.address,
        Method::POST,
        "/orgs",
        &[],
        Some(json!({"name": "a"})),
    )
    .await
    .expect("create an organization");
    assert_eq!(org.status, StatusCode::CREATED);
    server.terminate();
    server
        .wait_for_exit(Duration::from_secs(15))
        .expect("exits");

    let refused = binary(&storage, &["clean-db"]);
    assert!(!refused.status.success(), "clean-db ran without --yes");
    assert_eq!(
        count_orgs(&storage).await,
        1,
        "a refused clean-db deleted rows"
    );

    let cleaned = binary(&storage, &["clean-db", "--yes"]);
    assert!(
        cleaned.status.success(),
        "{}",
        String::from_utf8_lossy(&cleaned.stdout)
    );
    assert_eq!(count_orgs(&storage).await, 0);

    // The schema survives: the service starts again and accepts the same name.
    let mut server = storage.start(&[]);
    let again = send_over_socket(
        server.address,
        Method::POST,
        "/orgs",
        &[],
        Some(json!({"name": "a"})),
    )
    .await
    .expect("create an organization");
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    server.terminate();
    server
        .wait_for_exit(Duration::from_secs(15))
        .expect("exits");
}

async fn count_orgs(storage: &Storage) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM organizations";
    match storage {
        Storage::Sqlite(dir) => {
            let path = dir.path().join("blackbox.db");
            let mut connection = SqliteConnectOptions::new()
                .filename(path)
                .connect()
                .await
                .unwrap();
            let count = sqlx::query_scalar(SQL)
                .fetch_one(&mut connection)
                .await
                .unwrap();
            connection.close().await.unwrap();
            count
        }
        Storage::Postgres(database) => {
            let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
            let count = sqlx::query_scalar(SQL)
                .fetch_one(&mut connection)
                .await
                .unwrap();
            connection.close().await.unwrap();
            count
        }
    }
}

/// Applying `migrations/*.sql` by hand, in order, as an operator would with
/// the sqlite3 shell, yields the schema the service creates for itself.
#[tokio::test]
async fn migration_files_applied_by_hand_give_the_service_schema() {
    let storage = Storage::fresh(false).await.expect("sqlite storage");
    let mut server = storage.start(&[]);
    server.terminate();
    server
        .wait_for_exit(Duration::from_secs(15))
        .expect("exits");
    let Storage::Sqlite(dir) = &storage else {
        unreachable!("sqlite storage")
    };

    let by_hand = dir.path().join("by-hand.db");
    let mut connection = SqliteConnectOptions::new()
        .filename(&by_hand)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for file in files {
        let sql = std::fs::read_to_string(&file).unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut connection)
            .await
            .unwrap();
    }
    connection.close().await.unwrap();

    assert_eq!(
        schema_of(&by_hand).await,
        schema_of(&dir.path().join("blackbox.db")).await
    );
}

async fn schema_of(path: &std::path::Path) -> Vec<(String, String)> {
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap();
    let schema = sqlx::query_as(
        r#"
        SELECT name, sql
        FROM sqlite_master
        WHERE name NOT LIKE '_sqlx%' AND name NOT LIKE 'sqlite_%'
        ORDER BY name
        "#,
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();
    schema
}
