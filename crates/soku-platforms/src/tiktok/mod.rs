//! TikTok: videos and photo posts published straight to a creator's account through the Content
//! Posting API (Direct Post), the account connected with Login Kit for Web.
//!
//! Sources (TikTok for Developers; the fake `soku_fakes::tiktok` quotes the lines each field
//! rests on):
//! - Login Kit for Web <https://developers.tiktok.com/doc/login-kit-web>, for Desktop (PKCE)
//!   <https://developers.tiktok.com/doc/login-kit-desktop>, token management
//!   <https://developers.tiktok.com/doc/oauth-user-access-token-management>, OAuth errors
//!   <https://developers.tiktok.com/doc/oauth-error-handling>, scopes
//!   <https://developers.tiktok.com/doc/scopes-overview>.
//! - Content Posting API: get started <https://developers.tiktok.com/doc/content-posting-api-get-started>,
//!   creator info <https://developers.tiktok.com/doc/content-posting-api-reference-query-creator-info>,
//!   Direct Post <https://developers.tiktok.com/doc/content-posting-api-reference-direct-post>,
//!   media transfer <https://developers.tiktok.com/doc/content-posting-api-media-transfer-guide>,
//!   photo posts <https://developers.tiktok.com/doc/content-posting-api-reference-photo-post>,
//!   post status <https://developers.tiktok.com/doc/content-posting-api-reference-get-video-status>,
//!   errors <https://developers.tiktok.com/doc/tiktok-api-v2-error-handling>, rate limits
//!   <https://developers.tiktok.com/doc/tiktok-api-v2-rate-limit>, content sharing guidelines
//!   (caps, unaudited apps) <https://developers.tiktok.com/doc/content-sharing-guidelines>.
//!
//! # What the operator's TikTok app needs
//!
//! Login Kit and the Content Posting API with Direct Post enabled, the `video.publish` scope
//! approved (app review), this server's callback (`{public URL}/v1/oauth/tiktok/callback`, https)
//! registered as a redirect URI. Until TikTok audits the app for Content Posting, "All content
//! posted by unaudited clients will be restricted to private viewing mode", only private
//! accounts may post (`unaudited_client_can_only_post_to_private_accounts`) and at most 5
//! creators a day. Photo posts need this server's media URL prefix (`{public URL}/media/`, or
//! its domain) verified in the app's URL properties: TikTok pulls photos from their URL, and
//! only from verified ones.
//!
//! # Connecting
//!
//! `authorize` sends the user to `{auth_url}/?client_key&response_type=code&scope=
//! user.info.basic,video.publish&redirect_uri&state&code_challenge&code_challenge_method=S256`.
//! The web guide lists no PKCE, but TikTok's page has been reported to demand it, and its desktop
//! guide says "You must use hex encoding of SHA256 to generate the code challenge": the
//! challenge sent is the hex of the verifier's SHA-256, and the exchange sends the verifier.
//! `exchange` posts the code to `{api_url}/v2/oauth/token/` (form: `client_key`,
//! `client_secret`, `code`, `grant_type=authorization_code`, `redirect_uri`, `code_verifier`);
//! the account id is the answer's `open_id`; a grant without `video.publish` is refused; the
//! handle and nickname come from the creator info query. Access tokens live 24 hours, refresh
//! tokens 365 days: `refresh` (`grant_type=refresh_token`) runs [`REFRESH_AHEAD`] before expiry
//! and keeps the refresh token TikTok answers ("may be different"). Token errors are read from
//! the body (`{"error", "error_description"}`, seen with HTTP 200): `invalid_grant` and the
//! like are `Rejected` (the account needs reconnecting), `server_error` and
//! `temporarily_unavailable` `Unavailable`, `invalid_client` and `unauthorized_client` (and a
//! 4xx that is not JSON at all) `NotConfigured`: the operator's app credentials or settings are
//! wrong, which no account's reconnecting would fix. A refresh whose grant no longer includes
//! `video.publish` is `Rejected`.
//!
//! # Publishing
//!
//! A post is one video or 1 to 35 photos (JPEG or WebP); text alone is refused. Before each
//! post, `creator_info/query` is asked and `post.options.tiktok` checked against it
//! ([`rules::settings`]): a missing `privacyLevel` (TikTok wants the creator to choose it, with
//! no default), a level the account does not offer, comments/duets/stitches asked for where the
//! creator disabled them, or a video longer than `max_video_post_duration_sec` ends the target
//! `failed` with a message naming the rule, before anything is sent.
//!
//! - Video: `FILE_UPLOAD` from the server's hosted file, streamed ([`crate::media::MediaSource::stream`]),
//!   in chunks of 10 MiB (the last takes the trailing bytes; a file of at most 10 MiB goes
//!   whole), each `PUT` to the `upload_url` with `Content-Range`, no token. `PULL_FROM_URL` is
//!   not used for videos: it needs the same verified domain as photos and saves nothing.
//! - Photos: `content/init` with `media_type: PHOTO`, `post_mode: DIRECT_POST`, `source:
//!   PULL_FROM_URL` (the only source TikTok takes for photos) and the hosted URLs; the title is
//!   `post.options.tiktok.title` (90 UTF-16 units), the description the post's text (4000).
//! - Then `status/fetch` with the `publish_id` until `PUBLISH_COMPLETE` or `FAILED`, waiting as
//!   [`crate::graph::Polling`] does (first read at once, pauses doubling up to 10 s, at most
//!   [`Polling::DEFAULT`]'s 45 s per attempt, [`TikTok::with_polling`]). Still processing then
//!   is **`Ambiguous` `media_processing`** (logged): TikTok has the post and makes it unless it
//!   says `FAILED`, so the target must not end `failed` (that invites a repost). The engine
//!   asks `find_existing`, which answers a retryable error while TikTok processes: the target
//!   stays in flight and is asked again, and ends `published` once TikTok says so, or `unknown`
//!   if TikTok still has not when the engine's attempts run out; never `failed`. (Unlike
//!   YouTube, whose video exists once uploaded, a TikTok post can still fail its format checks
//!   while processing, so it is not called published early.) A status read that fails after
//!   that point is `Ambiguous` too. `FAILED` maps `fail_reason` to a message
//!   ([`outcome::not_published`]): `internal`, the pull failures TikTok says may be retried, the daily
//!   cap and `auth_removed` start over on the next attempt (nothing was posted); the others
//!   are permanent. `SEND_TO_USER_INBOX` belongs to the upload (draft) flow, which this connector
//!   does not use: seen, it ends the target `failed` (the creator finishes it in the app).
//! - The published post's id is `publicaly_available_post_id`'s, with its URL
//!   `https://www.tiktok.com/@{handle}/video/{id}` (or `/photo/`); TikTok gives it only to public
//!   posts once moderated, so a private post (and every post of an unaudited app) is known by
//!   its `publish_id`, without a URL.
//!
//! # Exactly once
//!
//! TikTok has no idempotency key and nothing that finds a post after a lost init answer. What
//! makes this safe:
//! - A video's init is repeatable: TikTok posts nothing until the whole file has arrived ("The
//!   video processing will occur asynchronously once the upload is complete"), and a lost answer
//!   leaves a task whose upload URL nobody knows. The `publish_id` and `upload_url` are saved
//!   before the first chunk, then the chunks done after each. The chunk that completes the
//!   upload is the one that may post: **`final_sent: true` is saved before its `PUT`** (no
//!   `PUT` if that save fails), that `PUT` is `Effect::Creates` (a lost answer, a 5xx or a 206
//!   to it is `Ambiguous`), and `uploaded` is saved after its 201. An attempt that finds saved
//!   progress asks TikTok the status first: complete, it is done; the file whole, it only
//!   waits; part of it, it sends the rest (from TikTok's `uploaded_bytes`) to the same upload
//!   URL while it lasts (one hour). Before the last chunk went out, an expired URL, a URL TikTok
//!   refuses (403/404) or a publish TikTok no longer knows means starting over, since the old
//!   task can no longer be posted. Once `final_sent` is set (or every chunk is done), a new
//!   publish is started only if TikTok's status says `FAILED`: a publish TikTok no longer
//!   knows is `Ambiguous`, and a gone upload URL means waiting on the status. Resending chunks
//!   to the same upload URL never makes a second post (a 416 tells what TikTok holds).
//! - The 416's `Content-Range: bytes 0-{UPLOADED_BYTES}/{TOTAL}` may end at the last byte's
//!   index (HTTP's reading) or at the count of bytes (the placeholder's name); TikTok does not
//!   say which, so either reading is taken when it falls on the file's end or a chunk's start
//!   (they cannot both, being one byte apart); else the upload cannot go on from there.
//! - A photo post's init starts the post at once: `{init_sent: true}` is saved before it, the
//!   `publish_id` after. A lost answer is `Ambiguous`; `find_existing` then cannot tell (no
//!   `publish_id`) and the engine ends the target `unknown` rather than post twice. A refusal
//!   clears `init_sent`.
//! - `find_existing` asks the status of a saved `publish_id`: `PUBLISH_COMPLETE` is `Found`;
//!   `FAILED` is `NotFound` (publishing again starts over or fails with TikTok's reason); still
//!   processing with the file whole (or a photo init accepted) is a retryable error, never
//!   `NotFound`; after `final_sent` without TikTok holding the file, `NotFound` while the
//!   upload URL works (publishing again sends the rest to that same publish), else the
//!   retryable error; before the last chunk, `NotFound` (no file, no post). A `publish_id`
//!   TikTok no longer knows is `CannotTell` once the last chunk (or a photo init) went out.
//!   Without a `publish_id`, a video is `NotFound` and a photo post whose init went out
//!   `CannotTell`.
//! - Progress is matched on the post's media URLs. Progress of other media that shows
//!   something may have been posted (a `publish_id` with `final_sent`, a photo init sent) is
//!   `CannotTell` in `find_existing` and `Ambiguous` in `publish`, which then sends nothing.
//!
//! # Failures
//!
//! [`api::classify`]: `access_token_invalid`, `scope_not_authorized` and
//! `scope_permission_missed`, like a publish `FAILED` with `auth_removed`, are `token_invalid`
//! (the engine refreshes, or marks the account `needs_reconnect`); rate limits wait
//! `Retry-After` or a minute; the daily caps (`spam_risk_too_many_posts`, whether an API answer
//! or a publish's `fail_reason`, and `reached_active_user_cap`) an hour; a ban, an unaudited app
//! posting to a public account, an unverified photo URL, a privacy level mismatch and invalid
//! parameters are permanent with TikTok's message; 5xx are ambiguous only for the photo init.

