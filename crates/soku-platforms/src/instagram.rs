//! Instagram (professional accounts, through the Instagram Graph API on `graph.facebook.com`):
//! connection by Facebook Login, publishing through media containers, a look at the content
//! publishing quota first, and reconciliation by the saved progress and the container's status.
//!
//! Documented endpoints used (Meta's pages; quotes from `docs/research/meta-graph-api.md`,
//! sections 2 and 4). Paths are on `{api_url}/{version}` (`v25.0` unless configured):
//! - Connecting is Facebook Login ([`crate::meta::FacebookLogin`]) with
//!   [`crate::meta::INSTAGRAM_SCOPES`]: every Instagram professional account linked to a Page the
//!   user granted becomes an account (id = the IG user id, meta `{"ig_user_id", "page_id"}`),
//!   with the linked Page's token: "Long-lived Page access token do not have an expiration date"
//!   (Get Long-Lived Tokens), and there is nothing to refresh them with, so `refresh` answers
//!   `NotRefreshable` and a token Instagram refuses marks the account `needs_reconnect`.
//! - `POST /{ig-user-id}/media` creates a container ("IG User Media",
//!   developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media):
//!   an image with `image_url` and `caption`; a reel with `media_type=REELS`, `video_url`,
//!   `caption`, `share_to_feed` ("For Reels only. When `true` ... both the Feed and Reels tabs"),
//!   `cover_url` and `trial_params` (`{"graduation_strategy":"MANUAL"}`: "The `media_type` must
//!   be `REELS` if this parameter is included"); a story with `media_type=STORIES` and
//!   `image_url` or `video_url` ("Support either video URL or Reels URL but not both"); carousel
//!   items with `is_carousel_item=true` and `image_url`, or `media_type=VIDEO` and `video_url`,
//!   then the carousel with `media_type=CAROUSEL`, `children` ("A comma separated list of up to
//!   10 container IDs") and `caption` (which is "Not supported on images or videos in
//!   carousels": items carry none). "Containers expire after 24 hours".
//! - `GET /{container-id}?fields=status_code,status`: `status_code` "`EXPIRED` — The container
//!   was not published within 24 hours and has expired. `ERROR` — The container failed to
//!   complete the publishing process. `FINISHED` — The container and its media object are ready
//!   to be published. `IN_PROGRESS` — The container is still in the publishing process.
//!   `PUBLISHED` — The container's media object has been published."; `status`: "If
//!   `status_code` is `ERROR`, this value will be an error subcode."
//! - `POST /{ig-user-id}/media_publish` with `creation_id` → `{"id"}` of the media.
//! - `GET /{ig-user-id}/content_publishing_limit?fields=config,quota_usage` →
//!   `{"data":[{"quota_usage", "config":{"quota_total","quota_duration"}}]}` (the reference says
//!   `quota_total` is "currently `50`" over "`86400` seconds", the guide says 100: it is read at
//!   run time).
//! - `GET /{ig-media-id}?fields=permalink`; `GET /{ig-user-id}/media?fields=id,caption,
//!   timestamp,permalink,media_type,media_product_type&since=` ("Story IG Media not supported,
//!   use ... `/stories`"), and `GET /{ig-user-id}/stories` with the same fields.
//!
//! Every call carries the Page token as the documented `access_token` parameter (form body for
//! POSTs, query for GETs); no error or log line built here holds a URL, a token or the app
//! secret (failures are built by [`crate::graph`], which names no URL).
//!
//! # What is published
//!
//! From the target's content and `post.options.instagram` ([`soku_core::posts::instagram_post_type`]:
//! a video is a reel, images a feed post, unless `postType` says otherwise). Instagram fetches
//! media from their URLs itself, so the URLs are passed as given (the engine hands hosted
//! copies) and no `MediaSource` is needed.
//! - feed, one image: an image container;
//! - feed, several items (the images, then the video when there is one): a carousel of 2 to 10
//!   items;
//! - feed, a video alone: a reel shared to the feed (`share_to_feed=true`): Instagram no longer
//!   takes `VIDEO` containers outside carousels (since 9 November 2023), reels are what a feed
//!   video is now;
//! - reel: `REELS` with the video, `shareToFeed`, `coverUrl`, and `trial_params` for `trialReel`;
//! - story: `STORIES` with the one image or video. A story has no caption (the reference lists
//!   `caption` for feed posts, reels and carousels only, and a story shows none), so a story's
//!   text is not sent.
//!
//! What submission already refuses is refused again here, as permanent failures, before any
//! call: no media (`empty_post`), more than 10 items (`too_many_images`), a caption over 2,200
//! characters (`text_too_long`) or with more than 30 hashtags or 20 @mentions
//! (`too_many_hashtags`, `too_many_mentions`), a story of several items
//! (`story_single_media`), a reel without a video (`reel_needs_video`), reel options on another
//! kind of post (`reel_only_option`).
//!
//! # The quota
//!
//! Before creating a container the account's quota is read. Used up, the attempt fails
//! retryable (`quota_exceeded`) after [`QUOTA_RETRY_AFTER`] (one hour), and nothing is created:
//! the window is a moving 24 hours and Instagram does not say when its oldest API-published post
//! leaves it (the media list does not say which posts the API made), so the engine looks again
//! hourly rather than waiting a whole day or hammering the quota. `media_publish` answering
//! 9/2207042 ("You reached maximum number of posts ...") is the same failure. A refused token
//! or a throttle on the quota read ends the attempt (the next calls would be refused the same
//! way); any other failure of that read (an outage, an answer of another shape, a refusal of
//! this one call) does not: it is logged and publishing goes on, since `media_publish` enforces
//! the quota itself and an unpublished container costs nothing visible. So a quota endpoint
//! that keeps failing never blocks publishing.
//!
//! # Containers, progress, and waiting
//!
//! Creating containers is repeatable (an unpublished container is invisible and expires);
//! `media_publish` is the creating call, so its timeouts and 5xx are ambiguous. The target's
//! progress is `{"kind", "key", "children": [...], "container_id", "publish_sent", "media_id",
//! "permalink"}`: `kind` the post's kind (`image`, `carousel`, `reel`, `story`) and `key` a
//! digest of everything sent (media URLs, caption, options), so that a later attempt (a retry,
//! or another process after a restart) for the same post polls and publishes those containers
//! instead of creating more; progress saved for another post (the post was edited) is ignored
//! when publishing. It is saved:
//! - each container id as soon as the container is created (`publish_sent: false` for a new
//!   top-level one); a failure to save it fails the attempt (retryable), which leaves at worst
//!   an unused container;
//! - `publish_sent: true` before `media_publish` is sent, and `media_publish` is not sent unless
//!   that save succeeded: from then on the container may become a post at any moment;
//! - the post (`media_id`, `permalink`) once `media_publish` answered. The post exists then: a
//!   failure to save it is logged, never returned (a retry must not come of it). A later
//!   attempt with it answers the post without a call.
//!
//! Progress saved before `publish_sent` existed has a container without it: it is read as
//! sent, the safe side.
//!
//! A saved container that is EXPIRED, or failed with a transient subcode (-1 and -2 rows of the
//! error table: 2207001, 2207003, 2207020, 2207032, 2207053) was never published, and is created
//! again, as is one Instagram no longer knows (code 100/33, 24/2207006, 24/2207008) that was
//! never sent to be published; carousel items still usable are kept. One Instagram no longer
//! knows after `publish_sent` may have become a post (Instagram may drop a container once it
//! is published): it is looked for as reconciliation does and returned when found, else the
//! attempt is `Ambiguous` (`already_published`); it is never made again.
//!
//! Containers are polled (carousel items together; first read at once, then backing off as
//! [`graph::Polling`] does, from its interval to 10 s) within the polling deadline, one for the
//! whole attempt: FINISHED is published; ERROR is permanent (`media_rejected`, or
//! `media_processing_failed` for a post with a video) with the subcode of `status` in words,
//! and the subcode as the platform error; still IN_PROGRESS at the deadline is retryable
//! (`media_processing`, the next attempt resumes the wait). A `status_code` this server does
//! not know (or none) is not polled on: retryable `container_status_unknown`, naming it.
//! Instagram recommends "querying a container's status once per minute, for no more than 5
//! minutes"; each attempt here is shorter and polls faster, the engine's retries carrying a
//! long processing over several attempts. A container already PUBLISHED (an earlier attempt's
//! `media_publish` reached Instagram) is looked up as reconciliation does and returned when
//! found, else `Ambiguous`.
//!
//! After publishing, the media's `permalink` is read; failing to read it does not fail the
//! publish.
//!
//! # Failures
//!
//! [`graph::classify`], refined by Instagram's error table: 4/2207051 ("We restrict certain
//! activity to protect our community") is a permanent `spam_restricted`, not a throttle;
//! 9/2207042 is `quota_exceeded`; -1, -2 and 24/2207008 are temporary (ambiguous for
//! `media_publish`, retryable otherwise, except that a container Instagram says is missing or
//! expired at `media_publish` was certainly not published: retryable); 9007/2207027 ("not ready
//! for publishing") is retryable `media_processing`; 25/2207050 ("The Instagram account is
//! restricted") is a permanent `account_restricted`; media errors (352, 9004, 36000–36004,
//! 100/22070xx, 1/2207057) are a permanent `media_rejected` carrying Instagram's own words
//! (`error_user_msg`); 190 is `token_invalid`; 24/2207006 from `media_publish` ("cannot be
//! found", for a container just read FINISHED) is ambiguous.
//!
//! # Reconciliation (`find_existing`)
//!
//! `publish_sent` is the marker: it is saved before `media_publish` is ever sent, so progress
//! for this post without it (or none) means no publish was attempted: `NotFound`, without a
//! call. Saved progress holding the post (`media_id`) is `Found` without a call. Otherwise the
//! saved container's `status_code` is read: FINISHED, IN_PROGRESS, ERROR or EXPIRED was never
//! published: `NotFound` (a publish then uses that same container, which Instagram publishes
//! only once); any other status, or none, is `CannotTell`. PUBLISHED, or a container Instagram
//! no longer knows, means looking for the media: the account's `/media` since `not_before`
//! (less a minute for clock skew), newest first, up to 5 pages of 50, for the same caption
//! (trimmed) and kind (`IMAGE`/`CAROUSEL_ALBUM` in `FEED`, `VIDEO` in `REELS`); found, `Found`
//! with its id and permalink, else `CannotTell`. A story has no caption and is listed only in
//! `/stories` while live (24 hours): a published story container is confirmed when exactly one
//! story of its type (image or video) was posted since `not_before`; several, none, or a story
//! older than a day cannot be told apart: `CannotTell`. A failed lookup is an `Err`.
//!
//! Progress saved for another post (the post was edited after an attempt) is not this post's,
//! but what it holds may have been published: when it holds a post, or a container sent to be
//! published, the answer is `CannotTell`; otherwise it is ignored (`NotFound`).

