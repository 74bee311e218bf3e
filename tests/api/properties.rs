//! Properties of the core API, each checked on 256 generated inputs through
//! the real router. One service (one fresh database) serves all the cases of
//! a property; cases keep out of each other's way with fresh projects or
//! fresh run ids.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use test_analytics::config::Durability;
use tokio::runtime::Handle;

use crate::backend_tests;
use crate::formats::{is_raw_token, sha256_hex};
use crate::helpers::{Backend, ProjectFixture, TestApp, TestResponse};

backend_tests!(
    issued_tokens_are_well_formed_distinct_and_stored_only_as_their_sha256,
    repeated_run_ids_leave_one_row_each_and_replay_the_first_stored_values,
    no_token_ever_sees_or_changes_another_projects_runs,
    the_same_run_id_in_two_projects_is_two_rows,
    ingest_accepts_a_body_exactly_when_every_field_follows_the_spec,
    unknown_organization_and_project_ids_are_404_and_never_a_row,
);

const CASES: u32 = 256;
const MAX_DURATION_MS: u64 = (1 << 53) - 1;

/// Runs `property` on [`CASES`] inputs from `strategy`, blocking this test's
/// runtime thread so that each case can drive the async service.
fn check<S>(strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(config);
        if let Err(failure) = runner.run(&strategy, property) {
            panic!("{failure}");
        }
    });
}

/// A service whose commits do not wait for the disk. The properties are
/// about what is stored and answered, not about surviving a power cut (the
/// reliability suite covers that), and a flush per commit would dominate
/// their run time.
async fn fast_app(backend: Backend) -> Option<TestApp> {
    TestApp::with_config(backend, |config| {
        config.sqlite_synchronous = Durability::Normal;
        if let Some(url) = &mut config.database_url {
            url.push_str("?options=-c%20synchronous_commit%3Doff");
        }
    })
    .await
}

/// A valid ingest body's fields, without the run id.
#[derive(Clone, Debug)]
struct RunFields {
    status: &'static str,
    duration_ms: u64,
    timestamp: String,
}

impl RunFields {
    fn body(&self, run_id: &str) -> Value {
        json!({
            "run_id": run_id,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "timestamp": self.timestamp,
        })
    }
}

fn valid_timestamp() -> impl Strategy<Value = String> {
    let offset = prop_oneof![
        Just("Z".to_owned()),
        (prop::bool::ANY, 0..=23_u32, 0..=59_u32)
            .prop_map(|(east, h, m)| { format!("{}{h:02}:{m:02}", if east { '+' } else { '-' }) }),
    ];
    let fraction = prop::option::of("[0-9]{1,9}").prop_map(|f| f.map(|f| format!(".{f}")));
    (
        1970..=2100_u32,
        1..=12_u32,
        1..=28_u32,
        0..=23_u32,
        0..=59_u32,
        0..=59_u32,
    )
        .prop_flat_map(move |date| (Just(date), fraction.clone(), offset.clone()))
        .prop_map(|((y, mo, d, h, mi, s), fraction, offset)| {
            let fraction = fraction.unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}{offset}")
        })
}

fn run_fields() -> impl Strategy<Value = RunFields> {
    (
        prop::sample::select(vec!["passed", "failed"]),
        prop_oneof![0..=10_000_u64, 0..=MAX_DURATION_MS, Just(MAX_DURATION_MS)],
        valid_timestamp(),
    )
        .prop_map(|(status, duration_ms, timestamp)| RunFields {
            status,
            duration_ms,
            timestamp,
        })
}

/// The runs stored for a project: run id → (status, duration, timestamp).
async fn stored_runs(app: &TestApp, project_id: &str) -> BTreeMap<String, [String; 3]> {
    let sql = format!(
        "SELECT CAST(run_id AS TEXT), status, CAST(duration_ms AS TEXT), timestamp \
         FROM test_runs WHERE CAST(project_id AS TEXT) = '{project_id}'"
    );
    app.text_rows(&sql)
        .await
        .into_iter()
        .map(|row| {
            let [run_id, status, duration, timestamp] =
                <[Option<String>; 4]>::try_from(row).expect("four columns");
            let text = |v: Option<String>| v.expect("not null");
            (
                text(run_id),
                [text(status), text(duration), text(timestamp)],
            )
        })
        .collect()
}

