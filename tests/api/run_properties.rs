//! Properties of `GET /runs` and `GET /stats` over random sets of runs.
//!
//! Each property runs its cases on one app; every case ingests into a new
//! project, so the runs of all earlier cases sit in other projects of the same
//! database and any leak between projects breaks the property.

use std::collections::HashSet;
use std::fmt::Debug;

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use test_analytics::db::Database;
use test_analytics::services::run_queries::{
    POSTGRES_DURATION_AT_RANK, SQLITE_DURATION_AT_RANK_BY_SORTING,
    SQLITE_DURATION_AT_RANK_BY_WALKING,
};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::{Backend, ProjectFixture, TestApp};
use crate::runs::{encode_query_value, get_as};

backend_tests!(
    walking_every_page_returns_each_run_exactly_once_newest_first,
    filtered_pages_return_exactly_the_matching_runs,
    stats_equal_a_direct_computation_over_the_same_runs,
    pages_neither_skip_nor_repeat_runs_while_new_runs_arrive,
    every_percentile_statement_returns_the_duration_at_the_asked_rank,
);

/// The instant generated timestamps are measured from.
const BASE: OffsetDateTime = datetime!(2026-01-12 10:00 UTC);

/// A run to ingest. Timestamps fall in a 20-second span so that many runs
/// share an instant and the tie-breaking order is exercised.
#[derive(Clone, Debug)]
struct RunSpec {
    passed: bool,
    duration_ms: u64,
    at: OffsetDateTime,
    offset_minutes: i16,
}

impl RunSpec {
    fn body(&self) -> Value {
        let offset = UtcOffset::from_whole_seconds(i32::from(self.offset_minutes) * 60)
            .expect("a small offset");
        json!({
            "run_id": Uuid::new_v4().to_string(),
            "status": if self.passed { "passed" } else { "failed" },
            "duration_ms": self.duration_ms,
            "timestamp": self.at.to_offset(offset).format(&Rfc3339).expect("formats"),
        })
    }
}

/// An instant within a few seconds of [`BASE`], sometimes with milliseconds.
fn instant() -> impl Strategy<Value = OffsetDateTime> {
    (-1_i64..22, prop_oneof![Just(0_i64), 0_i64..1000]).prop_map(|(seconds, millis)| {
        BASE + Duration::seconds(seconds) + Duration::milliseconds(millis)
    })
}

fn offset_minutes() -> impl Strategy<Value = i16> {
    prop::sample::select(vec![0_i16, 120, -300, 330])
}

fn run_spec() -> impl Strategy<Value = RunSpec> {
    (any::<bool>(), 0_u64..5_000, instant(), offset_minutes()).prop_map(
        |(passed, duration_ms, at, offset_minutes)| RunSpec {
            passed,
            duration_ms,
            at,
            offset_minutes,
        },
    )
}

/// An optional `from` and `to`, in order, each with its own offset.
#[derive(Clone, Debug)]
struct WindowSpec {
    from: Option<(OffsetDateTime, i16)>,
    to: Option<(OffsetDateTime, i16)>,
}

impl WindowSpec {
    fn contains(&self, at: OffsetDateTime) -> bool {
        self.from.is_none_or(|(from, _)| at >= from) && self.to.is_none_or(|(to, _)| at < to)
    }

    fn query(&self) -> String {
        let format = |(at, minutes): (OffsetDateTime, i16)| {
            let offset = UtcOffset::from_whole_seconds(i32::from(minutes) * 60).unwrap();
            encode_query_value(&at.to_offset(offset).format(&Rfc3339).unwrap())
        };
        let mut query = String::new();
        if let Some(from) = self.from {
            query.push_str(&format!("&from={}", format(from)));
        }
        if let Some(to) = self.to {
            query.push_str(&format!("&to={}", format(to)));
        }
        query
    }
}

