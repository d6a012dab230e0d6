//! Facebook Pages: connecting the Pages a Facebook user manages (Facebook Login, `meta`), and
//! publishing feed posts, photos, videos, reels and stories to a Page through the Pages, Video,
//! Reels Publishing and Stories APIs, with reconciliation by reading the Page's recent posts,
//! videos, the saved reel's status and the Page's stories.
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
//! - Reels (Reels Publishing API) and video stories (Facebook Stories API): `POST
//!   /{page-id}/video_reels` (or `/video_stories`) with `upload_phase=start` -> `{"video_id",
//!   "upload_url"}`; the hosted file sent to the upload host, `POST {upload host}/video-upload/
//!   {version}/{video-id}` with the headers `Authorization: OAuth {page token}` and `file_url:
//!   {url}` ("On upload success, your app receives a JSON response with `success` set to
//!   `true`"; "To restart the upload, resend the `POST` request"), the upload host being
//!   `https://rupload.facebook.com` (`with_upload_url`); `GET /{video-id}?fields=status` as for
//!   videos, with `publishing_phase.publish_status` "`published` or `not_published`"; then
//!   `upload_phase=finish` with `video_id` -- for a reel with `video_state=PUBLISHED` and
//!   `description` -> `{"success": true}`, for a story -> "`success` set to `true`", "`post_id`
//!   set to the ID for your story post" (the example writes it as a number: a number or a string
//!   is taken). Reels: "Duration | 3 to 90 seconds"; "Reels API is limited to 30 API-published
//!   posts within a 24-hour moving period. This limit is enforced on the `POST
//!   /{page_id}/video_reels` endpoint when attempting to publish a reel". Stories: "A video story
//!   can not exceed 60 seconds".
//! - Photo stories: an unpublished photo (`POST /{page-id}/photos` with `published=false`,
//!   "Step 1"), then `POST /{page-id}/photo_stories` with `photo_id` -> `{"success": true,
//!   "post_id"}`.
//! - Reconciliation: `GET /{page-id}/published_posts?fields=id,message,created_time,
//!   permalink_url&limit=100` (newest first) and, for videos, `GET /{page-id}/videos?fields=id,
//!   description,created_time,permalink_url` and `GET /{video-id}`; for reels the saved video's
//!   `GET /{video-id}?fields=status`; for stories `GET /{page-id}/stories` (`post_id`,
//!   `status`, `creation_time` "UNIX timestamp", `media_type`, `media_id`, `url`, newest first).
//!
//! Every Graph call carries the Page's token as the documented `access_token` parameter (form
//! body for POSTs, query for GETs), the upload host's as `Authorization: OAuth` (a header
//! marked sensitive); no error or log line built here contains a URL, a token or the app
//! secret.
//!
//! Publishing:
//! - The post's text is the feed post's `message`, the photo's `caption` or the video's
//!   `description`. `post.options.facebook.link` goes in `link` on a text post (Facebook shows a
//!   preview of it); photos and videos take no `link`, so on those it follows the text on a line
//!   of its own.
//! - Feed posts (`postType` `feed` or none): images together with a video are refused
//!   (`unsupported_media`): Facebook takes them as separate posts. More than 10 images (the
//!   submission's limit) are refused.
//! - The creating calls are the feed post, the published photo, the video upload (a video
//!   uploaded with `published=true` is the post), a reel's or video story's finish and the
//!   `photo_stories` call: their timeouts and 5xx are ambiguous. Uploading an unpublished
//!   photo, starting a reel or story session and sending its file are repeatable (nothing
//!   shows until the finish). The unpublished photos' ids are saved as the target's
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
//! - Reel (`postType: reel`): exactly one video and no images (else `unsupported_media` or
//!   `reel_needs_video`, permanent); a video the media records say is under 3 s or over 90 s is
//!   refused (`video_duration`). The session is started and its id saved at once
//!   (`{"kind":"reel","video_url","video_id"}`), the file sent by URL, the status polled as for
//!   videos (same bounds; still processing at the deadline is `media_processing`, retryable), and
//!   the finish sent with `video_state=PUBLISHED` and `description` = the text (the link, if
//!   any, after it as on videos) once uploading and processing are complete -- or once uploaded
//!   with processing `not_started`: the guides finish right after the upload, the status being
//!   optional, so a session Facebook processes only once finished is not waited on forever. A
//!   retry with saved progress resumes that session: it polls it, sends the file again if its
//!   status says none arrived, finishes it, or takes it as the post if its status says it is
//!   already published; a saved session Facebook no longer knows (100/33) or that `expired` is
//!   started again. The 30-reels-in-24-hours refusal (code 9: the code is not documented, it is
//!   the Graph fake's and Instagram's) is `quota_exceeded`, retryable after an hour; the saved
//!   session is finished by a later attempt. Processing errors are `media_processing_failed`
//!   with Facebook's message. The post's id is the **video id**; its URL
//!   `https://www.facebook.com/reel/{video-id}`, the address Facebook's web app gives reels (the
//!   guide documents no URL and the API answers none for a reel here).
//! - Story (`postType: story`): one image, or one video, alone (else `story_needs_one_media`);
//!   a video the media records say is over 60 s is refused (`video_duration`). Stories take no
//!   text: the target's text and link are not sent (ignored). An image is uploaded unpublished
//!   and its id saved (`{"kind":"photo_story","image_url","photo_id"}`), then `photo_stories`;
//!   a saved photo Facebook refuses (code 100) is uploaded again and the call made once more. A
//!   video is a `video_stories` session handled as a reel's (saved as `"kind":"video_story"`),
//!   finished without text. The post is the story's `post_id`, its URL
//!   `https://facebook.com/stories/{post_id}` (the form the Stories guide gives the listing's
//!   `url`, "such as `https://facebook.com/stories/8283482737484972`").
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
//! `CannotTell`. Reels and stories are never matched on text ("never twice" rests on the saved
//! ids instead): their session or photo id is saved before any call that could publish, so no
//! saved id means no finish or `photo_stories` call was ever sent (`NotFound`). A reel's saved
//! video is read: its publishing phase under way or done (or `publish_status` `published`) is
//! `Found`; not published, failed or unknown to Facebook is `NotFound` (the finish never took
//! effect; publishing again resumes the session). A story's saved video or photo id is looked
//! for as `media_id` in the Page's stories (newest first, up to 3 pages, stopping at a story
//! older than the window): there is `Found` with its `post_id`, absent is `NotFound`, past three
//! pages `CannotTell`. A failed lookup is an `Err`.

