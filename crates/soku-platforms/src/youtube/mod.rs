//! YouTube: a channel's videos, through the YouTube Data API v3.
//!
//! # Connecting (Google OAuth 2.0 for web server applications, offline access)
//!
//! "Using OAuth 2.0 for Web Server Applications"
//! (<https://developers.google.com/identity/protocols/oauth2/web-server>):
//! 1. `authorize` sends the user to [`DEFAULT_AUTH_URL`] (`settings.auth_url`, the full URL) with
//!    `client_id`, `redirect_uri`, `response_type=code`, `scope` ([`SCOPES`], space-delimited),
//!    `access_type=offline` ("This value instructs the Google authorization server to return a
//!    refresh token and an access token the first time that your application exchanges an
//!    authorization code for tokens"), `prompt=consent` (so that a user who connects again gets
//!    a new refresh token, not only the first time), `include_granted_scopes=true`, `state`, and
//!    PKCE `code_challenge` / `code_challenge_method=S256` (Google's OpenID configuration lists
//!    `"code_challenge_methods_supported": ["plain", "S256"]`).
//! 2. `exchange` posts the code to [`DEFAULT_TOKEN_URL`] (form-encoded `code`, `client_id`,
//!    `client_secret`, `redirect_uri`, `grant_type=authorization_code`, `code_verifier`): the
//!    answer holds `access_token`, `expires_in` (about an hour), `refresh_token` and `scope`.
//!    Google's consent screen lets the user untick scopes, so the granted `scope` must hold
//!    `youtube.upload`, else the connection is refused.
//! 3. `channels.list?part=snippet,contentDetails&mine=true` ("Return the ids of channels owned
//!    by the authenticated user"; the discovery document lists `youtube.readonly` among its
//!    scopes, `youtube.upload` not, hence the two scopes) names the account: the channel id is
//!    the account id, `snippet.customUrl` (the `@handle`) the username, `snippet.title` the
//!    display name, and `meta` keeps the channel id and its uploads playlist
//!    (`contentDetails.relatedPlaylists.uploads`). A Google account without a channel is refused.
//!
//! `refresh` posts `grant_type=refresh_token` with the client credentials; Google answers a new
//! access token and normally no refresh token (the stored one is kept). A refresh token stops
//! working when "The user has revoked your app's access", after six months unused, past the
//! per-client token limit, or after 7 days for a project whose consent screen is External and
//! in "Testing" (<https://developers.google.com/identity/protocols/oauth2#expiration>); Google
//! then answers `400 {"error": "invalid_grant"}`: `Rejected` (the account needs reconnecting).
//! `401 invalid_client` means this server's client credentials are wrong: `NotConfigured`.
//!
//! # Publishing: the resumable upload
//!
//! "Resumable Uploads" (<https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol>)
//! and `videos.insert` (<https://developers.google.com/youtube/v3/docs/videos/insert>: "Maximum
//! file size: 256GB", "Accepted Media MIME types: video/*, application/octet-stream"):
//! 1. `POST {api_url}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status` with
//!    the video resource as JSON and `X-Upload-Content-Length` / `X-Upload-Content-Type`; the
//!    answer's `Location` is the session URI. It is saved in the target's progress at once.
//!    Nothing exists on YouTube until the last byte arrives.
//! 2. The file, streamed from the media store ([`MediaSource::stream`], at most one chunk in
//!    memory), is `PUT` to the session URI in chunks of [`CHUNK_BYTES`] (a multiple of 256 KiB:
//!    "All chunks must be a multiple of 256 KB (256 x 1024 bytes) in size, except for the final
//!    chunk that completes the upload"), each with `Content-Range: bytes FIRST-LAST/TOTAL`.
//!    YouTube answers `308 Resume Incomplete` with `Range: bytes=0-N` for each chunk but the
//!    last, and `201` with the video resource for the last. Before the last chunk goes out the
//!    progress records `final_sent`; the video id it answers is saved at once.
//! 3. `videos.list?part=status,processingDetails&id=ID` is read, the first time at once, then
//!    ever less often within the polling deadline ([`YouTube::with_polling`], by default
//!    [`Polling::DEFAULT`]): `status.uploadStatus` `processed` is done; `failed` (with its
//!    `failureReason`), `rejected` (with its `rejectionReason`, e.g. `duplicate`), `deleted`, or
//!    `processingDetails.processingStatus` `failed` / `terminated` (with its
//!    `processingFailureReason`) end the target `failed` with YouTube's reason; a video that
//!    `videos.list` does not list (deleted from the channel) ends it `failed`,
//!    `media_deleted`. **Still processing at the deadline: published.** The video exists on
//!    the channel with the privacy asked for, and YouTube makes it watchable when processing
//!    ends (long videos take hours; waiting across retries would spend the engine's attempts
//!    and could end a target `failed` although its video is on YouTube); the connector logs
//!    that processing had not finished. It never uploads again. **A read that fails (a 5xx,
//!    the day's quota used up, a refused or missing token, an answer that does not parse) is
//!    published too**, with a log line: the upload completed, so the video is on the channel,
//!    and handing the failure to the engine could end the target `failed` (a refused token
//!    whose refresh fails) although it is there.
//!
//! `post.options.youtube` ([`soku_core::posts::YoutubeOptions`]) maps to `snippet.title`
//! (default: the text's first line; without text, the file's name), `snippet.description`
//! (default: the text), `status.privacyStatus` (default `public`), `status.
//! selfDeclaredMadeForKids` (`madeForKids`, default false) and `snippet.tags`;
//! `snippet.categoryId` is `22` ("People & Blogs"). The documented limits are checked before any
//! call: a title of 1 to 100 characters, a description of at most 5,000 bytes, tags of at most
//! 500 characters together (commas between tags count, a tag with a space counts its two
//! quotes); a title or description given in the options that breaks them is refused
//! (permanent), a default taken from the text is cut to fit. YouTube refuses `<` and `>` in
//! both ("may contain all valid UTF-8 characters except < and >"): they are replaced by `‹` and
//! `›`.
//!
//! Shorts: the API has no flag. "Any videos uploaded on or after [15 October 2024] with a square
//! or vertical aspect ratio up to three minutes in length will be categorised as Shorts"
//! (<https://support.google.com/youtube/answer/15424877>): such a video becomes a Short by itself.
//!
//! Unverified API projects: "All videos uploaded via the videos.insert endpoint from unverified
//! API projects created after 28 July 2020 will be restricted to private viewing mode" until the
//! project passes Google's audit; the connector asks for the privacy given and YouTube applies
//! its restriction.
//!
//! # Exactly once
//!
//! YouTube has no idempotency key; the session URI stands in for one. Every attempt that finds
//! a saved session asks it for its status (`PUT` with `Content-Range: bytes */TOTAL`, no body):
//! - "If the upload already completed, the API will return the same response that it sent when
//!   the upload originally completed": the video id is taken from it, nothing is sent again.
//! - `308` with `Range`: the upload resumes from the byte after the last one acknowledged (no
//!   `Range`: from the start), in the same session.
//! - `404` / `410`: "Each resumable session URI has a finite lifetime and eventually expires".
//!   When the last chunk was never sent, nothing was created and a new session starts. When it
//!   was sent and its answer lost, the upload may have completed and the session can no longer
//!   say: the attempt fails `Ambiguous` and `find_existing` answers `CannotTell`, so the target
//!   ends `unknown` rather than risk a second video.
//!
//! `final_sent` is cleared again (best effort) when the session's answer to this session's
//! first last chunk shows that it created nothing: a definitive refusal (a 4xx other than
//! 404, 408 or 410), a `404` / `410` (the session is gone), or a `308` (still incomplete). So a
//! refused last chunk, or a just-restarted session that expires too, leads the next attempt to
//! a new session rather than to `unknown`. A last chunk sent again after an earlier attempt's
//! was lost keeps the mark whatever the answer.
//!
//! The progress names the media URL it is of. Progress of another URL that has a video id or
//! `final_sent` (a video was, or may have been, made from it) is never uploaded past:
//! `find_existing` answers `CannotTell` and `publish` fails `Ambiguous`
//! (`upload_outcome_unknown`), so the target ends `unknown`. Progress of another URL without
//! either made nothing and is ignored.
//!
//! `find_existing`: with a saved video id, reads it (`Found` unless YouTube reports it failed,
//! rejected or deleted, or does not list it, when `NotFound` lets `publish` report that from
//! the saved id, never uploading; a read that fails is `Found`, as in `publish`); with a saved
//! session, asks it as above (`Found` for a completed upload, `NotFound` while incomplete,
//! `CannotTell` for an expired session after the last chunk, else `NotFound`); with neither,
//! nothing was uploaded: `NotFound`.
//!
//! The `308` answers are seen only because `http::api_client` follows no redirects
//! (`redirect::Policy::none()`); a client that followed them would re-send a chunk or status
//! query to whatever `Location` named.
//!
//! The session initiation and every chunk but the last are repeatable (`Effect::Repeatable`): a
//! failure there is `Retryable`, and the next attempt asks the session. The last chunk creates
//! the video (`Effect::Creates`): a lost answer is `Ambiguous`.
//!
//! # Failures
//!
//! Google's error envelope (`{"error": {"code", "message", "errors": [{"message", "domain",
//! "reason"}], "status"}}`, <https://developers.google.com/youtube/v3/docs/errors>):
//! - `quotaExceeded` (403, domain `youtube.quota`; also the older `dailyLimitExceeded`):
//!   `Retryable` `quota_exceeded`, after the daily reset: "Daily quotas reset at midnight Pacific
//!   Time (PT)" (<https://developers.google.com/youtube/v3/determine_quota_cost>). Uploads have a
//!   bucket of their own, 100 `videos.insert` per project per day.
//! - `uploadLimitExceeded` (400, domain `youtube.video`, "The user has exceeded the number of
//!   videos they may upload."): the channel's own limit; YouTube says "try again in 24 hours"
//!   (YouTube developer news): `Retryable` `upload_limit_exceeded` after 24 hours.
//! - `rateLimitExceeded` / `userRateLimitExceeded`, and 429: `Retryable` `rate_limited`.
//! - 401 (`authError`): `token_invalid` (the engine refreshes, or marks the account
//!   `needs_reconnect`); 403 `insufficientPermissions`: permanent `permission_denied`.
//! - Any other 4xx: permanent `rejected`, with YouTube's message and reason
//!   (`invalidTitle`, `forbiddenPrivacySetting`, ...); 5xx: `http.rs`'s classes.