fn window_spec() -> impl Strategy<Value = WindowSpec> {
    let bound = || prop::option::of((instant(), offset_minutes()));
    (bound(), bound()).prop_map(|(from, to)| match (from, to) {
        (Some(from), Some(to)) if to.0 < from.0 => WindowSpec {
            from: Some(to),
            to: Some(from),
        },
        (from, to) => WindowSpec { from, to },
    })
}

/// A stored run with what it sorts by.
#[derive(Clone, Debug)]
struct Stored {
    at: OffsetDateTime,
    id: Uuid,
    passed: bool,
    duration_ms: i64,
    body: Value,
}

/// Ingests every run into a new project; returns its token and the stored runs.
async fn ingest_all(
    app: &TestApp,
    runs: &[RunSpec],
) -> Result<(String, Vec<Stored>), TestCaseError> {
    let (project, stored) = ingest_into_new_project(app, runs).await?;
    Ok((project.token, stored))
}

/// Ingests every run into a new project; returns the project and the stored runs.
async fn ingest_into_new_project(
    app: &TestApp,
    runs: &[RunSpec],
) -> Result<(ProjectFixture, Vec<Stored>), TestCaseError> {
    let project = app.create_project_with_token().await;
    let mut stored = Vec::with_capacity(runs.len());
    for run in runs {
        stored.push(ingest_one(app, &project.token, run).await?);
    }
    Ok((project, stored))
}

async fn ingest_one(app: &TestApp, token: &str, run: &RunSpec) -> Result<Stored, TestCaseError> {
    let response = app.ingest(token, run.body()).await;
    prop_assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    Ok(Stored {
        at: run.at,
        id: response.str("id").parse().expect("a UUID id"),
        passed: run.passed,
        duration_ms: run.duration_ms as i64,
        body: response.body,
    })
}

/// Newest first by instant, then by descending id: the order the API promises.
fn newest_first(mut runs: Vec<Stored>) -> Vec<Stored> {
    runs.sort_by_key(|run| std::cmp::Reverse((run.at, run.id)));
    runs
}

/// Follows `next_cursor` from the first page to the last; returns every run
/// in the order received. Each page must hold 1..=limit runs (the first may
/// be empty only when nothing matches).
async fn walk_pages(
    app: &TestApp,
    token: &str,
    query: &str,
    limit: u32,
) -> Result<Vec<Value>, TestCaseError> {
    let mut received = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor
            .as_deref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = get_as(app, token, &format!("/runs?limit={limit}{query}{after}")).await;
        prop_assert_eq!(page.status, StatusCode::OK, "{}", page.text);

        let data = page.body["data"].as_array().expect("a data array").clone();
        prop_assert!(data.len() <= limit as usize, "{}", page.text);
        prop_assert!(
            !data.is_empty() || received.is_empty(),
            "an empty page after a cursor"
        );
        received.extend(data);
        match &page.body["next_cursor"] {
            Value::Null => return Ok(received),
            Value::String(next) => cursor = Some(next.clone()),
            other => return Err(TestCaseError::fail(format!("next_cursor is {other}"))),
        }
    }
}