use crate::PlatformSettings;
use crate::graph;
use crate::http::{self, Effect};
use crate::meta::{Grants, MetaApp};
use async_trait::async_trait;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Digest;
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass, PublishError,
    PublishRequest, PublishedPost, TOKEN_INVALID, TokenSet,
};
use soku_core::posts::{
    INSTAGRAM_MAX_HASHTAGS, INSTAGRAM_MAX_MENTIONS, InstagramOptions, InstagramPostType, MediaType,
    PlatformOptions,
};
use std::time::Duration;

const PLATFORM: &str = "Instagram";
/// "Maximum 2200 characters" (`caption`).
pub const MAX_CAPTION_CHARS: usize = 2200;
/// "Carousels need at least 2 photos/videos and no more than 10" (100/2207028).
pub const MAX_CAROUSEL_ITEMS: usize = 10;
/// How long a `quota_exceeded` failure asks the engine to wait (see the module docs).
pub const QUOTA_RETRY_AFTER: Duration = Duration::from_secs(3600);
const RECONCILE_SLACK_SECS: i64 = 60;
const RECONCILE_PAGES: usize = 5;
const RECONCILE_PAGE_SIZE: usize = 50;
const RECONCILE_PAGE_SIZE_PARAM: &str = "50";
const MEDIA_FIELDS: &str = "id,caption,timestamp,permalink,media_type,media_product_type";

pub struct Instagram {
    app: MetaApp,
}

impl Instagram {
    /// `settings`: the Meta app's (`api_url` = the `graph.facebook.com` base without a version,
    /// `auth_url` = the `www.facebook.com` base, client id and secret = the Facebook app's).
    pub fn new(settings: PlatformSettings) -> Self {
        Self {
            app: MetaApp::new(settings),
        }
    }

    /// Calls this Graph API version (`v26.0`) instead of [`crate::meta::GRAPH_VERSION`], for
    /// publishing and for Facebook Login; anything not of that form is ignored with a warning.
    pub fn with_version(mut self, version: &str) -> Self {
        self.app.set_version(version);
        self
    }

    /// How often and how long container status is polled (tests shorten both; the default is
    /// [`graph::Polling::DEFAULT`]).
    pub fn with_polling(mut self, interval: Duration, deadline: Duration) -> Self {
        self.app.polling = graph::Polling { interval, deadline };
        self
    }

