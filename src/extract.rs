//! Extractors whose rejections speak the error envelope.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{AppError, FieldError};

/// A JSON object body. A missing content type (`415`), an oversized body
/// (`413`), malformed JSON, anything but an object, or an object that names a
/// key twice (`400`) is answered with [`AppError`] instead of axum's
/// plain-text rejections.
///
/// The body is read twice, and neither time into a tree of values: once to
/// check its shape (an object, each key once), then straight into `T`.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        if !is_json(request.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let body = Bytes::from_request(request, state).await?;

        // serde would happily read a struct from a JSON array; the API takes objects only.
        let Shape::Object { repeated } = serde_json::from_slice(&body)
            .map_err(|_| AppError::BadRequest("Request body is not valid JSON".to_owned()))?
        else {
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
        serde_json::from_slice(&body).map(AppJson).map_err(|error| {
            AppError::BadRequest(format!("Request body has the wrong shape: {error}"))
        })
    }
}

/// `Content-Type: application/json`, or any `application/*+json`, with or
/// without parameters such as a charset.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(Ok(content_type)) = headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

/// The outline of a JSON body: an object with the keys it repeated, or
/// anything else. Nothing is built: nested values are read as outlines too,
/// which unlike serde's `IgnoredAny` (skipped by serde_json without a look
/// inside strings) checks every string is UTF-8.
enum Shape {
    Object { repeated: Vec<String> },
    NotAnObject,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        // Each key seen, and whether it was found repeated: a map, so that a
        // body of many keys, or many repeats, never costs their square.
        let mut seen: HashMap<Key<'de>, bool> = HashMap::new();
        let mut repeated = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            map.next_value::<Shape>()?;
            match seen.get_mut(&key) {
                Some(reported @ false) => {
                    *reported = true;
                    repeated.push(key.0.into_owned());
                }
                Some(true) => {}
                None => {
                    seen.insert(key, false);
                }
            }
        }
        Ok(Shape::Object { repeated })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<Shape>()?.is_some() {}
        Ok(Shape::NotAnObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::NotAnObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::NotAnObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::NotAnObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::NotAnObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::NotAnObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::NotAnObject)
    }
}

/// An object key, borrowed from the body unless it had escapes to undo.
#[derive(PartialEq, Eq, Hash)]
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_content_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters_and_in_any_case() {
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
            " application/json ;charset=UTF-8",
        ] {
            assert!(is_json(&with_content_type(json)), "{json}");
        }
        for other in [
            "text/plain",
            "application/jsonp",
            "text/json",
            "application",
            "multipart/form-data; boundary=json",
        ] {
            assert!(!is_json(&with_content_type(other)), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn the_shape_names_each_repeated_key_once_including_escaped_ones() {
        let shape: Shape =
            serde_json::from_str(r#"{"a": 1, "b": [1, {"a": 2}], "a": 3, "\u0062": 4, "a": 5}"#)
                .unwrap();
        let Shape::Object { repeated } = shape else {
            panic!("an object")
        };
        assert_eq!(repeated, ["a", "b"]);

        let many: Vec<String> = (0..20_000).map(|n| format!("\"k{n}\": {n}")).collect();
        let body = format!(
            "{{{}, {}, {}}}",
            many.join(","),
            many.join(","),
            many.join(",")
        );
        let Shape::Object { repeated } = serde_json::from_str(&body).unwrap() else {
            panic!("an object")
        };
        assert_eq!(repeated.len(), 20_000, "each repeated key is named once");
        assert_eq!(repeated[19_999], "k19999");

        for not_an_object in ["[]", "1", "\"a\"", "null", "true", "-1.5"] {
            let shape: Shape = serde_json::from_str(not_an_object).unwrap();
            assert!(matches!(shape, Shape::NotAnObject), "{not_an_object}");
        }
        assert!(serde_json::from_str::<Shape>(r#"{"a": 1} x"#).is_err());
        assert!(
            serde_json::from_slice::<Shape>(b"{\"a\": [\"\xff\"]}").is_err(),
            "a string that is not UTF-8, however deep, is not JSON"
        );
    }
}
