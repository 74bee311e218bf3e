//! Prometheus metrics: the recorder, the name of every metric, and one small
//! function per thing worth counting.
//!
//! The recorder is process-global (the `metrics` facade allows one), so it is
//! installed once, on first use, and every [`AppState`](crate::state::AppState)
//! shares its handle. It renders from our own `/metrics` route; the exporter's
//! own HTTP listener is not compiled in. No label carries a token, a run id, a
//! raw path or any other value a client can vary without bound.

use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::http::Method;
use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::Database;

/// Requests answered, by `method`, `route` and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "ta_http_requests_total";
/// Time from receiving a request to answering it, by `method`, `route` and `status`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "ta_http_request_duration_seconds";
/// Ingest requests by `result`: `created`, `replayed` or `rejected`.
pub const INGEST_TOTAL: &str = "ta_ingest_total";
/// Runs written per database transaction on the ingest path.
pub const INGEST_BATCH_SIZE: &str = "ta_ingest_batch_size";
/// Database connections checked out, by `pool`, sampled at scrape time.
pub const DB_CONNECTIONS_IN_USE: &str = "ta_db_pool_connections_in_use";
/// Database connections open and idle, by `pool`, sampled at scrape time.
pub const DB_CONNECTIONS_IDLE: &str = "ta_db_pool_connections_idle";

/// The `route` label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The route whose requests [`INGEST_TOTAL`] counts.
const INGEST_ROUTE: &str = "/ingest";

/// Upper bounds of the latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the batch-size buckets, in runs.
const BATCH_SIZE_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// How often histogram buffers are drained when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The handle that renders every metric of the process, installing the
/// recorder (and starting its upkeep thread) on the first call.
pub fn handle() -> PrometheusHandle {
    HANDLE.get_or_init(install).clone()
}

fn install() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(HTTP_REQUEST_DURATION_SECONDS.to_owned()),
            &LATENCY_BUCKETS,
        )
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(INGEST_BATCH_SIZE.to_owned()),
                &BATCH_SIZE_BUCKETS,
            )
        })
        .expect("the bucket lists are not empty")
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Only another library in the same process could have got here first.
        tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
    }
    describe();

    // A thread, not a task: it outlives any one tokio runtime (tests start many).
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "metrics upkeep thread not started; scrapes still drain buffers");
    }
    handle
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "Requests answered, by method, route and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer a request, by method, route and status."
    );
    describe_counter!(
        INGEST_TOTAL,
        "Ingest requests by result: created, replayed, rejected."
    );
    describe_histogram!(
        INGEST_BATCH_SIZE,
        metrics::Unit::Count,
        "Runs written per database transaction on the ingest path."
    );
    describe_gauge!(
        DB_CONNECTIONS_IN_USE,
        "Database connections checked out, by pool."
    );
    describe_gauge!(
        DB_CONNECTIONS_IDLE,
        "Database connections open and idle, by pool."
    );

    // Every result is exported from the start, so a rate over it is 0, not absent.
    for result in [
        IngestResult::Created,
        IngestResult::Replayed,
        IngestResult::Rejected,
    ] {
        counter!(INGEST_TOTAL, "result" => result.as_str()).increment(0);
    }
}

