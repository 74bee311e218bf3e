//! Latency of the read routes on a large project.
//!
//! Seeds one project with 1,000,000 runs spread over a year (and three other
//! projects with 100,000 each) straight into the database in bulk, then
//! sends each read request through the full router (middleware, token
//! lookup, query, JSON) a number of times and prints the median, with the
//! query plan of the statements behind it.
//!
//! ```sh
//! cargo run --release --example read_bench
//! cargo run --release --example read_bench -- --backend postgres
//! ```

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::{Parser, ValueEnum};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::Row;
use test_analytics::config::Config;
use test_analytics::db::Database;
use test_analytics::services::run_queries::{
    self, POSTGRES_AGGREGATES, POSTGRES_DURATION_AT_RANK, SQLITE_AGGREGATES,
    SQLITE_DURATION_AT_RANK_BY_SORTING, SQLITE_DURATION_AT_RANK_BY_WALKING, SQLITE_SORT_AT_MOST,
};
use test_analytics::services::{orgs, projects, tokens};
use test_analytics::state::AppState;
use test_analytics::timestamp;
use tower::ServiceExt;
use uuid::Uuid;

/// The end of the seeded year: runs are spaced evenly before it.
const END_SECS: i64 = 1_768_176_000; // 2026-01-12T00:00:00Z
const DAY_SECS: i64 = 86_400;
const YEAR_SECS: i64 = 365 * DAY_SECS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Read-path benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Database to measure.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Runs in the measured project.
    #[arg(long, default_value_t = 1_000_000)]
    runs: i64,
    /// Other projects in the same table.
    #[arg(long, default_value_t = 3)]
    other_projects: i64,
    /// Runs in each other project.
    #[arg(long, default_value_t = 100_000)]
    other_runs: i64,
    /// Times each request is sent; the median is reported.
    #[arg(long, default_value_t = 21)]
    repeats: usize,
    /// PostgreSQL server on which a scratch database is created and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
}

/// A value bound to a statement, converted for each dialect.
#[derive(Clone, Debug)]
enum Param {
    Int(i64),
    Text(&'static str),
    Id(Uuid),
}

/// One measured request and the statements behind it.
struct Scenario {
    name: &'static str,
    path: String,
    statements: Vec<(String, Vec<Param>)>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    let mut config = Config::parse_from(["read_bench"]);
    config.database_path = scratch.path().join("bench.db");
    config.database_url = None;
    let mut scratch_database = None;
    if args.backend == Backend::Postgres {
        let name = format!("ta_bench_{}", Uuid::new_v4().simple());
        admin(&args.postgres_url, &format!("CREATE DATABASE \"{name}\"")).await?;
        let base = args
            .postgres_url
            .rsplit_once('/')
            .map_or("", |(base, _)| base);
        config.database_url = Some(format!("{base}/{name}"));
        scratch_database = Some(name);
    }

    let outcome = run(&args, config).await;