    /// One Graph call: its JSON body on 2xx, else the failure it stands for, refined by
    /// Instagram's error table.
    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        effect: Effect,
    ) -> Result<T, PublishError> {
        graph::call(PLATFORM, request, effect)
            .await
            .map_err(|e| refine(e, effect))
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        token: &str,
    ) -> Result<T, PublishError> {
        let mut q = query.to_vec();
        q.push(("access_token", token));
        self.call(
            self.app.client.get(self.app.url(path)).query(&q),
            Effect::Repeatable,
        )
        .await
    }

    /// Fails with `quota_exceeded` when the account has used its API publishing quota. A read
    /// that fails otherwise than with a refused token or a throttle lets publishing go on
    /// (module docs).
    async fn check_quota(&self, user: &str, token: &str) -> Result<(), PublishError> {
        let read = self
            .get::<graph::Page<QuotaRow>>(
                &format!("{user}/content_publishing_limit"),
                &[("fields", "config,quota_usage")],
                token,
            )
            .await;
        let page = match read {
            Ok(page) => page,
            // The token or the throttle would refuse the next calls too.
            Err(e) if e.code == TOKEN_INVALID || e.code == "rate_limited" => return Err(e),
            Err(e) => {
                tracing::warn!(code = %e.code, "could not read the Instagram publishing quota; publishing anyway");
                return Ok(());
            }
        };
        let Some(row) = page.data.into_iter().next() else {
            return Ok(());
        };
        let (Some(used), Some(config)) = (row.quota_usage, row.config) else {
            return Ok(());
        };
        let Some(total) = config.quota_total else {
            return Ok(());
        };
        if used >= total {
            let hours = config.quota_duration.unwrap_or(86_400) / 3600;
            return Err(quota_exceeded(format!(
                "Instagram allows {total} API-published posts per {hours} hours; this account has used them. The post will be tried again later."
            )));
        }
        Ok(())
    }

    async fn create_container(
        &self,
        user: &str,
        token: &str,
        params: &[(&str, &str)],
    ) -> Result<String, PublishError> {
        let mut form = params.to_vec();
        form.push(("access_token", token));
        let created: IdOnly = self
            .call(
                self.app
                    .client
                    .post(self.app.url(&format!("{user}/media")))
                    .form(&form),
                Effect::Repeatable,
            )
            .await?;
        Ok(created.id)
    }

    /// One read of a container's `status_code`. A container Instagram no longer knows reads
    /// `Gone`; one that expired, or failed in a way worth a new container, `Expired`; a status
    /// this server does not know (or none) `Unknown`.
    async fn status(&self, container: &str, token: &str) -> Result<Read, PublishError> {
        let read = self
            .get::<ContainerStatus>(container, &[("fields", "status_code,status")], token)
            .await;
        let status = match read {
            Ok(s) => s,
            Err(e) => match missing(&e) {
                Some(state) => return Ok(Read::Done(state)),
                None => return Err(e),
            },
        };
        Ok(match status.status_code.as_deref() {
            Some("IN_PROGRESS") => Read::InProgress,
            Some("FINISHED") => Read::Done(State::Finished),
            Some("PUBLISHED") => Read::Done(State::Published),
            Some("EXPIRED") => Read::Done(State::Expired),
            Some("ERROR") => {
                let sub = status.status.unwrap_or_default();
                if TRANSIENT_SUBCODES.contains(&sub.trim()) {
                    Read::Done(State::Expired)
                } else {
                    Read::Done(State::Failed(sub))
                }
            }
            other => Read::Unknown(
                other
                    .map(|c| c.chars().take(40).collect())
                    .unwrap_or_else(|| "none".to_owned()),
            ),
        })
    }

    /// Polls containers until none is IN_PROGRESS (first read at once, then `backoff`'s
    /// pauses), and answers each one's state; still processing at the attempt's deadline is
    /// `media_processing`, a status this server does not know `container_status_unknown`.
    async fn wait_all(
        &self,
        containers: &[String],
        token: &str,
        backoff: &mut graph::Backoff,
    ) -> Result<Vec<State>, PublishError> {
        let mut states: Vec<Option<State>> = vec![None; containers.len()];
        loop {
            for (id, state) in containers.iter().zip(states.iter_mut()) {
                if state.is_none() {
                    match self.status(id, token).await? {
                        Read::InProgress => {}
                        Read::Done(s) => *state = Some(s),
                        Read::Unknown(code) => return Err(unknown_status(&code)),
                    }
                }
            }
            if states.iter().all(Option::is_some) {
                return Ok(states.into_iter().flatten().collect());
            }
            if !backoff.wait().await {
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "media_processing",
                    "Instagram was still processing the post's media; the post will be tried again.",
                ));
            }
        }
    }

    /// One container's state once it is no longer processing ([`Self::wait_all`]).
    async fn wait_one(
        &self,
        container: &str,
        token: &str,
        backoff: &mut graph::Backoff,
    ) -> Result<State, PublishError> {
        let mut states = self
            .wait_all(&[container.to_owned()], token, backoff)
            .await?;
        Ok(states.remove(0))
    }

    /// A FINISHED top-level container for the post, reusing what earlier attempts saved in
    /// `saved` (and saving each container created there); or, when the saved container may
    /// already be a post, what it became.
    async fn ready_container(
        &self,
        request: &PublishRequest,
        shape: &Shape<'_>,
        token: &str,
        saved: &mut Saved,
        backoff: &mut graph::Backoff,
    ) -> Result<Ready, PublishError> {
        let user = request.account.account_id.as_str();
        let mut quota_checked = false;

        if let Some(id) = saved.container_id.clone() {
            match self.wait_one(&id, token, backoff).await? {
                State::Finished => return Ok(Ready::Container(id)),
                State::Published => return Ok(Ready::Published),
                // `media_publish` was sent for it: it may be a post now (module docs).
                State::Gone if saved.publish_sent => return Ok(Ready::Vanished),
                State::Failed(sub) => return Err(container_failed(shape, &sub)),
                State::Gone => tracing::info!(
                    "the Instagram container an earlier attempt created is gone, and it was never sent to be published; creating another"
                ),
                State::Expired => tracing::info!(
                    "the Instagram container an earlier attempt created expired; creating another"
                ),
            }
            saved.forget_container();
        }

        let caption = shape.caption();
        let mut params: Vec<(&str, &str)> = Vec::new();
        let children_list;
        match shape {
            Shape::Image { url, .. } => params.push(("image_url", url)),
            Shape::Reel {
                video,
                share_to_feed,
                cover,
                trial,
                ..
            } => {
                params.push(("media_type", "REELS"));
                params.push(("video_url", video));
                if let Some(s) = share_to_feed {
                    params.push(("share_to_feed", if *s { "true" } else { "false" }));
                }
                if let Some(c) = cover {
                    params.push(("cover_url", c));
                }
                if *trial {
                    params.push(("trial_params", r#"{"graduation_strategy":"MANUAL"}"#));
                }
            }
            Shape::Story(item) => {
                params.push(("media_type", "STORIES"));
                match item {
                    Item::Image(u) => params.push(("image_url", u)),
                    Item::Video(u) => params.push(("video_url", u)),
                }
            }
            Shape::Carousel { items, .. } => {
                let children = self
                    .carousel_items(request, items, token, saved, &mut quota_checked, backoff)
                    .await?;
                children_list = children.join(",");
                params.push(("media_type", "CAROUSEL"));
                params.push(("children", children_list.as_str()));
            }
        }
        if let Some(c) = caption {
            params.push(("caption", c));
        }
        if !quota_checked {
            self.check_quota(user, token).await?;
        }
        let id = self.create_container(user, token, &params).await?;
        saved.set_container(&id);
        // Nothing is published yet: a failure here only leaves an unused container behind.
        request.progress.save(saved.to_json()).await?;
        match self.wait_one(&id, token, backoff).await? {
            State::Finished => Ok(Ready::Container(id)),
            State::Failed(sub) => Err(container_failed(shape, &sub)),
            // Gone or expired moments after it was made (or published by someone else).
            State::Gone | State::Expired | State::Published => Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "container_expired",
                "Instagram dropped the post's media container before it was published.",
            )),
        }
    }

    /// The carousel's item containers, FINISHED: the saved ones still usable, new ones for the
    /// others (each saved as soon as created).
    async fn carousel_items(
        &self,
        request: &PublishRequest,
        items: &[Item<'_>],
        token: &str,
        saved: &mut Saved,
        quota_checked: &mut bool,
        backoff: &mut graph::Backoff,
    ) -> Result<Vec<String>, PublishError> {
        let user = request.account.account_id.as_str();
        saved.children.resize(items.len(), None);
        for (i, item) in items.iter().enumerate() {
            if let Some(id) = saved.children[i].clone() {
                match self.status(&id, token).await? {
                    Read::InProgress | Read::Done(State::Finished) => continue,
                    Read::Done(State::Failed(sub)) => {
                        return Err(container_failed_item(*item, &sub));
                    }
                    // Items are never published on their own: one that is no longer usable
                    // is replaced.
                    Read::Done(State::Gone | State::Expired | State::Published) => {
                        saved.children[i] = None
                    }
                    Read::Unknown(code) => return Err(unknown_status(&code)),
                }
            }
            if !*quota_checked {
                self.check_quota(user, token).await?;
                *quota_checked = true;
            }
            let params: Vec<(&str, &str)> = match item {
                Item::Image(u) => vec![("image_url", u), ("is_carousel_item", "true")],
                Item::Video(u) => vec![
                    ("media_type", "VIDEO"),
                    ("video_url", u),
                    ("is_carousel_item", "true"),
                ],
            };
            let id = self.create_container(user, token, &params).await?;
            saved.children[i] = Some(id);
            request.progress.save(saved.to_json()).await?;
        }
        let ids: Vec<String> = saved.children.iter().flatten().cloned().collect();
        let states = self.wait_all(&ids, token, backoff).await?;
        for (item, state) in items.iter().zip(states) {
            match state {
                State::Finished => {}
                State::Failed(sub) => return Err(container_failed_item(*item, &sub)),
                State::Gone | State::Expired | State::Published => {
                    return Err(PublishError::new(
                        FailureClass::Retryable { retry_after: None },
                        "container_expired",
                        "Instagram dropped a carousel item's container before it was published.",
                    ));
                }
            }
        }
        Ok(ids)
    }

    /// What an earlier attempt's `media_publish` made of the saved container (it reads
    /// PUBLISHED, or Instagram no longer knows it after it was sent to be published): the post
    /// when the media list shows it, else `Ambiguous` (never a new container).
    async fn published_earlier(
        &self,
        request: &PublishRequest,
        shape: &Shape<'_>,
        token: &str,
        saved: &mut Saved,
        why: &str,
    ) -> Result<PublishedPost, PublishError> {
        match self.find_media(request, shape, token).await? {
            Some(post) => {
                keep_post(request, saved, &post).await;
                Ok(post)
            }
            None => Err(PublishError::new(
                FailureClass::Ambiguous,
                "already_published",
                format!("{why}, and the post was not found in the account's media."),
            )),
        }
    }

    /// The media a published container became, looked for as reconciliation does.
    async fn find_media(
        &self,
        request: &PublishRequest,
        shape: &Shape<'_>,
        token: &str,
    ) -> Result<Option<PublishedPost>, PublishError> {
        let user = request.account.account_id.as_str();
        let not_before = request.not_before - chrono::Duration::seconds(RECONCILE_SLACK_SECS);
        let since = not_before.timestamp().max(0).to_string();
        let (edge, want_type, want_product) = shape.read_back();
        let story = matches!(shape, Shape::Story(_));
        let want_caption = shape.caption().map(str::trim).filter(|c| !c.is_empty());
        let mut candidates = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let mut query = vec![
                ("fields", MEDIA_FIELDS),
                ("limit", RECONCILE_PAGE_SIZE_PARAM),
            ];
            // `/media` takes `since`; `/stories` does not (the IG User spec lists no
            // parameter for it): its rows are filtered by their timestamps below.
            if !story {
                query.push(("since", since.as_str()));
            }
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let page: graph::Page<IgMedia> =
                self.get(&format!("{user}/{edge}"), &query, token).await?;
            for m in &page.data {
                let recent = m
                    .timestamp
                    .as_deref()
                    .and_then(graph::parse_timestamp)
                    .is_none_or(|t| t >= not_before);
                let same_caption = story
                    || m.caption
                        .as_deref()
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        == want_caption;
                let same_type = m.media_type.as_deref() == Some(want_type)
                    && m.media_product_type
                        .as_deref()
                        .is_none_or(|p| p == want_product);
                if recent && same_caption && same_type {
                    let found = PublishedPost {
                        id: m.id.clone(),
                        url: m.permalink.clone(),
                    };
                    if !story {
                        return Ok(Some(found));
                    }
                    candidates.push(found);
                }
            }
            match page.next_cursor(RECONCILE_PAGE_SIZE) {
                Some(cursor) => after = Some(cursor),
                None => {
                    // A story without a caption is told apart only when it is the only one.
                    return Ok(if candidates.len() == 1 {
                        candidates.pop()
                    } else {
                        None
                    });
                }
            }
        }
        Ok(None)
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct ContainerStatus {
    status_code: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct QuotaRow {
    #[serde(default)]
    quota_usage: Option<u64>,
    #[serde(default)]
    config: Option<QuotaConfig>,
}

#[derive(Deserialize)]
struct QuotaConfig {
    #[serde(default)]
    quota_total: Option<u64>,
    #[serde(default)]
    quota_duration: Option<u64>,
}

#[derive(Deserialize)]
struct Permalink {
    permalink: Option<String>,
}

#[derive(Deserialize)]
struct IgMedia {
    id: String,
    caption: Option<String>,
    timestamp: Option<String>,
    permalink: Option<String>,
    media_type: Option<String>,
    media_product_type: Option<String>,
}

/// One read of a container's `status_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Read {
    InProgress,
    Done(State),
    /// A `status_code` this server does not know, or none: it cannot tell what it means.
    Unknown(String),
}

/// A container's state once it is no longer processing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Finished,
    Published,
    /// Unknown to Instagram: never published when `media_publish` was never sent for it, else
    /// it may have been (published, then dropped).
    Gone,
    /// EXPIRED, or ERROR with a subcode worth a new container: certainly never published.
    Expired,
    /// ERROR, with the subcode of `status`.
    Failed(String),
}

