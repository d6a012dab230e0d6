//! Google's error envelope as failure classes, and the daily quota reset at midnight Pacific
//! time.

use super::{PLATFORM, UPLOAD_LIMIT_WAIT};
use crate::http::{self, Effect, TOKEN_INVALID};
use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc, Weekday};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use soku_core::connector::{FailureClass, PublishError};
use std::time::Duration;

/// Google's error envelope.
#[derive(Deserialize, Default)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) error: Option<GoogleError>,
}

#[derive(Deserialize, Default)]
pub(super) struct GoogleError {
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default)]
    pub(super) errors: Vec<ErrorItem>,
}

#[derive(Deserialize, Default)]
pub(super) struct ErrorItem {
    #[serde(default)]
    pub(super) reason: Option<String>,
}

/// The failure a non-2xx answer of the API stands for (see the module documentation).
pub(super) fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    effect: Effect,
) -> PublishError {
    let raw = http::platform_text(body);
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let Some(err) = parsed.error else {
        return http::status_error(status, headers, body, effect, PLATFORM);
    };
    let reasons: Vec<&str> = err
        .errors
        .iter()
        .filter_map(|e| e.reason.as_deref())
        .collect();
    let has = |r: &str| reasons.contains(&r);
    let said = err
        .message
        .as_deref()
        .map(|m| format!(": {}", m.chars().take(300).collect::<String>()))
        .unwrap_or_default();
    let e = if has("quotaExceeded") || has("dailyLimitExceeded") {
        let wait = until_midnight_pacific(Utc::now());
        PublishError::new(
            FailureClass::Retryable {
                retry_after: Some(wait),
            },
            "quota_exceeded",
            format!(
                "This server's YouTube API quota for today is used up; it resets at midnight \
                 Pacific Time, in {} min{said}",
                wait.as_secs() / 60
            ),
        )
    } else if has("uploadLimitExceeded") {
        PublishError::new(
            FailureClass::Retryable {
                retry_after: Some(UPLOAD_LIMIT_WAIT),
            },
            "upload_limit_exceeded",
            format!(
                "This YouTube channel has reached the number of videos it may upload in 24 \
                 hours; the post will be tried again then{said}"
            ),
        )
    } else if has("rateLimitExceeded") || has("userRateLimitExceeded") || status.as_u16() == 429 {
        PublishError::new(
            FailureClass::Retryable {
                retry_after: http::retry_after(headers),
            },
            "rate_limited",
            format!("{PLATFORM} is rate limiting this server{said}"),
        )
    } else if status.as_u16() == 401 || has("authError") {
        PublishError::new(
            FailureClass::Permanent,
            TOKEN_INVALID,
            format!("{PLATFORM} no longer accepts this account's access token{said}"),
        )
    } else if has("insufficientPermissions") {
        PublishError::new(
            FailureClass::Permanent,
            "permission_denied",
            format!(
                "This YouTube account did not grant the permission to upload videos; reconnect \
                 it{said}"
            ),
        )
    } else if status.is_client_error() {
        let reason = reasons.first().copied().unwrap_or("");
        PublishError::new(
            FailureClass::Permanent,
            "rejected",
            format!(
                "{PLATFORM} refused the request ({}{}){said}",
                status.as_u16(),
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(", {reason}")
                }
            ),
        )
    } else {
        return http::status_error(status, headers, body, effect, PLATFORM);
    };
    e.with_platform_error(raw)
}

/// The time until the next midnight in US Pacific time (PST, UTC−8; PDT, UTC−7, from the second
/// Sunday of March at 02:00 to the first Sunday of November at 02:00 local time).
pub fn until_midnight_pacific(now: DateTime<Utc>) -> Duration {
    let offset = |t: DateTime<Utc>| if pacific_dst(t) { 7 } else { 8 };
    let local = now - ChronoDuration::hours(offset(now));
    let next_day = local.date_naive() + ChronoDuration::days(1);
    // Midnight never falls in the hour DST changes (02:00): its offset is that of the date.
    let midnight_local = next_day.and_hms_opt(0, 0, 0).expect("midnight exists");
    let dst_then = next_day > nth_sunday(next_day.year(), 3, 2)
        && next_day <= nth_sunday(next_day.year(), 11, 1);
    let hours = if dst_then { 7 } else { 8 };
    let midnight = Utc.from_utc_datetime(&midnight_local) + ChronoDuration::hours(hours);
    (midnight - now).to_std().unwrap_or_default()
}

