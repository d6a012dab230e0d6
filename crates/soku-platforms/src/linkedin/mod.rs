//! LinkedIn: a member's own posts, through LinkedIn's versioned Community Management APIs.
//!
//! # Connecting (3-legged OAuth 2.0, authorization code)
//!
//! Documented in "Authorization Code Flow (3-legged OAuth)" and "Sign In with LinkedIn using
//! OpenID Connect" (learn.microsoft.com/linkedin/shared/authentication/authorization-code-flow,
//! .../consumer/integrations/self-serve/sign-in-with-linkedin-v2):
//!
//! 1. `authorize`: the member is sent to `GET {auth_url}/authorization?response_type=code&
//!    client_id&redirect_uri&state&scope=openid profile w_member_social` (scopes URL-encoded and
//!    space-delimited). LinkedIn's web flow authenticates the app with its client secret; PKCE is
//!    only offered to native apps enabled by LinkedIn, so no code challenge is sent.
//! 2. `exchange`: `POST {auth_url}/accessToken` (form-encoded `grant_type=authorization_code`,
//!    `code`, `redirect_uri`, `client_id`, `client_secret`) answers `{access_token, expires_in,
//!    refresh_token?, refresh_token_expires_in?, scope}`. Access tokens live 60 days.
//! 3. `GET {api_url}/v2/userinfo` (OpenID Connect) gives the member's `sub` and `name`. The account
//!    id is `sub`; `meta.author_urn` keeps `urn:li:person:{sub}`, the author of every post. LinkedIn
//!    members have no public handle through this API, so `username` stays empty and `display_name`
//!    holds the name.
//!
//! Refresh ("Refresh Tokens with OAuth 2.0", .../programmatic-refresh-tokens): LinkedIn issues
//! refresh tokens only to some apps (approved Marketing Developer Platform partners). With one,
//! `refresh` posts `grant_type=refresh_token` to `{auth_url}/accessToken`; the refresh token keeps
//! its original one-year lifetime and is kept unless LinkedIn sends another. Without one, `refresh`
//! answers `Rejected`: the member has to reconnect the account before the access token expires.
//!
//! # Publishing (Posts API, versioned)
//!
//! Every `/rest/*` call sends `LinkedIn-Version: YYYYMM` ([`LINKEDIN_VERSION`], or
//! `SOKU_LINKEDIN_VERSION` when set) and `X-Restli-Protocol-Version: 2.0.0`.
//!
//! - Images ("Images API", .../community-management/shares/images-api): for each image,
//!   `POST {api_url}/rest/images?action=initializeUpload` with `{initializeUploadRequest: {owner}}`
//!   answers `{value: {uploadUrl, uploadUrlExpiresAt, image}}`; the bytes are then `PUT` to
//!   `uploadUrl` with the member's bearer token. LinkedIn takes JPG, PNG and GIF images of fewer
//!   than 36,152,320 pixels (GIFs up to 250 frames); WebP is refused before any upload.
//! - The post ("Posts API", .../community-management/shares/posts-api): `POST {api_url}/rest/posts`
//!   with `{author, commentary, visibility: PUBLIC, distribution: {feedDistribution: MAIN_FEED,
//!   targetEntities: [], thirdPartyDistributionChannels: []}, lifecycleState: PUBLISHED,
//!   isReshareDisabledByAuthor: false}`, plus `content.media {id}` for one image or
//!   `content.multiImage {images: [{id}, ...]}` for 2 to 20 ("MultiImage API"; spec 6.1 caps
//!   LinkedIn at 9). LinkedIn answers 201 with the post's URN in the `x-restli-id` header; its
//!   public page is `https://www.linkedin.com/feed/update/{urn}/`.
//! - `commentary` is in LinkedIn's "little" text format ("little Text Format",
//!   .../shares/little-text-format): every reserved character (`| { } @ [ ] ( ) < > # \ * _ ~`)
//!   is escaped with a backslash so the text reads exactly as written, except a `#` that starts a
//!   word, which is left as the format's hashtag element so hashtags stay hashtags.
//! - Video ("Videos API", .../community-management/shares/videos-api): one video alone in a post
//!   (`content.video_url`; with images it is refused). LinkedIn takes MP4 from 75 KB to 500 MB
//!   ([`VIDEO_MIN_BYTES`], [`VIDEO_MAX_BYTES`]) and 3 s to 30 minutes ([`VIDEO_MIN_DURATION`],
//!   [`VIDEO_MAX_DURATION`], checked when the engine knows the file's duration); anything else is
//!   refused before any call. The file is never held whole: [`MediaSource::stream`] reads it and
//!   at most one part is in memory at a time.
//!   1. `POST {api_url}/rest/videos?action=initializeUpload` with `{initializeUploadRequest: {owner,
//!      fileSizeBytes, uploadCaptions: false, uploadThumbnail: false}}` answers `{value: {video,
//!      uploadUrlsExpireAt, uploadInstructions: [{uploadUrl, firstByte, lastByte}], uploadToken}}`
//!      (parts of 4 MB, [`VIDEO_PART_BYTES`], the last one shorter; the token is empty for a
//!      single part).
//!   2. Each part, bytes `firstByte..=lastByte` exactly as the instructions say, is `PUT` to its
//!      `uploadUrl` (`Content-Type: application/octet-stream`); the answer's `ETag` names the part.
//!   3. `POST {api_url}/rest/videos?action=finalizeUpload` with `{finalizeUploadRequest: {video,
//!      uploadToken, uploadedPartIds: [ETags, in the parts' order]}}`.
//!   4. `GET {api_url}/rest/videos/{urn}` until `status` is `AVAILABLE` (`WAITING_UPLOAD` →
//!      `PROCESSING` → `AVAILABLE` | `PROCESSING_FAILED`), polling ever less often (from
//!      [`VIDEO_POLL_FIRST`] up to [`VIDEO_POLL_MAX`]) for at most [`VIDEO_PROCESSING_MAX`] per
//!      attempt ([`LinkedIn::with_video_processing_wait`]). Still processing then is `Retryable`
//!      `media_processing`; `PROCESSING_FAILED` is `Permanent` `media_processing_failed`, with
//!      LinkedIn's reason (`processingFailureReason` when the answer has one, else the answer) as
//!      the platform error.
//!   5. The post, with `content.media {id}` the video's URN.
//!
//!   A video is uploaded once per target. The attempt saves its progress
//!   ([`soku_core::connector::Progress`]): after initializing (`{video_url, video, upload_token,
//!   urls_expire_at, instructions, etags: [], finalized: false}`), after each part (its ETag
//!   appended to `etags`) and after finalizing (`finalized: true`). An attempt that finds saved
//!   progress for the same video asks LinkedIn about the video first: finalized (or found
//!   `PROCESSING`/`AVAILABLE`), it only waits for processing; still `WAITING_UPLOAD` with upload
//!   URLs that have not expired, it uploads only the parts without an ETag (reading past the
//!   others) and finalizes. When LinkedIn no longer knows the video (404), its URLs have expired,
//!   or a resumed upload is refused, the video is uploaded again from the start.
//!
//! # Failures
//!
//! LinkedIn's error bodies are `{status, serviceErrorCode, code, message}`. On top of `http.rs`:
//! any answer whose `code` is `EXPIRED_ACCESS_TOKEN`, `REVOKED_ACCESS_TOKEN` or
//! `INVALID_ACCESS_TOKEN` is `token_invalid` whatever its status; a 422 "Content is a duplicate"
//! (`DUPLICATE_POST`) is permanent `duplicate_content`; a 426 `NONEXISTENT_VERSION` (a sunset
//! `LinkedIn-Version`) is permanent `api_version_inactive`. LinkedIn's rate limits are daily and
//! reset at midnight UTC ("Rate Limiting", .../shared/api-guide/concepts/rate-limits): a 429 uses
//! `Retry-After` when sent, else, for a "DAY limit" throttle, waits until the next midnight UTC.
//!
//! # Reconciliation
//!
//! LinkedIn has no idempotency key, and the only way to list a member's posts, the Posts API
//! finder `GET /rest/posts?author={urn}&q=author`, needs `r_member_social`, which the docs list as
//! "(Restricted) ... This is a private permission" that ordinary apps are not granted. So
//! `post_sent` is saved in the target's progress before `POST /rest/posts` (the only creating
//! call: image and video uploads create nothing visible), and cleared by a definite refusal of
//! it. `find_existing` calls nothing: with `post_sent` set it answers `Existing::CannotTell`
//! (the engine marks the target `unknown` and never posts it again blindly); without it nothing
//! was posted, `Existing::NotFound`, and the next attempt resumes a saved video upload. An
//! attempt that finds `post_sent` saved does not post (an ambiguous `outcome_unknown`).

