//! `POST /ingest` (SPEC section 3): the stored record, the field rules, and
//! idempotent replays.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::formats::{is_lowercase_uuid, is_utc_millis};
use crate::helpers::{Backend, ProjectFixture, TestApp, TestResponse, run_body};

backend_tests!(
    ingesting_a_run_returns_201_with_the_stored_record,
    run_id_is_accepted_in_any_case_and_stored_lowercase,
    duration_ms_accepts_0_and_2_pow_53_minus_1,
    duration_ms_rejects_fractions_strings_negatives_and_2_pow_53,
    timestamps_with_z_or_an_offset_are_accepted_and_echoed_as_sent,
    timestamps_are_stored_as_the_instant_they_name,
    timestamps_without_an_offset_or_impossible_are_rejected,
    status_must_be_passed_or_failed_exactly,
    run_id_must_be_a_hyphenated_uuid,
    a_body_missing_or_nulling_every_field_lists_all_four,
    a_repeated_run_id_is_200_with_the_first_record_even_when_the_body_differs,
    a_replay_after_a_rejected_attempt_still_returns_the_first_stored_record,
    a_project_id_in_the_body_is_ignored,
);

async fn setup(backend: Backend) -> Option<(TestApp, ProjectFixture)> {
    let app = TestApp::new(backend).await?;
    let project = app.create_project_with_token().await;
    Some((app, project))
}

/// A valid body with one field replaced.
fn body_with(field: &str, value: Value) -> Value {
    let mut body = run_body(&uuid::Uuid::new_v4().to_string());
    body[field] = value;
    body
}

/// A `400` whose only detail is `field` with `message`.
fn assert_field_rejected(response: &TestResponse, field: &str, message: &str) {
    response.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(
        response.body["error"]["details"],
        json!([{ "field": field, "message": message }]),
        "{}",
        response.text
    );
}

const DURATION_MESSAGE: &str = "must be an integer from 0 to 9007199254740991";
const TIMESTAMP_MESSAGE: &str =
    "must be an RFC 3339 date-time with an offset, e.g. 2026-01-12T10:10:00Z";

async fn ingesting_a_run_returns_201_with_the_stored_record(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let run_id = "770e8400-e29b-41d4-a716-446655440002";

    let response = app.ingest(&project.token, run_body(run_id)).await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.header("idempotent-replayed").is_none());
    let body = response.body.as_object().expect("an object");
    assert_eq!(
        body.keys().collect::<Vec<_>>(),
        [
            "id",
            "project_id",
            "run_id",
            "status",
            "duration_ms",
            "timestamp",
            "created_at"
        ]
    );
    assert!(is_lowercase_uuid(response.str("id")), "{}", response.text);
    assert_ne!(response.str("id"), run_id);
    assert_eq!(response.str("project_id"), project.project_id);
    assert_eq!(response.str("run_id"), run_id);
    assert_eq!(response.str("status"), "passed");
    assert_eq!(response.body["duration_ms"], 1234);
    assert_eq!(response.str("timestamp"), "2026-01-12T10:10:00Z");
    assert!(
        is_utc_millis(response.str("created_at")),
        "{}",
        response.text
    );
    let stored = app
        .text_rows(
            "SELECT CAST(id AS TEXT), CAST(project_id AS TEXT), CAST(run_id AS TEXT), status, \
             CAST(duration_ms AS TEXT), timestamp FROM test_runs",
        )
        .await;
    let expected = [
        response.str("id"),
        &project.project_id,
        run_id,
        "passed",
        "1234",
        "2026-01-12T10:10:00Z",
    ]
    .map(|v| Some(v.to_owned()));
    assert_eq!(stored, [expected]);
}

async fn run_id_is_accepted_in_any_case_and_stored_lowercase(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let upper = "770E8400-E29B-41D4-A716-44665544000A";
    let mixed = "770e8400-E29B-41d4-a716-44665544000a";

    let first = app.ingest(&project.token, run_body(upper)).await;
    let again = app.ingest(&project.token, run_body(mixed)).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.str("run_id"), upper.to_lowercase());
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body, first.body);
    let stored = app
        .text_rows("SELECT CAST(run_id AS TEXT) FROM test_runs")
        .await;
    assert_eq!(stored, [[Some(upper.to_lowercase())]]);
}

