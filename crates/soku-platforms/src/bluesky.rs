//! Bluesky (AT Protocol), through the account's PDS ("personal data server") and its XRPC API.
//!
//! ## Connecting
//! The user gives a handle (or DID or email) and an **app password**; optionally the PDS to log in
//! at (`pds`, default `settings.api_url`, i.e. `https://bsky.social`, see [`DEFAULT_API_URL`]).
//! `com.atproto.server.createSession` {identifier, password} answers {accessJwt, refreshJwt,
//! handle, did, didDoc?}. The password is used for that one call and never kept: only the two
//! JWTs are stored. `expires_at` is the access JWT's `exp` claim (its payload is read, its
//! signature is the PDS's business). When the DID document names the account's PDS (the service
//! `#atproto_pds` of type `AtprotoPersonalDataServer`; `bsky.social` is only an entryway), later
//! calls go there. `meta` keeps {pds, did, handle}. A session whose access JWT has the scope
//! `com.atproto.access` was made with the account's main password: it is refused (an app password
//! is asked for instead, and the session is ended with `com.atproto.server.deleteSession`), so
//! that this server never holds full control of an account.
//!
//! Refreshing: `com.atproto.server.refreshSession` with `Authorization: Bearer <refreshJwt>` (the
//! refresh JWT only) answers a new pair; the refresh JWT rotates. `ExpiredToken` / `InvalidToken`
//! / `AccountTakedown` (400) or a 401 mean the session is gone: `Rejected`.
//!
//! ## Publishing
//! 1. Images (up to 4, `app.bsky.embed.images`, each a blob of at most 1,000,000 bytes of type
//!    `image/*`, the lexicon's `maxSize`) are fetched through the `MediaSource` and uploaded with
//!    `com.atproto.repo.uploadBlob` (the raw bytes, `Content-Type` the sniffed type) -> {blob}.
//!    Or one video alone (`content.video_url`, no images: a post has one embed), see "Video".
//! 2. Rich text: links (`http(s)://…`), mentions (`@handle`, resolved to a DID with
//!    `com.atproto.identity.resolveHandle`; a handle that does not resolve gets no facet) and
//!    hashtags become `app.bsky.richtext.facet`s, their ranges in UTF-8 **bytes**.
//! 3. `com.atproto.repo.createRecord` {repo: DID, collection: `app.bsky.feed.post`, rkey, record:
//!    {$type, text, createdAt, facets?, embed?}} -> {uri, cid}. Text: at most 300 graphemes and
//!    3000 bytes (`app.bsky.feed.post` lexicon).
//!
//! The post's URL is `https://bsky.app/profile/{handle}/post/{rkey}`; its id the `at://` URI.
//!
//! ## Video
//! The "recommended method" of docs.bsky.app "Uploading Video" (docs/tutorials/video.mdx in
//! bluesky-social/bsky-docs): the video goes to Bluesky's video service, which processes it and
//! stores the result on the account's PDS, before the post is made.
//! 1. A service auth token from the PDS: `com.atproto.server.getServiceAuth` {aud: the PDS's
//!    `did:web` (its host, a port written `%3A` as did:web asks), lxm:
//!    `com.atproto.repo.uploadBlob`, exp: now + 30 minutes (the tutorial's advice; the reference
//!    PDS refuses more than an hour, `BadExpiration`)} -> {token}. Asked for each upload, never kept.
//! 2. `POST {video service}/xrpc/app.bsky.video.uploadVideo?did={DID}&name={rkey}.mp4` with
//!    `Authorization: Bearer <service token>`, `Content-Type: video/mp4` and `Content-Length`, the
//!    body streamed from [`MediaSource::stream`] (never held whole) -> {jobStatus: {jobId, did,
//!    state}} (lexicon `app.bsky.video.uploadVideo`; the service has been seen to answer the
//!    jobStatus object bare, bluesky-social/atproto#3026, so both shapes are read). A video the
//!    service already processed for the account answers `409` {error: `already_exists`, jobId,
//!    state} (atproto#3097): that job is the video's. The service is [`DEFAULT_VIDEO_URL`] unless
//!    set ([`Bluesky::with_video_service`]). The file name is the record key, not the URL's last
//!    segment (a hosted file's name is its secret).
//! 3. `GET {video service}/xrpc/app.bsky.video.getJobStatus?jobId=` (no auth, as the tutorial)
//!    every [`VIDEO_POLL_INTERVAL`] until the job has a `blob` (lexicon `app.bsky.video.defs#jobStatus`:
//!    states `JOB_STATE_CREATED`, `_ENCODING`, `_ENCODED`, `_SCANNING`, `_SCANNED`, `_UPLOADING`,
//!    `_UPLOADED`, `_COMPLETED`, `_FAILED`; any other value means "in process"). The tutorial's
//!    note: a job may answer `already_exists` with the blob of the video processed before, so a
//!    `blob` is used whatever the state. `JOB_STATE_FAILED` without one is `Permanent`
//!    `media_processing_failed`, the service's `message` (else `error`) kept as the platform
//!    error. The wait is bounded by [`VIDEO_PROCESSING_MAX`] from the attempt's start
//!    ([`Bluesky::with_video_processing_wait`]); still processing then is `Retryable`
//!    (`media_processing`).
//! 4. The record's embed: `{$type: app.bsky.embed.video, video: <blob>, aspectRatio: {width,
//!    height}}` (lexicons `app.bsky.embed.video`, `app.bsky.embed.defs#aspectRatio`), the ratio
//!    from the video's facts in `PublishRequest::media` when they are known (left out otherwise).
//! - Limits: MP4 only, at most 300,000,000 bytes (the embed lexicon's `accept` and `maxSize`). The
//!   length limit is not in the lexicons (Bluesky's announcements say 3 minutes) and the daily
//!   quota is per account (`app.bsky.video.getUploadLimits`, not called): the service's refusal
//!   (a failed job or a 4xx) is reported as it says.
//! - Never uploaded twice: the progress ([`soku_core::connector::Progress`]) is saved once the job
//!   exists (`{"video_url", "job_id"}`) and once it has its blob (`"blob"` added). An attempt that
//!   finds saved progress for the same video goes straight to the record (a blob) or polls the
//!   saved job; only a job the service no longer knows (404) is uploaded again, and then the
//!   service's `409 already_exists` leads back to the processed video.
//!
//! ## Idempotency and reconciliation
//! The record key is chosen here, derived from `request.marker` (and `request.not_before`) as a
//! valid TID (13 characters of base32-sortable: a microsecond timestamp and a clock id, both
//! partly hashed from the marker), so every attempt for a target writes the same key and a
//! repeated `createRecord` cannot make a second post: the PDS refuses an existing key (today with
//! a 500, see bluesky-social/atproto#4725 and #4728, which proposes a named error). So after a 5xx,
//! a 409 or a 400 naming an existing record, the connector reads the key back with
//! `com.atproto.repo.getRecord`: a record there with this target's text is this target's post.
//! `find_existing` is that same `getRecord`: the record -> `Found`, `400 RecordNotFound` ->
//! `NotFound`, any other failure -> `Err` (the engine asks again later).
//!
//! ## Errors
//! XRPC errors are `{"error", "message"}`. `ExpiredToken` / `InvalidToken` (the PDS answers an
//! expired access JWT with a 400) and 401 -> `token_invalid`; 429 -> `Retryable` after
//! `ratelimit-reset` (Unix seconds); 5xx on `createRecord` -> `Ambiguous` (after the read-back
//! above); other 4xx -> `Permanent` with the platform's answer.
//!
//! Every request goes to a host the user named (their PDS), so all of them use the guarded client
//! of `net::NetPolicy`.
//!
//! Documented endpoints used (lexicons in bluesky-social/atproto, docs.bsky.app):
//! `com.atproto.server.createSession`, `com.atproto.server.refreshSession`,
//! `com.atproto.server.deleteSession`,
//! `com.atproto.repo.uploadBlob`, `com.atproto.repo.createRecord`, `com.atproto.repo.getRecord`,
//! `com.atproto.identity.resolveHandle`, `com.atproto.server.getServiceAuth`,
//! `app.bsky.video.uploadVideo`, `app.bsky.video.getJobStatus`; records `app.bsky.feed.post`,
//! `app.bsky.embed.images`, `app.bsky.embed.video`, `app.bsky.embed.defs`,
//! `app.bsky.richtext.facet` ("Links, mentions, and rich text"); video: docs.bsky.app
//! "Uploading Video" and the lexicons `app/bsky/video/{defs,uploadVideo,getJobStatus}.json`; record keys: the TID syntax of
//! atproto.com/specs/tid; rate limits: docs.bsky.app "Rate Limits".

