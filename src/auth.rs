//! Bearer-token authentication: project tokens for the ingest routes, the
//! operator's `ADMIN_TOKEN` for the admin routes. Neither is accepted in the
//! other's place.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::{AppError, AuthFailure};
use crate::services::tokens;
use crate::state::AppState;
use crate::token::{self, TokenHash};

/// The project a request acts for, resolved from its bearer token alone:
/// nothing in the request body or path can name another project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectScope {
    pub project_id: Uuid,
    pub token_id: Uuid,
}

impl FromRequestParts<AppState> for ProjectScope {
    type Rejection = AppError;

    /// Parses `Authorization: Bearer <token>`, hashes the token, looks the
    /// hash up among unrevoked tokens (in the [`TokenCache`] first), and
    /// yields the token's project. Every failure is a `401`; the reason is
    /// logged at debug.
    ///
    /// [`TokenCache`]: crate::token_cache::TokenCache
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let presented = bearer_token(parts).inspect_err(|failure| {
            tracing::debug!(reason = ?failure, "authorization header rejected");
        })?;
        if !token::is_well_formed(presented) {
            tracing::debug!(reason = "malformed token", "token rejected");
            return Err(AppError::Unauthorized(AuthFailure::InvalidToken));
        }

        let hash = TokenHash::of(presented);
        let found = match state.token_cache.get(&hash) {
            Ok(cached) => cached,
            Err(generation) => {
                let Some(found) = tokens::find_active_token(&state.db, &hash).await? else {
                    tracing::debug!(reason = "unknown or revoked token", "token rejected");
                    return Err(AppError::Unauthorized(AuthFailure::InvalidToken));
                };
                state.token_cache.insert(hash, found, generation);
                found
            }
        };

        let mut text = Uuid::encode_buffer();
        let project_id = found.project_id.hyphenated().encode_lower(&mut text);
        tracing::Span::current().record("project_id", &*project_id);
        state.token_usage.touch(&state.db, found.token_id).await;
        Ok(Self {
            project_id: found.project_id,
            token_id: found.token_id,
        })
    }
}

/// Proof that a request may use the admin routes: it carried
/// `Authorization: Bearer <ADMIN_TOKEN>`, or no `ADMIN_TOKEN` is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminAccess;

impl FromRequestParts<AppState> for AdminAccess {
    type Rejection = AppError;

    /// Compares the bearer token with `ADMIN_TOKEN` in constant time; any
    /// mismatch is a `401` with `WWW-Authenticate: Bearer`, logged at warn.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Some(expected) = &state.config.admin_token else {
            return Ok(Self);
        };

        let presented = bearer_token(parts).inspect_err(|failure| {
            tracing::warn!(reason = ?failure, "admin request without a usable bearer token");
        })?;
        if !same_secret(presented, expected.expose()) {
            tracing::warn!("admin request with a wrong token");
            return Err(AppError::Unauthorized(AuthFailure::InvalidToken));
        }
        Ok(Self)
    }
}

/// Whether two secrets are equal, in time that depends on neither: both are
/// hashed first, so not even their lengths leak.
fn same_secret(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    presented.ct_eq(&expected).into()
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// matched case-insensitively, as RFC 7235 asks.
pub fn bearer_token(parts: &Parts) -> Result<&str, AppError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(AppError::Unauthorized(AuthFailure::MissingHeader))?;
    let malformed = || AppError::Unauthorized(AuthFailure::MalformedHeader);

    let value = header.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(malformed());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_secret_accepts_only_the_identical_string() {
        assert!(same_secret("s3cret-admin", "s3cret-admin"));
        assert!(!same_secret("s3cret-admin", "s3cret-admiN"));
        assert!(!same_secret("s3cret", "s3cret-admin"));
        assert!(!same_secret("", "s3cret-admin"));
    }
}