/// What a stored run looks like in [`stored_runs`], from an API response.
fn as_stored(response: &TestResponse) -> [String; 3] {
    [
        response.str("status").to_owned(),
        response.body["duration_ms"].to_string(),
        response.str("timestamp").to_owned(),
    ]
}

/// Run ids a case picks from, so that repeats are frequent.
fn run_id_pool() -> Vec<String> {
    (0..5).map(|_| uuid::Uuid::new_v4().to_string()).collect()
}

/// Sends `body` with `token`, optionally with the run id in upper case.
async fn ingest_case(app: &TestApp, token: &str, body: Value, upper: bool) -> TestResponse {
    let mut body = body;
    if upper {
        body["run_id"] = json!(body["run_id"].as_str().unwrap().to_uppercase());
    }
    app.ingest(token, body).await
}

/// Issued tokens are `ta_live_` + 64 lowercase hex, never repeat, and the
/// database holds only their SHA-256 digest.
async fn issued_tokens_are_well_formed_distinct_and_stored_only_as_their_sha256(backend: Backend) {
    let Some(app) = fast_app(backend).await else {
        return;
    };
    let project = app.create_project_with_token().await;
    let seen = RefCell::new(HashSet::from([project.token.clone()]));
    let handle = Handle::current();

    check(prop::bool::ANY, |upper_case_id| {
        handle.block_on(async {
            let id = if upper_case_id {
                project.project_id.to_uppercase()
            } else {
                project.project_id.clone()
            };

            let response = app.create_token(&id).await;

            prop_assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
            let token = response.str("token");
            prop_assert!(is_raw_token(token), "{}", token);
            prop_assert!(
                seen.borrow_mut().insert(token.to_owned()),
                "repeated {}",
                token
            );
            let sql = format!(
                "SELECT token_hash, prefix FROM api_tokens WHERE CAST(id AS TEXT) = '{}'",
                response.str("id")
            );
            let stored = app.text_rows(&sql).await;
            prop_assert_eq!(
                stored,
                vec![vec![Some(sha256_hex(token)), Some(token[..12].to_owned())]]
            );
            Ok(())
        })
    });

    let leaked = app
        .text_rows("SELECT token_hash FROM api_tokens WHERE token_hash LIKE 'ta_%'")
        .await;
    assert!(leaked.is_empty());
    assert_eq!(app.count_rows("api_tokens").await, i64::from(CASES) + 1);
}

/// Any sequence of ingests with repeated run ids leaves one row per run id,
/// answers the first `201` and every repeat `200` with the first stored values.
async fn repeated_run_ids_leave_one_row_each_and_replay_the_first_stored_values(backend: Backend) {
    let Some(app) = fast_app(backend).await else {
        return;
    };
    let handle = Handle::current();
    let pool = run_id_pool();
    let ingests = prop::collection::vec((0..pool.len(), run_fields(), prop::bool::ANY), 1..10);

    check(ingests, |ingests| {
        handle.block_on(async {
            let project = app.create_project_with_token().await;
            let mut first: HashMap<usize, TestResponse> = HashMap::new();

            for (index, fields, upper) in ingests {
                let body = fields.body(&pool[index]);
                let response = ingest_case(&app, &project.token, body, upper).await;

                if let Some(original) = first.get(&index) {
                    prop_assert_eq!(response.status, StatusCode::OK, "{}", response.text);
                    prop_assert_eq!(response.header("idempotent-replayed"), Some("true"));
                    prop_assert_eq!(&response.body, &original.body);
                } else {
                    prop_assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
                    prop_assert!(response.header("idempotent-replayed").is_none());
                    prop_assert_eq!(response.str("run_id"), pool[index].as_str());
                    prop_assert_eq!(response.str("timestamp"), fields.timestamp.as_str());
                    prop_assert_eq!(&response.body["duration_ms"], &json!(fields.duration_ms));
                    first.insert(index, response);
                }
            }

            let expected: BTreeMap<_, _> = first
                .iter()
                .map(|(index, response)| (pool[*index].clone(), as_stored(response)))
                .collect();
            prop_assert_eq!(stored_runs(&app, &project.project_id).await, expected);
            Ok(())
        })
    });
}