    if let Some(name) = scratch_database {
        admin(
            &args.postgres_url,
            &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
        )
        .await?;
    }
    outcome
}

async fn run(args: &Args, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::connect(&config).await?;
    let org = orgs::insert_org(&db, "bench".to_owned()).await?;
    let mut project_ids = Vec::new();
    for index in 0..=args.other_projects {
        let project = projects::insert_project(&db, org.id, format!("p{index}")).await?;
        project_ids.push(project.id);
    }
    let project_id = project_ids[0];
    let token = tokens::insert_token(&db, project_id).await?.token.value;

    let started = Instant::now();
    for (index, id) in project_ids.iter().enumerate() {
        let runs = if index == 0 {
            args.runs
        } else {
            args.other_runs
        };
        seed(&db, *id, index as i64, runs).await?;
    }
    // What autovacuum would do soon after a bulk load: statistics for the
    // planner, and the visibility map that lets index-only scans skip the heap.
    if let Database::Postgres(pool) = &db {
        sqlx::query("VACUUM (ANALYZE) test_runs")
            .execute(pool)
            .await?;
    }
    let total = args.runs + args.other_projects * args.other_runs;
    println!(
        "seeded {total} runs ({} in the measured project) on {:?} in {:.1} s\n",
        args.runs,
        args.backend,
        started.elapsed().as_secs_f64()
    );

    let router = test_analytics::app(AppState::new(db.clone(), config));
    let scenarios = scenarios(&db, &router, &token, project_id, args.runs).await?;

    println!("| request | median | min | max |\n| --- | --- | --- | --- |");
    let mut plans = String::new();
    for scenario in &scenarios {
        let mut timings = Vec::with_capacity(args.repeats);
        for _ in 0..args.repeats {
            let started = Instant::now();
            let (status, _) = get(&router, &token, &scenario.path).await?;
            timings.push(started.elapsed());
            assert_eq!(status, StatusCode::OK, "{}", scenario.path);
        }
        timings.sort();
        println!(
            "| {} | {} | {} | {} |",
            scenario.name,
            millis(timings[timings.len() / 2]),
            millis(timings[0]),
            millis(timings[timings.len() - 1]),
        );
        plans.push_str(&format!("\n== {}: GET {}\n", scenario.name, scenario.path));
        for (sql, params) in &scenario.statements {
            plans.push_str(&explain(&db, sql, params).await?);
        }
    }
    println!("{plans}");
    db.close().await;
    Ok(())
}

/// The requests measured, with the statements each one runs.
async fn scenarios(
    db: &Database,
    router: &axum::Router,
    token: &str,
    project_id: Uuid,
    runs: i64,
) -> Result<Vec<Scenario>, Box<dyn std::error::Error>> {
    let limit = Param::Int(51);
    let (min, max) = (Param::Int(i64::MIN), Param::Int(i64::MAX));
    let project = Param::Id(project_id);

    // A cursor 90% of the way down: the next cursor of a one-run page that
    // starts there.
    let step = YEAR_SECS / runs.max(1);
    let deep_at = rfc3339(END_SECS - (runs * 9 / 10) * step);
    let (_, deep) = get(router, token, &format!("/runs?limit=1&to={deep_at}")).await?;
    let cursor = deep["next_cursor"]
        .as_str()
        .ok_or("no deep cursor")?
        .to_owned();
    let deep_run = &deep["data"][0];
    let deep_us = timestamp::parse_rfc3339(deep_run["timestamp"].as_str().unwrap_or_default())
        .map(timestamp::to_micros)
        .ok_or("no deep timestamp")?;
    let deep_id: Uuid = deep_run["id"].as_str().unwrap_or_default().parse()?;

    let window = |days: i64| {
        let from = END_SECS - 180 * DAY_SECS;
        let to = from + days * DAY_SECS;
        (
            format!("from={}&to={}", rfc3339(from), rfc3339(to)),
            Param::Int(from * 1_000_000),
            Param::Int(to * 1_000_000),
        )
    };
    let (week, week_from, week_to) = window(7);
    let (day, day_from, day_to) = window(1);

    // The statements a stats request runs: the aggregates, then the
    // percentile statement the service picks for a window of that size.
    let stats = async |query: &str, from: Param, to: Param| {
        let (_, body) = get(router, token, &format!("/stats?{query}")).await?;
        let total = body["total"].as_i64().ok_or("no total")?;
        let (aggregates, at_rank) = match db {
            Database::Sqlite(_) if total <= SQLITE_SORT_AT_MOST => {
                (SQLITE_AGGREGATES, SQLITE_DURATION_AT_RANK_BY_SORTING)
            }
            Database::Sqlite(_) => (SQLITE_AGGREGATES, SQLITE_DURATION_AT_RANK_BY_WALKING),
            Database::Postgres(_) => (POSTGRES_AGGREGATES, POSTGRES_DURATION_AT_RANK),
        };
        let rank = Param::Int(run_queries::nearest_rank(95, total) - 1);
        Ok::<_, Box<dyn std::error::Error>>(vec![
            (
                aggregates.to_owned(),
                vec![project.clone(), from.clone(), to.clone()],
            ),
            (at_rank.to_owned(), vec![project.clone(), from, to, rank]),
        ])
    };
    let day_statements = stats(&day, day_from, day_to).await?;
    let week_statements = stats(&week, week_from.clone(), week_to.clone()).await?;
    let all_statements = stats("", min.clone(), max.clone()).await?;

    Ok(vec![
        Scenario {
            name: "first page (50)",
            path: "/runs".to_owned(),
            statements: vec![(
                run_queries::page_sql(false, false),
                vec![project.clone(), min.clone(), max.clone(), limit.clone()],
            )],
        },
        Scenario {
            name: "deep page (50, cursor at 90%)",
            path: format!("/runs?cursor={cursor}"),
            statements: vec![(
                run_queries::page_sql(true, false),
                vec![
                    project.clone(),
                    min.clone(),
                    Param::Int(deep_us),
                    Param::Id(deep_id),
                    limit.clone(),
                ],
            )],
        },
        Scenario {
            name: "filtered page (failed, one week)",
            path: format!("/runs?status=failed&{week}"),
            statements: vec![(
                run_queries::page_sql(false, true),
                vec![
                    project.clone(),
                    week_from.clone(),
                    week_to.clone(),
                    Param::Text("failed"),
                    limit.clone(),
                ],
            )],
        },
        Scenario {
            name: "stats, one day",
            path: format!("/stats?{day}"),
            statements: day_statements,
        },
        Scenario {
            name: "stats, one week",
            path: format!("/stats?{week}"),
            statements: week_statements,
        },
        Scenario {
            name: "stats, all time",
            path: "/stats".to_owned(),
            statements: all_statements,
        },
    ])
}

/// Inserts `runs` runs for a project, evenly spaced over the year before
/// [`END_SECS`]: one run in ten failed, durations of 1-60 s with a long tail.
async fn seed(
    db: &Database,
    project_id: Uuid,
    project_index: i64,
    runs: i64,
) -> Result<(), sqlx::Error> {
    let step = YEAR_SECS / runs.max(1);
    match db {
        Database::Sqlite(db) => {
            const SEED: &str = r#"
                WITH RECURSIVE seq(i) AS (
                    SELECT 0
                    UNION ALL
                    SELECT i + 1 FROM seq WHERE i < $3 - 1
                ),
                run AS (
                    SELECT i, $4 - i * $5 AS secs FROM seq
                )
                INSERT INTO test_runs
                    (id, project_id, run_id, status, duration_ms, timestamp, timestamp_us,
                     created_at)
                SELECT printf('%08x-0000-7000-8000-%012x', $2, i),
                       $1,
                       printf('%08x-0000-4000-8000-%012x', $2, i),
                       CASE WHEN i % 10 = 3 THEN 'failed' ELSE 'passed' END,
                       1000 + (i * 7919) % 59000
                           + CASE WHEN i % 100 = 7 THEN (i * 104729) % 600000 ELSE 0 END,
                       strftime('%Y-%m-%dT%H:%M:%SZ', secs, 'unixepoch'),
                       secs * 1000000,
                       strftime('%Y-%m-%dT%H:%M:%S.000Z', secs, 'unixepoch')
                FROM run
            "#;
            let mut tx = db.writer.begin_with("BEGIN IMMEDIATE").await?;
            sqlx::query(SEED)
                .bind(project_id.hyphenated())
                .bind(project_index)
                .bind(runs)
                .bind(END_SECS)
                .bind(step)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        Database::Postgres(pool) => {
            const SEED: &str = r#"
                INSERT INTO test_runs
                    (id, project_id, run_id, status, duration_ms, timestamp, timestamp_us,
                     created_at)
                SELECT (lpad(to_hex($2::bigint), 8, '0') || '-0000-7000-8000-'
                            || lpad(to_hex(i), 12, '0'))::uuid,
                       $1,
                       (lpad(to_hex($2::bigint), 8, '0') || '-0000-4000-8000-'
                            || lpad(to_hex(i), 12, '0'))::uuid,
                       CASE WHEN i % 10 = 3 THEN 'failed' ELSE 'passed' END,
                       1000 + (i * 7919) % 59000
                           + CASE WHEN i % 100 = 7 THEN (i * 104729) % 600000 ELSE 0 END,
                       to_char(to_timestamp($4 - i * $5) AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       ($4 - i * $5) * 1000000,
                       to_timestamp($4 - i * $5)
                FROM generate_series(0::bigint, $3 - 1) AS i
            "#;
            sqlx::query(SEED)
                .bind(project_id)
                .bind(project_index)
                .bind(runs)
                .bind(END_SECS)
                .bind(step)
                .execute(pool)
                .await
                .map(drop)
        }
    }
}

/// `GET path` through the router with the token; the status and JSON body.
async fn get(
    router: &axum::Router,
    token: &str,
    path: &str,
) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
    let request = Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())?;
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes)?))
}

