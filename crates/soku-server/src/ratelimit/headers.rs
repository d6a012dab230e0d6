//! The `X-RateLimit-*` header values. They are on every response under `/v1`, so the
//! common ones are made once: each tier's limit and the small numbers.

use axum::http::{HeaderName, HeaderValue};
use soku_core::model::RateLimitTier;
use soku_core::time::{from_millis, rfc3339_millis};
use std::sync::{LazyLock, Mutex};

pub const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
pub const TIER: HeaderName = HeaderName::from_static("x-ratelimit-tier");

/// `X-RateLimit-Tier`.
pub(super) fn tier_value(tier: RateLimitTier) -> HeaderValue {
    HeaderValue::from_static(tier.as_str())
}

/// Numbers below this have a ready-made header value: every tier's and endpoint's capacity is
/// smaller, so `X-RateLimit-Remaining` costs nothing to make for any request counted against
/// the spec's quotas.
const SMALL_NUMBERS: u64 = 1024;

/// `n` in decimal, as a header value.
pub(super) fn number_value(n: u64) -> HeaderValue {
    static SMALL: LazyLock<Box<[HeaderValue]>> = LazyLock::new(|| {
        (0..SMALL_NUMBERS)
            .map(|n| HeaderValue::from_static(Box::leak(n.to_string().into_boxed_str())))
            .collect()
    });
    match SMALL.get(n as usize) {
        Some(value) => value.clone(),
        None => HeaderValue::from(n),
    }
}

/// `n` in decimal as a `&'static str`, made once per distinct value for this process and
/// kept: for the tiers' rates (a handful), whose `X-RateLimit-Limit` is then a static header
/// value, free to copy.
pub(super) fn interned_number(n: u32) -> &'static str {
    static NUMBERS: Mutex<Vec<(u32, &'static str)>> = Mutex::new(Vec::new());
    let mut numbers = NUMBERS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, s)) = numbers.iter().find(|(v, _)| *v == n) {
        return s;
    }
    let s: &'static str = Box::leak(n.to_string().into_boxed_str());
    numbers.push((n, s));
    s
}

/// `X-RateLimit-Reset` for `us` microseconds since the epoch.
pub(super) fn reset_value(us: i64) -> HeaderValue {
    HeaderValue::try_from(reset_time(us)).expect("a timestamp makes a header value")
}

/// `2026-03-01T12:00:00.123Z` for `us` microseconds since the epoch, rounded up to the
/// millisecond, so that the bucket is full at that time.
pub(super) fn reset_time(us: i64) -> String {
    let ms = us.div_euclid(1000) + i64::from(us.rem_euclid(1000) > 0);
    rfc3339_millis(from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_times_round_up_to_the_millisecond() {
        for (us, text) in [
            (1_000_000, "1970-01-01T00:00:01.000Z"),
            (1_000_001, "1970-01-01T00:00:01.001Z"),
            (1_000_999, "1970-01-01T00:00:01.001Z"),
            (999_999_999, "1970-01-01T00:16:40.000Z"),
            (1_999_001, "1970-01-01T00:00:02.000Z"),
            (86_401_000_000 + 1_000_001, "1970-01-02T00:00:02.001Z"),
            (1_772_366_400_123_400, "2026-03-01T12:00:00.124Z"),
            (-1, "1970-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(reset_time(us), text, "{us}");
            assert_eq!(reset_value(us), text, "{us}");
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(number_value(0), "0");
        assert_eq!(number_value(7), "7");
        assert_eq!(number_value(1023), "1023");
        assert_eq!(number_value(1024), "1024");
        assert_eq!(number_value(10_999_999), "10999999");
        assert_eq!(number_value(u64::MAX), "18446744073709551615");
        for tier in [
            RateLimitTier::Default,
            RateLimitTier::Authenticated,
            RateLimitTier::Premium,
            RateLimitTier::Admin,
        ] {
            assert_eq!(tier_value(tier), tier.as_str());
        }
        assert_eq!(interned_number(1_000_000), "1000000");
        assert!(std::ptr::eq(interned_number(25), interned_number(25)));
    }
}
