//! Facebook Pages: connecting the Pages a Facebook user manages (Facebook Login, `meta`), and
//! publishing feed posts, photos and videos to a Page through the Pages API, with reconciliation
//! by reading the Page's recent posts and videos.
//!
//! Documented endpoints used (paths on `graph.facebook.com/{version}`, the version configurable,
//! [`crate::meta::GRAPH_VERSION`] by default; the sourced notes are
//! `docs/research/meta-graph-api.md`, sections 1, 3 and 4):
//! - Connecting: the login dialog with `pages_show_list,pages_read_engagement,
//!   pages_manage_posts`, the code traded for a long-lived user token and that for the Pages with
//!   their Page tokens (`meta::FacebookLogin`). "If you used a long-lived User access token, the
//!   Page access token has no expiration date" (Get Long-Lived Tokens), so a Page token is stored
//!   without an expiry and `refresh` answers `NotRefreshable`: a Page token Facebook stops
//!   accepting (code 190) ends in `token_invalid` and the engine marks the account
//!   `needs_reconnect`. One account per Page the user may publish to (`CREATE_CONTENT`); the
//!   account id is the Page id, `meta` is `{"page_id"}`. The callback's code may carry the
//!   `#_=_` Facebook appends to the redirect; it is cut off.
//! - Text and link posts: `POST /{page-id}/feed` with `message` and `link` ("Pages API, Posts":
//!   response `{"id": "page_post_id"}`); the post's URL is `https://www.facebook.com/{page_post_id}`.
//! - One photo: `POST /{page-id}/photos` with `url`, `caption` (`message` is "Deprecated. Please
//!   use the caption param") and `published=true` -> `{"id":"photo_id","post_id":
//!   "page_post_id"}` (Page Photos reference); the post is `post_id`.
//! - Several photos: each uploaded with `published=false` (an unpublished photo is invisible and
//!   kept "about 24 hours"), then `POST /{page-id}/feed` with `message` and
//!   `attached_media[n]={"media_fbid":"<photo id>"}`, which "returns the Page Post ID".
//! - Video: `POST /{page-id}/videos` with `file_url` ("Accessible URL of a video file"),
//!   `description` and `published=true` -> `{"id"}` (Video API, "Publishing"); then
//!   `GET /{video-id}?fields=status,permalink_url`: `status.video_status` is one of `error`,
//!   `expired`, `processing`, `ready`, `uploading`, `upload_failed`, `upload_complete`, and each
//!   phase (`uploading_phase`, `processing_phase`, `publishing_phase`) has a `status` documented
//!   as `completed`, `error`, `not_started`, `in_progress` though the examples write `complete`
//!   (both are taken); the spec's `processing_phase.errors[] {code, message}` (the doc example
//!   has a single `error`; both are read) say why processing failed.
//! - Reconciliation: `GET /{page-id}/published_posts?fields=id,message,created_time,
//!   permalink_url&limit=100` (newest first) and, for videos, `GET /{page-id}/videos?fields=id,
//!   description,created_time,permalink_url` and `GET /{video-id}`.
//!
//! Every call carries the Page's token as the documented `access_token` parameter (form body for
//! POSTs, query for GETs); no error or log line built here contains a URL, a token or the app
//! secret.
//!
//! Publishing:
//! - The post's text is the feed post's `message`, the photo's `caption` or the video's
//!   `description`. `post.options.facebook.link` goes in `link` on a text post (Facebook shows a
//!   preview of it); photos and videos take no `link`, so on those it follows the text on a line
//!   of its own.
//! - `postType` `reel` and `story` are refused (`unsupported_post_type`, permanent): only feed
//!   posts are built. Images together with a video are refused (`unsupported_media`): Facebook
//!   takes them as separate posts. More than 10 images (the submission's limit) are refused.
//! - The creating calls are the feed post, the published photo and the video upload (a video
//!   uploaded with `published=true` is the post): their timeouts and 5xx are ambiguous. Uploading
//!   an unpublished photo is repeatable. The unpublished photos' ids are saved as the target's
//!   progress (`{"photos": [{"url", "id"}, ...]}`, in the post's order, `id` null for one not uploaded
//!   yet) as each is uploaded, so a
//!   retry, or another process after a restart, attaches them instead of uploading them again; if
//!   the feed call refuses an attachment (Graph code 100: an unpublished photo Facebook dropped, or
//!   one an earlier, unseen feed call already used), the saved photos are uploaded again and the
//!   feed call made once more.
//! - Video: the video id is saved (`{"video_url", "video_id"}`) as soon as Facebook answers the
//!   upload. Its status is polled (first read at once, backing off from `poll_interval` to 10 s)
//!   within `poll_deadline`: `ready` (or the processing phase complete) is published; `error` or
//!   `upload_failed` is permanent (`media_processing_failed`, with Facebook's message); still
//!   processing at the deadline is retryable (`media_processing`): the next attempt finds the
//!   saved id and polls that video instead of uploading again. A saved video Facebook no longer
//!   knows (code 100, subcode 33) or whose upload `expired` is uploaded again. The published
//!   post's id is the **video id** (Facebook makes the Page post for it; the video is what the
//!   API names and reads back), its URL the video's `permalink_url`, else
//!   `https://www.facebook.com/{page-id}/videos/{video-id}`.
//!
//! Errors are Graph API bodies classified by `graph::classify`: 190 (any subcode) is
//! `token_invalid`; 4, 17, 32, 613, 80001 and HTTP 429 are rate limits, retryable after
//! `Retry-After` or the `X-Business-Use-Case-Usage` `estimated_time_to_regain_access`; code 2,
//! code 1 with a 5xx and `is_transient` errors are temporary (ambiguous for a creating call);
//! 506 is a duplicate post; 10 and 200-299 a missing permission; other 4xx Graph errors are
//! permanent refusals. On top of that: 190 with subcode 492 ("User associated with the Page
//! access token does not have an appropriate role on the Page") stays `token_invalid` with a
//! message saying the connecting user lost their role on the Page; a permission error says the
//! connection may no longer be allowed to post to the Page; 100/33 on the Page itself is
//! `page_unavailable`; 1609005 ("Error Posting Link") is `link_rejected`. All are permanent.
//!
//! Reconciliation (`find_existing`): Facebook has no idempotency key and no hidden field for the
//! marker. The Page's published posts are read newest first (up to 3 pages of 100), and a post
//! made at or after `not_before` less a minute, with the same message (trimmed), is the one. For
//! a video, the saved video id is read first: it exists, processed or still processing, is
//! `Found`; its processing failed is `NotFound` (publishing again polls it and reports the
//! failure). Without a saved id (the upload's answer was lost), or with one Facebook no longer
//! knows, the Page's videos are read the same way and matched on `description`. What cannot be
//! told apart: a post without text (photos with no caption, a bare link, a video with no
//! description) looks like any other post of the Page made in the window, so any such post there
//! is `CannotTell` (none is `NotFound`); two identical texts posted in the same window cannot be
//! told apart either (the newest is taken). A window reaching further back than three pages is
//! `CannotTell`. A failed lookup is an `Err`.

