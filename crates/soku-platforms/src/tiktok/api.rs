//! TikTok's v2 API envelope, its error codes as failure classes, and the two reads every post
//! needs: the creator's info and a publish's status.

use super::PLATFORM;
use crate::http::{self, Effect};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use soku_core::connector::{FailureClass, PublishError, TOKEN_INVALID};
use std::time::Duration;

/// "Request rate calculation is based on a one minute sliding window"
/// (<https://developers.tiktok.com/doc/tiktok-api-v2-rate-limit>): without a `Retry-After`, a
/// 429 waits a minute.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The daily caps (posts per creator, creators per app) are counted over 24 hours
/// (<https://developers.tiktok.com/doc/content-sharing-guidelines>): the engine tries again
/// after an hour, within its bound on retries.
pub const DAILY_CAP_WAIT: Duration = Duration::from_secs(3600);

/// `{"data": {...}, "error": {"code", "message", "log_id"}}`
/// (<https://developers.tiktok.com/doc/tiktok-api-v2-error-handling>).
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize, Default, Debug, Clone)]
pub struct ApiError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The error object of an answer, when it has one.
pub fn parse_error(body: &[u8]) -> Option<ApiError> {
    serde_json::from_slice::<Envelope>(body).ok()?.error
}

/// One Content Posting call: `data` read as `T` when `error.code` is `ok` ("Any code other than
/// `ok` indicates the request did not succeed", whatever the HTTP status: `creator_info`
/// answers its caps with "200 (intentional)"), else the failure it stands for.
pub async fn call<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    effect: Effect,
) -> Result<T, PublishError> {
    let response = http::send(request, effect, PLATFORM).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| http::transport_error(&e, effect, PLATFORM))?;
    let envelope = serde_json::from_slice::<Envelope>(&body).ok();
    let ok = envelope
        .as_ref()
        .and_then(|e| e.error.as_ref())
        .is_some_and(|e| e.code == "ok");
    if status.is_success() && ok {
        let data = envelope.and_then(|e| e.data).unwrap_or(Value::Null);
        return serde_json::from_value(data).map_err(|e| unexpected(effect, &body, &e.to_string()));
    }
    if status.is_success() && envelope.as_ref().and_then(|e| e.error.as_ref()).is_none() {
        return Err(unexpected(effect, &body, "no error object"));
    }
    Err(classify(status, &headers, &body, effect))
}

/// A 2xx answer that cannot be read: ambiguous for a call that may create a post.
fn unexpected(effect: Effect, body: &[u8], why: &str) -> PublishError {
    PublishError::new(
        match effect {
            Effect::Creates => FailureClass::Ambiguous,
            Effect::Repeatable => FailureClass::Retryable { retry_after: None },
        },
        "unexpected_response",
        format!("{PLATFORM} answered in a form this server does not understand: {why}"),
    )
    .with_platform_error(http::platform_text(body))
}

