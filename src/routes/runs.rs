//! Reading results back: `GET /runs`, `GET /runs/{run_id}` and `GET /stats`,
//! each confined to the project of the bearer token.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::ProjectScope;
use crate::error::{AppError, AppResult, Envelope};
use crate::extract::QueryPairs;
use crate::models::{RunStatus, TestRun};
use crate::services::run_queries::{self, PagePosition, RunFilter, RunStats, Window};
use crate::services::runs;
use crate::state::AppState;
use crate::timestamp;
use crate::validation::{self, FieldErrors, Rule};

/// The page size when `limit` is absent.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// The largest accepted `limit`.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The longest accepted `from` or `to` value.
const MAX_TIMESTAMP_CHARS: usize = 64;

/// A cursor is 24 bytes, hex-encoded: the big-endian `timestamp_us` of the
/// last run of a page, then that run's 16-byte `id`.
const CURSOR_HEX_CHARS: usize = 48;

/// Body of a `GET /runs` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPageResponse {
    /// Runs newest first, in the shape `POST /ingest` returns them.
    pub data: Vec<TestRun>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Body of a `GET /stats` response.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStatsResponse {
    pub total: i64,
    pub passed: i64,
    pub failed: i64,
    /// `passed / total` as a fraction from 0 to 1; 0 when there are no runs.
    pub pass_rate: f64,
    pub duration_ms: DurationStatsResponse,
}

/// Durations in milliseconds; every field is `null` when there are no runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct DurationStatsResponse {
    pub avg: Option<f64>,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub max: Option<i64>,
}

impl From<RunStats> for RunStatsResponse {
    fn from(stats: RunStats) -> Self {
        let pass_rate = if stats.total == 0 {
            0.0
        } else {
            stats.passed as f64 / stats.total as f64
        };
        Self {
            total: stats.total,
            passed: stats.passed,
            failed: stats.failed,
            pass_rate,
            duration_ms: DurationStatsResponse {
                avg: stats.avg_ms,
                p50: stats.p50_ms,
                p95: stats.p95_ms,
                max: stats.max_ms,
            },
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(get_run_stats))
}

/// Lists the token's project's runs newest first: `200` with a page and the
/// cursor of the next; `400` naming each malformed `status`, `from`, `to`,
/// `limit` or `cursor`; `401` for a missing or bad token.
#[utoipa::path(
    get,
    path = "/runs",
    tag = "runs",
    params(
        ("status" = Option<RunStatus>, Query, description = "Only runs with this status"),
        ("from" = Option<String>, Query, format = DateTime,
            description = "Only runs whose timestamp is at or after this instant"),
        ("to" = Option<String>, Query, format = DateTime,
            description = "Only runs whose timestamp is before this instant"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500,
            description = "Runs per page; 50 when absent"),
        ("cursor" = Option<String>, Query,
            description = "The next_cursor of the previous page"),
    ),
    security(("project_token" = [])),
    responses(
        (status = 200, description = "A page of runs, newest first", body = RunPageResponse),
        (status = 400, description = "A parameter is invalid; each is listed in details",
            body = Envelope),
        (status = 401, description = "The token is missing, malformed, unknown or revoked",
            body = Envelope),
        (status = 503, description = "The database is unavailable; retry", body = Envelope),
    )
)]
async fn list_runs(
    State(state): State<AppState>,
    scope: ProjectScope,
    QueryPairs(query): QueryPairs,
) -> AppResult<Json<RunPageResponse>> {
    let query = ListRunsQuery::parse(&query)?;

    let page = run_queries::list_runs(
        &state.db,
        scope.project_id,
        query.filter,
        query.after,
        query.limit,
    )
    .await?;

    Ok(Json(RunPageResponse {
        data: page.runs,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// One run of the token's project by its `run_id`: `200` with the run; `400`
/// when `run_id` is not a UUID; `404` when this project has no such run,
/// whatever other projects hold; `401` for a missing or bad token.
#[utoipa::path(
    get,
    path = "/runs/{run_id}",
    tag = "runs",
    params(("run_id" = Uuid, Path, description = "The run_id the run was ingested with")),
    security(("project_token" = [])),
    responses(
        (status = 200, description = "The run", body = TestRun),
        (status = 400, description = "run_id is not a UUID", body = Envelope),
        (status = 401, description = "The token is missing, malformed, unknown or revoked",
            body = Envelope),
        (status = 404, description = "This project has no run with that run_id",
            body = Envelope),
        (status = 503, description = "The database is unavailable; retry", body = Envelope),
    )
)]
async fn get_run(
    State(state): State<AppState>,
    scope: ProjectScope,
    run_id: Result<Path<String>, PathRejection>,
) -> AppResult<Json<TestRun>> {
    let run_id = validation::field("run_id", parse_run_id(run_id))?;

    let run = runs::find_run(&state.db, scope.project_id, run_id).await?;

    run.map(Json).ok_or(AppError::NotFound("Run not found"))
}

/// Counts, pass rate and durations of the token's project's runs in the
/// `from`/`to` window (all time when both are absent): `200`; `400` naming a
/// malformed `from` or `to`; `401` for a missing or bad token.
#[utoipa::path(
    get,
    path = "/stats",
    tag = "runs",
    params(
        ("from" = Option<String>, Query, format = DateTime,
            description = "Only runs whose timestamp is at or after this instant"),
        ("to" = Option<String>, Query, format = DateTime,
            description = "Only runs whose timestamp is before this instant"),
    ),
    security(("project_token" = [])),
    responses(
        (status = 200, description = "Counts, pass rate and durations", body = RunStatsResponse),
        (status = 400, description = "from or to is invalid", body = Envelope),
        (status = 401, description = "The token is missing, malformed, unknown or revoked",
            body = Envelope),
        (status = 503, description = "The database is unavailable; retry", body = Envelope),
    )
)]
async fn get_run_stats(
    State(state): State<AppState>,
    scope: ProjectScope,
    QueryPairs(query): QueryPairs,
) -> AppResult<Json<RunStatsResponse>> {
    let window = parse_window(&query).map_err(AppError::from)?;

    let stats = run_queries::run_stats(&state.db, scope.project_id, window).await?;

    Ok(Json(stats.into()))
}

