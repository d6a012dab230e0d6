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
//!    `processingFailureReason`) end the target `failed` with YouTube's reason. **Still
//!    processing at the deadline: published.** The video exists on the channel with the
//!    privacy asked for, and YouTube makes it watchable when processing ends (long videos take
//!    hours; waiting across retries would spend the engine's attempts and could end a target
//!    `failed` although its video is on YouTube); the connector logs that processing had not
//!    finished. It never uploads again.
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
//! `find_existing`: with a saved video id, reads it (`Found` unless YouTube reports it failed,
//! rejected or gone, when `NotFound` lets `publish` report that from the saved id, never
//! uploading); with a saved session, asks it as above (`Found` for a completed upload,
//! `NotFound` while incomplete, `CannotTell` for an expired session after the last chunk, else
//! `NotFound`); with neither, nothing was uploaded: `NotFound`.
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

use crate::PlatformSettings;
use crate::graph::Polling;
use crate::http::{self, Effect, TOKEN_INVALID};
use crate::media::{MediaLimits, MediaSource, MediaStream};
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc, Weekday};
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
use soku_core::posts::{MediaType, PlatformOptions, PostContent, YoutubePrivacy};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_API_URL: &str = "https://www.googleapis.com";
pub const DEFAULT_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Uploading videos, and reading the channel (which `youtube.upload` alone does not allow).
pub const SCOPES: &str =
    "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly";
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