use crate::PlatformSettings;
use crate::http::{self, Effect, TOKEN_INVALID};
use crate::media::{IMAGE_TYPES, MediaLimits, MediaSource, MediaStream};
use crate::net::NetPolicy;
use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use soku_core::connector::{
    AccountCredentials, ConnectError, ConnectErrorKind, ConnectMethod, ConnectedAccount, Connector,
    Existing, FailureClass, PublishError, PublishRequest, PublishedPost, TokenSet,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The PDS (entryway) accounts log in at unless they name another.
pub const DEFAULT_API_URL: &str = "https://bsky.social";
/// Where posts are shown.
pub const WEB_URL: &str = "https://bsky.app";
pub const POST_COLLECTION: &str = "app.bsky.feed.post";
/// `app.bsky.feed.post`: `text` maxGraphemes 300, maxLength 3000 (bytes).
pub const MAX_GRAPHEMES: usize = 300;
pub const MAX_TEXT_BYTES: usize = 3000;
/// `app.bsky.embed.images`: at most 4 images, each a blob of at most 1,000,000 bytes.
pub const MAX_IMAGES: usize = 4;
pub const IMAGE_LIMITS: MediaLimits = MediaLimits {
    max_bytes: 1_000_000,
    types: IMAGE_TYPES,
};
/// Bluesky's video service (docs.bsky.app "Uploading Video").
pub const DEFAULT_VIDEO_URL: &str = "https://video.bsky.app";
/// `app.bsky.embed.video`: `video` accepts `video/mp4` of at most 300,000,000 bytes.
pub const VIDEO_LIMITS: MediaLimits = MediaLimits {
    max_bytes: 300_000_000,
    types: &["video/mp4"],
};
/// The longest one attempt waits for the video service, from the attempt's start: inside the
/// engine's bound on one publish call (half its 120 s lease). The next attempt resumes the wait.
pub const VIDEO_PROCESSING_MAX: Duration = Duration::from_secs(40);
/// The pause between two `getJobStatus` polls (the tutorial polls every second).
pub const VIDEO_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long the upload request may take at least (the configured timeout when longer).
pub const VIDEO_UPLOAD_TIMEOUT: Duration = Duration::from_secs(50);
/// The service auth token's lifetime (the tutorial's 30 minutes).
const SERVICE_AUTH_SECS: i64 = 30 * 60;
const NAME: &str = "Bluesky";
/// The TID alphabet ("base32-sortable").
const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

pub struct Bluesky {
    settings: PlatformSettings,
    media: Arc<dyn MediaSource>,
    net: NetPolicy,
    client: reqwest::Client,
    /// The video service's base URL, without a trailing slash.
    video_url: String,
    /// The longest one attempt waits for a video's processing.
    video_wait: Duration,
    video_poll: Duration,
}

impl Bluesky {
    pub fn new(settings: PlatformSettings, media: Arc<dyn MediaSource>, net: NetPolicy) -> Self {
        // XRPC calls are not redirected; a redirect is refused rather than followed.
        let client = net.client(settings.timeout, 0);
        Self {
            settings,
            media,
            net,
            client,
            video_url: DEFAULT_VIDEO_URL.to_owned(),
            video_wait: VIDEO_PROCESSING_MAX,
            video_poll: VIDEO_POLL_INTERVAL,
        }
    }

    /// The video service's base URL ([`DEFAULT_VIDEO_URL`] unless set; tests point it at a fake).
    pub fn with_video_service(mut self, url: &str) -> Self {
        self.video_url = url.trim().trim_end_matches('/').to_owned();
        self
    }

    /// The longest one attempt waits for a video's processing ([`VIDEO_PROCESSING_MAX`] unless
    /// set), and the pause between polls ([`VIDEO_POLL_INTERVAL`]); tests set less.
    pub fn with_video_processing_wait(mut self, wait: Duration, poll: Duration) -> Self {
        self.video_wait = wait;
        self.video_poll = poll;
        self
    }

    /// `https://host[:port]` of a PDS the user named, checked against the network policy.
    fn pds_base(&self, raw: &str) -> Result<String, String> {
        let raw = raw.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("https://{raw}")
        };
        let url = reqwest::Url::parse(&with_scheme).map_err(|_| "not a URL".to_owned())?;
        self.net.check_url(&url)?;
        if url.path() != "/" && !url.path().is_empty() {
            return Err("a PDS URL has no path".into());
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }

    fn xrpc(base: &str, method: &str) -> String {
        format!("{base}/xrpc/{method}")
    }

    /// The account's PDS, DID and handle from what `connect_direct` stored.
    fn target(&self, account: &AccountCredentials) -> Result<Target, PublishError> {
        let meta = &account.meta;
        let pds_raw = meta
            .get("pds")
            .and_then(Value::as_str)
            .unwrap_or(&self.settings.api_url);
        let pds = self.pds_base(pds_raw).map_err(|why| {
            PublishError::new(
                FailureClass::Permanent,
                "invalid_account",
                format!("The account's PDS is not usable: {why}."),
            )
        })?;
        let did = meta
            .get("did")
            .and_then(Value::as_str)
            .unwrap_or(&account.account_id)
            .to_owned();
        if !did.starts_with("did:") {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "invalid_account",
                "The account has no DID; reconnect it.",
            ));
        }
        let handle = meta
            .get("handle")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| account.username.clone());
        Ok(Target { pds, did, handle })
    }

    fn post_url(target: &Target, rkey: &str) -> String {
        let who = target.handle.as_deref().unwrap_or(&target.did);
        format!("{WEB_URL}/profile/{who}/post/{rkey}")
    }

    async fn upload_blob(
        &self,
        target: &Target,
        token: &str,
        url: &str,
    ) -> Result<Value, PublishError> {
        let media = self.media.fetch(url, &IMAGE_LIMITS).await?;
        if !IMAGE_LIMITS.types.contains(&media.mime) {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "media_unavailable",
                format!(
                    "{} is not an image Bluesky accepts ({}).",
                    crate::media::describe(url),
                    media.mime
                ),
            ));
        }
        if media.bytes.len() as u64 > IMAGE_LIMITS.max_bytes {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "media_too_large",
                format!(
                    "{} is {} bytes; Bluesky takes images of at most {} bytes.",
                    crate::media::describe(url),
                    media.bytes.len(),
                    IMAGE_LIMITS.max_bytes
                ),
            ));
        }
        let request = self
            .client
            .post(Self::xrpc(&target.pds, "com.atproto.repo.uploadBlob"))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, media.mime)
            .body(media.bytes);
        let response = http::send(request, Effect::Repeatable, NAME).await?;
        let out: UploadBlobOutput = read_xrpc(response, Effect::Repeatable).await?;
        if !out.blob.is_object() {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                "Bluesky answered the upload without a blob.",
            ));
        }
        Ok(out.blob)
    }

    /// A service auth token for the video service to upload the processed video to the PDS.
    async fn service_auth(&self, target: &Target, token: &str) -> Result<String, PublishError> {
        let aud = service_did(&target.pds);
        let exp = (Utc::now().timestamp() + SERVICE_AUTH_SECS).to_string();
        let request = self
            .client
            .get(Self::xrpc(&target.pds, "com.atproto.server.getServiceAuth"))
            .bearer_auth(token)
            .query(&[
                ("aud", aud.as_str()),
                ("lxm", "com.atproto.repo.uploadBlob"),
                ("exp", exp.as_str()),
            ]);
        let response = http::send(request, Effect::Repeatable, NAME).await?;
        let out: ServiceAuthOutput = read_xrpc(response, Effect::Repeatable).await?;
        Ok(out.token)
    }

    /// The blob of the post's video, processed by the video service: what an earlier attempt
    /// saved, the job it saved, or a new upload.
    async fn video_blob(
        &self,
        request: &PublishRequest,
        target: &Target,
        token: &str,
        url: &str,
        started: Instant,
    ) -> Result<Value, PublishError> {
        let deadline = started + self.video_wait;
        let saved = serde_json::from_value::<VideoProgress>(request.progress.saved().clone())
            .ok()
            .filter(|p| p.video_url == url && !p.job_id.is_empty());
        if let Some(saved) = saved {
            if let Some(blob) = saved.blob.filter(is_blob) {
                tracing::info!(job_id = %saved.job_id, "posting a Bluesky video processed earlier");
                return Ok(blob);
            }
            if let Some(job) = self.job_status(&saved.job_id).await? {
                tracing::info!(job_id = %saved.job_id, "resuming a Bluesky video job");
                return self.processed(request, url, job, deadline).await;
            }
            tracing::info!(
                job_id = %saved.job_id,
                "the video service no longer knows the job; uploading the video again"
            );
        }
        let job = self
            .upload_video(target, token, url, &record_key_of(request))
            .await?;
        request
            .progress
            .save(progress_json(&VideoProgress {
                video_url: url.to_owned(),
                job_id: job.job_id.clone(),
                blob: None,
            }))
            .await?;
        self.processed(request, url, job, deadline).await
    }

    /// Streams the video to `app.bsky.video.uploadVideo`; its job (the one of the same video
    /// processed before, on `409 already_exists`).
    async fn upload_video(
        &self,
        target: &Target,
        token: &str,
        url: &str,
        rkey: &str,
    ) -> Result<JobStatus, PublishError> {
        let stream = self.media.stream(url, &VIDEO_LIMITS).await?;
        let MediaStream { mime, size, chunks } = stream;
        if !VIDEO_LIMITS.types.contains(&mime) {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "unsupported_media",
                format!(
                    "Bluesky takes MP4 videos; {} is {mime}.",
                    crate::media::describe_as(url, "video")
                ),
            ));
        }
        if size > VIDEO_LIMITS.max_bytes {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "media_too_large",
                format!(
                    "{} is {size} bytes; Bluesky takes videos of at most {} bytes.",
                    crate::media::describe_as(url, "video"),
                    VIDEO_LIMITS.max_bytes
                ),
            ));
        }
        let service_token = self.service_auth(target, token).await?;
        // A failure reading the file ends the upload; the source's own error is reported.
        let failed: Arc<Mutex<Option<PublishError>>> = Arc::default();
        let seen = failed.clone();
        let chunks = chunks.map_err(move |e| {
            let message = e.message.clone();
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
            std::io::Error::other(message)
        });
        let name = format!("{rkey}.mp4");
        let call = self
            .client
            .post(format!(
                "{}/xrpc/app.bsky.video.uploadVideo",
                self.video_url
            ))
            .query(&[("did", target.did.as_str()), ("name", name.as_str())])
            .bearer_auth(&service_token)
            .header(reqwest::header::CONTENT_TYPE, mime)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .timeout(self.settings.timeout.max(VIDEO_UPLOAD_TIMEOUT))
            .body(reqwest::Body::wrap_stream(chunks));
        let response = match http::send(call, Effect::Repeatable, NAME).await {
            Ok(r) => r,
            Err(e) => {
                let source = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
                return Err(source.unwrap_or(e));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&e, Effect::Repeatable, NAME))?;
        if let Some(source) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(source);
        }
        let job = job_status_of(&body);
        if status == reqwest::StatusCode::CONFLICT
            && let Some(job) = job.as_ref().filter(|j| !j.job_id.is_empty())
        {
            tracing::info!(job_id = %job.job_id, "the video service processed this video before");
            return Ok(job.clone());
        }
        if !status.is_success() {
            let mut e = xrpc_error(status, &headers, &body, Effect::Repeatable);
            if e.class == FailureClass::Permanent && e.code != TOKEN_INVALID {
                e.code = "media_rejected".into();
                e.message = format!(
                    "Bluesky's video service refused {}: {}",
                    crate::media::describe_as(url, "video"),
                    xrpc_message(&body).unwrap_or_else(|| status.to_string())
                );
            }
            return Err(e);
        }
        match job {
            Some(job) if !job.job_id.is_empty() => Ok(job),
            // e.g. `{jobStatus: {jobId: "", error: "unconfirmed_email", state: ""}}` (atproto#3097).
            Some(job) => Err(PublishError::new(
                FailureClass::Permanent,
                "media_rejected",
                format!(
                    "Bluesky's video service did not take {}: {}",
                    crate::media::describe_as(url, "video"),
                    job.said().unwrap_or("no reason given")
                ),
            )
            .with_platform_error(http::platform_text(&body))),
            None => Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                "Bluesky's video service answered the upload without a job.",
            )
            .with_platform_error(http::platform_text(&body))),
        }
    }

    /// `app.bsky.video.getJobStatus`; `None` when the service does not know the job (404).
    async fn job_status(&self, job_id: &str) -> Result<Option<JobStatus>, PublishError> {
        let call = self
            .client
            .get(format!(
                "{}/xrpc/app.bsky.video.getJobStatus",
                self.video_url
            ))
            .query(&[("jobId", job_id)]);
        let response = http::send(call, Effect::Repeatable, NAME).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&e, Effect::Repeatable, NAME))?;
        if !status.is_success() {
            return Err(xrpc_error(status, &headers, &body, Effect::Repeatable));
        }
        job_status_of(&body).map(Some).ok_or_else(|| {
            PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                "Bluesky's video service answered a job's status in a form this server does not understand.",
            )
            .with_platform_error(http::platform_text(&body))
        })
    }

    /// Polls the job until it has its blob (saved as progress), failed, or `deadline` passed.
    async fn processed(
        &self,
        request: &PublishRequest,
        url: &str,
        mut job: JobStatus,
        deadline: Instant,
    ) -> Result<Value, PublishError> {
        loop {
            // A blob is the video's, whatever the state (the tutorial's `already_exists` note).
            if let Some(blob) = job.blob.clone().filter(is_blob) {
                request
                    .progress
                    .save(progress_json(&VideoProgress {
                        video_url: url.to_owned(),
                        job_id: job.job_id.clone(),
                        blob: Some(blob.clone()),
                    }))
                    .await?;
                return Ok(blob);
            }
            if job.state == "JOB_STATE_FAILED" {
                let said = job.said().unwrap_or("no reason given").to_owned();
                return Err(PublishError::new(
                    FailureClass::Permanent,
                    "media_processing_failed",
                    format!(
                        "Bluesky's video service could not process {}: {said}",
                        crate::media::describe_as(url, "video")
                    ),
                )
                .with_platform_error(said));
            }
            if Instant::now() + self.video_poll > deadline {
                return Err(PublishError::new(
                    FailureClass::Retryable {
                        retry_after: Some(Duration::from_secs(10)),
                    },
                    "media_processing",
                    format!(
                        "Bluesky is still processing the video ({}); the next attempt waits for \
                         it again without uploading it again.",
                        if job.state.is_empty() {
                            "no state"
                        } else {
                            &job.state
                        }
                    ),
                ));
            }
            tokio::time::sleep(self.video_poll).await;
            job = match self.job_status(&job.job_id).await? {
                Some(now) => now,
                None => {
                    return Err(PublishError::new(
                        FailureClass::Retryable { retry_after: None },
                        "media_expired",
                        "Bluesky's video service no longer knows the video's job; it will be uploaded again.",
                    ));
                }
            };
        }
    }

    /// The DID a handle stands for; `None` when the PDS says it does not resolve.
    async fn resolve_handle(
        &self,
        pds: &str,
        handle: &str,
    ) -> Result<Option<String>, PublishError> {
        let request = self
            .client
            .get(Self::xrpc(pds, "com.atproto.identity.resolveHandle"))
            .query(&[("handle", handle)]);
        let response = http::send(request, Effect::Repeatable, NAME).await?;
        let status = response.status();
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            // HandleNotFound (or a handle the PDS finds malformed): no mention facet.
            return Ok(None);
        }
        let out: ResolveHandleOutput = read_xrpc(response, Effect::Repeatable).await?;
        Ok(out.did.starts_with("did:").then_some(out.did))
    }

    async fn facets(&self, pds: &str, text: &str) -> Result<Vec<Value>, PublishError> {
        let mut resolved: HashMap<String, Option<String>> = HashMap::new();
        let mut out = Vec::new();
        for span in rich_text(text) {
            let feature = match &span.kind {
                SpanKind::Link(uri) => json!({"$type": "app.bsky.richtext.facet#link", "uri": uri}),
                SpanKind::Tag(tag) => json!({"$type": "app.bsky.richtext.facet#tag", "tag": tag}),
                SpanKind::Mention(handle) => {
                    let did = match resolved.get(handle) {
                        Some(did) => did.clone(),
                        None => {
                            let did = self.resolve_handle(pds, handle).await?;
                            resolved.insert(handle.clone(), did.clone());
                            did
                        }
                    };
                    let Some(did) = did else { continue };
                    json!({"$type": "app.bsky.richtext.facet#mention", "did": did})
                }
            };
            out.push(json!({
                "index": {"byteStart": span.start, "byteEnd": span.end},
                "features": [feature],
            }));
        }
        Ok(out)
    }

    /// The record at this target's key, if any (`com.atproto.repo.getRecord`).
    async fn get_record(
        &self,
        target: &Target,
        rkey: &str,
    ) -> Result<Option<GetRecordOutput>, PublishError> {
        let request = self
            .client
            .get(Self::xrpc(&target.pds, "com.atproto.repo.getRecord"))
            .query(&[
                ("repo", target.did.as_str()),
                ("collection", POST_COLLECTION),
                ("rkey", rkey),
            ]);
        let response = http::send(request, Effect::Repeatable, NAME).await?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            let headers = response.headers().clone();
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| http::transport_error(&e, Effect::Repeatable, NAME))?;
            if xrpc_error_name(&body).as_deref() == Some("RecordNotFound") {
                return Ok(None);
            }
            return Err(xrpc_error(status, &headers, &body, Effect::Repeatable));
        }
        let out: GetRecordOutput = read_xrpc(response, Effect::Repeatable).await?;
        Ok(Some(out))
    }

    /// After a failed `createRecord`: whether this target's post is at its key after all.
    async fn read_back(
        &self,
        target: &Target,
        rkey: &str,
        request: &PublishRequest,
    ) -> Option<PublishedPost> {
        match self.get_record(target, rkey).await {
            Ok(Some(found)) if is_ours(&found.value, request) => Some(PublishedPost {
                id: found.uri,
                url: Some(Self::post_url(target, rkey)),
            }),
            _ => None,
        }
    }

    async fn session_call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<SessionOutput, ConnectError> {
        let response = request.send().await.map_err(|e| {
            ConnectError::new(
                ConnectErrorKind::Unavailable,
                if e.is_timeout() {
                    "Bluesky did not answer in time."
                } else {
                    "Bluesky could not be reached."
                },
            )
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|_| {
            ConnectError::new(
                ConnectErrorKind::Unavailable,
                "The connection to Bluesky broke before it answered.",
            )
        })?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| {
                ConnectError::new(
                    ConnectErrorKind::Unavailable,
                    "Bluesky answered in a form this server does not understand.",
                )
            });
        }
        let raw = http::platform_text(&body);
        let name = xrpc_error_name(&body).unwrap_or_default();
        let (kind, message) = match status.as_u16() {
            429 => (
                ConnectErrorKind::Unavailable,
                "Bluesky is rate limiting these requests; try again later.".to_owned(),
            ),
            500..=599 => (
                ConnectErrorKind::Unavailable,
                format!("Bluesky failed ({}).", status.as_u16()),
            ),
            _ if name == "AuthFactorTokenRequired" => (
                ConnectErrorKind::Rejected,
                "Bluesky asks for a sign-in code: use an app password instead of the account password."
                    .to_owned(),
            ),
            _ if name == "AccountTakedown" => (
                ConnectErrorKind::Rejected,
                "Bluesky says this account has been taken down.".to_owned(),
            ),
            401 => (
                ConnectErrorKind::Rejected,
                "Bluesky refused these credentials (check the handle and the app password)."
                    .to_owned(),
            ),
            _ if matches!(name.as_str(), "ExpiredToken" | "InvalidToken") => (
                ConnectErrorKind::Rejected,
                "Bluesky no longer accepts this account's session; reconnect it.".to_owned(),
            ),
            code => (
                ConnectErrorKind::Rejected,
                format!("Bluesky refused the request ({code})."),
            ),
        };
        Err(ConnectError::new(kind, message).with_platform_error(raw))
    }

    /// The PDS the DID document names, when it is usable; else `fallback`.
    fn pds_from_did_doc(&self, doc: Option<&Value>, fallback: &str) -> String {
        let endpoint = doc
            .and_then(|d| d.get("service"))
            .and_then(Value::as_array)
            .and_then(|services| {
                services.iter().find(|s| {
                    s.get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| id.ends_with("#atproto_pds"))
                        && s.get("type").and_then(Value::as_str)
                            == Some("AtprotoPersonalDataServer")
                })
            })
            .and_then(|s| s.get("serviceEndpoint"))
            .and_then(Value::as_str);
        endpoint
            .and_then(|e| self.pds_base(e).ok())
            .unwrap_or_else(|| fallback.to_owned())
    }
}