use crate::PlatformSettings;
use crate::graph;
use crate::http::{self, Effect};
use crate::meta::{self, FacebookLogin, PAGE_SCOPES};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectErrorKind, ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass, Progress,
    PublishError, PublishRequest, PublishedPost, TOKEN_INVALID, TokenSet,
};
use soku_core::posts::{FacebookPostType, MediaType, PlatformOptions};
use std::time::Duration;

/// Graph API's host (the version is added to each call).
pub const DEFAULT_API_URL: &str = "https://graph.facebook.com";
/// The login dialog's host.
pub const DEFAULT_AUTH_URL: &str = "https://www.facebook.com";
const PLATFORM: &str = "Facebook";
/// Where a Page post's URL points.
const WEB: &str = "https://www.facebook.com";
/// The most images one post takes (the submission's limit for Facebook).
pub const MAX_IMAGES: usize = 10;
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(10);
const RECONCILE_SLACK_SECS: i64 = 60;
const RECONCILE_PAGES: usize = 3;
const RECONCILE_PAGE_SIZE: usize = 100;
const RECONCILE_PAGE_SIZE_PARAM: &str = "100";
/// "Error Posting Link" (Graph API, Handling Errors).
const ERROR_POSTING_LINK: i64 = 1_609_005;
/// Code 190's "Invalid Session": "User associated with the Page access token does not have an
/// appropriate role on the Page".
const NO_ROLE_ON_PAGE: i64 = 492;

/// The Facebook Page connector.
pub struct FacebookPages {
    settings: PlatformSettings,
    client: reqwest::Client,
    login: FacebookLogin,
    version: String,
    poll_interval: Duration,
    poll_deadline: Duration,
}