mod api;
mod oauth;
mod outcome;
mod rules;
mod video;

pub use oauth::{POST_SCOPE, SCOPES, hex_challenge};
pub use rules::MAX_PHOTOS;
pub use video::{CHUNK_BYTES, VIDEO_LIMITS, VIDEO_TYPES, chunk_plan};

use crate::PlatformSettings;
use crate::graph::Polling;
use crate::http::{self, Effect};
use crate::media::MediaSource;
use api::PublishStatus;
use async_trait::async_trait;
use outcome::{not_published, published, retry_from_scratch};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass, PublishError,
    PublishRequest, PublishedPost, TokenSet,
};
use std::sync::Arc;
use std::time::Duration;
use video::{Resume, VideoProgress};

pub const DEFAULT_API_URL: &str = "https://open.tiktokapis.com";
/// "URL | https://www.tiktok.com/v2/auth/authorize/" (<https://developers.tiktok.com/doc/login-kit-web>).
pub const DEFAULT_AUTH_URL: &str = "https://www.tiktok.com/v2/auth/authorize/";
/// Access tokens live 24 hours: refreshed 2 hours ahead, which leaves the engine's background
/// refresher (every minute, again 2 minutes after a failure) many tries.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(2 * 3600);
/// How long an access token whose answer gives no `expires_in` is taken to live: TikTok's
/// documented 24 hours.
pub const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// After a wait for processing runs out, the next attempt comes at least this much later.
pub const PROCESSING_RETRY_AFTER: Duration = Duration::from_secs(30);

