//! Facebook Pages: connecting the Pages a Facebook user manages (Facebook Login, `meta`) and
//! publishing feed posts, photos, videos, reels and stories to a Page. What users are told is
//! in `docs/CONNECTORS.md`; the sourced notes are `docs/research/meta-graph-api.md` (sections
//! 1, 3 and 4).
//!
//! Endpoints (on `graph.facebook.com/{version}`, [`crate::meta::GRAPH_VERSION`] by default):
//! - Connecting: `meta::FacebookLogin` with `pages_show_list,pages_read_engagement,
//!   pages_manage_posts`; one account per Page the user may publish to (`CREATE_CONTENT`), its
//!   id the Page id, its token the Page token, which "has no expiration date" when taken with a
//!   long-lived user token (Get Long-Lived Tokens): `refresh` is `NotRefreshable`.
//! - Text and link: `POST /{page}/feed` (`message`, `link`) -> `{"id"}` ("Pages API, Posts").
//! - One photo: `POST /{page}/photos` (`url`, `caption`, `published=true`) -> `{"id",
//!   "post_id"}` (Page Photos). Several: each with `published=false` (invisible, kept "about 24
//!   hours"), then `POST /{page}/feed` with `attached_media[n]={"media_fbid"}`.
//! - Video: `POST /{page}/videos` (`file_url`, `description`, `published=true`) -> `{"id"}`
//!   (Video API, "Publishing"), then `GET /{video}?fields=status,permalink_url`:
//!   `video_status` `error`, `expired`, `processing`, `ready`, `uploading`, `upload_failed`,
//!   `upload_complete`; phases `completed` (the examples: `complete`), `error`, `not_started`,
//!   `in_progress`; `processing_phase.errors[]` (the example: `error`).
//! - Reels (Reels Publishing API) and video stories (Stories API): `POST /{page}/video_reels`
//!   (`/video_stories`) `upload_phase=start` -> `{"video_id","upload_url"}`; the hosted file by
//!   `POST {upload_url}` with `Authorization: OAuth {page token}` and `file_url: {url}` (the
//!   upload host `https://rupload.facebook.com`, `with_upload_url`; "To restart the upload,
//!   resend the `POST` request"); the status as for videos, with
//!   `publishing_phase.publish_status` "`published` or `not_published`"; then
//!   `upload_phase=finish` with `video_id` (reels: `video_state=PUBLISHED`, `description` ->
//!   `{"success"}`; stories -> `{"success","post_id"}`, `post_id` a number or a string). Reels
//!   are "3 to 90 seconds" and "limited to 30 API-published posts within a 24-hour moving
//!   period ... enforced on the `POST /{page_id}/video_reels` endpoint"; "A video story can
//!   not exceed 60 seconds".
//! - Photo stories: an unpublished photo, then `POST /{page}/photo_stories` (`photo_id`) ->
//!   `{"success","post_id"}`.
//! - Reconciliation: `GET /{page}/published_posts`, `GET /{page}/videos` (newest first),
//!   `GET /{video}?fields=status`, `GET /{page}/stories` (`post_id`, `creation_time` "UNIX
//!   timestamp", `media_id`, `url`, newest first).
//!
//! Every Graph call carries the Page token as `access_token` (form body or query); the upload
//! host gets it as a sensitive header, and only when the start's `upload_url` is https on
//! `facebook.com` or on the configured upload host (else the URL is built from that host). No
//! error or log line contains a URL, a token or the app secret.
//!
//! What a maintainer must keep (files by concern: `feed`, `video`, `sessions`, `progress`,
//! `reconcile`):
//! - **Creating calls** (a timeout or 5xx is ambiguous): the feed post, the published photo,
//!   the video upload (`published=true`: the video is the post), a session's finish,
//!   `photo_stories`. **Repeatable** (nothing shows): an unpublished photo, a session's start
//!   and file upload, every read.
//! - **Progress** (`progress::Saved`, tagged by `kind`): the unpublished photos, the video
//!   upload's marker (`video_sent`) then the video id, the session (with `finish_sent`), the
//!   story photo (with `sent`). Ids are saved as soon as Facebook answers; a marker is saved
//!   before its creating call (no call when that save fails) and cleared only after an answer
//!   that had no effect. A save after the video upload never fails the attempt (logged; the
//!   marker stays, so no later attempt uploads again).
//! - **Never twice**: a creating call is never sent again while its marker is set: publishing
//!   answers `Ambiguous` and reconciliation decides, answering `Err` (asked again later, the
//!   target ending `unknown`) rather than `NotFound` while the post is not listed. A saved
//!   video is uploaded again only when Facebook says it `expired`; 100/33 on it ("does not
//!   exist, cannot be loaded due to missing permissions...") is ambiguous, since it may be
//!   live. A saved session never finished that Facebook no longer knows is started again (it
//!   showed nothing). Saved reused photos refused with code 100 (dropped by Facebook) are
//!   uploaded again only when their marker says no feed call used them. Progress saved for
//!   other media that may have published is `Ambiguous` to publish, `CannotTell` to reconcile.
//!   A video upload whose answer was lost (`video_sent` without an id) is looked for in the
//!   Page's videos by description; not listed yet is an `Err`, never `NotFound`.
//! - **Processing**: polled within `graph::Polling` (first read at once); `ready` (or the
//!   processing phase complete) is published, `error`/`upload_failed` permanent
//!   (`media_processing_failed`). A feed video still processing at the deadline, or whose
//!   status read fails, is published (`video::after_upload`: uploaded with `published=true`,
//!   it is the post, as on YouTube); a reel or story still processing is retryable
//!   (`media_processing`; ambiguous once a finish was sent). A session is finished once
//!   uploaded and processed, or uploaded with processing `not_started` (the guides finish right
//!   after the upload).
//! - **Reconciliation** (`reconcile`): the saved ids first; else the text in the listings
//!   (posts or videos made from `not_before` less a minute, 3 pages of 100): a post without
//!   text is `CannotTell` when anything is in the window, two identical texts cannot be told
//!   apart. A saved video still processing is `Found`, as publishing says at its deadline.
//! - **Errors** (`graph::classify`, then `explain`): 190 is `token_invalid` (subcode 492: the
//!   user lost their role on the Page); 10 and 200-299 a permission the connection lost;
//!   100/33 on the Page `page_unavailable`; 1609005 `link_rejected`; the reels quota
//!   `quota_exceeded`, retryable after an hour, on the start and the finish (its code is not
//!   documented: 9 is what the Graph fake answers, its choice after Instagram's limit).
//! - **Shapes**: feed posts take no images with a video and at most 10 images; a link goes in
//!   `link` on a text post, after the text elsewhere. Reels and stories take their one video
//!   (or one image for a story); stories take no text. A reel's post id is the video id, its
//!   URL `https://www.facebook.com/reel/{id}`; a video's is the video id and its
//!   `permalink_url`; a story's the `post_id`, `https://facebook.com/stories/{post_id}`.

