//! Token lifecycle: listing a project's tokens, revoking one, and
//! `last_used_at` kept to the minute without a write per ingest.

use axum::http::StatusCode;
use serde_json::Value;
use test_analytics::timestamp;

use crate::backend_tests;
use crate::helpers::{Backend, run_body};

backend_tests!(
    listing_shows_each_token_by_id_and_12_character_prefix_only,
    listing_the_tokens_of_an_unknown_project_is_404_and_of_a_bad_id_400,
    a_revoked_token_is_refused_on_the_very_next_ingest,
    revoking_again_is_204_and_keeps_the_first_revoked_at,
    revoking_an_unknown_token_is_404_and_a_bad_id_400,
    an_ingest_sets_last_used_at_to_the_current_minute,
    repeated_ingests_within_a_minute_write_last_used_at_once,
);

fn new_run() -> Value {
    run_body(&uuid::Uuid::new_v4().to_string())
}

async fn listing_shows_each_token_by_id_and_12_character_prefix_only(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let second = app.create_token(&project.project_id).await;
    let other = app.create_project_with_token().await;

    let response = app.list_tokens(&project.project_id).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let data = response.body["data"].as_array().expect("a data array");
    assert_eq!(data.len(), 2, "{}", response.text);
    let ids: Vec<&str> = data.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [project.token_id.as_str(), second.str("id")]);
    let first = data[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "id", "last_used_at", "prefix", "revoked_at"]
    );
    assert_eq!(first["prefix"], &project.token[..12]);
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(first["last_used_at"], Value::Null);
    assert_eq!(first["revoked_at"], Value::Null);
    for token in [
        &project.token,
        &other.token,
        &second.str("token").to_owned(),
    ] {
        assert!(
            !response.text.contains(&token[..13]),
            "more than the prefix is shown"
        );
    }
    assert!(!response.text.contains(&other.token_id));
}

async fn listing_the_tokens_of_an_unknown_project_is_404_and_of_a_bad_id_400(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let unknown = app.list_tokens(&uuid::Uuid::new_v4().to_string()).await;
    let bad = app.list_tokens("not-a-uuid").await;

    unknown.assert_error(StatusCode::NOT_FOUND, "not_found", "Project not found");
    bad.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(bad.detail_fields(), ["project_id"]);
}

async fn a_revoked_token_is_refused_on_the_very_next_ingest(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let spare = app.create_token(&project.project_id).await;
    assert_eq!(
        app.ingest(&project.token, new_run()).await.status,
        StatusCode::CREATED
    );

    let revoked = app.revoke_token(&project.token_id).await;
    let refused = app.ingest(&project.token, new_run()).await;

    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    assert!(revoked.text.is_empty());
    refused.assert_error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid token");
    assert_eq!(
        app.ingest(spare.str("token"), new_run()).await.status,
        StatusCode::CREATED
    );
    let listed = app.list_tokens(&project.project_id).await;
    let revoked_at = listed.body["data"][0]["revoked_at"]
        .as_str()
        .expect("a revoked_at");
    assert!(
        timestamp::parse_rfc3339(revoked_at).is_some(),
        "{revoked_at}"
    );
    assert_eq!(listed.body["data"][1]["revoked_at"], Value::Null);
}

async fn revoking_again_is_204_and_keeps_the_first_revoked_at(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    assert_eq!(
        app.revoke_token(&project.token_id).await.status,
        StatusCode::NO_CONTENT
    );
    let first = app.list_tokens(&project.project_id).await.body["data"][0]["revoked_at"].clone();

    let again = app.revoke_token(&project.token_id).await;

    assert_eq!(again.status, StatusCode::NO_CONTENT, "{}", again.text);
    let listed = app.list_tokens(&project.project_id).await;
    assert!(first.is_string());
    assert_eq!(listed.body["data"][0]["revoked_at"], first);
}

async fn revoking_an_unknown_token_is_404_and_a_bad_id_400(backend: Backend) {
    let app = crate::app_or_skip!(backend);

    let unknown = app.revoke_token(&uuid::Uuid::new_v4().to_string()).await;
    let bad = app.revoke_token("12345").await;

    unknown.assert_error(StatusCode::NOT_FOUND, "not_found", "Token not found");
    bad.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Validation failed",
    );
    assert_eq!(bad.detail_fields(), ["token_id"]);
}

async fn an_ingest_sets_last_used_at_to_the_current_minute(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let project = app.create_project_with_token().await;
    let earliest = timestamp::start_of_minute(timestamp::now());

    assert_eq!(
        app.ingest(&project.token, new_run()).await.status,
        StatusCode::CREATED
    );

    let latest = timestamp::start_of_minute(timestamp::now());
    let listed = app.list_tokens(&project.project_id).await;
    let last_used = listed.body["data"][0]["last_used_at"]
        .as_str()
        .expect("a last_used_at");
    let last_used = timestamp::parse_rfc3339(last_used).expect("RFC 3339");
    assert!(earliest <= last_used && last_used <= latest, "{last_used}");
    assert_eq!(last_used, timestamp::start_of_minute(last_used));
}

async fn repeated_ingests_within_a_minute_write_last_used_at_once(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let sentinel = "2000-01-01T00:00:00.000Z";

    // A minute may turn mid-test, and then a second write is right; try again.
    for _attempt in 0..3 {
        let project = app.create_project_with_token().await;
        let minute = timestamp::start_of_minute(timestamp::now());
        assert_eq!(
            app.ingest(&project.token, new_run()).await.status,
            StatusCode::CREATED
        );
        let written =
            app.list_tokens(&project.project_id).await.body["data"][0]["last_used_at"].clone();
        assert!(written.is_string(), "the first ingest wrote nothing");

        // Any later write would overwrite this older value.
        app.execute(&format!(
            "UPDATE api_tokens SET last_used_at = '{sentinel}' WHERE id = '{}'",
            project.token_id
        ))
        .await;
        for _ in 0..5 {
            assert_eq!(
                app.ingest(&project.token, new_run()).await.status,
                StatusCode::CREATED
            );
        }
        if timestamp::start_of_minute(timestamp::now()) != minute {
            continue;
        }

        let listed = app.list_tokens(&project.project_id).await;
        assert_eq!(
            listed.body["data"][0]["last_used_at"], sentinel,
            "{}",
            listed.text
        );
        return;
    }
    panic!("three attempts in a row straddled a minute boundary");
}
