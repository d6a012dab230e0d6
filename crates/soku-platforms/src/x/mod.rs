//! X (formerly Twitter), through the X API v2.
//!
//! ## Connecting (OAuth 2.0 Authorization Code Flow with PKCE)
//! Documented at <https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/authorization-code>
//! and `.../oauth-2-0/user-access-token`.
//! - The user is sent to the authorization page (`settings.auth_url`, default
//!   [`DEFAULT_AUTH_URL`]) with `response_type=code`, `client_id`, `redirect_uri`, `scope`
//!   ([`SCOPES`], space separated), `state`, `code_challenge` and `code_challenge_method=S256`.
//! - The callback's code is traded at `POST {api_url}/2/oauth2/token`
//!   (`application/x-www-form-urlencoded`: `grant_type=authorization_code`, `code`,
//!   `redirect_uri`, `code_verifier`, `client_id`). A confidential client (a client secret is
//!   configured) authenticates with HTTP Basic `client_id:client_secret`, as the docs require.
//! - The answer holds `access_token` (valid two hours, `expires_in`), `refresh_token` (issued for
//!   the `offline.access` scope) and `scope`. `GET /2/users/me` then names the account: its `id`
//!   is the account id, `username` the handle (also kept in `meta.username` for post URLs).
//! - Refreshing is `grant_type=refresh_token` at the same endpoint. X rotates refresh tokens: the
//!   answer carries a new one and the old one stops working. X refuses a spent, revoked or unknown
//!   refresh token with `400 {"error":"invalid_request","error_description":"Value passed for
//!   the token was invalid."}`: that is `Rejected` (the account needs reconnecting). A 401 at the
//!   token endpoint means X refused this server's client credentials: `NotConfigured`.
//!
//! ## Publishing
//! - Images are fetched through the [`MediaSource`] and uploaded with the v2 chunked media upload
//!   (<https://docs.x.com/x-api/media/quickstart/media-upload-chunked>, the recommended form for
//!   images, GIFs and videos; the one-shot `POST /2/media/upload` is the legacy, images-only form):
//!   `POST /2/media/upload/initialize` (JSON `media_type`, `total_bytes`, `media_category`
//!   `tweet_image` or `tweet_gif`) → `data.id`; `POST /2/media/upload/{id}/append`
//!   (multipart `segment_index`, `media`) per chunk of at most 4 MiB;
//!   `POST /2/media/upload/{id}/finalize`; and, only when the answer holds `processing_info`,
//!   `GET /2/media/upload?command=STATUS&media_id={id}` until `succeeded` (or `failed`).
//! - Limits (<https://docs.x.com/x-api/media/introduction>, best practices): up to 4 images, or one
//!   animated GIF alone; JPEG, PNG and WebP up to 5 MB, GIF up to 15 MB. Types come from the bytes.
//! - The post: `POST /2/tweets` with JSON `{"text", "media": {"media_ids": [...]}}` → `201
//!   {"data": {"id", "text"}}` (<https://docs.x.com/x-api/posts/manage-tweets/quickstart>). Its
//!   URL is `https://x.com/{username}/status/{id}` (`https://x.com/i/web/status/{id}` when the
//!   handle is unknown).
//! - A video (`content.video_url`, one video alone in a post) goes through the same chunked
//!   upload with `media_category` `tweet_video` (<https://docs.x.com/x-api/media/quickstart/best-practices>:
//!   "Use `tweet_video` for a regular Post"). It is never held whole: [`MediaSource::stream`]
//!   reads it and each APPEND carries one segment of [`CHUNK_BYTES`] (X takes at most 5 MB per
//!   segment; `segment_index` from 0, in order). Types MP4, QuickTime and WebM (the INIT
//!   reference's `media_type` values that the server hosts, as the submission check takes them),
//!   up to [`VIDEO_MAX_BYTES`] (the best-practices page as the submission check reads it: 512 MB,
//!   0.5 to 140 s; a later revision of that page allows Post video up to 8 GB and 20 minutes, 16 GB
//!   and 125 minutes for Premium accounts, beyond what the server hosts). FINALIZE answers with `processing_info`; the connector then polls
//!   `GET /2/media/upload?command=STATUS&media_id={id}`
//!   (<https://docs.x.com/x-api/media/get-media-upload-status>), sleeping `check_after_secs`
//!   (1 to 30 s) between polls, until `state` is `succeeded` (`pending` → `in_progress` →
//!   `succeeded` | `failed`), at most [`VIDEO_PROCESSING_MAX`] per attempt
//!   ([`X::with_video_processing_wait`]). `failed` is `Permanent` `media_processing_failed`, X's
//!   `processing_info.error.message` (the STATUS reference's example: `{"code":1,
//!   "name":"InvalidMedia","message":"Unsupported video format"}`) kept as the platform error.
//!   Still processing when the wait ends is `Retryable` (after `check_after_secs`).
//! - A video is uploaded once per target. The attempt saves its progress
//!   ([`soku_core::connector::Progress`]) after INIT (`{"video_url", "media_id", "uploaded":
//!   false}`) and after FINALIZE (`"uploaded": true` and `expires_at`, from FINALIZE's
//!   `expires_after_secs`). An attempt that finds a finalized, unexpired media id for the same
//!   video asks STATUS about it and waits for it instead of uploading again; when X no longer
//!   knows the id (400 or 404 on STATUS) or it has expired, the video is uploaded again. An upload
//!   cut before FINALIZE starts over with a new INIT.
//!
//! ## Failures
//! `http.rs`'s classes (the create call is `Effect::Creates`, uploads and reads `Repeatable`),
//! refined with X's problem bodies (`{"title","detail","type","status"}` or
//! `{"errors":[{"message"}]}`): a 403 "You are not allowed to create a Tweet with duplicate
//! content." is `Permanent` `duplicate_content` (the engine reads it as a sign that an earlier
//! attempt published when one may have: it reconciles then, see "Reconciliation"); "Your Tweet
//! text is too long." is `Permanent`
//! `text_too_long`; a 400 during upload is `media_rejected`; 401 is `token_invalid`.
//!
//! ## Rate limits and the daily caps
//! X's rate-limit page (<https://docs.x.com/x-api/fundamentals/rate-limits>) counts in windows of
//! "usually 15 minutes or 24 hours": `POST /2/tweets` allows 100 per user per 15 minutes and 10,000
//! per app per 24 hours (some access tiers also cap a user's posts per 24 hours). Over a limit X
//! answers 429 (the page shows `{"errors":[{"code":88,"message":"Rate limit exceeded"}]}`; the wait
//! is read from the headers, not the body). The page documents only the 15-minute window's headers,
//! `x-rate-limit-limit`, `-remaining` and `-reset` (Unix seconds). On `POST /2/tweets` X also sends
//! the 24-hour windows' headers, `x-user-limit-24hour-limit` / `-remaining` / `-reset` (this
//! account) and `x-app-limit-24hour-limit` / `-remaining` / `-reset` (this server's X app, shared
//! by all its accounts), in the same units; they are not on the page, but they are what X answers
//! with (client libraries that handle the daily cap read them, e.g. `x-api-sdk-ts`). A 429 waits
//! for the latest reset X announces among the windows that are used up, those whose `-remaining` is
//! `0` (or not given): the 15-minute one (`Retry-After` or `x-rate-limit-reset`) and each 24-hour
//! one. A window with requests left did not refuse us and is not waited for (when all say so, the
//! 15-minute reset is). A daily window resets within 24 hours, so a reset announced further ahead
//! (a clock off by a day, a malformed header) is read as [`DAILY_WINDOW`]. The message of a daily
//! cap names the window and the time it resets, so the target's error says when the post can go
//! out.
//!
//! ## Reconciliation
//! X offers no idempotency key on `POST /2/tweets`. After an ambiguous failure, `find_existing`
//! reads the account's own timeline, `GET /2/users/{id}/tweets`
//! (<https://docs.x.com/x-api/posts/user-posts-timeline-by-user-id>) with `start_time` =
//! `not_before` minus a minute (second granularity, `YYYY-MM-DDTHH:mm:ssZ`),
//! `exclude=replies,retweets`, `max_results=100`, the fields `created_at,attachments`, paging
//! with `pagination_token` (at most [`RECONCILE_MAX_PAGES`] pages, else `CannotTell`). A post
//! matches when its text equals ours (after undoing what X does to text: `&`, `<`, `>`
//! HTML-escaped, links wrapped as `t.co` URLs, a trailing `t.co` link to attached media) and it
//! holds as many `attachments.media_keys` as we sent images. The oldest match is `Found`; none is
//! `NotFound`; a failed lookup is an `Err`.
//!
//! X's timeline may list a post only a while after X made it. So a `NotFound` right after a
//! timeout is not the last word: the engine keeps the target in flight, looks again at the next
//! attempt before posting anew, and, when X refuses that new post as duplicate content, looks
//! again rather than failing the target (it ends `unknown` if the budget of attempts runs out
//! first).
//!
//! The fields parameter has two names. X's fields guide
//! (<https://docs.x.com/x-api/fundamentals/fields>) and its OpenAPI description up to v2.159 name
//! it `tweet.fields`; X's published OpenAPI description v2.167 (as X keeps it in
//! `github.com/xdevplatform/xdk`, `specs/openapi.json`) names it `post.fields`
//! (`PostFieldsParameter`, with the same values for the two fields read here). X refuses a query
//! parameter it does not know with a 400 naming it, so the lookup sends [`FIELDS_PARAMETERS`]`[0]`
//! first and, when X refuses that name, the other one; the name X accepted is kept for the
//! connector's later lookups.

