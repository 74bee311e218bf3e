//! `last_used_at`, kept to the minute at the cost of at most one database
//! write per token per minute, not one per request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Database;
use crate::services::tokens;
use crate::timestamp;

/// Remembers, per token, the minute its `last_used_at` was last written by
/// this process.
#[derive(Debug, Default)]
pub struct TokenUsage {
    written: Mutex<HashMap<Uuid, i64>>,
}

impl TokenUsage {
    /// Notes that `token_id` authenticated a request just now. The first use
    /// in a minute writes `last_used_at` (the minute, seconds zeroed); later
    /// uses in the same minute write nothing. A failed write is logged and
    /// never fails the request; the next use retries it.
    pub async fn touch(&self, db: &Database, token_id: Uuid) {
        let minute = timestamp::start_of_minute(timestamp::now());
        if !self.claim(token_id, minute) {
            return;
        }

        if let Err(error) = tokens::record_token_use(db, token_id, minute).await {
            tracing::warn!(%token_id, error = %error, "last_used_at not written");
            self.release(token_id, minute);
        }
    }

    /// Forgets a token, as when it is revoked.
    pub fn forget(&self, token_id: Uuid) {
        self.lock().remove(&token_id);
    }

    /// Whether this call is the first of `minute` for the token.
    fn claim(&self, token_id: Uuid, minute: OffsetDateTime) -> bool {
        let key = minute_number(minute);
        let previous = self.lock().insert(token_id, key);
        previous.is_none_or(|previous| previous < key)
    }

    /// Undoes a claim whose write failed, unless a later minute replaced it.
    fn release(&self, token_id: Uuid, minute: OffsetDateTime) {
        let key = minute_number(minute);
        let mut written = self.lock();
        if written.get(&token_id) == Some(&key) {
            written.remove(&token_id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, i64>> {
        // The map holds plain numbers; a panic elsewhere cannot leave it torn.
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn minute_number(minute: OffsetDateTime) -> i64 {
    minute.unix_timestamp().div_euclid(60)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn only_the_first_use_in_a_minute_claims_a_write() {
        let usage = TokenUsage::default();
        let token = Uuid::new_v4();
        let ten = datetime!(2026-01-12 10:10:00 UTC);
        let eleven = datetime!(2026-01-12 10:11:00 UTC);

        assert!(usage.claim(token, ten));
        assert!(!usage.claim(token, ten));
        assert!(usage.claim(token, eleven));
        assert!(!usage.claim(token, ten));
        assert!(usage.claim(Uuid::new_v4(), ten));
    }

    #[test]
    fn a_released_claim_can_be_taken_again() {
        let usage = TokenUsage::default();
        let token = Uuid::new_v4();
        let ten = datetime!(2026-01-12 10:10:00 UTC);

        assert!(usage.claim(token, ten));
        usage.release(token, ten);

        assert!(usage.claim(token, ten));
    }
}