mod feed;
mod progress;
mod reconcile;
mod sessions;
mod video;

use crate::PlatformSettings;
use crate::graph;
use crate::http::{self, Effect};
use crate::meta::{self, Grants, MetaApp};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sessions::Session;
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass, PublishError,
    PublishRequest, PublishedPost, TOKEN_INVALID, TokenSet,
};
use soku_core::posts::{FacebookPostType, MediaType, PlatformOptions};
use std::time::Duration;

const PLATFORM: &str = "Facebook";
/// Where a Page post's URL points.
const WEB: &str = "https://www.facebook.com";
/// The most images one post takes (the submission's limit for Facebook).
pub const MAX_IMAGES: usize = 10;
/// "Error Posting Link" (Graph API, Handling Errors).
const ERROR_POSTING_LINK: i64 = 1_609_005;
/// Code 190's "Invalid Session": "User associated with the Page access token does not have an
/// appropriate role on the Page".
const NO_ROLE_ON_PAGE: i64 = 492;
/// Reels Publishing API, video specification: "Duration | 3 to 90 seconds".
pub const REEL_MIN_SECONDS: u64 = 3;
pub const REEL_MAX_SECONDS: u64 = 90;
/// Stories API, "Limitations": "A video story can not exceed 60 seconds".
pub const STORY_VIDEO_MAX_SECONDS: u64 = 60;
/// The code of the reels quota's refusal. The guide says only that the limit "is enforced on
/// the `POST /{page_id}/video_reels` endpoint when attempting to publish a reel" and documents
/// no code: 9 is the Graph fake's choice (Instagram's publishing limit's code), not Facebook's
/// word.
const REELS_QUOTA_CODE: i64 = 9;
/// How long a reel refused for the quota waits: the window is a moving 24 hours, so an hour
/// frees whatever the oldest of the 30 leaves.
const REELS_QUOTA_RETRY: Duration = Duration::from_secs(3600);

