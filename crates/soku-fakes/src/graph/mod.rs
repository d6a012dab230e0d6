//! A fake of the Facebook Graph API (`graph.facebook.com/{version}`) as the Instagram and Facebook
//! Page connectors use it: Facebook Login, the user's Pages and their linked Instagram
//! professional accounts, Instagram content publishing, and Page feed, photo and video
//! publishing, and Page reels and stories. Every call is under a version prefix (`/v25.0` by
//! default, [`GraphFake::start_with_version`] for another), except the upload host's.
//!
//! # Calls
//!
//! | call | what the fake does |
//! |---|---|
//! | `GET /{v}/dialog/oauth` | the login dialog (on `www.facebook.com` for real): approves at once and redirects with `code` and `state` (see [`GraphFake::authorize_url`], [`GraphFake::mint_code`], [`GraphFake::deny_next_login`]) |
//! | `GET /{v}/oauth/access_token` | `code` → short-lived user token; `grant_type=fb_exchange_token` → long-lived user token (60 days) |
//! | `GET /{v}/me`, `GET /{v}/me/accounts` | the user; the Pages the user has a role on, with `access_token` (a Page token), `tasks`, `instagram_business_account{...}` |
//! | `GET /{v}/{page-id}` | `id`, `name`, `category`, `instagram_business_account` |
//! | `GET /{v}/{ig-user-id}` | `id`, `username`, `name`, `profile_picture_url` |
//! | `POST /{v}/{ig-user-id}/media` | image, reel, story, carousel item and carousel containers → `{"id"}` |
//! | `GET /{v}/{container-id}` | `status_code` (IN_PROGRESS → FINISHED / ERROR / EXPIRED / PUBLISHED), `status` |
//! | `POST /{v}/{ig-user-id}/media_publish` | `creation_id` → `{"id"}` of the media |
//! | `GET /{v}/{ig-user-id}/content_publishing_limit` | `{"data":[{"quota_usage", "config":{"quota_total","quota_duration"}}]}` |
//! | `GET /{v}/{ig-user-id}/media`, `GET /{v}/{ig-media-id}` | published media, newest first (stories excluded, as documented) |
//! | `GET /{v}/{ig-user-id}/stories` | the stories of the last 24 hours, newest first |
//! | `POST /{v}/{page-id}/feed` | `message`, `link`, `published`, `scheduled_publish_time`, `attached_media[n]={"media_fbid"}` → `{"id":"<page>_<post>"}` |
//! | `POST /{v}/{page-id}/photos` | `url`, `caption`, `published`, `temporary` → `{"id","post_id"}` (`{"id"}` when unpublished) |
//! | `POST /{v}/{page-id}/videos` | `file_url`, `description`, `title`, `published` → `{"id"}` |
//! | `GET /{v}/{video-id}?fields=status` | `video_status` and the uploading / processing / publishing phases |
//! | `GET /{v}/{page-id}/posts` (`published_posts`, `feed`), `GET /{v}/{post-id}` | published posts, newest first |
//! | `GET /{v}/{page-id}/videos` | the Page's videos (and published reels), newest first |
//! | `POST /{v}/{page-id}/video_reels`, `.../video_stories` | `upload_phase=start` → `{"video_id","upload_url"}`; `upload_phase=finish`, `video_id` (reels: `video_state` `PUBLISHED`/`DRAFT`, `description`, `title`) → `{"success":true}` (stories: `{"success":true,"post_id"}`) |
//! | `POST /video-upload/{v}/{video-id}` | the upload host (`rupload.facebook.com` for real): `Authorization: OAuth {page-token}`, `file_url: {url}` header → `{"success":true}`; the local-file variant (`offset`, `file_size`, bytes) is refused |
//! | `GET /{v}/{page-id}/video_reels` | published, processed reels, newest first |
//! | `POST /{v}/{page-id}/photo_stories` | `photo_id` of an unpublished photo → `{"success":true,"post_id"}` |
//! | `GET /{v}/{page-id}/stories` | `post_id`, `status`, `creation_time`, `media_type`, `media_id`, `url`, newest first |
//!
//! Tokens come as `Authorization: Bearer` or as the `access_token` query or form parameter
//! (Graph takes both). A Page token works for its own Page (and for the Instagram account
//! linked to it); a user token works for the Pages the user has a role on, except for Page
//! publishing, which needs the Page's token. Parameters and fields the fake does not know are
//! refused (code 100), so a connector's typo fails a test instead of being ignored.
//!
//! # Knobs and counters
//!
//! Tokens: [`GraphFake::grant_token`], [`GraphFake::page_token`], [`GraphFake::expire_token`],
//! [`GraphFake::revoke_token`], [`GraphFake::revoke_permission`], [`GraphFake::remove_page_role`],
//! [`GraphFake::set_page_tasks`]. Containers: [`GraphFake::set_container_polls`],
//! [`GraphFake::set_container_processing_time`], [`GraphFake::fail_next_container`],
//! [`GraphFake::fail_media_url`], [`GraphFake::expire_container`], [`GraphFake::fetch_media`].
//! Quota: [`GraphFake::set_quota_total`], [`GraphFake::record_api_publishes`]. Videos:
//! [`GraphFake::set_video_polls`], [`GraphFake::fail_next_video`] (reels and video stories
//! too), [`GraphFake::lose_next_video_answer`], [`GraphFake::set_video_listing_lag`]. Reels: [`GraphFake::set_reels_quota`], [`GraphFake::record_api_reels`], readers
//! [`GraphFake::reels`], [`GraphFake::stories`], counters [`GraphFake::reels_started`],
//! [`GraphFake::reels_uploaded`], [`GraphFake::reels_published`],
//! [`GraphFake::stories_published`]. Throttling and outages:
//! [`GraphFake::rate_limit_next`], [`GraphFake::transient_next`], [`GraphFake::set_app_usage`],
//! and the shared [`Faults`]. Counters: [`GraphFake::containers_created`],
//! [`GraphFake::publishes`], [`GraphFake::page_posts_created`], [`GraphFake::status_reads`], ...
//!
//! # What each shape was checked against
//!
//! - Meta's machine-readable API specs (`facebook/facebook-business-sdk-codegen`, commit
//!   `ad2b0b6fdfbe4d73ed0754cb4562ef20b72b40d4`, specs `v25.0`): every parameter in [`CALLS`]
//!   and every field in [`OBJECT_FIELDS`] is checked by `tests/graph.rs` against
//!   `specs/graph-api-extract.json`, an extract of names, types and line numbers made by
//!   `specs/extract_graph_specs.py`. The same test reads the fake's actual answers and checks
//!   every key against the spec type of the object (recursing into `instagram_business_account`,
//!   `owner`, `status` and its phases).
//! - What the specs do not describe is pinned to quoted documentation in the comments where
//!   it is produced: Facebook Login (dialog, code exchange, long-lived token), the error object,
//!   the error codes and subcodes, the usage headers, `tasks`, the `content_publishing_limit`
//!   envelope and `config` keys, the `attached_media` item shape, the create calls' answers
//!   (`{"id"}`, `{"id","post_id"}`, `{"id":"<page>_<post>"}`), which the specs type as whole
//!   objects, and the reels and stories calls' answers and the upload host (Reels Publishing
//!   API, Facebook Stories API).
//! - Where the documentation says nothing (an already published container, a carousel item
//!   with a caption, a Page token used on another Page) the comment says the answer is the
//!   fake's choice.

