//! Field rules shared by the request bodies.
//!
//! Request bodies are deserialized with every field as an optional JSON value,
//! so that a wrong type is reported per field, beside every other bad field,
//! instead of stopping at the first one as serde would.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;
use validator::ValidateLength;

use crate::error::{AppError, FieldError};
use crate::models::RunStatus;
use crate::timestamp;

/// The longest organization or project name, in characters.
pub const MAX_NAME_CHARS: u64 = 200;

/// The largest accepted `duration_ms`: 2^53 - 1, the largest integer every
/// JSON parser holds exactly.
pub const MAX_DURATION_MS: u64 = (1 << 53) - 1;

/// The longest accepted timestamp text.
const MAX_TIMESTAMP_CHARS: usize = 64;

/// The outcome of one rule: the parsed value, or what is wrong.
pub type Rule<T> = Result<T, String>;

/// Collects the failures of several fields into one `400`.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records `field` as invalid if `rule` failed.
    pub fn check<T>(mut self, field: &str, rule: &Rule<T>) -> Self {
        if let Err(message) = rule {
            self.0.push(FieldError::new(field, message.clone()));
        }
        self
    }
}

impl From<FieldErrors> for AppError {
    fn from(errors: FieldErrors) -> Self {
        AppError::Validation(errors.0)
    }
}

/// The value of a single-field rule, or a `400` naming the field.
pub fn field<T>(name: &str, rule: Rule<T>) -> Result<T, AppError> {
    rule.map_err(|message| AppError::Validation(vec![FieldError::new(name, message)]))
}

fn required(value: Option<Value>) -> Rule<Value> {
    value.ok_or_else(|| "is required".to_owned())
}

/// A name: a string, trimmed, 1-200 characters, no control characters.
pub fn name(value: Option<Value>) -> Rule<String> {
    let Value::String(text) = required(value)? else {
        return Err("must be a string".to_owned());
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if !trimmed.validate_length(None, Some(MAX_NAME_CHARS), None) {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(trimmed.to_owned())
}

/// A UUID in its hyphenated form, any version, any case.
pub fn uuid(value: Option<Value>) -> Rule<Uuid> {
    let Value::String(text) = required(value)? else {
        return Err("must be a UUID string".to_owned());
    };
    parse_uuid(&text).ok_or_else(|| "must be a UUID".to_owned())
}

/// A UUID given as a path segment.
pub fn path_uuid(text: &str) -> Rule<Uuid> {
    parse_uuid(text).ok_or_else(|| "must be a UUID".to_owned())
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, and nothing looser.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

/// `"passed"` or `"failed"`, exactly.
pub fn status(value: Option<Value>) -> Rule<RunStatus> {
    let invalid = || "must be \"passed\" or \"failed\"".to_owned();
    match required(value)? {
        Value::String(text) => RunStatus::parse(&text).ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// A JSON integer from 0 to 2^53 - 1; no fractions, no strings.
pub fn duration_ms(value: Option<Value>) -> Rule<i64> {
    let invalid = || format!("must be an integer from 0 to {MAX_DURATION_MS}");
    match required(value)? {
        Value::Number(number) => number
            .as_u64()
            .filter(|ms| *ms <= MAX_DURATION_MS)
            .and_then(|ms| i64::try_from(ms).ok())
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// An RFC 3339 date-time with `Z` or an offset; kept as sent, and parsed.
pub fn timestamp(value: Option<Value>) -> Rule<(String, OffsetDateTime)> {
    let invalid =
        || "must be an RFC 3339 date-time with an offset, e.g. 2026-01-12T10:10:00Z".to_owned();
    let Value::String(text) = required(value)? else {
        return Err(invalid());
    };
    if text.len() > MAX_TIMESTAMP_CHARS {
        return Err(invalid());
    }
    match timestamp::parse_rfc3339(&text) {
        Some(at) => Ok((text, at)),
        None => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name(Some(json!("  Acme  "))), Ok("Acme".to_owned()));
        assert!(name(Some(json!("é".repeat(200)))).is_ok());
        assert!(name(Some(json!("é".repeat(201)))).is_err());
        assert!(name(Some(json!("   "))).is_err());
        assert!(name(Some(json!(42))).is_err());
        assert!(name(Some(json!("nul\u{0}byte"))).is_err());
        assert!(name(None).is_err());
    }

    #[test]
    fn durations_are_non_negative_json_integers() {
        assert_eq!(duration_ms(Some(json!(0))), Ok(0));
        assert_eq!(
            duration_ms(Some(json!(9_007_199_254_740_991_u64))),
            Ok(9_007_199_254_740_991)
        );
        for bad in [
            json!(9_007_199_254_740_992_u64),
            json!(-1),
            json!(1.5),
            json!("12"),
            json!(null),
        ] {
            assert!(duration_ms(Some(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn uuids_must_be_hyphenated() {
        let upper = "550E8400-E29B-41D4-A716-446655440000";

        assert_eq!(
            uuid(Some(json!(upper))).unwrap().to_string(),
            upper.to_lowercase()
        );
        assert!(uuid(Some(json!("550e8400e29b41d4a716446655440000"))).is_err());
        assert!(uuid(Some(json!("not-a-uuid"))).is_err());
    }
}