const PLATFORM: &str = "YouTube";

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

    fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.settings.api_url))
            .bearer_auth(token)
    }

    /// Sends a request and reads the whole answer; a non-2xx answer becomes its failure.
    async fn call(
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
    async fn send(
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

    /// The session URI goes only to Google (or to the configured API's own origin, for fakes
    /// and staging setups): it carries the account's token.
    fn check_session_uri(&self, uri: &str) -> Result<(), PublishError> {
        let ok = url::Url::parse(uri).ok().is_some_and(|u| {
            let google = u.scheme() == "https"
                && u.host_str().is_some_and(|h| {
                    let h = h.to_ascii_lowercase();
                    h == "googleapis.com" || h.ends_with(".googleapis.com")
                });
            let same_origin =
                url::Url::parse(&self.settings.api_url).is_ok_and(|api| api.origin() == u.origin());
            google || same_origin
        });
        if ok {
            Ok(())
        } else {
            Err(PublishError::new(
                FailureClass::Permanent,
                "unexpected_response",
                format!("{PLATFORM} named an upload session outside Google; not uploading."),
            ))
        }
    }

    /// The video id of the post's upload: the saved one, the one a saved session completed, or
    /// a new upload's (resumed from a saved session when it still stands).
    async fn upload(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        metadata: &Value,
    ) -> Result<String, PublishError> {
        let saved = UploadProgress::for_video(request.progress.saved(), url);
        let mut resume = None;
        if let Some(p) = saved.filter(|p| p.session.is_some()) {
            match self.session_status(token, &p).await? {
                SessionState::Complete(id) => {
                    tracing::info!(video = %id, "the saved YouTube upload session had completed");
                    let mut p = p;
                    p.video_id = Some(id.clone());
                    request.progress.save(p.to_json()).await?;
                    return Ok(id);
                }
                SessionState::Incomplete(received) => {
                    tracing::info!(received, size = p.size, "resuming a YouTube upload");
                    resume = Some((p, received));
                }
                SessionState::Gone if p.final_sent => return Err(outcome_unknown()),
                SessionState::Gone => {
                    tracing::info!("the YouTube upload session expired before completing; starting a new one");
                }
            }
        }
        for restart in [false, true] {
            let stream = self.media.stream(url, &VIDEO_LIMITS).await?;
            check_stream(&stream)?;
            let (progress, offset) = match resume.take() {
                Some((p, received)) if !restart && p.size == stream.size => (p, received),
                _ => {
                    let (size, mime) = (stream.size, stream.mime);
                    let p = self
                        .start_session(request, token, url, metadata, size, mime)
                        .await?;
                    (p, 0)
                }
            };
            match self
                .send_chunks(request, token, stream, progress, offset)
                .await?
            {
                Sent::Done(id) => return Ok(id),
                // The session expired before its last chunk: nothing was created.
                Sent::Expired if !restart => {
                    tracing::info!("the YouTube upload session expired mid-upload; starting a new one");
                }
                Sent::Expired => break,
            }
        }
        Err(PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "upload_session_expired",
            format!("{PLATFORM} let the upload session expire twice; the post will be tried again."),
        ))
    }

    /// `videos.insert` with `uploadType=resumable`: the session URI, saved.
    async fn start_session(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        metadata: &Value,
        size: u64,
        mime: &str,
    ) -> Result<UploadProgress, PublishError> {
        let (_, headers, body) = self
            .call(
                self.api(
                    reqwest::Method::POST,
                    "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status",
                    token,
                )
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=UTF-8",
                )
                .header("X-Upload-Content-Length", size.to_string())
                .header("X-Upload-Content-Type", mime)
                .body(metadata.to_string()),
                Effect::Repeatable,
            )
            .await?;
        let session = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "unexpected_response",
                    format!("{PLATFORM} started the upload without naming its session."),
                )
                .with_platform_error(http::platform_text(&body))
            })?
            .to_owned();
        self.check_session_uri(&session)?;
        let progress = UploadProgress {
            video_url: url.to_owned(),
            session: Some(session),
            size,
            final_sent: false,
            video_id: None,
        };
        request.progress.save(progress.to_json()).await?;
        Ok(progress)
    }

    /// Asks the session how far it got.
    async fn session_status(
        &self,
        token: &str,
        p: &UploadProgress,
    ) -> Result<SessionState, PublishError> {
        let session = p.session.as_deref().unwrap_or_default();
        self.check_session_uri(session)?;
        let (status, headers, body) = self
            .send(
                self.client
                    .put(session)
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_LENGTH, "0")
                    .header(reqwest::header::CONTENT_RANGE, format!("bytes */{}", p.size)),
                Effect::Repeatable,
            )
            .await?;
        match status.as_u16() {
            200 | 201 => Ok(SessionState::Complete(video_id(&body, Effect::Repeatable)?)),
            308 => Ok(SessionState::Incomplete(acknowledged(&headers))),
            404 | 410 => Ok(SessionState::Gone),
            _ => Err(classify(status, &headers, &body, Effect::Repeatable)),
        }
    }

    /// PUTs the file from `offset` in chunks; the progress saved before the last chunk and
    /// with the video id after it.
    async fn send_chunks(
        &self,
        request: &PublishRequest,
        token: &str,
        stream: MediaStream,
        mut progress: UploadProgress,
        offset: u64,
    ) -> Result<Sent, PublishError> {
        let MediaStream {
            size, mut chunks, ..
        } = stream;
        let session = progress.session.clone().unwrap_or_default();
        let changed = || {
            PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "media_changed",
                "The video did not have the size it announced; the post will be tried again.",
            )
        };
        let mut read = 0u64;
        let mut start = offset;
        let mut chunk = bytes::BytesMut::new();
        loop {
            let next = chunks.next().await;
            let done_reading = next.is_none();
            if let Some(piece) = next {
                let mut piece = piece?;
                if read + (piece.len() as u64) > size {
                    return Err(changed());
                }
                // Bytes the session already has are read past.
                if read < offset {
                    let skip = (offset - read).min(piece.len() as u64) as usize;
                    let _ = piece.split_to(skip);
                    read += skip as u64;
                }
                read += piece.len() as u64;
                chunk.extend_from_slice(&piece);
            } else if read != size {
                return Err(changed());
            }
            // Send every full chunk, and the rest once the file is read.
            while chunk.len() as u64 >= self.chunk_bytes || (done_reading && !chunk.is_empty()) {
                let len = (chunk.len() as u64).min(self.chunk_bytes);
                let is_last = start + len == size;
                if !is_last && len < self.chunk_bytes {
                    return Err(changed());
                }
                let body = chunk.split_to(len as usize).freeze();
                if is_last && !progress.final_sent {
                    progress.final_sent = true;
                    request.progress.save(progress.to_json()).await?;
                }
                let effect = if is_last {
                    Effect::Creates
                } else {
                    Effect::Repeatable
                };
                let (status, headers, answer) = self
                    .send(
                        self.client
                            .put(&session)
                            .bearer_auth(token)
                            .header(
                                reqwest::header::CONTENT_RANGE,
                                format!("bytes {start}-{}/{size}", start + len - 1),
                            )
                            .body(body),
                        effect,
                    )
                    .await?;
                match status.as_u16() {
                    200 | 201 => {
                        let id = video_id(&answer, effect)?;
                        progress.video_id = Some(id.clone());
                        request.progress.save(progress.to_json()).await?;
                        return Ok(Sent::Done(id));
                    }
                    308 => {
                        let acked = acknowledged(&headers);
                        if acked != start + len {
                            return Err(PublishError::new(
                                FailureClass::Retryable { retry_after: None },
                                "upload_out_of_step",
                                format!(
                                    "{PLATFORM} acknowledged {acked} bytes of the video where \
                                     {} were sent; the next attempt resumes from its count.",
                                    start + len
                                ),
                            ));
                        }
                        start = acked;
                    }
                    404 | 410 => return Ok(Sent::Expired),
                    _ => return Err(classify(status, &headers, &answer, effect)),
                }
            }
            if done_reading {
                // Every byte went out and no chunk completed the upload.
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "unexpected_response",
                    format!("{PLATFORM} took every byte of the video without completing the upload."),
                ));
            }
        }
    }

    /// Waits for YouTube to process the video: `Ok` once processed, or still processing at the
    /// deadline (see the module documentation); a `Permanent` error when it failed.
    async fn processed(&self, token: &str, id: &str) -> Result<(), PublishError> {
        let mut backoff = self.polling.start();
        loop {
            let state = self.video_state(token, id).await?;
            match state.as_ref().map(VideoState::verdict) {
                Some(Verdict::Done) => return Ok(()),
                Some(Verdict::Failed(e)) => return Err(e),
                Some(Verdict::Waiting) | None => {}
            }
            if !backoff.wait().await {
                tracing::info!(
                    video = %id,
                    status = ?state.as_ref().map(|s| s.status.upload_status.as_str()),
                    "YouTube is still processing the video; it is on the channel and YouTube \
                     publishes it when processing ends"
                );
                return Ok(());
            }
        }
    }

    /// `videos.list?part=status,processingDetails&id=ID`; `None` when YouTube does not list it.
    async fn video_state(&self, token: &str, id: &str) -> Result<Option<VideoState>, PublishError> {
        let (_, _, body) = self
            .call(
                self.api(
                    reqwest::Method::GET,
                    &format!(
                        "/youtube/v3/videos?part=status,processingDetails&id={}",
                        percent_encode(id)
                    ),
                    token,
                ),
                Effect::Repeatable,
            )
            .await?;
        let list: VideoList = http::parse_json(&body, Effect::Repeatable, PLATFORM)?;
        Ok(list.items.into_iter().find(|v| v.id == id).map(|mut v| {
            v.raw = http::platform_text(&body);
            v
        }))
    }

    fn client_credentials(&self) -> Result<(&str, &str), ConnectError> {
        match (
            self.settings.client_id.as_deref(),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| s.expose().as_str()),
        ) {
            (Some(id), Some(secret)) => Ok((id, secret)),
            _ => Err(ConnectError::new(
                ConnectErrorKind::NotConfigured,
                "YouTube is not configured on this server (SOKU_YOUTUBE_CLIENT_ID and \
                 SOKU_YOUTUBE_CLIENT_SECRET).",
            )),
        }
    }

    /// `POST {token_url}` with a form body; the token answer or why it failed.
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, ConnectError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(&self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| unavailable(&e))?;
        if status.is_success() {
            return serde_json::from_slice::<TokenResponse>(&bytes)
                .ok()
                .filter(|t| !t.access_token.is_empty())
                .ok_or_else(|| {
                    ConnectError::new(
                        ConnectErrorKind::Unavailable,
                        "Google answered the token request in an unexpected form.",
                    )
                    .with_platform_error(http::platform_text(&bytes))
                });
        }
        Err(connect_failure(status, &bytes, "the token request"))
    }
}

