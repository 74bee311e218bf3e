//! Time as the API speaks it: RFC 3339 in, RFC 3339 UTC with milliseconds out.

use serde::Serializer;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// The current time in UTC, truncated to whole milliseconds so that what is
/// stored and what is returned are the same instant.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let millis = now.millisecond();
    now.replace_millisecond(millis)
        .expect("a millisecond read from a valid time is valid")
}

/// The instant with its seconds and fraction set to zero.
pub fn start_of_minute(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_second(0)
        .and_then(|at| at.replace_nanosecond(0))
        .expect("zero seconds and nanoseconds are always valid")
}

/// Formats an instant as `2026-01-12T10:10:05.000Z`.
pub fn format_millis(at: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.to_offset(UtcOffset::UTC)
        .format(&format)
        .expect("every UTC instant with a four-digit year formats")
}

/// Parses an RFC 3339 date-time that carries `Z` or a numeric offset.
///
/// Rejects a date alone, a date-time without an offset, a separator other
/// than `T` (or `t`) between date and time, and impossible dates.
pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    // `time` takes any byte between date and time; RFC 3339 allows only `T`.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// The instant as microseconds since the Unix epoch.
pub fn to_micros(at: OffsetDateTime) -> i64 {
    // Years 0000-9999 span about ±2.5e17 µs, well inside i64.
    (at.unix_timestamp_nanos() / 1_000) as i64
}

/// Parses a time this service wrote with [`format_millis`].
pub fn parse_stored(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Serde helper: serializes an instant with [`format_millis`].
pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_millis(*at))
}

/// Serde helper: serializes an optional instant with [`format_millis`].
pub fn serialize_option<S: Serializer>(
    at: &Option<OffsetDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.serialize_str(&format_millis(*at)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        let at = parse_rfc3339("2026-01-12T12:10:05.123456+02:00").unwrap();

        assert_eq!(format_millis(at), "2026-01-12T10:10:05.123Z");
    }

    #[test]
    fn accepts_offsets_and_fractions_and_rejects_the_rest() {
        for good in [
            "2026-01-12T10:10:00Z",
            "2026-01-12T10:10:00.5Z",
            "2026-01-12T12:10:00.123+02:00",
            "2026-01-12T05:10:00-05:00",
            "2026-01-12t10:10:00z",
        ] {
            assert!(parse_rfc3339(good).is_some(), "{good} should parse");
        }
        for bad in [
            "2026-01-12",
            "2026-01-12T10:10:00",
            "2026-13-45T99:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-01-12 10:10:00Z",
            "2026-01-12x10:10:00Z",
            "2026-01-12_10:10:00Z",
            "yesterday",
            "",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad} should not parse");
        }
    }

    #[test]
    fn start_of_minute_zeroes_seconds_and_fraction() {
        let at = parse_rfc3339("2026-01-12T10:10:59.999Z").unwrap();

        assert_eq!(
            format_millis(start_of_minute(at)),
            "2026-01-12T10:10:00.000Z"
        );
    }

    #[test]
    fn now_has_no_sub_millisecond_part() {
        assert_eq!(now().nanosecond() % 1_000_000, 0);
    }
}