struct Target {
    pds: String,
    did: String,
    handle: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionOutput {
    access_jwt: String,
    refresh_jwt: String,
    handle: String,
    did: String,
    #[serde(default)]
    did_doc: Option<Value>,
}

#[derive(Deserialize)]
struct UploadBlobOutput {
    blob: Value,
}

#[derive(Deserialize)]
struct ServiceAuthOutput {
    token: String,
}

/// `app.bsky.video.defs#jobStatus`, read leniently (fields the service leaves out are empty).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
struct JobStatus {
    #[serde(default)]
    job_id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    blob: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl JobStatus {
    /// What the service said went wrong: its `message`, else its `error`.
    fn said(&self) -> Option<&str> {
        self.message
            .as_deref()
            .filter(|m| !m.is_empty())
            .or(self.error.as_deref().filter(|e| !e.is_empty()))
    }
}

/// What an attempt at a video post saves for the next ones (`PublishRequest::progress`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct VideoProgress {
    /// The video the job processes (the post's `video_url`).
    video_url: String,
    job_id: String,
    /// The processed video's blob ref, once the job has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob: Option<Value>,
}

fn progress_json(progress: &VideoProgress) -> Value {
    serde_json::to_value(progress).expect("progress serializes")
}

/// The job status in an answer: `{jobStatus: {...}}` as the lexicon says, or the object bare
/// (atproto#3026, #3097).
fn job_status_of(body: &[u8]) -> Option<JobStatus> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let inner = v.get("jobStatus").filter(|j| j.is_object()).unwrap_or(&v);
    if !inner.is_object() || (inner.get("jobId").is_none() && inner.get("state").is_none()) {
        return None;
    }
    serde_json::from_value(inner.clone()).ok()
}

