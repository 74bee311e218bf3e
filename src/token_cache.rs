//! The in-process cache of valid tokens: token digest → (token, project).
//!
//! Looking a token up costs a database round trip on every ingest; the cache
//! answers repeat callers from memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::services::tokens::ActiveToken;
use crate::token::TokenHash;

/// How long a cached token is trusted without asking the database again: the
/// bound on how long a token revoked through another instance still works here.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(30);

/// The most tokens held at once; when full, expired entries are dropped, and
/// if none are, the whole cache is emptied.
pub const TOKEN_CACHE_CAPACITY: usize = 10_000;

/// Token digest → (token, project), for tokens found active.
///
/// Only tokens found active are cached: unknown tokens always go to the
/// database, so they cannot fill memory. The cache holds at most
/// [`TOKEN_CACHE_CAPACITY`] entries, each trusted for [`TOKEN_CACHE_TTL`]. A
/// revocation on this instance takes effect at once when the revoking code
/// calls [`forget`](Self::forget). Shared by all requests; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct TokenCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<TokenHash, Entry>,
    /// Bumped by every forget, so that a lookup that started before a
    /// revocation cannot cache the token it read after the revocation.
    generation: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    token: ActiveToken,
    cached_at: Instant,
}

/// A lookup's place in the revocation order, taken before the database read.
#[derive(Clone, Copy, Debug)]
pub struct Generation(u64);

impl TokenCache {
    /// The cached token for `hash`, if it is there and has not expired; with
    /// the generation to pass to [`insert`](Self::insert) after a miss.
    pub fn get(&self, hash: &TokenHash) -> Result<ActiveToken, Generation> {
        let inner = self.lock();
        match inner.entries.get(hash) {
            Some(entry) if entry.cached_at.elapsed() < TOKEN_CACHE_TTL => Ok(entry.token),
            _ => Err(Generation(inner.generation)),
        }
    }

    /// Caches a token read from the database, unless a token was forgotten
    /// since `generation` was taken.
    pub fn insert(&self, hash: TokenHash, token: ActiveToken, generation: Generation) {
        let mut inner = self.lock();
        if inner.generation != generation.0 {
            return;
        }
        if inner.entries.len() >= TOKEN_CACHE_CAPACITY {
            inner
                .entries
                .retain(|_, entry| entry.cached_at.elapsed() < TOKEN_CACHE_TTL);
            if inner.entries.len() >= TOKEN_CACHE_CAPACITY {
                inner.entries.clear();
            }
        }
        let cached_at = Instant::now();
        inner.entries.insert(hash, Entry { token, cached_at });
    }

    /// Drops a token, so that its next use goes to the database. Call it when
    /// the token is revoked.
    pub fn forget(&self, token_id: Uuid) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner
            .entries
            .retain(|_, entry| entry.token.token_id != token_id);
    }

    /// Drops every token of a project. Call it when the project is deleted.
    pub fn forget_project(&self, project_id: Uuid) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner
            .entries
            .retain(|_, entry| entry.token.project_id != project_id);
    }

    /// How many tokens are cached, expired ones included.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(token_id: Uuid, project_id: Uuid) -> ActiveToken {
        ActiveToken {
            token_id,
            project_id,
        }
    }

    #[test]
    fn a_token_inserted_is_found_until_it_is_forgotten() {
        let cache = TokenCache::default();
        let hash = TokenHash::of("ta_live_a");
        let token = active(Uuid::now_v7(), Uuid::now_v7());

        let generation = cache.get(&hash).unwrap_err();
        cache.insert(hash.clone(), token, generation);
        assert_eq!(cache.get(&hash).ok(), Some(token));

        cache.forget(token.token_id);
        assert!(cache.get(&hash).is_err());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_lookup_that_started_before_a_revocation_does_not_cache_its_result() {
        let cache = TokenCache::default();
        let hash = TokenHash::of("ta_live_b");
        let token = active(Uuid::now_v7(), Uuid::now_v7());

        let generation = cache.get(&hash).unwrap_err();
        cache.forget(token.token_id);
        cache.insert(hash.clone(), token, generation);

        assert!(cache.get(&hash).is_err());
    }

    #[test]
    fn forgetting_a_project_drops_its_tokens_and_keeps_the_others() {
        let cache = TokenCache::default();
        let (project, other) = (Uuid::now_v7(), Uuid::now_v7());
        let (first, second, third) = (
            TokenHash::of("ta_live_c1"),
            TokenHash::of("ta_live_c2"),
            TokenHash::of("ta_live_c3"),
        );
        let generation = cache.get(&first).unwrap_err();
        cache.insert(first.clone(), active(Uuid::now_v7(), project), generation);
        cache.insert(second.clone(), active(Uuid::now_v7(), project), generation);
        cache.insert(third.clone(), active(Uuid::now_v7(), other), generation);

        cache.forget_project(project);

        assert!(cache.get(&first).is_err());
        assert!(cache.get(&second).is_err());
        assert_eq!(cache.get(&third).map(|t| t.project_id).ok(), Some(other));
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = TokenCache::default();
        let generation = cache.get(&TokenHash::of("x")).unwrap_err();

        for n in 0..TOKEN_CACHE_CAPACITY + 10 {
            let token = active(Uuid::now_v7(), Uuid::now_v7());
            cache.insert(TokenHash::of(&format!("ta_live_{n}")), token, generation);
        }

        assert!(cache.len() <= TOKEN_CACHE_CAPACITY, "{}", cache.len());
    }
}