const PLATFORM: &str = "TikTok";
/// The settings that hold the app's client credentials.
const CREDENTIALS: &str =
    "SOKU_TIKTOK_CLIENT_ID, the app's client key, and SOKU_TIKTOK_CLIENT_SECRET";

pub struct TikTok {
    settings: PlatformSettings,
    media: Arc<dyn MediaSource>,
    client: reqwest::Client,
    polling: Polling,
    /// The slowest upload a chunk's `PUT` is given time for (`http::upload_timeout`).
    upload_rate: u64,
}

impl std::fmt::Debug for TikTok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TikTok")
            .field("settings", &self.settings)
            .field("polling", &self.polling)
            .finish_non_exhaustive()
    }
}

impl TikTok {
    /// `settings.client_id` is the app's client key.
    pub fn new(settings: PlatformSettings, media: Arc<dyn MediaSource>) -> Self {
        Self {
            client: http::api_client(settings.timeout),
            settings,
            media,
            polling: Polling::DEFAULT,
            upload_rate: http::MIN_UPLOAD_RATE,
        }
    }

    /// How the publish status is polled: the first pause, and the longest wait per attempt.
    pub fn with_polling(mut self, interval: Duration, deadline: Duration) -> Self {
        self.polling = Polling { interval, deadline };
        self
    }

