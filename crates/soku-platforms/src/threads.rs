//! Threads (Meta): OAuth connection, publishing through media containers, reconciliation by
//! reading the user's recent posts.
//!
//! Documented endpoints used (developers.facebook.com/docs/threads; the API answers on both
//! `graph.threads.com` and `graph.threads.net`, the current pages use the `.com` hosts):
//! - Authorization window `https://threads.com/oauth/authorize` with `client_id`,
//!   `redirect_uri`, `scope=threads_basic,threads_content_publish`, `response_type=code`,
//!   `state` ("Get Access Tokens and Permissions"). Threads takes no PKCE.
//! - `POST /oauth/access_token` (`client_id`, `client_secret`, `grant_type=authorization_code`,
//!   `redirect_uri`, `code`) -> `{access_token, user_id}`: a short-lived (1 h) token. Codes are
//!   valid for an hour and single-use.
//! - `GET /access_token?grant_type=th_exchange_token&client_secret&access_token` ->
//!   `{access_token, token_type, expires_in}`: a long-lived (60 days) token ("Long-Lived Access
//!   Tokens").
//! - `GET /refresh_access_token?grant_type=th_refresh_token&access_token` refreshes an unexpired
//!   long-lived token at least 24 hours old for another 60 days. There is no refresh token: the
//!   current access token is the grant, so `TokenSet::refresh_token` is always `None` and
//!   `refresh_ahead` is 7 days.
//! - `GET /v1.0/me?fields=id,username,name` ("Retrieve Threads Profiles").
//! - `POST /v1.0/{threads-user-id}/threads` creates a media container: `media_type=TEXT` with
//!   `text`; `IMAGE` with `image_url` (and optional `text`); `VIDEO` with `video_url` (and
//!   optional `text`); carousel items with `is_carousel_item=true`, then `CAROUSEL` with
//!   `children` (2 to 20 comma-separated container ids) and optional `text` ("Threads Posts",
//!   developers.facebook.com/docs/threads/posts, "Single Thread Posts": Threads fetches the
//!   media from the URL, and it recommends waiting before `threads_publish` while it processes
//!   the upload).
//! - `GET /v1.0/{container-id}?fields=status,error_message`: IN_PROGRESS, FINISHED, ERROR,
//!   EXPIRED (not published within 24 hours), PUBLISHED; on ERROR an `error_message` such as
//!   FAILED_DOWNLOADING_VIDEO, FAILED_PROCESSING_VIDEO, INVALID_DURATION or UNKNOWN
//!   ("Troubleshooting", developers.facebook.com/docs/threads/troubleshooting).
//! - `POST /v1.0/{threads-user-id}/threads_publish` with `creation_id` -> `{id}`.
//! - `GET /v1.0/{media-id}?fields=permalink` for the post's URL.
//! - `GET /v1.0/{threads-user-id}/threads?fields=...&since=&limit=&after=` ("Retrieve User
//!   Posts"; `media_type` there is TEXT_POST, IMAGE, VIDEO or CAROUSEL_ALBUM).
//!
//! Every call carries the token as the documented `access_token` parameter (form body for POSTs,
//! query for GETs); no error or log line built here contains a URL, a token or the app secret.
//!
//! Publishing: Threads fetches images from their public URLs itself, so the `MediaSource` is
//! not used; the URLs are passed as given. One image is an IMAGE container, 2 to 20 a carousel.
//! The containers are polled until FINISHED (carousel items together; first read at once, then
//! backing off from `poll_interval` to 10 s, within `poll_deadline`): ERROR is permanent
//! (`media_rejected`, with Threads' `error_message`), EXPIRED or still IN_PROGRESS at the
//! deadline is retryable. Creating containers is repeatable (an unpublished container is
//! invisible and expires after 24 hours); `threads_publish` is the creating call, so its timeouts
//! and 5xx are ambiguous. Text is limited to 500 characters (Threads counts emoji as their UTF-8
//! bytes; a text it finds too long comes back as a permanent refusal).
//!
//! Video: the post's video URL is passed as given (the engine hands connectors the server's own
//! hosted URL, which Threads downloads) in one VIDEO container; images with a video (a mixed
//! carousel) are refused (`unsupported_media`). The container id is saved as the target's
//! progress (`{"video_url", "container_id"}`) as soon as it is created, so a later attempt (a
//! retry, or another process after a restart) polls that container instead of creating another;
//! a saved container that is EXPIRED, or that Threads no longer knows (Graph error 100, subcode
//! 33, "does not exist"), is created again. The status is polled as for images (first read at
//! once, backing off from `poll_interval` to 10 s) within `poll_deadline`: still IN_PROGRESS then
//! is retryable (`media_processing`, the next attempt resumes polling); ERROR is permanent
//! (`media_processing_failed`, Threads' `error_message` as the platform error). Threads
//! recommends reading a container's status about once a minute for up to 5 minutes; polling
//! here is faster and each attempt shorter, the engine's retries carrying a long processing
//! over several attempts.
//!
//! Errors are Graph API bodies `{"error": {"message", "type", "code", "error_subcode",
//! "fbtrace_id"}}`, mostly with HTTP 400: code 190 (and 102) means the token no longer works
//! (`token_invalid`); 4, 17, 32, 341, 613 and HTTP 429 are rate limits (retryable, after
//! `Retry-After` when given); code 2, code 1 with a 5xx, and any error marked `is_transient` are
//! temporary platform failures (ambiguous for `threads_publish`, retryable otherwise); 506 is a
//! duplicate post and 10 / 200-299 a missing permission (permanent); other Graph 4xx answers are
//! permanent refusals. Anything else follows `http::status_error`. While connecting, permanent
//! failures are `Rejected` and the others `Unavailable`.
//!
//! `ConnectedAccount::meta` is `{"threads_user_id": ...}` (the account id is the same id).
//!
//! Reconciliation: Threads has no idempotency key and no hidden field to carry the marker, so
//! `find_existing` lists the user's posts since `not_before` (less a minute for clock skew) and
//! matches the target: same text (trimmed), same media type (TEXT_POST, IMAGE, VIDEO, CAROUSEL_ALBUM)
//! and, for carousels, the same number of children. It reads up to 5 pages of 100; more than that
//! without a match is `CannotTell`. A failed lookup is an `Err`.

