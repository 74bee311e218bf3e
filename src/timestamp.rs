//! Time as the API speaks it: RFC 3339 in, RFC 3339 UTC with milliseconds out.

use serde::Serializer;
use time::format_description::well_known::Rfc3339;
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
    // Only ASCII digits and separators are written.
    String::from_utf8(millis_text(at).to_vec()).unwrap_or_default()
}

/// Appends [`format_millis`]'s text to `out`.
pub fn write_millis(out: &mut Vec<u8>, at: OffsetDateTime) {
    out.extend_from_slice(&millis_text(at));
}

/// [`format_millis`]'s text, in place. Written by hand: it runs for every
/// log line and every run returned, and `time`'s general formatter costs
/// several times as much.
fn millis_text(at: OffsetDateTime) -> [u8; 24] {
    let at = at.to_offset(UtcOffset::UTC);
    let (year, month, day) = at.to_calendar_date();
    let (hour, minute, second, millis) = at.to_hms_milli();

    // Years outside 0000-9999 cannot be written in this format; they never
    // reach it (a stored year has four digits, `now` is in this era).
    let year = year.clamp(0, 9999) as u32;
    let mut text = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut text[0..4], year);
    put_digits(&mut text[5..7], u32::from(u8::from(month)));
    put_digits(&mut text[8..10], u32::from(day));
    put_digits(&mut text[11..13], u32::from(hour));
    put_digits(&mut text[14..16], u32::from(minute));
    put_digits(&mut text[17..19], u32::from(second));
    put_digits(&mut text[20..23], u32::from(millis));
    text
}

/// Writes the last `digits.len()` decimal digits of `value`, zero-padded.
fn put_digits(digits: &mut [u8], mut value: u32) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
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

/// Parses a time this service wrote with [`format_millis`]. That exact
/// shape is read by hand (every replayed run has one); anything else goes to
/// the general RFC 3339 parser.
pub fn parse_stored(text: &str) -> Option<OffsetDateTime> {
    parse_millis(text).or_else(|| OffsetDateTime::parse(text, &Rfc3339).ok())
}

/// Reads `2026-01-12T10:10:05.000Z` and nothing else.
fn parse_millis(text: &str) -> Option<OffsetDateTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 24 {
        return None;
    }
    for (index, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        if bytes[index] != separator {
            return None;
        }
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0_u32, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };

    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(number(0..4)?).ok()?,
        month,
        u8::try_from(number(8..10)?).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms_milli(
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(14..16)?).ok()?,
        u8::try_from(number(17..19)?).ok()?,
        u16::try_from(number(20..23)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(time).assume_utc())
}

/// Serde helper: serializes an instant with [`format_millis`].
pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let text = millis_text(*at);
    serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
}

/// Serde helper: serializes an optional instant with [`format_millis`].
pub fn serialize_option<S: Serializer>(
    at: &Option<OffsetDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, serializer),
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

    proptest::proptest! {
        /// The hand-written formatter agrees with `time`'s own, for every
        /// instant with a four-digit year, in any offset.
        #[test]
        fn format_millis_agrees_with_the_general_formatter(
            unix_millis in -62_167_219_200_000_i64..253_402_300_800_000,
            offset_minutes in -1439_i32..=1439,
        ) {
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_millis) * 1_000_000)
                .unwrap()
                .to_offset(offset);
            let format = time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            );
            let expected = at.to_offset(UtcOffset::UTC).format(&format).unwrap();

            proptest::prop_assert_eq!(format_millis(at), expected);
        }

        /// What the service writes, it reads back as the same instant, by
        /// the hand-written path.
        #[test]
        fn stored_times_read_back_exactly(
            unix_millis in -62_167_219_200_000_i64..253_402_300_800_000,
        ) {
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_millis) * 1_000_000)
                .unwrap();
            let text = format_millis(at);

            proptest::prop_assert_eq!(parse_millis(&text), Some(at));
            proptest::prop_assert_eq!(parse_stored(&text), Some(at));
        }
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
