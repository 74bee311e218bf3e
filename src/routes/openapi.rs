//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the
//! `#[utoipa::path]` attribute of each handler and the `ToSchema` types.
//!
//! The document and the router come from the same [`OpenApiRouter`]: a route
//! registered with `.routes(routes!(handler))` is served and documented at
//! once, so the two cannot drift apart.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as OpenApiDocument, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Envelope;
use crate::state::AppState;

/// Security scheme of the routes that take a project token.
pub const PROJECT_TOKEN: &str = "project_token";
/// Security scheme of the admin routes.
pub const ADMIN_TOKEN: &str = "admin_token";

/// What the document holds besides the paths: title, security schemes, the
/// error envelope, and the error responses every route can give.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "test-analytics",
        description = "CI pipelines post test runs with a project token; admins manage \
            organizations, projects and tokens. Every error is answered in the \
            ErrorEnvelope schema."
    ),
    components(schemas(Envelope)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "admin", description = "Organizations, projects and tokens. They require \
            the admin_token scheme when the server sets ADMIN_TOKEN, and are open otherwise."),
        (name = "ingest", description = "What CI pipelines call, with a project token."),
        (name = "runs", description = "Reading a project's runs back, with a project token."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            PROJECT_TOKEN,
            bearer("A project token (ta_live_...), as returned once by POST /tokens."),
        );
        components.add_security_scheme(
            ADMIN_TOKEN,
            bearer("The operator's ADMIN_TOKEN; required only when the server sets it."),
        );
    }
}

/// Adds the error responses that any route can give (`408` when a request
/// takes too long, `500` for a fault of the server) to every operation. It
/// runs on the finished document, once the routes have added their paths.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let common = [
            ("408", "The request took too long to arrive or to answer"),
            ("500", "A fault of the server; the body says nothing more"),
        ];
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let envelope = Ref::from_schema_name("ErrorEnvelope");
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(envelope)))
        .into()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(render_openapi))
}

/// The OpenAPI document of every route the service serves, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_router, mut document) = super::api_router().split_for_parts();
        CommonErrors.modify(&mut document);
        document
            .to_json()
            .expect("an OpenAPI document always serializes")
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
async fn render_openapi() -> Response {
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    (content_type, document()).into_response()
}