/// The checked query of `GET /runs`.
#[derive(Debug)]
struct ListRunsQuery {
    filter: RunFilter,
    after: Option<PagePosition>,
    limit: u32,
}

impl ListRunsQuery {
    /// Checks every parameter, reporting all the bad ones at once. Parameters
    /// other than these are ignored.
    fn parse(query: &[(String, String)]) -> Result<Self, FieldErrors> {
        let status = single(query, "status").and_then(|value| value.map(parse_status).transpose());
        let (from, to) = window_rules(query);
        let limit = single(query, "limit").and_then(|value| value.map(parse_limit).transpose());
        let cursor = single(query, "cursor").and_then(|value| value.map(decode_cursor).transpose());

        match (status, from, to, limit, cursor) {
            (Ok(status), Ok(from_us), Ok(to_us), Ok(limit), Ok(after)) => Ok(Self {
                filter: RunFilter {
                    status,
                    window: Window { from_us, to_us },
                },
                after,
                limit: limit.unwrap_or(DEFAULT_PAGE_SIZE),
            }),
            (status, from, to, limit, cursor) => Err(FieldErrors::default()
                .check("status", &status)
                .check("from", &from)
                .check("to", &to)
                .check("limit", &limit)
                .check("cursor", &cursor)),
        }
    }
}

/// The value of a parameter given at most once.
fn single<'a>(query: &'a [(String, String)], name: &str) -> Rule<Option<&'a str>> {
    let mut values = query
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err("must appear only once".to_owned());
    }
    Ok(first)
}

fn parse_status(text: &str) -> Rule<RunStatus> {
    RunStatus::parse(text).ok_or_else(|| "must be passed or failed".to_owned())
}

fn parse_limit(text: &str) -> Rule<u32> {
    let invalid = || format!("must be an integer from 1 to {MAX_PAGE_SIZE}");
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse::<u32>()
        .ok()
        .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
        .ok_or_else(invalid)
}

fn parse_instant(text: &str) -> Rule<i64> {
    let invalid =
        || "must be an RFC 3339 date-time with an offset, e.g. 2026-01-12T10:10:00Z".to_owned();
    if text.len() > MAX_TIMESTAMP_CHARS {
        return Err(invalid());
    }
    timestamp::parse_rfc3339(text)
        .map(timestamp::to_micros)
        .ok_or_else(invalid)
}