/// Runs `property` on `cases` generated inputs, blocking this test's runtime
/// worker so the property can drive the app through `handle.block_on`.
fn check<S>(cases: u32, strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = tokio::task::block_in_place(|| runner.run(&strategy, property));
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Walking every page from the first returns each of the project's runs
/// exactly once, newest first, ties broken by id.
async fn walking_every_page_returns_each_run_exactly_once_newest_first(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let handle = tokio::runtime::Handle::current();
    let strategy = (prop::collection::vec(run_spec(), 0..25), 1_u32..8);

    check(256, strategy, |(runs, limit)| {
        handle.block_on(async {
            let (token, stored) = ingest_all(&app, &runs).await?;

            let received = walk_pages(&app, &token, "", limit).await?;

            let expected: Vec<Value> = newest_first(stored).into_iter().map(|r| r.body).collect();
            prop_assert_eq!(received, expected);
            Ok(())
        })
    });
}

/// With a status and a window, the pages hold exactly the matching runs, in order.
async fn filtered_pages_return_exactly_the_matching_runs(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let handle = tokio::runtime::Handle::current();
    let status = prop::option::of(any::<bool>());
    let strategy = (
        prop::collection::vec(run_spec(), 0..25),
        status,
        window_spec(),
        1_u32..10,
    );

    check(256, strategy, |(runs, status, window, limit)| {
        handle.block_on(async {
            let (token, stored) = ingest_all(&app, &runs).await?;
            let mut query = window.query();
            if let Some(passed) = status {
                query.push_str(if passed {
                    "&status=passed"
                } else {
                    "&status=failed"
                });
            }

            let received = walk_pages(&app, &token, &query, limit).await?;

            let expected: Vec<Value> = newest_first(stored)
                .into_iter()
                .filter(|run| status.is_none_or(|passed| run.passed == passed))
                .filter(|run| window.contains(run.at))
                .map(|run| run.body)
                .collect();
            prop_assert_eq!(received, expected, "query {}", query);
            Ok(())
        })
    });
}

/// `/stats` over a window equals counts, mean, nearest-rank p50/p95 and
/// maximum computed directly over the runs in it.
async fn stats_equal_a_direct_computation_over_the_same_runs(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let handle = tokio::runtime::Handle::current();
    let strategy = (prop::collection::vec(run_spec(), 0..30), window_spec());

    check(256, strategy, |(runs, window)| {
        handle.block_on(async {
            let (token, stored) = ingest_all(&app, &runs).await?;

            let response = get_as(&app, &token, &format!("/stats?{}", window.query())).await;
            prop_assert_eq!(response.status, StatusCode::OK, "{}", response.text);

            let inside: Vec<&Stored> = stored
                .iter()
                .filter(|run| window.contains(run.at))
                .collect();
            let (mut got, mut want) = (response.body.clone(), expected_stats(&inside));
            // The JSON reader here rounds the last digit of a float; the
            // fractions are compared apart, to within rounding.
            for pointer in ["/pass_rate", "/duration_ms/avg"] {
                let got_value = got.pointer_mut(pointer).map(Value::take);
                let want_value = want.pointer_mut(pointer).map(Value::take);
                let (got_value, want_value) = (got_value.unwrap_or_default(), want_value.unwrap());
                match (got_value.as_f64(), want_value.as_f64()) {
                    (Some(g), Some(w)) => {
                        prop_assert!((g - w).abs() <= w.abs() * 1e-12, "{pointer}: {g} != {w}")
                    }
                    _ => prop_assert_eq!(got_value, want_value, "{}", pointer),
                }
            }
            prop_assert_eq!(got, want, "window {}", window.query());
            Ok(())
        })
    });
}

/// The `/stats` body computed directly over `runs`.
fn expected_stats(runs: &[&Stored]) -> Value {
    let total = runs.len() as i64;
    let passed = runs.iter().filter(|run| run.passed).count() as i64;
    let mut durations: Vec<i64> = runs.iter().map(|run| run.duration_ms).collect();
    durations.sort_unstable();
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    let percentile = |p: usize| {
        let rank = (p * durations.len()).div_ceil(100);
        durations.get(rank.max(1) - 1).copied()
    };
    let avg = (total > 0).then(|| durations.iter().sum::<i64>() as f64 / total as f64);
    let pass_rate = if total == 0 {
        0.0
    } else {
        passed as f64 / total as f64
    };

    json!({
        "total": total,
        "passed": passed,
        "failed": total - passed,
        "pass_rate": pass_rate,
        "duration_ms": {
            "avg": avg,
            "p50": percentile(50),
            "p95": percentile(95),
            "max": durations.last(),
        },
    })
}

/// While runs are ingested between page fetches, walking the pages returns
/// every run present at the start exactly once, never any run twice, and
/// always in the promised order.
async fn pages_neither_skip_nor_repeat_runs_while_new_runs_arrive(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let handle = tokio::runtime::Handle::current();
    let arrivals = prop::collection::vec(prop::collection::vec(run_spec(), 0..4), 0..12);
    let strategy = (prop::collection::vec(run_spec(), 1..20), arrivals, 1_u32..6);

    check(256, strategy, |(runs, arrivals, limit)| {
        handle.block_on(async {
            let (token, initial) = ingest_all(&app, &runs).await?;
            let mut positions = std::collections::HashMap::new();
            for run in &initial {
                positions.insert(run.id, (run.at, run.id));
            }
            let mut arrivals = arrivals.into_iter();

            let mut received: Vec<Uuid> = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let after = cursor
                    .as_deref()
                    .map(|c| format!("&cursor={c}"))
                    .unwrap_or_default();
                let page = get_as(&app, &token, &format!("/runs?limit={limit}{after}")).await;
                prop_assert_eq!(page.status, StatusCode::OK, "{}", page.text);
                for run in page.body["data"].as_array().expect("a data array") {
                    received.push(run["id"].as_str().unwrap().parse().unwrap());
                }
                let Value::String(next) = &page.body["next_cursor"] else {
                    break;
                };
                cursor = Some(next.clone());
                for run in arrivals.next().unwrap_or_default() {
                    let stored = ingest_one(&app, &token, &run).await?;
                    positions.insert(stored.id, (stored.at, stored.id));
                }
            }

            let unique: HashSet<Uuid> = received.iter().copied().collect();
            prop_assert_eq!(unique.len(), received.len(), "a run was returned twice");
            for run in &initial {
                prop_assert!(unique.contains(&run.id), "run {} was skipped", run.id);
            }
            let order: Vec<_> = received.iter().map(|id| positions[id]).collect();
            prop_assert!(
                order.windows(2).all(|pair| pair[0] > pair[1]),
                "out of order"
            );
            Ok(())
        })
    });
}

