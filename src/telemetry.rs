//! JSON logs (SPEC section 6): one flat object per line on stdout.
//!
//! tracing-subscriber's own JSON format nests span fields under `span` and
//! `spans`; operators want `request_id` and `project_id` at the top level of
//! every line of a request, so this layer merges the fields of every span in
//! scope with the event's own, innermost last.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::timestamp;

/// Where log lines go: stdout in production, a buffer in tests.
#[derive(Clone)]
pub enum LogSink {
    /// Standard output.
    Stdout,
    /// An in-memory buffer, for tests that read the log back.
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl LogSink {
    fn write_line(&self, line: &[u8]) {
        // A failed log write has nowhere better to be reported; it is dropped.
        let _ = match self {
            Self::Stdout => io::stdout().lock().write_all(line),
            Self::Buffer(buffer) => buffer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(line),
        };
    }
}

/// Builds a filter from `LOG_LEVEL`: a level name or any tracing directive.
pub fn filter(log_level: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    EnvFilter::builder().parse(log_level)
}

/// A subscriber that writes flat JSON lines to `sink`, filtered by `log_level`.
pub fn subscriber(
    log_level: &str,
    sink: LogSink,
) -> Result<impl Subscriber + Send + Sync, tracing_subscriber::filter::ParseError> {
    Ok(tracing_subscriber::registry()
        .with(filter(log_level)?)
        .with(JsonLines { sink }))
}

/// Installs the stdout subscriber for the whole process.
pub fn init(log_level: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing::subscriber::set_global_default(subscriber(log_level, LogSink::Stdout)?)?;
    Ok(())
}

/// The layer that renders each event as one JSON object.
struct JsonLines {
    sink: LogSink,
}

/// The recorded fields of one span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonVisitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            timestamp::format_millis(timestamp::now()).into(),
        );
        line.insert("level".into(), level_name(event.metadata().level()).into());
        line.insert("message".into(), Value::Null);

        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        let target = event.metadata().target();
        // Some libraries (sqlx's query log, for one) emit events without a
        // message; every line still gets one, so that it can be filtered on.
        if !line["message"].is_string() {
            line.insert("message".into(), target.into());
        }
        line.insert("target".into(), target.into());

        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        self.sink.write_line(&bytes);
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Records tracing fields as JSON values, keeping numbers and booleans typed.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_json_with_span_fields_merged() {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let subscriber = subscriber("info", LogSink::Buffer(buffer.clone())).unwrap();

        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                request_id = "req_1",
                project_id = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("project_id", "p-1");
            tracing::info!(status = 201_u16, duration_ms = 4.5, "request completed");
            tracing::debug!("filtered out");
        });

        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "info");
        assert_eq!(line["message"], "request completed");
        assert_eq!(line["request_id"], "req_1");
        assert_eq!(line["project_id"], "p-1");
        assert_eq!(line["status"], 201);
        assert_eq!(line["duration_ms"], 4.5);
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn events_without_a_message_are_given_their_target_as_one() {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let subscriber = subscriber("info", LogSink::Buffer(buffer.clone())).unwrap();

        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "sqlx::query", summary = "SELECT 1", rows_returned = 1_u64);
        });

        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["message"], "sqlx::query");
        assert_eq!(line["summary"], "SELECT 1");
    }
}
