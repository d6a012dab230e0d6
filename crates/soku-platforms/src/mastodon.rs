//! Mastodon: publishing to an account on any Mastodon instance the user names.
//!
//! Every request goes to a host the user chose, so all of them use the guarded client of
//! `NetPolicy` (spec 8), and an instance URL is checked before anything is sent to it.
//!
//! ## Connecting (OAuth 2 authorization code with PKCE, per instance)
//! 1. `authorize`: the connect request names `instance` (`https://mastodon.social` or a bare host;
//!    without it, `settings.api_url` is the default instance, [`DEFAULT_API_URL`] unless
//!    configured). An app is registered on that instance with `POST /api/v1/apps`
//!    (`client_name`, `redirect_uris`, `scopes`) once per (instance, redirect URI) and kept in
//!    memory; the user is sent to `GET {instance}/oauth/authorize` with `response_type=code`,
//!    `client_id`, `redirect_uri`, `scope`, `state`, `code_challenge` and
//!    `code_challenge_method=S256` (PKCE, Mastodon 4.3+). `pending` carries the instance and the
//!    app's `client_id`/`client_secret` to the callback (the server stores it encrypted).
//! 2. `exchange`: `POST {instance}/oauth/token` (form: `grant_type=authorization_code`, `code`,
//!    `client_id`, `client_secret`, `redirect_uri`, `code_verifier`, `scope`) answers a Token
//!    (`access_token`, `token_type`, `scope`, `created_at`); then
//!    `GET /api/v1/accounts/verify_credentials` names the account (`id`, `username`, `acct`,
//!    `display_name`, `url`). The account id is `{id}@{instance host}` (ids are per instance);
//!    `meta` keeps `instance`, `account_id` (the numeric id), `acct` and `url`.
//! 3. Mastodon access tokens do not expire and there is no refresh token: `expires_at` is `None`.
//!    `refresh` checks the current token with `verify_credentials` and hands it back unchanged
//!    when it still works; a 401/403 is `Rejected` (the account needs reconnecting).
//!
//! Scopes asked for: `read:accounts` (verify_credentials; the newer `profile` scope only exists
//! from 4.3), `read:statuses` (reading the account's statuses and a status's source, for
//! reconciliation: a token sent to `GET /api/v1/accounts/:id/statuses` must carry it),
//! `write:statuses` and `write:media`.
//!
//! ## Publishing
//! - Images (up to 4; JPEG, PNG, GIF, WebP up to 16 MB, the documented default
//!   `configuration.media_attachments.image_size_limit` of 16777216) are fetched through the
//!   `MediaSource` and uploaded with `POST /api/v2/media` (multipart `file`). A 200 answer is
//!   processed; a 202 (`url: null`) is polled with `GET /api/v1/media/:id` (206 while
//!   processing, 200 when done) within a deadline. Uploads are repeatable: a retried upload only
//!   leaves an unattached file behind.
//! - `POST /api/v1/statuses` (JSON: `status`, `media_ids`, `visibility: "public"`) with
//!   `Idempotency-Key: <marker>`: Mastodon keeps the key for an hour and answers a repeated key
//!   from the same account with the status it already made, so a retry cannot post twice within
//!   that hour. The answer is a Status; its `url` is the post's public URL.
//! - A video (one per status, never with images; MP4, MOV or WebM up to 99 MB, the documented
//!   default `configuration.media_attachments.video_size_limit` of 103809024) is streamed from
//!   the `MediaSource` into `POST /api/v2/media` (a multipart `file` part of known length, never
//!   held whole in memory). Since Mastodon 4.0 videos are processed asynchronously: the upload
//!   answers 202 with `url: null`, and `GET /api/v1/media/:id` answers 206 while processing, 200
//!   (with a `url`) when done, 404 when the attachment is not the caller's, is attached already or
//!   no longer exists, and 422 when processing failed ("Get media attachment",
//!   docs.joinmastodon.org/methods/media/#get; Mastodon's `Api::V1::MediaController`
//!   answers `{"error": "Error processing thumbnail for uploaded media"}` then).
//!   - The attachment id is saved as the target's progress (`{"video_url", "media_id"}`) as soon
//!     as the upload answers, so a later attempt (a retry, or another process after a restart)
//!     polls that attachment instead of uploading the file again; a saved attachment that is
//!     gone (404) is uploaded again.
//!   - Polling backs off from 100 ms to 2 s and is bounded by the media deadline
//!     ([`MEDIA_PROCESSING_DEADLINE`], shorter in tests) counted from the start of the attempt:
//!     a video still processing then is retryable (`media_processing`) and the next attempt
//!     resumes polling the saved attachment. A failed processing (422) is permanent
//!     (`media_processing_failed`, with Mastodon's message as the platform error).
//!   - The upload request may take up to [`VIDEO_UPLOAD_TIMEOUT`] (or the configured timeout
//!     when longer).
//!
//! ## Failures
//! Errors are `{"error": "..."}`. Beyond `http.rs`: 401 is `token_invalid`; 422 (validation, e.g.
//! the 500-character limit) is permanent with Mastodon's message, except "Cannot attach files
//! that have not finished processing", which is retryable; 429 carries `retry_after` from
//! `X-RateLimit-Reset` (an ISO 8601 time); a 5xx on `POST /api/v1/statuses` is ambiguous; a
//! redirect from the instance is refused (never followed for API calls).
//!
//! ## Reconciliation (`find_existing`)
//! `GET /api/v1/accounts/:id/statuses?limit=40&exclude_reblogs=true` (newest first, paged with
//! `max_id`, at most 5 pages) is read back to a little before `request.not_before`. A status
//! matches when it has the same number of media attachments and the same text. `content` is
//! HTML, so it is compared after converting it to text (tags removed, `<br>` and paragraph
//! breaks as line breaks, entities unescaped) with runs of whitespace folded on both sides;
//! where that rendering cannot be compared (e.g. a remote mention `@bob@example.org` is rendered
//! as `@bob`), up to 10 candidates with the right media count are checked against their source
//! text (`GET /api/v1/statuses/:id/source`). `Found` on a match, `NotFound` when the window was
//! read to its end without one, `CannotTell` when it could not be read to its end. Because every
//! attempt carries the same Idempotency-Key, a publish after a wrong `NotFound` within the hour
//! still returns the status already made.