mod video;

use crate::PlatformSettings;
use crate::http::{self, Effect, TOKEN_INVALID, percent_encode};
use crate::media::{IMAGE_MAX_BYTES, Media, MediaLimits, MediaSource, MediaStream};
use crate::oauth;
use async_trait::async_trait;
use chrono::{Duration as ChronoDuration, Utc};
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectErrorKind, ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass,
    PublishError, PublishRequest, PublishedPost, TokenSet,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DEFAULT_API_URL: &str = "https://api.linkedin.com";
pub const DEFAULT_AUTH_URL: &str = "https://www.linkedin.com/oauth/v2";

/// The `LinkedIn-Version` sent by default: Marketing version 202603 (March 2026), the latest the
/// versioning docs list, active until its sunset on 16 March 2027. Override it with
/// [`VERSION_ENV`] when LinkedIn releases a newer one.
pub const LINKEDIN_VERSION: &str = "202603";
/// The setting that overrides [`LINKEDIN_VERSION`] (`YYYYMM`), as operators know it.
pub const VERSION_ENV: &str = "SOKU_LINKEDIN_VERSION";

/// The configured `LinkedIn-Version` when it is a `YYYYMM` version; anything else is ignored
/// with a warning and [`LINKEDIN_VERSION`] is used.
pub fn version_or_default(configured: Option<&str>) -> String {
    match configured.map(str::trim) {
        Some(v) if valid_version(v) => v.to_owned(),
        Some(v) if !v.is_empty() => {
            tracing::warn!(
                value = %v,
                "{VERSION_ENV} is not a YYYYMM version; using {LINKEDIN_VERSION}"
            );
            LINKEDIN_VERSION.to_owned()
        }
        _ => LINKEDIN_VERSION.to_owned(),
    }
}
pub const RESTLI_PROTOCOL_VERSION: &str = "2.0.0";
/// Profile scopes (OpenID Connect) and posting as the member.
pub const SCOPES: &str = "openid profile w_member_social";
/// The scope without which nothing can be posted.
pub const POST_SCOPE: &str = "w_member_social";
/// The Images API's formats; WebP is not among them.
pub const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif"];
/// Images must have fewer pixels (width × height) than this.
pub const MAX_IMAGE_PIXELS: u64 = 36_152_320;
/// A MultiImage post holds 2 to 20 images.
pub const MAX_IMAGES: usize = 20;
pub const IMAGE_LIMITS: MediaLimits = MediaLimits {
    max_bytes: IMAGE_MAX_BYTES,
    types: IMAGE_TYPES,
};
/// The Videos API's format.
pub const VIDEO_TYPES: &[&str] = &["video/mp4"];
/// Videos of 75 KB to 500 MB ("File size: Between 75kb and 500MB"; 75 KB read as 75,000 bytes,
/// the lenient reading, as the submission check `soku_core::posts::media_rules` reads it).
pub const VIDEO_MIN_BYTES: u64 = 75_000;
pub const VIDEO_MAX_BYTES: u64 = 500 * 1024 * 1024;
/// Videos of 3 seconds to 30 minutes.
pub const VIDEO_MIN_DURATION: Duration = Duration::from_secs(3);
pub const VIDEO_MAX_DURATION: Duration = Duration::from_secs(30 * 60);
pub const VIDEO_LIMITS: MediaLimits = MediaLimits {
    max_bytes: VIDEO_MAX_BYTES,
    types: VIDEO_TYPES,
};
/// The size of the parts LinkedIn's upload instructions cut a video into (the last is shorter);
/// the connector follows the instructions' byte ranges, whatever they are.
pub const VIDEO_PART_BYTES: u64 = 4 * 1024 * 1024;
/// The longest one attempt waits for LinkedIn to process a video; the next attempt resumes the
/// wait without uploading again.
pub const VIDEO_PROCESSING_MAX: Duration = Duration::from_secs(10 * 60);
/// The first wait before asking about a video's processing; each next wait doubles, up to
/// [`VIDEO_POLL_MAX`].
pub const VIDEO_POLL_FIRST: Duration = Duration::from_millis(250);
pub const VIDEO_POLL_MAX: Duration = Duration::from_secs(10);
/// Saved upload URLs are used again only when they stay valid at least this much longer.
const UPLOAD_URL_MARGIN_MS: i64 = 5 * 60 * 1000;
/// A post's public page.
pub const POST_URL_PREFIX: &str = "https://www.linkedin.com/feed/update/";
/// How long an access token whose answer gives no `expires_in` is taken to live: "Access tokens
/// live 60 days" (refreshed 24 hours ahead).
pub const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 24 * 3600);

