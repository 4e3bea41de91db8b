//! Time as the contract writes it: RFC 3339 in, UTC with millisecond precision out.
//! Stored times are integers since the Unix epoch (milliseconds, or microseconds for client
//! timestamps, which keeps sub-millisecond differences visible to deduplication).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// Parses an RFC 3339 time with offset into microseconds since the epoch. Only times whose
/// UTC form has a four-digit year (0000-9999) are accepted: RFC 3339 cannot write the others,
/// so they could not be given back as RFC 3339.
pub fn parse_rfc3339_micros(value: &str) -> Option<i64> {
    use chrono::Datelike;
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| (0..=9999).contains(&t.year()))
        .map(|t| t.timestamp_micros())
}

pub fn format_millis(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn format_micros(micros: i64) -> String {
    format_millis(micros.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_utc_milliseconds() {
        let us = parse_rfc3339_micros("2026-11-22T11:00:00.123+01:00").unwrap();
        assert_eq!(format_micros(us), "2026-11-22T10:00:00.123Z");
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn rejects_times_without_offset_or_garbage() {
        assert!(parse_rfc3339_micros("2026-11-22T10:00:00").is_none());
        assert!(parse_rfc3339_micros("yesterday").is_none());
        assert!(parse_rfc3339_micros("2026-13-01T00:00:00Z").is_none());
    }

    #[test]
    fn rejects_times_whose_utc_year_has_not_four_digits() {
        assert!(parse_rfc3339_micros("0000-01-01T00:00:00+01:00").is_none());
        assert!(parse_rfc3339_micros("9999-12-31T23:59:59-01:00").is_none());
        let first = parse_rfc3339_micros("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(format_micros(first), "0000-01-01T00:00:00.000Z");
        let last = parse_rfc3339_micros("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(format_micros(last), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn keeps_microseconds_for_dedup() {
        let a = parse_rfc3339_micros("2026-11-22T10:00:00.000001Z").unwrap();
        let b = parse_rfc3339_micros("2026-11-22T10:00:00.000002Z").unwrap();
        assert_ne!(a, b);
    }
}