use crate::PlatformSettings;
use crate::http::{self, Effect};
use crate::media::{self, IMAGE_TYPES, MediaLimits, MediaSource};
use crate::net::NetPolicy;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectErrorKind, ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass, Progress,
    PublishError, PublishRequest, PublishedPost, TokenSet,
};
use soku_core::posts::{MediaType, PostContent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default instance when a connect request names none (`SOKU_MASTODON_API_URL` overrides).
pub const DEFAULT_API_URL: &str = "https://mastodon.social";
/// The name the app is registered under on each instance.
pub const CLIENT_NAME: &str = "Soku server";
/// The scopes asked for (see the module documentation).
pub const SCOPES: &str = "read:accounts read:statuses write:statuses write:media";
/// Mastodon's default number of attachments per status.
pub const MAX_IMAGES: usize = 4;
/// Mastodon's documented default image size limit (16 MB).
pub const IMAGE_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// How long an uploaded image may take to be processed before the attempt is given up; for a
/// video, how long the attempt may wait for it, counted from the attempt's start. Inside the
/// engine's bound on one publish call (half its 120 s lease).
pub const MEDIA_PROCESSING_DEADLINE: Duration = Duration::from_secs(40);
/// Mastodon's documented default video size limit
/// (`configuration.media_attachments.video_size_limit`, 103809024 bytes: 99 MB).
pub const VIDEO_MAX_BYTES: u64 = 103_809_024;
/// The video types taken (of the server's; Mastodon also takes others, e.g. Ogg and 3GP).
pub const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];
/// The first pause before polling an attachment being processed, and the longest pause.
pub const MEDIA_POLL_FIRST: Duration = Duration::from_millis(100);
pub const MEDIA_POLL_MAX: Duration = Duration::from_secs(2);
/// How long a video upload request may take at least (the configured timeout when longer).
pub const VIDEO_UPLOAD_TIMEOUT: Duration = Duration::from_secs(50);

const PLATFORM: &str = "Mastodon";
/// Statuses this much older than `not_before` are still looked at (clock skew).
const RECONCILE_SKEW: chrono::Duration = chrono::Duration::minutes(2);
const RECONCILE_PAGES: usize = 5;
const RECONCILE_SOURCE_CHECKS: usize = 10;

/// An app registered on an instance.
#[derive(Clone)]
struct Registration {
    client_id: String,
    client_secret: String,
}

pub struct Mastodon {
    settings: PlatformSettings,
    media: Arc<dyn MediaSource>,
    net: NetPolicy,
    client: reqwest::Client,
    media_deadline: Duration,
    /// The first pause between polls of an attachment being processed, and the longest.
    media_poll: (Duration, Duration),
    /// Apps registered per (instance base URL, redirect URI).
    apps: Mutex<HashMap<(String, String), Registration>>,
}