const PLATFORM: &str = "LinkedIn";
/// The settings that hold the app's client credentials.
const CREDENTIALS: &str = "SOKU_LINKEDIN_CLIENT_ID and SOKU_LINKEDIN_CLIENT_SECRET";
/// LinkedIn's error codes for an access token that no longer works.
const TOKEN_ERROR_CODES: &[&str] = &[
    "EXPIRED_ACCESS_TOKEN",
    "REVOKED_ACCESS_TOKEN",
    "INVALID_ACCESS_TOKEN",
];

pub struct LinkedIn {
    settings: PlatformSettings,
    media: Arc<dyn MediaSource>,
    client: reqwest::Client,
    version: String,
    /// The longest one attempt waits for a video's processing.
    video_wait: Duration,
}

impl std::fmt::Debug for LinkedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedIn")
            .field("settings", &self.settings)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl LinkedIn {
    /// Sends [`LINKEDIN_VERSION`]; [`LinkedIn::with_version`] sends another.
    pub fn new(settings: PlatformSettings, media: Arc<dyn MediaSource>) -> Self {
        Self {
            client: http::api_client(settings.timeout),
            settings,
            media,
            version: LINKEDIN_VERSION.to_owned(),
            video_wait: VIDEO_PROCESSING_MAX,
        }
    }

    /// The longest one attempt waits for LinkedIn to process a video ([`VIDEO_PROCESSING_MAX`]
    /// unless set; tests wait less).
    pub fn with_video_processing_wait(mut self, wait: Duration) -> Self {
        self.video_wait = wait;
        self
    }

    /// Uses another `LinkedIn-Version` (tests, or a caller that manages versions itself).
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// The `LinkedIn-Version` this connector sends.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn rest(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.settings.api_url))
            .bearer_auth(token)
            .header("LinkedIn-Version", &self.version)
            .header("X-Restli-Protocol-Version", RESTLI_PROTOCOL_VERSION)
    }

    /// Sends a request and reads the whole answer; a non-2xx answer becomes its failure.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        effect: Effect,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), PublishError> {
        let response = http::send(request, effect, PLATFORM).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&e, effect, PLATFORM))?;
        if status.is_success() {
            return Ok((status, headers, body.to_vec()));
        }
        Err(self.failure(status, &headers, &body, effect))
    }

    /// `http::status_error` refined with LinkedIn's own error bodies.
    fn failure(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        effect: Effect,
    ) -> PublishError {
        let mut e = http::status_error(status, headers, body, effect, PLATFORM);
        let err: LinkedInError = serde_json::from_slice(body).unwrap_or_default();
        let code = err.code.as_deref().unwrap_or("");
        let message = err.message.as_deref().unwrap_or("");
        let duplicate = err.error_details.as_ref().is_some_and(|d| {
            d.input_errors
                .iter()
                .any(|i| i.code.as_deref() == Some("DUPLICATE_POST"))
        }) || message.contains("Content is a duplicate");
        if TOKEN_ERROR_CODES.contains(&code) {
            e.class = FailureClass::Permanent;
            e.code = TOKEN_INVALID.to_owned();
            e.message = format!("{PLATFORM} no longer accepts this account's access token.");
        } else if status.as_u16() == 422 && duplicate {
            e.class = FailureClass::Permanent;
            e.code = "duplicate_content".to_owned();
            e.message = format!(
                "{PLATFORM} refused the post as a duplicate of one this account already published."
            );
        } else if status.as_u16() == 426 || code == "NONEXISTENT_VERSION" {
            e.class = FailureClass::Permanent;
            e.code = "api_version_inactive".to_owned();
            e.message = format!(
                "{PLATFORM} no longer serves API version {}; set {VERSION_ENV} to a current one.",
                self.version
            );
        } else if let FailureClass::Retryable { retry_after: None } = e.class
            && status.as_u16() == 429
            && message.contains("DAY limit")
        {
            // Daily limits reset at midnight UTC.
            e.class = FailureClass::Retryable {
                retry_after: Some(until_next_utc_midnight()),
            };
        }
        e
    }

    /// Fetches, checks and uploads one image; returns its `urn:li:image:` URN.
    async fn upload_image(
        &self,
        token: &str,
        owner: &str,
        url: &str,
    ) -> Result<String, PublishError> {
        let media = self.media.fetch(url, &IMAGE_LIMITS).await?;
        check_image(&media)?;
        let (_, _, body) = self
            .call(
                self.rest(
                    reqwest::Method::POST,
                    "/rest/images?action=initializeUpload",
                    token,
                )
                .json(&json!({"initializeUploadRequest": {"owner": owner}})),
                Effect::Repeatable,
            )
            .await?;
        let init: InitializeUpload = http::parse_json(&body, Effect::Repeatable, PLATFORM)?;
        self.check_upload_url(&init.value.upload_url)?;
        self.call(
            self.client
                .put(&init.value.upload_url)
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, media.mime)
                .body(media.bytes),
            Effect::Repeatable,
        )
        .await?;
        Ok(init.value.image)
    }

    /// The member's token goes only to LinkedIn (or to the configured API's own origin, for
    /// fakes and staging setups).
    fn check_upload_url(&self, upload_url: &str) -> Result<(), PublishError> {
        let ok = url::Url::parse(upload_url).ok().is_some_and(|u| {
            let linkedin = u.scheme() == "https"
                && u.host_str().is_some_and(|h| {
                    let h = h.to_ascii_lowercase();
                    h == "linkedin.com" || h.ends_with(".linkedin.com")
                });
            let same_origin =
                url::Url::parse(&self.settings.api_url).is_ok_and(|api| api.origin() == u.origin());
            linkedin || same_origin
        });
        if ok {
            Ok(())
        } else {
            Err(PublishError::new(
                FailureClass::Permanent,
                "unexpected_response",
                format!("{PLATFORM} named an upload location outside LinkedIn; not uploading."),
            ))
        }
    }

    /// The token endpoint, `{auth_url}/accessToken`.
    fn token_url(&self) -> String {
        format!("{}/accessToken", self.settings.auth_url)
    }

    /// The token endpoint at `url` ([`LinkedIn::token_url`]), with the app's credentials.
    fn token_endpoint<'a>(
        &'a self,
        url: &'a str,
    ) -> Result<oauth::TokenEndpoint<'a>, ConnectError> {
        Ok(oauth::TokenEndpoint {
            client: &self.client,
            url,
            platform: "LinkedIn",
            credentials: self.settings.credentials(PLATFORM, CREDENTIALS)?,
            failure: connect_failure,
        })
    }
}