    /// The slowest upload (bytes per second) a chunk is given time for; by default
    /// `http::MIN_UPLOAD_RATE`. Tests raise it to hold every call to the plain timeout.
    pub fn with_upload_rate(mut self, bytes_per_second: u64) -> Self {
        self.upload_rate = bytes_per_second;
        self
    }

    async fn status(
        &self,
        token: &str,
        publish_id: &str,
    ) -> Result<Option<PublishStatus>, PublishError> {
        api::status(&self.client, &self.settings.api_url, token, publish_id).await
    }

    /// Polls `publish_id` until TikTok has posted it or says it failed, within this attempt's
    /// wait. Called only once TikTok may post on its own (the video's last chunk went out, the
    /// photo init was accepted): every failure short of TikTok's `FAILED` is then `Ambiguous`,
    /// so the engine asks [`Connector::find_existing`] and never ends the target `failed` while
    /// TikTok may still post it.
    async fn wait_published(
        &self,
        account: &AccountCredentials,
        token: &str,
        publish_id: &str,
        photo: bool,
    ) -> Result<PublishedPost, PublishError> {
        let mut backoff = self.polling.start();
        loop {
            let status = self
                .status(token, publish_id)
                .await
                .map_err(|e| status_unread(e, publish_id))?;
            let Some(status) = status else {
                return Err(PublishError::new(
                    FailureClass::Ambiguous,
                    "publish_unknown",
                    format!("{PLATFORM} no longer knows publish {publish_id}."),
                ));
            };
            match status.status.as_str() {
                "PUBLISH_COMPLETE" => return Ok(published(account, publish_id, &status, photo)),
                "FAILED" | "SEND_TO_USER_INBOX" => return Err(not_published(&status)),
                _ => {}
            }
            if !backoff.wait().await {
                tracing::info!(
                    publish_id,
                    status = %status.status,
                    "TikTok is still processing the post at the end of this attempt's wait; the \
                     engine asks its status again"
                );
                return Err(PublishError::new(
                    FailureClass::Ambiguous,
                    "media_processing",
                    format!(
                        "{PLATFORM} has the post and is still processing it ({}); publish \
                         {publish_id} is checked again, nothing is sent again.",
                        status.status
                    ),
                ));
            }
        }
    }

    async fn creator(&self, token: &str) -> Result<api::CreatorInfo, PublishError> {
        api::creator_info(&self.client, &self.settings.api_url, token).await
    }