use crate::common::{Fake, Faults, json, token};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The Graph API version the codegen specs are stamped with (`api_specs/specs/version.txt`),
/// supported until 29 July 2028 (Graph API changelog).
pub const DEFAULT_VERSION: &str = "v25.0";

/// The app the fake knows (the values `PlatformSettings::at` uses for every network).
pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// Registered at start; others with [`GraphFake::register_redirect_uri`].
pub const REDIRECT_URI: &str = "https://soku.test/v1/oauth/facebook/callback";

/// The Facebook user who logs in (an app-scoped user id).
pub const USER_ID: &str = "10160000000000001";
pub const USER_NAME: &str = "Graph Test User";
/// The Page with a linked Instagram professional account.
pub const PAGE_ID: &str = "101000000000001";
pub const PAGE_NAME: &str = "Soku Test Page";
/// A second Page the user manages, with no Instagram account.
pub const PAGE2_ID: &str = "101000000000002";
pub const PAGE2_NAME: &str = "Soku Second Page";
/// The Instagram professional account linked to [`PAGE_ID`].
pub const IG_USER_ID: &str = "17841400000000001";
pub const IG_USERNAME: &str = "sokutest";
pub const IG_NAME: &str = "Soku Test";

/// Permissions the fake's login dialog knows.
pub const KNOWN_PERMISSIONS: &[&str] = &[
    "public_profile",
    "email",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_posts",
    "pages_manage_engagement",
    "pages_read_user_engagement",
    "publish_video",
    "instagram_basic",
    "instagram_content_publish",
    "business_management",
    "ads_management",
    "ads_read",
];