/// Whether saved progress says `POST /rest/posts` went out without a definite answer.
fn post_sent(saved: &Value) -> bool {
    saved.get("post_sent").and_then(Value::as_bool) == Some(true)
}

/// Saves the attempt's progress with `post_sent` set or cleared (a video upload's progress kept).
async fn mark_post_sent(request: &PublishRequest, sent: bool) -> Result<(), PublishError> {
    let mut progress = match request.progress.current().saved() {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    if sent {
        progress.insert("post_sent".into(), Value::Bool(true));
    } else {
        progress.remove("post_sent");
    }
    request.progress.save(Value::Object(progress)).await
}

#[async_trait]
impl Connector for LinkedIn {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        if post_sent(request.progress.saved()) {
            return Err(PublishError::new(
                FailureClass::Ambiguous,
                "outcome_unknown",
                format!(
                    "An earlier attempt sent the post to {PLATFORM} without learning the outcome; \
                     it is not sent again."
                ),
            ));
        }
        let content = &request.content;
        let video = check_media(content)?;
        let token = http::access_token(&request.account, PLATFORM)?;
        let author = author_urn(&request.account);

        let mut images = Vec::with_capacity(content.image_urls.len());
        for url in &content.image_urls {
            images.push(self.upload_image(token, &author, url).await?);
        }
        if let Some(url) = video {
            // One video alone: `content.media` names it as it would one image.
            images.push(self.video(request, token, &author, url).await?);
        }

        let mut body = json!({
            "author": author,
            "commentary": escape_little(content.text.as_deref().unwrap_or("")),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        });
        match images.as_slice() {
            [] => {}
            [one] => body["content"] = json!({"media": {"id": one}}),
            many => {
                let list: Vec<Value> = many.iter().map(|id| json!({"id": id})).collect();
                body["content"] = json!({"multiImage": {"images": list}});
            }
        }

        mark_post_sent(request, true).await?;
        let sent = self
            .call(
                self.rest(reqwest::Method::POST, "/rest/posts", token)
                    .json(&body),
                Effect::Creates,
            )
            .await;
        let (_, headers, raw) = match sent {
            Ok(answer) => answer,
            Err(e) => {
                if e.class != FailureClass::Ambiguous {
                    // A definite refusal: nothing was posted.
                    mark_post_sent(request, false).await?;
                }
                return Err(e);
            }
        };
        let urn = headers
            .get("x-restli-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| v.starts_with("urn:li:"))
            .ok_or_else(|| {
                // Created, but LinkedIn did not say which post it is.
                PublishError::new(
                    FailureClass::Ambiguous,
                    "unexpected_response",
                    format!("{PLATFORM} accepted the post without naming it (no x-restli-id)."),
                )
                .with_platform_error(http::platform_text(&raw))
            })?;
        Ok(PublishedPost {
            id: urn.to_owned(),
            url: Some(post_url(urn)),
        })
    }

    /// LinkedIn cannot tell once the post was sent; before, nothing was posted: see the module
    /// documentation.
    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        Ok(if post_sent(request.progress.saved()) {
            Existing::CannotTell
        } else {
            Existing::NotFound
        })
    }

    fn connect_method(&self) -> ConnectMethod {
        ConnectMethod::OAuth
    }

    fn configured(&self) -> bool {
        self.settings.client_id.is_some() && self.settings.client_secret.is_some()
    }

    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        let (client_id, _) = self.settings.credentials(PLATFORM, CREDENTIALS)?;
        let query = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("state", request.state.as_str()),
            ("scope", SCOPES),
        ];
        let query = http::query_string(&query);
        Ok(AuthorizationStart {
            url: format!("{}/authorization?{query}", self.settings.auth_url),
            pending: json!({}),
        })
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        let url = self.token_url();
        let tokens = self.token_endpoint(&url)?.exchange(exchange, &[]).await?;
        if !tokens.grants(POST_SCOPE) {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "LinkedIn did not grant permission to post for this member (w_member_social).",
            ));
        }

        let response = self
            .client
            .get(format!("{}/v2/userinfo", self.settings.api_url))
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .map_err(|e| http::connect_unavailable(&e, "LinkedIn"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http::connect_unavailable(&e, "LinkedIn"))?;
        if !status.is_success() {
            return Err(connect_failure(status, &bytes, "the profile request"));
        }
        let user: UserInfo = serde_json::from_slice(&bytes)
            .ok()
            .filter(|u: &UserInfo| !u.sub.is_empty())
            .ok_or_else(|| {
                ConnectError::new(
                    ConnectErrorKind::Unavailable,
                    "LinkedIn answered the profile request in an unexpected form.",
                )
                .with_platform_error(http::platform_text(&bytes))
            })?;
        let display_name = user.name.clone().or_else(|| {
            let joined = [user.given_name.as_deref(), user.family_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!joined.is_empty()).then_some(joined)
        });
        Ok(ConnectedAccount {
            account_id: user.sub.clone(),
            username: None,
            display_name,
            meta: json!({
                "author_urn": format!("urn:li:person:{}", user.sub),
                "scope": tokens.scope,
                "refresh_token_issued": tokens.refresh_token.as_deref().is_some_and(|t| !t.is_empty()),
            }),
            tokens: tokens.into_token_set(ASSUMED_TOKEN_LIFETIME),
        })
    }

    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        let url = self.token_url();
        let tokens = self
            .token_endpoint(&url)?
            .refresh(
                account,
                "LinkedIn issues no refresh token to this app: reconnect the LinkedIn account \
                 before its access token expires (every 60 days).",
            )
            .await?;
        Ok(tokens.into_token_set(ASSUMED_TOKEN_LIFETIME))
    }

    /// Access tokens live 60 days: refreshing a day early leaves room to retry.
    fn refresh_ahead(&self) -> Duration {
        Duration::from_secs(24 * 3600)
    }
}