    async fn publish_video(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
    ) -> Result<PublishedPost, PublishError> {
        let earlier = request.progress.saved();
        let matched = VideoProgress::for_video(earlier, url);
        if matched.is_none() && may_have_posted(earlier) {
            return Err(other_post_pending());
        }
        if let Some(saved) = matched {
            match self.resume_video(request, token, saved).await? {
                Resume::Done(status) => {
                    let id = status_publish_id(request);
                    return Ok(published(&request.account, &id, &status, false));
                }
                Resume::Wait(saved) => {
                    return self
                        .wait_published(&request.account, token, &saved.publish_id, false)
                        .await;
                }
                Resume::StartOver => {}
            }
        }
        let caption = request.content.text.as_deref();
        if let Some(caption) = caption {
            rules::check_length(caption, rules::VIDEO_TITLE_MAX, "video caption")?;
        }
        let creator = self.creator(token).await?;
        let settings = rules::settings(
            &rules::options(request),
            &creator,
            true,
            rules::video_duration_ms(request),
        )?;
        let saved = self
            .upload_video(request, token, url, &settings, caption)
            .await?;
        self.wait_published(&request.account, token, &saved.publish_id, false)
            .await
    }

    async fn publish_photos(
        &self,
        request: &PublishRequest,
        token: &str,
        urls: &[String],
    ) -> Result<PublishedPost, PublishError> {
        let earlier = request.progress.saved();
        let matched = PhotoProgress::for_photos(earlier, urls);
        if matched.is_none() && may_have_posted(earlier) {
            return Err(other_post_pending());
        }
        if let Some(saved) = matched {
            match saved.publish_id.as_deref() {
                Some(id) => match self.status(token, id).await? {
                    None => {
                        return Err(PublishError::new(
                            FailureClass::Ambiguous,
                            "publish_unknown",
                            format!("{PLATFORM} no longer knows publish {id}."),
                        ));
                    }
                    Some(s) if s.status == "PUBLISH_COMPLETE" => {
                        return Ok(published(&request.account, id, &s, true));
                    }
                    Some(s) if s.status == "FAILED" && retry_from_scratch(&s) => {}
                    Some(s) if matches!(s.status.as_str(), "FAILED" | "SEND_TO_USER_INBOX") => {
                        return Err(not_published(&s));
                    }
                    Some(_) => return self.wait_published(&request.account, token, id, true).await,
                },
                None if saved.init_sent => {
                    return Err(PublishError::new(
                        FailureClass::Ambiguous,
                        "outcome_unknown",
                        format!(
                            "An earlier attempt sent the photo post to {PLATFORM} without learning \
                             its publish_id."
                        ),
                    ));
                }
                None => {}
            }
        }
        let options = rules::options(request);
        let title = options.title.as_deref();
        if let Some(title) = title {
            rules::check_length(title, rules::PHOTO_TITLE_MAX, "photo post title")?;
        }
        let description = request.content.text.as_deref();
        if let Some(d) = description {
            rules::check_length(d, rules::PHOTO_DESCRIPTION_MAX, "photo post description")?;
        }
        rules::check_photos(request)?;
        let creator = self.creator(token).await?;
        let settings = rules::settings(&options, &creator, false, None)?;
        let body = json!({
            "media_type": "PHOTO",
            "post_mode": "DIRECT_POST",
            "post_info": rules::photo_post_info(&settings, title, description),
            "source_info": {
                "source": "PULL_FROM_URL",
                "photo_images": urls,
                "photo_cover_index": 0,
            },
        });
        let mut saved = PhotoProgress {
            kind: "photo".into(),
            photo_urls: urls.to_vec(),
            init_sent: true,
            publish_id: None,
        };
        request.progress.save(saved.to_json()).await?;
        let init: Result<PhotoInit, PublishError> = api::call(
            api::post(
                &self.client,
                &self.settings.api_url,
                "/v2/post/publish/content/init/",
                token,
                Some(&body),
            ),
            Effect::Creates,
        )
        .await;
        let publish_id = match init {
            Ok(init) if !init.publish_id.is_empty() => init.publish_id,
            Ok(_) => {
                return Err(PublishError::new(
                    FailureClass::Ambiguous,
                    "unexpected_response",
                    format!("{PLATFORM} accepted the photo post without naming it."),
                ));
            }
            Err(e) => {
                if e.class != FailureClass::Ambiguous {
                    // Refused: nothing was started.
                    saved.init_sent = false;
                    request.progress.save(saved.to_json()).await?;
                }
                return Err(e);
            }
        };
        saved.publish_id = Some(publish_id.clone());
        request.progress.save(saved.to_json()).await?;
        self.wait_published(&request.account, token, &publish_id, true)
            .await
    }
}