/// What the connectors ask for: the permissions-by-call table of `docs/research/meta-graph-api.md`.
pub const PUBLISHING_PERMISSIONS: &[&str] = &[
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_posts",
    "instagram_basic",
    "instagram_content_publish",
];

/// Short-lived user tokens: the fake gives them an hour (the login guide's code exchange answers
/// an `expires_in` without fixing it). Page tokens taken with a short-lived user token "are
/// valid for 1 hour" (business SDK, token-switch).
pub const SHORT_LIVED: Duration = Duration::from_secs(3600);
/// "A long-lived token generally lasts about 60 days" (Get Long-Lived Tokens).
pub const LONG_LIVED: Duration = Duration::from_secs(60 * 24 * 3600);
/// The documented sample answer: `{"access_token":"{long-lived-user-access-token}",
/// "token_type": "bearer","expires_in": 5183944}`.
pub const LONG_LIVED_EXPIRES_IN: u64 = 5_183_944;
const CODE_TTL: Duration = Duration::from_secs(600);
/// IG User Media: "Containers expire after 24 hours".
const CONTAINER_TTL: Duration = Duration::from_secs(24 * 3600);
/// content_publishing_limit: `quota_total` "(currently `50`)", `quota_duration` "(currently
/// `86400` seconds, or 24 hours)". (The publishing guide says 100: read `config` at run time.)
pub const DEFAULT_QUOTA_TOTAL: u32 = 50;
pub const QUOTA_DURATION: u64 = 86_400;

/// Reels Publishing API, "Rate Limit": "Reels API is limited to 30 API-published posts within a
/// 24-hour moving period. This limit is enforced on the `POST /{page_id}/video_reels` endpoint
/// when attempting to publish a reel." ([`GraphFake::set_reels_quota`] for another total.)
pub const DEFAULT_REELS_QUOTA: u32 = 30;
pub const REELS_QUOTA_DURATION: u64 = 86_400;
/// Reel video specification: "Duration | 3 to 90 seconds. A reel published as a story on a
/// Facebook Page can not exceed 60 seconds." (Reels Publishing API and Facebook Stories API);
/// Stories API "Limitations": "A video story can not exceed 60 seconds". The fake does not
/// probe video, so it checks none of these: they are here for the connectors.
pub const REEL_MIN_SECONDS: u32 = 3;
pub const REEL_MAX_SECONDS: u32 = 90;
pub const STORY_VIDEO_MAX_SECONDS: u32 = 60;
/// The upload host's path (`https://rupload.facebook.com/video-upload/{version}/{video-id}`),
/// served by the fake itself: a connector's upload host is the fake's [`GraphFake::url`].
pub const UPLOAD_PATH: &str = "video-upload";
/// `upload_phase` values (`enum_types.json`, `pagevideo_reels_upload_phase_enum_param` and
/// `pagevideo_stories_upload_phase_enum_param`: `FINISH`, `START`). The guides write them in
/// lower case (`"upload_phase":"start"`); the fake takes either case.
pub const UPLOAD_PHASES: &[&str] = &["START", "FINISH"];
/// `video_state` values (`pagevideo_reels_video_state_enum_param`,
/// `pagevideo_stories_video_state_enum_param`: `DRAFT`, `PUBLISHED`, `SCHEDULED`).
pub const VIDEO_STATES: &[&str] = &["DRAFT", "PUBLISHED", "SCHEDULED"];