/// Whether `v` is a blob ref (`{$type: blob, ref: {$link}, mimeType, size}`).
fn is_blob(v: &Value) -> bool {
    v.get("$type").and_then(Value::as_str) == Some("blob")
        && v.pointer("/ref/$link").and_then(Value::as_str).is_some()
}

/// The `did:web` of a PDS at `base` (`https://host[:port]`): the audience of its service auth
/// tokens. A port is written `%3A` (the did:web method's encoding).
fn service_did(base: &str) -> String {
    match url::Url::parse(base) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default().to_owned();
            match u.port() {
                Some(port) => format!("did:web:{host}%3A{port}"),
                None => format!("did:web:{host}"),
            }
        }
        Err(_) => format!("did:web:{base}"),
    }
}

fn record_key_of(request: &PublishRequest) -> String {
    record_key(&request.marker, request.not_before)
}

/// Bluesky's own check of a post's media before any call: up to 4 images, or one video alone
/// (a post has one embed). The video's URL when the post is a video post.
fn check_media(content: &soku_core::posts::PostContent) -> Result<Option<&str>, PublishError> {
    let is_video =
        content.media_type == soku_core::posts::MediaType::Video || content.video_url.is_some();
    if !is_video {
        if content.image_urls.len() > MAX_IMAGES {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "too_many_media",
                format!(
                    "Bluesky takes at most {MAX_IMAGES} images a post ({} given).",
                    content.image_urls.len()
                ),
            ));
        }
        return Ok(None);
    }
    let Some(url) = content.video_url.as_deref().filter(|u| !u.is_empty()) else {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "missing_video",
            "This Bluesky video post names no video.",
        ));
    };
    if !content.image_urls.is_empty() {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            "Bluesky takes one video alone in a post (one embed); this post also has images.",
        ));
    }
    Ok(Some(url))
}