/// One ingest of a tenant-isolation case: which project's token, which run
/// id, what body, and whether the body also names another project.
#[derive(Clone, Debug)]
struct TenantIngest {
    project: usize,
    run: usize,
    fields: RunFields,
    names_project: Option<usize>,
}

/// With several projects and their tokens, every ingest lands in the token's
/// project, replays only that project's runs, and never alters another's.
async fn no_token_ever_sees_or_changes_another_projects_runs(backend: Backend) {
    let Some(app) = fast_app(backend).await else {
        return;
    };
    let handle = Handle::current();
    let pool = run_id_pool();
    let case = (2..=3_usize).prop_flat_map(|projects| {
        let ingest = (
            0..projects,
            0..5_usize,
            run_fields(),
            prop::option::of(0..projects),
        )
            .prop_map(|(project, run, fields, names_project)| TenantIngest {
                project,
                run,
                fields,
                names_project,
            });
        (Just(projects), prop::collection::vec(ingest, 1..10))
    });

    check(case, |(projects, ingests)| {
        handle.block_on(async {
            let mut fixtures: Vec<ProjectFixture> = Vec::new();
            for _ in 0..projects {
                fixtures.push(app.create_project_with_token().await);
            }
            let mut first: HashMap<(usize, usize), Value> = HashMap::new();

            for ingest in ingests {
                let own = &fixtures[ingest.project];
                let mut body = ingest.fields.body(&pool[ingest.run]);
                if let Some(other) = ingest.names_project {
                    body["project_id"] = json!(fixtures[other].project_id);
                }

                let response = app.ingest(&own.token, body).await;

                prop_assert_eq!(response.str("project_id"), own.project_id.as_str());
                match first.get(&(ingest.project, ingest.run)) {
                    Some(original) => {
                        prop_assert_eq!(response.status, StatusCode::OK, "{}", response.text);
                        prop_assert_eq!(&response.body, original);
                    }
                    None => {
                        prop_assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
                        first.insert((ingest.project, ingest.run), response.body);
                    }
                }
            }

            for (index, fixture) in fixtures.iter().enumerate() {
                let expected: BTreeMap<_, _> = first
                    .iter()
                    .filter(|((project, _), _)| *project == index)
                    .map(|((_, run), body)| {
                        let stored = [
                            body["status"].as_str().unwrap().to_owned(),
                            body["duration_ms"].to_string(),
                            body["timestamp"].as_str().unwrap().to_owned(),
                        ];
                        (pool[*run].clone(), stored)
                    })
                    .collect();
                prop_assert_eq!(stored_runs(&app, &fixture.project_id).await, expected);
            }
            Ok(())
        })
    });
}

/// The same run id ingested into two projects is two rows, one per project,
/// each with the values sent to that project.
async fn the_same_run_id_in_two_projects_is_two_rows(backend: Backend) {
    let Some(app) = fast_app(backend).await else {
        return;
    };
    let handle = Handle::current();
    let a = app.create_project_with_token().await;
    let b = app.create_project_with_token().await;
    let case = (run_fields(), run_fields(), prop::bool::ANY, prop::bool::ANY);

    check(case, |(for_a, for_b, upper_a, upper_b)| {
        handle.block_on(async {
            let run_id = uuid::Uuid::new_v4().to_string();

            let in_a = ingest_case(&app, &a.token, for_a.body(&run_id), upper_a).await;
            let in_b = ingest_case(&app, &b.token, for_b.body(&run_id), upper_b).await;

            prop_assert_eq!(in_a.status, StatusCode::CREATED, "{}", in_a.text);
            prop_assert_eq!(in_b.status, StatusCode::CREATED, "{}", in_b.text);
            prop_assert_ne!(in_a.str("id"), in_b.str("id"));
            prop_assert_eq!(in_a.str("project_id"), a.project_id.as_str());
            prop_assert_eq!(in_b.str("project_id"), b.project_id.as_str());
            prop_assert_eq!(in_a.str("timestamp"), for_a.timestamp.as_str());
            prop_assert_eq!(in_b.str("timestamp"), for_b.timestamp.as_str());
            let sql = format!(
                "SELECT CAST(project_id AS TEXT) FROM test_runs \
                 WHERE CAST(run_id AS TEXT) = '{run_id}' ORDER BY project_id"
            );
            let mut owners: Vec<_> = app.text_rows(&sql).await.concat();
            owners.sort();
            let mut expected = vec![Some(a.project_id.clone()), Some(b.project_id.clone())];
            expected.sort();
            prop_assert_eq!(owners, expected);
            Ok(())
        })
    });
}