/// A running Graph API fake.
pub struct GraphFake {
    /// `http://127.0.0.1:<port>`: the Graph API base without the version.
    pub url: String,
    pub version: String,
    pub faults: Faults,
    state: Shared,
    _server: Fake,
}

impl GraphFake {
    pub async fn start() -> Self {
        Self::start_with_version(DEFAULT_VERSION).await
    }

    /// A fake serving under `/{version}` (e.g. `v27.0`); other versions answer Graph's
    /// unknown-path error.
    pub async fn start_with_version(version: &str) -> Self {
        let pages = vec![
            Page {
                id: PAGE_ID.into(),
                name: PAGE_NAME.into(),
                category: "Software".into(),
                ig_user_id: Some(IG_USER_ID.into()),
                tasks: all_tasks(),
                role: true,
            },
            Page {
                id: PAGE2_ID.into(),
                name: PAGE2_NAME.into(),
                category: "Community".into(),
                ig_user_id: None,
                tasks: all_tasks(),
                role: true,
            },
        ];
        let state: Shared = Arc::new(Mutex::new(Inner {
            version: version.to_owned(),
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            codes: HashMap::new(),
            deny_next_login: false,
            tokens: Vec::new(),
            granted: Vec::new(),
            pages,
            ig_accounts: vec![IgAccount {
                id: IG_USER_ID.into(),
                username: IG_USERNAME.into(),
                name: IG_NAME.into(),
                page_id: PAGE_ID.into(),
            }],
            page_tokens: HashMap::new(),
            containers: HashMap::new(),
            media: Vec::new(),
            posts: Vec::new(),
            photos: HashMap::new(),
            videos: HashMap::new(),
            stories: Vec::new(),
            url: String::new(),
            reels_quota: DEFAULT_REELS_QUOTA,
            earlier_api_reels: Vec::new(),
            next_id: 0,
            container_polls: 1,
            container_time: None,
            fail_next_container: VecDeque::new(),
            failing_urls: HashMap::new(),
            fetch_media: false,
            fetched: Vec::new(),
            video_polls: 2,
            fail_next_video: VecDeque::new(),
            lose_next_video_answer: false,
            video_listing_lag: false,
            quota_total: DEFAULT_QUOTA_TOTAL,
            injected: VecDeque::new(),
            app_usage: AppUsage::default(),
            containers_created: 0,
            publishes: 0,
            page_posts_created: 0,
            photos_uploaded: 0,
            videos_uploaded: 0,
            status_reads: 0,
            video_status_reads: 0,
            reels_started: 0,
            reels_uploaded: 0,
            reels_published: 0,
            stories_published: 0,
            exchange_calls: 0,
            graph_calls: 0,
        }));
        let faults = Faults::default();
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = Fake::serve(router, faults.clone()).await;
        state.lock().unwrap().url = server.url.clone();
        Self {
            url: server.url.clone(),
            version: version.to_owned(),
            faults,
            state,
            _server: server,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// `http://127.0.0.1:<port>/v25.0`: what a connector uses as its Graph base URL.
    pub fn base(&self) -> String {
        format!("{}/{}", self.url, self.version)
    }

    /// The login dialog URL (for real, `https://www.facebook.com/{v}/dialog/oauth?client_id=
    /// {app-id}&redirect_uri={redirect-uri}&state={state-param}`, Manually Build a Login Flow),
    /// served by the fake: it approves at once and redirects to `redirect_uri` with `code` and
    /// `state`.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str, scope: &[&str]) -> String {
        format!(
            "{}/dialog/oauth?client_id={}&redirect_uri={}&state={}&scope={}",
            self.base(),
            CLIENT_ID,
            encode(redirect_uri),
            encode(state),
            encode(&scope.join(","))
        )
    }

    /// Another redirect URI the app registered.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.with(|s| s.redirect_uris.push(uri.to_owned()));
    }