/// `app.bsky.embed.defs#aspectRatio` of the post's video, from its facts when known.
fn video_aspect_ratio(request: &PublishRequest) -> Option<Value> {
    use soku_core::media::MediaKind;
    let index = request.content.image_urls.len();
    let facts = request
        .media
        .get(index)
        .filter(|m| m.facts.kind == MediaKind::Video)
        .or_else(|| {
            request
                .media
                .iter()
                .find(|m| m.facts.kind == MediaKind::Video)
        })
        .map(|m| &m.facts)?;
    match (facts.width, facts.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some(json!({"width": w, "height": h})),
        _ => None,
    }
}

#[derive(Deserialize)]
struct ResolveHandleOutput {
    did: String,
}

#[derive(Deserialize)]
struct CreateRecordOutput {
    uri: String,
}

#[derive(Deserialize)]
struct GetRecordOutput {
    uri: String,
    value: Value,
}

#[async_trait]
impl Connector for Bluesky {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let started = Instant::now();
        let content = &request.content;
        let video = check_media(content)?;
        let text = content.text.as_deref().unwrap_or("");
        check_text(text)?;
        if text.trim().is_empty() && content.image_urls.is_empty() && video.is_none() {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "empty_post",
                "A Bluesky post needs text, images or a video.",
            ));
        }
        let token = http::access_token(&request.account, NAME)?;
        let target = self.target(&request.account)?;
        let rkey = record_key(&request.marker, request.not_before);

        let mut images = Vec::with_capacity(content.image_urls.len());
        for url in &content.image_urls {
            let blob = self.upload_blob(&target, token, url).await?;
            images.push(json!({"alt": "", "image": blob}));
        }
        let video_embed = match video {
            Some(url) => {
                let blob = self
                    .video_blob(request, &target, token, url, started)
                    .await?;
                let mut embed = json!({"$type": "app.bsky.embed.video", "video": blob});
                if let Some(ratio) = video_aspect_ratio(request) {
                    embed["aspectRatio"] = ratio;
                }
                Some(embed)
            }
            None => None,
        };
        let facets = self.facets(&target.pds, text).await?;

        let mut record = json!({
            "$type": POST_COLLECTION,
            "text": text,
            "createdAt": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        if !facets.is_empty() {
            record["facets"] = Value::Array(facets);
        }
        if let Some(embed) = video_embed {
            record["embed"] = embed;
        } else if !images.is_empty() {
            record["embed"] = json!({"$type": "app.bsky.embed.images", "images": images});
        }
        let body = json!({
            "repo": target.did,
            "collection": POST_COLLECTION,
            "rkey": rkey,
            "record": record,
        });
        let call = self
            .client
            .post(Self::xrpc(&target.pds, "com.atproto.repo.createRecord"))
            .bearer_auth(token)
            .json(&body);
        let response = http::send(call, Effect::Creates, NAME).await?;
        let status = response.status();
        if status.is_success() {
            let out: CreateRecordOutput = read_xrpc(response, Effect::Creates).await?;
            return Ok(PublishedPost {
                id: out.uri,
                url: Some(Self::post_url(&target, &rkey)),
            });
        }
        let headers = response.headers().clone();
        let raw = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&e, Effect::Creates, NAME))?;
        let error = xrpc_error(status, &headers, &raw, Effect::Creates);
        // The key is this target's alone: a PDS that refuses it because it is taken (a 500 today,
        // a named error tomorrow) holds this target's post from an earlier attempt.
        let may_exist = status.is_server_error()
            || status == reqwest::StatusCode::CONFLICT
            || xrpc_error_name(&raw).is_some_and(|n| n.contains("Exists"));
        if may_exist && let Some(post) = self.read_back(&target, &rkey, request).await {
            return Ok(post);
        }
        Err(error)
    }

    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let target = self.target(&request.account)?;
        let rkey = record_key(&request.marker, request.not_before);
        match self.get_record(&target, &rkey).await? {
            None => Ok(Existing::NotFound),
            Some(found) if is_ours(&found.value, request) => Ok(Existing::Found(PublishedPost {
                id: found.uri,
                url: Some(Self::post_url(&target, &rkey)),
            })),
            // Something else holds the key (it is derived from the marker: all but impossible).
            Some(_) => Ok(Existing::CannotTell),
        }
    }

    fn connect_method(&self) -> ConnectMethod {
        ConnectMethod::Credentials
    }

    async fn connect_direct(&self, params: &Value) -> Result<ConnectedAccount, ConnectError> {
        let field = |name: &str| {
            params
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let identifier = field("identifier").ok_or_else(|| {
            ConnectError::new(
                ConnectErrorKind::Invalid,
                "Give 'identifier': the account's handle (e.g. alice.bsky.social) or DID.",
            )
            .with_field("identifier")
        })?;
        let password = field("appPassword").ok_or_else(|| {
            ConnectError::new(
                ConnectErrorKind::Invalid,
                "Give 'appPassword': an app password made in Bluesky's settings (Privacy and security, App passwords).",
            )
            .with_field("appPassword")
        })?;
        let identifier = identifier.strip_prefix('@').unwrap_or(identifier);
        let login_pds = self
            .pds_base(field("pds").unwrap_or(&self.settings.api_url))
            .map_err(|why| {
                ConnectError::new(
                    ConnectErrorKind::Invalid,
                    format!("'pds' must be the https URL of a Bluesky/AT Protocol server: {why}."),
                )
                .with_field("pds")
            })?;

        let request = self
            .client
            .post(Self::xrpc(&login_pds, "com.atproto.server.createSession"))
            .json(&json!({"identifier": identifier, "password": password}));
        // A refused sign-in names the field to fix. `createSession` answers a wrong handle and a
        // wrong password alike (401 `AuthenticationRequired`, "Invalid identifier or password"),
        // so it cannot tell which was wrong; the app password is what users get wrong (a typo,
        // a revoked one, the account's own password), so that is the field named. A 2FA
        // challenge (`AuthFactorTokenRequired`) also means: use an app password. A taken-down
        // account has nothing to fix in the request and keeps `platform`.
        let session = self.session_call(request).await.map_err(|e| {
            let takedown = e
                .platform_error
                .as_deref()
                .is_some_and(|raw| raw.contains("AccountTakedown"));
            if e.kind == ConnectErrorKind::Rejected && e.field.is_none() && !takedown {
                e.with_field("appPassword")
            } else {
                e
            }
        })?;
        if jwt_claim(&session.access_jwt, "scope").as_deref() == Some("com.atproto.access") {
            // Best effort: end the session just made, so that nothing holds it.
            let _ = self
                .client
                .post(Self::xrpc(&login_pds, "com.atproto.server.deleteSession"))
                .bearer_auth(&session.refresh_jwt)
                .send()
                .await;
            return Err(ConnectError::new(
                ConnectErrorKind::Invalid,
                "That is the account's own password. Make an app password in Bluesky's settings (Privacy and security, App passwords) and connect with it.",
            )
            .with_field("appPassword"));
        }
        let pds = self.pds_from_did_doc(session.did_doc.as_ref(), &login_pds);
        let expires_at = jwt_expiry(&session.access_jwt);
        Ok(ConnectedAccount {
            account_id: session.did.clone(),
            username: Some(session.handle.clone()),
            display_name: None,
            meta: json!({"pds": pds, "did": session.did, "handle": session.handle}),
            tokens: TokenSet {
                access_token: session.access_jwt,
                refresh_token: Some(session.refresh_jwt),
                expires_at,
            },
        })
    }

    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        let refresh = account
            .refresh_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectError::new(
                    ConnectErrorKind::Rejected,
                    "The account has no Bluesky session to refresh; reconnect it.",
                )
            })?;
        let pds_raw = account
            .meta
            .get("pds")
            .and_then(Value::as_str)
            .unwrap_or(&self.settings.api_url);
        let pds = self.pds_base(pds_raw).map_err(|why| {
            ConnectError::new(
                ConnectErrorKind::Rejected,
                format!("The account's PDS is not usable ({why}); reconnect it."),
            )
        })?;
        let request = self
            .client
            .post(Self::xrpc(&pds, "com.atproto.server.refreshSession"))
            .bearer_auth(refresh);
        let session = self.session_call(request).await?;
        let expires_at = jwt_expiry(&session.access_jwt);
        Ok(TokenSet {
            access_token: session.access_jwt,
            refresh_token: Some(session.refresh_jwt).filter(|t| !t.is_empty()),
            expires_at,
        })
    }

    /// Access JWTs live about two hours; refresh well before.
    fn refresh_ahead(&self) -> std::time::Duration {
        std::time::Duration::from_secs(15 * 60)
    }
}

