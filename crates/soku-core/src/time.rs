//! One way to write and store times: UTC, RFC 3339 with exactly three fractional digits and `Z`
//! on the wire, whole milliseconds since the Unix epoch in the databases.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// `2026-02-28T12:00:00.000Z`
pub fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
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
}