use crate::PlatformSettings;
use crate::graph;
use crate::http::{self, Effect};
use crate::meta::{self, FacebookLogin, Grants};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass, Progress, PublishError,
    PublishRequest, PublishedPost, TOKEN_INVALID, TokenSet,
};
use soku_core::posts::{FacebookPostType, MediaType, PlatformOptions};
use std::time::Duration;

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
/// The upload host's path (`{upload host}/video-upload/{version}/{video-id}`, the `upload_url`
/// the start of a reel or video story session answers).
const UPLOAD_PATH: &str = "video-upload";
/// Reels Publishing API, video specification: "Duration | 3 to 90 seconds".
pub const REEL_MIN_SECONDS: u64 = 3;
pub const REEL_MAX_SECONDS: u64 = 90;
/// Stories API, "Limitations": "A video story can not exceed 60 seconds".
pub const STORY_VIDEO_MAX_SECONDS: u64 = 60;
/// The code Facebook's refusal of a reel over the 30-in-24-hours limit carries. The guide says
/// only that the limit "is enforced on the `POST /{page_id}/video_reels` endpoint when
/// attempting to publish a reel"; 9 is the code of Instagram's publishing limit and what the
/// Graph fake answers (its choice).
const REELS_QUOTA_CODE: i64 = 9;
/// How long a reel refused for the quota waits: the window is a moving 24 hours, so an hour
/// frees whatever the oldest of the 30 leaves.
const REELS_QUOTA_RETRY: Duration = Duration::from_secs(3600);