/// The plan of one statement, as the database prints it.
async fn explain(
    db: &Database,
    sql: &str,
    params: &[Param],
) -> Result<String, Box<dyn std::error::Error>> {
    let first_line = sql.trim().lines().next().unwrap_or_default().trim();
    let mut out = format!("  {first_line} …\n");
    match db {
        Database::Sqlite(db) => {
            let sql = sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"));
            let mut query = sqlx::query(sql);
            for param in params {
                query = match param {
                    Param::Int(value) => query.bind(*value),
                    Param::Text(value) => query.bind(*value),
                    Param::Id(value) => query.bind(value.hyphenated().to_string()),
                };
            }
            for row in query.fetch_all(&db.reader).await? {
                let detail: String = row.try_get("detail")?;
                out.push_str(&format!("    {detail}\n"));
            }
        }
        Database::Postgres(pool) => {
            let sql = sqlx::AssertSqlSafe(format!("EXPLAIN (ANALYZE, COSTS OFF) {sql}"));
            let mut query = sqlx::query(sql);
            for param in params {
                query = match param {
                    Param::Int(value) => query.bind(*value),
                    Param::Text(value) => query.bind(*value),
                    Param::Id(value) => query.bind(*value),
                };
            }
            for row in query.fetch_all(pool).await? {
                let line: String = row.try_get(0)?;
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    Ok(out)
}

async fn admin(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

fn rfc3339(secs: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(secs).expect("a time in range");
    timestamp::format_millis(at)
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
