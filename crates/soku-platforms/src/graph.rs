//! What Meta's Graph API connectors share (Threads, Instagram, Facebook Pages): the error object,
//! its codes and subcodes as failure classes, the throttling headers, and one call read as JSON.
//!
//! Sources:
//! - Error object and codes: <https://developers.facebook.com/docs/graph-api/guides/error-handling>
//!   (`{"error": {"message", "type", "code", "error_subcode", "error_user_title",
//!   "error_user_msg", "fbtrace_id"}}`; "1 | API Unknown | Possibly a temporary issue due to
//!   downtime", "2 | API Service | Temporary issue due to downtime", "4 | API Too Many Calls",
//!   "17 | API User Too Many Calls", "341 | Application limit reached", "368 | Temporarily
//!   blocked for policies violations", "506 | Duplicate Post", "10 | API Permission Denied",
//!   "200-299 | API Permission", "190 | Access token has expired", "102 | API Session"; "Retry
//!   the operation" when `is_transient` is true).
//! - Throttling: <https://developers.facebook.com/docs/graph-api/overview/rate-limiting>: codes
//!   "32" (Page calls with a user token), "613" (custom rate limit), "80001" (Pages),
//!   "80002" (Instagram); `X-Business-Use-Case-Usage` rows carry
//!   `estimated_time_to_regain_access` "in minutes"; `X-App-Usage` only percentages.

use crate::http::{self, Effect};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use soku_core::connector::{
    ConnectError, ConnectErrorKind, FailureClass, PublishError, TOKEN_INVALID,
};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
struct ErrorBody {
    error: GraphError,
}

/// A Graph API error object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub is_transient: Option<bool>,
    /// Written for the person (Instagram's media errors say what is wrong with the file here).
    #[serde(default)]
    pub error_user_msg: Option<String>,
}

/// The error object of a Graph answer, when it is one.
pub fn parse_error(body: &[u8]) -> Option<GraphError> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error)
}

/// The error object kept as a failure's platform error, when it is one.
pub fn platform_graph_error(e: &PublishError) -> Option<GraphError> {
    e.platform_error
        .as_deref()
        .and_then(|raw| parse_error(raw.as_bytes()))
}

/// How long to wait before calling again: `Retry-After` when given, else the longest
/// `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(d) = http::retry_after(headers) {
        return Some(d);
    }
    let raw = headers
        .get("x-business-use-case-usage")
        .and_then(|v| v.to_str().ok())?;
    let usage: serde_json::Value = serde_json::from_str(raw).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(|rows| rows.as_array())
        .flatten()
        .filter_map(|row| row.get("estimated_time_to_regain_access")?.as_u64())
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes.min(24 * 60) * 60))
}

/// The failure a non-2xx Graph answer stands for, in `platform`'s name:
/// - 190 and 102: the token no longer works (`token_invalid`: the engine refreshes or marks the
///   account `needs_reconnect`);
/// - 4, 17, 32, 341, 613, 80001, 80002 and HTTP 429: rate limited (retryable, after the headers'
///   wait when they give one);
/// - codes 1 and 2, and any error marked `is_transient`: a temporary failure (ambiguous for a
///   creating call, retryable otherwise);
/// - 506: a duplicate post; 10 and 200–299: a missing permission; 368: blocked for a policy
///   violation (all permanent);
/// - any other Graph error with a 4xx: a permanent refusal, with the platform's message;
/// - anything else follows `http::status_error`.
pub fn classify(
    platform: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    effect: Effect,
) -> PublishError {
    let raw = http::platform_text(body);
    let graph = parse_error(body);
    if status.as_u16() == 429 && graph.is_none() {
        return http::status_error(status, headers, body, effect, platform);
    }
    let code = graph.as_ref().and_then(|g| g.code);
    // "1 | API Unknown | Possibly a temporary issue due to downtime" and "2 | API Service |
    // Temporary issue due to downtime", whatever the HTTP status. (Facebook Login also answers
    // a wrong client secret with code 1; that is `meta::graph_connect_error`'s concern.)
    let transient =
        graph.as_ref().and_then(|g| g.is_transient) == Some(true) || matches!(code, Some(1 | 2));
    let said = graph
        .as_ref()
        .and_then(|g| g.error_user_msg.clone().or_else(|| g.message.clone()))
        .map(|m| format!(": {}", m.chars().take(300).collect::<String>()))
        .unwrap_or_default();
    let e = match code {
        Some(190 | 102) => PublishError::new(
            FailureClass::Permanent,
            TOKEN_INVALID,
            format!("{platform} no longer accepts this account's access token{said}"),
        ),
        Some(4 | 17 | 32 | 341 | 613 | 80001 | 80002) => PublishError::new(
            FailureClass::Retryable {
                retry_after: retry_after(headers),
            },
            "rate_limited",
            format!("{platform} is rate limiting this account{said}"),
        ),
        _ if status.as_u16() == 429 => PublishError::new(
            FailureClass::Retryable {
                retry_after: retry_after(headers),
            },
            "rate_limited",
            format!("{platform} is rate limiting this account{said}"),
        ),
        _ if transient => PublishError::new(
            match effect {
                Effect::Creates => FailureClass::Ambiguous,
                Effect::Repeatable => FailureClass::Retryable {
                    retry_after: retry_after(headers),
                },
            },
            "platform_error",
            format!("{platform} failed temporarily{said}"),
        ),
        Some(506) => PublishError::new(
            FailureClass::Permanent,
            "duplicate_content",
            format!("{platform} refused a duplicate post{said}"),
        ),
        Some(10 | 200..=299) => PublishError::new(
            FailureClass::Permanent,
            "permission_denied",
            format!("{platform} has not granted this app the permission to publish{said}"),
        ),
        Some(368) => PublishError::new(
            FailureClass::Permanent,
            "blocked",
            format!("{platform} has temporarily blocked this account from posting{said}"),
        ),
        _ if status.is_client_error() && status.as_u16() != 401 && graph.is_some() => {
            PublishError::new(
                FailureClass::Permanent,
                "rejected",
                format!("{platform} refused the request ({}){said}", status.as_u16()),
            )
        }
        _ => return http::status_error(status, headers, body, effect, platform),
    };
    e.with_platform_error(raw)
}