#[async_trait]
impl Connector for YouTube {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let url = check_media(&request.content)?;
        let metadata = metadata(&request.content, &request.options, url)?;
        let token = http::access_token(&request.account, PLATFORM)?;
        let saved = UploadProgress::for_video(request.progress.saved(), url);
        let id = match saved.and_then(|p| p.video_id) {
            Some(id) => {
                tracing::info!(video = %id, "the video was uploaded by an earlier attempt");
                id
            }
            None => self.upload(request, token, url, &metadata).await?,
        };
        self.processed(token, &id).await?;
        Ok(published(&id))
    }

    /// See the module documentation ("Exactly once").
    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let Some(url) = request.content.video_url.as_deref() else {
            return Ok(Existing::NotFound);
        };
        let Some(p) = UploadProgress::for_video(request.progress.saved(), url) else {
            return Ok(Existing::NotFound);
        };
        let token = http::access_token(&request.account, PLATFORM)?;
        if let Some(id) = &p.video_id {
            return Ok(match self.video_state(token, id).await? {
                Some(state) if !matches!(state.verdict(), Verdict::Failed(_)) => {
                    Existing::Found(published(id))
                }
                _ => Existing::NotFound,
            });
        }
        if p.session.is_none() {
            return Ok(Existing::NotFound);
        }
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
        let (client_id, _) = self.client_credentials()?;
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
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        Ok(AuthorizationStart {
            url: format!("{}?{query}", self.settings.auth_url),
            pending: json!({}),
        })
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        let (client_id, client_secret) = self.client_credentials()?;
        if exchange.code.is_empty() {
            return Err(ConnectError::new(
                ConnectErrorKind::Invalid,
                "Google sent no authorization code.",
            ));
        }
        let tokens = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", &exchange.code),
                ("redirect_uri", &exchange.redirect_uri),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("code_verifier", &exchange.code_verifier),
            ])
            .await?;
        if let Some(scope) = tokens.scope.as_deref()
            && !scope.split(' ').any(|s| UPLOAD_SCOPES.contains(&s))
        {
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
            .map_err(|e| unavailable(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| unavailable(&e))?;
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
            tokens: tokens.into_token_set(),
        })
    }

    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        let (client_id, client_secret) = self.client_credentials()?;
        let Some(refresh_token) = account.refresh_token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(ConnectError::new(
                ConnectErrorKind::NotRefreshable,
                "Google issued no refresh token for this YouTube account: reconnect it.",
            ));
        };
        let tokens = self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
                ("client_secret", client_secret),
            ])
            .await?;
        Ok(tokens.into_token_set())
    }
}

