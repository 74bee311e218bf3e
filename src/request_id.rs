//! Request ids (SPEC section 5): a well-formed incoming `X-Request-Id` is kept,
//! anything else is replaced by `req_` and 20 random alphanumerics.

use axum::http::HeaderMap;
use rand::RngExt;
use rand::distr::Alphanumeric;

/// The header that carries the id in both directions.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id for a request: the client's, if well-formed, or a new one.
pub fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_well_formed(id))
        .map_or_else(generate, str::to_owned)
}

/// At most 64 characters of `[A-Za-z0-9_.-]`, and at least one.
pub fn is_well_formed(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A fresh id, `req_` followed by 20 random alphanumerics.
pub fn generate() -> String {
    let mut id = String::with_capacity(24);
    id.push_str("req_");
    id.extend(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(20)
            .map(char::from),
    );
    id
}

/// Runs `future` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();

        assert!(a.starts_with("req_") && a.len() == 24, "{a}");
        assert!(is_well_formed(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn only_short_safe_ids_are_kept() {
        assert!(is_well_formed("build-42_retry.1"));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"a".repeat(65)));
        assert!(!is_well_formed("has space"));
        assert!(!is_well_formed("line\nbreak"));
    }
}