/// One Graph call: its JSON body on 2xx, else the failure it stands for (`classify`).
pub async fn call<T: DeserializeOwned>(
    platform: &str,
    request: reqwest::RequestBuilder,
    effect: Effect,
) -> Result<T, PublishError> {
    let response = http::send(request, effect, platform).await?;
    let (_, body) = http::read_with(response, effect, platform, |s, h, b, e| {
        classify(platform, s, h, b, e)
    })
    .await?;
    http::parse_json(&body, effect, platform)
}

/// A publishing failure met while connecting or refreshing: permanent ones are the platform
/// refusing, the others worth trying again later.
pub fn connect_error(e: PublishError) -> ConnectError {
    let kind = match e.class {
        FailureClass::Permanent => ConnectErrorKind::Rejected,
        FailureClass::Retryable { .. } | FailureClass::Ambiguous => ConnectErrorKind::Unavailable,
    };
    let mut out = ConnectError::new(kind, e.message);
    out.platform_error = e.platform_error;
    out
}

/// Whether a refusal says the object does not exist (code 100, subcode 33: "Object with ID
/// '...' does not exist, cannot be loaded due to missing permissions, or does not support this
/// operation").
pub fn is_missing_object(e: &PublishError) -> bool {
    e.class == FailureClass::Permanent
        && platform_graph_error(e)
            .is_some_and(|g| g.code == Some(100) && g.error_subcode == Some(33))
}

/// `2023-10-17T05:42:03+0000` (the API's form) or RFC 3339.
pub fn parse_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// How a connector waits for something Meta processes (a container, a video): the first read
/// at once, then pauses from `interval` doubling up to 10 s, within `deadline` per attempt.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub interval: Duration,
    pub deadline: Duration,
}

impl Polling {
    /// The default: 1 s, within 45 s, inside the engine's bound on one publish call (half its
    /// 120 s lease), so that something still processing then is retried later, not cut off
    /// mid-poll.
    pub const DEFAULT: Polling = Polling {
        interval: Duration::from_secs(1),
        deadline: Duration::from_secs(45),
    };
    const MAX_PAUSE: Duration = Duration::from_secs(10);

    /// A wait starting now.
    pub fn start(self) -> Backoff {
        Backoff {
            pause: self.interval,
            deadline: tokio::time::Instant::now() + self.deadline,
        }
    }
}

/// One wait (`Polling::start`).
#[derive(Debug)]
pub struct Backoff {
    pause: Duration,
    deadline: tokio::time::Instant,
}

impl Backoff {
    /// Pauses before the next read and says true, or says false at once when the deadline has
    /// come (the caller gives up for this attempt).
    pub async fn wait(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause.min(self.deadline - now)).await;
        self.pause = (self.pause * 2).min(Polling::MAX_PAUSE);
        true
    }
}

/// A page of a Graph edge: its rows and where the next page is./// A page of a Graph edge: its rows and where the next page is.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub cursors: Option<Cursors>,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Cursors {
    #[serde(default)]
    pub after: Option<String>,
}