/// The bounds of the `from` (inclusive) and `to` (exclusive) window, in
/// microseconds; unbounded on a side whose parameter is absent. A `to` earlier
/// than `from` is an error on `to`.
fn window_rules(query: &[(String, String)]) -> (Rule<i64>, Rule<i64>) {
    let from = single(query, "from")
        .and_then(|value| value.map(parse_instant).transpose())
        .map(|from| from.unwrap_or(Window::ALL.from_us));
    let to = single(query, "to")
        .and_then(|value| value.map(parse_instant).transpose())
        .map(|to| to.unwrap_or(Window::ALL.to_us));

    let to = match (&from, to) {
        (Ok(from), Ok(to)) if to < *from => Err("must not be earlier than from".to_owned()),
        (_, to) => to,
    };
    (from, to)
}

/// The checked window of `GET /stats`.
fn parse_window(query: &[(String, String)]) -> Result<Window, FieldErrors> {
    match window_rules(query) {
        (Ok(from_us), Ok(to_us)) => Ok(Window { from_us, to_us }),
        (from, to) => Err(FieldErrors::default().check("from", &from).check("to", &to)),
    }
}

/// The opaque cursor for a page position.
fn encode_cursor(position: PagePosition) -> String {
    let mut bytes = [0_u8; 24];
    bytes[..8].copy_from_slice(&position.timestamp_us.to_be_bytes());
    bytes[8..].copy_from_slice(position.id.as_bytes());
    hex::encode(bytes)
}

/// Reads a cursor made by [`encode_cursor`]; anything else is rejected.
fn decode_cursor(text: &str) -> Rule<PagePosition> {
    let invalid = || "must be a next_cursor returned by this endpoint".to_owned();
    if text.len() != CURSOR_HEX_CHARS {
        return Err(invalid());
    }
    let mut bytes = [0_u8; 24];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| invalid())?;

    let (timestamp_us, id) = bytes.split_at(8);
    Ok(PagePosition {
        timestamp_us: i64::from_be_bytes(timestamp_us.try_into().map_err(|_| invalid())?),
        id: Uuid::from_slice(id).map_err(|_| invalid())?,
    })
}

fn parse_run_id(path: Result<Path<String>, PathRejection>) -> Rule<Uuid> {
    let invalid = || "must be a UUID".to_owned();
    let Path(text) = path.map_err(|_| invalid())?;
    validation::parse_uuid(&text).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let position = PagePosition {
            timestamp_us: -1_234_567,
            id: Uuid::now_v7(),
        };
        let cursor = encode_cursor(position);

        assert_eq!(decode_cursor(&cursor), Ok(position));
        assert_eq!(decode_cursor(&cursor.to_uppercase()), Ok(position));
        for bad in [
            "",
            "zz",
            &cursor[1..],
            &format!("{cursor}0"),
            &cursor.replace('0', "g"),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_plain_integers_from_1_to_500() {
        assert_eq!(parse_limit("1"), Ok(1));
        assert_eq!(parse_limit("500"), Ok(500));
        for bad in [
            "0",
            "501",
            "-1",
            "+5",
            "1.5",
            "",
            "abc",
            "0500",
            "99999999999",
        ] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn absent_parameters_mean_every_run_and_the_default_page_size() {
        let parsed = ListRunsQuery::parse(&query(&[("unknown", "x")])).unwrap();

        assert_eq!(parsed.filter.status, None);
        assert_eq!(parsed.filter.window, Window::ALL);
        assert_eq!(parsed.after, None);
        assert_eq!(parsed.limit, DEFAULT_PAGE_SIZE);
    }

    #[test]
    fn a_window_ending_before_it_starts_is_rejected_on_to() {
        let backwards = query(&[
            ("from", "2026-01-02T00:00:00Z"),
            ("to", "2026-01-01T00:00:00Z"),
        ]);
        let empty = query(&[
            ("from", "2026-01-01T00:00:00Z"),
            ("to", "2026-01-01T00:00:00Z"),
        ]);

        assert!(parse_window(&backwards).is_err());
        assert!(parse_window(&empty).is_ok());
    }
}