impl Mastodon {
    pub fn new(settings: PlatformSettings, media: Arc<dyn MediaSource>, net: NetPolicy) -> Self {
        // No redirects are followed: an API call redirected elsewhere is refused.
        let client = net.client(settings.timeout, 0);
        Self {
            settings,
            media,
            net,
            client,
            media_deadline: MEDIA_PROCESSING_DEADLINE,
            media_poll: (MEDIA_POLL_FIRST, MEDIA_POLL_MAX),
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// How long media processing may take (tests shorten it).
    pub fn with_media_deadline(mut self, deadline: Duration) -> Self {
        self.media_deadline = deadline;
        self
    }

    /// How often media being processed is polled: first after `first`, backing off to `max`
    /// (tests shorten both).
    pub fn with_media_polling(mut self, first: Duration, max: Duration) -> Self {
        self.media_poll = (first, max);
        self
    }

    fn apps(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Registration>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a request; a refused redirect is permanent, other transport failures per `http.rs`.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        effect: Effect,
    ) -> Result<reqwest::Response, PublishError> {
        request.send().await.map_err(|e| {
            if e.is_redirect() {
                PublishError::new(
                    FailureClass::Permanent,
                    "instance_redirect",
                    "The Mastodon instance answered with a redirect; reconnect the account with the instance's own address.",
                )
            } else {
                http::transport_error(&e, effect, PLATFORM)
            }
        })
    }

    /// Reads a 2xx answer (its status and body), or the failure a non-2xx one stands for.
    async fn read(
        &self,
        response: reqwest::Response,
        effect: Effect,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), PublishError> {
        http::read_with(response, effect, PLATFORM, api_error).await
    }

    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        effect: Effect,
    ) -> Result<(reqwest::StatusCode, T), PublishError> {
        let (status, body) = self.read(response, effect).await?;
        Ok((status, http::parse_json(&body, effect, PLATFORM)?))
    }

    /// The account's instance, checked again before it is used.
    fn account_instance(&self, account: &AccountCredentials) -> Result<Instance, PublishError> {
        let raw = account
            .meta
            .get("instance")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                PublishError::new(
                    FailureClass::Permanent,
                    "account_incomplete",
                    "The Mastodon account has no instance on record; reconnect it.",
                )
            })?;
        let instance = Instance::parse(raw)
            .map_err(|why| PublishError::new(FailureClass::Permanent, "account_incomplete", why))?;
        self.net.check_url(&instance.url).map_err(|why| {
            PublishError::new(
                FailureClass::Permanent,
                "instance_refused",
                format!("The Mastodon instance cannot be reached from this server: {why}."),
            )
        })?;
        Ok(instance)
    }

    /// Fetches one image and uploads it; answers the processed attachment's id.
    async fn upload_image(
        &self,
        instance: &Instance,
        token: &str,
        index: usize,
        url: &str,
    ) -> Result<String, PublishError> {
        let limits = MediaLimits {
            max_bytes: IMAGE_MAX_BYTES,
            types: IMAGE_TYPES,
        };
        let fetched = self.media.fetch(url, &limits).await?;
        let part = reqwest::multipart::Part::bytes(fetched.bytes)
            .file_name(format!(
                "image-{}.{}",
                index + 1,
                media::extension(fetched.mime)
            ))
            .mime_str(fetched.mime)
            .expect("a known media type is a valid MIME type");
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .send(
                self.client
                    .post(instance.endpoint("/api/v2/media"))
                    .bearer_auth(token)
                    .multipart(form),
                Effect::Repeatable,
            )
            .await?;
        let (status, attachment): (_, MediaAttachment) =
            self.read_json(response, Effect::Repeatable).await?;
        if status == reqwest::StatusCode::OK && attachment.url.is_some() {
            return Ok(attachment.id);
        }
        let deadline = Instant::now() + self.media_deadline;
        match self
            .wait_processed(
                instance,
                token,
                &attachment.id,
                deadline,
                "an uploaded image",
            )
            .await?
        {
            Polled::Processed => Ok(attachment.id),
            Polled::Gone => Err(media_lost("an uploaded image")),
        }
    }

    /// The processed attachment of the post's video: the one an earlier attempt uploaded (saved
    /// in `progress`) while Mastodon still has it, else the file streamed up now.
    async fn video_attachment(
        &self,
        instance: &Instance,
        token: &str,
        url: &str,
        progress: &Progress,
        started: Instant,
    ) -> Result<String, PublishError> {
        let deadline = started + self.media_deadline;
        if let Some(id) = saved_media_id(progress.saved(), url) {
            match self
                .wait_processed(instance, token, &id, deadline, "the video")
                .await?
            {
                Polled::Processed => return Ok(id),
                Polled::Gone => tracing::info!(
                    "the Mastodon attachment an earlier attempt uploaded is gone; uploading the video again"
                ),
            }
        }
        let (status, attachment) = self.upload_video(instance, token, url).await?;
        progress
            .save(json!({ "video_url": url, "media_id": attachment.id }))
            .await?;
        if status == reqwest::StatusCode::OK && attachment.url.is_some() {
            return Ok(attachment.id);
        }
        match self
            .wait_processed(instance, token, &attachment.id, deadline, "the video")
            .await?
        {
            Polled::Processed => Ok(attachment.id),
            Polled::Gone => Err(media_lost("the video")),
        }
    }

    /// Streams the video into `POST /api/v2/media`.
    async fn upload_video(
        &self,
        instance: &Instance,
        token: &str,
        url: &str,
    ) -> Result<(reqwest::StatusCode, MediaAttachment), PublishError> {
        let limits = MediaLimits {
            max_bytes: VIDEO_MAX_BYTES,
            types: VIDEO_TYPES,
        };
        let stream = self.media.stream(url, &limits).await?;
        // A failure reading the file ends the upload; the source's own error is reported.
        let failed: Arc<Mutex<Option<PublishError>>> = Arc::default();
        let seen = failed.clone();
        let chunks = stream.chunks.map_err(move |e| {
            let message = e.message.clone();
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
            std::io::Error::other(message)
        });
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(chunks),
            stream.size,
        )
        .file_name(format!("video.{}", media::extension(stream.mime)))
        .mime_str(stream.mime)
        .expect("a known media type is a valid MIME type");
        let form = reqwest::multipart::Form::new().part("file", part);
        let sent = self
            .send(
                self.client
                    .post(instance.endpoint("/api/v2/media"))
                    .bearer_auth(token)
                    .timeout(self.settings.timeout.max(VIDEO_UPLOAD_TIMEOUT))
                    .multipart(form),
                Effect::Repeatable,
            )
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let source = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
                return Err(source.unwrap_or(e));
            }
        };
        self.read_json(response, Effect::Repeatable).await
    }

    /// Polls `GET /api/v1/media/:id` until the attachment is processed (200 with a `url`), or
    /// Mastodon says it is gone (404); `what` names it in errors.
    async fn wait_processed(
        &self,
        instance: &Instance,
        token: &str,
        id: &str,
        deadline: Instant,
        what: &str,
    ) -> Result<Polled, PublishError> {
        let (mut pause, max_pause) = self.media_poll;
        loop {
            tokio::time::sleep(pause).await;
            match self.media_state(instance, token, id).await? {
                MediaState::Processed => return Ok(Polled::Processed),
                MediaState::Gone => return Ok(Polled::Gone),
                MediaState::Failed(said) => {
                    return Err(PublishError::new(
                        FailureClass::Permanent,
                        "media_processing_failed",
                        format!("Mastodon could not process {what}: {said}"),
                    )
                    .with_platform_error(said));
                }
                MediaState::Processing => {}
            }
            if Instant::now() + pause > deadline {
                return Err(PublishError::new(
                    FailureClass::Retryable {
                        retry_after: Some(Duration::from_secs(30)),
                    },
                    "media_processing",
                    format!("Mastodon is still processing {what}; the post will be tried again."),
                ));
            }
            pause = (pause * 2).min(max_pause);
        }
    }

    /// One read of an attachment's processing state.
    async fn media_state(
        &self,
        instance: &Instance,
        token: &str,
        id: &str,
    ) -> Result<MediaState, PublishError> {
        let response = self
            .send(
                self.client
                    .get(instance.endpoint(&format!("/api/v1/media/{}", seg(id))))
                    .bearer_auth(token),
                Effect::Repeatable,
            )
            .await?;
        match response.status().as_u16() {
            206 => return Ok(MediaState::Processing),
            404 => return Ok(MediaState::Gone),
            422 => {
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| http::transport_error(&e, Effect::Repeatable, PLATFORM))?;
                let said = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| http::platform_text(&body));
                return Ok(MediaState::Failed(said));
            }
            _ => {}
        }
        let (status, body) = self.read(response, Effect::Repeatable).await?;
        let processed = status == reqwest::StatusCode::OK
            && serde_json::from_slice::<MediaAttachment>(&body).is_ok_and(|a| a.url.is_some());
        Ok(if processed {
            MediaState::Processed
        } else {
            MediaState::Processing
        })
    }

    /// The account's statuses, newest first, one page.
    async fn statuses_page(
        &self,
        instance: &Instance,
        token: Option<&str>,
        account_id: &str,
        max_id: Option<&str>,
    ) -> Result<Vec<StatusView>, PublishError> {
        let mut query = vec![
            ("limit", "40".to_owned()),
            ("exclude_reblogs", "true".to_owned()),
        ];
        if let Some(max_id) = max_id {
            query.push(("max_id", max_id.to_owned()));
        }
        let mut request = self
            .client
            .get(instance.endpoint(&format!("/api/v1/accounts/{}/statuses", seg(account_id))))
            .query(&query);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = self.send(request, Effect::Repeatable).await?;
        Ok(self.read_json(response, Effect::Repeatable).await?.1)
    }

    async fn status_source(
        &self,
        instance: &Instance,
        token: Option<&str>,
        id: &str,
    ) -> Result<String, PublishError> {
        let mut request = self
            .client
            .get(instance.endpoint(&format!("/api/v1/statuses/{}/source", seg(id))));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = self.send(request, Effect::Repeatable).await?;
        let (_, source): (_, StatusSource) = self.read_json(response, Effect::Repeatable).await?;
        Ok(source.text)
    }

    /// The app registered for (instance, redirect URI), registering it if needed.
    async fn registration(
        &self,
        instance: &Instance,
        redirect_uri: &str,
    ) -> Result<Registration, ConnectError> {
        let key = (instance.base.clone(), redirect_uri.to_owned());
        if let Some(found) = self.apps().get(&key) {
            return Ok(found.clone());
        }
        let response = self
            .client
            .post(instance.endpoint("/api/v1/apps"))
            .json(&json!({
                "client_name": CLIENT_NAME,
                // A single string: arrays are only understood from Mastodon 4.3.
                "redirect_uris": redirect_uri,
                "scopes": SCOPES,
            }))
            .send()
            .await
            .map_err(connect_transport)?;
        let (status, body) = connect_body(response).await?;
        if !status.is_success() {
            return Err(if status == reqwest::StatusCode::NOT_FOUND {
                ConnectError::new(
                    ConnectErrorKind::Invalid,
                    format!(
                        "{} does not look like a Mastodon instance (no app registration endpoint).",
                        instance.host
                    ),
                )
                .with_platform_error(http::platform_text(&body))
            } else {
                connect_status_error(status, &body, "registering this server as an app")
            });
        }
        let app: CredentialApplication =
            crate::oauth::parse_answer(&body, "The instance", "the app registration request")?;
        let registration = Registration {
            client_id: app.client_id,
            client_secret: app.client_secret,
        };
        self.apps().insert(key, registration.clone());
        Ok(registration)
    }

    async fn verify_credentials(
        &self,
        instance: &Instance,
        token: &str,
    ) -> Result<CredentialAccount, ConnectError> {
        let response = self
            .client
            .get(instance.endpoint("/api/v1/accounts/verify_credentials"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(connect_transport)?;
        let (status, body) = connect_body(response).await?;
        if !status.is_success() {
            return Err(connect_status_error(
                status,
                &body,
                "checking the account's access token",
            ));
        }
        crate::oauth::parse_answer(&body, "The instance", "the account request")
    }

    fn connect_instance(&self, raw: &str) -> Result<Instance, ConnectError> {
        let instance = Instance::parse(raw).map_err(|why| {
            ConnectError::new(ConnectErrorKind::Invalid, why).with_field("instance")
        })?;
        self.net.check_url(&instance.url).map_err(|why| {
            ConnectError::new(
                ConnectErrorKind::Invalid,
                format!("The Mastodon instance '{raw}' is not allowed: {why}."),
            )
            .with_field("instance")
        })?;
        Ok(instance)
    }
}

#[async_trait]
impl Connector for Mastodon {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let started = Instant::now();
        let content = &request.content;
        let video = video_of(content)?;
        if video.is_none() {
            crate::media::check_images_only(content, "Mastodon", MAX_IMAGES)?;
        }
        let text = content.text.as_deref().unwrap_or("");
        if text.trim().is_empty() && content.image_urls.is_empty() && video.is_none() {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "empty_post",
                "A Mastodon post needs text, an image or a video.",
            ));
        }
        let instance = self.account_instance(&request.account)?;
        let token = http::access_token(&request.account, PLATFORM)?;

        let mut media_ids = Vec::with_capacity(content.image_urls.len().max(1));
        if let Some(url) = video {
            media_ids.push(
                self.video_attachment(&instance, token, url, &request.progress, started)
                    .await?,
            );
        }
        for (i, url) in content.image_urls.iter().enumerate() {
            media_ids.push(self.upload_image(&instance, token, i, url).await?);
        }

        let mut body = json!({ "visibility": "public" });
        if !text.is_empty() {
            body["status"] = json!(text);
        }
        if !media_ids.is_empty() {
            body["media_ids"] = json!(media_ids);
        }
        let response = self
            .send(
                self.client
                    .post(instance.endpoint("/api/v1/statuses"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", idempotency_key(&request.marker))
                    .json(&body),
                Effect::Creates,
            )
            .await?;
        let (_, status): (_, StatusView) = self.read_json(response, Effect::Creates).await?;
        Ok(published(&request.account, status))
    }

    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let Ok(instance) = self.account_instance(&request.account) else {
            return Ok(Existing::CannotTell);
        };
        let Some(account_id) = request
            .account
            .meta
            .get("account_id")
            .and_then(Value::as_str)
        else {
            return Ok(Existing::CannotTell);
        };
        let token = request.account.access_token.as_deref();
        let want_text = fold_whitespace(request.content.text.as_deref().unwrap_or(""));
        let want_media = request.content.image_urls.len()
            + usize::from(matches!(video_of(&request.content), Ok(Some(_))));
        let since = request.not_before - RECONCILE_SKEW;

        let mut candidates: Vec<StatusView> = Vec::new();
        let mut complete = false;
        let mut max_id: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let page = self
                .statuses_page(&instance, token, account_id, max_id.as_deref())
                .await?;
            let Some(last) = page.last() else {
                complete = true;
                break;
            };
            max_id = Some(last.id.clone());
            for status in page {
                if status.created_at < since {
                    complete = true;
                    continue;
                }
                if status.reblog.as_ref().is_some_and(|r| !r.is_null())
                    || status.media_attachments.len() != want_media
                {
                    continue;
                }
                if fold_whitespace(&html_to_text(&status.content)) == want_text {
                    return Ok(Existing::Found(published(&request.account, status)));
                }
                candidates.push(status);
            }
            if complete {
                break;
            }
        }
        // The rendering may differ from the text (remote mentions): compare the source text.
        let checked = candidates.len().min(RECONCILE_SOURCE_CHECKS);
        for status in candidates.iter().take(checked) {
            let source = self.status_source(&instance, token, &status.id).await?;
            if fold_whitespace(&source) == want_text {
                return Ok(Existing::Found(published(&request.account, status.clone())));
            }
        }
        if complete && checked == candidates.len() {
            Ok(Existing::NotFound)
        } else {
            Ok(Existing::CannotTell)
        }
    }

    fn connect_method(&self) -> ConnectMethod {
        ConnectMethod::OAuth
    }

    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        let named = request
            .params
            .get("instance")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let raw = match named {
            Some(raw) => raw.to_owned(),
            None if !self.settings.api_url.trim().is_empty() => self.settings.api_url.clone(),
            None => {
                return Err(ConnectError::new(
                    ConnectErrorKind::Invalid,
                    "Name the Mastodon instance to connect to in 'instance' (e.g. https://mastodon.social).",
                ));
            }
        };
        let instance = self.connect_instance(&raw)?;
        let app = self.registration(&instance, &request.redirect_uri).await?;
        let mut url = instance.url.join("/oauth/authorize").expect("a valid path");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("state", &request.state)
            .append_pair("code_challenge", &request.code_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(AuthorizationStart {
            url: url.to_string(),
            pending: json!({
                "instance": instance.base,
                "client_id": app.client_id,
                "client_secret": app.client_secret,
            }),
        })
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        let field = |name: &str| {
            exchange
                .pending
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ConnectError::new(
                        ConnectErrorKind::Invalid,
                        format!("The authorization lacks its Mastodon '{name}'; start again."),
                    )
                })
        };
        let instance = self.connect_instance(field("instance")?)?;
        let client_id = field("client_id")?;
        let client_secret = field("client_secret")?;

        let response = self
            .client
            .post(instance.endpoint("/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", exchange.code.as_str()),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("redirect_uri", exchange.redirect_uri.as_str()),
                ("code_verifier", exchange.code_verifier.as_str()),
                ("scope", SCOPES),
            ])
            .send()
            .await
            .map_err(connect_transport)?;
        let (status, body) = connect_body(response).await?;
        if !status.is_success() {
            if status == reqwest::StatusCode::UNAUTHORIZED {
                // The app is unknown to the instance now: register again next time.
                self.apps().retain(|(base, _), app| {
                    !(base == &instance.base && app.client_id == client_id)
                });
            }
            return Err(connect_status_error(
                status,
                &body,
                "exchanging the authorization code",
            ));
        }
        let token: TokenAnswer =
            crate::oauth::parse_answer(&body, "The instance", "the token request")?;
        if token.access_token.is_empty() {
            return Err(ConnectError::new(
                ConnectErrorKind::Unavailable,
                "The instance answered without an access token.",
            ));
        }
        let account = self
            .verify_credentials(&instance, &token.access_token)
            .await?;
        let display_name = Some(account.display_name.clone()).filter(|s| !s.trim().is_empty());
        Ok(ConnectedAccount {
            account_id: format!("{}@{}", account.id, instance.host),
            username: Some(account.username.clone()),
            display_name,
            meta: json!({
                "instance": instance.base,
                "account_id": account.id,
                "acct": format!("{}@{}", account.username, instance.host),
                "url": account.url,
                "scope": token.scope,
            }),
            tokens: TokenSet {
                access_token: token.access_token,
                refresh_token: None,
                expires_at: None,
            },
        })
    }

    /// Mastodon tokens do not expire and are never refreshed: the current one is checked and
    /// handed back while it works; a revoked one is `Rejected`.
    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        let raw = account
            .meta
            .get("instance")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ConnectError::new(
                    ConnectErrorKind::Rejected,
                    "The Mastodon account has no instance on record; reconnect it.",
                )
            })?;
        let instance = self.connect_instance(raw)?;
        let token = account
            .access_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectError::new(
                    ConnectErrorKind::Rejected,
                    "The Mastodon account has no access token; reconnect it.",
                )
            })?;
        let found = self.verify_credentials(&instance, token).await?;
        let expected = account.meta.get("account_id").and_then(Value::as_str);
        if expected.is_some_and(|id| id != found.id) {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "The access token now belongs to another Mastodon account; reconnect it.",
            ));
        }
        Ok(TokenSet {
            access_token: token.to_owned(),
            refresh_token: None,
            expires_at: None,
        })
    }
}

