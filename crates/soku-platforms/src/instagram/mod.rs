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

mod containers;
mod errors;
mod shape;
mod state;

use errors::*;
use shape::*;
use state::*;

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
