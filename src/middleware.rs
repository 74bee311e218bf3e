//! The request middleware: request id, span, error envelope, completion log.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use tracing::field::Empty;

use crate::error::{self, AppError, EnvelopeRendered, ErrorReport};
use crate::{app_metrics, request_id};

/// Routes polled by load balancers and scrapers: logged at debug, not info.
const QUIET_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Wraps every request: gives it an id (returned in `X-Request-Id`), runs it
/// in a span carrying that id, renders any bare error response from the
/// framework as the envelope, logs one line when it completes, and counts it
/// in the request metrics under its matched route.
pub async fn track_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id::from_headers(request.headers());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    // Plain strings, not `%` Display values: they skip the formatter.
    let span = tracing::info_span!(
        "request",
        request_id = id.as_str(),
        method = method.as_str(),
        path = request.uri().path(),
        route = route.as_deref().unwrap_or("unmatched"),
        project_id = Empty,
    );

    let mut response = request_id::scope(id.clone(), async move {
        let response = next.run(request).await;
        ensure_envelope(response)
    })
    .instrument(span.clone())
    .await;

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app_metrics::record_request(&method, route.as_deref(), status, elapsed);
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let duration_ms = (duration_ms * 100.0).round() / 100.0;
    if let Some(ErrorReport(cause)) = response.extensions().get::<ErrorReport>() {
        if response.status().is_server_error() {
            tracing::error!(
                parent: &span, status, duration_ms, error = %cause, "request completed"
            );
        } else {
            tracing::info!(
                parent: &span, status, duration_ms, error = %cause, "request completed"
            );
        }
    } else if response.status().is_server_error() {
        tracing::error!(parent: &span, status, duration_ms, "request completed");
    } else if route.as_deref().is_some_and(|r| QUIET_ROUTES.contains(&r)) {
        tracing::debug!(parent: &span, status, duration_ms, "request completed");
    } else {
        tracing::info!(parent: &span, status, duration_ms, "request completed");
    }
    response
}

/// Gives an error response produced outside our handlers (unknown route,
/// wrong method, body limit, timeout, panic) the standard envelope, keeping
/// its headers (`Allow` on a 405, for one).
fn ensure_envelope(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<EnvelopeRendered>().is_some()
    {
        return response;
    }

    let (parts, _body) = response.into_parts();
    let mut rendered = error::render_envelope(status, error::default_message(status), &[]);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if let Some(report) = parts.extensions.get::<ErrorReport>() {
        rendered.extensions_mut().insert(report.clone());
    }
    rendered
}

/// Turns a handler panic into an opaque `500`; the panic message is logged.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    AppError::internal(format!("handler panicked: {message}")).into_response()
}