/// A user-named Mastodon instance: `scheme://host[:port]`, nothing else.
#[derive(Debug, Clone)]
struct Instance {
    url: reqwest::Url,
    /// `https://host[:port]`, no trailing slash.
    base: String,
    /// `host[:port]`, as in account ids.
    host: String,
}

impl Instance {
    fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("https://{raw}")
        };
        let invalid = || {
            format!(
                "'{raw}' is not a Mastodon instance address: give it as https://host or a bare host name."
            )
        };
        let url = reqwest::Url::parse(&with_scheme).map_err(|_| invalid())?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
            || !matches!(url.path(), "" | "/")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(invalid());
        }
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        }
        .to_ascii_lowercase();
        let base = format!("{}://{host}", url.scheme());
        let url = reqwest::Url::parse(&base).map_err(|_| invalid())?;
        Ok(Self { url, base, host })
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The video of a video post (`None` for text and images), checked: Mastodon takes one video
/// per status and never with images.
fn video_of(content: &PostContent) -> Result<Option<&str>, PublishError> {
    if content.media_type != MediaType::Video && content.video_url.is_none() {
        return Ok(None);
    }
    let Some(url) = content
        .video_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    else {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "empty_post",
            "A Mastodon video post needs its video.",
        ));
    };
    if !content.image_urls.is_empty() {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            "Mastodon does not take images and a video in one post; post them separately.",
        ));
    }
    Ok(Some(url))
}

