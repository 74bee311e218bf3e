//! Project API tokens: `ta_live_` and 64 lowercase hex characters (32 bytes
//! from the operating system's CSPRNG). Only the SHA-256 digest is stored.

use std::fmt;

use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};

/// Every token starts with this.
pub const PREFIX: &str = "ta_live_";

/// Characters of a token that may be shown after it is created.
pub const DISPLAY_PREFIX_LEN: usize = 12;

const SECRET_BYTES: usize = 32;

/// A freshly generated token. Its value leaves the process exactly once, in
/// the response that creates it.
pub struct NewToken {
    /// The raw token, to show the client.
    pub value: String,
    /// Its digest, to store.
    pub hash: TokenHash,
}

/// The SHA-256 hex digest of a token. Its `Debug` prints no digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl NewToken {
    /// Generates a token from the OS random source.
    ///
    /// Fails only if the operating system cannot supply randomness.
    pub fn generate() -> Result<Self, rand::rngs::SysError> {
        let mut secret = [0_u8; SECRET_BYTES];
        SysRng.try_fill_bytes(&mut secret)?;

        let value = format!("{PREFIX}{}", hex::encode(secret));
        let hash = TokenHash::of(&value);
        Ok(Self { value, hash })
    }

    /// The part of the token that may be displayed later (`ta_live_1a2b`).
    pub fn display_prefix(&self) -> &str {
        &self.value[..DISPLAY_PREFIX_LEN]
    }
}

impl TokenHash {
    /// The digest of `token`, whatever its shape.
    pub fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// The digest as stored in `api_tokens.token_hash`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// Whether `token` has the shape of one of ours: the prefix and 64 lowercase
/// hex digits. Anything else is refused without touching the database.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == PREFIX.len() + SECRET_BYTES * 2
        && token.starts_with(PREFIX)
        && token[PREFIX.len()..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_hash_to_their_digest() {
        let token = NewToken::generate().unwrap();

        assert!(is_well_formed(&token.value), "{}", token.value);
        assert_eq!(token.hash, TokenHash::of(&token.value));
        assert_eq!(token.hash.as_str().len(), 64);
        assert_eq!(token.display_prefix(), &token.value[..12]);
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            TokenHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn debug_never_prints_the_digest() {
        let hash = TokenHash::of("ta_live_secret");

        assert_eq!(format!("{hash:?}"), "TokenHash(..)");
    }
}