impl FacebookPages {
    /// `settings`: the Meta app's (`api_url` = the `graph.facebook.com` base without a version,
    /// `auth_url` = the `www.facebook.com` base, client id and secret = the Facebook app's).
    pub fn new(settings: PlatformSettings) -> Self {
        let client = http::api_client(settings.timeout);
        let login = FacebookLogin::new(settings.clone());
        Self {
            version: login.version().to_owned(),
            settings,
            client,
            login,
            poll_interval: Duration::from_secs(1),
            // Inside the engine's bound on one publish call (half its 120 s lease): a video
            // still processing then is retried later, not cut off mid-poll.
            poll_deadline: Duration::from_secs(45),
        }
    }

    /// Calls this Graph API version (`v26.0`; anything else falls back to the default, see
    /// `meta::version_or_default`), for publishing and for Facebook Login.
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = meta::version_or_default(Some(version));
        self.login = self.login.with_version(&self.version);
        self
    }

    /// How often and how long a video's status is polled (tests shorten both).
    pub fn with_polling(mut self, interval: Duration, deadline: Duration) -> Self {
        self.poll_interval = interval;
        self.poll_deadline = deadline;
        self
    }

    fn graph(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.settings.api_url, self.version)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        effect: Effect,
    ) -> Result<T, PublishError> {
        graph::call(PLATFORM, request, effect).await
    }

    /// A call on one of the Page's edges: a refusal saying the Page cannot be reached is
    /// `page_unavailable`.
    async fn page_call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        effect: Effect,
    ) -> Result<T, PublishError> {
        self.call(request, effect).await.map_err(|e| {
            if graph::is_missing_object(&e) {
                PublishError {
                    code: "page_unavailable".into(),
                    message: format!(
                        "{PLATFORM} does not let this connection reach the Page (it may have been deleted or unpublished, or the connection no longer manages it); reconnect the Page."
                    ),
                    ..e
                }
            } else {
                e
            }
        })
    }

    /// `POST /{page}/feed`: the post's id.
    async fn feed_post(
        &self,
        page: &str,
        token: &str,
        message: Option<&str>,
        link: Option<&str>,
        attached: &[String],
    ) -> Result<String, PublishError> {
        let items: Vec<(String, String)> = attached
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    format!("attached_media[{i}]"),
                    json!({ "media_fbid": id }).to_string(),
                )
            })
            .collect();
        let mut form: Vec<(&str, &str)> = Vec::new();
        if let Some(m) = message {
            form.push(("message", m));
        }
        if let Some(l) = link {
            form.push(("link", l));
        }
        for (k, v) in &items {
            form.push((k.as_str(), v.as_str()));
        }
        form.push(("access_token", token));
        let created: IdOnly = self
            .page_call(
                self.client
                    .post(self.graph(&format!("{page}/feed")))
                    .form(&form),
                Effect::Creates,
            )
            .await?;
        Ok(created.id)
    }

    /// `POST /{page}/photos` with `published=false`: the photo's id (repeatable: nothing shows).
    async fn unpublished_photo(
        &self,
        page: &str,
        token: &str,
        url: &str,
    ) -> Result<String, PublishError> {
        let created: PhotoCreated = self
            .page_call(
                self.client
                    .post(self.graph(&format!("{page}/photos")))
                    .form(&[
                        ("url", url),
                        ("published", "false"),
                        ("access_token", token),
                    ]),
                Effect::Repeatable,
            )
            .await?;
        Ok(created.id)
    }

    /// One photo, published with its caption: the post.
    async fn photo_post(
        &self,
        page: &str,
        token: &str,
        url: &str,
        caption: Option<&str>,
    ) -> Result<PublishedPost, PublishError> {
        let mut form = vec![("url", url), ("published", "true")];
        if let Some(c) = caption {
            form.push(("caption", c));
        }
        form.push(("access_token", token));
        let created: PhotoCreated = self
            .page_call(
                self.client
                    .post(self.graph(&format!("{page}/photos")))
                    .form(&form),
                Effect::Creates,
            )
            .await?;
        let id = created.post_id.unwrap_or(created.id);
        Ok(PublishedPost {
            url: Some(format!("{WEB}/{id}")),
            id,
        })
    }

    /// Several photos: each uploaded unpublished (or taken from what an earlier attempt saved),
    /// then one feed post attaching them all.
    async fn photos_post(
        &self,
        page: &str,
        token: &str,
        urls: &[String],
        message: Option<&str>,
        progress: &Progress,
    ) -> Result<PublishedPost, PublishError> {
        let saved = saved_photos(progress.saved());
        let mut ids: Vec<Option<String>> = urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                saved
                    .get(i)
                    .filter(|(u, id)| u == url && !id.is_empty())
                    .map(|(_, id)| id.clone())
            })
            .collect();
        let reused: Vec<usize> = (0..urls.len()).filter(|&i| ids[i].is_some()).collect();
        if !reused.is_empty() {
            tracing::info!(
                reused = reused.len(),
                "attaching the Facebook photos an earlier attempt uploaded"
            );
        }
        for i in 0..urls.len() {
            if ids[i].is_none() {
                ids[i] = Some(self.unpublished_photo(page, token, &urls[i]).await?);
                progress.save(photos_progress(urls, &ids)).await?;
            }
        }
        let attached: Vec<String> = ids.iter().flatten().cloned().collect();
        let id = match self.feed_post(page, token, message, None, &attached).await {
            Err(e) if !reused.is_empty() && refuses_attachment(&e) => {
                tracing::info!(
                    "Facebook refused the photos an earlier attempt uploaded; uploading them again"
                );
                for &i in &reused {
                    ids[i] = Some(self.unpublished_photo(page, token, &urls[i]).await?);
                    progress.save(photos_progress(urls, &ids)).await?;
                }
                let attached: Vec<String> = ids.iter().flatten().cloned().collect();
                self.feed_post(page, token, message, None, &attached)
                    .await?
            }
            other => other?,
        };
        Ok(PublishedPost {
            url: Some(format!("{WEB}/{id}")),
            id,
        })
    }

    /// A video: the one an earlier attempt uploaded (saved in `progress`) while Facebook still
    /// has it, else a new upload; then its processing waited for.
    async fn video_post(
        &self,
        page: &str,
        token: &str,
        url: &str,
        description: Option<&str>,
        progress: &Progress,
    ) -> Result<PublishedPost, PublishError> {
        let deadline = tokio::time::Instant::now() + self.poll_deadline;
        if let Some(id) = saved_video(progress.saved(), url) {
            match self.wait_video(page, &id, token, deadline).await? {
                VideoState::Ready(post) => return Ok(post),
                VideoState::Gone => tracing::info!(
                    "the Facebook video an earlier attempt uploaded is gone; uploading it again"
                ),
            }
        }
        let mut form = vec![("file_url", url), ("published", "true")];
        if let Some(d) = description {
            form.push(("description", d));
        }
        form.push(("access_token", token));
        let created: IdOnly = self
            .page_call(
                self.client
                    .post(self.graph(&format!("{page}/videos")))
                    .form(&form),
                Effect::Creates,
            )
            .await?;
        progress
            .save(json!({ "video_url": url, "video_id": created.id }))
            .await?;
        match self.wait_video(page, &created.id, token, deadline).await? {
            VideoState::Ready(post) => Ok(post),
            VideoState::Gone => Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "video_gone",
                format!("{PLATFORM} dropped the video before it was processed."),
            )),
        }
    }

    /// Polls a video's status until it is ready (first read at once, then backing off), failed,
    /// or gone.
    async fn wait_video(
        &self,
        page: &str,
        video: &str,
        token: &str,
        deadline: tokio::time::Instant,
    ) -> Result<VideoState, PublishError> {
        let mut pause = self.poll_interval;
        loop {
            let read = self
                .call::<VideoRead>(
                    self.client
                        .get(self.graph(video))
                        .query(&[("fields", "status,permalink_url"), ("access_token", token)]),
                    Effect::Repeatable,
                )
                .await;
            let read = match read {
                Ok(read) => read,
                Err(e) if graph::is_missing_object(&e) => return Ok(VideoState::Gone),
                Err(e) => return Err(e),
            };
            let status = read.status.unwrap_or_default();
            match status.state() {
                Processing::Ready => {
                    return Ok(VideoState::Ready(video_post_of(
                        page,
                        video,
                        read.permalink_url.as_deref(),
                    )));
                }
                Processing::Failed(why) => {
                    return Err(PublishError::new(
                        FailureClass::Permanent,
                        "media_processing_failed",
                        format!("{PLATFORM} could not process the video: {why}"),
                    )
                    .with_platform_error(why));
                }
                Processing::Expired => return Ok(VideoState::Gone),
                Processing::Pending => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "media_processing",
                    format!(
                        "{PLATFORM} was still processing the video; the post will be tried again."
                    ),
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL_INTERVAL);
        }
    }

    /// Reads up to `RECONCILE_PAGES` pages of an edge, newest first, and matches rows in the
    /// window on their text: `Found` for the first with the same text; for a post without text,
    /// `CannotTell` when any row is in the window.
    async fn match_recent<R: Recent + DeserializeOwned>(
        &self,
        page_id: &str,
        edge: &str,
        fields: &str,
        token: &str,
        want: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Existing, PublishError> {
        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let mut query = vec![
                ("fields", fields),
                ("limit", RECONCILE_PAGE_SIZE_PARAM),
                ("access_token", token),
            ];
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let page: graph::Page<R> = self
                .page_call(
                    self.client.get(self.graph(edge)).query(&query),
                    Effect::Repeatable,
                )
                .await?;
            let mut older_seen = false;
            for row in &page.data {
                let created = row.created().and_then(graph::parse_timestamp);
                if created.is_some_and(|t| t < since) {
                    older_seen = true;
                    continue;
                }
                let text = row.text().map(str::trim).filter(|t| !t.is_empty());
                match want {
                    None => return Ok(Existing::CannotTell),
                    Some(w) if text == Some(w) => return Ok(Existing::Found(row.post(page_id))),
                    Some(_) => {}
                }
            }
            // Newest first: past the window's start, nothing further can match.
            if older_seen {
                return Ok(Existing::NotFound);
            }
            match page.next_cursor(RECONCILE_PAGE_SIZE) {
                Some(cursor) => after = Some(cursor),
                None => return Ok(Existing::NotFound),
            }
        }
        Ok(Existing::CannotTell)
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct PhotoCreated {
    id: String,
    #[serde(default)]
    post_id: Option<String>,
}

#[derive(Deserialize)]
struct VideoRead {
    #[serde(default)]
    status: Option<VideoStatus>,
    #[serde(default)]
    permalink_url: Option<String>,
}

#[derive(Deserialize, Default)]
struct VideoStatus {
    #[serde(default)]
    video_status: Option<String>,
    #[serde(default)]
    uploading_phase: Option<Phase>,
    #[serde(default)]
    processing_phase: Option<Phase>,
}

#[derive(Deserialize)]
struct Phase {
    #[serde(default)]
    status: Option<String>,
    /// The spec's `errors[]`.
    #[serde(default)]
    errors: Vec<PhaseError>,
    /// The documentation example's single `error`.
    #[serde(default)]
    error: Option<PhaseError>,
}

#[derive(Deserialize)]
struct PhaseError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// Where a video's processing is.
enum Processing {
    Ready,
    /// Facebook's words on why.
    Failed(String),
    Expired,
    Pending,
}

fn is_complete(phase: &Option<Phase>) -> bool {
    phase
        .as_ref()
        .and_then(|p| p.status.as_deref())
        .is_some_and(|s| s == "complete" || s == "completed")
}

impl VideoStatus {
    fn state(&self) -> Processing {
        let failed_phase = [&self.processing_phase, &self.uploading_phase]
            .into_iter()
            .flatten()
            .find(|p| p.status.as_deref() == Some("error"));
        match self.video_status.as_deref() {
            Some("error" | "upload_failed") => Processing::Failed(self.why()),
            Some("expired") => Processing::Expired,
            Some("ready") => Processing::Ready,
            _ if failed_phase.is_some() => Processing::Failed(self.why()),
            _ if is_complete(&self.processing_phase) => Processing::Ready,
            _ => Processing::Pending,
        }
    }

    /// The phases' error messages, processing first.
    fn why(&self) -> String {
        let said: Vec<String> = [&self.processing_phase, &self.uploading_phase]
            .into_iter()
            .flatten()
            .flat_map(|p| p.errors.iter().chain(p.error.as_ref()))
            .filter_map(|e| {
                let m = e.message.as_deref()?.trim();
                (!m.is_empty()).then(|| match e.code {
                    Some(c) => format!("{m} ({c})"),
                    None => m.to_owned(),
                })
            })
            .collect();
        if said.is_empty() {
            format!(
                "status {}",
                self.video_status.as_deref().unwrap_or("unknown")
            )
        } else {
            said.join("; ")
        }
    }
}

/// How a wait for a video ended (a failure or a timeout is an error).
enum VideoState {
    Ready(PublishedPost),
    /// Unknown to Facebook, or its upload expired.
    Gone,
}

/// The published video as a post: its id and URL (the `permalink_url` Facebook gives is
/// relative).
fn video_post_of(page: &str, video: &str, permalink: Option<&str>) -> PublishedPost {
    let url = match permalink.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) if p.starts_with('/') => format!("{WEB}{p}"),
        Some(p) if p.starts_with("https://") => p.to_owned(),
        _ => format!("{WEB}/{page}/videos/{video}"),
    };
    PublishedPost {
        id: video.to_owned(),
        url: Some(url),
    }
}