/// The post's author: the URN kept at connection, else the one the account id stands for.
fn author_urn(account: &AccountCredentials) -> String {
    account
        .meta
        .get("author_urn")
        .and_then(Value::as_str)
        .filter(|s| s.starts_with("urn:li:"))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("urn:li:person:{}", account.account_id))
}

pub fn post_url(urn: &str) -> String {
    format!("{POST_URL_PREFIX}{urn}/")
}

/// A `LinkedIn-Version` value: `YYYYMM`.
pub fn valid_version(v: &str) -> bool {
    v.len() == 6
        && v.bytes().all(|b| b.is_ascii_digit())
        && matches!(v[4..].parse::<u8>(), Ok(1..=12))
}

/// The little text format's reserved characters.
pub const LITTLE_RESERVED: &[char] = &[
    '|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '\\', '*', '_', '~',
];

/// Text as LinkedIn's little format: reserved characters escaped, except a `#` that starts a word
/// (at the start or after whitespace, followed by a letter or digit), kept as a hashtag element.
pub fn escape_little(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let hashtag = c == '#'
            && prev.is_none_or(char::is_whitespace)
            && chars.peek().is_some_and(|n| n.is_alphanumeric());
        if LITTLE_RESERVED.contains(&c) && !hashtag {
            out.push('\\');
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// LinkedIn's own check of a post's media before any call: up to [`MAX_IMAGES`] images, or one
/// video alone. The video's URL when the post is a video post.
fn check_media(content: &soku_core::posts::PostContent) -> Result<Option<&str>, PublishError> {
    let is_video =
        content.media_type == soku_core::posts::MediaType::Video || content.video_url.is_some();
    if !is_video {
        crate::media::check_images_only(content, PLATFORM, MAX_IMAGES)?;
        return Ok(None);
    }
    let Some(url) = content.video_url.as_deref().filter(|u| !u.is_empty()) else {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "missing_video",
            "This LinkedIn video post names no video.",
        ));
    };
    if !content.image_urls.is_empty() {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            "LinkedIn takes one video alone in a post; this post also has images.",
        ));
    }
    Ok(Some(url))
}