/// Any JSON value: scalars of every kind, and small arrays and objects of them.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        prop::bool::ANY.prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Replaces the character at `position` (modulo the length) with `with`.
fn mutate(text: &str, position: usize, with: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if !chars.is_empty() {
        let at = position % chars.len();
        chars[at] = with;
    }
    chars.into_iter().collect()
}

fn mutated(valid: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (
        valid,
        any::<usize>(),
        prop_oneof!["[0-9a-zA-Z:+.\\- _]", "\\PC"],
    )
        .prop_map(|(text, at, with)| mutate(&text, at, with.chars().next().unwrap_or('x')))
}

fn run_id_value() -> impl Strategy<Value = Value> {
    let uuid = any::<[u8; 16]>().prop_map(|bytes| uuid::Uuid::from_bytes(bytes).to_string());
    let text = prop_oneof![
        8 => uuid.clone(),
        2 => uuid.clone().prop_map(|u| u.to_uppercase()),
        1 => uuid.clone().prop_map(|u| u.replace('-', "")),
        1 => uuid.clone().prop_map(|u| format!("{{{u}}}")),
        1 => uuid.clone().prop_map(|u| u[..35].to_owned()),
        2 => mutated(uuid),
        1 => "\\PC{0,40}",
    ];
    prop_oneof![8 => text.prop_map(Value::from), 1 => any_json()]
}

fn status_value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        6 => prop::sample::select(vec!["passed", "failed"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["PASSED", "Failed", " passed", "passed ", "skipped", ""])
            .prop_map(str::to_owned),
        1 => "\\PC{0,10}",
    ];
    prop_oneof![8 => text.prop_map(Value::from), 1 => any_json()]
}

fn duration_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => (0..=MAX_DURATION_MS).prop_map(Value::from),
        1 => prop::sample::select(vec![0, MAX_DURATION_MS, MAX_DURATION_MS + 1, u64::MAX])
            .prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => (-1e6..1e16_f64).prop_map(|f| json!(f)),
        1 => (0..10_000_u64).prop_map(|n| Value::from(n.to_string())),
        1 => any_json(),
    ]
}