/// Counts one answered request and its latency, and an ingest request by
/// its result. `route` is the matched route template
/// (`/projects/{project_id}/tokens`), or `None` when nothing matched.
///
/// Ingest results are read from the final status here, the one place that
/// also sees the refusals made before the handler runs (a bad token, a body
/// over the limit). A `5xx` is not a result: it is counted by status only.
pub fn record_request(method: &Method, route: Option<&str>, status: u16, elapsed: Duration) {
    if route == Some(INGEST_ROUTE)
        && method == Method::POST
        && let Some(result) = IngestResult::from_status(status)
    {
        counter!(INGEST_TOTAL, "result" => result.as_str()).increment(1);
    }

    let method = method_label(method);
    let route = route.unwrap_or(UNMATCHED_ROUTE);
    let seconds = elapsed.as_secs_f64();
    {
        let known = REQUEST_METRICS
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(metrics) = known.iter().find(|m| m.is(method, route, status)) {
            metrics.requests.increment(1);
            metrics.duration.record(seconds);
            return;
        }
    }

    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    let metrics = RequestMetrics {
        method,
        route: route.to_owned(),
        status,
        requests: counter!(HTTP_REQUESTS_TOTAL, &labels),
        duration: histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels),
    };
    metrics.requests.increment(1);
    metrics.duration.record(seconds);
    if HANDLE.get().is_none() {
        // Handles taken before the recorder is installed record nothing.
        return;
    }
    let mut known = REQUEST_METRICS
        .write()
        .unwrap_or_else(PoisonError::into_inner);
    if !known.iter().any(|m| m.is(method, route, status)) {
        known.push(metrics);
    }
}

/// The request metrics of one method, route and status, looked up once:
/// finding a metric by its labels costs more than recording into it. There
/// are a few dozen such triples, since none of the labels is free text.
static REQUEST_METRICS: RwLock<Vec<RequestMetrics>> = RwLock::new(Vec::new());

struct RequestMetrics {
    method: &'static str,
    route: String,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

impl RequestMetrics {
    fn is(&self, method: &str, route: &str, status: u16) -> bool {
        self.status == status && self.method == method && self.route == route
    }
}

/// The outcome of one ingest request, as the `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestResult {
    /// A new run was stored (`201`).
    Created,
    /// The run was already stored and is returned unchanged (`200`).
    Replayed,
    /// The request was refused: bad token, bad body, too large (`4xx`).
    Rejected,
}

impl IngestResult {
    /// The result an ingest response's status stands for; `None` for a `5xx`.
    pub fn from_status(status: u16) -> Option<Self> {
        match status {
            201 => Some(Self::Created),
            200 => Some(Self::Replayed),
            400..=499 => Some(Self::Rejected),
            _ => None,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Replayed => "replayed",
            Self::Rejected => "rejected",
        }
    }
}

/// Records how many runs one database transaction on the ingest path wrote.
/// Call it once per committed batch; a write of a single run is a batch of 1.
pub fn record_write_batch(runs: usize) {
    histogram!(INGEST_BATCH_SIZE).record(runs as f64);
}

/// Samples the connection pools into their gauges; called at scrape time so
/// the values are current without a background sampler.
pub fn sample_pools(db: &Database) {
    let pools = match db {
        Database::Sqlite(db) => vec![("sqlite_writer", &db.writer), ("sqlite_reader", &db.reader)]
            .into_iter()
            .map(|(name, pool)| (name, pool.size(), pool.num_idle()))
            .collect::<Vec<_>>(),
        Database::Postgres(pool) => vec![("postgres", pool.size(), pool.num_idle())],
    };
    for (name, size, idle) in pools {
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        gauge!(DB_CONNECTIONS_IN_USE, "pool" => name).set(f64::from(size.saturating_sub(idle)));
        gauge!(DB_CONNECTIONS_IDLE, "pool" => name).set(f64::from(idle));
    }
}

/// Standard methods by name; anything else is `other`, so a client cannot
/// mint new label values.
fn method_label(method: &Method) -> &'static str {
    static KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_statuses_map_to_the_three_results() {
        assert_eq!(IngestResult::from_status(201), Some(IngestResult::Created));
        assert_eq!(IngestResult::from_status(200), Some(IngestResult::Replayed));
        for refused in [400, 401, 413, 415] {
            assert_eq!(
                IngestResult::from_status(refused),
                Some(IngestResult::Rejected)
            );
        }
        assert_eq!(IngestResult::from_status(503), None);
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let custom = Method::from_bytes(b"BREW").unwrap();

        assert_eq!(method_label(&custom), "other");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }
}