/// The attachment an earlier attempt uploaded for this video, if it saved one.
fn saved_media_id(saved: &Value, video_url: &str) -> Option<String> {
    (saved.get("video_url").and_then(Value::as_str) == Some(video_url))
        .then(|| saved.get("media_id").and_then(Value::as_str))
        .flatten()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// An attachment Mastodon no longer has while it was being waited for.
fn media_lost(what: &str) -> PublishError {
    PublishError::new(
        FailureClass::Retryable { retry_after: None },
        "media_lost",
        format!("Mastodon no longer has {what} uploaded for this post; it will be uploaded again."),
    )
}

/// Where an attachment's processing is.
enum MediaState {
    Processing,
    Processed,
    /// 404: not the caller's, attached already, or deleted.
    Gone,
    /// 422, with Mastodon's message.
    Failed(String),
}

/// How a wait for processing ended (a failure or a timeout is an error).
enum Polled {
    Processed,
    Gone,
}

/// A path segment that cannot escape its place (ids come from the instance's answers).
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The marker as an `Idempotency-Key`: as it is when it is a plain header value, else its hash.
fn idempotency_key(marker: &str) -> String {
    let plain =
        !marker.is_empty() && marker.len() <= 128 && marker.bytes().all(|b| b.is_ascii_graphic());
    if plain {
        return marker.to_owned();
    }
    use sha2::Digest;
    sha2::Sha256::digest(marker.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn published(account: &AccountCredentials, status: StatusView) -> PublishedPost {
    let url = status.url.filter(|u| !u.is_empty()).or_else(|| {
        account
            .meta
            .get("url")
            .and_then(Value::as_str)
            .map(|profile| format!("{}/{}", profile.trim_end_matches('/'), status.id))
    });
    PublishedPost { id: status.id, url }
}

/// The failure a non-2xx API answer stands for, with Mastodon's own message.
fn api_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    effect: Effect,
) -> PublishError {
    let mut e = http::status_error(status, headers, body, effect, PLATFORM);
    let said = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned));
    if let Some(said) = said {
        match status.as_u16() {
            422 if said.contains("not finished processing") => {
                e.class = FailureClass::Retryable {
                    retry_after: Some(Duration::from_secs(30)),
                };
                e.code = "media_processing".into();
                e.message = format!("Mastodon is still processing an image: {said}");
            }
            401 => e.message = format!("Mastodon no longer accepts this account's token: {said}"),
            403 | 404 | 422 => e.message = format!("Mastodon refused the request: {said}"),
            _ => {}
        }
    }
    e
}