/// A row of a listing reconciliation reads.
trait Recent {
    fn created(&self) -> Option<&str>;
    fn text(&self) -> Option<&str>;
    fn post(&self, page: &str) -> PublishedPost;
}

#[derive(Deserialize)]
struct PagePost {
    id: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    created_time: Option<String>,
    #[serde(default)]
    permalink_url: Option<String>,
}

impl Recent for PagePost {
    fn created(&self) -> Option<&str> {
        self.created_time.as_deref()
    }
    fn text(&self) -> Option<&str> {
        self.message.as_deref()
    }
    fn post(&self, _page: &str) -> PublishedPost {
        PublishedPost {
            id: self.id.clone(),
            url: Some(
                self.permalink_url
                    .clone()
                    .unwrap_or_else(|| format!("{WEB}/{}", self.id)),
            ),
        }
    }
}

#[derive(Deserialize)]
struct PageVideo {
    id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    created_time: Option<String>,
    #[serde(default)]
    permalink_url: Option<String>,
}

impl Recent for PageVideo {
    fn created(&self) -> Option<&str> {
        self.created_time.as_deref()
    }
    fn text(&self) -> Option<&str> {
        self.description.as_deref()
    }
    fn post(&self, page: &str) -> PublishedPost {
        video_post_of(page, &self.id, self.permalink_url.as_deref())
    }
}