fn published(id: &str) -> PublishedPost {
    PublishedPost {
        id: id.to_owned(),
        url: Some(format!("{WATCH_URL_PREFIX}{id}")),
    }
}

fn outcome_unknown() -> PublishError {
    PublishError::new(
        FailureClass::Ambiguous,
        "upload_outcome_unknown",
        format!(
            "The last part of the video was sent to {PLATFORM}, its answer was lost and the \
             upload session has expired: whether the video was created cannot be told."
        ),
    )
}

/// The session's answer to a status query.
enum SessionState {
    Complete(String),
    /// Bytes received.
    Incomplete(u64),
    Gone,
}

enum Sent {
    Done(String),
    Expired,
}

/// What an attempt at the post's upload saves (`PublishRequest::progress`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct UploadProgress {
    /// The video the upload is of.
    video_url: String,
    /// The resumable session URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    /// The file's size, as the session was told.
    #[serde(default)]
    size: u64,
    /// The chunk completing the upload was sent (its answer may have been lost).
    #[serde(default)]
    final_sent: bool,
    /// The video the completed upload made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    video_id: Option<String>,
}

impl UploadProgress {
    fn for_video(saved: &Value, url: &str) -> Option<UploadProgress> {
        let p: UploadProgress = serde_json::from_value(saved.clone()).ok()?;
        (p.video_url == url).then_some(p)
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("progress serializes")
    }
}