/// What the publish can go on with.
enum Ready {
    Container(String),
    /// The saved container was already published.
    Published,
    /// The saved container was sent to `media_publish` and Instagram no longer knows it.
    Vanished,
}

/// What earlier attempts saved for this post (nothing when they saved it for another):
/// `{"kind", "key", "children", "container_id", "publish_sent", "media_id", "permalink"}`.
#[derive(Debug, Default)]
struct Saved {
    kind: &'static str,
    key: String,
    children: Vec<Option<String>>,
    container_id: Option<String>,
    /// `media_publish` may have been sent for `container_id` (saved before it is sent).
    /// Progress saved before this field existed has none: read as sent, the safe side.
    publish_sent: bool,
    /// The post `media_publish` made, once it answered.
    media_id: Option<String>,
    permalink: Option<String>,
}

impl Saved {
    fn load(saved: &Value, kind: &'static str, key: &str) -> Self {
        let mut out = Saved {
            kind,
            key: key.to_owned(),
            ..Saved::default()
        };
        if !Self::is_for(saved, kind, key) {
            return out;
        }
        let id = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        out.container_id = saved.get("container_id").and_then(id);
        out.publish_sent = out.container_id.is_some() && publish_sent(saved);
        out.media_id = saved.get("media_id").and_then(id);
        out.permalink = saved.get("permalink").and_then(id);
        out.children = saved
            .get("children")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(id).collect())
            .unwrap_or_default();
        out
    }

    /// Whether `saved` is progress for the post of this kind and key.
    fn is_for(saved: &Value, kind: &str, key: &str) -> bool {
        saved.get("kind").and_then(Value::as_str) == Some(kind)
            && saved.get("key").and_then(Value::as_str) == Some(key)
    }

    /// Whether `saved` (for whatever post) holds a container that may have been published, or
    /// a post.
    fn may_be_published(saved: &Value) -> bool {
        let has = |field: &str| {
            saved
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        has("media_id") || (has("container_id") && publish_sent(saved))
    }

    /// The post an earlier attempt published and saved.
    fn post(&self) -> Option<PublishedPost> {
        self.media_id.as_ref().map(|id| PublishedPost {
            id: id.clone(),
            url: self.permalink.clone(),
        })
    }

    /// A new top-level container, never sent to be published.
    fn set_container(&mut self, id: &str) {
        self.container_id = Some(id.to_owned());
        self.publish_sent = false;
    }

    /// The saved top-level container is no use (and was never published).
    fn forget_container(&mut self) {
        self.container_id = None;
        self.publish_sent = false;
    }

    fn to_json(&self) -> Value {
        let mut v = json!({ "kind": self.kind, "key": self.key });
        if !self.children.is_empty() {
            v["children"] = json!(self.children);
        }
        if let Some(id) = &self.container_id {
            v["container_id"] = json!(id);
            v["publish_sent"] = json!(self.publish_sent);
        }
        if let Some(id) = &self.media_id {
            v["media_id"] = json!(id);
        }
        if let Some(url) = &self.permalink {
            v["permalink"] = json!(url);
        }
        v
    }
}

