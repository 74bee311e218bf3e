//! Extractors whose rejections speak the error envelope.

use std::fmt;

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{AppError, FieldError};

/// A JSON object body. A missing content type (`415`), an oversized body
/// (`413`), malformed JSON, anything but an object, or an object that names a
/// key twice (`400`) is answered with [`AppError`] instead of axum's
/// plain-text rejections.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let axum::Json(body) = axum::Json::<Body>::from_request(request, state).await?;

        // serde would happily read a struct from a JSON array; the API takes objects only.
        let Body::Object { fields, repeated } = body else {
            return Err(AppError::BadRequest(
                "Request body must be a JSON object".to_owned(),
            ));
        };
        // Parsers disagree on which of two equal keys wins; refusing both
        // leaves no doubt about what was stored.
        if !repeated.is_empty() {
            let details = repeated
                .iter()
                .map(|key| FieldError::new(key, "must appear only once"))
                .collect();
            return Err(AppError::Validation(details));
        }
        serde_json::from_value(Value::Object(fields))
            .map(AppJson)
            .map_err(|error| {
                AppError::BadRequest(format!("Request body has the wrong shape: {error}"))
            })
    }
}

/// A parsed request body: an object with the keys it repeated, or anything else.
enum Body {
    Object {
        fields: Map<String, Value>,
        repeated: Vec<String>,
    },
    NotAnObject,
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut fields = Map::new();
        let mut repeated = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if !fields.contains_key(&key) {
                fields.insert(key, value);
            } else if !repeated.contains(&key) {
                repeated.push(key);
            }
        }
        Ok(Body::Object { fields, repeated })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Body::NotAnObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Body, E> {
        Ok(Body::NotAnObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Body, E> {
        Ok(Body::NotAnObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Body, E> {
        Ok(Body::NotAnObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Body, E> {
        Ok(Body::NotAnObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Body, E> {
        Ok(Body::NotAnObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Body, E> {
        Ok(Body::NotAnObject)
    }
}

/// The query string as `(name, value)` pairs in order, percent-decoded.
/// Handlers check each value themselves, so that a bad one is a `400` in the
/// envelope naming the parameter, not axum's plain-text rejection.
#[derive(Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S> FromRequestParts<S> for QueryPairs
where
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::BadRequest("Query string could not be read".to_owned()))?;
        Ok(Self(pairs))
    }
}