/// The failure an answer stands for, from its `error.code` (the tables of
/// <https://developers.tiktok.com/doc/content-posting-api-reference-direct-post>,
/// `...-photo-post`, `...-query-creator-info`, `...-get-video-status` and
/// <https://developers.tiktok.com/doc/tiktok-api-v2-error-handling>):
/// - `access_token_invalid` ("The access_token is invalid or has expired"): `token_invalid`;
/// - `scope_not_authorized` ("The user did not authorize the scope required ... Please ask the
///   user to authorize and then retry"), `scope_permission_missed` (the token lacks a scope):
///   `token_invalid` too, so the engine refreshes the token or, when the refresh cannot grant
///   `video.publish` back, flags the account for reconnecting;
/// - `rate_limit_exceeded`: retryable after `Retry-After`, else a minute;
/// - `spam_risk_too_many_posts` ("The daily post cap from the API is reached for the current
///   user"), `reached_active_user_cap` ("The daily quota for active publishing users from your
///   client is reached"), `spam_risk_too_many_pending_share`: retryable after an hour;
/// - `spam_risk_user_banned_from_posting`: permanent `blocked`;
/// - `unaudited_client_can_only_post_to_private_accounts`: permanent `app_not_audited`;
/// - `url_ownership_unverified`: permanent, the operator has to verify the media's domain;
/// - `privacy_level_option_mismatch`: permanent `privacy_level_not_allowed`;
/// - `invalid_param(s)`, `app_version_check_failed` and other 4xx: permanent `rejected`;
/// - `internal_error` and 5xx: ambiguous for a call that may create a post, retryable otherwise.
pub fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    effect: Effect,
) -> PublishError {
    let raw = http::platform_text(body);
    let err = parse_error(body).unwrap_or_default();
    let said = if err.message.is_empty() {
        String::new()
    } else {
        format!(": {}", err.message.chars().take(300).collect::<String>())
    };
    let permanent =
        |code: &str, message: String| PublishError::new(FailureClass::Permanent, code, message);
    let e = match err.code.as_str() {
        "access_token_invalid" => permanent(
            TOKEN_INVALID,
            format!("{PLATFORM} no longer accepts this account's access token{said}"),
        ),
        "scope_not_authorized" | "scope_permission_missed" => permanent(
            TOKEN_INVALID,
            format!(
                "{PLATFORM} has not granted this app permission to post for this account \
                 (video.publish); reconnect the account and allow posting{said}"
            ),
        ),
        "rate_limit_exceeded" => PublishError::new(
            FailureClass::Retryable {
                retry_after: Some(http::retry_after(headers).unwrap_or(RATE_LIMIT_WAIT)),
            },
            "rate_limited",
            format!("{PLATFORM} is rate limiting this account{said}"),
        ),
        "spam_risk_too_many_posts" | "spam_risk_too_many_pending_share" => PublishError::new(
            FailureClass::Retryable {
                retry_after: Some(DAILY_CAP_WAIT),
            },
            "daily_post_cap",
            format!(
                "{PLATFORM}'s daily cap of posts through its API is reached for this account \
                 ({}); the post will be tried again later",
                err.code
            ),
        ),
        "reached_active_user_cap" => PublishError::new(
            FailureClass::Retryable {
                retry_after: Some(DAILY_CAP_WAIT),
            },
            "app_user_cap",
            format!(
                "{PLATFORM}'s daily quota of creators posting through this server's app is \
                 reached (reached_active_user_cap; unaudited apps: 5 creators a day); the post \
                 will be tried again later"
            ),
        ),
        "spam_risk_user_banned_from_posting" => permanent(
            "blocked",
            format!("{PLATFORM} has banned this account from making new posts{said}"),
        ),
        "unaudited_client_can_only_post_to_private_accounts" => permanent(
            "app_not_audited",
            format!(
                "This server's {PLATFORM} app has not passed TikTok's Content Posting audit: an \
                 unaudited app may only post to private accounts, and only as SELF_ONLY. Make \
                 the TikTok account private, or have the app audited{said}"
            ),
        ),
        "url_ownership_unverified" => permanent(
            "url_ownership_unverified",
            format!(
                "{PLATFORM} pulls photos from their URL, and only from a domain or URL prefix \
                 verified for the app: the server's operator must verify this server's media \
                 URL prefix in the TikTok developer portal (URL properties){said}"
            ),
        ),
        "privacy_level_option_mismatch" => permanent(
            "privacy_level_not_allowed",
            format!(
                "{PLATFORM} refused the post's privacy level: it must be one of the account's \
                 privacy_level_options{said}"
            ),
        ),
        "invalid_file_upload" => permanent(
            "unsupported_media",
            format!("{PLATFORM} refused the uploaded file{said}"),
        ),
        "invalid_publish_id" | "token_not_authorized_for_specified_publish_id" => permanent(
            "publish_not_found",
            format!(
                "{PLATFORM} does not know this post's publish_id ({}){said}",
                err.code
            ),
        ),
        "internal_error" => http::status_error(
            if status.is_server_error() {
                status
            } else {
                reqwest::StatusCode::INTERNAL_SERVER_ERROR
            },
            headers,
            body,
            effect,
            PLATFORM,
        ),
        code if !code.is_empty() && status.as_u16() != 429 && !status.is_server_error() => {
            permanent(
                "rejected",
                format!("{PLATFORM} refused the request ({code}){said}"),
            )
        }
        _ => return http::status_error(status, headers, body, effect, PLATFORM),
    };
    e.with_platform_error(raw)
}