/// `publish_sent` as saved; absent (progress saved before it existed) reads as sent.
fn publish_sent(saved: &Value) -> bool {
    saved
        .get("publish_sent")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// Saves the post `media_publish` made, so that later attempts and reconciliation answer it
/// without looking. The post exists: a failure to save is logged, not returned (a retry must
/// not come of it).
async fn keep_post(request: &PublishRequest, saved: &mut Saved, post: &PublishedPost) {
    saved.media_id = Some(post.id.clone());
    saved.permalink = post.url.clone();
    if let Err(e) = request.progress.save(saved.to_json()).await {
        tracing::warn!(
            code = %e.code,
            "the Instagram post is published, but its id could not be saved in the progress"
        );
    }
}

/// A container status this server does not know: worth trying again later (Instagram may
/// answer a known one then), not worth polling on.
fn unknown_status(code: &str) -> PublishError {
    PublishError::new(
        FailureClass::Retryable { retry_after: None },
        "container_status_unknown",
        format!(
            "Instagram answered a media container status this server does not know ({code}); the post will be tried again."
        ),
    )
}

/// One carousel item, or a story's medium.
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Image(&'a str),
    Video(&'a str),
}

/// What a post is made of.
#[derive(Debug)]
enum Shape<'a> {
    Image {
        url: &'a str,
        caption: Option<&'a str>,
    },
    Carousel {
        items: Vec<Item<'a>>,
        caption: Option<&'a str>,
    },
    Reel {
        video: &'a str,
        caption: Option<&'a str>,
        share_to_feed: Option<bool>,
        cover: Option<&'a str>,
        trial: bool,
    },
    Story(Item<'a>),
}

impl Shape<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Shape::Image { .. } => "image",
            Shape::Carousel { .. } => "carousel",
            Shape::Reel { .. } => "reel",
            Shape::Story(_) => "story",
        }
    }

    fn caption(&self) -> Option<&str> {
        match self {
            Shape::Image { caption, .. }
            | Shape::Carousel { caption, .. }
            | Shape::Reel { caption, .. } => *caption,
            Shape::Story(_) => None,
        }
    }

    fn has_video(&self) -> bool {
        match self {
            Shape::Image { .. } => false,
            Shape::Carousel { items, .. } => items.iter().any(|i| matches!(i, Item::Video(_))),
            Shape::Reel { .. } => true,
            Shape::Story(item) => matches!(item, Item::Video(_)),
        }
    }

    /// A digest of everything the post sends: progress saved for another post is not reused.
    fn key(&self) -> String {
        let described = match self {
            Shape::Image { url, caption } => json!(["image", url, caption]),
            Shape::Carousel { items, caption } => {
                let items: Vec<Value> = items.iter().map(item_json).collect();
                json!(["carousel", items, caption])
            }
            Shape::Reel {
                video,
                caption,
                share_to_feed,
                cover,
                trial,
            } => json!(["reel", video, caption, share_to_feed, cover, trial]),
            Shape::Story(item) => json!(["story", item_json(item)]),
        };
        let digest = sha2::Sha256::digest(described.to_string().as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// Where the published media is listed and how it reads back there: the edge, its
    /// `media_type` and `media_product_type` ("a published reel reads back `media_type`
    /// `VIDEO`", stories "request its `media_product_type` field instead").
    fn read_back(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Shape::Image { .. } => ("media", "IMAGE", "FEED"),
            Shape::Carousel { .. } => ("media", "CAROUSEL_ALBUM", "FEED"),
            Shape::Reel { .. } => ("media", "VIDEO", "REELS"),
            Shape::Story(Item::Image(_)) => ("stories", "IMAGE", "STORY"),
            Shape::Story(Item::Video(_)) => ("stories", "VIDEO", "STORY"),
        }
    }
}

