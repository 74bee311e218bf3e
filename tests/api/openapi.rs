//! `GET /openapi.json`: a valid OpenAPI 3.1 document that lists exactly the
//! routes the router serves, with their bodies, errors and security.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    the_document_is_openapi_3_1_with_the_error_envelope_and_both_bearer_schemes,
    every_served_route_is_documented_and_every_documented_route_is_served,
    every_operation_documents_its_errors_in_the_envelope_and_its_security,
);

/// Every route the service serves. A route added to the router must be added
/// here too; the test then checks that the document has it.
const SERVED: [(&str, &str); 13] = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/orgs"),
    ("POST", "/projects"),
    ("POST", "/tokens"),
    ("GET", "/projects/{project_id}/tokens"),
    ("DELETE", "/tokens/{token_id}"),
    ("POST", "/ingest"),
    ("GET", "/runs"),
    ("GET", "/runs/{run_id}"),
    ("GET", "/stats"),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

const PROJECT_ROUTES: [&str; 4] = [
    "POST /ingest",
    "GET /runs",
    "GET /runs/{run_id}",
    "GET /stats",
];

const ADMIN_ROUTES: [&str; 5] = [
    "POST /orgs",
    "POST /projects",
    "POST /tokens",
    "GET /projects/{project_id}/tokens",
    "DELETE /tokens/{token_id}",
];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.body
}

/// Every `(METHOD, path)` the document describes.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item");
            METHODS
                .iter()
                .filter(|method| item.contains_key(&method.to_lowercase()))
                .map(|method| ((*method).to_owned(), path.clone()))
        })
        .collect()
}

/// `path` with each `{parameter}` replaced by a fresh UUID.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the router answered from a route rather than the fallback.
fn routed(status: StatusCode, body: &Value) -> bool {
    let fallback =
        status == StatusCode::NOT_FOUND && body["error"]["message"] == "No route matches this path";
    !fallback && status != StatusCode::METHOD_NOT_ALLOWED
}

async fn the_document_is_openapi_3_1_with_the_error_envelope_and_both_bearer_schemes(
    backend: Backend,
) {
    let app = crate::app_or_skip!(backend);

    let document = document(&app).await;

    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(document["info"]["title"], "test-analytics");
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["ErrorEnvelope"]["required"],
        serde_json::json!(["error"])
    );
    let body = &schemas["ErrorBody"]["properties"];
    for field in ["code", "message", "request_id", "details"] {
        assert!(body.get(field).is_some(), "ErrorBody has no {field}");
    }
    for scheme in ["project_token", "admin_token"] {
        let scheme = &document["components"]["securitySchemes"][scheme];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
    }
}

async fn every_served_route_is_documented_and_every_documented_route_is_served(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let document = document(&app).await;
    let documented = documented(&document);
    let served: BTreeSet<(String, String)> = SERVED
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();

    assert_eq!(documented, served);
    for (method, path) in &documented {
        let uri = concrete(path);
        let method = Method::from_bytes(method.as_bytes()).unwrap();

        let response = app.request(method.clone(), &uri, &[], None).await;

        assert!(
            routed(response.status, &response.body),
            "{method} {uri}: {}",
            response.text
        );
    }
    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    for path in paths {
        for method in METHODS {
            if documented.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();

            let response = app
                .request(method.clone(), &concrete(path), &[], None)
                .await;

            assert_eq!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is served but not documented"
            );
        }
    }
}

async fn every_operation_documents_its_errors_in_the_envelope_and_its_security(backend: Backend) {
    let app = crate::app_or_skip!(backend);
    let document = document(&app).await;
    let envelope = "#/components/schemas/ErrorEnvelope";

    for (method, path) in documented(&document) {
        let operation = &document["paths"][&path][method.to_lowercase()];
        let name = format!("{method} {path}");
        let responses = operation["responses"].as_object().expect("responses");

        for (status, response) in responses {
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(schema, envelope, "{name} {status}");
            }
        }
        for status in ["408", "500"] {
            assert!(responses.contains_key(status), "{name} lacks {status}");
        }
        if operation.get("requestBody").is_some() {
            for status in ["400", "413", "415"] {
                assert!(responses.contains_key(status), "{name} lacks {status}");
            }
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            assert!(schema["$ref"].is_string(), "{name} body has no schema");
        }
        let success = responses.keys().find(|status| status.starts_with('2'));
        assert!(success.is_some(), "{name} documents no success");

        let security = operation["security"].to_string();
        if ADMIN_ROUTES.contains(&name.as_str()) {
            assert!(security.contains("admin_token"), "{name}: {security}");
            assert!(responses.contains_key("401"), "{name} lacks 401");
        } else if PROJECT_ROUTES.contains(&name.as_str()) {
            assert!(security.contains("project_token"), "{name}: {security}");
            assert!(!security.contains("admin_token"), "{name}: {security}");
            assert!(responses.contains_key("401"), "{name} lacks 401");
        } else {
            assert_eq!(operation.get("security"), None, "{name} should be open");
        }
    }
}
