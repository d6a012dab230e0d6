//! One way to write and store times: UTC, RFC 3339 with exactly three fractional digits and `Z`
//! on the wire, whole milliseconds since the Unix epoch in the databases.

use chrono::{DateTime, SecondsFormat, TimeZone, Timelike, Utc};

/// `2026-02-28T12:00:00.000Z`
pub fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time as the API and `soku admin` accept it: RFC 3339 with an offset or `Z`, as UTC.
/// `None` for anything else, a leap second (`23:59:60`) included: chrono takes it as
/// nanoseconds past one second, which `rfc3339_millis` writes back as `:60` (JavaScript and
/// Python cannot parse it) and the databases store as the next second.
pub fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .filter(|t| t.nanosecond() < 1_000_000_000)
        .map(|t| t.with_timezone(&Utc))
}

pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Serde helpers for `DateTime<Utc>` fields written as `rfc3339_millis`.
pub mod serde_millis {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_millis(*t))
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&crate::time::rfc3339_millis(*t)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_fraction_digits_and_z() {
        let t = Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap();
        assert_eq!(rfc3339_millis(t), "2026-02-28T12:00:00.000Z");
        let t = from_millis(to_millis(t) + 1234);
        assert_eq!(rfc3339_millis(t), "2026-02-28T12:00:01.234Z");
    }

    #[test]
    fn parses_rfc3339_but_not_a_leap_second() {
        let t = parse_rfc3339("2031-07-01T01:59:59.5+02:00").unwrap();
        assert_eq!(rfc3339_millis(t), "2031-06-30T23:59:59.500Z");
        assert!(parse_rfc3339("2031-06-30T23:59:59Z").is_some());
        for bad in [
            "2031-06-30T23:59:60Z",
            "2031-06-30T23:59:60.999Z",
            "2031-07-01T01:59:60+02:00",
            "2031-06-30T23:59:59",
            "2031-06-30",
            "tomorrow",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