fn item_json(item: &Item<'_>) -> Value {
    match item {
        Item::Image(u) => json!(["image", u]),
        Item::Video(u) => json!(["video", u]),
    }
}

fn permanent(code: &str, message: impl Into<String>) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

fn quota_exceeded(message: impl Into<String>) -> PublishError {
    PublishError::new(
        FailureClass::Retryable {
            retry_after: Some(QUOTA_RETRY_AFTER),
        },
        "quota_exceeded",
        message,
    )
}

/// The options of a post that sets none for Instagram.
static NO_OPTIONS: InstagramOptions = InstagramOptions {
    post_type: None,
    share_to_feed: None,
    cover_url: None,
    trial_reel: None,
};

/// What the request posts, checked against Instagram's rules (those submission checks too).
fn shape_of(request: &PublishRequest) -> Result<Shape<'_>, PublishError> {
    let content = &request.content;
    let options = match &request.options {
        PlatformOptions::Instagram(o) => o,
        _ => &NO_OPTIONS,
    };
    let caption = content.text.as_deref().filter(|t| !t.trim().is_empty());
    if let Some(c) = caption {
        let length = soku_core::posts::caption_length(c, false);
        if length > MAX_CAPTION_CHARS {
            return Err(permanent(
                "text_too_long",
                format!(
                    "The caption is {length} characters; Instagram allows {MAX_CAPTION_CHARS}."
                ),
            ));
        }
        for (sigil, max, code, what) in [
            ('#', INSTAGRAM_MAX_HASHTAGS, "too_many_hashtags", "hashtags"),
            (
                '@',
                INSTAGRAM_MAX_MENTIONS,
                "too_many_mentions",
                "@mentions",
            ),
        ] {
            let n = soku_core::posts::count_tags(c, sigil);
            if n > max {
                return Err(permanent(
                    code,
                    format!("The caption has {n} {what}; Instagram allows at most {max}."),
                ));
            }
        }
    }
    let mut items: Vec<Item<'_>> = content
        .image_urls
        .iter()
        .map(String::as_str)
        .filter(|u| !u.trim().is_empty())
        .map(Item::Image)
        .collect();
    let video = content
        .video_url
        .as_deref()
        .filter(|u| !u.trim().is_empty());
    if let Some(v) = video {
        items.push(Item::Video(v));
    }
    if items.is_empty() {
        return Err(permanent(
            "empty_post",
            "An Instagram post needs an image or a video.",
        ));
    }
    if items.len() > MAX_CAROUSEL_ITEMS {
        return Err(permanent(
            "too_many_images",
            format!(
                "Instagram posts take at most {MAX_CAROUSEL_ITEMS} images and videos; this post has {}.",
                items.len()
            ),
        ));
    }
    let post_type = soku_core::posts::instagram_post_type(content, options);
    // `instagram_post_type` reads a video post as a reel; a post of images with a video is a
    // carousel.
    let post_type = match (options.post_type, content.media_type) {
        (None, MediaType::Video) if items.len() > 1 => InstagramPostType::Feed,
        _ => post_type,
    };
    if post_type != InstagramPostType::Reel {
        let set = [
            ("coverUrl", options.cover_url.is_some()),
            ("shareToFeed", options.share_to_feed.is_some()),
            ("trialReel", options.trial_reel == Some(true)),
        ];
        if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
            return Err(permanent(
                "reel_only_option",
                format!("'{name}' applies to Instagram reels only."),
            ));
        }
    }
    match post_type {
        InstagramPostType::Story => match items.as_slice() {
            [one] => Ok(Shape::Story(*one)),
            _ => Err(permanent(
                "story_single_media",
                format!(
                    "An Instagram story holds one image or video; this post has {}.",
                    items.len()
                ),
            )),
        },
        InstagramPostType::Reel => match (video, items.len()) {
            (Some(v), 1) => Ok(Shape::Reel {
                video: v,
                caption,
                share_to_feed: options.share_to_feed,
                cover: options
                    .cover_url
                    .as_deref()
                    .filter(|c| !c.trim().is_empty()),
                trial: options.trial_reel == Some(true),
            }),
            (Some(_), _) => Err(permanent(
                "reel_needs_video",
                "An Instagram reel is one video; this post also has images.",
            )),
            (None, _) => Err(permanent(
                "reel_needs_video",
                "An Instagram reel needs a video.",
            )),
        },
        InstagramPostType::Feed => match items.as_slice() {
            [Item::Image(url)] => Ok(Shape::Image { url, caption }),
            // A feed video alone is a reel shared to the feed (module docs).
            [Item::Video(v)] => Ok(Shape::Reel {
                video: v,
                caption,
                share_to_feed: Some(true),
                cover: None,
                trial: false,
            }),
            _ => Ok(Shape::Carousel { items, caption }),
        },
    }
}

/// ERROR subcodes worth a new container (the -1 and -2 rows of the error table: "Instagram
/// server error", download timeout, "media expired", "please try to re-create media", "unknown
/// upload error").
const TRANSIENT_SUBCODES: &[&str] = &["2207001", "2207003", "2207020", "2207032", "2207053"];