    /// A code the dialog would have given for these permissions (the user approved).
    pub fn mint_code(&self, redirect_uri: &str, permissions: &[&str]) -> String {
        let code = token("AQ");
        self.with(|s| {
            s.codes.insert(
                code.clone(),
                Code {
                    redirect_uri: redirect_uri.to_owned(),
                    permissions: permissions.iter().map(|p| p.to_string()).collect(),
                    issued: SystemTime::now(),
                    used: false,
                },
            )
        });
        code
    }

    /// The next login is cancelled by the user.
    pub fn deny_next_login(&self) {
        self.with(|s| s.deny_next_login = true);
    }

    /// A long-lived user token with these permissions granted, as if the login had happened.
    pub fn grant_token(&self, permissions: &[&str]) -> String {
        self.with(|s| {
            s.granted = permissions.iter().map(|p| p.to_string()).collect();
            s.issue(TokenKind::UserLong, Some(LONG_LIVED))
        })
    }

    /// The Page token `user_token` gets for `page_id` from `/me/accounts`.
    pub fn page_token(&self, user_token: &str, page_id: &str) -> String {
        self.with(|s| {
            let t = s
                .tokens
                .iter()
                .find(|t| t.token == user_token)
                .cloned()
                .expect("a user token the fake issued");
            s.page_token_for(&t, page_id)
        })
    }

    /// Tokens issued so far, oldest first.
    pub fn tokens(&self) -> Vec<IssuedToken> {
        self.with(|s| s.tokens.clone())
    }

    /// The permissions the user has granted.
    pub fn granted(&self) -> Vec<String> {
        self.with(|s| s.granted.clone())
    }

    /// Makes a token expired (code 190, subcode 463).
    pub fn expire_token(&self, token: &str) {
        self.with(|s| {
            if let Some(t) = s.tokens.iter_mut().find(|t| t.token == token) {
                t.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
            }
        });
    }

    /// Revokes a token (code 190 with the revocation's subcode).
    pub fn revoke_token(&self, token: &str, why: Revocation) {
        self.with(|s| {
            if let Some(t) = s.tokens.iter_mut().find(|t| t.token == token) {
                t.revoked = Some(why as i64);
            }
        });
    }

    /// The user removed the app: every token answers 190/458.
    pub fn remove_app(&self) {
        self.with(|s| {
            for t in &mut s.tokens {
                t.revoked = Some(Revocation::AppRemoved as i64);
            }
        });
    }

    /// The user took back one permission (in the app settings).
    pub fn revoke_permission(&self, permission: &str) {
        self.with(|s| s.granted.retain(|p| p != permission));
    }

    /// The user no longer has a role on the Page: it leaves `/me/accounts`, and its Page tokens
    /// answer 190/492.
    pub fn remove_page_role(&self, page_id: &str) {
        self.with(|s| {
            if let Some(p) = s.pages.iter_mut().find(|p| p.id == page_id) {
                p.role = false;
            }
        });
    }

    /// The user's tasks on the Page (default all five).
    pub fn set_page_tasks(&self, page_id: &str, tasks: &[&str]) {
        self.with(|s| {
            if let Some(p) = s.pages.iter_mut().find(|p| p.id == page_id) {
                p.tasks = tasks.iter().map(|t| t.to_string()).collect();
            }
        });
    }

    /// Another Page the user manages, with a linked Instagram account if `ig_username` is given.
    /// Returns the Page id and the Instagram account id.
    pub fn add_page(&self, name: &str, ig_username: Option<&str>) -> (String, Option<String>) {
        self.with(|s| {
            let page_id = s.id(101_000_000_000_100);
            let ig_id = ig_username.map(|u| {
                let id = s.id(17_841_400_000_000_100);
                s.ig_accounts.push(IgAccount {
                    id: id.clone(),
                    username: u.to_owned(),
                    name: u.to_owned(),
                    page_id: page_id.clone(),
                });
                id
            });
            s.pages.push(Page {
                id: page_id.clone(),
                name: name.to_owned(),
                category: "Brand".into(),
                ig_user_id: ig_id.clone(),
                tasks: all_tasks(),
                role: true,
            });
            (page_id, ig_id)
        })
    }