/// `POST /v2/post/publish/creator_info/query/`
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-query-creator-info>).
#[derive(Deserialize, Debug, Clone, Default)]
pub struct CreatorInfo {
    /// "The unique ID of the TikTok creator." (the handle).
    #[serde(default)]
    pub creator_username: Option<String>,
    #[serde(default)]
    pub creator_nickname: Option<String>,
    #[serde(default)]
    pub privacy_level_options: Vec<String>,
    #[serde(default)]
    pub comment_disabled: bool,
    #[serde(default)]
    pub duet_disabled: bool,
    #[serde(default)]
    pub stitch_disabled: bool,
    #[serde(default)]
    pub max_video_post_duration_sec: Option<u64>,
}

/// `POST /v2/post/publish/status/fetch/`
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-get-video-status>).
#[derive(Deserialize, Debug, Clone, Default)]
pub struct PublishStatus {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub fail_reason: Option<String>,
    /// (sic) `list<int64>`: "returned only if the post is published for public viewership and
    /// has been approved by the TikTok moderation process."
    #[serde(default)]
    pub publicaly_available_post_id: Vec<Value>,
    /// "The number of bytes uploaded (1-indexed) for `FILE_UPLOAD`".
    #[serde(default)]
    pub uploaded_bytes: Option<u64>,
    /// The answer as TikTok sent it.
    #[serde(skip)]
    pub raw: String,
}

impl PublishStatus {
    /// The public post's id, when TikTok gave one.
    pub fn post_id(&self) -> Option<String> {
        self.publicaly_available_post_id
            .iter()
            .find_map(|v| match v {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
    }
}

/// `POST` to a Content Posting endpoint with the account's bearer token and the documented
/// `Content-Type: application/json; charset=UTF-8`.
pub fn post(
    client: &reqwest::Client,
    api_url: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::RequestBuilder {
    let r = client
        .post(format!("{api_url}{path}"))
        .bearer_auth(token)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=UTF-8",
        );
    match body {
        Some(b) => r.body(b.to_string()),
        None => r,
    }
}

pub async fn creator_info(
    client: &reqwest::Client,
    api_url: &str,
    token: &str,
) -> Result<CreatorInfo, PublishError> {
    call(
        post(
            client,
            api_url,
            "/v2/post/publish/creator_info/query/",
            token,
            None,
        ),
        Effect::Repeatable,
    )
    .await
}

/// The publish's status, or `None` when TikTok says the `publish_id` does not exist.
pub async fn status(
    client: &reqwest::Client,
    api_url: &str,
    token: &str,
    publish_id: &str,
) -> Result<Option<PublishStatus>, PublishError> {
    let body = serde_json::json!({ "publish_id": publish_id });
    let request = post(
        client,
        api_url,
        "/v2/post/publish/status/fetch/",
        token,
        Some(&body),
    );
    let response = http::send(request, Effect::Repeatable, PLATFORM).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| http::transport_error(&e, Effect::Repeatable, PLATFORM))?;
    if parse_error(&bytes).is_some_and(|e| e.code == "invalid_publish_id") {
        return Ok(None);
    }
    let envelope = serde_json::from_slice::<Envelope>(&bytes).ok();
    let ok = envelope
        .as_ref()
        .and_then(|e| e.error.as_ref())
        .is_some_and(|e| e.code == "ok");
    if !(status.is_success() && ok) {
        return Err(classify(status, &headers, &bytes, Effect::Repeatable));
    }
    let data = envelope.and_then(|e| e.data).unwrap_or(Value::Null);
    let mut parsed: PublishStatus = serde_json::from_value(data)
        .ok()
        .filter(|s: &PublishStatus| !s.status.is_empty())
        .ok_or_else(|| {
            PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                format!("{PLATFORM} answered the status request in an unexpected form."),
            )
            .with_platform_error(http::platform_text(&bytes))
        })?;
    parsed.raw = http::platform_text(&bytes);
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    fn body(code: &str) -> Vec<u8> {
        json!({"data": {}, "error": {"code": code, "message": "m", "log_id": "x"}})
            .to_string()
            .into_bytes()
    }