mod errors;
mod metadata;
mod oauth;
mod processing;
mod upload;

use crate::PlatformSettings;
use crate::graph::Polling;
use crate::http::{self, Effect, percent_encode};
use crate::media::{MediaLimits, MediaSource};
use async_trait::async_trait;
use errors::classify;
use metadata::{check_media, metadata};
use oauth::{ChannelList, connect_failure};
use processing::Verdict;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectErrorKind, ConnectMethod, ConnectedAccount, Connector, Existing, PublishError,
    PublishRequest, PublishedPost, TokenSet,
};
use std::sync::Arc;
use std::time::Duration;
use upload::{Saved, SessionState, UploadProgress, other_video};

pub use errors::until_midnight_pacific;

pub const DEFAULT_API_URL: &str = "https://www.googleapis.com";
pub const DEFAULT_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Uploading videos, and reading the channel (which `youtube.upload` alone does not allow).
pub const SCOPES: &str = "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly";
pub const UPLOAD_SCOPE: &str = "https://www.googleapis.com/auth/youtube.upload";
/// Scopes that allow `videos.insert` (the discovery document's list).
const UPLOAD_SCOPES: &[&str] = &[
    UPLOAD_SCOPE,
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.force-ssl",
    "https://www.googleapis.com/auth/youtubepartner",
];
/// The granularity of chunks: 256 KiB.
pub const CHUNK_GRANULARITY: u64 = 256 * 1024;
/// The chunk size by default: 8 MiB (32 × 256 KiB).
pub const CHUNK_BYTES: u64 = 32 * CHUNK_GRANULARITY;
/// "Maximum file size: 256GB".
pub const VIDEO_MAX_BYTES: u64 = 256 * 1024 * 1024 * 1024;
pub const VIDEO_LIMITS: MediaLimits = MediaLimits {
    max_bytes: VIDEO_MAX_BYTES,
    types: soku_core::media::VIDEO_TYPES,
};
pub const TITLE_MAX_CHARS: usize = 100;
pub const DESCRIPTION_MAX_BYTES: usize = 5000;
pub const TAGS_MAX_CHARS: usize = 500;
/// "People & Blogs".
pub const CATEGORY_ID: &str = "22";
/// A video's public page.
pub const WATCH_URL_PREFIX: &str = "https://www.youtube.com/watch?v=";
/// YouTube's answer to `uploadLimitExceeded`: "try again in 24 hours".
pub const UPLOAD_LIMIT_WAIT: Duration = Duration::from_secs(24 * 3600);
/// How long an access token whose answer gives no `expires_in` is taken to live: Google's
/// access tokens last an hour (its answers say `"expires_in": 3599`).
pub const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