/// The bytes a `308` acknowledges: `Range: bytes=0-N` is N + 1; none is 0.
fn acknowledged(headers: &HeaderMap) -> u64 {
    headers
        .get(reqwest::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes=0-"))
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |n| n + 1)
}

/// The `id` of a video resource answer.
fn video_id(body: &[u8], effect: Effect) -> Result<String, PublishError> {
    #[derive(Deserialize)]
    struct Created {
        #[serde(default)]
        id: String,
    }
    let created: Created = http::parse_json(body, effect, PLATFORM)?;
    if created.id.is_empty() {
        let class = match effect {
            Effect::Creates => FailureClass::Ambiguous,
            Effect::Repeatable => FailureClass::Retryable { retry_after: None },
        };
        return Err(PublishError::new(
            class,
            "unexpected_response",
            format!("{PLATFORM} completed the upload without naming the video."),
        )
        .with_platform_error(http::platform_text(body)));
    }
    Ok(created.id)
}

/// The post's video URL: YouTube takes one video alone.
fn check_media(content: &PostContent) -> Result<&str, PublishError> {
    if !content.image_urls.is_empty() {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            "YouTube takes one video alone; this post has images.",
        ));
    }
    match content.video_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => Ok(url),
        None => Err(PublishError::new(
            FailureClass::Permanent,
            "missing_video",
            if content.media_type == MediaType::Video {
                "This YouTube post names no video."
            } else {
                "YouTube publishes videos: this post has none."
            },
        )),
    }
}

fn check_stream(stream: &MediaStream) -> Result<(), PublishError> {
    if !stream.mime.starts_with("video/") {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            format!("YouTube takes video files; this one is {}.", stream.mime),
        ));
    }
    if stream.size == 0 || stream.size > VIDEO_MAX_BYTES {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "media_too_large",
            format!(
                "YouTube takes videos of 1 byte to 256 GB; this one has {} bytes.",
                stream.size
            ),
        ));
    }
    Ok(())
}

/// `<` and `>` replaced: YouTube refuses them in titles, descriptions and tags.
fn clean(s: &str) -> String {
    s.replace('<', "‹").replace('>', "›")
}

fn refuse(code: &str, message: String) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