use crate::PlatformSettings;
use crate::graph;
use crate::http::{self, Effect};
use crate::media::MediaSource;
use async_trait::async_trait;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectErrorKind, ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass, Progress,
    PublishError, PublishRequest, PublishedPost, TokenSet,
};
use soku_core::posts::MediaType;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_API_URL: &str = "https://graph.threads.com";
/// The authorization window (a full page URL; a bare origin gets `/oauth/authorize`).
pub const DEFAULT_AUTH_URL: &str = "https://threads.com/oauth/authorize";
pub const SCOPES: &str = "threads_basic,threads_content_publish";
const PLATFORM: &str = "Threads";
const VERSION: &str = "v1.0";
pub const MAX_TEXT_CHARS: usize = 500;
/// How long a long-lived token whose answer gives no `expires_in` is taken to live: a long-lived
/// token's 60 days (refreshed 7 days ahead).
pub const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 24 * 3600);
pub const MAX_CAROUSEL_ITEMS: usize = 20;
/// `since` may not be earlier than this (documented).
const EARLIEST_SINCE: i64 = 1_688_540_400;
const RECONCILE_SLACK_SECS: i64 = 60;
const RECONCILE_PAGES: usize = 5;
/// Posts asked for per page of reconciliation (the documented maximum).
const RECONCILE_PAGE_SIZE: usize = 100;
const RECONCILE_PAGE_SIZE_PARAM: &str = "100";

pub struct ThreadsConnector {
    settings: PlatformSettings,
    client: reqwest::Client,
    polling: graph::Polling,
}

impl ThreadsConnector {
    /// `media` is not used: Threads fetches images from their URLs itself.
    pub fn new(settings: PlatformSettings, _media: Arc<dyn MediaSource>) -> Self {
        let client = http::api_client(settings.timeout);
        Self {
            settings,
            client,
            polling: graph::Polling::DEFAULT,
        }
    }

    /// How often and how long container status is polled (tests shorten both).
    pub fn with_polling(mut self, interval: Duration, deadline: Duration) -> Self {
        self.polling = graph::Polling { interval, deadline };
        self
    }

    fn graph(&self, path: &str) -> String {
        format!("{}/{VERSION}/{path}", self.settings.api_url)
    }