/// A container subcode (Instagram "Error Codes" table) in words.
fn subcode_words(sub: &str) -> String {
    let words = match sub.trim() {
        "2207004" => "the image is larger than 8 MB",
        "2207005" => "the image format is not supported (Instagram takes JPEG)",
        "2207009" => "the image's aspect ratio is outside 4:5 to 1.91:1",
        "2207010" => "the caption is too long",
        "2207023" => "the media type is not one Instagram expects",
        "2207026" => "the video format is not supported",
        "2207028" => "a carousel needs 2 to 10 photos or videos",
        "2207040" => "the caption has more than 20 @ tags",
        "2207050" => "the Instagram account is restricted",
        "2207051" => "Instagram restricted this activity to protect its community",
        "2207052" => "Instagram could not fetch the media from its URL",
        "2207057" => "the thumbnail offset is outside the video",
        "2207001" | "2207032" | "2207053" => "Instagram failed to create the media",
        "2207003" => "Instagram took too long to download the media",
        "2207020" => "the media expired",
        _ => "Instagram could not process the media",
    };
    if sub.trim().is_empty() {
        words.to_owned()
    } else {
        format!("{words} (error {})", sub.trim())
    }
}

fn container_failed(shape: &Shape<'_>, sub: &str) -> PublishError {
    failed(shape.has_video(), sub)
}

fn container_failed_item(item: Item<'_>, sub: &str) -> PublishError {
    failed(matches!(item, Item::Video(_)), sub)
}

fn failed(video: bool, sub: &str) -> PublishError {
    let (code, what) = if video {
        ("media_processing_failed", "process the video")
    } else {
        ("media_rejected", "use the media")
    };
    permanent(
        code,
        format!("Instagram could not {what}: {}.", subcode_words(sub)),
    )
    .with_platform_error(sub.trim())
}

/// A container Instagram no longer has, read as a state: -2/2207020 ("has expired") is
/// `Expired`; code 100/33, 24/2207006 ("cannot be found") and 24/2207008 ("does not exist or
/// has been expired") are `Gone`.
fn missing(e: &PublishError) -> Option<State> {
    let g = graph::platform_graph_error(e)?;
    match (g.code, g.error_subcode) {
        (Some(-2), Some(2_207_020)) => Some(State::Expired),
        (Some(24), Some(2_207_006 | 2_207_008)) => Some(State::Gone),
        _ if graph::is_missing_object(e) => Some(State::Gone),
        _ => None,
    }
}

/// [`graph::classify`]'s failure, refined by Instagram's error table (module docs).
fn refine(e: PublishError, effect: Effect) -> PublishError {
    let Some(g) = graph::platform_graph_error(&e) else {
        return e;
    };
    let said: String = g
        .error_user_msg
        .clone()
        .or_else(|| g.message.clone())
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let raw = e.platform_error.clone().unwrap_or_default();
    let creates = effect == Effect::Creates;
    let out = match (g.code, g.error_subcode) {
        (Some(190 | 102), _) => return e,
        (Some(4), Some(2_207_051)) => permanent(
            "spam_restricted",
            format!("Instagram refused the post to protect its community: {said}"),
        ),
        (Some(9), Some(2_207_042)) => quota_exceeded(format!(
            "Instagram's limit of API-published posts per 24 hours is used up for this account: {said}"
        )),
        (Some(9007), _) => PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "media_processing",
            format!("Instagram has not finished processing the media: {said}"),
        ),
        // The container is missing or expired: certainly not published by this call.
        (Some(24), Some(2_207_008)) | (Some(-2), Some(2_207_020)) => PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "container_expired",
            format!("Instagram no longer has the post's media container: {said}"),
        ),
        (Some(24), Some(2_207_006)) if creates => PublishError::new(
            FailureClass::Ambiguous,
            "platform_error",
            format!("Instagram could not find the container it was asked to publish: {said}"),
        ),
        (Some(-1 | -2), _) => PublishError::new(
            if creates {
                FailureClass::Ambiguous
            } else {
                FailureClass::Retryable { retry_after: None }
            },
            "platform_error",
            format!("Instagram failed temporarily: {said}"),
        ),
        (Some(25), Some(2_207_050)) => permanent(
            "account_restricted",
            format!("Instagram has restricted this account: {said}"),
        ),
        (Some(352 | 9004 | 36000..=36004), _)
        | (Some(100), Some(2_207_000..=2_207_099))
        | (Some(1), Some(2_207_057)) => permanent(
            "media_rejected",
            format!("Instagram refused the media: {said}"),
        ),
        _ => return e,
    };
    out.with_platform_error(raw)
}

#[async_trait]
impl Connector for Instagram {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let shape = shape_of(request)?;
        let token = http::access_token(&request.account, PLATFORM)?;
        let user = request.account.account_id.as_str();
        let mut saved = Saved::load(request.progress.saved(), shape.kind(), &shape.key());
        // An earlier attempt published it and saved the post.
        if let Some(post) = saved.post() {
            return Ok(post);
        }

        let mut backoff = self.app.polling.start();
        let container = match self
            .ready_container(request, &shape, token, &mut saved, &mut backoff)
            .await?
        {
            Ready::Container(id) => id,
            Ready::Published => {
                let why = "Instagram says this post's container was already published";
                return self
                    .published_earlier(request, &shape, token, &mut saved, why)
                    .await;
            }
            Ready::Vanished => {
                let why = "Instagram no longer knows the container an earlier attempt sent to be published";
                return self
                    .published_earlier(request, &shape, token, &mut saved, why)
                    .await;
            }
        };

        // Saved before `media_publish` is sent, and the call is not made unless it is: from
        // here on the container may become a post, and a later attempt or reconciliation that
        // finds it gone must look for the post rather than take it for never published.
        if !saved.publish_sent {
            saved.publish_sent = true;
            request.progress.save(saved.to_json()).await?;
        }
        let published: IdOnly = self
            .call(
                self.app
                    .client
                    .post(self.app.url(&format!("{user}/media_publish")))
                    .form(&[("creation_id", container.as_str()), ("access_token", token)]),
                Effect::Creates,
            )
            .await?;