async fn duration_ms_accepts_0_and_2_pow_53_minus_1(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };

    for duration in [0_u64, 1, (1 << 53) - 1] {
        let response = app
            .ingest(&project.token, body_with("duration_ms", json!(duration)))
            .await;

        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        assert_eq!(response.body["duration_ms"], duration);
    }
    let stored = app
        .text_rows("SELECT CAST(duration_ms AS TEXT) FROM test_runs ORDER BY duration_ms")
        .await;
    assert_eq!(
        stored,
        [["0"], ["1"], ["9007199254740991"]].map(|r| r.map(|v| Some(v.to_owned())))
    );
}

async fn duration_ms_rejects_fractions_strings_negatives_and_2_pow_53(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let rejected = [
        json!(1.5),
        json!(1.0),
        json!("12"),
        json!(-1),
        json!(1_u64 << 53),
        json!(u64::MAX),
        json!(true),
        json!([12]),
    ];

    for duration in rejected {
        let response = app
            .ingest(&project.token, body_with("duration_ms", duration.clone()))
            .await;

        assert_field_rejected(&response, "duration_ms", DURATION_MESSAGE);
    }
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn timestamps_with_z_or_an_offset_are_accepted_and_echoed_as_sent(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let accepted = [
        "2026-01-12T10:10:00Z",
        "2026-01-12T12:10:00.123+02:00",
        "2026-01-12T05:10:00-05:00",
        "2026-01-12T10:10:00.123456789Z",
        "2024-02-29T23:59:59+00:00",
        "2026-01-12t10:10:00z",
    ];

    for timestamp in accepted {
        let response = app
            .ingest(&project.token, body_with("timestamp", json!(timestamp)))
            .await;

        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{timestamp}: {}",
            response.text
        );
        assert_eq!(response.str("timestamp"), timestamp);
    }
    assert_eq!(app.count_rows("test_runs").await, 6);
}

async fn timestamps_are_stored_as_the_instant_they_name(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };

    let response = app
        .ingest(
            &project.token,
            body_with("timestamp", json!("2026-01-12T12:10:00.123+02:00")),
        )
        .await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let stored = app
        .text_rows("SELECT timestamp, CAST(timestamp_us AS TEXT) FROM test_runs")
        .await;
    // 2026-01-12T10:10:00.123Z, in microseconds since the Unix epoch.
    let expected = [
        Some("2026-01-12T12:10:00.123+02:00".to_owned()),
        Some("1768212600123000".to_owned()),
    ];
    assert_eq!(stored, [expected]);
}

async fn timestamps_without_an_offset_or_impossible_are_rejected(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let rejected = [
        json!("2026-01-12"),
        json!("2026-01-12T10:10:00"),
        json!("2026-01-12T10:10:00.123"),
        json!("2026-13-45T99:00:00Z"),
        json!("2026-02-30T10:00:00Z"),
        json!("2025-02-29T10:00:00Z"),
        json!("2026-01-12T24:00:00Z"),
        json!("2026-01-12T10:10:00+2:00"),
        json!("2026-01-12 10:10:00Z"),
        json!("2026-01-12x10:10:00Z"),
        json!("2026-01-12T10:10:00Z junk"),
        json!("1768212600"),
        json!("yesterday"),
        json!(""),
        json!(1_768_212_600),
        json!({"at": "2026-01-12T10:10:00Z"}),
        json!(format!("2026-01-12T10:10:00.{}Z", "1".repeat(60))),
    ];

    for timestamp in rejected {
        let response = app
            .ingest(&project.token, body_with("timestamp", timestamp.clone()))
            .await;

        assert_field_rejected(&response, "timestamp", TIMESTAMP_MESSAGE);
    }
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn status_must_be_passed_or_failed_exactly(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };

    let failed = app
        .ingest(&project.token, body_with("status", json!("failed")))
        .await;
    assert_eq!(failed.status, StatusCode::CREATED, "{}", failed.text);
    assert_eq!(failed.str("status"), "failed");
    for status in [
        json!("PASSED"),
        json!("Failed"),
        json!(" passed"),
        json!("skipped"),
        json!(""),
        json!(true),
        json!(["passed"]),
    ] {
        let response = app
            .ingest(&project.token, body_with("status", status.clone()))
            .await;

        assert_field_rejected(&response, "status", "must be \"passed\" or \"failed\"");
    }
    assert_eq!(app.count_rows("test_runs").await, 1);
}