/// The video resource to insert (`snippet`, `status`), checked against YouTube's limits.
fn metadata(
    content: &PostContent,
    options: &PlatformOptions,
    url: &str,
) -> Result<Value, PublishError> {
    let options = match options {
        PlatformOptions::Youtube(o) => o.clone(),
        _ => Default::default(),
    };
    let text = content.text.as_deref().unwrap_or("").trim();
    let title = match options.title.as_deref() {
        Some(t) => {
            let t = clean(t.trim());
            let n = t.chars().count();
            if n > TITLE_MAX_CHARS {
                return Err(refuse(
                    "title_too_long",
                    format!("The YouTube title is {n} characters; YouTube allows {TITLE_MAX_CHARS}."),
                ));
            }
            t
        }
        None => {
            let line = text.lines().map(str::trim).find(|l| !l.is_empty());
            let base = line.map(str::to_owned).unwrap_or_else(|| file_title(url));
            cut_chars(&clean(&base), TITLE_MAX_CHARS)
        }
    };
    if title.trim().is_empty() {
        return Err(refuse(
            "missing_title",
            "A YouTube video needs a title (post.options.youtube.title).".to_owned(),
        ));
    }
    let description = match options.description.as_deref() {
        Some(d) => {
            let d = clean(d);
            if d.len() > DESCRIPTION_MAX_BYTES {
                return Err(refuse(
                    "description_too_long",
                    format!(
                        "The YouTube description is {} bytes; YouTube allows {DESCRIPTION_MAX_BYTES}.",
                        d.len()
                    ),
                ));
            }
            d
        }
        None => cut_bytes(&clean(text), DESCRIPTION_MAX_BYTES),
    };
    let tags: Vec<String> = options
        .tags
        .unwrap_or_default()
        .iter()
        .map(|t| clean(t.trim()))
        .filter(|t| !t.is_empty())
        .collect();
    let tags_len = tags
        .iter()
        .map(|t| t.chars().count() + if t.contains(' ') { 2 } else { 0 })
        .sum::<usize>()
        + tags.len().saturating_sub(1);
    if tags_len > TAGS_MAX_CHARS {
        return Err(refuse(
            "tags_too_long",
            format!(
                "The YouTube tags take {tags_len} characters together (with commas, and quotes \
                 around tags with spaces); YouTube allows {TAGS_MAX_CHARS}."
            ),
        ));
    }
    let privacy = match options.privacy_status.unwrap_or(YoutubePrivacy::Public) {
        YoutubePrivacy::Public => "public",
        YoutubePrivacy::Unlisted => "unlisted",
        YoutubePrivacy::Private => "private",
    };
    let mut snippet = json!({
        "title": title,
        "description": description,
        "categoryId": CATEGORY_ID,
    });
    if !tags.is_empty() {
        snippet["tags"] = json!(tags);
    }
    Ok(json!({
        "snippet": snippet,
        "status": {
            "privacyStatus": privacy,
            "selfDeclaredMadeForKids": options.made_for_kids.unwrap_or(false),
        },
    }))
}

/// A title from the file's name (`film.mp4` → `film`).
fn file_title(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
        })
        .map(|name| {
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            stem.replace(['_', '-'], " ").trim().to_owned()
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Video".to_owned())
}

fn cut_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn cut_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Google's error envelope.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: Option<GoogleError>,
}

#[derive(Deserialize, Default)]
struct GoogleError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize, Default)]
struct ErrorItem {
    #[serde(default)]
    reason: Option<String>,
}

/// The failure a non-2xx answer of the API stands for (see the module documentation).
fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], effect: Effect) -> PublishError {
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
    } else if has("rateLimitExceeded") || has("userRateLimitExceeded") || status.as_u16() == 429
    {
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

fn nth_sunday(year: i32, month: u32, n: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n as u8).expect("a Sunday")
}