        // The post exists now: a failure to read its link or to save it must not fail the
        // publish (a retry would look for it, or worse).
        let url = match self
            .get::<Permalink>(&published.id, &[("fields", "permalink")], token)
            .await
        {
            Ok(p) => p.permalink,
            Err(e) => {
                tracing::warn!(code = %e.code, "could not read the Instagram post's permalink");
                None
            }
        };
        let post = PublishedPost {
            id: published.id,
            url,
        };
        keep_post(request, &mut saved, &post).await;
        Ok(post)
    }

    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let raw = request.progress.saved();
        let shape = match shape_of(request) {
            Ok(shape) => shape,
            // Such a post is never created; progress saved for another form of it may hold
            // something that was.
            Err(_) if Saved::may_be_published(raw) => return Ok(Existing::CannotTell),
            Err(_) => return Ok(Existing::NotFound),
        };
        let (kind, key) = (shape.kind(), shape.key());
        if !Saved::is_for(raw, kind, &key) {
            // Progress saved for another post (the content changed since) is not this post's,
            // but what it holds may have been published: that cannot be told apart.
            return Ok(if Saved::may_be_published(raw) {
                Existing::CannotTell
            } else {
                Existing::NotFound
            });
        }
        let saved = Saved::load(raw, kind, &key);
        if let Some(post) = saved.post() {
            return Ok(Existing::Found(post));
        }
        // `publish_sent` is saved before `media_publish` is sent: without it, none was.
        let Some(container) = saved.container_id.filter(|_| saved.publish_sent) else {
            return Ok(Existing::NotFound);
        };
        let token = http::access_token(&request.account, PLATFORM)?;
        match self.status(&container, token).await? {
            Read::Done(State::Published | State::Gone) => {}
            // Never published (yet): a publish now uses this container, which Instagram
            // publishes once.
            Read::InProgress | Read::Done(State::Finished | State::Expired | State::Failed(_)) => {
                return Ok(Existing::NotFound);
            }
            Read::Unknown(code) => {
                tracing::warn!(
                    status_code = %code,
                    "an Instagram container status this server does not know; cannot tell whether it was published"
                );
                return Ok(Existing::CannotTell);
            }
        }
        Ok(match self.find_media(request, &shape, token).await? {
            Some(post) => Existing::Found(post),
            None => Existing::CannotTell,
        })
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
        self.app.login.start(request, Grants::Instagram)
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        self.app
            .login
            .first_account(exchange, Grants::Instagram)
            .await
    }

    async fn exchange_all(
        &self,
        exchange: &CodeExchange,
    ) -> Result<Vec<ConnectedAccount>, ConnectError> {
        self.app.login.accounts(exchange, Grants::Instagram).await
    }

    async fn refresh(&self, _account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        Err(Grants::Instagram.not_refreshable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    fn ig(code: i64, sub: i64, transient: bool, effect: Effect) -> PublishError {
        let body = json!({"error": {"message": "m", "type": "OAuthException", "code": code,
            "error_subcode": sub, "is_transient": transient,
            "error_user_msg": "Instagram's own words.", "fbtrace_id": "x"}})
        .to_string();
        let e = graph::classify(
            PLATFORM,
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            body.as_bytes(),
            effect,
        );
        refine(e, effect)
    }

    #[test]
    fn instagram_subcodes_refine_the_graph_classes() {
        let c = Effect::Creates;
        let r = Effect::Repeatable;
        let e = ig(4, 2_207_051, false, c);
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Permanent, "spam_restricted")
        );
        let e = ig(9, 2_207_042, false, c);
        assert_eq!(
            (e.class, e.code.as_str()),
            (
                FailureClass::Retryable {
                    retry_after: Some(QUOTA_RETRY_AFTER)
                },
                "quota_exceeded"
            )
        );
        assert_eq!(ig(9007, 2_207_027, false, c).code, "media_processing");
        assert_eq!(ig(-1, 2_207_001, false, c).class, FailureClass::Ambiguous);
        assert_eq!(
            ig(-2, 2_207_003, false, r).class,
            FailureClass::Retryable { retry_after: None }
        );
        assert_eq!(
            ig(24, 2_207_008, true, c).class,
            FailureClass::Retryable { retry_after: None }
        );
        assert_eq!(ig(25, 2_207_050, false, c).code, "account_restricted");
        for (code, sub) in [
            (352, 2_207_026),
            (9004, 2_207_052),
            (36000, 2_207_004),
            (36003, 2_207_009),
            (100, 2_207_028),
            (1, 2_207_057),
        ] {
            let e = ig(code, sub, false, c);
            assert_eq!(
                (e.class, e.code.as_str()),
                (FailureClass::Permanent, "media_rejected"),
                "{code}/{sub}"
            );
            assert!(
                e.message.contains("Instagram's own words."),
                "{}",
                e.message
            );
            assert!(graph::platform_graph_error(&e).is_some());
        }
        // Plain throttling stays a throttle.
        assert_eq!(ig(4, 0, false, c).code, "rate_limited");
    }

    #[test]
    fn saved_progress_is_used_only_for_the_same_post() {
        let saved = json!({"kind": "carousel", "key": "k1", "children": ["1", null, "3"],
            "container_id": "9", "publish_sent": false});
        let s = Saved::load(&saved, "carousel", "k1");
        assert_eq!(s.children, [Some("1".into()), None, Some("3".into())]);
        assert_eq!(s.container_id.as_deref(), Some("9"));
        assert!(!s.publish_sent);
        assert_eq!(s.to_json(), saved);
        assert!(!Saved::may_be_published(&saved));
        let other = Saved::load(&saved, "carousel", "k2");
        assert!(other.children.is_empty() && other.container_id.is_none());
        assert!(Saved::load(&saved, "image", "k1").container_id.is_none());

        let sent = json!({"kind": "image", "key": "k1", "container_id": "9",
            "publish_sent": true});
        assert!(Saved::load(&sent, "image", "k1").publish_sent);
        assert!(Saved::may_be_published(&sent));
        let posted = json!({"kind": "image", "key": "k1", "container_id": "9",
            "publish_sent": true, "media_id": "17", "permalink": "https://p"});
        let s = Saved::load(&posted, "image", "k1");
        assert_eq!(
            s.post(),
            Some(PublishedPost {
                id: "17".into(),
                url: Some("https://p".into())
            })
        );
        assert_eq!(s.to_json(), posted);
    }

    #[test]
    fn progress_saved_before_publish_sent_existed_reads_as_sent() {
        let old = json!({"kind": "image", "key": "k1", "container_id": "9"});
        let s = Saved::load(&old, "image", "k1");
        assert!(s.publish_sent);
        assert!(Saved::may_be_published(&old));
        // Items alone were never sent to be published.
        let items = json!({"kind": "carousel", "key": "k1", "children": ["1"]});
        assert!(!Saved::load(&items, "carousel", "k1").publish_sent);
        assert!(!Saved::may_be_published(&items));
    }

    #[test]
    fn a_new_container_is_not_sent_yet() {
        let mut s = Saved::load(
            &json!({"kind": "image", "key": "k", "container_id": "9", "publish_sent": true}),
            "image",
            "k",
        );
        s.forget_container();
        assert_eq!(s.to_json(), json!({"kind": "image", "key": "k"}));
        s.set_container("10");
        assert_eq!(
            s.to_json(),
            json!({"kind": "image", "key": "k", "container_id": "10", "publish_sent": false})
        );
    }
}
