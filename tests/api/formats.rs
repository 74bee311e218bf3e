//! Shape checks shared by the endpoint tests: the formats SPEC section 2 fixes
//! for ids, times and tokens.

/// A lowercase hyphenated UUID: `8-4-4-4-12` lowercase hex digits.
pub fn is_lowercase_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// A service-made time: `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC with milliseconds.
pub fn is_utc_millis(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digit_at = |i: usize| bytes[i].is_ascii_digit();
    bytes.len() == 24
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
            .into_iter()
            .all(digit_at)
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ]
        .into_iter()
        .all(|(i, c)| bytes[i] == c)
}

/// A raw token: `ta_live_` and 64 lowercase hex digits.
pub fn is_raw_token(text: &str) -> bool {
    text.strip_prefix("ta_live_").is_some_and(|secret| {
        secret.len() == 64
            && secret
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The SHA-256 hex digest of `text`, computed here rather than by the service.
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};

    hex::encode(Sha256::digest(text.as_bytes()))
}

/// How long ago a service-made time was, in seconds; panics if unparsable.
pub fn seconds_ago(text: &str) -> i64 {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    let at = OffsetDateTime::parse(text, &Rfc3339).expect("an RFC 3339 time");
    (OffsetDateTime::now_utc() - at).whole_seconds()
}
