//! Test runs: pages of a project's runs, newest first, and statistics over a
//! time window.
//!
//! Runs are ordered by `(timestamp_us, id)`, both descending. `id` is unique,
//! so the order is total and a page can resume strictly after the last run of
//! the previous one (keyset pagination): runs ingested meanwhile land before
//! or after that position, never shifting the runs not yet read.

use sqlx::Row;
use uuid::Uuid;

use crate::db::Database;
use crate::error::AppResult;
use crate::models::{RunStatus, TestRun};
use crate::services::runs::{postgres_run, sqlite_run};

/// A half-open interval of run timestamps, in microseconds since the epoch:
/// `from_us` included, `to_us` excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from_us: i64,
    pub to_us: i64,
}

impl Window {
    /// Every instant a run can carry.
    pub const ALL: Self = Self {
        from_us: i64::MIN,
        to_us: i64::MAX,
    };
}

/// Which runs a page lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs with this outcome, when set.
    pub status: Option<RunStatus>,
    /// Only runs whose timestamp falls in this window.
    pub window: Window,
}

/// A position in the `(timestamp_us, id)` descending order: a page that
/// starts after it lists only runs that sort strictly later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagePosition {
    pub timestamp_us: i64,
    pub id: Uuid,
}

/// One page of runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPage {
    /// At most `limit` runs, newest first.
    pub runs: Vec<TestRun>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<PagePosition>,
}

/// Counts and durations of the runs in a window.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStats {
    pub total: i64,
    pub passed: i64,
    pub failed: i64,
    /// Mean duration in milliseconds; `None` when there are no runs.
    pub avg_ms: Option<f64>,
    /// Nearest-rank median; `None` when there are no runs.
    pub p50_ms: Option<i64>,
    /// Nearest-rank 95th percentile; `None` when there are no runs.
    pub p95_ms: Option<i64>,
    /// Longest duration; `None` when there are no runs.
    pub max_ms: Option<i64>,
}

/// The SQL of one page, newest first. Placeholders, in binding order: the
/// project, the lower bound, then either the `to` bound (`after` false) or the
/// keyset position (`after` true), then the status when `by_status`, then the
/// row limit. Only one upper bound is ever given (see [`upper_bound`]), so that
/// the index range ends exactly where the page starts. Public so that the read
/// benchmark can show the plan of the very statement the service runs.
pub fn page_sql(after: bool, by_status: bool) -> String {
    let mut sql = String::from(
        r#"
    SELECT id, project_id, run_id, status, duration_ms, timestamp, timestamp_us, created_at
    FROM test_runs
    WHERE project_id = $1
      AND timestamp_us >= $2"#,
    );
    let mut next = if after {
        sql.push_str("\n      AND (timestamp_us, id) < ($3, $4)");
        5
    } else {
        sql.push_str("\n      AND timestamp_us < $3");
        4
    };
    if by_status {
        sql.push_str(&format!("\n      AND status = ${next}"));
        next += 1;
    }
    sql.push_str(&format!(
        "\n    ORDER BY timestamp_us DESC, id DESC\n    LIMIT ${next}\n"
    ));
    sql
}

/// The tighter of the window's end and the keyset position: a position
/// earlier than `to_us` implies `timestamp_us < to_us`, and a position at or
/// after it is implied by `timestamp_us < to_us`.
fn upper_bound(window: Window, after: Option<PagePosition>) -> Option<PagePosition> {
    after.filter(|position| position.timestamp_us < window.to_us)
}

/// Lists up to `limit` runs of a project that match `filter`, newest first,
/// starting strictly after `after` when given.
pub async fn list_runs(
    db: &Database,
    project_id: Uuid,
    filter: RunFilter,
    after: Option<PagePosition>,
    limit: u32,
) -> AppResult<RunPage> {
    let after = upper_bound(filter.window, after);
    let sql = sqlx::AssertSqlSafe(page_sql(after.is_some(), filter.status.is_some()));
    // One more than asked tells whether another page follows.
    let fetch = i64::from(limit) + 1;

    let mut rows: Vec<(TestRun, i64)> = match db {
        Database::Sqlite(db) => {
            let mut query = sqlx::query(sql)
                .bind(project_id.hyphenated())
                .bind(filter.window.from_us);
            query = match after {
                Some(position) => query
                    .bind(position.timestamp_us)
                    .bind(position.id.hyphenated()),
                None => query.bind(filter.window.to_us),
            };
            if let Some(status) = filter.status {
                query = query.bind(status.as_str());
            }
            query
                .bind(fetch)
                .fetch_all(&db.reader)
                .await?
                .iter()
                .map(|row| Ok((sqlite_run(row)?, row.try_get("timestamp_us")?)))
                .collect::<AppResult<_>>()?
        }
        Database::Postgres(pool) => {
            let mut query = sqlx::query(sql)
                .bind(project_id)
                .bind(filter.window.from_us);
            query = match after {
                Some(position) => query.bind(position.timestamp_us).bind(position.id),
                None => query.bind(filter.window.to_us),
            };
            if let Some(status) = filter.status {
                query = query.bind(status.as_str());
            }
            query
                .bind(fetch)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((postgres_run(row)?, row.try_get("timestamp_us")?)))
                .collect::<AppResult<_>>()?
        }
    };

    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = rows
        .last()
        .filter(|_| has_more)
        .map(|(run, timestamp_us)| PagePosition {
            timestamp_us: *timestamp_us,
            id: run.id,
        });
    Ok(RunPage {
        runs: rows.into_iter().map(|(run, _)| run).collect(),
        next,
    })
}

