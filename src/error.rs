//! The one error type of the service and the one envelope every error is
//! rendered in (SPEC section 4):
//!
//! ```json
//! {"error": {"code": "...", "message": "...", "request_id": "req_...", "details": []}}
//! ```
//!
//! Handlers return [`AppError`] through `?`. Server faults are answered with a
//! fixed message; their cause travels in an [`ErrorReport`] response extension
//! to the request middleware, which logs it once, with the request id.

use std::error::Error as StdError;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_id;

/// Shorthand for results whose error is [`AppError`].
pub type AppResult<T> = Result<T, AppError>;

/// Everything that can go wrong in a request, named for what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `400 invalid_request`: one or more fields are invalid; each is listed.
    #[error("validation failed")]
    Validation(Vec<FieldError>),

    /// `400 invalid_request`: the request as a whole is malformed.
    #[error("{0}")]
    BadRequest(String),

    /// `401 unauthorized`, with `WWW-Authenticate: Bearer`.
    #[error("{}", .0.message())]
    Unauthorized(AuthFailure),

    /// `404 not_found`.
    #[error("{0}")]
    NotFound(&'static str),

    /// `409 conflict`.
    #[error("{0}")]
    Conflict(&'static str),

    /// `413 payload_too_large`.
    #[error("Request body is larger than the limit")]
    PayloadTooLarge,

    /// `415 unsupported_media_type`.
    #[error("Request body must be sent with Content-Type: application/json")]
    UnsupportedMediaType,

    /// `503 unavailable`, with `Retry-After`: the database is locked, read-only,
    /// full or unreachable, or the service is shutting down. Safe to retry.
    #[error("service unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),

    /// `500 internal_error`: a fault of the server; the body says nothing more.
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

/// Why a bearer token was refused. The client sees one of three messages; the
/// finer reason is logged at debug by the extractor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header at all.
    MissingHeader,
    /// A header that is not `Bearer <token>`.
    MalformedHeader,
    /// A token that is unknown, revoked or not shaped like one of ours.
    InvalidToken,
}

impl AuthFailure {
    /// The message the client is shown.
    pub fn message(self) -> &'static str {
        match self {
            Self::MissingHeader => "Missing Authorization header",
            Self::MalformedHeader => "Authorization header must be: Bearer <token>",
            Self::InvalidToken => "Invalid token",
        }
    }
}

/// One invalid field of a request body or query string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name as the client sent it.
    pub field: String,
    /// What is wrong with it, for a human.
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// The cause of a 5xx, for the request middleware to log. Never rendered.
#[derive(Clone, Debug)]
pub struct ErrorReport(pub String);

/// Marks a response whose body is already the error envelope.
#[derive(Clone, Copy, Debug)]
pub struct EnvelopeRendered;

/// The body of every error response.
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorEnvelope)]
pub struct Envelope<'a> {
    error: EnvelopeBody<'a>,
}

/// What went wrong, for programs (`code`) and for humans (`message`).
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorBody)]
pub struct EnvelopeBody<'a> {
    /// One of `invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `request_timeout`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `rate_limited`, `unavailable`, `internal_error`.
    #[schema(example = "invalid_request")]
    code: &'static str,
    #[schema(example = "Validation failed")]
    message: &'a str,
    /// The request's id, also sent as `X-Request-Id`.
    #[schema(example = "req_a1B2c3D4e5F6g7H8i9J0")]
    request_id: String,
    /// The invalid fields of a `400`; empty otherwise.
    details: &'a [FieldError],
}

impl AppError {
    /// Wraps any error as an internal fault.
    pub fn internal(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Validation(_) => "Validation failed".to_owned(),
            Self::Unavailable(_) => {
                "The service is temporarily unavailable; retry the request".to_owned()
            }
            Self::Internal(_) => "An internal error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    fn cause_chain(&self) -> Option<String> {
        let source = match self {
            Self::Unavailable(source) | Self::Internal(source) => source,
            _ => return None,
        };
        let mut chain = source.to_string();
        let mut next = source.source();
        while let Some(cause) = next {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            next = cause.source();
        }
        Some(chain)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let details = match &self {
            Self::Validation(details) => details.as_slice(),
            _ => &[],
        };
        let mut response = render_envelope(status, &self.message(), details);

        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if let Some(chain) = self.cause_chain() {
            response.extensions_mut().insert(ErrorReport(chain));
        }
        response
    }
}

/// Renders the envelope for `status` with the current request's id.
pub fn render_envelope(status: StatusCode, message: &str, details: &[FieldError]) -> Response {
    let body = Envelope {
        error: EnvelopeBody {
            code: code_for(status),
            message,
            request_id: request_id::current().unwrap_or_default(),
            details,
        },
    };
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(EnvelopeRendered);
    response
}

/// The envelope's `code` for a status.
pub fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => "unavailable",
        status if status.is_server_error() => "internal_error",
        _ => "invalid_request",
    }
}

/// The message for an error response the framework produced without a body.
pub fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "No route matches this path",
        StatusCode::METHOD_NOT_ALLOWED => "This route does not accept that method",
        StatusCode::REQUEST_TIMEOUT => "The request took too long to arrive or to answer",
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is larger than the limit",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "Request body must be sent with Content-Type: application/json"
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            "The service is temporarily unavailable; retry the request"
        }
        status if status.is_server_error() => "An internal error occurred",
        _ => "The request is invalid",
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            _ => Self::BadRequest("Request body could not be read".to_owned()),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        if is_transient(&error) {
            Self::Unavailable(error.into())
        } else {
            Self::internal(error)
        }
    }
}

/// Whether a database error is a condition that clears by itself (a lock, a
/// full or read-only disk, a lost connection) rather than a bug.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // Most SQLSTATEs are all digits too, so the backend decides how to read the code.
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse().is_ok_and(is_transient_sqlite_code)
            } else {
                is_transient_sqlstate(&code)
            }
        }
        _ => false,
    }
}

/// SQLite primary result codes (the low byte of extended codes) that clear by
/// themselves: BUSY 5, LOCKED 6, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
fn is_transient_sqlite_code(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

/// PostgreSQL SQLSTATEs that clear by themselves: classes 08 (connection),
/// 53 (insufficient resources), 55 (object not in prerequisite state, such as
/// "database is not currently accepting connections" while a connection is
/// opened, or lock_not_available), 57 (operator intervention: shutdown,
/// cancel), and 40001/40P01 (serialization failure, deadlock).
fn is_transient_sqlstate(code: &str) -> bool {
    ["08", "53", "55", "57"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "40001"
        || code == "40P01"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_locks_and_disk_faults_are_transient_and_constraints_are_not() {
        for code in [5, 6, 8, 10, 13, 14, 517, 778, 1546] {
            assert!(is_transient_sqlite_code(code), "{code}");
        }
        for code in [1, 19, 1555, 2067, 787] {
            assert!(!is_transient_sqlite_code(code), "{code}");
        }
    }

    #[test]
    fn all_digit_sqlstates_are_read_as_sqlstates() {
        for code in [
            "08006", "53300", "55000", "55P03", "57014", "57P01", "40001", "40P01",
        ] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "23503", "22P02", "42P01", "10"] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }
}
