//! What every connector does with HTTP: send a request and turn what happened into the engine's
//! failure classes (spec 7).
//!
//! - The connection could not be made: nothing was sent, `Retryable`.
//! - A timeout or a broken connection after the request went out: it may have had its effect,
//!   `Ambiguous` for a call that creates something (the engine reconciles), `Retryable` for a
//!   read or an upload that creates nothing visible.
//! - 429: `Retryable`, after `Retry-After` (or the platform's reset header).
//! - 401: `token_invalid` (the engine refreshes the account's tokens and tries again).
//! - Other 4xx: `Permanent`, the platform's answer kept.
//! - 5xx: `Ambiguous` for a creating call, `Retryable` otherwise.

use soku_core::connector::{
    AccountCredentials, ConnectError, ConnectErrorKind, FailureClass, PublishError,
};
use std::time::Duration;

pub const USER_AGENT: &str = concat!("soku-server/", env!("CARGO_PKG_VERSION"));

/// The code of a 401 from the platform: the account's access token no longer works. The engine
/// refreshes the tokens once and retries; a failed refresh marks the account `needs_reconnect`.
pub const TOKEN_INVALID: &str = soku_core::connector::TOKEN_INVALID;

/// The platform's answers are kept on the target for the user; long ones are cut here.
const PLATFORM_ERROR_MAX: usize = 2000;

/// Percent-encodes a query value: RFC 3986 unreserved characters kept, everything else (spaces
/// included, as `%20`, which space-delimited `scope` values expect) escaped.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `k=v&...`, every value percent-encoded (an authorization page's query).
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A connect-time call (a token or profile request) that failed in transit: worth trying
/// again later, in words that name no URL (the query may hold a secret).
pub fn connect_unavailable(e: &reqwest::Error, platform: &str) -> ConnectError {
    let failure = transport_error(e, Effect::Repeatable, platform);
    ConnectError::new(ConnectErrorKind::Unavailable, failure.message)
}

/// Whether a failed call may have changed something on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Creates something (a post, a container being published): an unclear outcome is `Ambiguous`.
    Creates,
    /// Reads, uploads and other calls that can be repeated safely: any unclear outcome is `Retryable`.
    Repeatable,
}

/// The slowest upload a request sending a file's part is given time for: 256 KiB/s (about
/// 2 Mbit/s). A 31 MiB Snapchat part then has two minutes, a 64 MB TikTok chunk four.
pub const MIN_UPLOAD_RATE: u64 = 256 * 1024;

/// How long a request sending `len` bytes of a file may take: the connector's `timeout`, or
/// longer when the part needs it at `MIN_UPLOAD_RATE` (the client's timeout covers sending
/// the body too, so a large part on a modest uplink would otherwise never finish).
pub fn upload_timeout(timeout: Duration, len: u64) -> Duration {
    upload_timeout_at(timeout, len, MIN_UPLOAD_RATE)
}

/// `upload_timeout` for another slowest rate (bytes per second).
pub fn upload_timeout_at(timeout: Duration, len: u64, rate: u64) -> Duration {
    timeout.max(Duration::from_secs(len.div_ceil(rate.max(1))))
}

/// A client for a platform's fixed, operator-configured API (no redirects followed).
pub fn api_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .build()
        .expect("the TLS backend initialises")
}

/// Sends the request; a transport failure becomes a `PublishError` per the rules above.
pub async fn send(
    request: reqwest::RequestBuilder,
    effect: Effect,
    platform: &str,
) -> Result<reqwest::Response, PublishError> {
    request
        .send()
        .await
        .map_err(|e| transport_error(&e, effect, platform))
}

pub fn transport_error(e: &reqwest::Error, effect: Effect, platform: &str) -> PublishError {
    if e.is_connect() && !e.is_timeout() {
        return PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "unreachable",
            format!("{platform} could not be reached."),
        );
    }
    let (code, message) = if e.is_timeout() {
        ("timeout", format!("{platform} did not answer in time."))
    } else {
        (
            "connection_lost",
            format!("The connection to {platform} broke before it answered."),
        )
    };
    let class = match effect {
        Effect::Creates => FailureClass::Ambiguous,
        Effect::Repeatable => FailureClass::Retryable { retry_after: None },
    };
    PublishError::new(class, code, message)
}

