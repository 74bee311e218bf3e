//! Throwaway PostgreSQL databases: one per test, created on the local server
//! and dropped afterwards. Without a reachable server the PostgreSQL half of a
//! suite is skipped with a notice, unless `TEST_REQUIRE_POSTGRES=1`.

use std::io::Write;
use std::sync::Once;
use std::time::Duration;

/// The server test databases are created on.
pub fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// In CI the PostgreSQL half must run: a missing server fails the test.
pub fn required() -> bool {
    std::env::var("TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A database that exists for the lifetime of this value.
pub struct TestDatabase {
    name: String,
    /// A URL for the service to connect with.
    pub url: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database; `None` when PostgreSQL is not
    /// reachable and not required.
    pub async fn create() -> Option<Self> {
        let pool = match admin_pool().await {
            Ok(pool) => pool,
            Err(error) if !required() => {
                announce_skipped(&error.to_string());
                return None;
            }
            Err(error) => panic!("TEST_REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {error}"),
        };
        let name = format!("ta_test_{}", uuid::Uuid::new_v4().simple());
        let sql = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""));
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("create a test database");
        pool.close().await;

        let admin = admin_url();
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Some(Self { name, url })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context; a short-lived runtime does the work.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(pool) = admin_pool().await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                        pool.close().await;
                    }
                });
            }
        })
        .join();
    }
}

async fn admin_pool() -> Result<sqlx::PgPool, sqlx::Error> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&admin_url())
        .await
}

static SKIP_NOTICE: Once = Once::new();

fn announce_skipped(reason: &str) {
    SKIP_NOTICE.call_once(|| {
        // Written to the real stderr, past the test harness's output capture.
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: PostgreSQL is not reachable at {} ({reason}); the PostgreSQL half of the \
             suite is SKIPPED. Set TEST_REQUIRE_POSTGRES=1 to make this a failure.\n",
            admin_url()
        );
    });
}