    /// How many status reads a new container answers IN_PROGRESS to (default 1).
    pub fn set_container_polls(&self, n: u32) {
        self.with(|s| s.container_polls = n);
    }

    /// New containers process for this long instead (`None`: back to counting reads).
    pub fn set_container_processing_time(&self, d: Option<Duration>) {
        self.with(|s| s.container_time = d);
    }

    /// The next container created ends in ERROR with this subcode (e.g. 2207026, "The video
    /// format is not supported").
    pub fn fail_next_container(&self, subcode: i64) {
        self.with(|s| s.fail_next_container.push_back(subcode));
    }

    /// Containers made from this image or video URL end in ERROR with this subcode.
    pub fn fail_media_url(&self, url: &str, subcode: i64) {
        self.with(|s| s.failing_urls.insert(url.to_owned(), subcode));
    }

    /// The container was not published within 24 hours.
    pub fn expire_container(&self, id: &str) {
        self.with(|s| {
            if let Some(c) = s.containers.get_mut(id) {
                c.expired = true;
            }
        });
    }

    /// When on, the fake GETs every `image_url`, `video_url` (containers) and photo `url`
    /// (plain `http://` only) as Instagram and Facebook fetch media by URL; an answer other
    /// than 200 fails the container with 9004/2207052 ("The media could not be fetched from
    /// this uri") and the photo upload with code 324. Off by default: the fake fetches nothing.
    pub fn fetch_media(&self, on: bool) {
        self.with(|s| s.fetch_media = on);
    }

    /// The URLs fetched and what they answered (status, or the connection error).
    pub fn fetched(&self) -> Vec<(String, Result<u16, String>)> {
        self.with(|s| s.fetched.clone())
    }

    /// The account's publishing quota (`config.quota_total`, default 50).
    pub fn set_quota_total(&self, n: u32) {
        self.with(|s| s.quota_total = n);
    }

    /// `n` posts published through the API in the last hour by another app (they use quota
    /// and are listed in `/media`).
    pub fn record_api_publishes(&self, ig_user_id: &str, n: usize) {
        for i in 0..n {
            self.insert_media(
                ig_user_id,
                Some(&format!("published elsewhere {i}")),
                Duration::from_secs(60),
                true,
            );
        }
    }

    /// A media object published some other way, `age` ago (for reconciliation tests).
    pub fn insert_media(
        &self,
        ig_user_id: &str,
        caption: Option<&str>,
        age: Duration,
        via_api: bool,
    ) -> String {
        self.with(|s| {
            let id = s.id(17_950_000_000_000_000);
            let shortcode = shortcode();
            s.media.push(IgMedia {
                id: id.clone(),
                ig_user_id: ig_user_id.to_owned(),
                container_id: None,
                media_type: "IMAGE".into(),
                media_product_type: "FEED".into(),
                caption: caption.map(str::to_owned),
                media_url: None,
                children: Vec::new(),
                permalink: format!("https://www.instagram.com/p/{shortcode}/"),
                shortcode,
                timestamp: unix(SystemTime::now() - age),
                via_api,
            });
            s.media.sort_by_key(|m| m.timestamp);
            id
        })
    }

    /// A Page post made some other way, `age` ago.
    pub fn insert_page_post(&self, page_id: &str, message: &str, age: Duration) -> String {
        self.with(|s| {
            let id = format!("{page_id}_{}", s.id(122_000_000_000_000_000));
            s.posts.push(PagePost {
                id: id.clone(),
                page_id: page_id.to_owned(),
                message: Some(message.to_owned()),
                link: None,
                created_time: unix(SystemTime::now() - age),
                published: true,
                scheduled_publish_time: None,
                photo_ids: Vec::new(),
                video_id: None,
            });
            s.posts.sort_by_key(|p| p.created_time);
            id
        })
    }