/// Reads a response: its body when the status is 2xx, else the failure it stands for.
pub async fn read(
    response: reqwest::Response,
    effect: Effect,
    platform: &str,
) -> Result<(reqwest::StatusCode, Vec<u8>), PublishError> {
    read_with(
        response,
        effect,
        platform,
        |status, headers, body, effect| status_error(status, headers, body, effect, platform),
    )
    .await
}

/// `read`, with the platform's own reading of a non-2xx answer (`classify`, usually
/// `status_error` refined by the platform's error body).
pub async fn read_with(
    response: reqwest::Response,
    effect: Effect,
    platform: &str,
    classify: impl FnOnce(
        reqwest::StatusCode,
        &reqwest::header::HeaderMap,
        &[u8],
        Effect,
    ) -> PublishError,
) -> Result<(reqwest::StatusCode, Vec<u8>), PublishError> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(&e, effect, platform))?;
    if status.is_success() {
        return Ok((status, body.to_vec()));
    }
    Err(classify(status, &headers, &body, effect))
}

/// Reads a 2xx JSON body into `T` (see `parse_json`).
pub async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    effect: Effect,
    platform: &str,
) -> Result<T, PublishError> {
    let (_, body) = read(response, effect, platform).await?;
    parse_json(&body, effect, platform)
}

/// Parses a 2xx JSON body into `T`; a body that does not parse is the platform's fault and
/// ambiguous for a creating call (the post may exist).
pub fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    effect: Effect,
    platform: &str,
) -> Result<T, PublishError> {
    crate::answer::from_json(body).map_err(|why| {
        let class = match effect {
            Effect::Creates => FailureClass::Ambiguous,
            Effect::Repeatable => FailureClass::Retryable { retry_after: None },
        };
        PublishError::new(
            class,
            "unexpected_response",
            format!("{platform} answered in a form this server does not understand: {why}"),
        )
        .with_platform_error(platform_text(body))
    })
}

/// The account's access token, or `token_invalid` (permanent: reconnecting is the fix) when
/// it has none.
pub fn access_token<'a>(
    account: &'a AccountCredentials,
    platform: &str,
) -> Result<&'a str, PublishError> {
    account
        .access_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            PublishError::new(
                FailureClass::Permanent,
                TOKEN_INVALID,
                format!("This {platform} account has no access token; reconnect it."),
            )
        })
}

/// The failure a non-2xx answer stands for.
pub fn status_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    effect: Effect,
    platform: &str,
) -> PublishError {
    let raw = platform_text(body);
    let code = status.as_u16();
    let e = match code {
        429 => PublishError::new(
            FailureClass::Retryable {
                retry_after: retry_after(headers),
            },
            "rate_limited",
            format!("{platform} is rate limiting this account."),
        ),
        401 => PublishError::new(
            FailureClass::Permanent,
            TOKEN_INVALID,
            format!("{platform} no longer accepts this account's access token."),
        ),
        403 => PublishError::new(
            FailureClass::Permanent,
            "forbidden",
            format!("{platform} refused the post for this account (403)."),
        ),
        500..=599 => PublishError::new(
            match effect {
                Effect::Creates => FailureClass::Ambiguous,
                Effect::Repeatable => FailureClass::Retryable {
                    retry_after: retry_after(headers),
                },
            },
            "platform_error",
            format!("{platform} failed ({code})."),
        ),
        _ => PublishError::new(
            FailureClass::Permanent,
            "rejected",
            format!("{platform} refused the request ({code})."),
        ),
    };
    e.with_platform_error(raw)
}