fn timestamp_value() -> impl Strategy<Value = Value> {
    // Each part is usually valid, so that most generated texts are wrong in
    // one place at most and the rule is probed at every boundary.
    type Range = std::ops::RangeInclusive<u32>;
    let part = |valid: Range, invalid: Range| prop_oneof![6 => valid, 1 => invalid];
    let date = (0..=9999_u32, part(1..=12, 13..=99), part(1..=31, 32..=99))
        .prop_map(|(y, mo, d)| format!("{y:04}-{mo:02}-{d:02}"));
    let clock = (
        part(0..=23, 24..=99),
        part(0..=59, 61..=99),
        part(0..=59, 61..=99),
    )
        .prop_map(|(h, mi, s)| format!("{h:02}:{mi:02}:{s:02}"));
    let separator = prop_oneof![6 => Just('T'), 1 => Just('t'), 2 => Just(' '), 1 => Just('x')];
    let fraction = prop_oneof![
        2 => Just(String::new()),
        2 => "[0-9]{1,12}".prop_map(|f| format!(".{f}")),
        1 => Just(".".to_owned()),
    ];
    let offset = prop_oneof![
        3 => Just("Z".to_owned()),
        1 => Just("z".to_owned()),
        1 => Just(String::new()),
        4 => (prop::bool::ANY, part(0..=23, 24..=99), part(0..=59, 60..=99)).prop_map(
            |(east, h, m)| format!("{}{h:02}:{m:02}", if east { '+' } else { '-' })
        ),
        1 => (0..=23_u32, 0..=59_u32).prop_map(|(h, m)| format!("+{h:02}{m:02}")),
    ];
    let composed = (date.clone(), separator, clock, fraction, offset).prop_map(
        |(date, sep, clock, fraction, offset)| format!("{date}{sep}{clock}{fraction}{offset}"),
    );
    let text = prop_oneof![
        2 => valid_timestamp(),
        6 => composed,
        1 => date,
        2 => mutated(valid_timestamp()),
        1 => "\\PC{0,30}",
    ];
    prop_oneof![8 => text.prop_map(Value::from), 1 => any_json()]
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// SPEC's timestamp rule, written out independently of the service: an
/// RFC 3339 date-time (`T` between date and time), real calendar date, with
/// `Z` or a `±HH:MM` offset, at most 64 characters. Seconds of 60 are never
/// generated, so leap seconds are left out of the rule.
fn is_spec_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !(20..=64).contains(&bytes.len()) {
        return false;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let literals = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if literals.iter().any(|(at, c)| bytes[*at] != *c) || !matches!(bytes[10], b'T' | b't') {
        return false;
    }
    let fields = [(0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19)].map(|(a, b)| number(a, b));
    let [
        Some(year),
        Some(month),
        Some(day),
        Some(hour),
        Some(minute),
        Some(second),
    ] = fields
    else {
        return false;
    };
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    if rest == "Z" || rest == "z" {
        return true;
    }
    let offset = rest.as_bytes();
    offset.len() == 6
        && matches!(offset[0], b'+' | b'-')
        && offset[3] == b':'
        && rest[1..3].bytes().all(|b| b.is_ascii_digit())
        && rest[4..6].bytes().all(|b| b.is_ascii_digit())
        && rest[1..3].parse::<u32>().is_ok_and(|h| h <= 23)
        && rest[4..6].parse::<u32>().is_ok_and(|m| m <= 59)
}

/// SPEC's run id rule: `8-4-4-4-12` hex digits of either case.
fn is_spec_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// What the service must say about one field: `None` when it is valid.
fn expected_error(field: &str, value: Option<&Value>) -> Option<&'static str> {
    let value = match value {
        None | Some(Value::Null) => return Some("is required"),
        Some(value) => value,
    };
    match field {
        "run_id" => match value {
            Value::String(text) if is_spec_uuid(text) => None,
            Value::String(_) => Some("must be a UUID"),
            _ => Some("must be a UUID string"),
        },
        "status" => match value {
            Value::String(text) if text == "passed" || text == "failed" => None,
            _ => Some("must be \"passed\" or \"failed\""),
        },
        "duration_ms" => match value {
            Value::Number(n) if n.as_u64().is_some_and(|ms| ms <= MAX_DURATION_MS) => None,
            _ => Some("must be an integer from 0 to 9007199254740991"),
        },
        "timestamp" => match value {
            Value::String(text) if is_spec_timestamp(text) => None,
            _ => Some("must be an RFC 3339 date-time with an offset, e.g. 2026-01-12T10:10:00Z"),
        },
        _ => unreachable!("only the four ingest fields are checked"),
    }
}

const FIELDS: [&str; 4] = ["run_id", "status", "duration_ms", "timestamp"];