    /// How many status reads a new video answers `processing` to (default 2).
    pub fn set_video_polls(&self, n: u32) {
        self.with(|s| s.video_polls = n);
    }

    /// The next video uploaded fails processing with this error (`processing_phase.errors`).
    /// Reels and video stories take it when their file arrives at the upload host.
    pub fn fail_next_video(&self, code: i64, message: &str) {
        self.with(|s| s.fail_next_video.push_back((code, message.to_owned())));
    }

    /// The next `POST /{page}/videos` is handled (the video is created, processed and published
    /// as usual) and then answered with the transient error 2 (HTTP 500) instead of its
    /// `{"id"}`: an answer lost between Facebook and the caller, which "Handling Errors" tells
    /// callers to retry although the call may have been taken.
    pub fn lose_next_video_answer(&self) {
        self.with(|s| s.lose_next_video_answer = true);
    }

    /// While on, a video uploaded to `/{page}/videos` is listed there only once processed
    /// (read-after-write lag: one Facebook is still fetching or processing may not be listed
    /// yet). Meta documents neither; the fake lists at once by default.
    pub fn set_video_listing_lag(&self, on: bool) {
        self.with(|s| s.video_listing_lag = on);
    }

    /// The reels quota of every Page (default [`DEFAULT_REELS_QUOTA`], 30 in 24 hours).
    pub fn set_reels_quota(&self, n: u32) {
        self.with(|s| s.reels_quota = n);
    }

    /// `n` reels published on the Page through the API in the last hour, some other way (by
    /// another app): they use the reels quota. They are not listed anywhere.
    pub fn record_api_reels(&self, page_id: &str, n: usize) {
        let at = unix(SystemTime::now()) - 3600;
        self.with(|s| {
            for _ in 0..n {
                s.earlier_api_reels.push((page_id.to_owned(), at));
            }
        });
    }

    /// Reel sessions (started, uploaded, finished or not), oldest id first.
    pub fn reels(&self) -> Vec<Video> {
        self.with(|s| {
            let mut v: Vec<Video> = s
                .videos
                .values()
                .filter(|v| v.kind == VideoKind::Reel)
                .cloned()
                .collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v
        })
    }

    /// Stories published on Pages (video and photo), oldest first.
    pub fn stories(&self) -> Vec<PageStory> {
        self.with(|s| s.stories.clone())
    }

    /// `POST /{page-id}/video_reels` with `upload_phase=start` answered.
    pub fn reels_started(&self) -> usize {
        self.with(|s| s.reels_started)
    }

    /// Reel files taken by the upload host.
    pub fn reels_uploaded(&self) -> usize {
        self.with(|s| s.reels_uploaded)
    }

    /// Reels finished with `video_state=PUBLISHED`.
    pub fn reels_published(&self) -> usize {
        self.with(|s| s.reels_published)
    }

    /// Stories published (video and photo).
    pub fn stories_published(&self) -> usize {
        self.with(|s| s.stories_published)
    }

    /// The next `n` Graph calls are throttled.
    pub fn rate_limit_next(&self, n: usize, throttle: Throttle) {
        self.with(|s| {
            for _ in 0..n {
                s.injected.push_back(Injected::Throttle(throttle));
            }
        });
    }

    /// The next `n` Graph calls fail with code 2, `is_transient: true` (HTTP 500).
    pub fn transient_next(&self, n: usize) {
        self.with(|s| {
            for _ in 0..n {
                s.injected.push_back(Injected::Transient);
            }
        });
    }

    /// The `X-App-Usage` percentages every answer carries (default 0).
    pub fn set_app_usage(&self, usage: AppUsage) {
        self.with(|s| s.app_usage = usage);
    }

    pub fn containers(&self) -> Vec<Container> {
        self.with(|s| {
            let mut c: Vec<Container> = s.containers.values().cloned().collect();
            c.sort_by(|a, b| a.id.cmp(&b.id));
            c
        })
    }