    fn c(status: u16, code: &str, effect: Effect) -> PublishError {
        classify(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            &body(code),
            effect,
        )
    }

    #[test]
    fn error_codes_classify() {
        let e = c(401, "access_token_invalid", Effect::Creates);
        assert_eq!(
            (e.code.as_str(), e.class),
            (TOKEN_INVALID, FailureClass::Permanent)
        );
        assert_eq!(
            c(401, "scope_not_authorized", Effect::Creates).code,
            TOKEN_INVALID
        );
        assert_eq!(
            c(401, "scope_permission_missed", Effect::Repeatable).code,
            TOKEN_INVALID
        );
        assert_eq!(
            c(429, "rate_limit_exceeded", Effect::Creates).class,
            FailureClass::Retryable {
                retry_after: Some(RATE_LIMIT_WAIT)
            }
        );
        // Caps come with 200 from creator_info and 403 from the inits.
        for status in [200, 403] {
            let e = c(status, "spam_risk_too_many_posts", Effect::Creates);
            assert_eq!(
                (e.code.as_str(), e.class),
                (
                    "daily_post_cap",
                    FailureClass::Retryable {
                        retry_after: Some(DAILY_CAP_WAIT)
                    }
                )
            );
        }
        assert_eq!(
            c(200, "reached_active_user_cap", Effect::Repeatable).code,
            "app_user_cap"
        );
        assert_eq!(
            c(403, "spam_risk_user_banned_from_posting", Effect::Creates).code,
            "blocked"
        );
        let e = c(
            403,
            "unaudited_client_can_only_post_to_private_accounts",
            Effect::Creates,
        );
        assert_eq!(
            (e.code.as_str(), e.class),
            ("app_not_audited", FailureClass::Permanent)
        );
        assert_eq!(
            c(403, "url_ownership_unverified", Effect::Creates).code,
            "url_ownership_unverified"
        );
        assert_eq!(
            c(403, "privacy_level_option_mismatch", Effect::Creates).code,
            "privacy_level_not_allowed"
        );
        assert_eq!(c(400, "invalid_param", Effect::Creates).code, "rejected");
        assert_eq!(
            c(500, "internal_error", Effect::Creates).class,
            FailureClass::Ambiguous
        );
        assert!(matches!(
            c(503, "internal_error", Effect::Repeatable).class,
            FailureClass::Retryable { .. }
        ));
        // No envelope at all: HTTP's own reading.
        let e = classify(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>",
            Effect::Creates,
        );
        assert_eq!(e.class, FailureClass::Ambiguous);
    }

    #[test]
    fn post_ids_are_read_as_numbers_or_strings() {
        let s: PublishStatus = serde_json::from_value(json!({"status": "PUBLISH_COMPLETE",
            "publicaly_available_post_id": [7312345678901234567u64]}))
        .unwrap();
        assert_eq!(s.post_id().as_deref(), Some("7312345678901234567"));
        let s: PublishStatus =
            serde_json::from_value(json!({"status": "PUBLISH_COMPLETE"})).unwrap();
        assert_eq!(s.post_id(), None);
    }
}