fn check_text(text: &str) -> Result<(), PublishError> {
    let graphemes = soku_core::posts::caption_length(text, false);
    if graphemes > MAX_GRAPHEMES || text.len() > MAX_TEXT_BYTES {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "text_too_long",
            format!(
                "Bluesky posts hold at most {MAX_GRAPHEMES} characters and {MAX_TEXT_BYTES} bytes ({graphemes} characters, {} bytes given).",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Whether a record found at this target's key is this target's post.
fn is_ours(record: &Value, request: &PublishRequest) -> bool {
    let text = request.content.text.as_deref().unwrap_or("");
    let images = record
        .pointer("/embed/images")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let video =
        record.pointer("/embed/$type").and_then(Value::as_str) == Some("app.bsky.embed.video");
    record.get("text").and_then(Value::as_str) == Some(text)
        && images == request.content.image_urls.len()
        && video == request.content.video_url.is_some()
}

/// Reads a 2xx XRPC answer, or the failure an error answer stands for.
async fn read_xrpc<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    effect: Effect,
) -> Result<T, PublishError> {
    let status = response.status();
    if status.is_success() {
        return http::read_json(response, effect, NAME).await;
    }
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| http::transport_error(&e, effect, NAME))?;
    Err(xrpc_error(status, &headers, &body, effect))
}

/// `http::status_error`, plus the PDS's own token errors: an expired access JWT is a 400
/// `ExpiredToken`, which must still send the engine to refresh the session.
fn xrpc_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    effect: Effect,
) -> PublishError {
    let name = xrpc_error_name(body);
    if matches!(name.as_deref(), Some("ExpiredToken" | "InvalidToken")) {
        return PublishError::new(
            FailureClass::Permanent,
            TOKEN_INVALID,
            "Bluesky no longer accepts this account's access token.",
        )
        .with_platform_error(http::platform_text(body));
    }
    let mut e = http::status_error(status, headers, body, effect, NAME);
    if status == reqwest::StatusCode::BAD_REQUEST
        && let Some(message) = xrpc_message(body)
    {
        e.message = format!("Bluesky refused the request: {message}");
    }
    e
}