/// Whether saved progress (of whatever post) shows that TikTok may post something: a video's
/// last chunk went out (`final_sent`, `uploaded`, or every chunk done) under a `publish_id`, or
/// a photo init went out.
fn may_have_posted(saved: &Value) -> bool {
    let flag = |k: &str| saved.get(k).and_then(Value::as_bool) == Some(true);
    let count = |k: &str| saved.get(k).and_then(Value::as_u64).unwrap_or(0);
    match saved.get("kind").and_then(Value::as_str) {
        Some("video") => {
            let named = saved
                .get("publish_id")
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty());
            let total = count("total_chunk_count");
            named
                && (flag("final_sent")
                    || flag("uploaded")
                    || (total > 0 && count("chunks_done") >= total))
        }
        Some("photo") => flag("init_sent"),
        _ => false,
    }
}

/// Saved progress that is not this post's media, yet shows something may have been posted.
fn other_post_pending() -> PublishError {
    PublishError::new(
        FailureClass::Ambiguous,
        "outcome_unknown",
        format!(
            "An earlier attempt sent a post to {PLATFORM} that may be published, and its media is \
             not this post's: not posting again."
        ),
    )
}

/// A failure to read the status of a publish TikTok may post on its own: ambiguous, so the
/// engine asks `find_existing` (which reads the status again) rather than failing the target.
fn status_unread(e: PublishError, publish_id: &str) -> PublishError {
    if e.class == FailureClass::Ambiguous {
        return e;
    }
    PublishError {
        class: FailureClass::Ambiguous,
        code: "publish_status_unknown".into(),
        message: format!(
            "{PLATFORM} has publish {publish_id}, whose status could not be read ({}).",
            e.message
        ),
        platform_error: e.platform_error,
    }
}

/// `find_existing`'s answer for a publish TikTok is still processing and may post: ask again
/// later (the engine keeps the target in flight, and ends it `unknown` if it never learns).
fn still_processing(publish_id: &str, status: &str) -> PublishError {
    PublishError::new(
        FailureClass::Retryable {
            retry_after: Some(PROCESSING_RETRY_AFTER),
        },
        "media_processing",
        format!(
            "{PLATFORM} is still processing publish {publish_id} ({status}); it is asked again \
             later."
        ),
    )
}