/// Counts, mean and maximum of a window on SQLite.
pub const SQLITE_AGGREGATES: &str = r#"
    SELECT COUNT(*) AS total,
           COALESCE(SUM(CASE WHEN status = 'passed' THEN 1 ELSE 0 END), 0) AS passed,
           AVG(duration_ms) AS avg_ms,
           MAX(duration_ms) AS max_ms
    FROM test_runs
    WHERE project_id = $1
      AND timestamp_us >= $2
      AND timestamp_us < $3
"#;

/// Counts, mean and maximum of a window on PostgreSQL, where AVG of a bigint
/// is numeric; float8 is what the API returns.
pub const POSTGRES_AGGREGATES: &str = r#"
    SELECT COUNT(*) AS total,
           COALESCE(SUM(CASE WHEN status = 'passed' THEN 1 ELSE 0 END), 0)::bigint AS passed,
           AVG(duration_ms)::float8 AS avg_ms,
           MAX(duration_ms) AS max_ms
    FROM test_runs
    WHERE project_id = $1
      AND timestamp_us >= $2
      AND timestamp_us < $3
"#;

/// The duration at a 0-based rank in ascending order within the window,
/// reading `test_runs` through `$from` (a table name with an index hint or
/// none); the three statements below differ in that alone.
macro_rules! duration_at_rank {
    ($from:literal) => {
        concat!(
            "SELECT duration_ms FROM ",
            $from,
            " WHERE project_id = $1 AND timestamp_us >= $2 AND timestamp_us < $3",
            " ORDER BY duration_ms LIMIT 1 OFFSET $4"
        )
    };
}

/// On PostgreSQL, whose planner weighs sorting the window against walking the
/// project's durations in order from its statistics.
pub const POSTGRES_DURATION_AT_RANK: &str = duration_at_rank!("test_runs");

/// Within a small window on SQLite: the window's entries are read by time and
/// sorted.
pub const SQLITE_DURATION_AT_RANK_BY_SORTING: &str =
    duration_at_rank!("test_runs INDEXED BY test_runs_project_timestamp_duration");

/// Within a large window on SQLite: the project's durations are walked in
/// order, skipping runs outside the window.
pub const SQLITE_DURATION_AT_RANK_BY_WALKING: &str =
    duration_at_rank!("test_runs INDEXED BY test_runs_project_duration");

/// Above this many runs in a window, SQLite finds its percentiles by walking
/// the project's durations in order (cost grows with the project, about 65 ms
/// per million runs) rather than sorting the window's (cost grows with the
/// window, and sorting a million takes over a second). Without statistics,
/// SQLite's planner cannot make this choice itself.
pub const SQLITE_SORT_AT_MOST: i64 = 50_000;

/// The 1-based nearest rank of the `percent`th percentile among `total`
/// values: the smallest rank whose share of the values is at least `percent`.
/// Integer arithmetic, so that 95 % of 20 is exactly rank 19.
pub fn nearest_rank(percent: i64, total: i64) -> i64 {
    (percent * total + 99) / 100
}

