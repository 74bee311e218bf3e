//! Extractors whose rejections speak the error envelope.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::AppError;

/// A JSON object body. A missing content type (`415`), an oversized body
/// (`413`), malformed JSON or anything but an object (`400`) is answered with
/// [`AppError`] instead of axum's plain-text rejections.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(request, state).await?;

        // serde would happily read a struct from a JSON array; the API takes objects only.
        if !value.is_object() {
            return Err(AppError::BadRequest(
                "Request body must be a JSON object".to_owned(),
            ));
        }
        serde_json::from_value(value).map(AppJson).map_err(|error| {
            AppError::BadRequest(format!("Request body has the wrong shape: {error}"))
        })
    }
}