mod media;

use crate::PlatformSettings;
use crate::http::{self, Effect};
use crate::media::{Media, MediaLimits, MediaSource, MediaStream};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectErrorKind, ConnectMethod, ConnectedAccount, Connector, DUPLICATE_CONTENT, Existing,
    FailureClass, PublishError, PublishRequest, PublishedPost, TokenSet,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The X API's base URL (`SOKU_X_API_URL`).
pub const DEFAULT_API_URL: &str = "https://api.x.com";
/// The authorization page, as a full URL (`SOKU_X_AUTH_URL`).
pub const DEFAULT_AUTH_URL: &str = "https://x.com/i/oauth2/authorize";
/// The scopes asked for: read and write posts, read the user, a refresh token, upload media.
pub const SCOPES: &str = "tweet.read tweet.write users.read offline.access media.write";
/// Images in one post.
pub const MAX_IMAGES: usize = 4;
/// JPEG, PNG and WebP images.
pub const IMAGE_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// Animated GIFs.
pub const GIF_MAX_BYTES: u64 = 15 * 1024 * 1024;
/// Videos (best practices: "File size: must not exceed 512 mb").
pub const VIDEO_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// The longest one attempt waits for X to process a video; the next attempt resumes the wait.
pub const VIDEO_PROCESSING_MAX: Duration = Duration::from_secs(10 * 60);
/// Bytes per APPEND segment (the docs cap a segment at 5 MB).
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Pages of the timeline `find_existing` reads before it gives up (`CannotTell`).
pub const RECONCILE_MAX_PAGES: usize = 5;
/// The names of the timeline's fields parameter: X's fields guide's first, then the published
/// OpenAPI description's (v2.167).
pub const FIELDS_PARAMETERS: [&str; 2] = ["tweet.fields", "post.fields"];
/// The length of X's daily windows, and the longest a 429 makes a post wait.
pub const DAILY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// How long an access token whose answer gives no `expires_in` is taken to live: X's "valid two
/// hours".
pub const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);