/// Counts, mean, nearest-rank p50 and p95, and maximum duration of a
/// project's runs in `window`, read from one snapshot of the database.
pub async fn run_stats(db: &Database, project_id: Uuid, window: Window) -> AppResult<RunStats> {
    let (total, passed, avg_ms, max_ms, p50_ms, p95_ms) = match db {
        Database::Sqlite(db) => {
            // A read transaction pins one WAL snapshot for every statement in it.
            let mut tx = db.reader.begin().await?;
            let row = sqlx::query(SQLITE_AGGREGATES)
                .bind(project_id.hyphenated())
                .bind(window.from_us)
                .bind(window.to_us)
                .fetch_one(&mut *tx)
                .await?;
            let total: i64 = row.try_get("total")?;
            let at_rank = if total <= SQLITE_SORT_AT_MOST {
                SQLITE_DURATION_AT_RANK_BY_SORTING
            } else {
                SQLITE_DURATION_AT_RANK_BY_WALKING
            };
            let mut percentiles = [None, None];
            for (slot, percent) in percentiles.iter_mut().zip([50, 95]) {
                if total > 0 {
                    *slot = sqlx::query_scalar(at_rank)
                        .bind(project_id.hyphenated())
                        .bind(window.from_us)
                        .bind(window.to_us)
                        .bind(nearest_rank(percent, total) - 1)
                        .fetch_optional(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            let [p50, p95] = percentiles;
            (
                total,
                row.try_get("passed")?,
                row.try_get("avg_ms")?,
                row.try_get("max_ms")?,
                p50,
                p95,
            )
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(POSTGRES_AGGREGATES)
                .bind(project_id)
                .bind(window.from_us)
                .bind(window.to_us)
                .fetch_one(&mut *tx)
                .await?;
            let total: i64 = row.try_get("total")?;
            let mut percentiles = [None, None];
            for (slot, percent) in percentiles.iter_mut().zip([50, 95]) {
                if total > 0 {
                    *slot = sqlx::query_scalar(POSTGRES_DURATION_AT_RANK)
                        .bind(project_id)
                        .bind(window.from_us)
                        .bind(window.to_us)
                        .bind(nearest_rank(percent, total) - 1)
                        .fetch_optional(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            let [p50, p95] = percentiles;
            (
                total,
                row.try_get("passed")?,
                row.try_get("avg_ms")?,
                row.try_get("max_ms")?,
                p50,
                p95,
            )
        }
    };

    Ok(RunStats {
        total,
        passed,
        failed: total - passed,
        avg_ms,
        p50_ms,
        p95_ms,
        max_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both SQLite ways to a percentile (only windows above
    /// [`SQLITE_SORT_AT_MOST`] walk, so the API tests never reach that one)
    /// prepare with their index hints and find the same duration at every rank.
    #[tokio::test]
    async fn sorting_and_walking_find_the_same_duration_at_every_rank() {
        use crate::models::{NewRun, RunStatus};
        use crate::services::{ingest, orgs, projects};

        let (_dir, db) = crate::db::temporary_sqlite().await;
        let org = orgs::insert_org(&db, "org".to_owned()).await.unwrap();
        let project = projects::insert_project(&db, org.id, "p".to_owned())
            .await
            .unwrap();
        let at = crate::timestamp::parse_rfc3339("2026-01-12T10:10:00Z").unwrap();
        for duration_ms in [40, 10, 30, 20, 50, 10] {
            let run = NewRun {
                run_id: Uuid::new_v4(),
                status: RunStatus::Passed,
                duration_ms,
                timestamp: "2026-01-12T10:10:00Z".to_owned(),
                timestamp_at: at,
            };
            ingest::store_run(&db, project.id, run).await.unwrap();
        }
        let Database::Sqlite(sqlite) = &db else {
            unreachable!("the test opened SQLite")
        };

        let micros = crate::timestamp::to_micros(at);
        let mut found = Vec::new();
        for rank in 0..6_i64 {
            let mut by_each = Vec::new();
            for sql in [
                SQLITE_DURATION_AT_RANK_BY_SORTING,
                SQLITE_DURATION_AT_RANK_BY_WALKING,
            ] {
                let duration: i64 = sqlx::query_scalar(sql)
                    .bind(project.id.hyphenated())
                    .bind(micros)
                    .bind(micros + 1)
                    .bind(rank)
                    .fetch_one(&sqlite.reader)
                    .await
                    .unwrap();
                by_each.push(duration);
            }
            assert_eq!(by_each[0], by_each[1], "rank {rank}");
            found.push(by_each[0]);
        }

        assert_eq!(found, [10, 10, 20, 30, 40, 50]);
        db.close().await;
    }

    #[test]
    fn nearest_rank_is_the_smallest_rank_covering_the_share() {
        assert_eq!(nearest_rank(50, 1), 1);
        assert_eq!(nearest_rank(95, 1), 1);
        assert_eq!(nearest_rank(50, 4), 2);
        assert_eq!(nearest_rank(50, 5), 3);
        assert_eq!(nearest_rank(95, 20), 19);
        assert_eq!(nearest_rank(95, 21), 20);
        assert_eq!(nearest_rank(95, 100), 95);
        assert_eq!(nearest_rank(95, 1_000_000), 950_000);
    }

    #[test]
    fn page_sql_numbers_its_placeholders_in_binding_order() {
        let sql = page_sql(true, true);

        assert!(sql.contains("(timestamp_us, id) < ($3, $4)"), "{sql}");
        assert!(!sql.contains("timestamp_us < $"), "{sql}");
        assert!(sql.contains("status = $5"), "{sql}");
        assert!(sql.contains("LIMIT $6"), "{sql}");
        assert!(page_sql(false, false).contains("timestamp_us < $3"));
        assert!(page_sql(false, false).contains("LIMIT $4"));
    }

    #[test]
    fn a_page_is_bounded_by_the_earlier_of_its_cursor_and_the_window_end() {
        let window = Window {
            from_us: 0,
            to_us: 100,
        };
        let at = |timestamp_us| PagePosition {
            timestamp_us,
            id: Uuid::nil(),
        };

        assert_eq!(upper_bound(window, None), None);
        assert_eq!(upper_bound(window, Some(at(99))), Some(at(99)));
        assert_eq!(upper_bound(window, Some(at(100))), None);
        assert_eq!(upper_bound(window, Some(at(500))), None);
    }
}