/// Each statement the service may pick to find a percentile (on SQLite, one
/// that sorts the window and one that walks the project's durations in order)
/// returns the duration at the asked rank of the window, and nothing past its end.
async fn every_percentile_statement_returns_the_duration_at_the_asked_rank(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let handle = tokio::runtime::Handle::current();
    let strategy = (
        prop::collection::vec(run_spec(), 0..30),
        window_spec(),
        0_usize..32,
    );

    check(256, strategy, |(runs, window, rank)| {
        handle.block_on(async {
            let (project, stored) = ingest_into_new_project(&app, &runs).await?;
            let project_id: Uuid = project.project_id.parse().expect("a UUID project id");
            let micros = |at: Option<(OffsetDateTime, i16)>, unbounded: i64| {
                at.map_or(unbounded, |(at, _)| {
                    (at.unix_timestamp_nanos() / 1_000) as i64
                })
            };
            let (from_us, to_us) = (micros(window.from, i64::MIN), micros(window.to, i64::MAX));
            let mut durations: Vec<i64> = stored
                .iter()
                .filter(|run| window.contains(run.at))
                .map(|run| run.duration_ms)
                .collect();
            durations.sort_unstable();

            let statements = match &app.state.db {
                Database::Sqlite(_) => {
                    vec![
                        SQLITE_DURATION_AT_RANK_BY_SORTING,
                        SQLITE_DURATION_AT_RANK_BY_WALKING,
                    ]
                }
                Database::Postgres(_) => vec![POSTGRES_DURATION_AT_RANK],
            };
            for sql in statements {
                let found: Option<i64> = match &app.state.db {
                    Database::Sqlite(db) => sqlx::query_scalar(sql)
                        .bind(project_id.hyphenated())
                        .bind(from_us)
                        .bind(to_us)
                        .bind(rank as i64)
                        .fetch_optional(&db.reader)
                        .await
                        .expect("the statement runs"),
                    Database::Postgres(pool) => sqlx::query_scalar(sql)
                        .bind(project_id)
                        .bind(from_us)
                        .bind(to_us)
                        .bind(rank as i64)
                        .fetch_optional(pool)
                        .await
                        .expect("the statement runs"),
                };
                prop_assert_eq!(found, durations.get(rank).copied(), "{}", sql);
            }
            Ok(())
        })
    });
}