const PLATFORM: &str = "X";
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
/// The video types X takes that the server hosts.
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];
/// The longest sleep between two STATUS polls of a video, whatever `check_after_secs` says.
const VIDEO_POLL_MAX: Duration = Duration::from_secs(30);
/// How far before `not_before` reconciliation looks (clock skew between us and X).
const RECONCILE_SKEW: chrono::Duration = chrono::Duration::seconds(60);
/// The longest wait for X to process an uploaded GIF.
const PROCESSING_MAX: Duration = Duration::from_secs(120);
/// The 24-hour windows X reports on `POST /2/tweets`: who they count, and their headers.
const DAILY_LIMITS: [(Daily, &str, &str); 2] = [
    (
        Daily::User,
        "x-user-limit-24hour-remaining",
        "x-user-limit-24hour-reset",
    ),
    (
        Daily::App,
        "x-app-limit-24hour-remaining",
        "x-app-limit-24hour-reset",
    ),
];

pub struct X {
    settings: PlatformSettings,
    http: reqwest::Client,
    media: Arc<dyn MediaSource>,
    /// The index in [`FIELDS_PARAMETERS`] of the name X last accepted.
    fields_parameter: AtomicUsize,
    /// The longest one attempt waits for a video's processing.
    video_wait: Duration,
}