/// The Facebook Page connector.
pub struct FacebookPages {
    app: MetaApp,
    /// The upload host of reels and video stories, without a trailing slash.
    upload_url: String,
}

impl FacebookPages {
    /// `settings`: the Meta app's (`api_url` = the `graph.facebook.com` base without a version,
    /// `auth_url` = the `www.facebook.com` base, client id and secret = the Facebook app's).
    pub fn new(settings: PlatformSettings) -> Self {
        Self {
            app: MetaApp::new(settings),
            upload_url: meta::DEFAULT_UPLOAD_URL.to_owned(),
        }
    }

    /// Meta's upload host for reels and video stories (`https://rupload.facebook.com` by
    /// default; tests point it at the fake). The start's `upload_url` is used when it is on
    /// this host or on `facebook.com`.
    pub fn with_upload_url(mut self, url: &str) -> Self {
        self.upload_url = url.trim_end_matches('/').to_owned();
        self
    }

    /// Calls this Graph API version (`v26.0`; anything else falls back to the default, see
    /// `meta::version_or_default`), for publishing and for Facebook Login.
    pub fn with_version(mut self, version: &str) -> Self {
        self.app.set_version(version);
        self
    }

    /// How often and how long a video's status is polled in one attempt (tests shorten both).
    pub fn with_polling(mut self, interval: Duration, deadline: Duration) -> Self {
        self.app.polling = graph::Polling { interval, deadline };
        self
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
}

#[async_trait]
impl Connector for FacebookPages {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let plan = plan_of(request)?;
        let token = http::access_token(&request.account, PLATFORM)?;
        let page = request.account.account_id.as_str();
        let message = plan.message.as_deref();
        let progress = &request.progress;
        let resume = progress::resume(progress.saved(), &plan.shape);
        if resume == progress::Resume::Conflict {
            return Err(PublishError::new(
                FailureClass::Ambiguous,
                "progress_mismatch",
                format!(
                    "An earlier attempt saved progress for other media and may have published it on {PLATFORM}; nothing is sent until that is looked into."
                ),
            ));
        }
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
                self.photos_post(page, token, urls, message, progress, resume)
                    .await
            }
            Shape::Video(url) => {
                self.video_post(page, token, url, message, progress, resume)
                    .await
            }
            Shape::Reel(url) => {
                self.session_post(page, token, Session::Reel, url, message, progress)
                    .await
            }
            Shape::VideoStory(url) => {
                self.session_post(page, token, Session::Story, url, None, progress)
                    .await
            }
            Shape::PhotoStory(url) => {
                self.photo_story_post(page, token, url, progress, resume)
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
        self.existing(request, &plan, token).await.map_err(explain)
    }

    fn connect_method(&self) -> ConnectMethod {
        ConnectMethod::OAuth
    }

    fn configured(&self) -> bool {
        self.app.login.configured()
    }

    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        self.app.login.start(request, Grants::Pages)
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        self.app.login.first_account(exchange, Grants::Pages).await
    }

    async fn exchange_all(
        &self,
        exchange: &CodeExchange,
    ) -> Result<Vec<ConnectedAccount>, ConnectError> {
        self.app.login.accounts(exchange, Grants::Pages).await
    }

    async fn refresh(&self, _account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        Err(Grants::Pages.not_refreshable())
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

/// An earlier attempt's creating call may have been made (its marker is set): it is not sent
/// again; reconciliation looks for its result.
fn earlier_call_unconfirmed(what: &str) -> PublishError {
    PublishError::new(
        FailureClass::Ambiguous,
        "earlier_attempt_unconfirmed",
        format!(
            "An earlier attempt sent the {what} to {PLATFORM} and its outcome is not known; it is looked for rather than sent again."
        ),
    )
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