/// The saved video's `publish_id`, for a publish found complete.
fn status_publish_id(request: &PublishRequest) -> String {
    request
        .progress
        .saved()
        .get("publish_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// What an attempt at a photo post saves.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct PhotoProgress {
    /// Always `photo`.
    kind: String,
    photo_urls: Vec<String>,
    /// The init went out (or may have).
    init_sent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    publish_id: Option<String>,
}

impl PhotoProgress {
    fn for_photos(saved: &Value, urls: &[String]) -> Option<PhotoProgress> {
        let p: PhotoProgress = serde_json::from_value(saved.clone()).ok()?;
        (p.kind == "photo" && p.photo_urls == urls).then_some(p)
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("progress serializes")
    }
}

#[derive(Deserialize)]
struct PhotoInit {
    #[serde(default)]
    publish_id: String,
}

#[async_trait]
impl Connector for TikTok {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let kind = rules::kind(&request.content)?;
        let token = http::access_token(&request.account, PLATFORM)?;
        match kind {
            rules::Kind::Video(url) => self.publish_video(request, token, url).await,
            rules::Kind::Photos(urls) => self.publish_photos(request, token, urls).await,
        }
    }

    /// See the module documentation, "Exactly once".
    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let saved = request.progress.saved();
        let (video, photo) = match rules::kind(&request.content) {
            Ok(rules::Kind::Video(url)) => (VideoProgress::for_video(saved, url), None),
            Ok(rules::Kind::Photos(urls)) => (None, PhotoProgress::for_photos(saved, urls)),
            Err(_) => (None, None),
        };
        if video.is_none() && photo.is_none() {
            // No progress of this post's media: nothing, unless what was saved may have posted.
            return Ok(if may_have_posted(saved) {
                Existing::CannotTell
            } else {
                Existing::NotFound
            });
        }
        let token = http::access_token(&request.account, PLATFORM)?;
        if let Some(p) = video {
            let committed = p.may_be_posted();
            return Ok(match self.status(token, &p.publish_id).await? {
                Some(s) if s.status == "PUBLISH_COMPLETE" => {
                    Existing::Found(published(&request.account, &p.publish_id, &s, false))
                }
                // Nothing was posted: publishing again starts over or fails with the reason.
                Some(s) if matches!(s.status.as_str(), "FAILED" | "SEND_TO_USER_INBOX") => {
                    Existing::NotFound
                }
                // TikTok has the file and is processing it: it will post unless it fails.
                Some(s) if p.uploaded || s.uploaded_bytes == Some(p.video_size) => {
                    return Err(still_processing(&p.publish_id, &s.status));
                }
                // The last chunk went out, TikTok has not said it holds the file, and the upload
                // URL still works: publishing again sends the rest to this same publish (never a
                // new one).
                Some(_) if committed && p.upload_usable(chrono::Utc::now().timestamp_millis()) => {
                    Existing::NotFound
                }
                // The last chunk went out and the upload URL is gone: only TikTok's status can
                // tell; ask again.
                Some(s) if committed => return Err(still_processing(&p.publish_id, &s.status)),
                // The file is not whole: nothing can be posted; publishing again resumes it.
                Some(_) => Existing::NotFound,
                None if committed => Existing::CannotTell,
                None => Existing::NotFound,
            });
        }
        let Some(p) = photo else {
            return Ok(Existing::NotFound);
        };
        let Some(publish_id) = p.publish_id.as_deref().filter(|id| !id.is_empty()) else {
            // The init may have gone out with its answer lost.
            return Ok(if p.init_sent {
                Existing::CannotTell
            } else {
                Existing::NotFound
            });
        };
        Ok(match self.status(token, publish_id).await? {
            Some(s) if s.status == "PUBLISH_COMPLETE" => {
                Existing::Found(published(&request.account, publish_id, &s, true))
            }
            Some(s) if matches!(s.status.as_str(), "FAILED" | "SEND_TO_USER_INBOX") => {
                Existing::NotFound
            }
            // Accepted and on its way: TikTok posts it unless it fails.
            Some(s) => return Err(still_processing(publish_id, &s.status)),
            None => Existing::CannotTell,
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
        self.authorization_url(request)
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        self.exchange_code(exchange).await
    }

    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        self.refresh_tokens(account).await
    }

    fn refresh_ahead(&self) -> Duration {
        REFRESH_AHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_progress_that_may_have_posted() {
        let video = json!({"kind": "video", "video_url": "u", "publish_id": "v",
                           "total_chunk_count": 2, "chunks_done": 1});
        assert!(!may_have_posted(&video));
        let mut v = video.clone();
        v["final_sent"] = json!(true);
        assert!(may_have_posted(&v));
        let mut v = video.clone();
        v["chunks_done"] = json!(2);
        assert!(may_have_posted(&v));
        let mut v = video.clone();
        v["uploaded"] = json!(true);
        v["publish_id"] = json!("");
        assert!(!may_have_posted(&v), "no publish: nothing to post");
        assert!(may_have_posted(
            &json!({"kind": "photo", "photo_urls": [], "init_sent": true})
        ));
        assert!(!may_have_posted(
            &json!({"kind": "photo", "photo_urls": [], "init_sent": false})
        ));
        assert!(!may_have_posted(&Value::Null));
    }
}