    /// Instagram media, oldest first.
    pub fn media(&self) -> Vec<IgMedia> {
        self.with(|s| s.media.clone())
    }

    /// Page posts (published or not), oldest first.
    pub fn page_posts(&self) -> Vec<PagePost> {
        self.with(|s| s.posts.clone())
    }

    pub fn photos(&self) -> Vec<Photo> {
        self.with(|s| {
            let mut p: Vec<Photo> = s.photos.values().cloned().collect();
            p.sort_by(|a, b| a.id.cmp(&b.id));
            p
        })
    }

    pub fn videos(&self) -> Vec<Video> {
        self.with(|s| {
            let mut v: Vec<Video> = s.videos.values().cloned().collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v
        })
    }

    /// Containers created by `POST /{ig-user-id}/media`.
    pub fn containers_created(&self) -> usize {
        self.with(|s| s.containers_created)
    }

    /// Successful `media_publish` calls.
    pub fn publishes(&self) -> usize {
        self.with(|s| s.publishes)
    }

    /// Posts created by `POST /{page-id}/feed` and published `/photos`.
    pub fn page_posts_created(&self) -> usize {
        self.with(|s| s.page_posts_created)
    }

    pub fn photos_uploaded(&self) -> usize {
        self.with(|s| s.photos_uploaded)
    }

    pub fn videos_uploaded(&self) -> usize {
        self.with(|s| s.videos_uploaded)
    }

    /// Container status reads answered.
    pub fn status_reads(&self) -> usize {
        self.with(|s| s.status_reads)
    }

    /// Video status reads answered.
    pub fn video_status_reads(&self) -> usize {
        self.with(|s| s.video_status_reads)
    }

    /// Successful `fb_exchange_token` calls.
    pub fn exchange_calls(&self) -> usize {
        self.with(|s| s.exchange_calls)
    }

    /// Graph calls received (all of them, including refused ones).
    pub fn graph_calls(&self) -> usize {
        self.with(|s| s.graph_calls)
    }
}

fn all_tasks() -> Vec<String> {
    [
        "ANALYZE",
        "ADVERTISE",
        "MODERATE",
        "CREATE_CONTENT",
        "MANAGE",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect()
}

mod access;
mod dispatch;
mod errors;
mod instagram;
mod login;
mod pages;
mod params;
mod reads;
mod reels;
mod spec;
mod state;

use access::*;
use dispatch::*;
use errors::*;
pub use errors::{graph_error, ig_error};
use instagram::*;
use login::*;
use pages::*;
use params::*;
pub use params::{encode, iso};
use reads::*;
use reels::*;
pub use spec::*;
pub use state::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso(1_546_453_888), "2019-01-02T18:31:28+0000");
    }

    #[test]
    fn field_expansion_parses() {
        let f = parse_fields("id,name,instagram_business_account{id,username},tasks").unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f[2].name, "instagram_business_account");
        assert_eq!(f[2].sub.as_ref().unwrap().len(), 2);
        assert!(parse_fields("a{b").is_err());
        assert!(parse_fields("a}").is_err());
    }

    #[test]
    fn list_params_take_three_forms() {
        let p = Params(vec![
            ("attached_media[1]".into(), "b".into()),
            ("attached_media[0]".into(), "a".into()),
            ("children".into(), "1,2, 3".into()),
            ("collaborators".into(), "[\"x\",\"y\"]".into()),
        ]);
        assert_eq!(p.list("attached_media").unwrap(), vec!["a", "b"]);
        assert_eq!(p.list("children").unwrap(), vec!["1", "2", "3"]);
        assert_eq!(p.list("collaborators").unwrap(), vec!["x", "y"]);
    }

    #[test]
    fn every_call_is_distinct_and_every_object_known() {
        for (i, a) in CALLS.iter().enumerate() {
            for b in &CALLS[i + 1..] {
                assert!((a.spec_node, a.method, a.endpoint) != (b.spec_node, b.method, b.endpoint));
            }
        }
        assert!(!object_fields("IGMedia").is_empty());
    }
}