/// The photos an earlier attempt uploaded, in the post's order: (url, id).
fn saved_photos(saved: &Value) -> Vec<(String, String)> {
    let Some(items) = saved.get("photos").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|p| {
            let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            (s("url"), s("id"))
        })
        .collect()
}

fn photos_progress(urls: &[String], ids: &[Option<String>]) -> Value {
    let photos: Vec<Value> = urls
        .iter()
        .zip(ids)
        .map(|(u, id)| json!({ "url": u, "id": id }))
        .collect();
    json!({ "photos": photos })
}

/// The video an earlier attempt uploaded for this URL, if it saved one.
fn saved_video(saved: &Value, video_url: &str) -> Option<String> {
    (saved.get("video_url").and_then(Value::as_str) == Some(video_url))
        .then(|| saved.get("video_id").and_then(Value::as_str))
        .flatten()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Whether the feed call refused its attachments (Graph code 100, other than the Page itself
/// being unreachable).
fn refuses_attachment(e: &PublishError) -> bool {
    e.class == FailureClass::Permanent
        && e.code != "page_unavailable"
        && graph::platform_graph_error(e).is_some_and(|g| g.code == Some(100))
}

/// Facebook's refusals that mean more than `graph::classify` says.
fn explain(e: PublishError) -> PublishError {
    let Some(g) = graph::platform_graph_error(&e) else {
        return e;
    };
    let said = g
        .error_user_msg
        .or(g.message)
        .map(|m| m.chars().take(300).collect::<String>())
        .unwrap_or_default();
    match (g.code, g.error_subcode) {
        (Some(190), Some(NO_ROLE_ON_PAGE)) => PublishError {
            class: FailureClass::Permanent,
            code: TOKEN_INVALID.into(),
            message: format!(
                "The {PLATFORM} user who connected this Page no longer has a role on it; reconnect the Page with an account that manages it ({said})."
            ),
            ..e
        },
        (Some(ERROR_POSTING_LINK), _) => PublishError {
            class: FailureClass::Permanent,
            code: "link_rejected".into(),
            message: format!("{PLATFORM} would not post the link: {said}"),
            ..e
        },
        (Some(10 | 200..=299), _) => PublishError {
            message: format!(
                "{PLATFORM} does not let this connection post to the Page (a permission was taken back, or the connecting user no longer has a role on the Page that lets them create content; reconnect the Page): {said}"
            ),
            ..e
        },
        _ => e,
    }
}

fn permanent(code: &str, message: impl Into<String>) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

/// What a post is made of.
#[derive(Clone, Copy)]
enum Shape<'a> {
    /// A feed post: text and/or a link.
    Feed,
    Photo(&'a str),
    Photos(&'a [String]),
    Video(&'a str),
}

/// What the request posts: its shape, its text (with the link after it for photos and videos)
/// and, for a feed post, the link.
struct Plan<'a> {
    shape: Shape<'a>,
    message: Option<String>,
    link: Option<&'a str>,
}

fn plan_of(request: &PublishRequest) -> Result<Plan<'_>, PublishError> {
    let options = match &request.options {
        PlatformOptions::Facebook(o) => Some(o),
        _ => None,
    };
    match options.and_then(|o| o.post_type) {
        None | Some(FacebookPostType::Feed) => {}
        Some(t) => {
            let name = match t {
                FacebookPostType::Reel => "reel",
                _ => "story",
            };
            return Err(permanent(
                "unsupported_post_type",
                format!(
                    "Publishing a {PLATFORM} {name} is not supported yet; post it to the feed."
                ),
            ));
        }
    }
    let content = &request.content;
    let text = content
        .text
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(str::to_owned);
    let link = options
        .and_then(|o| o.link.as_deref())
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let with_link = || match (&text, link) {
        (Some(t), Some(l)) => Some(format!("{t}\n\n{l}")),
        (None, Some(l)) => Some(l.to_owned()),
        (t, None) => t.clone(),
    };
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
                    "{PLATFORM} takes images and a video as separate posts; post them separately."
                ),
            ));
        }
        return Ok(Plan {
            shape: Shape::Video(url),
            message: with_link(),
            link: None,
        });
    }
    match content.image_urls.as_slice() {
        [] => {
            if text.is_none() && link.is_none() {
                return Err(permanent(
                    "empty_post",
                    format!("A {PLATFORM} post needs text, a link, images or a video."),
                ));
            }
            Ok(Plan {
                shape: Shape::Feed,
                message: text,
                link,
            })
        }
        [one] => Ok(Plan {
            shape: Shape::Photo(one),
            message: with_link(),
            link: None,
        }),
        many if many.len() > MAX_IMAGES => Err(permanent(
            "too_many_images",
            format!("{PLATFORM} posts take at most {MAX_IMAGES} images here."),
        )),
        many => Ok(Plan {
            shape: Shape::Photos(many),
            message: with_link(),
            link: None,
        }),
    }
}