/// `Retry-After` in seconds or as an HTTP date; else `x-rate-limit-reset` / `x-ratelimit-reset`
/// as Unix seconds (X), or `ratelimit-reset` as seconds or an ISO date (Bluesky, Mastodon).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let now = chrono::Utc::now();
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(v) {
            return Some(
                (at.with_timezone(&chrono::Utc) - now)
                    .to_std()
                    .unwrap_or_default(),
            );
        }
    }
    for name in ["x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset"] {
        let Some(v) = get(name) else { continue };
        if let Ok(n) = v.parse::<i64>() {
            // Unix seconds when it is a date in the future, else a number of seconds.
            return Some(if n > 1_000_000_000 {
                Duration::from_secs((n - now.timestamp()).max(0) as u64)
            } else {
                Duration::from_secs(n.max(0) as u64)
            });
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(v) {
            return Some(
                (at.with_timezone(&chrono::Utc) - now)
                    .to_std()
                    .unwrap_or_default(),
            );
        }
    }
    None
}

/// A platform's answer as text to keep, secret-named fields and bearer tokens masked
/// ([`crate::answer::redact`]: a token endpoint's answer, a Graph page listing or an echoed
/// request carries the account's tokens), cut to a bounded length.
pub fn platform_text(body: &[u8]) -> String {
    // What is kept is cut anyway: masking looks at no more than this much of it.
    let body = &body[..body.len().min(PLATFORM_ERROR_MAX * 32)];
    let lossy = String::from_utf8_lossy(body);
    let text = crate::answer::redact(&lossy);
    if text.len() <= PLATFORM_ERROR_MAX {
        return text.into_owned();
    }
    let mut end = PLATFORM_ERROR_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn a_large_part_gets_time_to_be_sent_on_a_modest_uplink() {
        let thirty = Duration::from_secs(30);
        assert_eq!(
            upload_timeout(thirty, 4 << 20),
            thirty,
            "4 MiB: 16 s fit in 30"
        );
        assert_eq!(upload_timeout(thirty, 31 << 20), Duration::from_secs(124));
        assert_eq!(upload_timeout(thirty, 64_000_000), Duration::from_secs(245));
        assert_eq!(
            upload_timeout(Duration::from_secs(300), 31 << 20),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn statuses_map_to_failure_classes() {
        let h = HeaderMap::new();
        let class = |code: u16, effect| {
            status_error(StatusCode::from_u16(code).unwrap(), &h, b"{}", effect, "X").class
        };
        assert_eq!(
            class(429, Effect::Creates),
            FailureClass::Retryable { retry_after: None }
        );
        assert_eq!(class(400, Effect::Creates), FailureClass::Permanent);
        assert_eq!(class(503, Effect::Creates), FailureClass::Ambiguous);
        assert!(matches!(
            class(503, Effect::Repeatable),
            FailureClass::Retryable { .. }
        ));
        let e = status_error(StatusCode::UNAUTHORIZED, &h, b"nope", Effect::Creates, "X");
        assert_eq!(
            (e.code.as_str(), e.platform_error.as_deref()),
            (TOKEN_INVALID, Some("nope"))
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let mut h = HeaderMap::new();
        let reset = chrono::Utc::now().timestamp() + 60;
        h.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d >= Duration::from_secs(58) && d <= Duration::from_secs(60),
            "{d:?}"
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn kept_answers_never_hold_tokens() {
        let e = status_error(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            br#"{"access_token":"SECRET-1","refresh_token":"SECRET-2","note":"echo"}"#,
            Effect::Repeatable,
            "X",
        );
        let kept = e.platform_error.unwrap();
        assert!(!kept.contains("SECRET") && kept.contains("echo"), "{kept}");
        let e = parse_json::<Vec<String>>(
            br#"{"access_token":"SECRET-1","expires_in":"soon"}"#,
            Effect::Repeatable,
            "X",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "X answered in a form this server does not understand: the answer: expected a \
             sequence, found a map"
        );
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("SECRET") && shown.contains("soon"),
            "{shown}"
        );
    }

    #[test]
    fn long_platform_answers_are_cut() {
        let long = "é".repeat(3000);
        let cut = platform_text(long.as_bytes());
        assert!(cut.len() <= PLATFORM_ERROR_MAX + 3 && cut.ends_with('…'));
    }
}
