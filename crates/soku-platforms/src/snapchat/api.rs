//! The Public Profile API's envelope and its failures as failure classes.
//!
//! Every answer carries `request_id` and `request_status` (`SUCCESS`, `ERROR`, `PARTIAL`), with
//! `debug_message`, `display_message` and `error_code` on errors (the Marketing API's envelope;
//! for the Public Profile API only third-party code shows it, see the module docs). Publishers
//! calling the API report logical errors (`MEDIA_EXPIRED`, `MEDIA_POSTING_ALREADY_IN_PROGRESS`)
//! with HTTP 200 as well as with a 4xx: both the status and `request_status` decide.

use super::PLATFORM;
use crate::http::{self, Effect};
use serde::de::DeserializeOwned;
use serde_json::Value;
use soku_core::connector::{FailureClass, PublishError, TOKEN_INVALID};
use std::time::Duration;

/// Snap's rate limits are per second ("individual Access tokens issued by the App can make
/// requests at an average of 10 requests/second",
/// <https://developers.snap.com/api/marketing-api/Ads-API/rate-limits>) and no `Retry-After` is
/// documented: a 429 without one waits this long.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(5);

/// One call: the 2xx body read as `T` unless `request_status` says `ERROR`, else the failure it
/// stands for.
pub async fn call<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    token: &str,
    effect: Effect,
) -> Result<T, PublishError> {
    let response = http::send(request.bearer_auth(token), effect, PLATFORM).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| http::transport_error(&e, effect, PLATFORM))?;
    if status.is_success() && !logical_error(&body) {
        return http::parse_json(&body, effect, PLATFORM);
    }
    Err(classify(status, &headers, &body, effect))
}

/// Whether a body says `request_status: ERROR`.
fn logical_error(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        v["request_status"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("error"))
    })
}

/// The failure an answer stands for:
/// - `MEDIA_PROCESSING` (the media is still being transcoded after `FINALIZE`): nothing was
///   posted, the post is sent again after a pause: retryable `media_processing`;
/// - `MEDIA_EXPIRED` ("A media object stays active for 24 hours after creation"): nothing was
///   posted; the next attempt uploads the file again: retryable `media_expired`;
/// - `MEDIA_POSTING_ALREADY_IN_PROGRESS`: Snap holds a post of this media: ambiguous, so the
///   engine asks `find_existing` and never posts it again;
/// - 401: `token_invalid` (the engine refreshes the token, or marks the account
///   `needs_reconnect`);
/// - 403: permanent `forbidden` (the profile is not this token's, or the operator's app is not
///   allowlisted for the Public Profile API);
/// - 429: retryable after `Retry-After`, else [`RATE_LIMIT_WAIT`];
/// - 5xx: ambiguous for a call that may create a post, retryable otherwise;
/// - any other refusal: permanent `rejected`, with Snap's message.
pub fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    effect: Effect,
) -> PublishError {
    let raw = http::platform_text(body);
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v["error_code"].as_str().unwrap_or("");
    let said = [&v["display_message"], &v["debug_message"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|m| !m.is_empty())
        .map(|m| format!(": {}", m.chars().take(300).collect::<String>()))
        .unwrap_or_default();
    let retry = |after| FailureClass::Retryable { retry_after: after };
    let (class, ours, message) = match (code, status.as_u16()) {
        ("MEDIA_PROCESSING", _) => (
            retry(None),
            "media_processing",
            format!("{PLATFORM} is still processing the media{said}"),
        ),
        ("MEDIA_EXPIRED", _) => (
            retry(None),
            "media_expired",
            format!("{PLATFORM}'s media container expired before it was posted{said}"),
        ),
        ("MEDIA_POSTING_ALREADY_IN_PROGRESS", _) => (
            FailureClass::Ambiguous,
            "outcome_unknown",
            format!("{PLATFORM} already has a post of this media in progress{said}"),
        ),
        (_, 401) => (
            FailureClass::Permanent,
            TOKEN_INVALID,
            format!("{PLATFORM} no longer accepts this account's access token{said}"),
        ),
        (_, 403) => (
            FailureClass::Permanent,
            "forbidden",
            format!(
                "{PLATFORM} refused the request (403){said}. The operator's app must be \
                 allowlisted for the Public Profile API, and the profile must be the connected \
                 account's."
            ),
        ),
        (_, 429) => (
            retry(Some(http::retry_after(headers).unwrap_or(RATE_LIMIT_WAIT))),
            "rate_limited",
            format!("{PLATFORM} is rate limiting this app{said}"),
        ),
        (_, s @ 500..=599) => (
            match effect {
                Effect::Creates => FailureClass::Ambiguous,
                Effect::Repeatable => retry(http::retry_after(headers)),
            },
            "platform_error",
            format!("{PLATFORM} failed ({s}){said}"),
        ),
        (_, s) => (
            FailureClass::Permanent,
            "rejected",
            format!(
                "{PLATFORM} refused the request ({}){said}",
                if code.is_empty() {
                    s.to_string()
                } else {
                    code.to_owned()
                }
            ),
        ),
    };
    PublishError::new(class, ours, message).with_platform_error(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    fn class_of(status: u16, body: &str, effect: Effect) -> (FailureClass, String) {
        let e = classify(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
            effect,
        );
        (e.class, e.code)
    }

    #[test]
    fn logical_errors_count_whatever_the_status() {
        let expired = r#"{"request_status":"ERROR","error_code":"MEDIA_EXPIRED"}"#;
        assert!(logical_error(expired.as_bytes()));
        assert!(!logical_error(br#"{"request_status":"SUCCESS"}"#));
        for status in [200, 400] {
            assert_eq!(
                class_of(status, expired, Effect::Creates).1,
                "media_expired"
            );
        }
        let busy = r#"{"request_status":"ERROR","error_code":"MEDIA_POSTING_ALREADY_IN_PROGRESS"}"#;
        assert_eq!(
            class_of(200, busy, Effect::Creates).0,
            FailureClass::Ambiguous
        );
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(class_of(401, "{}", Effect::Repeatable).1, TOKEN_INVALID);
        assert_eq!(class_of(403, "{}", Effect::Repeatable).1, "forbidden");
        assert_eq!(
            class_of(429, "", Effect::Creates).0,
            FailureClass::Retryable {
                retry_after: Some(RATE_LIMIT_WAIT)
            }
        );
        assert_eq!(
            class_of(502, "", Effect::Creates).0,
            FailureClass::Ambiguous
        );
        assert_eq!(
            class_of(502, "", Effect::Repeatable).0,
            FailureClass::Retryable { retry_after: None }
        );
        let e = classify(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"{"request_status":"ERROR","error_code":"E1001","debug_message":"bad locale"}"#,
            Effect::Creates,
        );
        assert_eq!(e.class, FailureClass::Permanent);
        assert!(e.message.contains("E1001") && e.message.contains("bad locale"));
    }
}