pub(super) fn nth_sunday(year: i32, month: u32, n: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n as u8).expect("a Sunday")
}

/// Whether `t` falls in Pacific daylight time.
pub(super) fn pacific_dst(t: DateTime<Utc>) -> bool {
    let y = t.year();
    // 02:00 PST = 10:00 UTC; 02:00 PDT = 09:00 UTC.
    let start = Utc.from_utc_datetime(&nth_sunday(y, 3, 2).and_hms_opt(10, 0, 0).unwrap());
    let end = Utc.from_utc_datetime(&nth_sunday(y, 11, 1).and_hms_opt(9, 0, 0).unwrap());
    t >= start && t < end
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn midnight_pacific_in_standard_and_daylight_time() {
        // 15 January 2026, 12:00 UTC = 04:00 PST: midnight PST is 08:00 UTC the next day.
        assert_eq!(
            until_midnight_pacific(at("2026-01-15T12:00:00Z")),
            Duration::from_secs(20 * 3600)
        );
        // 15 July 2026, 12:00 UTC = 05:00 PDT: midnight PDT is 07:00 UTC the next day.
        assert_eq!(
            until_midnight_pacific(at("2026-07-15T12:00:00Z")),
            Duration::from_secs(19 * 3600)
        );
        // 7 March 2026 23:00 PST (8 March 07:00 UTC): midnight is still PST (DST starts at 02:00).
        assert_eq!(
            until_midnight_pacific(at("2026-03-08T07:00:00Z")),
            Duration::from_secs(3600)
        );
        // 8 March 2026 12:00 UTC = 05:00 PDT: the next midnight is PDT.
        assert_eq!(
            until_midnight_pacific(at("2026-03-08T12:00:00Z")),
            Duration::from_secs(19 * 3600)
        );
        // 1 November 2026 12:00 UTC = 04:00 PST (DST ended at 09:00 UTC): midnight PST.
        assert_eq!(
            until_midnight_pacific(at("2026-11-01T12:00:00Z")),
            Duration::from_secs(20 * 3600)
        );
        let d = until_midnight_pacific(Utc::now());
        assert!(d > Duration::ZERO && d <= Duration::from_secs(24 * 3600));
    }

    #[test]
    fn google_errors_classify() {
        let h = HeaderMap::new();
        let body = |code: u16, reason: &str, domain: &str| {
            json!({"error": {"code": code, "message": "m",
                   "errors": [{"message": "m", "domain": domain, "reason": reason}]}})
            .to_string()
            .into_bytes()
        };
        let s = |c| StatusCode::from_u16(c).unwrap();
        let e = classify(
            s(403),
            &h,
            &body(403, "quotaExceeded", "youtube.quota"),
            Effect::Repeatable,
        );
        assert_eq!(e.code, "quota_exceeded");
        assert!(
            matches!(e.class, FailureClass::Retryable { retry_after: Some(d) } if d <= Duration::from_secs(24 * 3600))
        );
        let e = classify(
            s(400),
            &h,
            &body(400, "uploadLimitExceeded", "youtube.video"),
            Effect::Repeatable,
        );
        assert_eq!(
            e.class,
            FailureClass::Retryable {
                retry_after: Some(UPLOAD_LIMIT_WAIT)
            }
        );
        let e = classify(
            s(401),
            &h,
            &body(401, "authError", "global"),
            Effect::Creates,
        );
        assert_eq!(e.code, TOKEN_INVALID);
        let e = classify(
            s(400),
            &h,
            &body(400, "invalidTitle", "youtube.video"),
            Effect::Repeatable,
        );
        assert_eq!(
            (e.code.as_str(), e.class),
            ("rejected", FailureClass::Permanent)
        );
        assert!(e.message.contains("invalidTitle"));
        let e = classify(
            s(503),
            &h,
            &body(503, "backendError", "global"),
            Effect::Creates,
        );
        assert_eq!(e.class, FailureClass::Ambiguous);
        let e = classify(s(503), &h, b"<html>", Effect::Repeatable);
        assert!(matches!(e.class, FailureClass::Retryable { .. }));
    }
}