async fn run_id_must_be_a_hyphenated_uuid(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let cases = [
        (json!("770e8400e29b41d4a716446655440002"), "must be a UUID"),
        (
            json!("urn:uuid:770e8400-e29b-41d4-a716-446655440002"),
            "must be a UUID",
        ),
        (
            json!("770e8400-e29b-41d4-a716-4466554400"),
            "must be a UUID",
        ),
        (json!("run-42"), "must be a UUID"),
        (json!(""), "must be a UUID"),
        (json!(42), "must be a UUID string"),
    ];

    for (run_id, message) in cases {
        let response = app
            .ingest(&project.token, body_with("run_id", run_id))
            .await;

        assert_field_rejected(&response, "run_id", message);
    }
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn a_body_missing_or_nulling_every_field_lists_all_four(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let all_null = json!({"run_id": null, "status": null, "duration_ms": null, "timestamp": null});

    let empty = app.ingest(&project.token, json!({})).await;
    let nulls = app.ingest(&project.token, all_null).await;

    // A JSON null is no value at all: the field counts as missing.
    let required = |field| json!({ "field": field, "message": "is required" });
    for response in [empty, nulls] {
        response.assert_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Validation failed",
        );
        assert_eq!(
            response.body["error"]["details"],
            json!([
                required("run_id"),
                required("status"),
                required("duration_ms"),
                required("timestamp"),
            ])
        );
    }
    assert_eq!(app.count_rows("test_runs").await, 0);
}

async fn a_repeated_run_id_is_200_with_the_first_record_even_when_the_body_differs(
    backend: Backend,
) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    let first = app.ingest(&project.token, run_body(&run_id)).await;
    let different = json!({
        "run_id": run_id,
        "status": "failed",
        "duration_ms": 99,
        "timestamp": "2027-06-01T00:00:00+05:30",
    });

    let same = app.ingest(&project.token, run_body(&run_id)).await;
    let changed = app.ingest(&project.token, different).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    for replay in [&same, &changed] {
        assert_eq!(replay.status, StatusCode::OK, "{}", replay.text);
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        assert_eq!(replay.header("content-type"), Some("application/json"));
        assert_eq!(replay.body, first.body);
    }
    let stored = app
        .text_rows("SELECT status, CAST(duration_ms AS TEXT), timestamp FROM test_runs")
        .await;
    assert_eq!(
        stored,
        [["passed", "1234", "2026-01-12T10:10:00Z"].map(|v| Some(v.to_owned()))]
    );
}

async fn a_replay_after_a_rejected_attempt_still_returns_the_first_stored_record(backend: Backend) {
    let Some((app, project)) = setup(backend).await else {
        return;
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    let first = app.ingest(&project.token, run_body(&run_id)).await;

    let mut invalid = run_body(&run_id);
    invalid["status"] = json!("flaky");
    let rejected = app.ingest(&project.token, invalid).await;
    let replay = app.ingest(&project.token, run_body(&run_id)).await;

    assert_field_rejected(&rejected, "status", "must be \"passed\" or \"failed\"");
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.text);
    assert_eq!(replay.body, first.body);
    assert_eq!(app.count_rows("test_runs").await, 1);
}

async fn a_project_id_in_the_body_is_ignored(backend: Backend) {
    let Some((app, mine)) = setup(backend).await else {
        return;
    };
    let theirs = app.create_project_with_token().await;
    let run_id = uuid::Uuid::new_v4().to_string();
    let mut body = run_body(&run_id);
    body["project_id"] = json!(theirs.project_id);
    body["id"] = json!(uuid::Uuid::new_v4().to_string());

    let response = app.ingest(&mine.token, body).await;

    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.str("project_id"), mine.project_id);
    let stored = app
        .text_rows("SELECT CAST(project_id AS TEXT) FROM test_runs")
        .await;
    assert_eq!(stored, [[Some(mine.project_id.clone())]]);
}