/// Whether `t` falls in Pacific daylight time.
fn pacific_dst(t: DateTime<Utc>) -> bool {
    let y = t.year();
    // 02:00 PST = 10:00 UTC; 02:00 PDT = 09:00 UTC.
    let start = Utc.from_utc_datetime(&nth_sunday(y, 3, 2).and_hms_opt(10, 0, 0).unwrap());
    let end = Utc.from_utc_datetime(&nth_sunday(y, 11, 1).and_hms_opt(9, 0, 0).unwrap());
    t >= start && t < end
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(s: &str) -> String {
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

fn unavailable(e: &reqwest::Error) -> ConnectError {
    let what = if e.is_timeout() {
        "Google did not answer in time."
    } else {
        "Google could not be reached."
    };
    ConnectError::new(ConnectErrorKind::Unavailable, what)
}

/// A refused token or channel request: `invalid_grant` and other refusals are `Rejected`,
/// `invalid_client` (this server's credentials) `NotConfigured`, 429 and 5xx `Unavailable`.
fn connect_failure(status: StatusCode, body: &[u8], what: &str) -> ConnectError {
    let raw = http::platform_text(body);
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = v["error"].as_str().unwrap_or("");
    let detail = v["error_description"]
        .as_str()
        .or(v["error"]["message"].as_str())
        .unwrap_or(error);
    let kind = match status.as_u16() {
        429 | 500..=599 => ConnectErrorKind::Unavailable,
        _ if error == "invalid_client" => ConnectErrorKind::NotConfigured,
        _ if v["error"]["errors"][0]["reason"] == "quotaExceeded" => ConnectErrorKind::Unavailable,
        _ => ConnectErrorKind::Rejected,
    };
    let message = match kind {
        ConnectErrorKind::Unavailable => {
            format!("Google could not serve {what} ({status}); try again later.")
        }
        ConnectErrorKind::NotConfigured => format!(
            "Google refused this server's client credentials for {what}: check \
             SOKU_YOUTUBE_CLIENT_ID and SOKU_YOUTUBE_CLIENT_SECRET."
        ),
        _ if detail.is_empty() => format!("Google refused {what} ({status})."),
        _ => format!("Google refused {what} ({status}): {detail}"),
    };
    ConnectError::new(kind, message).with_platform_error(raw)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

impl TokenResponse {
    fn into_token_set(self) -> TokenSet {
        TokenSet {
            access_token: self.access_token,
            refresh_token: self.refresh_token.filter(|t| !t.is_empty()),
            expires_at: self
                .expires_in
                .filter(|s| *s > 0)
                .map(|s| Utc::now() + ChronoDuration::seconds(s)),
        }
    }
}

#[derive(Deserialize)]
struct ChannelList {
    #[serde(default)]
    items: Vec<Channel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Channel {
    #[serde(default)]
    id: String,
    #[serde(default)]
    snippet: Option<ChannelSnippet>,
    #[serde(default)]
    content_details: Option<ChannelContentDetails>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ChannelSnippet {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    custom_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelContentDetails {
    #[serde(default)]
    related_playlists: Option<RelatedPlaylists>,
}

#[derive(Deserialize)]
struct RelatedPlaylists {
    #[serde(default)]
    uploads: Option<String>,
}

#[derive(Deserialize)]
struct VideoList {
    #[serde(default)]
    items: Vec<VideoState>,
}

/// A video as `videos.list?part=status,processingDetails` answers it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VideoState {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "status")]
    status: VideoStatusPart,
    #[serde(default)]
    processing_details: ProcessingDetails,
    #[serde(skip)]
    raw: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VideoStatusPart {
    #[serde(default)]
    upload_status: String,
    #[serde(default)]
    failure_reason: Option<String>,
    #[serde(default)]
    rejection_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ProcessingDetails {
    #[serde(default)]
    processing_status: String,
    #[serde(default)]
    processing_failure_reason: Option<String>,
}

enum Verdict {
    Done,
    Waiting,
    Failed(PublishError),
}

impl VideoState {
    fn verdict(&self) -> Verdict {
        let failed = |code: &str, what: &str, reason: Option<&str>| {
            let reason = reason.filter(|r| !r.is_empty()).unwrap_or("no reason given");
            Verdict::Failed(
                PublishError::new(
                    FailureClass::Permanent,
                    code,
                    format!("{PLATFORM} {what} the video: {reason}"),
                )
                .with_platform_error(self.raw.clone()),
            )
        };
        match self.status.upload_status.as_str() {
            "processed" => return Verdict::Done,
            "failed" => {
                return failed(
                    "media_processing_failed",
                    "could not process",
                    self.status
                        .failure_reason
                        .as_deref()
                        .or(self.processing_details.processing_failure_reason.as_deref()),
                );
            }
            "rejected" => {
                return failed(
                    "media_rejected",
                    "rejected",
                    self.status.rejection_reason.as_deref(),
                );
            }
            "deleted" => return failed("media_deleted", "deleted", Some("deleted")),
            _ => {}
        }
        match self.processing_details.processing_status.as_str() {
            "failed" | "terminated" => failed(
                "media_processing_failed",
                "could not process",
                self.processing_details.processing_failure_reason.as_deref(),
            ),
            _ => Verdict::Waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soku_core::posts::YoutubeOptions;

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

    fn content(text: Option<&str>) -> PostContent {
        PostContent {
            text: text.map(str::to_owned),
            media_type: MediaType::Video,
            image_urls: vec![],
            video_url: Some("https://m.test/media/med_1/my_film.mp4".into()),
        }
    }

    #[test]
    fn metadata_defaults_and_limits() {
        let url = "https://m.test/media/med_1/my_film.mp4";
        let m = metadata(
            &content(Some("First line <3\nmore")),
            &PlatformOptions::None,
            url,
        )
        .unwrap();
        assert_eq!(m["snippet"]["title"], "First line ‹3");
        assert_eq!(m["snippet"]["description"], "First line ‹3\nmore");
        assert_eq!(m["status"]["privacyStatus"], "public");
        assert_eq!(m["status"]["selfDeclaredMadeForKids"], false);
        assert!(m["snippet"].get("tags").is_none());
        let m = metadata(&content(None), &PlatformOptions::None, url).unwrap();
        assert_eq!(m["snippet"]["title"], "my film");
        let long = "x".repeat(150);
        let m = metadata(&content(Some(&long)), &PlatformOptions::None, url).unwrap();
        assert_eq!(m["snippet"]["title"].as_str().unwrap().chars().count(), 100);
        let opts = |o: YoutubeOptions| PlatformOptions::Youtube(o);
        let e = metadata(
            &content(Some("t")),
            &opts(YoutubeOptions {
                title: Some("t".repeat(101)),
                ..Default::default()
            }),
            url,
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.class),
            ("title_too_long", FailureClass::Permanent)
        );
        let e = metadata(
            &content(Some("t")),
            &opts(YoutubeOptions {
                tags: Some(vec!["a b".repeat(100), "c".repeat(250)]),
                ..Default::default()
            }),
            url,
        )
        .unwrap_err();
        assert_eq!(e.code, "tags_too_long");
        let big = "é".repeat(3000);
        let m = metadata(&content(Some(&big)), &PlatformOptions::None, url).unwrap();
        assert!(m["snippet"]["description"].as_str().unwrap().len() <= 5000);
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
        let e = classify(s(403), &h, &body(403, "quotaExceeded", "youtube.quota"), Effect::Repeatable);
        assert_eq!(e.code, "quota_exceeded");
        assert!(matches!(e.class, FailureClass::Retryable { retry_after: Some(d) } if d <= Duration::from_secs(24 * 3600)));
        let e = classify(s(400), &h, &body(400, "uploadLimitExceeded", "youtube.video"), Effect::Repeatable);
        assert_eq!(
            e.class,
            FailureClass::Retryable {
                retry_after: Some(UPLOAD_LIMIT_WAIT)
            }
        );
        let e = classify(s(401), &h, &body(401, "authError", "global"), Effect::Creates);
        assert_eq!(e.code, TOKEN_INVALID);
        let e = classify(s(400), &h, &body(400, "invalidTitle", "youtube.video"), Effect::Repeatable);
        assert_eq!((e.code.as_str(), e.class), ("rejected", FailureClass::Permanent));
        assert!(e.message.contains("invalidTitle"));
        let e = classify(s(503), &h, &body(503, "backendError", "global"), Effect::Creates);
        assert_eq!(e.class, FailureClass::Ambiguous);
        let e = classify(s(503), &h, b"<html>", Effect::Repeatable);
        assert!(matches!(e.class, FailureClass::Retryable { .. }));
    }

    #[test]
    fn range_headers_give_the_bytes_received() {
        let mut h = HeaderMap::new();
        assert_eq!(acknowledged(&h), 0);
        h.insert("range", "bytes=0-262143".parse().unwrap());
        assert_eq!(acknowledged(&h), 262_144);
    }
}
