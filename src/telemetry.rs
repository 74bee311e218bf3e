//! JSON logs (SPEC section 6): one flat object per line on stdout.
//!
//! tracing-subscriber's own JSON format nests span fields under `span` and
//! `spans`; operators want `request_id` and `project_id` at the top level of
//! every line of a request, so this layer writes the fields of every span in
//! scope next to the event's own. When two share a name, the event's wins,
//! then the innermost span's.
//!
//! Every request logs a line, so the layer is written for speed: a span's
//! fields are rendered to JSON text once, when they are recorded, and each
//! line is written straight into a buffer kept per thread.

use std::cell::RefCell;
use std::io::{self, Write};
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

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
    /// Standard output, written by a thread of its own.
    Stdout(Arc<BackgroundWriter>),
    /// An in-memory buffer, for tests that read the log back.
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl LogSink {
    fn write_line(&self, line: &[u8]) {
        match self {
            Self::Stdout(writer) => writer.write_line(line),
            Self::Buffer(buffer) => buffer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(line),
        }
    }
}

/// The most bytes of log lines that may wait for the stdout thread; a
/// request that would add more waits until they are written, so that a slow
/// reader of stdout slows the service down instead of losing lines.
const MAX_PENDING_BYTES: usize = 4 << 20;

/// How long the writer thread pauses after each write, gathering lines.
const BATCH_INTERVAL: Duration = Duration::from_millis(1);

/// Writes log lines from a thread of its own, many lines per write.
///
/// Requests only append their line to a buffer: the system call, and a wait
/// on a slow pipe, stay off the threads that serve requests. Dropping the
/// [`LogGuard`] that [`init`] returns writes out whatever is left.
pub struct BackgroundWriter {
    output: Mutex<Box<dyn Write + Send>>,
    queue: Mutex<Queue>,
    /// Signalled when lines arrive for an idle writer, or at close.
    lines_waiting: Condvar,
    /// Signalled when a batch has been written, for those waiting on room.
    batch_written: Condvar,
}

#[derive(Default)]
struct Queue {
    lines: Vec<u8>,
    writer_idle: bool,
    waiting_for_room: usize,
    closing: bool,
    closed: bool,
}

impl BackgroundWriter {
    /// Starts the writer thread, writing to `output`.
    fn start(output: Box<dyn Write + Send>) -> io::Result<Arc<Self>> {
        let writer = Arc::new(Self {
            output: Mutex::new(output),
            queue: Mutex::new(Queue::default()),
            lines_waiting: Condvar::new(),
            batch_written: Condvar::new(),
        });
        let thread_writer = writer.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || thread_writer.write_until_closed())?;
        Ok(writer)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_line(&self, line: &[u8]) {
        let mut queue = self.lock();
        while queue.lines.len() >= MAX_PENDING_BYTES && !queue.closed {
            queue.waiting_for_room += 1;
            queue = self
                .batch_written
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.waiting_for_room -= 1;
        }
        if queue.closed {
            // After close, lines are written at once, in order.
            self.write_out(line);
            return;
        }
        queue.lines.extend_from_slice(line);
        if queue.writer_idle {
            queue.writer_idle = false;
            self.lines_waiting.notify_one();
        }
    }