fn connect_transport(e: reqwest::Error) -> ConnectError {
    let message = if e.is_redirect() {
        "The Mastodon instance answered with a redirect; give the instance's own address."
    } else if e.is_timeout() {
        "The Mastodon instance did not answer in time."
    } else {
        "The Mastodon instance could not be reached."
    };
    ConnectError::new(ConnectErrorKind::Unavailable, message)
}

async fn connect_body(
    response: reqwest::Response,
) -> Result<(reqwest::StatusCode, Vec<u8>), ConnectError> {
    let status = response.status();
    let body = response.bytes().await.map_err(connect_transport)?;
    Ok((status, body.to_vec()))
}

/// A refusal during connecting: 429 and 5xx are `Unavailable`, other answers `Rejected`.
fn connect_status_error(status: reqwest::StatusCode, body: &[u8], doing: &str) -> ConnectError {
    let said = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let error = v.get("error").and_then(Value::as_str)?.to_owned();
        Some(match v.get("error_description").and_then(Value::as_str) {
            Some(d) => format!("{error}: {d}"),
            None => error,
        })
    });
    let code = status.as_u16();
    let kind = if code == 429 || code >= 500 {
        ConnectErrorKind::Unavailable
    } else {
        ConnectErrorKind::Rejected
    };
    let message = match said {
        Some(said) => format!("Mastodon refused {doing} ({code}): {said}"),
        None => format!("Mastodon refused {doing} ({code})."),
    };
    ConnectError::new(kind, message).with_platform_error(http::platform_text(body))
}