const PLATFORM: &str = "YouTube";
/// The settings that hold the app's client credentials.
const CREDENTIALS: &str = "SOKU_YOUTUBE_CLIENT_ID and SOKU_YOUTUBE_CLIENT_SECRET";

pub struct YouTube {
    settings: PlatformSettings,
    media: Arc<dyn MediaSource>,
    client: reqwest::Client,
    token_url: String,
    polling: Polling,
    chunk_bytes: u64,
}

impl std::fmt::Debug for YouTube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YouTube")
            .field("settings", &self.settings)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl YouTube {
    /// `settings.api_url` is the API's root ([`DEFAULT_API_URL`]), `settings.auth_url` the full
    /// authorization URL ([`DEFAULT_AUTH_URL`]); the token endpoint is [`DEFAULT_TOKEN_URL`]
    /// unless set with [`YouTube::with_token_url`].
    pub fn new(settings: PlatformSettings, media: Arc<dyn MediaSource>) -> Self {
        Self {
            client: http::api_client(settings.timeout),
            settings,
            media,
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            polling: Polling::DEFAULT,
            chunk_bytes: CHUNK_BYTES,
        }
    }

    /// Another token endpoint (tests: the fake's).
    pub fn with_token_url(mut self, url: &str) -> Self {
        self.token_url = url.to_owned();
        self
    }

    /// How processing is waited for: the first pause, and the longest one attempt waits.
    pub fn with_polling(mut self, interval: Duration, deadline: Duration) -> Self {
        self.polling = Polling { interval, deadline };
        self
    }

    /// The chunk size, rounded down to a multiple of 256 KiB (at least one).
    pub fn with_chunk_bytes(mut self, bytes: u64) -> Self {
        self.chunk_bytes = (bytes / CHUNK_GRANULARITY).max(1) * CHUNK_GRANULARITY;
        self
    }

    pub(super) fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.settings.api_url))
            .bearer_auth(token)
    }

    /// Sends a request and reads the whole answer; a non-2xx answer becomes its failure.
    pub(super) async fn call(
        &self,
        request: reqwest::RequestBuilder,
        effect: Effect,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), PublishError> {
        let (status, headers, body) = self.send(request, effect).await?;
        if status.is_success() {
            return Ok((status, headers, body));
        }
        Err(classify(status, &headers, &body, effect))
    }

    /// Sends a request and reads the whole answer, whatever its status.
    pub(super) async fn send(
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
        Ok((status, headers, body.to_vec()))
    }
}