fn xrpc_error_name(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("error").and_then(Value::as_str).map(str::to_owned)
}

fn xrpc_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("message")
        .and_then(Value::as_str)
        .map(|m| m.chars().take(300).collect())
}

/// A claim of a JWT's payload (no signature check: the token is the PDS's to judge).
fn jwt_claim(jwt: &str, claim: &str) -> Option<String> {
    jwt_payload(jwt)?
        .get(claim)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn jwt_payload(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// When an access JWT expires, from its `exp` claim (Unix seconds).
pub fn jwt_expiry(jwt: &str) -> Option<DateTime<Utc>> {
    let exp = jwt_payload(jwt)?.get("exp")?.as_i64()?;
    DateTime::from_timestamp(exp, 0)
}

/// The record key of a target: a TID (atproto.com/specs/tid) derived from the marker, so that
/// every attempt uses the same key. 64 bits, the top one 0, then 53 bits of microseconds since the
/// epoch (`not_before`'s second, the fraction taken from the marker's hash, so that a store
/// keeping less than microseconds cannot change the key) and a 10-bit clock id (from the hash
/// too): about 30 bits tell apart two targets of one account submitted in the same second.
pub fn record_key(marker: &str, not_before: DateTime<Utc>) -> String {
    let hash = Sha256::digest(marker.as_bytes());
    let h = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"));
    let secs = not_before.timestamp().max(0) as u64;
    let micros = (secs * 1_000_000 + (h % 1_000_000)) & ((1 << 53) - 1);
    let clock_id = (h >> 32) & 0x3FF;
    encode_tid((micros << 10) | clock_id)
}

fn encode_tid(value: u64) -> String {
    let value = value & !(1 << 63);
    (0..13)
        .rev()
        .map(|i| TID_ALPHABET[((value >> (i * 5)) & 0x1F) as usize] as char)
        .collect()
}

/// Whether `s` is TID syntax: 13 characters of base32-sortable, the first in `234567abcdefghij`.
pub fn is_tid(s: &str) -> bool {
    s.len() == 13
        && s.bytes().all(|b| TID_ALPHABET.contains(&b))
        && b"234567abcdefghij".contains(&s.as_bytes()[0])
}

/// A decorated range of the text, in UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: SpanKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanKind {
    Link(String),
    /// The handle, without its `@`.
    Mention(String),
    /// The tag, without its `#`.
    Tag(String),
}

/// Links, mentions and hashtags in `text`, in order, never overlapping. A mark starts the text
/// or follows whitespace or an opening bracket; trailing punctuation is not part of it.
pub fn rich_text(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let at_boundary = text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '{' | '"' | '\''));
        let rest = &text[i..];
        let found = if !at_boundary {
            None
        } else if rest.starts_with("https://") || rest.starts_with("http://") {
            link_at(rest)
        } else if let Some(after) = rest.strip_prefix('@') {
            mention_at(after).map(|(len, h)| (len + 1, SpanKind::Mention(h)))
        } else if let Some(after) = rest.strip_prefix('#') {
            tag_at(after).map(|(len, t)| (len + 1, SpanKind::Tag(t)))
        } else {
            None
        };
        match found {
            Some((len, kind)) => {
                spans.push(Span {
                    start: i,
                    end: i + len,
                    kind,
                });
                i += len;
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    spans
}

fn word(s: &str) -> &str {
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    &s[..end]
}

fn trim_trailing_punctuation(s: &str) -> &str {
    let mut t = s.trim_end_matches(['.', ',', ';', ':', '!', '?', '"', '\'']);
    // A closing bracket belongs to the URL only when it opened one.
    while let Some(stripped) = t.strip_suffix(')') {
        if t.matches('(').count() >= t.matches(')').count() {
            break;
        }
        t = stripped.trim_end_matches(['.', ',', ';', ':', '!', '?', '"', '\'']);
    }
    t
}

fn link_at(s: &str) -> Option<(usize, SpanKind)> {
    let candidate = trim_trailing_punctuation(word(s));
    let url = url::Url::parse(candidate).ok()?;
    if let url::Host::Domain(domain) = url.host()?
        && !domain.contains('.')
    {
        return None;
    }
    Some((candidate.len(), SpanKind::Link(candidate.to_owned())))
}

/// `@alice.bsky.social`: the handle syntax of atproto.com/specs/handle.
fn mention_at(s: &str) -> Option<(usize, String)> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .unwrap_or(s.len());
    let handle = s[..end].trim_end_matches(['.', '-']);
    is_handle(handle).then(|| (handle.len(), handle.to_ascii_lowercase()))
}