/// Text of a status's HTML `content`: `<br>` and paragraph breaks become line breaks, other
/// tags go, entities are unescaped.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut paragraphs = 0usize;
    while let Some(start) = rest.find('<') {
        out.push_str(&unescape(&rest[..start]));
        let Some(end) = rest[start..].find('>') else {
            rest = &rest[start..];
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        match name.as_str() {
            "br" => out.push('\n'),
            "p" if !tag.starts_with('/') => {
                if paragraphs > 0 {
                    out.push_str("\n\n");
                }
                paragraphs += 1;
            }
            _ => {}
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(&unescape(rest));
    out
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let decoded = after.find(';').filter(|&j| j <= 10).and_then(|j| {
            let entity = &after[..j];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let n = if let Some(hex) = entity
                        .strip_prefix("#x")
                        .or_else(|| entity.strip_prefix("#X"))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        entity.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                    n.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, j))
        });
        match decoded {
            Some((c, j)) => {
                out.push(c);
                rest = &after[j + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn fold_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Deserialize)]
struct CredentialApplication {
    client_id: String,
    client_secret: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct CredentialAccount {
    id: String,
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct MediaAttachment {
    id: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize, Clone)]
struct StatusView {
    id: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    media_attachments: Vec<Value>,
    #[serde(default)]
    reblog: Option<Value>,
}

#[derive(Deserialize)]
struct StatusSource {
    text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_parsed_strictly() {
        let i = Instance::parse("Mastodon.Social").unwrap();
        assert_eq!(
            (i.base.as_str(), i.host.as_str()),
            ("https://mastodon.social", "mastodon.social")
        );
        let i = Instance::parse("https://example.org/").unwrap();
        assert_eq!(i.base, "https://example.org");
        let i = Instance::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (i.base.as_str(), i.host.as_str()),
            ("http://127.0.0.1:8080", "127.0.0.1:8080")
        );
        for bad in [
            "ftp://example.org",
            "https://example.org/path",
            "https://example.org/?q=1",
            "https://example.org/#x",
            "https://user:pw@example.org",
            "javascript:alert(1)",
            "https://",
        ] {
            assert!(Instance::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn markers_become_header_safe_keys() {
        assert_eq!(idempotency_key("tgt_abc123"), "tgt_abc123");
        let hashed = idempotency_key("a marker with spaces\n");
        assert_eq!(hashed.len(), 64);
        assert!(reqwest::header::HeaderValue::from_str(&hashed).is_ok());
    }

    #[test]
    fn html_content_becomes_text() {
        assert_eq!(html_to_text("<p>Hello world</p>"), "Hello world");
        assert_eq!(
            html_to_text("<p>one<br />two</p><p>three &amp; &lt;four&gt; &#39;x&#x27;</p>"),
            "one\ntwo\n\nthree & <four> 'x'"
        );
        let link = "<p>see <a href=\"https://example.com/a/long/path\" rel=\"nofollow noopener\" \
                    target=\"_blank\"><span class=\"invisible\">https://</span><span class=\"ellipsis\">\
                    example.com/a/lo</span><span class=\"invisible\">ng/path</span></a> <a href=\"x\" \
                    class=\"mention hashtag\" rel=\"tag\">#<span>rust</span></a></p>";
        assert_eq!(
            html_to_text(link),
            "see https://example.com/a/long/path #rust"
        );
        assert_eq!(unescape("a &unknown; b & c"), "a &unknown; b & c");
        assert_eq!(fold_whitespace("  a \n\n b\tc "), "a b c");
    }
}