#[async_trait]
impl Connector for YouTube {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let url = check_media(&request.content)?;
        let metadata = metadata(&request.content, &request.options, url)?;
        let saved = match UploadProgress::load(request.progress.saved(), url) {
            Saved::Other(p) => return Err(other_video(&p)),
            Saved::This(p) => Some(p),
            Saved::Nothing => None,
        };
        let token = http::access_token(&request.account, PLATFORM);
        let id = match saved.and_then(|p| p.video_id) {
            Some(id) => {
                tracing::info!(video = %id, "the video was uploaded by an earlier attempt");
                id
            }
            None => self.upload(request, token.clone()?, url, &metadata).await?,
        };
        // From here the video exists: a state that cannot be read (no token, a refused token,
        // a 5xx, the quota) is published, never a failure that would say nothing was.
        match token {
            Ok(token) => self.processed(token, &id).await?,
            Err(e) => processing::unread_state(&id, &e),
        }
        Ok(published(&id))
    }

    /// See the module documentation ("Exactly once").
    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let Some(url) = request.content.video_url.as_deref() else {
            return Ok(Existing::NotFound);
        };
        let p = match UploadProgress::load(request.progress.saved(), url) {
            Saved::This(p) => p,
            Saved::Other(p) => {
                tracing::warn!(
                    video = ?p.video_id,
                    final_sent = p.final_sent,
                    "the saved YouTube upload is of another media URL than the post's"
                );
                return Ok(Existing::CannotTell);
            }
            Saved::Nothing => return Ok(Existing::NotFound),
        };
        if let Some(id) = &p.video_id {
            // The upload completed: only YouTube saying the video failed or is gone is
            // `NotFound` (`publish` then reports that from the saved id).
            let state = match http::access_token(&request.account, PLATFORM) {
                Ok(token) => self.video_state(token, id).await,
                Err(e) => Err(e),
            };
            return Ok(match state {
                Ok(state) => match processing::verdict(state.as_ref()) {
                    Verdict::Failed(_) => Existing::NotFound,
                    Verdict::Done | Verdict::Waiting => Existing::Found(published(id)),
                },
                Err(e) => {
                    processing::unread_state(id, &e);
                    Existing::Found(published(id))
                }
            });
        }
        if p.session.is_none() {
            return Ok(Existing::NotFound);
        }
        let token = http::access_token(&request.account, PLATFORM)?;
        Ok(match self.session_status(token, &p).await? {
            SessionState::Complete(id) => {
                let mut p = p;
                p.video_id = Some(id.clone());
                request.progress.save(p.to_json()).await?;
                Existing::Found(published(&id))
            }
            SessionState::Incomplete(_) => Existing::NotFound,
            SessionState::Gone if p.final_sent => Existing::CannotTell,
            SessionState::Gone => Existing::NotFound,
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
            ("client_id", client_id),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("access_type", "offline"),
            ("prompt", "consent"),
            ("include_granted_scopes", "true"),
            ("state", request.state.as_str()),
            ("code_challenge", request.code_challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let query = http::query_string(&query);
        Ok(AuthorizationStart {
            url: format!("{}?{query}", self.settings.auth_url),
            pending: json!({}),
        })
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        let tokens = self
            .token_endpoint()?
            .exchange(exchange, &[("code_verifier", &exchange.code_verifier)])
            .await?;
        if !UPLOAD_SCOPES.iter().any(|s| tokens.grants(s)) {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "Google did not grant permission to upload videos (youtube.upload): connect \
                 again and leave that permission ticked.",
            ));
        }
        let response = self
            .client
            .get(format!(
                "{}/youtube/v3/channels?part=snippet,contentDetails&mine=true",
                self.settings.api_url
            ))
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .map_err(|e| http::connect_unavailable(&e, "Google"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http::connect_unavailable(&e, "Google"))?;
        if !status.is_success() {
            return Err(connect_failure(status, &bytes, "the channel request"));
        }
        let list: ChannelList = serde_json::from_slice(&bytes).map_err(|_| {
            ConnectError::new(
                ConnectErrorKind::Unavailable,
                "YouTube answered the channel request in an unexpected form.",
            )
            .with_platform_error(http::platform_text(&bytes))
        })?;
        let Some(channel) = list.items.into_iter().find(|c| !c.id.is_empty()) else {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "This Google account has no YouTube channel: create one on YouTube, then connect \
                 again.",
            ));
        };
        let snippet = channel.snippet.unwrap_or_default();
        let uploads = channel
            .content_details
            .and_then(|c| c.related_playlists)
            .and_then(|r| r.uploads);
        Ok(ConnectedAccount {
            account_id: channel.id.clone(),
            username: snippet.custom_url.filter(|u| !u.is_empty()),
            display_name: snippet.title.filter(|t| !t.is_empty()),
            meta: json!({
                "channel_id": channel.id,
                "uploads_playlist": uploads,
                "scope": tokens.scope,
                "refresh_token_issued": tokens.refresh_token.as_deref().is_some_and(|t| !t.is_empty()),
            }),
            tokens: tokens.into_token_set(ASSUMED_TOKEN_LIFETIME),
        })
    }

    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        let tokens = self
            .token_endpoint()?
            .refresh(
                account,
                "Google issued no refresh token for this YouTube account: reconnect it.",
            )
            .await?;
        Ok(tokens.into_token_set(ASSUMED_TOKEN_LIFETIME))
    }
}

fn published(id: &str) -> PublishedPost {
    PublishedPost {
        id: id.to_owned(),
        url: Some(format!("{WATCH_URL_PREFIX}{id}")),
    }
}