impl<T> Page<T> {
    /// The cursor of the page after this one, when there may be one: a page with a `next` link,
    /// or a full page (`full` rows) with an `after` cursor.
    pub fn next_cursor(self, full: usize) -> Option<String> {
        if self.data.is_empty() {
            return None;
        }
        let is_full = self.data.len() >= full;
        let paging = self.paging?;
        let has_next = paging.next.is_some();
        let after = paging.cursors.and_then(|c| c.after)?;
        (has_next || is_full).then_some(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};
    use serde_json::json;

    fn graph(code: i64) -> Vec<u8> {
        json!({"error": {"message": "m", "type": "OAuthException", "code": code, "fbtrace_id": "x"}})
            .to_string()
            .into_bytes()
    }

    fn c(status: StatusCode, h: &HeaderMap, body: &[u8], effect: Effect) -> PublishError {
        classify("Meta", status, h, body, effect)
    }

    #[test]
    fn graph_errors_classify() {
        let h = HeaderMap::new();
        let bad = StatusCode::BAD_REQUEST;
        let e = c(bad, &h, &graph(190), Effect::Creates);
        assert_eq!(
            (e.code.as_str(), e.class),
            (TOKEN_INVALID, FailureClass::Permanent)
        );
        for code in [4, 17, 32, 341, 613, 80001, 80002] {
            let e = c(bad, &h, &graph(code), Effect::Creates);
            assert_eq!(e.class, FailureClass::Retryable { retry_after: None });
            assert_eq!(e.code, "rate_limited");
        }
        let mut h2 = HeaderMap::new();
        h2.insert("retry-after", HeaderValue::from_static("12"));
        let e = c(StatusCode::TOO_MANY_REQUESTS, &h2, b"{}", Effect::Creates);
        assert_eq!(
            e.class,
            FailureClass::Retryable {
                retry_after: Some(Duration::from_secs(12))
            }
        );
        assert_eq!(
            c(
                StatusCode::INTERNAL_SERVER_ERROR,
                &h,
                &graph(2),
                Effect::Creates
            )
            .class,
            FailureClass::Ambiguous
        );
        assert_eq!(
            c(bad, &h, &graph(2), Effect::Repeatable).class,
            FailureClass::Retryable { retry_after: None }
        );
        assert_eq!(
            c(bad, &h, &graph(506), Effect::Creates).code,
            "duplicate_content"
        );
        assert_eq!(
            c(bad, &h, &graph(200), Effect::Creates).code,
            "permission_denied"
        );
        assert_eq!(c(bad, &h, &graph(368), Effect::Creates).code, "blocked");
        // "Possibly a temporary issue", even with a 400: a creating call may have worked.
        assert_eq!(
            c(bad, &h, &graph(1), Effect::Creates).class,
            FailureClass::Ambiguous
        );
        assert_eq!(
            c(bad, &h, &graph(100), Effect::Creates).class,
            FailureClass::Permanent
        );
        assert_eq!(
            c(StatusCode::BAD_GATEWAY, &h, b"<html>", Effect::Creates).class,
            FailureClass::Ambiguous
        );
    }

    #[test]
    fn business_use_case_usage_gives_the_wait() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-business-use-case-usage",
            HeaderValue::from_static(
                r#"{"1017":[{"type":"pages","call_count":100,"total_cputime":100,"total_time":100,"estimated_time_to_regain_access":19}]}"#,
            ),
        );
        let e = c(StatusCode::BAD_REQUEST, &h, &graph(80001), Effect::Creates);
        assert_eq!(
            e.class,
            FailureClass::Retryable {
                retry_after: Some(Duration::from_secs(19 * 60))
            }
        );
    }

    #[test]
    fn the_person_facing_message_is_preferred() {
        let body = json!({"error": {"message": "Media error", "code": 36003,
            "error_subcode": 2207009, "error_user_msg": "The aspect ratio is not supported."}})
        .to_string();
        let e = c(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            body.as_bytes(),
            Effect::Creates,
        );
        assert!(
            e.message.contains("The aspect ratio is not supported."),
            "{}",
            e.message
        );
        assert_eq!(
            platform_graph_error(&e).unwrap().error_subcode,
            Some(2207009)
        );
    }

    #[tokio::test]
    async fn backoff_doubles_within_the_deadline() {
        let polling = Polling {
            interval: Duration::from_millis(5),
            deadline: Duration::from_millis(100),
        };
        let start = tokio::time::Instant::now();
        let mut backoff = polling.start();
        let mut waits = 0;
        while backoff.wait().await {
            waits += 1;
        }
        // 5, 10, 20, 40 ms, then what is left of the 100.
        assert_eq!(waits, 5);
        let took = tokio::time::Instant::now() - start;
        assert!(took >= Duration::from_millis(100), "{took:?}");
    }

    #[test]
    fn timestamps_parse() {
        let t = parse_timestamp("2023-10-17T05:42:03+0000").unwrap();
        assert_eq!(t.timestamp(), 1_697_521_323);
        assert!(parse_timestamp("2023-10-17T05:42:03Z").is_some());
    }
}