/// Checks an image against the Images API's limits: type and pixel count.
fn check_image(media: &Media) -> Result<(), PublishError> {
    if !IMAGE_TYPES.contains(&media.mime) {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            format!(
                "LinkedIn takes JPEG, PNG and GIF images, not {}.",
                media.mime
            ),
        ));
    }
    if let Some((w, h)) = image_dimensions(&media.bytes)
        && u64::from(w) * u64::from(h) >= MAX_IMAGE_PIXELS
    {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "media_too_large",
            format!(
                "LinkedIn takes images of fewer than {MAX_IMAGE_PIXELS} pixels; this one is {w}×{h}."
            ),
        ));
    }
    Ok(())
}

/// Width and height from a PNG, GIF or JPEG header, when they can be read.
pub fn image_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| Some(u32::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])));
    if b.starts_with(b"\x89PNG\r\n\x1a\n") && b.get(12..16) == Some(b"IHDR") {
        let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
        let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
        return Some((w, h));
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        let w = u32::from(u16::from_le_bytes([*b.get(6)?, *b.get(7)?]));
        let h = u32::from(u16::from_le_bytes([*b.get(8)?, *b.get(9)?]));
        return Some((w, h));
    }
    if b.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 4 <= b.len() {
            if b[i] != 0xFF {
                return None;
            }
            let marker = b[i + 1];
            if marker == 0xFF {
                i += 1;
                continue;
            }
            if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
                i += 2;
                continue;
            }
            let len = be16(i + 2)? as usize;
            // Start of frame (baseline, progressive, ...), not DHT / JPG / DAC.
            if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                let h = be16(i + 5)?;
                let w = be16(i + 7)?;
                return Some((w, h));
            }
            if marker == 0xDA {
                return None;
            }
            i += 2 + len;
        }
    }
    None
}