    fn write_until_closed(&self) {
        let mut batch = Vec::new();
        loop {
            let mut queue = self.lock();
            while queue.lines.is_empty() && !queue.closing {
                queue.writer_idle = true;
                queue = self
                    .lines_waiting
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if queue.lines.is_empty() {
                queue.closed = true;
                self.batch_written.notify_all();
                return;
            }
            std::mem::swap(&mut batch, &mut queue.lines);
            let anyone_waiting = queue.waiting_for_room > 0;
            drop(queue);

            if anyone_waiting {
                self.batch_written.notify_all();
            }
            self.write_out(&batch);
            batch.clear();
            // Lines that arrive meanwhile are written together, in the next
            // batch, without waking this thread once per line.
            std::thread::sleep(BATCH_INTERVAL);
        }
    }

    /// Writes every line still waiting, then has later lines written at once.
    fn close(&self) {
        let mut queue = self.lock();
        queue.closing = true;
        self.lines_waiting.notify_one();
        while !queue.closed {
            queue = self
                .batch_written
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn write_out(&self, bytes: &[u8]) {
        let mut output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        // A failed log write has nowhere better to be reported; it is dropped.
        let _ = output.write_all(bytes).and_then(|()| output.flush());
    }
}

/// Keeps the stdout log writer running; dropping it writes out every line
/// still waiting. Hold it until the process is about to exit.
#[must_use = "dropping the guard stops the background log writer"]
pub struct LogGuard(Arc<BackgroundWriter>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.close();
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
pub fn init(log_level: &str) -> Result<LogGuard, Box<dyn std::error::Error + Send + Sync>> {
    let filter = filter(log_level)?;
    let writer = BackgroundWriter::start(Box::new(io::stdout()))?;
    let subscriber = tracing_subscriber::registry().with(filter).with(JsonLines {
        sink: LogSink::Stdout(writer.clone()),
    });
    tracing::subscriber::set_global_default(subscriber)?;
    Ok(LogGuard(writer))
}

/// Names the layer writes itself; fields of the same name are not repeated.
const BUILT_IN: [&str; 4] = ["timestamp", "level", "message", "target"];

/// What writing a line needs, kept per thread between events to save the
/// allocations.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    written: Vec<&'static str>,
    /// The event's own fields.
    own: Fields,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// The layer that renders each event as one JSON object.
struct JsonLines {
    sink: LogSink,
}

/// Fields by name, each value already rendered as JSON text, the texts one
/// after another in a single buffer.
#[derive(Default)]
struct Fields {
    json: Vec<u8>,
    entries: Vec<(&'static str, Range<usize>)>,
}

impl Fields {
    /// Sets `name` to the JSON that `render` appends, in place of any
    /// earlier value.
    fn set(&mut self, name: &'static str, render: impl FnOnce(&mut Vec<u8>)) {
        let start = self.json.len();
        render(&mut self.json);
        let range = start..self.json.len();
        match self
            .entries
            .iter_mut()
            .find(|(existing, _)| *existing == name)
        {
            Some(slot) => slot.1 = range,
            None => self.entries.push((name, range)),
        }
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(existing, _)| *existing == name)
            .map(|(_, json)| json)
    }

    fn iter(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        self.entries
            .iter()
            .map(|(name, range)| (*name, &self.json[range.clone()]))
    }

    fn clear(&mut self) {
        self.json.clear();
        self.entries.clear();
    }
}

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(&mut JsonVisitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();

        SCRATCH.with_borrow_mut(|Scratch { line, written, own }| {
            own.clear();
            event.record(&mut JsonVisitor(own));

            line.clear();
            line.extend_from_slice(b"{\"timestamp\":\"");
            timestamp::write_millis(line, timestamp::now());
            line.extend_from_slice(b"\",\"level\":\"");
            line.extend_from_slice(level_name(event.metadata().level()).as_bytes());
            line.extend_from_slice(b"\",\"message\":");
            // Some libraries (sqlx's query log, for one) emit events without
            // a message; every line still gets one, so that it can be
            // filtered on.
            match own.get("message") {
                Some(message) => line.extend_from_slice(message),
                None => push_json_str(line, target),
            }
            line.extend_from_slice(b",\"target\":");
            push_json_str(line, target);

            written.clear();
            written.extend_from_slice(&BUILT_IN);
            for (name, json) in own.iter() {
                push_field(line, written, name, json);
            }
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope {
                    if let Some(fields) = span.extensions().get::<Fields>() {
                        for (name, json) in fields.iter() {
                            push_field(line, written, name, json);
                        }
                    }
                }
            }
            line.extend_from_slice(b"}\n");

            self.sink.write_line(line);
        });
    }
}

/// Appends `"name":json` unless a field of that name is already on the line.
fn push_field(
    line: &mut Vec<u8>,
    written: &mut Vec<&'static str>,
    name: &'static str,
    json: &[u8],
) {
    if written.contains(&name) {
        return;
    }
    written.push(name);
    line.push(b',');
    push_json_str(line, name);
    line.push(b':');
    line.extend_from_slice(json);
}

/// Appends `text` as a JSON string, quoted and escaped.
fn push_json_str(line: &mut Vec<u8>, text: &str) {
    // Names, ids, routes and most messages need no escape: copied as they are.
    if !text
        .bytes()
        .any(|byte| byte < 0x20 || byte == b'"' || byte == b'\\')
    {
        line.push(b'"');
        line.extend_from_slice(text.as_bytes());
        line.push(b'"');
        return;
    }
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(line, text);
}

/// Escapes what is written to it for the inside of a JSON string, so that
/// formatted values need no buffer of their own.
struct JsonEscaped<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        // Runs of bytes that need no escape are copied whole. Every byte that
        // does is ASCII, so the cuts fall on character boundaries.
        let mut start = 0;
        for (index, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 => "",
                _ => continue,
            };
            self.0.extend_from_slice(&text.as_bytes()[start..index]);
            if escape.is_empty() {
                let _ = write!(self.0, "\\u{byte:04x}");
            } else {
                self.0.extend_from_slice(escape.as_bytes());
            }
            start = index + 1;
        }
        self.0.extend_from_slice(&text.as_bytes()[start..]);
        Ok(())
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

/// Records tracing fields as JSON text, keeping numbers and booleans typed.
struct JsonVisitor<'a>(&'a mut Fields);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null.
        self.0.set(field.name(), |json| {
            let _ = serde_json::to_writer(json, &value);
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(field.name(), |json| {
            let _ = write!(json, "{value}");
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set(field.name(), |json| {
            let _ = write!(json, "{value}");
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(field.name(), |json| {
            json.extend_from_slice(if value { b"true" } else { b"false" });
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.set(field.name(), |json| push_json_str(json, value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.set(field.name(), |json| {
            json.push(b'"');
            let _ = std::fmt::Write::write_fmt(&mut JsonEscaped(json), format_args!("{value}"));
            json.push(b'"');
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.set(field.name(), |json| {
            json.push(b'"');
            let _ = std::fmt::Write::write_fmt(&mut JsonEscaped(json), format_args!("{value:?}"));
            json.push(b'"');
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

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

    proptest::proptest! {
        /// Whatever a formatted value contains, its line stays valid JSON
        /// and reads back as the same text.
        #[test]
        fn formatted_values_are_escaped_as_json(text in "\\PC*|[\\x00-\\x7f]*") {
            let mut json = b"\"".to_vec();
            let mut escaped = JsonEscaped(&mut json);
            std::fmt::Write::write_str(&mut escaped, &text).unwrap();
            json.push(b'"');

            let back: String = serde_json::from_slice(&json).unwrap();
            proptest::prop_assert_eq!(back, text);
        }

        /// Quoting by hand, when nothing needs an escape, writes what
        /// serde_json would.
        #[test]
        fn strings_are_quoted_as_serde_json_quotes_them(text in "\\PC*|[\\x00-\\x7f]*|[a-z_/]*") {
            let mut line = Vec::new();
            push_json_str(&mut line, &text);

            proptest::prop_assert_eq!(line, serde_json::to_vec(&text).unwrap());
        }
    }

    /// A `Write` into a shared buffer, to read back what the thread wrote.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_background_writer_keeps_every_line_in_order_through_close() {
        let output = Shared::default();
        let writer = BackgroundWriter::start(Box::new(output.clone())).unwrap();

        // Eight threads, 2,000 lines each, more than MAX_PENDING_BYTES in all.
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for line in 0..2_000 {
                        let text = format!("{thread} {line} {}\n", "x".repeat(300));
                        writer.write_line(text.as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(LogGuard(writer.clone()));
        writer.write_line(b"after close\n");

        let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8 * 2_000 + 1);
        assert_eq!(lines.last(), Some(&"after close"));
        for thread in 0..8 {
            let numbers: Vec<usize> = lines
                .iter()
                .filter_map(|line| line.strip_prefix(&format!("{thread} ")))
                .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..2_000).collect::<Vec<_>>(), "thread {thread}");
        }
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