#[async_trait]
impl Connector for FacebookPages {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let plan = plan_of(request)?;
        let token = http::access_token(&request.account, PLATFORM)?;
        let page = request.account.account_id.as_str();
        let message = plan.message.as_deref();
        let result = match plan.shape {
            Shape::Feed => self
                .feed_post(page, token, message, plan.link, &[])
                .await
                .map(|id| PublishedPost {
                    url: Some(format!("{WEB}/{id}")),
                    id,
                }),
            Shape::Photo(url) => self.photo_post(page, token, url, message).await,
            Shape::Photos(urls) => {
                self.photos_post(page, token, urls, message, &request.progress)
                    .await
            }
            Shape::Video(url) => {
                self.video_post(page, token, url, message, &request.progress)
                    .await
            }
        };
        result.map_err(explain)
    }

    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let plan = match plan_of(request) {
            Ok(plan) => plan,
            // Such a post is never created.
            Err(_) => return Ok(Existing::NotFound),
        };
        let token = http::access_token(&request.account, PLATFORM)?;
        let page = request.account.account_id.as_str();
        let want = plan
            .message
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let since = request.not_before - chrono::Duration::seconds(RECONCILE_SLACK_SECS);
        let found = match plan.shape {
            Shape::Video(url) => {
                if let Some(id) = saved_video(request.progress.saved(), url) {
                    let read = self
                        .call::<VideoRead>(
                            self.client.get(self.graph(&id)).query(&[
                                ("fields", "status,permalink_url"),
                                ("access_token", token),
                            ]),
                            Effect::Repeatable,
                        )
                        .await;
                    match read {
                        Ok(v) => match v.status.unwrap_or_default().state() {
                            // Published once processed (it was uploaded with `published=true`).
                            Processing::Ready | Processing::Pending => {
                                return Ok(Existing::Found(video_post_of(
                                    page,
                                    &id,
                                    v.permalink_url.as_deref(),
                                )));
                            }
                            // It will never show; publishing again reports why.
                            Processing::Failed(_) => return Ok(Existing::NotFound),
                            Processing::Expired => {}
                        },
                        // Gone: a later upload whose answer was lost may still be there.
                        Err(e) if graph::is_missing_object(&e) => {}
                        Err(e) => return Err(explain(e)),
                    }
                }
                self.match_recent::<PageVideo>(
                    page,
                    &format!("{page}/videos"),
                    "id,description,created_time,permalink_url",
                    token,
                    want,
                    since,
                )
                .await
            }
            _ => {
                self.match_recent::<PagePost>(
                    page,
                    &format!("{page}/published_posts"),
                    "id,message,created_time,permalink_url",
                    token,
                    want,
                    since,
                )
                .await
            }
        };
        found.map_err(explain)
    }

    fn connect_method(&self) -> ConnectMethod {
        ConnectMethod::OAuth
    }

    fn configured(&self) -> bool {
        self.login.configured()
    }

    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        let url = self.login.authorize_url(request, PAGE_SCOPES)?;
        Ok(AuthorizationStart {
            url,
            pending: json!({}),
        })
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        self.exchange_all(exchange)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ConnectError::new(
                    ConnectErrorKind::Rejected,
                    "The Facebook login granted no Page this account may publish to.",
                )
            })
    }

    async fn exchange_all(
        &self,
        exchange: &CodeExchange,
    ) -> Result<Vec<ConnectedAccount>, ConnectError> {
        // Facebook appends `#_=_` to the redirect; a callback that kept it must not send it.
        let code = exchange.code.trim_end_matches("#_=_");
        let grant = self
            .login
            .exchange(code, &exchange.redirect_uri, false)
            .await?;
        Ok(grant.page_accounts())
    }

    async fn refresh(&self, _account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        Err(ConnectError::new(
            ConnectErrorKind::NotRefreshable,
            "Facebook Page tokens do not expire and cannot be refreshed; reconnect the Page if Facebook stops accepting its token.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(v: Value) -> Processing {
        serde_json::from_value::<VideoStatus>(v).unwrap().state()
    }

    #[test]
    fn video_statuses_read_as_documented_and_as_the_examples_write_them() {
        assert!(matches!(
            state(json!({"video_status": "ready"})),
            Processing::Ready
        ));
        // The reference writes `completed`, the examples `complete`.
        for done in ["complete", "completed"] {
            assert!(matches!(
                state(json!({"video_status": "upload_complete",
                             "processing_phase": {"status": done}})),
                Processing::Ready
            ));
        }
        assert!(matches!(
            state(json!({"video_status": "processing",
                         "processing_phase": {"status": "in_progress"}})),
            Processing::Pending
        ));
        assert!(matches!(state(json!({})), Processing::Pending));
        assert!(matches!(
            state(json!({"video_status": "expired"})),
            Processing::Expired
        ));
        // The spec's `errors[]` and the documentation example's single `error`.
        match state(
            json!({"video_status": "error", "processing_phase": {"status": "error",
                "errors": [{"code": 1363030, "message": "Bad codec"}]}}),
        ) {
            Processing::Failed(why) => assert_eq!(why, "Bad codec (1363030)"),
            _ => panic!("failed expected"),
        }
        match state(
            json!({"video_status": "processing", "processing_phase": {"status": "error",
                "error": {"message": "Resolution too low"}}}),
        ) {
            Processing::Failed(why) => assert_eq!(why, "Resolution too low"),
            _ => panic!("failed expected"),
        }
        match state(json!({"video_status": "upload_failed"})) {
            Processing::Failed(why) => assert_eq!(why, "status upload_failed"),
            _ => panic!("failed expected"),
        }
    }

    #[test]
    fn a_video_url_is_made_absolute() {
        assert_eq!(
            video_post_of("1", "2", Some("/1/videos/2/")).url.unwrap(),
            "https://www.facebook.com/1/videos/2/"
        );
        assert_eq!(
            video_post_of("1", "2", None).url.unwrap(),
            "https://www.facebook.com/1/videos/2"
        );
        assert_eq!(
            video_post_of("1", "2", Some("javascript:x")).url.unwrap(),
            "https://www.facebook.com/1/videos/2"
        );
    }

    #[test]
    fn saved_progress_is_read_back() {
        let urls = vec!["a".to_owned(), "b".to_owned()];
        let saved = photos_progress(&urls, &[Some("1".into()), None]);
        assert_eq!(
            saved_photos(&saved),
            [("a".into(), "1".into()), ("b".into(), String::new())]
        );
        assert_eq!(saved_photos(&Value::Null), []);
        let v = json!({"video_url": "u", "video_id": "9"});
        assert_eq!(saved_video(&v, "u").as_deref(), Some("9"));
        assert_eq!(saved_video(&v, "other"), None);
    }
}