fn until_next_utc_midnight() -> Duration {
    let now = Utc::now();
    let midnight = (now.date_naive() + ChronoDuration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    (midnight - now).to_std().unwrap_or_default()
}

/// A refused token or profile request: the platform's grant errors are `Rejected` (a used or
/// expired code, a revoked refresh token, refused client credentials); 429 and 5xx `Unavailable`.
fn connect_failure(status: StatusCode, body: &[u8], what: &str) -> ConnectError {
    let raw = http::platform_text(body);
    let err: OAuthError = serde_json::from_slice(body).unwrap_or_default();
    let detail = err
        .error_description
        .or(err.message)
        .or(err.error)
        .unwrap_or_default();
    let kind = match status.as_u16() {
        429 | 500..=599 => ConnectErrorKind::Unavailable,
        _ => ConnectErrorKind::Rejected,
    };
    let message = match kind {
        ConnectErrorKind::Unavailable => {
            format!("LinkedIn could not serve {what} ({status}); try again later.")
        }
        _ if detail.is_empty() => format!("LinkedIn refused {what} ({status})."),
        _ => format!("LinkedIn refused {what} ({status}): {detail}"),
    };
    ConnectError::new(kind, message).with_platform_error(raw)
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
}

#[derive(Deserialize)]
struct InitializeUpload {
    value: InitializeUploadValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeUploadValue {
    upload_url: String,
    image: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LinkedInError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_details: Option<ErrorDetails>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorDetails {
    #[serde(default)]
    input_errors: Vec<InputError>,
}

#[derive(Deserialize, Default)]
struct InputError {
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn little_text_escapes_reserved_characters_but_keeps_hashtags() {
        assert_eq!(escape_little("plain text"), "plain text");
        assert_eq!(
            escape_little("a (b) [c] {d} <e> @f *g* _h_ ~i~ j|k \\l"),
            "a \\(b\\) \\[c\\] \\{d\\} \\<e\\> \\@f \\*g\\* \\_h\\_ \\~i\\~ j\\|k \\\\l"
        );
        assert_eq!(escape_little("#rust and #2026"), "#rust and #2026");
        assert_eq!(
            escape_little("C# or # alone or x#y"),
            "C\\# or \\# alone or x\\#y"
        );
        assert_eq!(escape_little("#"), "\\#");
        assert_eq!(escape_little("#ünïcode"), "#ünïcode");
        assert_eq!(escape_little("émoji 🎉 stays"), "émoji 🎉 stays");
    }

    #[test]
    fn versions_are_yyyymm() {
        assert!(valid_version(LINKEDIN_VERSION));
        assert!(valid_version("202612"));
        assert!(!valid_version("202613"));
        assert!(!valid_version("2026-03"));
        assert!(!valid_version("20260301"));
    }

    #[test]
    fn image_dimensions_from_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(image_dimensions(&png), Some((640, 480)));
        let gif = b"GIF89a\x20\x03\x58\x02rest";
        assert_eq!(image_dimensions(gif), Some((800, 600)));
        // SOI, APP0 (length 16), SOF0 (precision 8, height 0x0100, width 0x0200).
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend_from_slice(&[0; 14]);
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x00, 0x02, 0x00]);
        assert_eq!(image_dimensions(&jpeg), Some((512, 256)));
        assert_eq!(image_dimensions(b"not an image"), None);
    }

    #[test]
    fn scopes_are_percent_encoded_with_spaces() {
        assert_eq!(
            percent_encode("openid profile w_member_social"),
            "openid%20profile%20w_member_social"
        );
        assert_eq!(
            percent_encode("https://a.test/cb?x=1"),
            "https%3A%2F%2Fa.test%2Fcb%3Fx%3D1"
        );
    }

    #[test]
    fn midnight_is_within_a_day() {
        let d = until_next_utc_midnight();
        assert!(d > Duration::ZERO && d <= Duration::from_secs(24 * 3600));
    }
}