impl std::fmt::Debug for X {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct Me {
    id: String,
    username: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Timeline {
    #[serde(default)]
    data: Option<Vec<Tweet>>,
    #[serde(default)]
    meta: Option<TimelineMeta>,
    #[serde(default)]
    errors: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct TimelineMeta {
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct Tweet {
    id: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    attachments: Option<Attachments>,
}

#[derive(Deserialize)]
struct Attachments {
    #[serde(default)]
    media_keys: Vec<String>,
}

/// X's error bodies: an RFC 7807 problem, possibly with `errors`.
#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    errors: Vec<ProblemItem>,
}

#[derive(Deserialize, Default)]
struct ProblemItem {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl Problem {
    /// Every human sentence in the body, joined.
    fn text(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        parts.extend(self.detail.as_deref());
        for e in &self.errors {
            parts.extend(e.message.as_deref());
            parts.extend(e.detail.as_deref());
        }
        if parts.is_empty() {
            parts.extend(self.title.as_deref());
        }
        parts.join(" ")
    }
}

impl X {
    pub fn new(settings: PlatformSettings, media: Arc<dyn MediaSource>) -> Self {
        let http = http::api_client(settings.timeout);
        Self {
            settings,
            http,
            media,
            fields_parameter: AtomicUsize::new(0),
            video_wait: VIDEO_PROCESSING_MAX,
        }
    }

    /// The longest one attempt waits for X to process a video ([`VIDEO_PROCESSING_MAX`] unless
    /// set; tests set less).
    pub fn with_video_processing_wait(mut self, wait: Duration) -> Self {
        self.video_wait = wait;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.api_url.trim_end_matches('/'))
    }

    fn client_id(&self) -> Result<&str, ConnectError> {
        self.settings.client_id.as_deref().ok_or_else(|| {
            ConnectError::new(
                ConnectErrorKind::NotConfigured,
                "X is not configured on this server (SOKU_X_CLIENT_ID is missing).",
            )
        })
    }

    /// A call to the token endpoint: the form plus client authentication.
    async fn token_call(&self, form: &[(&str, &str)]) -> Result<TokenSet, ConnectError> {
        let client_id = self.client_id()?;
        let mut form = form.to_vec();
        form.push(("client_id", client_id));
        let mut request = self.http.post(self.url("/2/oauth2/token")).form(&form);
        if let Some(secret) = self
            .settings
            .client_secret
            .as_ref()
            .map(|s| s.expose().as_str())
        {
            request = request.basic_auth(client_id, Some(secret));
        }
        let response = request
            .send()
            .await
            .map_err(|e| http::connect_unavailable(&e, "X"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::connect_unavailable(&e, "X"))?;
        if !status.is_success() {
            return Err(token_error(status.as_u16(), &body));
        }
        // The shared reading of RFC 6749 §5.1: a misfit is named by its field, never quoted.
        let answer = crate::oauth::token_answer(&body, "X")?;
        let posts = answer
            .scope
            .as_deref()
            .is_none_or(|scope| scope.split_whitespace().any(|s| s == "tweet.write"));
        let tokens = answer.into_token_set(ASSUMED_TOKEN_LIFETIME);
        if !posts {
            // On a refresh the old refresh token is spent: the new tokens go with the refusal.
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "The X authorization did not grant posting (tweet.write); connect the account again and allow it.",
            )
            .with_issued(tokens));
        }
        Ok(tokens)
    }

    async fn me(&self, access_token: &str) -> Result<Me, ConnectError> {
        let response = self
            .http
            .get(self.url("/2/users/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| http::connect_unavailable(&e, "X"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::connect_unavailable(&e, "X"))?;
        if !status.is_success() {
            let kind = match status.as_u16() {
                429 | 500..=599 => ConnectErrorKind::Unavailable,
                _ => ConnectErrorKind::Rejected,
            };
            return Err(ConnectError::new(
                kind,
                format!("X did not say whose account this is ({status})."),
            )
            .with_platform_error(http::platform_text(&body)));
        }
        let me: Data<Me> = serde_json::from_slice(&body).map_err(|_| {
            ConnectError::new(
                ConnectErrorKind::Unavailable,
                "X answered GET /2/users/me in a form this server does not understand.",
            )
            .with_platform_error(http::platform_text(&body))
        })?;
        Ok(me.data)
    }

    /// The body of a response, or the failure its status stands for.
    async fn read_raw(
        &self,
        response: reqwest::Response,
        effect: Effect,
    ) -> Result<Vec<u8>, PublishError> {
        let (_, body) = http::read_with(response, effect, PLATFORM, classify).await?;
        Ok(body)
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        effect: Effect,
    ) -> Result<T, PublishError> {
        let body = self.read_raw(response, effect).await?;
        http::parse_json(&body, effect, PLATFORM)
    }

    fn post_url(&self, account: &AccountCredentials, id: &str) -> String {
        match username(account) {
            Some(name) => format!("https://x.com/{name}/status/{id}"),
            None => format!("https://x.com/i/web/status/{id}"),
        }
    }
}

fn username(account: &AccountCredentials) -> Option<String> {
    account
        .username
        .clone()
        .or_else(|| {
            account
                .meta
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .map(|u| u.trim_start_matches('@').to_owned())
        .filter(|u| !u.is_empty())
}

fn post_text(request: &PublishRequest) -> Option<&str> {
    request.content.text.as_deref().filter(|t| !t.is_empty())
}

/// The token endpoint's refusals (RFC 6749 errors).
fn token_error(status: u16, body: &[u8]) -> ConnectError {
    let e: OAuthError = serde_json::from_slice(body).unwrap_or_default();
    let raw = http::platform_text(body);
    let kind = match status {
        429 | 500..=599 => ConnectErrorKind::Unavailable,
        401 => ConnectErrorKind::NotConfigured,
        _ if e.error == "invalid_client" || e.error == "unauthorized_client" => {
            ConnectErrorKind::NotConfigured
        }
        _ => ConnectErrorKind::Rejected,
    };
    let message = match kind {
        ConnectErrorKind::Unavailable => format!("X's token endpoint failed ({status})."),
        ConnectErrorKind::NotConfigured => {
            "X refused this server's client credentials (SOKU_X_CLIENT_ID / SOKU_X_CLIENT_SECRET)."
                .to_owned()
        }
        _ if e.error_description.is_empty() => {
            format!("X refused the authorization grant ({}).", e.error)
        }
        _ => format!("X refused the authorization grant: {}", e.error_description),
    };
    ConnectError::new(kind, message).with_platform_error(raw)
}

/// `http.rs`'s classes, refined with what X's problem body says.
fn classify(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    effect: Effect,
) -> PublishError {
    let mut e = http::status_error(status, headers, body, effect, PLATFORM);
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let now = chrono::Utc::now();
        let (retry_after, daily) = rate_limit_wait(headers, now);
        e.class = FailureClass::Retryable { retry_after };
        if let Some((who, wait)) = daily {
            let at = (now + chrono::Duration::from_std(wait).unwrap_or_default())
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            e.message = match who {
                Daily::User => format!(
                    "X's 24-hour limit for this account is used up; the post waits until it resets at {at}."
                ),
                Daily::App => format!(
                    "X's 24-hour limit for this server's X app (shared by all its accounts) is used up; the post waits until it resets at {at}."
                ),
            };
        }
        return e;
    }
    let problem: Problem = serde_json::from_slice(body).unwrap_or_default();
    let said = problem.text();
    let lower = said.to_ascii_lowercase();
    match status.as_u16() {
        403 if lower.contains("duplicate content") => {
            e.code = DUPLICATE_CONTENT.into();
            e.message = "X refused the post: the account already posted the same text.".into();
        }
        400 | 403 if lower.contains("too long") => {
            e.code = "text_too_long".into();
            e.message = "X refused the post: the text is too long.".into();
        }
        400..=499 if status.as_u16() != 401 && status.as_u16() != 429 && !said.is_empty() => {
            e.message = format!("X refused the request ({}): {said}", status.as_u16());
        }
        _ => {}
    }
    e
}

/// Whose 24-hour window X reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Daily {
    /// The account's own.
    User,
    /// This server's X app's, shared by all its accounts.
    App,
}

/// How long a 429 makes the post wait, at most [`DAILY_WINDOW`]: the latest reset among the
/// windows that are used up (`-remaining` is `0` or not given), the 15-minute one read as
/// `Retry-After` or `x-rate-limit-reset`; and the 24-hour window it waits for, when that is the
/// latest. When every window says it has requests left, the 15-minute reset.
fn rate_limit_wait(
    headers: &reqwest::header::HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> (Option<Duration>, Option<(Daily, Duration)>) {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // A window with requests left is not the one that refused this request.
    let used_up = |remaining: &str| {
        get(remaining)
            .and_then(|v| v.parse::<u64>().ok())
            .is_none_or(|n| n == 0)
    };
    let window = http::retry_after(headers).map(|d| d.min(DAILY_WINDOW));
    let mut daily: Option<(Daily, Duration)> = None;
    for (who, remaining, reset) in DAILY_LIMITS {
        let Some(reset) = get(reset).and_then(|v| v.parse::<i64>().ok()) else {
            continue;
        };
        if !used_up(remaining) {
            continue;
        }
        let secs = (reset - now.timestamp()).clamp(0, DAILY_WINDOW.as_secs() as i64);
        let wait = Duration::from_secs(secs as u64);
        if daily.is_none_or(|(_, latest)| wait > latest) {
            daily = Some((who, wait));
        }
    }
    let window_used_up = get("retry-after").is_some() || used_up("x-rate-limit-remaining");
    match daily {
        Some((_, wait)) if !window_used_up || window.is_none_or(|w| wait > w) => {
            (Some(wait), daily)
        }
        _ => (window, None),
    }
}

/// Whether X's 400 refuses the query parameter `name` (X names an unknown parameter in
/// `errors[].parameters` and as `[name]` in the message).
fn refuses_parameter(body: &[u8], name: &str) -> bool {
    let Ok(problem) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let quoted = format!("[{name}]");
    problem
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|e| {
            e.get("parameters").and_then(|p| p.get(name)).is_some()
                || e.get("message")
                    .and_then(Value::as_str)
                    .is_some_and(|m| m.contains(&quoted))
        })
}

/// X's own check of a post's media before any call: up to 4 images, or one video alone. The
/// video's URL when the post is a video post.
fn check_media(content: &soku_core::posts::PostContent) -> Result<Option<&str>, PublishError> {
    let is_video =
        content.media_type == soku_core::posts::MediaType::Video || content.video_url.is_some();
    if !is_video {
        crate::media::check_images_only(content, "X", MAX_IMAGES)?;
        return Ok(None);
    }
    let Some(url) = content.video_url.as_deref().filter(|u| !u.is_empty()) else {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "missing_video",
            "This X video post names no video.",
        ));
    };
    if !content.image_urls.is_empty() {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            "X takes one video alone in a post; this post also has images.",
        ));
    }
    Ok(Some(url))
}