    /// The authorization window's URL.
    fn auth_page(&self) -> Result<url::Url, ConnectError> {
        let mut u = url::Url::parse(&self.settings.auth_url).map_err(|_| {
            ConnectError::new(
                ConnectErrorKind::NotConfigured,
                "The Threads authorization URL is not a valid URL.",
            )
        })?;
        if u.path().is_empty() || u.path() == "/" {
            u.set_path("/oauth/authorize");
        }
        Ok(u)
    }

    fn client_id(&self) -> Result<&str, ConnectError> {
        self.settings.client_id.as_deref().ok_or_else(|| {
            ConnectError::new(
                ConnectErrorKind::NotConfigured,
                "Threads is not configured on this server (no client id).",
            )
        })
    }

    fn client_secret(&self) -> Result<&str, ConnectError> {
        self.settings
            .client_secret
            .as_ref()
            .map(|s| s.expose().as_str())
            .ok_or_else(|| {
                ConnectError::new(
                    ConnectErrorKind::NotConfigured,
                    "Threads is not configured on this server (no client secret).",
                )
            })
    }

    /// One Graph call: its JSON body on 2xx, else the failure it stands for.
    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        effect: Effect,
    ) -> Result<T, PublishError> {
        graph::call(PLATFORM, request, effect).await
    }

    async fn create_container(
        &self,
        user_id: &str,
        token: &str,
        params: &[(&str, &str)],
    ) -> Result<String, PublishError> {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("access_token", token));
        let created: IdOnly = self
            .call(
                self.client
                    .post(self.graph(&format!("{user_id}/threads")))
                    .form(&form),
                Effect::Repeatable,
            )
            .await?;
        Ok(created.id)
    }

    /// Polls containers until every one is FINISHED (each round reads those not finished yet,
    /// then waits, backing off).
    async fn wait_finished(&self, containers: &[String], token: &str) -> Result<(), PublishError> {
        let mut backoff = self.polling.start();
        let mut pending: Vec<&String> = containers.iter().collect();
        loop {
            let mut still = Vec::new();
            for container in pending {
                let status: ContainerStatus = self
                    .call(
                        self.client
                            .get(self.graph(container))
                            .query(&[("fields", "status,error_message"), ("access_token", token)]),
                        Effect::Repeatable,
                    )
                    .await?;
                match status.status.as_deref() {
                    Some("FINISHED") => {}
                    Some("ERROR") => {
                        let why = status.error_message.unwrap_or_else(|| "UNKNOWN".into());
                        return Err(PublishError::new(
                            FailureClass::Permanent,
                            "media_rejected",
                            format!("{PLATFORM} could not process the post ({why})."),
                        )
                        .with_platform_error(why));
                    }
                    Some("EXPIRED") => {
                        return Err(PublishError::new(
                            FailureClass::Retryable { retry_after: None },
                            "container_expired",
                            format!(
                                "The {PLATFORM} media container expired before it was published."
                            ),
                        ));
                    }
                    Some("PUBLISHED") => {
                        return Err(PublishError::new(
                            FailureClass::Ambiguous,
                            "already_published",
                            format!("{PLATFORM} says this container was already published."),
                        ));
                    }
                    // IN_PROGRESS (or a status this server does not know yet).
                    _ => still.push(container),
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            pending = still;
            if !backoff.wait().await {
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "media_processing",
                    format!("{PLATFORM} was still processing the post's media."),
                ));
            }
        }
    }

    /// A FINISHED VIDEO container for the post: the one an earlier attempt created (saved in
    /// `progress`) while Threads still has it, else a new one.
    async fn video_container(
        &self,
        user: &str,
        token: &str,
        video_url: &str,
        text: Option<&str>,
        progress: &Progress,
    ) -> Result<String, PublishError> {
        let mut backoff = self.polling.start();
        if let Some(id) = saved_container(progress.saved(), video_url) {
            match self.wait_video(&id, token, &mut backoff).await? {
                VideoState::Finished => return Ok(id),
                VideoState::Gone => tracing::info!(
                    "the Threads video container an earlier attempt created is gone; creating another"
                ),
            }
        }
        let mut params = vec![("media_type", "VIDEO"), ("video_url", video_url)];
        if let Some(t) = text {
            params.push(("text", t));
        }
        let id = self.create_container(user, token, &params).await?;
        progress
            .save(json!({ "video_url": video_url, "container_id": id }))
            .await?;
        match self.wait_video(&id, token, &mut backoff).await? {
            VideoState::Finished => Ok(id),
            VideoState::Gone => Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "container_expired",
                format!("{PLATFORM} dropped the video's container before it was published."),
            )),
        }
    }

    /// Polls a VIDEO container until it is FINISHED (first read at once, then backing off), or
    /// gone (EXPIRED, or unknown to Threads).
    async fn wait_video(
        &self,
        container: &str,
        token: &str,
        backoff: &mut graph::Backoff,
    ) -> Result<VideoState, PublishError> {
        loop {
            let read = self
                .call::<ContainerStatus>(
                    self.client
                        .get(self.graph(container))
                        .query(&[("fields", "status,error_message"), ("access_token", token)]),
                    Effect::Repeatable,
                )
                .await;
            let status = match read {
                Ok(status) => status,
                Err(e) if graph::is_missing_object(&e) => return Ok(VideoState::Gone),
                Err(e) => return Err(e),
            };
            match status.status.as_deref() {
                Some("FINISHED") => return Ok(VideoState::Finished),
                Some("EXPIRED") => return Ok(VideoState::Gone),
                Some("ERROR") => {
                    let why = status.error_message.unwrap_or_else(|| "UNKNOWN".into());
                    return Err(PublishError::new(
                        FailureClass::Permanent,
                        "media_processing_failed",
                        format!("{PLATFORM} could not process the video ({why})."),
                    )
                    .with_platform_error(why));
                }
                Some("PUBLISHED") => {
                    return Err(PublishError::new(
                        FailureClass::Ambiguous,
                        "already_published",
                        format!("{PLATFORM} says this container was already published."),
                    ));
                }
                // IN_PROGRESS (or a status this server does not know yet).
                _ => {}
            }
            if !backoff.wait().await {
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "media_processing",
                    format!(
                        "{PLATFORM} was still processing the video; the post will be tried again."
                    ),
                ));
            }
        }
    }

    /// Exchange / refresh / profile calls, with failures as connect errors.
    async fn connect_call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ConnectError> {
        self.call(request, Effect::Repeatable)
            .await
            .map_err(graph::connect_error)
    }

    /// The long-lived token; an answer without `expires_in` is taken to live
    /// [`ASSUMED_TOKEN_LIFETIME`] ([`crate::oauth::expires_at`]).
    fn tokens(long: LongLived) -> TokenSet {
        TokenSet {
            access_token: long.access_token,
            refresh_token: None,
            expires_at: Some(crate::oauth::expires_at(
                long.expires_in
                    .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
                ASSUMED_TOKEN_LIFETIME,
            )),
        }
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// How a wait for a video container ended (a failure or a timeout is an error).
enum VideoState {
    Finished,
    /// EXPIRED, or unknown to Threads.
    Gone,
}

/// The container an earlier attempt created for this video, if it saved one.
fn saved_container(saved: &Value, video_url: &str) -> Option<String> {
    (saved.get("video_url").and_then(Value::as_str) == Some(video_url))
        .then(|| saved.get("container_id").and_then(Value::as_str))
        .flatten()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

#[derive(Deserialize)]
struct ContainerStatus {
    status: Option<String>,
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct ShortLived {
    access_token: String,
    #[allow(dead_code)]
    user_id: Option<Value>,
}

#[derive(Deserialize)]
struct LongLived {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Profile {
    id: String,
    username: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Permalink {
    permalink: Option<String>,
}

#[derive(Deserialize)]
struct ThreadsMedia {
    id: String,
    text: Option<String>,
    timestamp: Option<String>,
    permalink: Option<String>,
    media_type: Option<String>,
    children: Option<Children>,
}

#[derive(Deserialize)]
struct Children {
    #[serde(default)]
    data: Vec<Value>,
}

/// What a post is made of.
#[derive(Clone, Copy)]
enum Shape<'a> {
    Text,
    Images(&'a [String]),
    Video(&'a str),
}

impl Shape<'_> {
    /// What the retrieval API calls the post this content makes.
    fn media_type(self) -> &'static str {
        match self {
            Shape::Text => "TEXT_POST",
            Shape::Images([_]) => "IMAGE",
            Shape::Images(_) => "CAROUSEL_ALBUM",
            Shape::Video(_) => "VIDEO",
        }
    }

    /// The carousel children expected, when it is a carousel.
    fn children(self) -> Option<usize> {
        match self {
            Shape::Images(images) if images.len() > 1 => Some(images.len()),
            _ => None,
        }
    }
}

fn permanent(code: &str, message: impl Into<String>) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

/// What the request posts, checked against Threads' limits.
fn shape_of(request: &PublishRequest) -> Result<Shape<'_>, PublishError> {
    let content = &request.content;
    if let Some(t) = &content.text
        && soku_core::posts::threads_text_length(t) > MAX_TEXT_CHARS
    {
        return Err(permanent(
            "text_too_long",
            format!("{PLATFORM} posts take at most {MAX_TEXT_CHARS} characters."),
        ));
    }
    if content.media_type == MediaType::Video || content.video_url.is_some() {
        let Some(url) = content
            .video_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        else {
            return Err(permanent(
                "empty_post",
                format!("A {PLATFORM} video post needs its video."),
            ));
        };
        if !content.image_urls.is_empty() {
            return Err(permanent(
                "unsupported_media",
                format!(
                    "Posts to {PLATFORM} with images and a video together are not supported yet; post them separately."
                ),
            ));
        }
        return Ok(Shape::Video(url));
    }
    match content.media_type {
        MediaType::Text | MediaType::Video => {
            if content.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                return Err(permanent(
                    "empty_post",
                    format!("A {PLATFORM} text post needs text."),
                ));
            }
            Ok(Shape::Text)
        }
        MediaType::Image => {
            let n = content.image_urls.len();
            if n == 0 {
                return Err(permanent(
                    "empty_post",
                    "An image post needs at least one image.",
                ));
            }
            if n > MAX_CAROUSEL_ITEMS {
                return Err(permanent(
                    "too_many_images",
                    format!("{PLATFORM} posts take at most {MAX_CAROUSEL_ITEMS} images."),
                ));
            }
            Ok(Shape::Images(&content.image_urls))
        }
    }
}

#[async_trait]
impl Connector for ThreadsConnector {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let shape = shape_of(request)?;
        let token = http::access_token(&request.account, PLATFORM)?;
        let user = request.account.account_id.as_str();
        let text = request.content.text.as_deref().filter(|t| !t.is_empty());

        let container = match shape {
            Shape::Video(url) => {
                self.video_container(user, token, url, text, &request.progress)
                    .await?
            }
            Shape::Text => {
                let t = text.unwrap_or_default();
                let id = self
                    .create_container(user, token, &[("media_type", "TEXT"), ("text", t)])
                    .await?;
                self.wait_finished(std::slice::from_ref(&id), token).await?;
                id
            }
            Shape::Images([one]) => {
                let mut p = vec![("media_type", "IMAGE"), ("image_url", one.as_str())];
                if let Some(t) = text {
                    p.push(("text", t));
                }
                let id = self.create_container(user, token, &p).await?;
                self.wait_finished(std::slice::from_ref(&id), token).await?;
                id
            }
            Shape::Images(many) => {
                let mut children = Vec::with_capacity(many.len());
                for url in many {
                    let id = self
                        .create_container(
                            user,
                            token,
                            &[
                                ("media_type", "IMAGE"),
                                ("image_url", url.as_str()),
                                ("is_carousel_item", "true"),
                            ],
                        )
                        .await?;
                    children.push(id);
                }
                self.wait_finished(&children, token).await?;
                let list = children.join(",");
                let mut p = vec![("media_type", "CAROUSEL"), ("children", list.as_str())];
                if let Some(t) = text {
                    p.push(("text", t));
                }
                let id = self.create_container(user, token, &p).await?;
                self.wait_finished(std::slice::from_ref(&id), token).await?;
                id
            }
        };

        let published: IdOnly = self
            .call(
                self.client
                    .post(self.graph(&format!("{user}/threads_publish")))
                    .form(&[("creation_id", container.as_str()), ("access_token", token)]),
                Effect::Creates,
            )
            .await?;

        // The post exists now: a failure to read its link must not fail the publish.
        let url = match self
            .call::<Permalink>(
                self.client
                    .get(self.graph(&published.id))
                    .query(&[("fields", "permalink"), ("access_token", token)]),
                Effect::Repeatable,
            )
            .await
        {
            Ok(p) => p.permalink,
            Err(e) => {
                tracing::warn!(code = %e.code, "could not read the Threads post's permalink");
                None
            }
        };
        Ok(PublishedPost {
            id: published.id,
            url,
        })
    }

    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let shape = match shape_of(request) {
            Ok(shape) => shape,
            // Such a post is never created.
            Err(_) => return Ok(Existing::NotFound),
        };
        let token = http::access_token(&request.account, PLATFORM)?;
        let user = request.account.account_id.as_str();
        let want_type = shape.media_type();
        let want_text = request
            .content
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let not_before = request.not_before - chrono::Duration::seconds(RECONCILE_SLACK_SECS);
        let since = not_before.timestamp().max(EARLIEST_SINCE).to_string();

        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let mut query = vec![
                ("fields", "id,text,timestamp,permalink,media_type,children"),
                ("since", since.as_str()),
                ("limit", RECONCILE_PAGE_SIZE_PARAM),
                ("access_token", token),
            ];
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let page: graph::Page<ThreadsMedia> = self
                .call(
                    self.client
                        .get(self.graph(&format!("{user}/threads")))
                        .query(&query),
                    Effect::Repeatable,
                )
                .await?;
            for post in &page.data {
                let recent = post
                    .timestamp
                    .as_deref()
                    .and_then(graph::parse_timestamp)
                    .is_none_or(|t| t >= not_before);
                let same_text = post
                    .text
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    == want_text;
                let same_type = post.media_type.as_deref() == Some(want_type);
                let same_count = shape
                    .children()
                    .is_none_or(|n| post.children.as_ref().is_none_or(|c| c.data.len() == n));
                if recent && same_text && same_type && same_count {
                    return Ok(Existing::Found(PublishedPost {
                        id: post.id.clone(),
                        url: post.permalink.clone(),
                    }));
                }
            }
            // The docs describe paging by `cursors.after` only: a page with a `next` link, or
            // a full page with an `after` cursor, may have more behind it.
            match page.next_cursor(RECONCILE_PAGE_SIZE) {
                Some(cursor) => after = Some(cursor),
                None => return Ok(Existing::NotFound),
            }
        }
        Ok(Existing::CannotTell)
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
        let client_id = self.client_id()?;
        self.client_secret()?;
        let mut url = self.auth_page()?;
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("response_type", "code")
            .append_pair("state", &request.state);
        Ok(AuthorizationStart {
            url: url.into(),
            pending: json!({}),
        })
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        let client_id = self.client_id()?;
        let client_secret = self.client_secret()?;
        // The redirect carries `#_` after the code; a callback that kept it must not send it.
        let code = exchange.code.trim_end_matches("#_");
        let short: ShortLived = self
            .connect_call(
                self.client
                    .post(format!("{}/oauth/access_token", self.settings.api_url))
                    .form(&[
                        ("client_id", client_id),
                        ("client_secret", client_secret),
                        ("grant_type", "authorization_code"),
                        ("redirect_uri", exchange.redirect_uri.as_str()),
                        ("code", code),
                    ]),
            )
            .await?;
        let long: LongLived = self
            .connect_call(
                self.client
                    .get(format!("{}/access_token", self.settings.api_url))
                    .query(&[
                        ("grant_type", "th_exchange_token"),
                        ("client_secret", client_secret),
                        ("access_token", short.access_token.as_str()),
                    ]),
            )
            .await?;
        let profile: Profile = self
            .connect_call(self.client.get(self.graph("me")).query(&[
                ("fields", "id,username,name"),
                ("access_token", long.access_token.as_str()),
            ]))
            .await?;
        Ok(ConnectedAccount {
            account_id: profile.id.clone(),
            username: profile.username,
            display_name: profile.name,
            meta: json!({ "threads_user_id": profile.id }),
            tokens: Self::tokens(long),
        })
    }

    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        let Some(token) = account.access_token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "The Threads account has no access token to refresh.",
            ));
        };
        let long: LongLived = self
            .connect_call(
                self.client
                    .get(format!("{}/refresh_access_token", self.settings.api_url))
                    .query(&[("grant_type", "th_refresh_token"), ("access_token", token)]),
            )
            .await?;
        Ok(Self::tokens(long))
    }

    fn refresh_ahead(&self) -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }
}