/// The Facebook Page connector.
pub struct FacebookPages {
    settings: PlatformSettings,
    client: reqwest::Client,
    login: FacebookLogin,
    version: String,
    poll_interval: Duration,
    poll_deadline: Duration,
    upload_url: String,
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
            upload_url: meta::DEFAULT_UPLOAD_URL.to_owned(),
        }
    }

    /// Meta's upload host for reels and video stories (`https://rupload.facebook.com` by
    /// default; tests point it at the fake).
    pub fn with_upload_url(mut self, url: &str) -> Self {
        self.upload_url = url.trim_end_matches('/').to_owned();
        self
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

    /// `POST /{page}/video_reels` or `/video_stories` with `upload_phase=start`: the session's
    /// video id. Repeatable: a session never finished publishes nothing.
    async fn start_session(
        &self,
        page: &str,
        token: &str,
        kind: Session,
    ) -> Result<String, PublishError> {
        let started: SessionStarted = self
            .page_call(
                self.client
                    .post(self.graph(&format!("{page}/{}", kind.edge())))
                    .form(&[("upload_phase", "start"), ("access_token", token)]),
                Effect::Repeatable,
            )
            .await?;
        id_of(&started.video_id).ok_or_else(|| {
            PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                format!(
                    "{PLATFORM} started the {} upload without a video id.",
                    kind.name()
                ),
            )
        })
    }

    /// The hosted-file upload: `POST {upload host}/video-upload/{version}/{video-id}` with
    /// `Authorization: OAuth {page token}` and `file_url: {url}` -> `{"success":true}`.
    /// Repeatable: sending it again restarts the upload.
    async fn upload_hosted(
        &self,
        video: &str,
        token: &str,
        file_url: &str,
    ) -> Result<(), PublishError> {
        use reqwest::header::{AUTHORIZATION, HeaderValue};
        let mut auth = HeaderValue::from_str(&format!("OAuth {token}")).map_err(|_| {
            permanent(
                TOKEN_INVALID,
                format!("The stored {PLATFORM} Page token cannot be sent; reconnect the Page."),
            )
        })?;
        auth.set_sensitive(true);
        let file = HeaderValue::from_str(file_url).map_err(|_| {
            permanent(
                "media_unavailable",
                format!("The video's address cannot be given to {PLATFORM}'s upload host."),
            )
        })?;
        let done: Success = self
            .call(
                self.client
                    .post(format!(
                        "{}/{UPLOAD_PATH}/{}/{video}",
                        self.upload_url, self.version
                    ))
                    .header(AUTHORIZATION, auth)
                    .header("file_url", file),
                Effect::Repeatable,
            )
            .await?;
        if !done.success {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "upload_failed",
                format!("{PLATFORM}'s upload host did not take the video; it will be sent again."),
            ));
        }
        Ok(())
    }

    /// `GET /{video-id}?fields=status`: `None` when Facebook no longer knows the video.
    async fn read_status(
        &self,
        video: &str,
        token: &str,
    ) -> Result<Option<VideoStatus>, PublishError> {
        let read = self
            .call::<VideoRead>(
                self.client
                    .get(self.graph(video))
                    .query(&[("fields", "status"), ("access_token", token)]),
                Effect::Repeatable,
            )
            .await;
        match read {
            Ok(v) => Ok(Some(v.status.unwrap_or_default())),
            Err(e) if graph::is_missing_object(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A reel or a video story: the session an earlier attempt started (saved in `progress`)
    /// while Facebook still has it, else a new one; the file uploaded by its URL; the status
    /// polled until uploading and processing are done; then the finish, which publishes.
    async fn session_post(
        &self,
        page: &str,
        token: &str,
        kind: Session,
        url: &str,
        description: Option<&str>,
        progress: &Progress,
    ) -> Result<PublishedPost, PublishError> {
        let deadline = tokio::time::Instant::now() + self.poll_deadline;
        let mut saved = saved_session(progress.saved(), kind, url);
        if saved.is_some() {
            tracing::info!(
                kind = kind.name(),
                "resuming the Facebook upload session an earlier attempt started"
            );
        }
        let (video, waited) = loop {
            let (video, fresh) = match saved.take() {
                Some(id) => (id, false),
                None => {
                    let id = self.start_session(page, token, kind).await?;
                    // Saved before anything can be published: without a saved id, no finish
                    // was ever sent (what reconciliation relies on).
                    progress
                        .save(json!({
                            "kind": kind.progress_kind(),
                            "video_url": url,
                            "video_id": id,
                        }))
                        .await?;
                    (id, true)
                }
            };
            match self
                .wait_session(token, kind, &video, url, fresh, deadline)
                .await?
            {
                Waited::Gone if !fresh => tracing::info!(
                    kind = kind.name(),
                    "the Facebook upload session an earlier attempt started is gone; starting another"
                ),
                Waited::Gone => {
                    return Err(PublishError::new(
                        FailureClass::Retryable { retry_after: None },
                        "video_gone",
                        format!(
                            "{PLATFORM} dropped the {} before it was processed.",
                            kind.name()
                        ),
                    ));
                }
                other => break (video, other),
            }
        };
        if let Waited::Published = waited {
            // An earlier attempt's finish took effect (its answer was lost, or reconciliation
            // ran before Facebook showed it).
            return match kind {
                Session::Reel => Ok(reel_post(&video)),
                Session::Story => {
                    // Stories are up for 24 hours.
                    let since = Utc::now() - chrono::Duration::hours(24);
                    match self.find_story(page, token, &video, since).await? {
                        Existing::Found(post) => Ok(post),
                        _ => Err(PublishError::new(
                            FailureClass::Retryable { retry_after: None },
                            "story_not_listed",
                            format!(
                                "{PLATFORM} says the video story is published but does not list it yet; it will be looked for again."
                            ),
                        )),
                    }
                }
            };
        }
        match kind {
            Session::Reel => {
                let mut form = vec![
                    ("upload_phase", "finish"),
                    ("video_id", video.as_str()),
                    ("video_state", "PUBLISHED"),
                ];
                if let Some(d) = description {
                    form.push(("description", d));
                }
                form.push(("access_token", token));
                let done: Success = self
                    .page_call(
                        self.client
                            .post(self.graph(&format!("{page}/{}", kind.edge())))
                            .form(&form),
                        Effect::Creates,
                    )
                    .await
                    .map_err(reels_quota)?;
                if !done.success {
                    return Err(unconfirmed("reel"));
                }
                Ok(reel_post(&video))
            }
            Session::Story => {
                let done: StoryDone = self
                    .page_call(
                        self.client
                            .post(self.graph(&format!("{page}/{}", kind.edge())))
                            .form(&[
                                ("upload_phase", "finish"),
                                ("video_id", video.as_str()),
                                ("access_token", token),
                            ]),
                        Effect::Creates,
                    )
                    .await?;
                match done.post_id.as_ref().and_then(id_of) {
                    Some(id) if done.success.unwrap_or(true) => Ok(story_post(&id, None)),
                    _ => Err(unconfirmed("video story")),
                }
            }
        }
    }

    /// Uploads the file (at once for a new session; for a resumed one, when its status says
    /// nothing arrived) and polls the status until the session can be finished, is already
    /// published, failed, or is gone.
    async fn wait_session(
        &self,
        token: &str,
        kind: Session,
        video: &str,
        url: &str,
        fresh: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Waited, PublishError> {
        let mut uploaded = false;
        let mut pause = self.poll_interval;
        loop {
            if fresh && !uploaded {
                match self.upload_hosted(video, token, url).await {
                    Ok(()) => uploaded = true,
                    Err(e) if graph::is_missing_object(&e) => return Ok(Waited::Gone),
                    Err(e) => return Err(e),
                }
            }
            let Some(status) = self.read_status(video, token).await? else {
                return Ok(Waited::Gone);
            };
            match status.session_state() {
                SessionState::NotUploaded if !uploaded => {
                    match self.upload_hosted(video, token, url).await {
                        Ok(()) => uploaded = true,
                        Err(e) if graph::is_missing_object(&e) => return Ok(Waited::Gone),
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                SessionState::NotUploaded | SessionState::Pending => {}
                SessionState::Finishable => return Ok(Waited::Finishable),
                SessionState::Published => return Ok(Waited::Published),
                SessionState::Expired => return Ok(Waited::Gone),
                SessionState::Failed(why) => {
                    return Err(PublishError::new(
                        FailureClass::Permanent,
                        "media_processing_failed",
                        format!("{PLATFORM} could not process the {}: {why}", kind.name()),
                    )
                    .with_platform_error(why));
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "media_processing",
                    format!(
                        "{PLATFORM} was still processing the {}; the post will be tried again.",
                        kind.name()
                    ),
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL_INTERVAL);
        }
    }

    /// A photo story: the unpublished photo an earlier attempt uploaded (saved in `progress`),
    /// else a new one, then `POST /{page}/photo_stories` with its id. If Facebook refuses a
    /// saved photo (dropped, or used), it is uploaded again and the story call made once more.
    async fn photo_story_post(
        &self,
        page: &str,
        token: &str,
        url: &str,
        progress: &Progress,
    ) -> Result<PublishedPost, PublishError> {
        let saved = saved_photo_story(progress.saved(), url);
        let reused = saved.is_some();
        let photo = match saved {
            Some(id) => id,
            None => self.story_photo(page, token, url, progress).await?,
        };
        let post_id = match self.photo_story_call(page, token, &photo).await {
            Err(e) if reused && refuses_attachment(&e) => {
                tracing::info!(
                    "Facebook refused the photo an earlier attempt uploaded for the story; uploading it again"
                );
                let photo = self.story_photo(page, token, url, progress).await?;
                self.photo_story_call(page, token, &photo).await?
            }
            other => other?,
        };
        Ok(story_post(&post_id, None))
    }

    /// The story's unpublished photo, its id saved at once.
    async fn story_photo(
        &self,
        page: &str,
        token: &str,
        url: &str,
        progress: &Progress,
    ) -> Result<String, PublishError> {
        let id = self.unpublished_photo(page, token, url).await?;
        progress
            .save(json!({ "kind": PHOTO_STORY, "image_url": url, "photo_id": id }))
            .await?;
        Ok(id)
    }

    /// `POST /{page}/photo_stories` with `photo_id` -> `{"success":true,"post_id"}`.
    async fn photo_story_call(
        &self,
        page: &str,
        token: &str,
        photo: &str,
    ) -> Result<String, PublishError> {
        let done: StoryDone = self
            .page_call(
                self.client
                    .post(self.graph(&format!("{page}/photo_stories")))
                    .form(&[("photo_id", photo), ("access_token", token)]),
                Effect::Creates,
            )
            .await?;
        match done.post_id.as_ref().and_then(id_of) {
            Some(id) if done.success.unwrap_or(true) => Ok(id),
            _ => Err(unconfirmed("photo story")),
        }
    }

    /// The Page's story made from `media_id` (a video or photo id), looked for in
    /// `GET /{page}/stories`, newest first, up to `RECONCILE_PAGES` pages or a story older than
    /// `since`.
    async fn find_story(
        &self,
        page: &str,
        token: &str,
        media_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Existing, PublishError> {
        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let mut query = vec![
                (
                    "fields",
                    "post_id,status,creation_time,media_type,media_id,url",
                ),
                ("limit", RECONCILE_PAGE_SIZE_PARAM),
                ("access_token", token),
            ];
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let rows: graph::Page<StoryRow> = self
                .page_call(
                    self.client
                        .get(self.graph(&format!("{page}/stories")))
                        .query(&query),
                    Effect::Repeatable,
                )
                .await?;
            let mut older_seen = false;
            for row in &rows.data {
                if row.media_id.as_ref().and_then(id_of).as_deref() == Some(media_id)
                    && let Some(id) = row.post_id.as_ref().and_then(id_of)
                {
                    return Ok(Existing::Found(story_post(&id, row.url.as_deref())));
                }
                if row.created().is_some_and(|t| t < since) {
                    older_seen = true;
                }
            }
            if older_seen {
                return Ok(Existing::NotFound);
            }
            match rows.next_cursor(RECONCILE_PAGE_SIZE) {
                Some(cursor) => after = Some(cursor),
                None => return Ok(Existing::NotFound),
            }
        }
        Ok(Existing::CannotTell)
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
    #[serde(default)]
    publishing_phase: Option<Phase>,
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
    /// `publishing_phase` only: "`published` or `not_published`" (Stories guide).
    #[serde(default)]
    publish_status: Option<String>,
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

    /// Where a reel or video story session is. Uploaded: the uploading phase complete, or a
    /// `video_status` past uploading. Finishable: processing complete (or `ready`), or processing
    /// `not_started` after the upload (the guides finish right after the upload, the status
    /// check being optional: a session Facebook processes only once finished must not wait
    /// here forever). Published: the publishing phase under way or done, or `publish_status`
    /// `published`.
    fn session_state(&self) -> SessionState {
        match self.state() {
            Processing::Failed(why) => return SessionState::Failed(why),
            Processing::Expired => return SessionState::Expired,
            Processing::Ready | Processing::Pending => {}
        }
        let phase = |p: &Option<Phase>| p.as_ref().and_then(|p| p.status.clone());
        let publishing = self.publishing_phase.as_ref();
        if publishing.and_then(|p| p.publish_status.as_deref()) == Some("published")
            || matches!(
                phase(&self.publishing_phase).as_deref(),
                Some("complete" | "completed" | "in_progress")
            )
        {
            return SessionState::Published;
        }
        let status = self.video_status.as_deref();
        let uploaded = is_complete(&self.uploading_phase)
            || matches!(status, Some("upload_complete" | "processing" | "ready"));
        if !uploaded {
            return match phase(&self.uploading_phase).as_deref() {
                Some("in_progress") => SessionState::Pending,
                _ => SessionState::NotUploaded,
            };
        }
        if status == Some("ready")
            || is_complete(&self.processing_phase)
            || phase(&self.processing_phase).as_deref() == Some("not_started")
        {
            SessionState::Finishable
        } else {
            SessionState::Pending
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

/// Where a reel or video story session is (`VideoStatus::session_state`).
enum SessionState {
    /// No file arrived: upload it.
    NotUploaded,
    /// Uploading or processing.
    Pending,
    Finishable,
    Published,
    /// Facebook's words on why.
    Failed(String),
    Expired,
}

/// How a wait for a session ended (a failure or a timeout is an error).
enum Waited {
    Finishable,
    Published,
    /// Unknown to Facebook, or expired.
    Gone,
}

/// A reel or a video story: both are upload sessions on their own Page edge.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Session {
    Reel,
    Story,
}

impl Session {
    fn edge(self) -> &'static str {
        match self {
            Session::Reel => "video_reels",
            Session::Story => "video_stories",
        }
    }

    /// `kind` in the saved progress.
    fn progress_kind(self) -> &'static str {
        match self {
            Session::Reel => "reel",
            Session::Story => "video_story",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Session::Reel => "reel",
            Session::Story => "video story",
        }
    }
}

/// `kind` of a photo story's saved progress.
const PHOTO_STORY: &str = "photo_story";

#[derive(Deserialize)]
struct SessionStarted {
    #[serde(default)]
    video_id: Value,
}

#[derive(Deserialize)]
struct Success {
    #[serde(default)]
    success: bool,
}

/// A story's finish: `{"success":true,"post_id"}` (the guide's example writes `post_id` as a
/// number, Graph ids are strings: both are taken).
#[derive(Deserialize)]
struct StoryDone {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    post_id: Option<Value>,
}

/// A row of `GET /{page}/stories`.
#[derive(Deserialize)]
struct StoryRow {
    #[serde(default)]
    post_id: Option<Value>,
    #[serde(default)]
    media_id: Option<Value>,
    /// "UNIX timestamp" (the example writes it as a string).
    #[serde(default)]
    creation_time: Option<Value>,
    #[serde(default)]
    url: Option<String>,
}

impl StoryRow {
    fn created(&self) -> Option<DateTime<Utc>> {
        let secs = match self.creation_time.as_ref()? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => return graph::parse_timestamp(s),
            },
            _ => None,
        }?;
        DateTime::from_timestamp(secs, 0)
    }
}

/// An id Facebook gives as a string or a number.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The reel as a post: its id is the video id; its URL the address Facebook's web app gives
/// reels, `https://www.facebook.com/reel/{video-id}` (the Reels guide gives no URL and the API
/// answers none for it).
fn reel_post(video: &str) -> PublishedPost {
    PublishedPost {
        id: video.to_owned(),
        url: Some(format!("{WEB}/reel/{video}")),
    }
}

/// A story as a post: its `post_id`, and the `url` the stories listing gives, else the form
/// the Stories guide documents for it ("such as `https://facebook.com/stories/8283482737484972`").
fn story_post(post_id: &str, url: Option<&str>) -> PublishedPost {
    let url = url
        .map(str::trim)
        .filter(|u| u.starts_with("https://"))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("https://facebook.com/stories/{post_id}"));
    PublishedPost {
        id: post_id.to_owned(),
        url: Some(url),
    }
}

/// A creating call that answered without confirming: it may have taken effect.
fn unconfirmed(what: &str) -> PublishError {
    PublishError::new(
        FailureClass::Ambiguous,
        "unexpected_response",
        format!("{PLATFORM} answered the {what} without confirming it was published."),
    )
}

/// The reels quota's refusal (30 in a moving 24 hours): retryable after a while.
fn reels_quota(e: PublishError) -> PublishError {
    match graph::platform_graph_error(&e) {
        Some(g) if e.class == FailureClass::Permanent && g.code == Some(REELS_QUOTA_CODE) => {
            PublishError {
                class: FailureClass::Retryable {
                    retry_after: Some(REELS_QUOTA_RETRY),
                },
                code: "quota_exceeded".into(),
                message: format!(
                    "{PLATFORM} allows a Page 30 reels published through the API in 24 hours, and this Page has used them; the reel will be published when the quota frees up."
                ),
                ..e
            }
        }
        _ => e,
    }
}

/// The reel or video story session an earlier attempt started for this URL, if it saved one.
fn saved_session(saved: &Value, kind: Session, video_url: &str) -> Option<String> {
    (saved.get("kind").and_then(Value::as_str) == Some(kind.progress_kind()))
        .then(|| saved_video(saved, video_url))
        .flatten()
}

/// The unpublished photo an earlier attempt uploaded for this story, if it saved one.
fn saved_photo_story(saved: &Value, image_url: &str) -> Option<String> {
    (saved.get("kind").and_then(Value::as_str) == Some(PHOTO_STORY)
        && saved.get("image_url").and_then(Value::as_str) == Some(image_url))
    .then(|| saved.get("photo_id").and_then(Value::as_str))
    .flatten()
    .filter(|id| !id.is_empty())
    .map(str::to_owned)
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
    /// A reel: one video.
    Reel(&'a str),
    /// A story of one image.
    PhotoStory(&'a str),
    /// A story of one video.
    VideoStory(&'a str),
}

/// What the request posts: its shape, its text (with the link after it for photos and videos)
/// and, for a feed post, the link.
struct Plan<'a> {
    shape: Shape<'a>,
    message: Option<String>,
    link: Option<&'a str>,
}

/// The post's video's length, when its media record says it.
fn video_duration_ms(request: &PublishRequest) -> Option<u64> {
    use soku_core::media::MediaKind;
    let index = request.content.image_urls.len();
    request
        .media
        .get(index)
        .filter(|m| m.facts.kind == MediaKind::Video)
        .or_else(|| {
            request
                .media
                .iter()
                .find(|m| m.facts.kind == MediaKind::Video)
        })
        .and_then(|m| m.facts.duration_ms)
}

fn plan_of(request: &PublishRequest) -> Result<Plan<'_>, PublishError> {
    let options = match &request.options {
        PlatformOptions::Facebook(o) => Some(o),
        _ => None,
    };
    let content = &request.content;
    let video = content
        .video_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
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
    match options.and_then(|o| o.post_type) {
        None | Some(FacebookPostType::Feed) => {}
        Some(FacebookPostType::Reel) => {
            if !content.image_urls.is_empty() {
                return Err(permanent(
                    "unsupported_media",
                    format!("A {PLATFORM} reel is one video alone; it takes no images."),
                ));
            }
            let Some(url) = video else {
                return Err(permanent(
                    "reel_needs_video",
                    format!("A {PLATFORM} reel needs its video."),
                ));
            };
            if let Some(ms) = video_duration_ms(request)
                && !(REEL_MIN_SECONDS * 1000..=REEL_MAX_SECONDS * 1000).contains(&ms)
            {
                return Err(permanent(
                    "video_duration",
                    format!(
                        "A {PLATFORM} reel must be {REEL_MIN_SECONDS} to {REEL_MAX_SECONDS} seconds long; this video is {:.1} s.",
                        ms as f64 / 1000.0
                    ),
                ));
            }
            return Ok(Plan {
                shape: Shape::Reel(url),
                message: with_link(),
                link: None,
            });
        }
        Some(FacebookPostType::Story) => {
            let shape = match (content.image_urls.as_slice(), video) {
                ([one], None) => Shape::PhotoStory(one),
                ([], Some(url)) => {
                    if let Some(ms) = video_duration_ms(request)
                        && ms > STORY_VIDEO_MAX_SECONDS * 1000
                    {
                        return Err(permanent(
                            "video_duration",
                            format!(
                                "A {PLATFORM} video story can not exceed {STORY_VIDEO_MAX_SECONDS} seconds; this video is {:.1} s.",
                                ms as f64 / 1000.0
                            ),
                        ));
                    }
                    Shape::VideoStory(url)
                }
                _ => {
                    return Err(permanent(
                        "story_needs_one_media",
                        format!("A {PLATFORM} story is one image or one video, alone."),
                    ));
                }
            };
            // Stories take no text: the target's text (and link) are not sent.
            return Ok(Plan {
                shape,
                message: None,
                link: None,
            });
        }
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
            Shape::Reel(url) => {
                self.session_post(page, token, Session::Reel, url, message, &request.progress)
                    .await
            }
            Shape::VideoStory(url) => {
                self.session_post(page, token, Session::Story, url, None, &request.progress)
                    .await
            }
            Shape::PhotoStory(url) => {
                self.photo_story_post(page, token, url, &request.progress)
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
            // No saved id: the session was never started, or its start's answer was lost;
            // either way no finish was sent (the id is saved before the upload).
            Shape::Reel(url) => match saved_session(request.progress.saved(), Session::Reel, url) {
                None => Ok(Existing::NotFound),
                Some(id) => match self.read_status(&id, token).await {
                    Ok(Some(status)) => match status.session_state() {
                        SessionState::Published => Ok(Existing::Found(reel_post(&id))),
                        _ => Ok(Existing::NotFound),
                    },
                    Ok(None) => Ok(Existing::NotFound),
                    Err(e) => Err(e),
                },
            },
            Shape::VideoStory(url) => {
                match saved_session(request.progress.saved(), Session::Story, url) {
                    None => Ok(Existing::NotFound),
                    Some(id) => self.find_story(page, token, &id, since).await,
                }
            }
            Shape::PhotoStory(url) => match saved_photo_story(request.progress.saved(), url) {
                None => Ok(Existing::NotFound),
                Some(id) => self.find_story(page, token, &id, since).await,
            },
            Shape::Feed | Shape::Photo(_) | Shape::Photos(_) => {
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
        self.login.start(request, Grants::Pages)
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        self.login.first_account(exchange, Grants::Pages).await
    }

    async fn exchange_all(
        &self,
        exchange: &CodeExchange,
    ) -> Result<Vec<ConnectedAccount>, ConnectError> {
        self.login.accounts(exchange, Grants::Pages).await
    }

    async fn refresh(&self, _account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        Err(Grants::Pages.not_refreshable())
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

    fn session(v: Value) -> SessionState {
        serde_json::from_value::<VideoStatus>(v)
            .unwrap()
            .session_state()
    }

    #[test]
    fn session_statuses_say_what_to_do_next() {
        assert!(matches!(
            session(json!({"video_status": "uploading",
                "uploading_phase": {"status": "not_started"}})),
            SessionState::NotUploaded
        ));
        assert!(matches!(
            session(json!({"video_status": "uploading",
                "uploading_phase": {"status": "in_progress"}})),
            SessionState::Pending
        ));
        assert!(matches!(
            session(json!({"video_status": "processing",
                "uploading_phase": {"status": "complete"},
                "processing_phase": {"status": "in_progress"}})),
            SessionState::Pending
        ));
        // Uploaded, processing not started: the guides finish here.
        assert!(matches!(
            session(json!({"video_status": "processing",
                "uploading_phase": {"status": "complete"},
                "processing_phase": {"status": "not_started"},
                "publishing_phase": {"status": "not_started"}})),
            SessionState::Finishable
        ));
        assert!(matches!(
            session(json!({"video_status": "ready",
                "publishing_phase": {"status": "not_started", "publish_status": "not_published"}})),
            SessionState::Finishable
        ));
        for published in [
            json!({"video_status": "ready", "publishing_phase": {"status": "complete"}}),
            json!({"video_status": "ready", "publishing_phase": {"status": "in_progress"}}),
            json!({"video_status": "ready", "publishing_phase": {"publish_status": "published"}}),
        ] {
            assert!(matches!(session(published), SessionState::Published));
        }
        assert!(matches!(
            session(
                json!({"video_status": "error", "processing_phase": {"status": "error",
                "errors": [{"code": 1, "message": "Bad"}]}})
            ),
            SessionState::Failed(_)
        ));
        assert!(matches!(
            session(json!({"video_status": "expired"})),
            SessionState::Expired
        ));
    }

    #[test]
    fn ids_are_taken_as_strings_or_numbers_and_sessions_by_kind() {
        assert_eq!(id_of(&json!(1234)).as_deref(), Some("1234"));
        assert_eq!(id_of(&json!("122")).as_deref(), Some("122"));
        assert_eq!(id_of(&json!("")), None);
        assert_eq!(id_of(&Value::Null), None);
        let reel = json!({"kind": "reel", "video_url": "u", "video_id": "9"});
        assert_eq!(
            saved_session(&reel, Session::Reel, "u").as_deref(),
            Some("9")
        );
        assert_eq!(saved_session(&reel, Session::Story, "u"), None);
        assert_eq!(saved_session(&reel, Session::Reel, "other"), None);
        let photo = json!({"kind": "photo_story", "image_url": "i", "photo_id": "5"});
        assert_eq!(saved_photo_story(&photo, "i").as_deref(), Some("5"));
        assert_eq!(saved_photo_story(&photo, "j"), None);
        let row: StoryRow = serde_json::from_value(json!({"creation_time": "1700000000"})).unwrap();
        assert_eq!(row.created().unwrap().timestamp(), 1_700_000_000);
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