/// For arbitrary JSON in each ingest field (or none), the service stores the
/// run exactly when every field meets the SPEC, and otherwise lists exactly
/// the fields that do not, in order, with the right message.
async fn ingest_accepts_a_body_exactly_when_every_field_follows_the_spec(backend: Backend) {
    let Some(app) = fast_app(backend).await else {
        return;
    };
    let handle = Handle::current();
    let project = app.create_project_with_token().await;
    let seen = RefCell::new(HashSet::new());
    let stored = RefCell::new(0_i64);
    let field = |values: BoxedStrategy<Value>| prop::option::weighted(0.95, values);
    let body = (
        field(run_id_value().boxed()),
        field(status_value().boxed()),
        field(duration_value().boxed()),
        field(timestamp_value().boxed()),
    );

    check(body, |values| {
        handle.block_on(async {
            let values = [values.0, values.1, values.2, values.3];
            let mut body = serde_json::Map::new();
            for (name, value) in FIELDS.iter().zip(&values) {
                if let Some(value) = value {
                    body.insert((*name).to_owned(), value.clone());
                }
            }
            let expected: Vec<Value> = FIELDS
                .iter()
                .zip(&values)
                .filter_map(|(name, value)| {
                    let message = expected_error(name, value.as_ref())?;
                    Some(json!({ "field": name, "message": message }))
                })
                .collect();

            let response = app.ingest(&project.token, Value::Object(body)).await;

            if expected.is_empty() {
                let run_id = values[0].as_ref().unwrap().as_str().unwrap().to_lowercase();
                let new = seen.borrow_mut().insert(run_id.clone());
                let status = if new {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                prop_assert_eq!(response.status, status, "{}", response.text);
                prop_assert_eq!(response.str("run_id"), run_id.as_str());
                if new {
                    *stored.borrow_mut() += 1;
                    prop_assert_eq!(&response.body["timestamp"], values[3].as_ref().unwrap());
                    prop_assert_eq!(&response.body["duration_ms"], values[2].as_ref().unwrap());
                }
            } else {
                prop_assert_eq!(
                    response.status,
                    StatusCode::BAD_REQUEST,
                    "{}",
                    response.text
                );
                prop_assert_eq!(&response.body["error"]["code"], "invalid_request");
                prop_assert_eq!(&response.body["error"]["details"], &Value::Array(expected));
            }
            prop_assert_eq!(app.count_rows("test_runs").await, *stored.borrow());
            Ok(())
        })
    });
}

/// Random organization and project ids that name nothing are `404` on
/// `POST /projects` and `POST /tokens`, in any letter case, and store nothing.
async fn unknown_organization_and_project_ids_are_404_and_never_a_row(backend: Backend) {
    let Some(app) = fast_app(backend).await else {
        return;
    };
    let handle = Handle::current();
    let existing = app.create_project_with_token().await;
    let case = (any::<[u8; 16]>(), prop::bool::ANY, "[A-Za-z0-9 ]{1,40}");

    check(case, |(bytes, upper, name)| {
        handle.block_on(async {
            let mut id = uuid::Uuid::from_bytes(bytes).to_string();
            prop_assume!(id != existing.organization_id && id != existing.project_id);
            if upper {
                id = id.to_uppercase();
            }

            let project = app.create_project(&id, &format!("p {name}")).await;
            let token = app.create_token(&id).await;

            prop_assert_eq!(project.status, StatusCode::NOT_FOUND, "{}", project.text);
            prop_assert_eq!(&project.body["error"]["message"], "Organization not found");
            prop_assert_eq!(token.status, StatusCode::NOT_FOUND, "{}", token.text);
            prop_assert_eq!(&token.body["error"]["message"], "Project not found");
            prop_assert!(!token.text.contains("ta_live_"));
            prop_assert_eq!(app.count_rows("projects").await, 1);
            prop_assert_eq!(app.count_rows("api_tokens").await, 1);
            Ok(())
        })
    });
}

proptest! {
    #![proptest_config(Config { cases: CASES, failure_persistence: None, ..Config::default() })]

    /// `is_well_formed` accepts exactly `ta_live_` + 64 lowercase hex, and a
    /// token's hash is the SHA-256 hex digest of its text, whatever the text.
    #[test]
    fn token_shape_and_hash_follow_the_spec_for_any_text(
        text in prop_oneof![
            "ta_live_[0-9a-f]{64}",
            "ta_live_[0-9a-fA-F]{62,66}",
            "[a-z_]{0,10}[0-9a-f]{60,70}",
            "\\PC{0,80}",
        ]
    ) {
        use test_analytics::token::{TokenHash, is_well_formed};

        prop_assert_eq!(is_well_formed(&text), is_raw_token(&text));
        let hash = TokenHash::of(&text);
        prop_assert_eq!(hash.as_str(), sha256_hex(&text));
        let debug = format!("{hash:?}");
        prop_assert!(!debug.contains(hash.as_str()));
    }

    /// Freshly generated tokens are well formed, hash to their SHA-256 digest,
    /// and show only their first 12 characters as a prefix.
    #[test]
    fn generated_tokens_are_well_formed_and_hash_to_their_digest(_case in 0..1_u8) {
        use test_analytics::token::NewToken;

        let token = NewToken::generate().expect("the OS random source");

        prop_assert!(is_raw_token(&token.value), "{}", token.value);
        prop_assert_eq!(token.hash.as_str(), sha256_hex(&token.value));
        prop_assert_eq!(token.display_prefix(), &token.value[..12]);
    }
}