fn is_handle(h: &str) -> bool {
    let labels: Vec<&str> = h.split('.').collect();
    h.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.as_bytes()[0].is_ascii_alphabetic())
}

/// `#tag`: up to 64 characters, not all digits, trailing punctuation left out.
fn tag_at(s: &str) -> Option<(usize, String)> {
    let candidate = word(s);
    let tag = candidate.trim_end_matches(|c: char| c.is_ascii_punctuation());
    if tag.is_empty()
        || tag.chars().count() > 64
        || tag.chars().all(|c| c.is_ascii_digit())
        || tag.starts_with('\u{fe0f}')
    {
        return None;
    }
    Some((tag.len(), tag.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_are_valid_tids_stable_per_marker() {
        let t = DateTime::parse_from_rfc3339("2025-03-01T12:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = record_key("m-1", t);
        assert!(is_tid(&a), "{a}");
        assert_eq!(a, record_key("m-1", t));
        assert_ne!(a, record_key("m-2", t));
        // Later seconds sort later; the fraction of a second does not matter.
        let later = record_key("m-1", t + chrono::Duration::seconds(1));
        assert!(later > a);
        let truncated = DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(a, record_key("m-1", truncated));
        assert!(!is_tid("3jzfcijpj2z2aa") && !is_tid("kjzfcijpj2z2a") && is_tid("3jzfcijpj2z2a"));
    }

    #[test]
    fn facets_use_utf8_byte_offsets() {
        let text = "Café ☕ see https://example.com/a?b=1. Hi @alice.bsky.social! #rust #123 x#no";
        let spans = rich_text(text);
        let link = "https://example.com/a?b=1";
        let start = text.find(link).unwrap();
        assert_eq!(
            spans[0],
            Span {
                start,
                end: start + link.len(),
                kind: SpanKind::Link(link.into())
            }
        );
        assert!(start > "Café ☕ see ".chars().count(), "bytes, not chars");
        assert_eq!(&text[spans[1].start..spans[1].end], "@alice.bsky.social");
        assert_eq!(spans[1].kind, SpanKind::Mention("alice.bsky.social".into()));
        assert_eq!(&text[spans[2].start..spans[2].end], "#rust");
        assert_eq!(spans.len(), 3, "#123 is all digits, x#no is mid-word");
    }

    #[test]
    fn links_keep_balanced_brackets_and_drop_others() {
        let spans = rich_text("(see https://en.wikipedia.org/wiki/Rust_(language))");
        assert_eq!(
            spans[0].kind,
            SpanKind::Link("https://en.wikipedia.org/wiki/Rust_(language)".into())
        );
        assert!(rich_text("mail me@example.com or @nodot").is_empty());
    }

    #[test]
    fn video_service_answers_are_read_in_both_shapes() {
        assert_eq!(
            service_did("https://pds.example.com"),
            "did:web:pds.example.com"
        );
        assert_eq!(
            service_did("http://127.0.0.1:2583"),
            "did:web:127.0.0.1%3A2583"
        );
        let wrapped =
            br#"{"jobStatus":{"jobId":"j1","did":"did:plc:a","state":"JOB_STATE_CREATED"}}"#;
        assert_eq!(job_status_of(wrapped).unwrap().job_id, "j1");
        // 409 already_exists, bare (bluesky-social/atproto#3097).
        let bare = br#"{"did":"did:plc:a","error":"already_exists","jobId":"j2","message":"Video already processed","state":"JOB_STATE_COMPLETED"}"#;
        let job = job_status_of(bare).unwrap();
        assert_eq!(
            (job.job_id.as_str(), job.said()),
            ("j2", Some("Video already processed"))
        );
        assert!(job_status_of(br#"{"error":"InvalidRequest"}"#).is_none());
        assert!(is_blob(
            &json!({"$type": "blob", "ref": {"$link": "bafk"}, "mimeType": "video/mp4", "size": 1})
        ));
        assert!(!is_blob(&json!(
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        )));
    }

    #[test]
    fn jwt_expiry_reads_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"scope":"com.atproto.appPass","exp":1700000000}"#);
        let jwt = format!("eyJhbGciOiJFUzI1NksifQ.{payload}.sig");
        assert_eq!(jwt_expiry(&jwt).unwrap().timestamp(), 1_700_000_000);
        assert_eq!(
            jwt_claim(&jwt, "scope").as_deref(),
            Some("com.atproto.appPass")
        );
        assert_eq!(jwt_expiry("not-a-jwt"), None);
    }
}