/// Text as written by us and as X shows it compared on equal terms: HTML entities X adds undone,
/// every link (X wraps them as t.co URLs) a placeholder, outer whitespace trimmed.
fn normalise(text: &str) -> String {
    let unescaped = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let mut out = String::with_capacity(unescaped.len());
    let mut rest = unescaped.as_str();
    loop {
        let next = [rest.find("https://"), rest.find("http://")]
            .into_iter()
            .flatten()
            .min();
        let Some(start) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..start]);
        out.push(LINK);
        let tail = &rest[start..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.trim().to_owned()
}

const LINK: char = '\u{FFFC}';

/// Whether X's text of a post is our text: X may add one trailing link per post with media.
fn same_text(ours: &str, theirs: &str, with_media: bool) -> bool {
    let ours = normalise(ours);
    let theirs = normalise(theirs);
    if ours == theirs {
        return true;
    }
    if with_media && let Some(stripped) = theirs.strip_suffix(LINK) {
        return ours == stripped.trim_end();
    }
    false
}

#[async_trait]
impl Connector for X {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let content = &request.content;
        let video = check_media(content)?;
        let text = post_text(request);
        if text.is_none() && content.image_urls.is_empty() && video.is_none() {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "empty_post",
                "An X post needs text, an image or a video.",
            ));
        }
        let token = http::access_token(&request.account, PLATFORM)?;
        let mut media_ids = Vec::with_capacity(content.image_urls.len().max(1));
        if let Some(url) = video {
            media_ids.push(self.video(request, token, url).await?);
        } else {
            let images = self.fetch_images(&content.image_urls).await?;
            for image in &images {
                media_ids.push(self.upload(token, image).await?);
            }
        }
        let mut body = serde_json::Map::new();
        if let Some(text) = text {
            body.insert("text".into(), json!(text));
        }
        if !media_ids.is_empty() {
            body.insert("media".into(), json!({ "media_ids": media_ids }));
        }
        let create = self
            .http
            .post(self.url("/2/tweets"))
            .bearer_auth(token)
            .json(&Value::Object(body));
        let response = http::send(create, Effect::Creates, PLATFORM).await?;
        let created: Data<Created> = self.read(response, Effect::Creates).await?;
        let url = self.post_url(&request.account, &created.data.id);
        Ok(PublishedPost {
            id: created.data.id,
            url: Some(url),
        })
    }

    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let token = http::access_token(&request.account, PLATFORM)?;
        let ours = post_text(request).unwrap_or("");
        // Attached media: the images, or the one video.
        let images =
            request.content.image_urls.len() + usize::from(request.content.video_url.is_some());
        let start = (request.not_before - RECONCILE_SKEW)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let user_id = &request.account.account_id;
        if user_id.is_empty() || !user_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "invalid_account",
                "This X account's id is not an X user id; connect it again.",
            ));
        }
        let path = format!("/2/users/{user_id}/tweets");
        let mut page: Option<String> = None;
        let mut found: Option<String> = None;
        let mut pages = 0;
        let mut renamed = false;
        while pages < RECONCILE_MAX_PAGES {
            let fields = self.fields_parameter.load(Ordering::Relaxed) % FIELDS_PARAMETERS.len();
            let mut query: Vec<(&str, &str)> = vec![
                ("start_time", start.as_str()),
                ("max_results", "100"),
                ("exclude", "replies,retweets"),
                (FIELDS_PARAMETERS[fields], "created_at,attachments"),
            ];
            if let Some(token) = page.as_deref() {
                query.push(("pagination_token", token));
            }
            let lookup = self
                .http
                .get(self.url(&path))
                .query(&query)
                .bearer_auth(token);
            let response = http::send(lookup, Effect::Repeatable, PLATFORM).await?;
            if response.status() == reqwest::StatusCode::BAD_REQUEST {
                let headers = response.headers().clone();
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| http::transport_error(&e, Effect::Repeatable, PLATFORM))?;
                if !renamed && refuses_parameter(&body, FIELDS_PARAMETERS[fields]) {
                    // This X knows the parameter by its other name: ask again with it.
                    renamed = true;
                    let other = (fields + 1) % FIELDS_PARAMETERS.len();
                    self.fields_parameter.store(other, Ordering::Relaxed);
                    continue;
                }
                let status = reqwest::StatusCode::BAD_REQUEST;
                return Err(classify(status, &headers, &body, Effect::Repeatable));
            }
            pages += 1;
            let timeline: Timeline = self.read(response, Effect::Repeatable).await?;
            if timeline.data.is_none()
                && let Some(errors) = timeline.errors.filter(|e| !e.is_empty())
            {
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "lookup_failed",
                    "X could not list this account's posts.",
                )
                .with_platform_error(http::platform_text(
                    Value::Array(errors).to_string().as_bytes(),
                )));
            }
            // Newest first: the last match seen is the oldest, the one the first attempt made.
            for tweet in timeline.data.unwrap_or_default() {
                let keys = tweet.attachments.map(|a| a.media_keys.len()).unwrap_or(0);
                if keys == images && same_text(ours, &tweet.text, images > 0) {
                    found = Some(tweet.id);
                }
            }
            page = timeline.meta.and_then(|m| m.next_token);
            if page.is_none() {
                break;
            }
        }
        Ok(match found {
            Some(id) => Existing::Found(PublishedPost {
                url: Some(self.post_url(&request.account, &id)),
                id,
            }),
            None if page.is_some() => Existing::CannotTell,
            None => Existing::NotFound,
        })
    }

    fn connect_method(&self) -> ConnectMethod {
        ConnectMethod::OAuth
    }

    fn configured(&self) -> bool {
        self.settings.client_id.is_some()
    }

    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        let client_id = self.client_id()?;
        let mut url = url::Url::parse(&self.settings.auth_url).map_err(|_| {
            ConnectError::new(
                ConnectErrorKind::NotConfigured,
                "The X authorization URL (SOKU_X_AUTH_URL) is not a valid URL.",
            )
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("state", &request.state)
            .append_pair("code_challenge", &request.code_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(AuthorizationStart {
            url: url.into(),
            pending: json!({}),
        })
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        if exchange.code.is_empty() || exchange.code_verifier.is_empty() {
            return Err(ConnectError::new(
                ConnectErrorKind::Invalid,
                "The X callback carries no authorization code.",
            ));
        }
        let tokens = self
            .token_call(&[
                ("grant_type", "authorization_code"),
                ("code", &exchange.code),
                ("redirect_uri", &exchange.redirect_uri),
                ("code_verifier", &exchange.code_verifier),
            ])
            .await?;
        let me = self.me(&tokens.access_token).await?;
        Ok(ConnectedAccount {
            account_id: me.id,
            username: Some(me.username.clone()),
            display_name: me.name,
            meta: json!({ "username": me.username }),
            tokens,
        })
    }

    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        let Some(refresh_token) = account.refresh_token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "This X account has no refresh token; connect it again.",
            ));
        };
        self.token_call(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soku_core::connector::TOKEN_INVALID;

    #[test]
    fn text_matches_what_x_shows() {
        assert!(same_text("Hello", "Hello", false));
        assert!(same_text("a & b < c", "a &amp; b &lt; c", false));
        assert!(same_text(
            "read https://example.com/a?b=1 now",
            "read https://t.co/abc123 now",
            false
        ));
        assert!(same_text(
            "with picture",
            "with picture https://t.co/xyz",
            true
        ));
        assert!(!same_text(
            "with picture",
            "with picture https://t.co/xyz",
            false
        ));
        assert!(!same_text("Hello", "Hello!", false));
        assert!(same_text("", "https://t.co/xyz", true));
    }

    #[test]
    fn a_429_waits_for_the_latest_window_used_up() {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let now = chrono::Utc::now();
        let at = |secs: i64| (now.timestamp() + secs).to_string();
        let headers = |pairs: &[(&str, String)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            h
        };
        let quarter = [
            ("x-rate-limit-remaining", "0".to_owned()),
            ("x-rate-limit-reset", at(900)),
        ];
        let s = Duration::from_secs;
        // `http::retry_after` reads the clock again: a second may have passed.
        let check = |pairs: &[(&str, String)], wait: u64, who: Option<Daily>| {
            let (got, daily) = rate_limit_wait(&headers(pairs), now);
            let got = got.unwrap();
            assert!(
                got <= s(wait) && got + s(1) >= s(wait),
                "{got:?} for {wait}"
            );
            assert_eq!(daily.map(|(w, _)| w), who);
            if let Some((_, d)) = daily {
                assert_eq!(d, got);
            }
        };
        // The 15-minute window alone.
        check(&quarter, 900, None);
        // Both daily windows used up: the later reset, the app's.
        let mut all = quarter.to_vec();
        all.extend([
            ("x-user-limit-24hour-remaining", "0".to_owned()),
            ("x-user-limit-24hour-reset", at(3600)),
            ("x-app-limit-24hour-remaining", "0".to_owned()),
            ("x-app-limit-24hour-reset", at(7200)),
        ]);
        check(&all, 7200, Some(Daily::App));
        // The app has posts left: the user's reset.
        all[4].1 = "9000".into();
        check(&all, 3600, Some(Daily::User));
        // A daily reset already past: the 15-minute one.
        all[3].1 = at(-5);
        check(&all, 900, None);
        // A reset three days out is read as a day.
        all[3].1 = at(3 * 86_400);
        check(&all, DAILY_WINDOW.as_secs(), Some(Daily::User));
        // The 15-minute window has requests left: the daily reset, even a sooner one.
        all[0].1 = "57".into();
        all[1].1 = at(3000);
        all[3].1 = at(60);
        check(&all, 60, Some(Daily::User));

        let e = classify(
            reqwest::StatusCode::TOO_MANY_REQUESTS,
            &headers(&all),
            br#"{"errors":[{"code":88,"message":"Rate limit exceeded"}]}"#,
            Effect::Creates,
        );
        // `classify` reads the clock again: a second may have passed.
        let FailureClass::Retryable {
            retry_after: Some(after),
        } = e.class
        else {
            panic!("{e:?}");
        };
        assert!(after >= s(58) && after <= s(60), "{after:?}");
        assert_eq!(e.code, "rate_limited");
        assert!(
            e.message.contains("24-hour limit for this account"),
            "{}",
            e.message
        );
    }

    #[test]
    fn only_a_400_naming_the_parameter_refuses_it() {
        let unknown = br#"{"errors":[{"parameters":{"tweet.fields":["created_at"]},"message":"The query parameter [tweet.fields] is not one of [id,max_results,post.fields]"}],"title":"Invalid Request"}"#;
        assert!(refuses_parameter(unknown, "tweet.fields"));
        assert!(!refuses_parameter(unknown, "post.fields"));
        let other = br#"{"errors":[{"parameters":{"start_time":["x"]},"message":"The query parameter [start_time] is not one of [id,tweet.fields]"}]}"#;
        assert!(!refuses_parameter(other, "tweet.fields"));
        assert!(!refuses_parameter(b"not json", "tweet.fields"));
    }

    #[test]
    fn x_problems_refine_the_classes() {
        let h = reqwest::header::HeaderMap::new();
        let dup = br#"{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#;
        let e = classify(reqwest::StatusCode::FORBIDDEN, &h, dup, Effect::Creates);
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Permanent, "duplicate_content")
        );
        let e = classify(
            reqwest::StatusCode::UNAUTHORIZED,
            &h,
            br#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
            Effect::Creates,
        );
        assert_eq!(e.code, TOKEN_INVALID);
        let e = token_error(
            400,
            br#"{"error":"invalid_request","error_description":"Value passed for the token was invalid."}"#,
        );
        assert_eq!(e.kind, ConnectErrorKind::Rejected);
        assert_eq!(token_error(503, b"").kind, ConnectErrorKind::Unavailable);
        assert_eq!(
            token_error(401, b"{}").kind,
            ConnectErrorKind::NotConfigured
        );
    }
}
