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
//! too). Reels: [`GraphFake::set_reels_quota`], [`GraphFake::record_api_reels`], readers
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

/// Parameters the specs never list but every call takes.
pub const GENERIC_PARAMS: &[&str] = &[
    "access_token",
    "fields",
    "limit",
    "after",
    "before",
    "appsecret_proof",
];

/// A parameter's kind as the fake parses it; the drift test checks it against the spec's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any string (spec `string`).
    Str,
    /// `true` / `false` (spec `bool`).
    Bool,
    /// A decimal number (spec `unsigned int`, `int`).
    UInt,
    /// Unix seconds (spec `datetime`; the API also takes other forms, the fake does not).
    DateTime,
    /// A JSON array, a comma separated list, or indexed `name[n]` parameters (spec `list<...>`).
    List,
    /// A JSON object (spec `map`, `Object`).
    Map,
    /// One of the values of the spec's enum type.
    Enum,
}

/// One Graph call the fake serves, as the codegen specs name it.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The spec file (node type) the call is in.
    pub spec_node: &'static str,
    pub method: &'static str,
    /// The edge, or `#get` for a read of the node itself.
    pub endpoint: &'static str,
    /// The parameters the fake accepts besides [`GENERIC_PARAMS`].
    pub params: &'static [(&'static str, Kind)],
}

const fn call(
    spec_node: &'static str,
    method: &'static str,
    endpoint: &'static str,
    params: &'static [(&'static str, Kind)],
) -> Call {
    Call {
        spec_node,
        method,
        endpoint,
        params,
    }
}

/// Every call the fake serves, with the parameters it accepts. The fake refuses any other
/// parameter, so this table is exactly what it takes; `tests/graph.rs` checks it against the
/// specs. (OAuth calls are not in the specs; see `oauth_access_token`.)
pub const CALLS: &[Call] = &[
    call("User", "GET", "#get", &[]),
    call("User", "GET", "accounts", &[]),
    call("Page", "GET", "#get", &[]),
    call(
        "Page",
        "POST",
        "feed",
        &[
            ("message", Kind::Str),
            ("link", Kind::Str),
            ("published", Kind::Bool),
            ("scheduled_publish_time", Kind::DateTime),
            ("attached_media", Kind::List),
            ("unpublished_content_type", Kind::Enum),
        ],
    ),
    call(
        "Page",
        "POST",
        "photos",
        &[
            ("url", Kind::Str),
            ("caption", Kind::Str),
            ("published", Kind::Bool),
            ("temporary", Kind::Bool),
        ],
    ),
    call(
        "Page",
        "POST",
        "videos",
        &[
            ("file_url", Kind::Str),
            ("description", Kind::Str),
            ("title", Kind::Str),
            ("published", Kind::Bool),
        ],
    ),
    call("Page", "GET", "posts", &[("limit", Kind::UInt)]),
    call("Page", "GET", "published_posts", &[("limit", Kind::UInt)]),
    call("Page", "GET", "feed", &[("limit", Kind::UInt)]),
    call("Page", "GET", "videos", &[]),
    call(
        "Page",
        "POST",
        "video_reels",
        &[
            ("upload_phase", Kind::Enum),
            ("video_id", Kind::Str),
            ("video_state", Kind::Enum),
            ("description", Kind::Str),
            ("title", Kind::Str),
        ],
    ),
    call(
        "Page",
        "GET",
        "video_reels",
        &[("since", Kind::DateTime), ("until", Kind::DateTime)],
    ),
    call(
        "Page",
        "POST",
        "video_stories",
        &[
            ("upload_phase", Kind::Enum),
            ("video_id", Kind::Str),
            ("video_state", Kind::Enum),
        ],
    ),
    call("Page", "POST", "photo_stories", &[("photo_id", Kind::Str)]),
    call(
        "Page",
        "GET",
        "stories",
        &[("since", Kind::DateTime), ("until", Kind::DateTime)],
    ),
    call("PagePost", "GET", "#get", &[]),
    call("Photo", "GET", "#get", &[]),
    call("AdVideo", "GET", "#get", &[]),
    call("IGUser", "GET", "#get", &[]),
    call(
        "IGUser",
        "POST",
        "media",
        &[
            ("image_url", Kind::Str),
            ("video_url", Kind::Str),
            ("media_type", Kind::Str),
            ("is_carousel_item", Kind::Bool),
            ("children", Kind::List),
            ("caption", Kind::Str),
            ("share_to_feed", Kind::Bool),
            ("cover_url", Kind::Str),
            ("thumb_offset", Kind::Str),
            ("trial_params", Kind::Map),
            ("alt_text", Kind::Str),
            ("audio_name", Kind::Str),
            ("collaborators", Kind::List),
            ("location_id", Kind::Str),
        ],
    ),
    call(
        "IGUser",
        "POST",
        "media_publish",
        &[("creation_id", Kind::UInt)],
    ),
    call(
        "IGUser",
        "GET",
        "content_publishing_limit",
        &[("since", Kind::DateTime)],
    ),
    call(
        "IGUser",
        "GET",
        "media",
        &[("since", Kind::DateTime), ("until", Kind::DateTime)],
    ),
    call("IGUser", "GET", "stories", &[]),
    call("IGMedia", "GET", "#get", &[]),
    call("ShadowIGMediaBuilder", "GET", "#get", &[]),
];

/// The fields the fake can return for each object type (spec type name → field names). A
/// `fields` parameter naming anything else is refused, as Graph refuses a nonexisting field.
pub const OBJECT_FIELDS: &[(&str, &[&str])] = &[
    ("User", &["id", "name"]),
    (
        "Page",
        &[
            "id",
            "name",
            "category",
            "access_token",
            "instagram_business_account",
        ],
    ),
    ("IGUser", &["id", "username", "name", "profile_picture_url"]),
    (
        "IGMedia",
        &[
            "id",
            "caption",
            "timestamp",
            "permalink",
            "media_type",
            "media_product_type",
            "shortcode",
            "username",
            "media_url",
            "owner",
        ],
    ),
    ("ShadowIGMediaBuilder", &["id", "status", "status_code"]),
    ("ContentPublishingLimitResponse", &["config", "quota_usage"]),
    (
        "PagePost",
        &["id", "message", "created_time", "permalink_url"],
    ),
    ("Photo", &["id", "created_time"]),
    (
        "AdVideo",
        &[
            "id",
            "status",
            "description",
            "title",
            "created_time",
            "permalink_url",
            "published",
        ],
    ),
    (
        "VideoStatus",
        &[
            "video_status",
            "uploading_phase",
            "processing_phase",
            "publishing_phase",
        ],
    ),
    ("VideoStatusUploadingPhase", &["status"]),
    ("VideoStatusProcessingPhase", &["status", "errors"]),
    ("VideoStatusPublishingPhase", &["status", "publish_status"]),
    ("VideoStatusError", &["code", "message"]),
    (
        "Stories",
        &[
            "post_id",
            "status",
            "creation_time",
            "media_type",
            "media_id",
            "url",
        ],
    ),
];

/// Fields an edge adds to its rows that are not fields of the row's type. `tasks` is not a
/// `Page` field in the specs; the accounts edge returns it: documented row (Photo Uploads guide)
/// `{"access_token","category","category_list","name","id","tasks":["ANALYZE","ADVERTISE",
/// "MODERATE","CREATE_CONTENT","MANAGE"]}`.
pub const EDGE_EXTRA_FIELDS: &[(&str, &str, &[&str])] = &[("User", "accounts", &["tasks"])];

fn object_fields(spec_type: &str) -> &'static [&'static str] {
    OBJECT_FIELDS
        .iter()
        .find(|(t, _)| *t == spec_type)
        .map(|(_, f)| *f)
        .unwrap_or(&[])
}

fn call_params(spec_node: &str, method: &str, endpoint: &str) -> Option<&'static Call> {
    CALLS
        .iter()
        .find(|c| c.spec_node == spec_node && c.method == method && c.endpoint == endpoint)
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    UserShort,
    UserLong,
    /// A Page access token for this Page.
    Page(String),
}

/// A token the fake issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub kind: TokenKind,
    pub issued_at: SystemTime,
    /// `None`: does not expire (a Page token from a long-lived user token: "Long-lived Page
    /// access token do not have an expiration date").
    pub expires_at: Option<SystemTime>,
    /// Revoked, with the `error_subcode` the API answers (see [`Revocation`]).
    pub revoked: Option<i64>,
}

/// Why a token stopped working. The subcodes of code 190, Graph API "Handling Errors":
/// "458 | App Not Installed", "459 | User Checkpointed", "460 | Password Changed",
/// "464 | Unconfirmed User", "467 | Invalid Access Token".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    AppRemoved = 458,
    Checkpointed = 459,
    PasswordChanged = 460,
    Unconfirmed = 464,
    Invalid = 467,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub id: String,
    pub name: String,
    pub category: String,
    pub ig_user_id: Option<String>,
    /// The user's tasks on the Page.
    pub tasks: Vec<String>,
    /// The user still has a role on the Page.
    pub role: bool,
}

#[derive(Debug, Clone)]
pub struct IgAccount {
    pub id: String,
    pub username: String,
    pub name: String,
    pub page_id: String,
}

/// What a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Image,
    /// A carousel item with `media_type=VIDEO`.
    CarouselVideo,
    Reel,
    StoryImage,
    StoryVideo,
    Carousel,
}

/// An Instagram media container.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub ig_user_id: String,
    pub kind: ContainerKind,
    pub image_url: Option<String>,
    pub video_url: Option<String>,
    pub caption: Option<String>,
    pub is_carousel_item: bool,
    pub children: Vec<String>,
    pub share_to_feed: Option<bool>,
    pub cover_url: Option<String>,
    pub thumb_offset: Option<u64>,
    /// `trial_params.graduation_strategy`.
    pub trial_graduation: Option<String>,
    pub collaborators: Vec<String>,
    pub alt_text: Option<String>,
    /// Status reads left before it leaves IN_PROGRESS (when processing is counted in reads).
    pub polls_left: u32,
    /// When processing ends (when processing is counted in time).
    pub ready_at: Option<Instant>,
    /// What it becomes: `None` = FINISHED, `Some(subcode)` = ERROR with that subcode.
    pub error_subcode: Option<i64>,
    pub created_at: SystemTime,
    pub expired: bool,
    /// The media it became.
    pub media_id: Option<String>,
}

/// A published Instagram media object.
#[derive(Debug, Clone)]
pub struct IgMedia {
    pub id: String,
    pub ig_user_id: String,
    pub container_id: Option<String>,
    /// As read back: IMAGE, VIDEO, CAROUSEL_ALBUM ("a published reel reads back `media_type`
    /// `VIDEO`").
    pub media_type: String,
    /// FEED, REELS, STORY.
    pub media_product_type: String,
    pub caption: Option<String>,
    pub media_url: Option<String>,
    pub children: Vec<String>,
    pub shortcode: String,
    pub permalink: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Published through the content publishing API (counts toward the quota).
    pub via_api: bool,
}

/// A Page post.
#[derive(Debug, Clone)]
pub struct PagePost {
    /// `<page-id>_<post-id>`.
    pub id: String,
    pub page_id: String,
    pub message: Option<String>,
    pub link: Option<String>,
    /// Unix seconds.
    pub created_time: i64,
    /// `published=false` (and not scheduled): an unpublished post.
    pub published: bool,
    pub scheduled_publish_time: Option<i64>,
    /// The photos it carries (attached, or the photo it was made for).
    pub photo_ids: Vec<String>,
    /// The video it was made for; listed once the video is ready.
    pub video_id: Option<String>,
}

/// A photo uploaded to a Page.
#[derive(Debug, Clone)]
pub struct Photo {
    pub id: String,
    pub page_id: String,
    pub url: String,
    pub caption: Option<String>,
    pub published: bool,
    pub temporary: bool,
    pub post_id: Option<String>,
    /// The feed post it was attached to (`attached_media`).
    pub attached_to: Option<String>,
    pub created_time: i64,
}

/// What a Page video was made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoKind {
    /// `POST /{page-id}/videos`.
    Video,
    /// `POST /{page-id}/video_reels`.
    Reel,
    /// `POST /{page-id}/video_stories`.
    Story,
}

/// A video uploaded to a Page: a plain video, or a reel or video story session.
#[derive(Debug, Clone)]
pub struct Video {
    pub id: String,
    pub page_id: String,
    pub kind: VideoKind,
    /// The hosted file (empty for a reel or story session not uploaded yet).
    pub file_url: String,
    /// The file has arrived (always for plain videos; for reels and stories, once the upload
    /// host took the `file_url`).
    pub uploaded: bool,
    /// Reels and stories: the `video_state` `upload_phase=finish` was accepted with
    /// (`PUBLISHED` for stories).
    pub finished: Option<String>,
    /// Reels and stories: when it was published (Unix seconds), for the reels quota.
    pub published_at: Option<i64>,
    pub description: Option<String>,
    pub title: Option<String>,
    pub published: bool,
    pub polls_left: u32,
    /// Processing fails with this (code, message).
    pub failure: Option<(i64, String)>,
    pub post_id: Option<String>,
    pub created_time: i64,
}

/// A story published on a Page (`/video_stories` or `/photo_stories`).
#[derive(Debug, Clone)]
pub struct PageStory {
    /// The story post's id (what the finish call answers as `post_id`).
    pub post_id: String,
    pub page_id: String,
    /// `video` or `photo`, as `GET /{page-id}/stories` answers `media_type`.
    pub media_type: String,
    /// The video or photo id.
    pub media_id: String,
    /// Unix seconds.
    pub created_time: i64,
}

/// A throttle the API applies (Graph API "Rate Limiting").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// "4 | API Too Many Calls" (application-level); `X-App-Usage` at 100.
    App,
    /// "17 | API User Too Many Calls".
    User,
    /// "`error code 32` Page calls made with a User access token".
    PageUserToken,
    /// "`error code 80001` Page calls made with a Page or System User access token".
    PageBuc,
    /// "`error code 80002` Instagram".
    InstagramBuc,
}

#[derive(Debug, Clone, Copy)]
enum Injected {
    Throttle(Throttle),
    Transient,
}

struct Code {
    redirect_uri: String,
    permissions: Vec<String>,
    issued: SystemTime,
    used: bool,
}

/// `X-App-Usage` percentages.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppUsage {
    pub call_count: u32,
    pub total_time: u32,
    pub total_cputime: u32,
}

struct Inner {
    version: String,
    redirect_uris: Vec<String>,
    codes: HashMap<String, Code>,
    deny_next_login: bool,
    tokens: Vec<IssuedToken>,
    /// The permissions the user granted the app (Graph keeps them per user and app, so every
    /// token of the user has them).
    granted: Vec<String>,
    pages: Vec<Page>,
    ig_accounts: Vec<IgAccount>,
    /// (user token, page id) → the Page token handed out for it.
    page_tokens: HashMap<(String, String), String>,
    containers: HashMap<String, Container>,
    /// Newest last.
    media: Vec<IgMedia>,
    /// Newest last.
    posts: Vec<PagePost>,
    photos: HashMap<String, Photo>,
    videos: HashMap<String, Video>,
    /// Newest last.
    stories: Vec<PageStory>,
    /// The fake's own base URL (for `upload_url`).
    url: String,
    reels_quota: u32,
    /// (Page id, Unix seconds) of reels published through the API some other way.
    earlier_api_reels: Vec<(String, i64)>,
    next_id: u64,
    container_polls: u32,
    container_time: Option<Duration>,
    fail_next_container: VecDeque<i64>,
    failing_urls: HashMap<String, i64>,
    fetch_media: bool,
    fetched: Vec<(String, Result<u16, String>)>,
    video_polls: u32,
    fail_next_video: VecDeque<(i64, String)>,
    quota_total: u32,
    injected: VecDeque<Injected>,
    app_usage: AppUsage,
    containers_created: usize,
    publishes: usize,
    page_posts_created: usize,
    photos_uploaded: usize,
    videos_uploaded: usize,
    status_reads: usize,
    video_status_reads: usize,
    reels_started: usize,
    reels_uploaded: usize,
    reels_published: usize,
    stories_published: usize,
    exchange_calls: usize,
    graph_calls: usize,
}

impl Inner {
    fn id(&mut self, base: u64) -> String {
        self.next_id += 1;
        (base + self.next_id).to_string()
    }

    fn page(&self, id: &str) -> Option<&Page> {
        self.pages.iter().find(|p| p.id == id)
    }

    fn ig(&self, id: &str) -> Option<&IgAccount> {
        self.ig_accounts.iter().find(|a| a.id == id)
    }

    fn has(&self, permission: &str) -> bool {
        self.granted.iter().any(|g| g == permission)
    }

    fn issue(&mut self, kind: TokenKind, lifetime: Option<Duration>) -> String {
        let prefix = match kind {
            TokenKind::UserShort => "EAAs",
            TokenKind::UserLong => "EAAl",
            TokenKind::Page(_) => "EAAp",
        };
        let t = token(prefix);
        let now = SystemTime::now();
        self.tokens.push(IssuedToken {
            token: t.clone(),
            kind,
            issued_at: now,
            expires_at: lifetime.map(|d| now + d),
            revoked: None,
        });
        t
    }

    /// The Page token a user token gets for a Page (the same one on every call).
    fn page_token_for(&mut self, user_token: &IssuedToken, page_id: &str) -> String {
        let key = (user_token.token.clone(), page_id.to_owned());
        if let Some(t) = self.page_tokens.get(&key) {
            return t.clone();
        }
        // "Long-lived Page access token do not have an expiration date"; from a short-lived
        // user token they "are valid for 1 hour".
        let lifetime = match user_token.kind {
            TokenKind::UserLong => None,
            _ => Some(SHORT_LIVED),
        };
        let t = self.issue(TokenKind::Page(page_id.to_owned()), lifetime);
        self.page_tokens.insert(key, t.clone());
        t
    }

    /// The container's status, without counting a read.
    fn container_status(&self, c: &Container) -> (&'static str, Option<i64>) {
        if c.media_id.is_some() {
            return ("PUBLISHED", None);
        }
        if c.expired || c.created_at + CONTAINER_TTL <= SystemTime::now() {
            return ("EXPIRED", None);
        }
        let processing = match c.ready_at {
            Some(at) => Instant::now() < at,
            None => c.polls_left > 0,
        };
        if processing {
            return ("IN_PROGRESS", None);
        }
        if let Some(sub) = c.error_subcode {
            return ("ERROR", Some(sub));
        }
        // A carousel is as good as its children.
        for child in &c.children {
            if let Some(k) = self.containers.get(child)
                && let Some(sub) = k.error_subcode
            {
                return ("ERROR", Some(sub));
            }
        }
        ("FINISHED", None)
    }

    fn video_ready(&self, video_id: &str) -> bool {
        self.videos
            .get(video_id)
            .is_some_and(|v| v.uploaded && v.polls_left == 0 && v.failure.is_none())
    }

    /// Posts a Page shows: published, and for a video post, once the video is ready.
    fn visible_posts(&self, page_id: &str) -> Vec<&PagePost> {
        self.posts
            .iter()
            .rev()
            .filter(|p| p.page_id == page_id && p.published)
            .filter(|p| p.video_id.as_deref().is_none_or(|v| self.video_ready(v)))
            .collect()
    }

    /// Reels published through the API on the Page after `since` (the reels quota's usage).
    fn api_reels_since(&self, page_id: &str, since: i64) -> usize {
        let ours = self
            .videos
            .values()
            .filter(|v| v.page_id == page_id && v.kind == VideoKind::Reel)
            .filter(|v| v.published_at.is_some_and(|t| t > since))
            .count();
        let earlier = self
            .earlier_api_reels
            .iter()
            .filter(|(p, t)| p == page_id && *t > since)
            .count();
        ours + earlier
    }

    fn api_publishes_since(&self, ig_user_id: &str, since: i64) -> usize {
        self.media
            .iter()
            .filter(|m| m.ig_user_id == ig_user_id && m.via_api && m.timestamp > since)
            .count()
    }
}

type Shared = Arc<Mutex<Inner>>;

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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A Graph API error body. Graph API "Handling Errors" (https://developers.facebook.com/docs/
/// graph-api/guides/error-handling) documents the object as `{"error":{"message","type":
/// "OAuthException","code","error_subcode","error_user_title","error_user_msg","fbtrace_id"}}`,
/// and the Instagram "Error Codes" sample answer is `{"error": {"message": "The image size is
/// too large.", "type": "OAuthException", "code": 36000, "error_subcode": 2207004,
/// "is_transient": false, "error_user_title": "Image size too large", "error_user_msg": "The
/// image is too large to download. It should be less than 8 MiB.", "fbtrace_id": "…"}}`.
/// `is_transient` is always sent; `error_subcode`, `error_user_title` and `error_user_msg` only
/// when there is one.
pub fn graph_error(
    code: i64,
    subcode: Option<i64>,
    kind: &str,
    message: &str,
    is_transient: bool,
    user: Option<(&str, &str)>,
) -> Value {
    let mut e = json!({
        "message": message,
        "type": kind,
        "code": code,
        "is_transient": is_transient,
        "fbtrace_id": token("A")[..12].to_owned(),
    });
    if let Some(sub) = subcode {
        e["error_subcode"] = json!(sub);
    }
    if let Some((title, msg)) = user {
        e["error_user_title"] = json!(title);
        e["error_user_msg"] = json!(msg);
    }
    json!({ "error": e })
}

fn err(code: i64, subcode: Option<i64>, kind: &str, message: &str) -> Response {
    json(400, graph_error(code, subcode, kind, message, false, None))
}

fn bad_param(message: &str) -> Response {
    err(100, None, "OAuthException", message)
}

/// Graph's answer for a node the token cannot see: code 100, subcode 33.
fn no_object(method: &Method, node: &str) -> Response {
    err(
        100,
        Some(33),
        "GraphMethodException",
        &format!(
            "Unsupported {} request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            method.as_str().to_ascii_lowercase()
        ),
    )
}

/// An Instagram content publishing error, from the "Error Codes" reference table
/// (https://developers.facebook.com/documentation/instagram-platform/instagram-graph-api/
/// reference/error-codes): HTTP 400 and the table's code for each subcode. The messages are the
/// table's "User Message" where it gives one verbatim (2207003, 2207020, 2207001, 2207032,
/// 2207053, 2207057, 2207051, 2207042, 2207052, 2207027, 2207050); the others paraphrase the
/// row. Unknown subcodes answer code -1 (server error).
pub fn ig_error(subcode: i64, uri: Option<&str>) -> Value {
    let (code, message): (i64, String) = match subcode {
        2_207_003 => (-2, "It takes too long to download the media.".into()),
        2_207_020 => (
            -2,
            "The media you are trying to access has expired. Please try to upload again.".into(),
        ),
        2_207_001 => (-1, "Instagram server error. Try again.".into()),
        2_207_032 => (-1, "Create media fail, please try to re-create media".into()),
        2_207_053 => (-1, "unknown upload error".into()),
        2_207_057 => (
            1,
            "Thumbnail offset must be greater than or equal to 0 and less than video duration"
                .into(),
        ),
        2_207_051 => (
            4,
            "We restrict certain activity to protect our community. Tell us if you think we made a mistake.".into(),
        ),
        2_207_042 => (
            9,
            "You reached maximum number of posts that is allowed to be published by Content Publishing API.".into(),
        ),
        2_207_006 => (
            24,
            "The media with the given id cannot be found.".into(),
        ),
        2_207_008 => (
            24,
            "The media builder with the given id does not exist or has been expired.".into(),
        ),
        2_207_050 => (25, "The Instagram account is restricted.".into()),
        2_207_023 => (
            100,
            "The media type entered is not one of the expected media types.".into(),
        ),
        2_207_028 => (
            100,
            "Carousels need at least 2 photos/videos and no more than 10 photos/videos.".into(),
        ),
        2_207_040 => (
            100,
            "Cannot use more than 20 tags per created media.".into(),
        ),
        2_207_026 => (
            352,
            "The video format is not supported. Please check spec for supported format.".into(),
        ),
        2_207_052 => (
            9004,
            format!(
                "The media could not be fetched from this uri: {}",
                uri.unwrap_or("")
            ),
        ),
        2_207_027 => (
            9007,
            "The media is not ready for publishing, please wait for a moment".into(),
        ),
        2_207_004 => (36000, "The image is too large to download. It should be less than 8 MiB.".into()),
        2_207_005 => (36001, "The image format is not supported.".into()),
        2_207_009 => (
            36003,
            "The submitted image with aspect ratio cannot be published. Please submit an image with a valid aspect ratio.".into(),
        ),
        2_207_010 => (36004, "The caption was too long.".into()),
        _ => (-1, "Instagram server error. Try again.".into()),
    };
    // The table's "Recommended Solution" says which are worth a retry: -1, -2 and 24/2207008.
    let transient = matches!(code, -1 | -2) || subcode == 2_207_008;
    graph_error(
        code,
        Some(subcode),
        "OAuthException",
        &message,
        transient,
        Some(("Media error", &message)),
    )
}

fn ig_err(subcode: i64, uri: Option<&str>) -> Response {
    json(400, ig_error(subcode, uri))
}

/// The throttled answer (Graph API "Rate Limiting"): the code, and the usage header at 100.
fn throttled(t: Throttle, object: Option<(String, &'static str)>) -> Response {
    let (code, message) = match t {
        // The messages of 4, 17 and 32 are the live API's, not quoted from the documentation.
        Throttle::App => (4, "(#4) Application request limit reached".to_owned()),
        Throttle::User => (17, "(#17) User request limit reached".to_owned()),
        Throttle::PageUserToken => (
            32,
            "(#32) Page request limit reached".to_owned(),
        ),
        // "(#80001) There have been too many calls to this Page account. Wait a bit and try
        // again. …" (80002: "this Instagram account").
        Throttle::PageBuc => (
            80001,
            "(#80001) There have been too many calls to this Page account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.".to_owned(),
        ),
        Throttle::InstagramBuc => (
            80002,
            "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.".to_owned(),
        ),
    };
    let mut r = json(
        400,
        graph_error(code, None, "OAuthException", &message, true, None),
    );
    match t {
        Throttle::App | Throttle::User => {
            let usage = AppUsage {
                call_count: 100,
                total_time: 100,
                total_cputime: 100,
            };
            set_header(&mut r, "x-app-usage", &app_usage_header(usage));
        }
        _ => {
            let (id, kind) = object.unwrap_or_else(|| {
                let kind = if t == Throttle::InstagramBuc {
                    "instagram"
                } else {
                    "pages"
                };
                (String::new(), kind)
            });
            set_header(
                &mut r,
                "x-business-use-case-usage",
                &buc_header(&id, kind, 100, 19),
            );
        }
    }
    r
}

/// `X-App-Usage: {"call_count": 28, "total_time": 25, "total_cputime": 25}` (percentages).
fn app_usage_header(u: AppUsage) -> String {
    json!({
        "call_count": u.call_count,
        "total_time": u.total_time,
        "total_cputime": u.total_cputime,
    })
    .to_string()
}

/// `X-Business-Use-Case-Usage: {"{business-object-id}": [{"type": "{rate-limit-type}",
/// "call_count": 100, "total_cputime": 25, "total_time": 25, "estimated_time_to_regain_access":
/// 19}]}`; `type` one of "`ads_insights`, `ads_management`, `custom_audience`, `instagram`,
/// `leadgen`, `messenger`, or `pages`"; `estimated_time_to_regain_access` "Time, in minutes".
fn buc_header(object_id: &str, kind: &str, pct: u32, regain_minutes: u32) -> String {
    json!({
        object_id: [{
            "type": kind,
            "call_count": pct,
            "total_cputime": pct,
            "total_time": pct,
            "estimated_time_to_regain_access": regain_minutes,
        }]
    })
    .to_string()
}

fn set_header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `2019-01-02T18:31:28+0000`, the form Graph uses.
pub fn iso(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn shortcode() -> String {
    token("")[..11].to_owned()
}

fn decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse_pairs(s: &str, into: &mut Vec<(String, String)>) {
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        into.push((decode(k), decode(v)));
    }
}

/// A request's parameters (query string and form body), in order; `name[n]` kept as sent.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// The spec name of a parameter: `attached_media[0]` → `attached_media`.
    fn base(key: &str) -> &str {
        match key.find('[') {
            Some(i) if key.ends_with(']') => &key[..i],
            _ => key,
        }
    }

    /// Values of a list parameter: indexed `name[n]` parameters in index order, a JSON array,
    /// or a comma separated list.
    fn list(&self, key: &str) -> Result<Vec<String>, String> {
        let mut indexed: Vec<(usize, String)> = Vec::new();
        for (k, v) in &self.0 {
            if Self::base(k) == key && k != key {
                let n = k[key.len() + 1..k.len() - 1]
                    .parse::<usize>()
                    .map_err(|_| format!("(#100) Param {k} has a bad index"))?;
                indexed.push((n, v.clone()));
            }
        }
        if !indexed.is_empty() {
            indexed.sort_by_key(|(n, _)| *n);
            return Ok(indexed.into_iter().map(|(_, v)| v).collect());
        }
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        if v.trim_start().starts_with('[') {
            let arr: Vec<Value> = serde_json::from_str(v)
                .map_err(|_| format!("(#100) Param {key} must be a JSON array"))?;
            return Ok(arr
                .into_iter()
                .map(|x| match x {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect());
        }
        Ok(v.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect())
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(_) => Err(format!("(#100) Param {key} must be a boolean")),
        }
    }
}

#[allow(clippy::result_large_err)]
fn read_params(uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Result<Params, Response> {
    let mut p = Vec::new();
    if let Some(q) = uri.query() {
        parse_pairs(q, &mut p);
    }
    if !body.is_empty() {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ct.starts_with("application/x-www-form-urlencoded") {
            let Ok(text) = std::str::from_utf8(body) else {
                return Err(bad_param("The request body is not UTF-8."));
            };
            parse_pairs(text, &mut p);
        } else if ct.starts_with("application/json") {
            // Graph also takes a JSON body; values that are not strings are passed on as JSON.
            let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else {
                return Err(bad_param("The request body is not a JSON object."));
            };
            for (k, v) in o {
                let v = match v {
                    Value::String(s) => s,
                    Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                p.push((k, v));
            }
        } else {
            return Err(bad_param(
                "(#100) The fake takes form-encoded or JSON parameters only (no file uploads).",
            ));
        }
    }
    Ok(Params(p))
}

/// The parameters of a call, checked against what the fake accepts (its [`CALLS`] entry).
#[allow(clippy::result_large_err)]
fn check_params(p: &Params, spec_node: &str, method: &str, endpoint: &str) -> Result<(), Response> {
    let allowed = call_params(spec_node, method, endpoint)
        .map(|c| c.params)
        .unwrap_or(&[]);
    for (k, _) in &p.0 {
        let base = Params::base(k);
        if GENERIC_PARAMS.contains(&base) || allowed.iter().any(|(n, _)| *n == base) {
            continue;
        }
        return Err(bad_param(&format!(
            "(#100) The parameter {k} is not accepted by {method} {spec_node}/{endpoint} (the fake refuses parameters it does not implement)"
        )));
    }
    Ok(())
}

/// A requested field, with its subfields (`instagram_business_account{id,username}`).
#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    sub: Option<Vec<Field>>,
}

fn parse_fields(s: &str) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut push = |part: &str| -> Result<(), String> {
        let part = part.trim();
        if part.is_empty() {
            return Ok(());
        }
        match part.find('{') {
            None => out.push(Field {
                name: part.to_owned(),
                sub: None,
            }),
            Some(i) => {
                if !part.ends_with('}') {
                    return Err(format!("(#100) Syntax error in fields: {part}"));
                }
                out.push(Field {
                    name: part[..i].trim().to_owned(),
                    sub: Some(parse_fields(&part[i + 1..part.len() - 1])?),
                });
            }
        }
        Ok(())
    };
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "(#100) Syntax error in fields".to_owned())?
            }
            b',' if depth == 0 => {
                push(&s[start..i])?;
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("(#100) Syntax error in fields".into());
    }
    push(&s[start..])?;
    Ok(out)
}

/// The requested fields of a node type, checked (`default` when there is no `fields`).
#[allow(clippy::result_large_err)]
fn fields(
    p: &Params,
    spec_type: &str,
    extra: &[&str],
    default: &[&str],
) -> Result<Vec<Field>, Response> {
    let requested = match p.get("fields") {
        None => default
            .iter()
            .map(|n| Field {
                name: n.to_string(),
                sub: None,
            })
            .collect(),
        Some(f) => parse_fields(f).map_err(|e| bad_param(&e))?,
    };
    check_fields(&requested, spec_type, extra)?;
    Ok(requested)
}

#[allow(clippy::result_large_err)]
fn check_fields(requested: &[Field], spec_type: &str, extra: &[&str]) -> Result<(), Response> {
    let known = object_fields(spec_type);
    for f in requested {
        if !known.contains(&f.name.as_str()) && !extra.contains(&f.name.as_str()) {
            return Err(bad_param(&format!(
                "(#100) Tried accessing nonexisting field ({}) on node type ({spec_type})",
                f.name
            )));
        }
        if let Some(sub) = &f.sub {
            let sub_type = match f.name.as_str() {
                "instagram_business_account" | "owner" => "IGUser",
                _ => {
                    return Err(bad_param(&format!(
                        "(#100) Field {} takes no subfields (in the fake)",
                        f.name
                    )));
                }
            };
            check_fields(sub, sub_type, &[])?;
        }
    }
    Ok(())
}

fn wants(f: &[Field], name: &str) -> bool {
    f.iter().any(|x| x.name == name)
}

fn http_url(v: &str) -> bool {
    (v.starts_with("https://") || v.starts_with("http://")) && v.len() > "https://".len()
}

/// Unix seconds (the fake's form of a spec `datetime`).
fn unix_param(p: &Params, key: &str) -> Result<Option<i64>, String> {
    match p.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("(#100) Param {key} must be a Unix timestamp (the fake's form)")),
    }
}

/// A page of rows, newest first, with Graph's `paging.cursors` (opaque: base64 of the id).
#[allow(clippy::result_large_err)]
fn paginate(
    p: &Params,
    ids: &[String],
    rows: Vec<Value>,
    next_base: &str,
) -> Result<Value, Response> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let limit = match p.get("limit").map(str::parse::<usize>) {
        None => 25,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => {
            return Err(bad_param(
                "(#100) Param limit must be a number from 1 to 100",
            ));
        }
    };
    let start = match p.get("after") {
        None => 0,
        Some(c) => {
            let id = b64
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad_param("(#100) Invalid cursor"))?;
            ids.iter()
                .position(|x| *x == id)
                .map(|i| i + 1)
                .ok_or_else(|| bad_param("(#100) Invalid cursor"))?
        }
    };
    let end = (start + limit).min(ids.len());
    let data: Vec<Value> = rows[start.min(rows.len())..end].to_vec();
    let mut paging = json!({});
    if start < end {
        let before = b64.encode(&ids[start]);
        let after = b64.encode(&ids[end - 1]);
        paging["cursors"] = json!({ "before": before, "after": after });
        if end < ids.len() {
            paging["next"] = json!(format!("{next_base}?limit={limit}&after={after}"));
        }
    }
    Ok(json!({ "data": data, "paging": paging }))
}

/// A plain-HTTP GET (no TLS): what the fake's media fetching knob uses. Returns the status.
async fn fetch_status(url: &str) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or("the fake fetches plain http:// URLs only")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let io = async {
        let mut s = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| e.to_string())?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: facebookexternalhit/1.1\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).into_owned();
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: {head:?}"))
    };
    tokio::time::timeout(Duration::from_secs(30), io)
        .await
        .map_err(|_| "timed out".to_owned())?
}

// ---------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------

/// Every request: `/{version}/...`. Graph calls get the usage headers and the injected
/// throttles and outages; the login dialog and token calls do not.
async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let (version, fetch_on) = {
        let s = state.lock().unwrap();
        (s.version.clone(), s.fetch_media)
    };
    if segs.first().map(String::as_str) == Some(UPLOAD_PATH) {
        return rupload(&state, &method, &segs, &headers, &body, &version, fetch_on).await;
    }
    if segs.first() != Some(&version) || !(2..=3).contains(&segs.len()) {
        return err(
            2500,
            None,
            "OAuthException",
            &format!("Unknown path components: {path}"),
        );
    }
    let rest: Vec<&str> = segs[1..].iter().map(String::as_str).collect();
    let p = match read_params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match (&method, rest.as_slice()) {
        (&Method::GET, ["dialog", "oauth"]) => return dialog(&state, &p),
        (_, ["dialog", "oauth"]) => return no_object(&method, "dialog"),
        (&Method::GET, ["oauth", "access_token"]) => return oauth_access_token(&state, &p),
        (_, ["oauth", "access_token"]) => return no_object(&method, "oauth"),
        _ => {}
    }
    // Instagram and Facebook fetch media by URL: with the knob on, fetch before taking the lock.
    let mut fetched = HashMap::new();
    if fetch_on && method == Method::POST && matches!(rest.get(1), Some(&"media" | &"photos")) {
        for key in ["image_url", "video_url", "url"] {
            if let Some(u) = p.get(key) {
                fetched.insert(u.to_owned(), fetch_status(u).await);
            }
        }
    }
    let token =
        crate::common::bearer(&headers).or_else(|| p.get("access_token").map(str::to_owned));
    let mut s = state.lock().unwrap();
    s.graph_calls += 1;
    let object = business_object(&s, rest[0]);
    if let Some(injected) = s.injected.pop_front() {
        return match injected {
            Injected::Throttle(t) => throttled(t, object),
            // "2 | API Service" ("Handling Errors"); HTTP 500 is the fake's choice.
            Injected::Transient => json(
                500,
                graph_error(
                    2,
                    None,
                    "OAuthException",
                    "An unexpected error has occurred. Please retry your request later.",
                    true,
                    None,
                ),
            ),
        };
    }
    let mut r = graph_call(&mut s, &method, &rest, &p, token.as_deref(), &fetched);
    set_header(&mut r, "x-app-usage", &app_usage_header(s.app_usage));
    if let Some((id, kind)) = object {
        let u = s.app_usage;
        set_header(
            &mut r,
            "x-business-use-case-usage",
            &buc_header(&id, kind, u.call_count, 0),
        );
    }
    r
}

/// The business object a call is about, for `X-Business-Use-Case-Usage`: a Page (`pages`) or an
/// Instagram account (`instagram`).
fn business_object(s: &Inner, node: &str) -> Option<(String, &'static str)> {
    if s.page(node).is_some() {
        return Some((node.to_owned(), "pages"));
    }
    if s.ig(node).is_some() {
        return Some((node.to_owned(), "instagram"));
    }
    if let Some(c) = s.containers.get(node) {
        return Some((c.ig_user_id.clone(), "instagram"));
    }
    if let Some(m) = s.media.iter().find(|m| m.id == node) {
        return Some((m.ig_user_id.clone(), "instagram"));
    }
    let page = s
        .posts
        .iter()
        .find(|x| x.id == node)
        .map(|x| x.page_id.clone())
        .or_else(|| s.photos.get(node).map(|x| x.page_id.clone()))
        .or_else(|| s.videos.get(node).map(|x| x.page_id.clone()))?;
    Some((page, "pages"))
}

fn graph_call(
    s: &mut Inner,
    method: &Method,
    rest: &[&str],
    p: &Params,
    token: Option<&str>,
    fetched: &HashMap<String, Result<u16, String>>,
) -> Response {
    let tok = match authenticate(s, token) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let node = rest[0];
    let is_me = node == "me" || node == USER_ID;
    match (method.clone(), rest) {
        (Method::GET, [_]) if is_me && !matches!(tok.kind, TokenKind::Page(_)) => read_user(p),
        (Method::GET, [_]) if is_me => {
            let TokenKind::Page(page) = &tok.kind else {
                unreachable!()
            };
            let page = page.clone();
            read_page(s, &tok, &page, p)
        }
        (Method::GET, [_]) => read_node(s, &tok, node, p, method),
        (Method::GET, [_, "accounts"]) if is_me => accounts(s, &tok, p),
        (Method::GET, [_, edge @ ("posts" | "published_posts" | "feed")])
            if s.page(node).is_some() =>
        {
            list_page_posts(s, &tok, node, edge, p)
        }
        (Method::POST, [_, "feed"]) if s.page(node).is_some() => create_feed_post(s, &tok, node, p),
        (Method::POST, [_, "photos"]) if s.page(node).is_some() => {
            upload_photo(s, &tok, node, p, fetched)
        }
        (Method::POST, [_, "videos"]) if s.page(node).is_some() => upload_video(s, &tok, node, p),
        (Method::POST, [_, "media"]) if s.ig(node).is_some() => {
            create_container(s, &tok, node, p, fetched)
        }
        (Method::POST, [_, "media_publish"]) if s.ig(node).is_some() => {
            media_publish(s, &tok, node, p)
        }
        (Method::GET, [_, "content_publishing_limit"]) if s.ig(node).is_some() => {
            publishing_limit(s, &tok, node, p)
        }
        (Method::GET, [_, "media"]) if s.ig(node).is_some() => list_media(s, &tok, node, p, false),
        (Method::GET, [_, "stories"]) if s.ig(node).is_some() => list_media(s, &tok, node, p, true),
        (Method::GET, [_, "videos"]) if s.page(node).is_some() => list_videos(s, &tok, node, p),
        (Method::POST, [_, "video_reels"]) if s.page(node).is_some() => {
            video_session(s, &tok, node, p, VideoKind::Reel)
        }
        (Method::POST, [_, "video_stories"]) if s.page(node).is_some() => {
            video_session(s, &tok, node, p, VideoKind::Story)
        }
        (Method::GET, [_, "video_reels"]) if s.page(node).is_some() => list_reels(s, &tok, node, p),
        (Method::POST, [_, "photo_stories"]) if s.page(node).is_some() => {
            photo_story(s, &tok, node, p)
        }
        (Method::GET, [_, "stories"]) if s.page(node).is_some() => list_stories(s, &tok, node, p),
        _ => no_object(method, node),
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens and access
// ---------------------------------------------------------------------------------------------

/// The token of a Graph call, checked. Codes and subcodes from Graph API "Handling Errors":
/// "190 | Access token has expired", subcodes "458 | App Not Installed", "460 | Password
/// Changed", "463 | Expired", "467 | Invalid Access Token", "492 | Invalid Session" ("User
/// associated with the Page access token does not have an appropriate role on the Page").
#[allow(clippy::result_large_err)]
fn authenticate(s: &Inner, token: Option<&str>) -> Result<IssuedToken, Response> {
    let Some(t) = token else {
        // Not in the table; the live API's answer to a call with no token (the fake's choice).
        return Err(err(
            104,
            None,
            "OAuthException",
            "An access token is required to request this resource.",
        ));
    };
    let Some(tok) = s.tokens.iter().find(|x| x.token == t) else {
        return Err(err(
            190,
            None,
            "OAuthException",
            "Invalid OAuth access token - Cannot parse access token",
        ));
    };
    if let Some(sub) = tok.revoked {
        let message = match sub {
            458 => "Error validating access token: The user has not authorized application.",
            459 => {
                "Error validating access token: You cannot access the app till you log in to www.facebook.com and follow the instructions given."
            }
            460 => {
                "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."
            }
            464 => {
                "Error validating access token: Sessions for the user are not allowed because the user is not a confirmed user."
            }
            _ => "Error validating access token: The session is invalid.",
        };
        return Err(err(190, Some(sub), "OAuthException", message));
    }
    if let Some(exp) = tok.expires_at
        && exp <= SystemTime::now()
    {
        return Err(err(
            190,
            Some(463),
            "OAuthException",
            &format!(
                "Error validating access token: Session has expired on {}. The current time is {}.",
                iso(unix(exp)),
                iso(unix(SystemTime::now()))
            ),
        ));
    }
    if let TokenKind::Page(page) = &tok.kind
        && !s.page(page).is_some_and(|p| p.role)
    {
        return Err(err(
            190,
            Some(492),
            "OAuthException",
            "Error validating access token: User associated with the Page access token does not have an appropriate role on the Page.",
        ));
    }
    Ok(tok.clone())
}

/// Missing permissions: "10 | API Permission Denied" for reads and Instagram calls; "200-299 |
/// API Permission" for Page publishing ("Handling Errors").
#[allow(clippy::result_large_err)]
fn need(s: &Inner, permissions: &[&str], code: i64) -> Result<(), Response> {
    for p in permissions {
        if !s.has(p) {
            let message = if code == 200 {
                format!(
                    "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission (missing {p})"
                )
            } else {
                format!("(#10) Application does not have permission for this action ({p})")
            };
            return Err(err(code, None, "OAuthException", &message));
        }
    }
    Ok(())
}

/// The token can read this Page: the Page's own token, or a user token of someone with a role.
fn can_see_page(s: &Inner, tok: &IssuedToken, page_id: &str) -> bool {
    let Some(page) = s.page(page_id) else {
        return false;
    };
    match &tok.kind {
        TokenKind::Page(p) => p == page_id,
        _ => page.role,
    }
}

/// An Instagram account is reached through the Page it is linked to.
fn can_see_ig(s: &Inner, tok: &IssuedToken, ig_user_id: &str) -> bool {
    s.ig(ig_user_id)
        .is_some_and(|a| can_see_page(s, tok, &a.page_id))
}

fn can_create(page: &Page) -> bool {
    page.tasks
        .iter()
        .any(|t| t == "CREATE_CONTENT" || t == "MANAGE")
}

/// Page publishing takes the Page's own token with `pages_manage_posts` and
/// `pages_read_engagement` (Pages API "Posts", whose task list is "`CREATE_CONTENT`, `MANAGE`,
/// and `MODERATE`"; the fake asks for CREATE_CONTENT or MANAGE). A user token or another
/// Page's token gets code 200, in "200-299 | API Permission" (the fake's choice of message).
#[allow(clippy::result_large_err)]
fn page_publisher(
    s: &Inner,
    tok: &IssuedToken,
    page_id: &str,
    extra: &[&str],
) -> Result<(), Response> {
    let mut perms = vec!["pages_manage_posts", "pages_read_engagement"];
    perms.extend_from_slice(extra);
    need(s, &perms, 200)?;
    let page = s.page(page_id).unwrap();
    if tok.kind != TokenKind::Page(page_id.to_owned()) || !page.role || !can_create(page) {
        return Err(err(
            200,
            None,
            "OAuthException",
            "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Facebook Login
// ---------------------------------------------------------------------------------------------

fn redirect(location: String) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location)
        .body(Body::empty())
        .unwrap()
}

/// The login dialog ("Manually Build a Login Flow"): `client_id`, `redirect_uri`, `state`
/// ("passed back to you, unchanged") required; `response_type` "`code`" is "the default
/// behavior if this parameter is not specified"; `scope` "A comma or space separated list of
/// Permissions". Cancelled: `?error_reason=user_denied&error=access_denied&error_description=
/// Permissions+error.` Facebook Login for Business may send `config_id` instead of `scope` (not
/// verified against Meta's pages; the fake grants [`PUBLISHING_PERMISSIONS`] for it).
fn dialog(state: &Shared, p: &Params) -> Response {
    let mut s = state.lock().unwrap();
    if p.get("client_id") != Some(CLIENT_ID) {
        return err(101, None, "OAuthException", "Invalid App ID");
    }
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return bad_param("redirect_uri is required.");
    };
    if !s.redirect_uris.iter().any(|r| r == redirect_uri) {
        return err(
            191,
            None,
            "OAuthException",
            "Can't Load URL: The domain of this URL isn't included in the app's domains.",
        );
    }
    let Some(st) = p.get("state") else {
        return bad_param("state is required.");
    };
    if !matches!(p.get("response_type"), None | Some("code")) {
        return bad_param("The fake supports response_type=code only.");
    }
    let permissions: Vec<String> = match (p.get("scope"), p.get("config_id")) {
        (Some(scope), _) => scope
            .split([',', ' '])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, Some(_)) => PUBLISHING_PERMISSIONS
            .iter()
            .map(|x| x.to_string())
            .collect(),
        (None, None) => vec!["public_profile".into()],
    };
    if let Some(bad) = permissions
        .iter()
        .find(|x| !KNOWN_PERMISSIONS.contains(&x.as_str()))
    {
        return bad_param(&format!("Invalid Scopes: {bad}"));
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    if std::mem::take(&mut s.deny_next_login) {
        return redirect(format!(
            "{redirect_uri}{sep}error_reason=user_denied&error=access_denied&error_description=Permissions+error.&state={}",
            encode(st)
        ));
    }
    let code = token("AQ");
    s.codes.insert(
        code.clone(),
        Code {
            redirect_uri: redirect_uri.to_owned(),
            permissions,
            issued: SystemTime::now(),
            used: false,
        },
    );
    // Facebook appends `#_=_` to the redirect (observed; harmless to a server).
    redirect(format!(
        "{redirect_uri}{sep}code={}&state={}#_=_",
        encode(&code),
        encode(st)
    ))
}

/// `GET /{v}/oauth/access_token`.
/// - Code: `?client_id={app-id}&redirect_uri={redirect-uri}&client_secret={app-secret}&code=
///   {code-parameter}` → `{"access_token": {access-token}, "token_type": {type},
///   "expires_in": {seconds-til-expiration}}`; "`redirect_uri` ... must be the same as the
///   original `request_uri`" (Manually Build a Login Flow).
/// - Long-lived: `?grant_type=fb_exchange_token&client_id={app-id}&client_secret={app-secret}
///   &fb_exchange_token={your-access-token}` → `{"access_token":"{long-lived-user-access-token}",
///   "token_type": "bearer","expires_in": 5183944}`; "You can not use an expired token to
///   request a long-lived token." (Get Long-Lived Tokens).
fn oauth_access_token(state: &Shared, p: &Params) -> Response {
    let mut s = state.lock().unwrap();
    if p.get("client_id") != Some(CLIENT_ID) {
        return err(
            101,
            None,
            "OAuthException",
            "Error validating application. Invalid application ID.",
        );
    }
    if p.get("client_secret") != Some(CLIENT_SECRET) {
        return err(1, None, "OAuthException", "Error validating client secret.");
    }
    if let Some(grant) = p.get("grant_type") {
        if grant != "fb_exchange_token" {
            return bad_param("Unsupported grant_type (the fake takes fb_exchange_token).");
        }
        let tok = match authenticate(&s, p.get("fb_exchange_token")) {
            Ok(t) => t,
            Err(r) => return r,
        };
        if matches!(tok.kind, TokenKind::Page(_)) {
            return bad_param("fb_exchange_token takes a user access token (in the fake).");
        }
        let t = s.issue(
            TokenKind::UserLong,
            Some(Duration::from_secs(LONG_LIVED_EXPIRES_IN)),
        );
        s.exchange_calls += 1;
        return json(
            200,
            json!({ "access_token": t, "token_type": "bearer", "expires_in": LONG_LIVED_EXPIRES_IN }),
        );
    }
    let (Some(code), Some(redirect_uri)) = (p.get("code"), p.get("redirect_uri")) else {
        return bad_param("code and redirect_uri are required.");
    };
    let Some(grant) = s.codes.get_mut(code) else {
        return err(
            100,
            None,
            "OAuthException",
            "Invalid verification code format.",
        );
    };
    if grant.used {
        return err(
            100,
            Some(36009),
            "OAuthException",
            "This authorization code has been used.",
        );
    }
    if grant.issued + CODE_TTL <= SystemTime::now() {
        return err(
            100,
            Some(36007),
            "OAuthException",
            "This authorization code has expired.",
        );
    }
    if grant.redirect_uri != redirect_uri {
        return err(
            100,
            None,
            "OAuthException",
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
        );
    }
    grant.used = true;
    s.granted = grant.permissions.clone();
    let t = s.issue(TokenKind::UserShort, Some(SHORT_LIVED));
    json(
        200,
        json!({ "access_token": t, "token_type": "bearer", "expires_in": SHORT_LIVED.as_secs() }),
    )
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

fn read_user(p: &Params) -> Response {
    if let Err(r) = check_params(p, "User", "GET", "#get") {
        return r;
    }
    let f = match fields(p, "User", &[], &["name", "id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(USER_ID));
    if wants(&f, "name") {
        o.insert("name".into(), json!(USER_NAME));
    }
    json(200, Value::Object(o))
}

fn ig_json(a: &IgAccount, f: &[Field]) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(a.id));
    for x in f {
        let v = match x.name.as_str() {
            "username" => json!(a.username),
            "name" => json!(a.name),
            "profile_picture_url" => json!(format!(
                "https://scontent.cdninstagram.com/fake/{}/profile.jpg",
                a.id
            )),
            _ => continue,
        };
        o.insert(x.name.clone(), v);
    }
    Value::Object(o)
}

/// A Page row. `instagram_business_account` answers `{"id": "…"}` (or the requested subfields)
/// and is absent when no Instagram account is linked (Instagram Platform, Page reference:
/// `{"instagram_business_account": {"id": "…"}, "id": "…"}`).
fn page_json(s: &mut Inner, tok: &IssuedToken, page_id: &str, f: &[Field]) -> Value {
    let page = s.page(page_id).unwrap().clone();
    let mut o = serde_json::Map::new();
    for x in f {
        let v = match x.name.as_str() {
            "id" => json!(page.id),
            "name" => json!(page.name),
            "category" => json!(page.category),
            "tasks" => json!(page.tasks),
            "access_token" => match &tok.kind {
                TokenKind::Page(_) => json!(tok.token),
                _ => json!(s.page_token_for(tok, page_id)),
            },
            "instagram_business_account" => {
                let Some(a) = page.ig_user_id.as_deref().and_then(|id| s.ig(id)) else {
                    continue;
                };
                let default = [Field {
                    name: "id".into(),
                    sub: None,
                }];
                ig_json(a, x.sub.as_deref().unwrap_or(&default))
            }
            _ => continue,
        };
        o.insert(x.name.clone(), v);
    }
    o.entry("id").or_insert_with(|| json!(page.id));
    Value::Object(o)
}

fn read_page(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", "#get") {
        return r;
    }
    let f = match fields(p, "Page", &[], &["name", "id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    // Page reference (Instagram Platform): `instagram_basic`, `pages_show_list`.
    let mut perms = vec!["pages_show_list"];
    if wants(&f, "instagram_business_account") {
        perms.push("instagram_basic");
    }
    if let Err(r) = need(s, &perms, 10) {
        return r;
    }
    json(200, page_json(s, tok, page_id, &f))
}

/// `GET /me/accounts`: "Pages the User has a role on". Without `pages_show_list` the list is
/// empty (the fake's choice: Graph lists what the grant lets it see).
fn accounts(s: &mut Inner, tok: &IssuedToken, p: &Params) -> Response {
    if matches!(tok.kind, TokenKind::Page(_)) {
        return err(
            100,
            None,
            "OAuthException",
            "(#100) Tried accessing nonexisting field (accounts) on node type (Page)",
        );
    }
    if let Err(r) = check_params(p, "User", "GET", "accounts") {
        return r;
    }
    let f = match fields(
        p,
        "Page",
        &["tasks"],
        &["access_token", "category", "name", "id", "tasks"],
    ) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if wants(&f, "instagram_business_account")
        && let Err(r) = need(s, &["instagram_basic"], 10)
    {
        return r;
    }
    let ids: Vec<String> = if s.has("pages_show_list") {
        s.pages
            .iter()
            .filter(|x| x.role)
            .map(|x| x.id.clone())
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = ids.iter().map(|id| page_json(s, tok, id, &f)).collect();
    match paginate(p, &ids, rows, &format!("/{}/me/accounts", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

fn read_node(
    s: &mut Inner,
    tok: &IssuedToken,
    node: &str,
    p: &Params,
    method: &Method,
) -> Response {
    if s.page(node).is_some() {
        return read_page(s, tok, node, p);
    }
    if let Some(a) = s.ig(node).cloned() {
        if !can_see_ig(s, tok, node) {
            return no_object(method, node);
        }
        if let Err(r) = check_params(p, "IGUser", "GET", "#get") {
            return r;
        }
        let f = match fields(p, "IGUser", &[], &["id"]) {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Err(r) = need(s, &["instagram_basic"], 10) {
            return r;
        }
        return json(200, ig_json(&a, &f));
    }
    if let Some(c) = s.containers.get(node).cloned() {
        if !can_see_ig(s, tok, &c.ig_user_id) {
            return no_object(method, node);
        }
        return read_container(s, c, p);
    }
    if let Some(m) = s.media.iter().find(|m| m.id == node).cloned() {
        if !can_see_ig(s, tok, &m.ig_user_id) {
            return no_object(method, node);
        }
        if let Err(r) = check_params(p, "IGMedia", "GET", "#get") {
            return r;
        }
        let f = match fields(p, "IGMedia", &[], &["id"]) {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Err(r) = need_media_read(s) {
            return r;
        }
        return json(200, media_json(s, &m, &f));
    }
    if let Some(post) = s.posts.iter().find(|x| x.id == node).cloned() {
        if !can_see_page(s, tok, &post.page_id) {
            return no_object(method, node);
        }
        if let Err(r) = check_params(p, "PagePost", "GET", "#get") {
            return r;
        }
        let f = match fields(p, "PagePost", &[], &["created_time", "message", "id"]) {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Err(r) = need(s, &["pages_read_engagement"], 10) {
            return r;
        }
        return json(200, post_json(&post, &f));
    }
    if let Some(ph) = s.photos.get(node).cloned() {
        if !can_see_page(s, tok, &ph.page_id) {
            return no_object(method, node);
        }
        if let Err(r) = check_params(p, "Photo", "GET", "#get") {
            return r;
        }
        let f = match fields(p, "Photo", &[], &["created_time", "id"]) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let mut o = serde_json::Map::new();
        o.insert("id".into(), json!(ph.id));
        if wants(&f, "created_time") {
            o.insert("created_time".into(), json!(iso(ph.created_time)));
        }
        return json(200, Value::Object(o));
    }
    if let Some(v) = s.videos.get(node).cloned() {
        if !can_see_page(s, tok, &v.page_id) {
            return no_object(method, node);
        }
        return read_video(s, v, p);
    }
    no_object(method, node)
}

/// IG media reads: `instagram_basic` and `pages_read_engagement` ("or `pages_show_list`").
#[allow(clippy::result_large_err)]
fn need_media_read(s: &Inner) -> Result<(), Response> {
    need(s, &["instagram_basic"], 10)?;
    if !s.has("pages_read_engagement") && !s.has("pages_show_list") {
        return need(s, &["pages_read_engagement"], 10);
    }
    Ok(())
}

/// `GET /{container-id}?fields=status_code,status`. IG Container reference: `status_code`
/// "`EXPIRED` — The container was not published within 24 hours and has expired. `ERROR` — The
/// container failed to complete the publishing process. `FINISHED` — The container and its
/// media object are ready to be published. `IN_PROGRESS` — The container is still in the
/// publishing process. `PUBLISHED` — The container's media object has been published."
/// `status`: "Publishing status. If `status_code` is `ERROR`, this value will be an error
/// subcode." (so the fake answers the subcode alone, e.g. `"2207052"`; for the other states
/// it answers the state in words, which the documentation does not fix).
fn read_container(s: &mut Inner, c: Container, p: &Params) -> Response {
    if let Err(r) = check_params(p, "ShadowIGMediaBuilder", "GET", "#get") {
        return r;
    }
    let f = match fields(p, "ShadowIGMediaBuilder", &[], &["id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["instagram_basic", "pages_read_engagement"], 10) {
        return r;
    }
    let (code, sub) = s.container_status(&c);
    s.status_reads += 1;
    if let Some(x) = s.containers.get_mut(&c.id)
        && x.polls_left > 0
    {
        x.polls_left -= 1;
    }
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(c.id));
    if wants(&f, "status_code") {
        o.insert("status_code".into(), json!(code));
    }
    if wants(&f, "status") {
        let status = match (code, sub) {
            ("ERROR", Some(sub)) => sub.to_string(),
            ("FINISHED", _) => "Finished".into(),
            ("IN_PROGRESS", _) => "In Progress".into(),
            ("PUBLISHED", _) => "Published".into(),
            _ => "Expired".into(),
        };
        o.insert("status".into(), json!(status));
    }
    json(200, Value::Object(o))
}

/// `GET /{video-id}?fields=status`: `{"status":{"video_status","uploading_phase":{"status"},
/// "processing_phase":{"status"},"publishing_phase":{"status"}}}`; `video_status` one of
/// `error`, `expired`, `processing`, `ready`, `uploading`, `upload_failed`, `upload_complete`;
/// phase `status` `completed`, `error`, `not_started`, `in_progress`, though the examples write
/// `complete`, which the fake answers (a client should take both). Errors are the spec's
/// `processing_phase.errors[] {code, message}` (`VideoStatusProcessingPhase`).
/// A video's fields other than `status`.
fn video_json(v: &Video, f: &[Field]) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(v.id));
    for x in f {
        let val = match x.name.as_str() {
            "description" => match &v.description {
                Some(d) => json!(d),
                None => continue,
            },
            "title" => match &v.title {
                Some(t) => json!(t),
                None => continue,
            },
            "created_time" => json!(iso(v.created_time)),
            "permalink_url" => json!(format!("/{}/videos/{}/", v.page_id, v.id)),
            "published" => json!(v.published),
            _ => continue,
        };
        o.insert(x.name.clone(), val);
    }
    Value::Object(o)
}

/// A video's `status` object. Before a reel or story's file arrives: `video_status`
/// `uploading`, every phase `not_started` (the fake's choice; the Stories guide lists
/// `video_status` "`ready`, `processing`, `expired`, or `error`" and phase statuses
/// "`in_progress`, `not_started`, `complete`, or `error`"). `publishing_phase.publish_status`:
/// "`published` or `not_published`" (Stories guide; a spec field). The guide's
/// `uploading_phase.bytes_transfered` and `publishing_phase.publish_time` ("a UNIX timestamp",
/// a `datetime` in the spec) are not answered.
fn video_status(s: &Inner, v: &Video) -> Value {
    let publish_status = if v.published && s.video_ready(&v.id) {
        "published"
    } else {
        "not_published"
    };
    if !v.uploaded {
        return json!({
            "video_status": "uploading",
            "uploading_phase": { "status": "not_started" },
            "processing_phase": { "status": "not_started" },
            "publishing_phase": { "status": "not_started", "publish_status": publish_status },
        });
    }
    if let Some((code, message)) = &v.failure {
        return json!({
            "video_status": "error",
            "uploading_phase": { "status": "complete" },
            "processing_phase": {
                "status": "error",
                "errors": [{ "code": code, "message": message }],
            },
            "publishing_phase": { "status": "not_started", "publish_status": publish_status },
        });
    }
    if v.polls_left > 0 {
        return json!({
            "video_status": "processing",
            "uploading_phase": { "status": "complete" },
            "processing_phase": { "status": "in_progress" },
            "publishing_phase": { "status": "not_started", "publish_status": publish_status },
        });
    }
    json!({
        "video_status": "ready",
        "uploading_phase": { "status": "complete" },
        "processing_phase": { "status": "complete" },
        "publishing_phase": {
            "status": if v.published { "complete" } else { "not_started" },
            "publish_status": publish_status,
        },
    })
}

fn read_video(s: &mut Inner, v: Video, p: &Params) -> Response {
    if let Err(r) = check_params(p, "AdVideo", "GET", "#get") {
        return r;
    }
    let f = match fields(p, "AdVideo", &[], &["id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    let mut o = match video_json(&v, &f) {
        Value::Object(o) => o,
        _ => unreachable!(),
    };
    for x in &f {
        let val = match x.name.as_str() {
            "status" => {
                s.video_status_reads += 1;
                let st = video_status(s, &v);
                // Processing is counted in reads once the file has arrived.
                if let Some(x) = s.videos.get_mut(&v.id)
                    && x.uploaded
                    && x.polls_left > 0
                {
                    x.polls_left -= 1;
                }
                st
            }
            _ => continue,
        };
        o.insert(x.name.clone(), val);
    }
    json(200, Value::Object(o))
}

fn permalink(m_product: &str, shortcode: &str, username: &str, id: &str) -> String {
    match m_product {
        "REELS" => format!("https://www.instagram.com/reel/{shortcode}/"),
        "STORY" => format!("https://www.instagram.com/stories/{username}/{id}/"),
        _ => format!("https://www.instagram.com/p/{shortcode}/"),
    }
}

fn media_json(s: &Inner, m: &IgMedia, f: &[Field]) -> Value {
    let account = s.ig(&m.ig_user_id);
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(m.id));
    for x in f {
        let v = match x.name.as_str() {
            "caption" => match &m.caption {
                Some(c) => json!(c),
                None => continue,
            },
            "timestamp" => json!(iso(m.timestamp)),
            "permalink" => json!(m.permalink),
            "media_type" => json!(m.media_type),
            "media_product_type" => json!(m.media_product_type),
            "shortcode" => json!(m.shortcode),
            "username" => json!(account.map(|a| a.username.clone())),
            "media_url" => match &m.media_url {
                Some(u) => json!(u),
                None => continue,
            },
            "owner" => {
                let Some(a) = account else { continue };
                let default = [Field {
                    name: "id".into(),
                    sub: None,
                }];
                ig_json(a, x.sub.as_deref().unwrap_or(&default))
            }
            _ => continue,
        };
        o.insert(x.name.clone(), v);
    }
    Value::Object(o)
}

fn post_json(post: &PagePost, f: &[Field]) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(post.id));
    for x in f {
        let v = match x.name.as_str() {
            "message" => match &post.message {
                Some(m) => json!(m),
                None => continue,
            },
            "created_time" => json!(iso(post.created_time)),
            // "Page post URL https://www.facebook.com/{page_post_id}".
            "permalink_url" => json!(format!("https://www.facebook.com/{}", post.id)),
            _ => continue,
        };
        o.insert(x.name.clone(), v);
    }
    Value::Object(o)
}

/// `GET /{page-id}/posts|published_posts|feed?fields=id,message,created_time,permalink_url`,
/// newest first. Documented response: `{"data":[{"created_time":"2019-01-02T18:31:28+0000",
/// "message":…,"id":…}]}` (Pages API "Posts"), with `paging.cursors`.
fn list_page_posts(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    edge: &str,
    p: &Params,
) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", edge) {
        return r;
    }
    let f = match fields(p, "PagePost", &[], &["created_time", "message", "id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    let posts: Vec<PagePost> = s.visible_posts(page_id).into_iter().cloned().collect();
    let ids: Vec<String> = posts.iter().map(|x| x.id.clone()).collect();
    let rows = posts.iter().map(|x| post_json(x, &f)).collect();
    match paginate(p, &ids, rows, &format!("/{}/{page_id}/{edge}", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// `GET /{ig-user-id}/media`: "Returns a maximum of 10K of the most recently created media";
/// `since`/`until`; "Story IG Media not supported, use ... `/stories`". `GET /{ig-user-id}/
/// stories`: the stories, while live (24 hours; the notes' inference), newest first.
fn list_media(s: &mut Inner, tok: &IssuedToken, ig: &str, p: &Params, stories: bool) -> Response {
    if !can_see_ig(s, tok, ig) {
        return no_object(&Method::GET, ig);
    }
    let edge = if stories { "stories" } else { "media" };
    if let Err(r) = check_params(p, "IGUser", "GET", edge) {
        return r;
    }
    let f = match fields(p, "IGMedia", &[], &["id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need_media_read(s) {
        return r;
    }
    let (since, until) = match (unix_param(p, "since"), unix_param(p, "until")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let media: Vec<IgMedia> = s
        .media
        .iter()
        .rev()
        .filter(|m| m.ig_user_id == ig && (m.media_product_type == "STORY") == stories)
        .filter(|m| !stories || m.timestamp > unix(SystemTime::now()) - 86_400)
        .filter(|m| since.is_none_or(|a| m.timestamp >= a))
        .filter(|m| until.is_none_or(|b| m.timestamp <= b))
        .cloned()
        .collect();
    let ids: Vec<String> = media.iter().map(|m| m.id.clone()).collect();
    let rows = media.iter().map(|m| media_json(s, m, &f)).collect();
    match paginate(p, &ids, rows, &format!("/{}/{ig}/{edge}", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// `GET /{page-id}/videos?fields=id,description,created_time,permalink_url`: the Page's videos,
/// newest first (the reconciliation for videos in `docs/research/meta-graph-api.md`).
fn list_videos(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", "videos") {
        return r;
    }
    let f = match fields(p, "AdVideo", &[], &["id", "created_time", "description"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if wants(&f, "status") {
        return bad_param("(#100) Read a video's status from the video node (in the fake)");
    }
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    // Reels once published (and processed) are videos of the Page too; story videos and reel
    // sessions are not listed (the fake's choice: the guides do not say).
    let mut videos: Vec<Video> = s
        .videos
        .values()
        .filter(|v| v.page_id == page_id)
        .filter(|v| match v.kind {
            VideoKind::Video => true,
            VideoKind::Reel => v.published && s.video_ready(&v.id),
            VideoKind::Story => false,
        })
        .cloned()
        .collect();
    videos.sort_by(|a, b| (b.created_time, &b.id).cmp(&(a.created_time, &a.id)));
    let ids: Vec<String> = videos.iter().map(|v| v.id.clone()).collect();
    let rows = videos.iter().map(|v| video_json(v, &f)).collect();
    match paginate(p, &ids, rows, &format!("/{}/{page_id}/videos", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// `GET /{ig-user-id}/content_publishing_limit?fields=config,quota_usage[&since=…]` →
/// `{"data":[{"quota_usage": 2, "config": {"quota_total": 50, "quota_duration": 86400}}]}`;
/// `quota_usage` is returned by default; `since` no older than 24 hours (IG User Content
/// Publishing Limit reference). The envelope and `config` keys are not in the specs (`config`
/// is typed `Object`).
fn publishing_limit(s: &mut Inner, tok: &IssuedToken, ig: &str, p: &Params) -> Response {
    if !can_see_ig(s, tok, ig) {
        return no_object(&Method::GET, ig);
    }
    if let Err(r) = check_params(p, "IGUser", "GET", "content_publishing_limit") {
        return r;
    }
    let f = match fields(p, "ContentPublishingLimitResponse", &[], &["quota_usage"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["instagram_basic", "instagram_content_publish"], 10) {
        return r;
    }
    let now = unix(SystemTime::now());
    let window_start = now - QUOTA_DURATION as i64;
    let since = match unix_param(p, "since") {
        Ok(v) => v,
        Err(e) => return bad_param(&e),
    };
    if since.is_some_and(|x| x < window_start || x > now) {
        return bad_param("(#100) Param since must be a Unix timestamp within the last 24 hours");
    }
    let usage = s.api_publishes_since(ig, since.unwrap_or(window_start).max(window_start));
    let mut row = serde_json::Map::new();
    if wants(&f, "quota_usage") {
        row.insert("quota_usage".into(), json!(usage));
    }
    if wants(&f, "config") {
        row.insert(
            "config".into(),
            json!({ "quota_total": s.quota_total, "quota_duration": QUOTA_DURATION }),
        );
    }
    json(200, json!({ "data": [Value::Object(row)] }))
}

// ---------------------------------------------------------------------------------------------
// Instagram content publishing
// ---------------------------------------------------------------------------------------------

/// IG content publishing needs `instagram_basic`, `instagram_content_publish` and
/// `pages_read_engagement` (IG User Media, Media Publish references), and "`MANAGE` or
/// `CREATE_CONTENT` tasks on the Page".
#[allow(clippy::result_large_err)]
fn ig_publisher(s: &Inner, tok: &IssuedToken, ig: &str) -> Result<(), Response> {
    if !can_see_ig(s, tok, ig) {
        return Err(no_object(&Method::POST, ig));
    }
    need(
        s,
        &[
            "instagram_basic",
            "instagram_content_publish",
            "pages_read_engagement",
        ],
        10,
    )?;
    let page = s.page(&s.ig(ig).unwrap().page_id).unwrap();
    if !can_create(page) {
        return Err(err(
            10,
            None,
            "OAuthException",
            "(#10) The user must have the MANAGE or CREATE_CONTENT task on the Page linked to this Instagram account",
        ));
    }
    Ok(())
}

/// Captions: "Maximum 2200 characters, 30 hashtags, and 20 @ tags" (IG User Media). Too long:
/// 36004/2207010; over 20 @ tags: 100/2207040 (Error Codes). The table has no row for more than
/// 30 hashtags: the fake answers code 100 without a subcode.
#[allow(clippy::result_large_err)]
fn check_caption(caption: &str) -> Result<(), Response> {
    if caption.chars().count() > 2200 {
        return Err(ig_err(2_207_010, None));
    }
    let words = || caption.split(|c: char| c.is_whitespace());
    if words()
        .filter(|w| w.starts_with('#') && w.len() > 1)
        .count()
        > 30
    {
        return Err(bad_param(
            "(#100) The caption has more than 30 hashtags (the fake's message; the limit is documented)",
        ));
    }
    if words()
        .filter(|w| w.starts_with('@') && w.len() > 1)
        .count()
        > 20
    {
        return Err(ig_err(2_207_040, None));
    }
    Ok(())
}

/// `POST /{ig-user-id}/media` → `{"id":"<IG_CONTAINER_ID>"}` (IG User Media reference; the
/// spec types the answer as `IGMedia`, the documentation shows only `id`).
fn create_container(
    s: &mut Inner,
    tok: &IssuedToken,
    ig: &str,
    p: &Params,
    fetched: &HashMap<String, Result<u16, String>>,
) -> Response {
    if let Err(r) = ig_publisher(s, tok, ig) {
        return r;
    }
    if let Err(r) = check_params(p, "IGUser", "POST", "media") {
        return r;
    }
    let bools = (p.bool("is_carousel_item"), p.bool("share_to_feed"));
    let (is_carousel_item, share_to_feed) = match bools {
        (Ok(a), Ok(b)) => (a.unwrap_or(false), b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let image_url = p.get("image_url").map(str::to_owned);
    let video_url = p.get("video_url").map(str::to_owned);
    let caption = p.get("caption").map(str::to_owned);
    let cover_url = p.get("cover_url").map(str::to_owned);
    for u in [&image_url, &video_url, &cover_url].into_iter().flatten() {
        if !http_url(u) {
            return bad_param(&format!("(#100) Param {u} is not a valid URL"));
        }
    }
    if let Some(c) = &caption
        && let Err(r) = check_caption(c)
    {
        return r;
    }
    let thumb_offset = match p.get("thumb_offset").map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        // "Thumbnail offset must be greater than or equal to 0 …" (1/2207057).
        Some(Err(_)) => return ig_err(2_207_057, None),
    };
    let collaborators = match p.list("collaborators") {
        Ok(v) => v,
        Err(e) => return bad_param(&e),
    };
    // `collaborators`: "up to 3", not for Stories.
    if collaborators.len() > 3 {
        return bad_param("(#100) Param collaborators takes up to 3 usernames");
    }
    // `trial_params`: "The `media_type` must be `REELS` if this parameter is included ...
    // `graduation_strategy` - **Required** ... either `MANUAL` or `SS_PERFORMANCE`".
    let trial_graduation = match p.get("trial_params") {
        None => None,
        Some(t) => {
            let Ok(Value::Object(o)) = serde_json::from_str::<Value>(t) else {
                return bad_param("(#100) Param trial_params must be a JSON object");
            };
            match o.get("graduation_strategy").and_then(Value::as_str) {
                Some(g @ ("MANUAL" | "SS_PERFORMANCE")) => Some(g.to_owned()),
                _ => {
                    return bad_param(
                        "(#100) trial_params.graduation_strategy must be MANUAL or SS_PERFORMANCE",
                    );
                }
            }
        }
    };
    let media_type = p.get("media_type");
    let kind = match (media_type, is_carousel_item) {
        // "`image_url`: For images only and required for images".
        (None, _) => {
            if image_url.is_none() || video_url.is_some() {
                return bad_param(
                    "(#100) The parameter image_url is required (a video takes media_type REELS, STORIES, or VIDEO in a carousel)",
                );
            }
            ContainerKind::Image
        }
        // Carousel items: "If the container will be for a video, set to `VIDEO`, `REELS`, or
        // `STORIES`"; "Reels cannot appear in carousels".
        (Some("VIDEO"), true) => ContainerKind::CarouselVideo,
        (Some("REELS"), false) => ContainerKind::Reel,
        (Some("STORIES"), false) => match (&image_url, &video_url) {
            (Some(_), None) => ContainerKind::StoryImage,
            (None, Some(_)) => ContainerKind::StoryVideo,
            // "Support either video URL or Reels URL but not both".
            _ => return bad_param("(#100) A story takes image_url or video_url, not both"),
        },
        (Some("CAROUSEL"), false) => ContainerKind::Carousel,
        // `VIDEO` is no longer accepted for single posts (since 9 Nov 2023), `IMAGE` never was.
        _ => return ig_err(2_207_023, None),
    };
    if matches!(kind, ContainerKind::CarouselVideo | ContainerKind::Reel) && video_url.is_none() {
        return bad_param("(#100) The parameter video_url is required for videos and reels");
    }
    if matches!(kind, ContainerKind::CarouselVideo | ContainerKind::Reel) && image_url.is_some() {
        return bad_param("(#100) A video container takes video_url, not image_url");
    }
    if kind != ContainerKind::Carousel && p.has("children") {
        return bad_param("(#100) children are for media_type CAROUSEL only");
    }
    if kind == ContainerKind::Carousel && (image_url.is_some() || video_url.is_some()) {
        return bad_param("(#100) A carousel container takes children, not media URLs");
    }
    // caption: "Not supported on images or videos in carousels" (refused: the fake's choice).
    if is_carousel_item && caption.is_some() {
        return bad_param("(#100) Carousel items take no caption; caption the carousel");
    }
    if kind != ContainerKind::Reel
        && (share_to_feed.is_some() || trial_graduation.is_some() || p.has("audio_name"))
    {
        return bad_param("(#100) share_to_feed, trial_params and audio_name are for reels only");
    }
    if !matches!(kind, ContainerKind::Reel)
        && (cover_url.is_some() || thumb_offset.is_some())
        && kind != ContainerKind::CarouselVideo
    {
        return bad_param("(#100) cover_url and thumb_offset are for videos only");
    }
    if matches!(kind, ContainerKind::StoryImage | ContainerKind::StoryVideo)
        && !collaborators.is_empty()
    {
        return bad_param("(#100) Stories take no collaborators");
    }
    let alt_text = p.get("alt_text").map(str::to_owned);
    if alt_text
        .as_deref()
        .is_some_and(|a| a.chars().count() > 1000)
    {
        return bad_param("(#100) alt_text takes up to 1000 characters");
    }
    let mut children = Vec::new();
    let mut error_subcode = s.fail_next_container.pop_front();
    if kind == ContainerKind::Carousel {
        children = match p.list("children") {
            Ok(v) => v,
            Err(e) => return bad_param(&e),
        };
        // "Carousels need at least 2 photos/videos and no more than 10" (100/2207028).
        if children.len() < 2 || children.len() > 10 {
            return ig_err(2_207_028, None);
        }
        for c in &children {
            let ok = s
                .containers
                .get(c)
                .is_some_and(|k| k.ig_user_id == ig && k.is_carousel_item && k.media_id.is_none());
            if !ok {
                return bad_param(&format!(
                    "(#100) The child {c} is not an unpublished carousel item container of this account"
                ));
            }
        }
    } else {
        for u in [&image_url, &video_url].into_iter().flatten() {
            if let Some(sub) = s.failing_urls.get(u) {
                error_subcode = error_subcode.or(Some(*sub));
            }
            if let Some(res) = fetched.get(u) {
                s.fetched.push((u.clone(), res.clone()));
                if res.as_ref().ok() != Some(&200) {
                    // 9004/2207052 "The media could not be fetched from this uri: {uri}".
                    error_subcode = error_subcode.or(Some(2_207_052));
                }
            }
        }
    }
    let id = s.id(17_900_000_000_000_000);
    let polls_left = s.container_polls;
    let ready_at = s.container_time.map(|d| Instant::now() + d);
    s.containers.insert(
        id.clone(),
        Container {
            id: id.clone(),
            ig_user_id: ig.to_owned(),
            kind,
            image_url,
            video_url,
            caption,
            is_carousel_item,
            children,
            share_to_feed,
            cover_url,
            thumb_offset,
            trial_graduation,
            collaborators,
            alt_text,
            polls_left,
            ready_at,
            error_subcode,
            created_at: SystemTime::now(),
            expired: false,
            media_id: None,
        },
    );
    s.containers_created += 1;
    json(200, json!({ "id": id }))
}

/// `POST /{ig-user-id}/media_publish` with `creation_id` → `{"id": "<IG_MEDIA_ID>"}`.
/// Refusals (Error Codes): not finished → 9007/2207027 "The media is not ready for publishing,
/// please wait for a moment"; expired → -2/2207020; failed → the container's own error; quota
/// used up → 9/2207042. An unknown or already published container is not in the table: the
/// fake answers 24/2207006 (media not found).
fn media_publish(s: &mut Inner, tok: &IssuedToken, ig: &str, p: &Params) -> Response {
    if let Err(r) = ig_publisher(s, tok, ig) {
        return r;
    }
    if let Err(r) = check_params(p, "IGUser", "POST", "media_publish") {
        return r;
    }
    // The spec: `creation_id`, required, `unsigned int`.
    let Some(creation_id) = p.get("creation_id") else {
        return bad_param("(#100) The parameter creation_id is required");
    };
    if creation_id.parse::<u64>().is_err() {
        return bad_param("(#100) Param creation_id must be a valid ID");
    }
    let Some(c) = s
        .containers
        .get(creation_id)
        .filter(|c| c.ig_user_id == ig)
        .cloned()
    else {
        return ig_err(2_207_006, None);
    };
    if c.is_carousel_item {
        return bad_param("(#100) A carousel item is published through its carousel");
    }
    match s.container_status(&c) {
        ("FINISHED", _) => {}
        ("PUBLISHED", _) => return ig_err(2_207_006, None),
        ("EXPIRED", _) => return ig_err(2_207_020, None),
        ("ERROR", Some(sub)) => {
            let uri = c.image_url.as_deref().or(c.video_url.as_deref());
            return ig_err(sub, uri);
        }
        _ => return ig_err(2_207_027, None),
    }
    let now = unix(SystemTime::now());
    if s.api_publishes_since(ig, now - QUOTA_DURATION as i64) >= s.quota_total as usize {
        return ig_err(2_207_042, None);
    }
    let (media_type, product) = match c.kind {
        ContainerKind::Image => ("IMAGE", "FEED"),
        ContainerKind::CarouselVideo => ("VIDEO", "FEED"),
        // "A published reel reads back `media_type`=`VIDEO`".
        ContainerKind::Reel => ("VIDEO", "REELS"),
        ContainerKind::StoryImage => ("IMAGE", "STORY"),
        ContainerKind::StoryVideo => ("VIDEO", "STORY"),
        ContainerKind::Carousel => ("CAROUSEL_ALBUM", "FEED"),
    };
    let mut child_media = Vec::new();
    for child in &c.children {
        let mid = s.id(17_950_000_000_000_000);
        if let Some(k) = s.containers.get_mut(child) {
            k.media_id = Some(mid.clone());
        }
        child_media.push(mid);
    }
    let id = s.id(17_950_000_000_000_000);
    let username = s.ig(ig).map(|a| a.username.clone()).unwrap_or_default();
    let code = shortcode();
    s.media.push(IgMedia {
        id: id.clone(),
        ig_user_id: ig.to_owned(),
        container_id: Some(c.id.clone()),
        media_type: media_type.into(),
        media_product_type: product.into(),
        caption: c.caption.clone(),
        media_url: c.image_url.clone().or(c.video_url.clone()),
        children: child_media,
        permalink: permalink(product, &code, &username, &id),
        shortcode: code,
        timestamp: now,
        via_api: true,
    });
    s.containers.get_mut(&c.id).unwrap().media_id = Some(id.clone());
    s.publishes += 1;
    json(200, json!({ "id": id }))
}

// ---------------------------------------------------------------------------------------------
// Facebook Page publishing
// ---------------------------------------------------------------------------------------------

/// `unpublished_content_type` values (`enum_types.json`,
/// `pagefeed_unpublished_content_type_enum_param`).
const UNPUBLISHED_CONTENT_TYPES: &[&str] = &[
    "ADS_POST",
    "DRAFT",
    "INLINE_CREATED",
    "PUBLISHED",
    "PUBLISH_PENDING",
    "REVIEWABLE_BRANDED_CONTENT",
    "SCHEDULED",
    "SCHEDULED_RECURRING",
];

/// `POST /{page-id}/feed` → `{"id": "page_post_id"}` (Pages API "Posts"). `published` "`true`
/// ... (default) or `false`"; `scheduled_publish_time` "between 10 minutes and 30 days" (the
/// fake takes Unix seconds); multi-photo: `attached_media[0]={"media_fbid":"1002088839996"}`,
/// each an unpublished photo of the Page ("returns the Page Post ID"). A second identical
/// message in a row is "506 | Duplicate Post" ("Handling Errors").
fn create_feed_post(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if let Err(r) = page_publisher(s, tok, page_id, &[]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", "feed") {
        return r;
    }
    let published = match p.bool("published") {
        Ok(v) => v.unwrap_or(true),
        Err(e) => return bad_param(&e),
    };
    let message = p.get("message").map(str::to_owned);
    let link = p.get("link").map(str::to_owned);
    if link.as_deref().is_some_and(|l| !http_url(l)) {
        return bad_param("(#100) Param link must be a valid URL");
    }
    let attached = match p.list("attached_media") {
        Ok(v) => v,
        Err(e) => return bad_param(&e),
    };
    let mut photo_ids = Vec::new();
    for item in &attached {
        let id = serde_json::from_str::<Value>(item).ok().and_then(|v| {
            v.get("media_fbid").and_then(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        });
        let Some(id) = id else {
            return bad_param(&format!(
                "(#100) attached_media items are {{\"media_fbid\":\"<photo id>\"}}, not {item}"
            ));
        };
        let ok = s
            .photos
            .get(&id)
            .is_some_and(|ph| ph.page_id == page_id && !ph.published && ph.attached_to.is_none());
        if !ok {
            return bad_param(&format!(
                "(#100) attached_media {id} is not an unpublished photo of this Page"
            ));
        }
        photo_ids.push(id);
    }
    if message.is_none() && link.is_none() && photo_ids.is_empty() {
        return bad_param("(#100) Missing message or attachment");
    }
    let scheduled = match unix_param(p, "scheduled_publish_time") {
        Ok(v) => v,
        Err(e) => return bad_param(&e),
    };
    let now = unix(SystemTime::now());
    if let Some(t) = scheduled {
        if published {
            return bad_param(
                "(#100) Scheduled posts cannot be published: set published=false with scheduled_publish_time",
            );
        }
        if t < now + 600 || t > now + 30 * 86_400 {
            return bad_param(
                "(#100) The specified scheduled publish time is invalid (between 10 minutes and 30 days from now)",
            );
        }
    }
    if let Some(u) = p.get("unpublished_content_type")
        && !UNPUBLISHED_CONTENT_TYPES.contains(&u)
    {
        return bad_param("(#100) Param unpublished_content_type is not a valid value");
    }
    if published
        && link.is_none()
        && photo_ids.is_empty()
        && message.is_some()
        && s.visible_posts(page_id)
            .first()
            .and_then(|x| x.message.as_ref())
            == message.as_ref()
    {
        return err(506, None, "OAuthException", "Duplicate status message");
    }
    let id = format!("{page_id}_{}", s.id(122_000_000_000_000_000));
    for ph in &photo_ids {
        if let Some(x) = s.photos.get_mut(ph) {
            x.attached_to = Some(id.clone());
        }
    }
    s.posts.push(PagePost {
        id: id.clone(),
        page_id: page_id.to_owned(),
        message,
        link,
        created_time: now,
        published,
        scheduled_publish_time: scheduled,
        photo_ids,
        video_id: None,
    });
    s.page_posts_created += 1;
    json(200, json!({ "id": id }))
}

/// `POST /{page-id}/photos` with `url`, `caption` (`message` is "Deprecated. Please use the
/// caption param", so the fake refuses it), `published`, `temporary` ("If the photo is used in
/// a scheduled post, `temporary=true` must be used") → `{"id":"photo_id","post_id":
/// "page_post_id"}`; unpublished, `{"id"}` only (no post is made). Needs `pages_show_list`
/// too (Page Photos reference).
fn upload_photo(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    p: &Params,
    fetched: &HashMap<String, Result<u16, String>>,
) -> Response {
    if let Err(r) = page_publisher(s, tok, page_id, &["pages_show_list"]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", "photos") {
        return r;
    }
    let (published, temporary) = match (p.bool("published"), p.bool("temporary")) {
        (Ok(a), Ok(b)) => (a.unwrap_or(true), b.unwrap_or(false)),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let Some(url) = p.get("url").map(str::to_owned) else {
        return bad_param("(#100) The parameter url is required (the fake takes no file upload)");
    };
    if !http_url(&url) {
        return bad_param("(#100) Param url must be a valid URL");
    }
    if temporary && published {
        return bad_param("(#100) temporary photos must be unpublished");
    }
    if let Some(res) = fetched.get(&url) {
        s.fetched.push((url.clone(), res.clone()));
        if res.as_ref().ok() != Some(&200) {
            // Not in the documentation the notes quote; the fake's choice of code.
            return err(
                324,
                None,
                "OAuthException",
                "(#324) Missing or invalid image file",
            );
        }
    }
    let caption = p.get("caption").map(str::to_owned);
    let id = s.id(1_000_000_000_000_000);
    let now = unix(SystemTime::now());
    let post_id = published.then(|| format!("{page_id}_{}", s.id(122_000_000_000_000_000)));
    s.photos.insert(
        id.clone(),
        Photo {
            id: id.clone(),
            page_id: page_id.to_owned(),
            url,
            caption: caption.clone(),
            published,
            temporary,
            post_id: post_id.clone(),
            attached_to: None,
            created_time: now,
        },
    );
    s.photos_uploaded += 1;
    match post_id {
        Some(post_id) => {
            s.posts.push(PagePost {
                id: post_id.clone(),
                page_id: page_id.to_owned(),
                message: caption,
                link: None,
                created_time: now,
                published: true,
                scheduled_publish_time: None,
                photo_ids: vec![id.clone()],
                video_id: None,
            });
            s.page_posts_created += 1;
            json(200, json!({ "id": id, "post_id": post_id }))
        }
        None => json(200, json!({ "id": id })),
    }
}

/// `POST /{page-id}/videos` with `file_url` ("Accessible URL of a video file. Cannot be used
/// with `upload_phase`."), `description`, `title`, `published` → `{"id"}`. Requirements:
/// "`pages_manage_posts`, `pages_read_engagement`, and `pages_show_list`". A published video
/// shows in the Page's posts once processed. (Resumable upload is not implemented: its
/// parameters are refused.)
fn upload_video(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if let Err(r) = page_publisher(s, tok, page_id, &["pages_show_list"]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", "videos") {
        return r;
    }
    let published = match p.bool("published") {
        Ok(v) => v.unwrap_or(true),
        Err(e) => return bad_param(&e),
    };
    let Some(file_url) = p.get("file_url").map(str::to_owned) else {
        return bad_param("(#100) The parameter file_url is required (in the fake)");
    };
    if !http_url(&file_url) {
        return bad_param("(#100) Param file_url must be a valid URL");
    }
    let description = p.get("description").map(str::to_owned);
    let id = s.id(1_100_000_000_000_000);
    let now = unix(SystemTime::now());
    let post_id = published.then(|| format!("{page_id}_{}", s.id(122_000_000_000_000_000)));
    let failure = s.fail_next_video.pop_front();
    let polls_left = s.video_polls;
    s.videos.insert(
        id.clone(),
        Video {
            id: id.clone(),
            page_id: page_id.to_owned(),
            kind: VideoKind::Video,
            file_url,
            uploaded: true,
            finished: None,
            published_at: None,
            description: description.clone(),
            title: p.get("title").map(str::to_owned),
            published,
            polls_left,
            failure,
            post_id: post_id.clone(),
            created_time: now,
        },
    );
    s.videos_uploaded += 1;
    if let Some(post_id) = post_id {
        s.posts.push(PagePost {
            id: post_id,
            page_id: page_id.to_owned(),
            message: description,
            link: None,
            created_time: now,
            published: true,
            scheduled_publish_time: None,
            photo_ids: Vec::new(),
            video_id: Some(id.clone()),
        });
        s.page_posts_created += 1;
    }
    json(200, json!({ "id": id }))
}

// ---------------------------------------------------------------------------------------------
// Page reels and stories
// ---------------------------------------------------------------------------------------------

fn kind_name(kind: VideoKind) -> (&'static str, &'static str) {
    match kind {
        VideoKind::Reel => ("video_reels", "reel"),
        VideoKind::Story => ("video_stories", "video story"),
        VideoKind::Video => ("videos", "video"),
    }
}

/// An enum parameter, upper-cased and checked against the spec's values.
#[allow(clippy::result_large_err)]
fn enum_param(p: &Params, key: &str, values: &[&str]) -> Result<Option<String>, Response> {
    match p.get(key) {
        None => Ok(None),
        Some(v) => {
            let up = v.to_ascii_uppercase();
            if values.contains(&up.as_str()) {
                Ok(Some(up))
            } else {
                Err(bad_param(&format!(
                    "(#100) Param {key} must be one of {{{}}}",
                    values.join(", ")
                )))
            }
        }
    }
}

/// `POST /{page-id}/video_reels` and `POST /{page-id}/video_stories`.
///
/// - Start (Reels Publishing API, Stories API "Step 1: Initialize session"): "send a `POST`
///   request to the `/page_id/video_stories` endpoint ... with the `upload_phase` parameter set
///   to `start`" → `{"video_id": "video_id", "upload_url":
///   "https://rupload.facebook.com/video-upload/v25.0/video_id"}`. The fake's `upload_url` is
///   its own `{url}/video-upload/{version}/{video-id}`.
/// - Finish, stories ("Step 3. Publish a video story"): `video_id`, `upload_phase` `finish` →
///   "`success` set to `true`", "`post_id` set to the ID for your story post" (the example
///   writes `"post_id": 1234`, a number; the fake answers a string, as Graph ids are).
/// - Finish, reels: `upload_phase=finish`, `video_id`, `video_state=PUBLISHED`, `description`
///   → `{"success": true}`. The 30-in-24-hours limit is "enforced on the `POST
///   /{page_id}/video_reels` endpoint when attempting to publish a reel": its error is not
///   documented; the fake answers code 9 (the Instagram publishing limit's code) with the
///   guide's sentence.
///
/// The fake's choices where the guides say nothing: a reel's finish must name `video_state`
/// (`PUBLISHED` or `DRAFT`; `SCHEDULED` is not implemented); a story's takes none or
/// `PUBLISHED`; finishing before the file reached the upload host, finishing twice, an unknown
/// `video_id` and a failed video are refused with code 100 (the failed video with its
/// processing error's code). A published reel becomes a Page post (`{page-id}_{video-id}`,
/// message = `description`), listed with the Page's posts and videos and in `/video_reels`
/// once processed; a story is listed in `/{page-id}/stories` only.
fn video_session(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    p: &Params,
    kind: VideoKind,
) -> Response {
    let (edge, what) = kind_name(kind);
    if let Err(r) = page_publisher(s, tok, page_id, &["pages_show_list"]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", edge) {
        return r;
    }
    let phase = match enum_param(p, "upload_phase", UPLOAD_PHASES) {
        Ok(Some(v)) => v,
        Ok(None) => return bad_param("(#100) The parameter upload_phase is required"),
        Err(r) => return r,
    };
    let state = match enum_param(p, "video_state", VIDEO_STATES) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = unix(SystemTime::now());
    if phase == "START" {
        if p.has("video_id") || state.is_some() {
            return bad_param(
                "(#100) upload_phase=start takes no video_id or video_state (in the fake)",
            );
        }
        let id = s.id(1_100_000_000_000_000);
        s.videos.insert(
            id.clone(),
            Video {
                id: id.clone(),
                page_id: page_id.to_owned(),
                kind,
                file_url: String::new(),
                uploaded: false,
                finished: None,
                published_at: None,
                description: p.get("description").map(str::to_owned),
                title: p.get("title").map(str::to_owned),
                published: false,
                polls_left: 0,
                failure: None,
                post_id: None,
                created_time: now,
            },
        );
        if kind == VideoKind::Reel {
            s.reels_started += 1;
        }
        let upload_url = format!("{}/{UPLOAD_PATH}/{}/{id}", s.url, s.version);
        return json(200, json!({ "video_id": id, "upload_url": upload_url }));
    }
    let Some(video_id) = p.get("video_id") else {
        return bad_param("(#100) upload_phase=finish requires video_id");
    };
    let Some(v) = s
        .videos
        .get(video_id)
        .filter(|v| v.page_id == page_id && v.kind == kind)
        .cloned()
    else {
        return bad_param(&format!(
            "(#100) video_id {video_id} is not a {what} upload session of this Page (the fake's message)"
        ));
    };
    if v.finished.is_some() {
        return bad_param(&format!(
            "(#100) The {what} {video_id} is already finished (the fake's message)"
        ));
    }
    if !v.uploaded {
        return bad_param(&format!(
            "(#100) The {what} {video_id} has no file yet: upload it to its upload_url before upload_phase=finish (the fake's message)"
        ));
    }
    if let Some((code, message)) = &v.failure {
        return err(*code, None, "OAuthException", message);
    }
    let state = match (kind, state.as_deref()) {
        (VideoKind::Reel, Some(st @ ("PUBLISHED" | "DRAFT"))) => st.to_owned(),
        (VideoKind::Reel, None) => {
            return bad_param(
                "(#100) A reel's upload_phase=finish needs video_state (PUBLISHED or DRAFT in the fake)",
            );
        }
        (VideoKind::Story, None | Some("PUBLISHED")) => "PUBLISHED".to_owned(),
        _ => {
            return bad_param(
                "(#100) The fake implements video_state PUBLISHED (and DRAFT for reels) only",
            );
        }
    };
    if kind == VideoKind::Reel && state == "PUBLISHED" {
        let used = s.api_reels_since(page_id, now - REELS_QUOTA_DURATION as i64);
        if used >= s.reels_quota as usize {
            return err(
                9,
                None,
                "OAuthException",
                "(#9) Reels API is limited to 30 API-published posts within a 24-hour moving period.",
            );
        }
    }
    let description = p.get("description").map(str::to_owned).or(v.description);
    let title = p.get("title").map(str::to_owned).or(v.title);
    let published = state == "PUBLISHED";
    let post_id = match kind {
        VideoKind::Reel => published.then(|| format!("{page_id}_{video_id}")),
        _ => Some(s.id(122_000_000_000_000_000)),
    };
    if let Some(x) = s.videos.get_mut(video_id) {
        x.finished = Some(state.clone());
        x.description = description.clone();
        x.title = title;
        x.published = published;
        x.published_at = published.then_some(now);
        x.post_id = post_id.clone();
    }
    match kind {
        VideoKind::Reel => {
            if let Some(post_id) = post_id {
                s.posts.push(PagePost {
                    id: post_id,
                    page_id: page_id.to_owned(),
                    message: description,
                    link: None,
                    created_time: now,
                    published: true,
                    scheduled_publish_time: None,
                    photo_ids: Vec::new(),
                    video_id: Some(video_id.to_owned()),
                });
                s.reels_published += 1;
            }
            json(200, json!({ "success": true }))
        }
        _ => {
            let post_id = post_id.unwrap_or_default();
            s.stories.push(PageStory {
                post_id: post_id.clone(),
                page_id: page_id.to_owned(),
                media_type: "video".into(),
                media_id: video_id.to_owned(),
                created_time: now,
            });
            s.stories_published += 1;
            json(200, json!({ "success": true, "post_id": post_id }))
        }
    }
}

/// `POST /{page-id}/photo_stories` with `photo_id` (Stories API "Step 2. Publish a photo
/// story"; step 1 is `POST /{page-id}/photos` with "the `published` parameter ... set to
/// `false`") → "`success` set to `true`", "`post_id` set to the ID for your story post".
/// "A photo or video uploaded for a story can not have been used in a previously published
/// post": the fake refuses a published photo, one attached to a post, or one already in a
/// story (code 100, the fake's message).
fn photo_story(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if let Err(r) = page_publisher(s, tok, page_id, &["pages_show_list"]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", "photo_stories") {
        return r;
    }
    let Some(photo_id) = p.get("photo_id").map(str::to_owned) else {
        return bad_param("(#100) The parameter photo_id is required");
    };
    let ok = s
        .photos
        .get(&photo_id)
        .is_some_and(|ph| ph.page_id == page_id && !ph.published && ph.attached_to.is_none());
    if !ok {
        return bad_param(&format!(
            "(#100) photo_id {photo_id} is not an unpublished photo of this Page unused in any post or story (the fake's message)"
        ));
    }
    let post_id = s.id(122_000_000_000_000_000);
    if let Some(ph) = s.photos.get_mut(&photo_id) {
        ph.attached_to = Some(post_id.clone());
    }
    s.stories.push(PageStory {
        post_id: post_id.clone(),
        page_id: page_id.to_owned(),
        media_type: "photo".into(),
        media_id: photo_id,
        created_time: unix(SystemTime::now()),
    });
    s.stories_published += 1;
    json(200, json!({ "success": true, "post_id": post_id }))
}

/// `GET /{page-id}/video_reels` (spec: `since`, `until`; returns `AdVideo`): the Page's
/// published reels once processed, newest first (drafts and unprocessed reels are not listed:
/// the fake's choice).
fn list_reels(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", "video_reels") {
        return r;
    }
    let f = match fields(p, "AdVideo", &[], &["id", "created_time", "description"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if wants(&f, "status") {
        return bad_param("(#100) Read a video's status from the video node (in the fake)");
    }
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    let (since, until) = match (unix_param(p, "since"), unix_param(p, "until")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let mut reels: Vec<Video> = s
        .videos
        .values()
        .filter(|v| v.page_id == page_id && v.kind == VideoKind::Reel)
        .filter(|v| v.published && s.video_ready(&v.id))
        .filter(|v| since.is_none_or(|a| v.created_time >= a))
        .filter(|v| until.is_none_or(|b| v.created_time <= b))
        .cloned()
        .collect();
    reels.sort_by(|a, b| (b.published_at, &b.id).cmp(&(a.published_at, &a.id)));
    let ids: Vec<String> = reels.iter().map(|v| v.id.clone()).collect();
    let rows = reels.iter().map(|v| video_json(v, &f)).collect();
    match paginate(
        p,
        &ids,
        rows,
        &format!("/{}/{page_id}/video_reels", s.version),
    ) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// `GET /{page-id}/stories` (Stories API "Get stories"; spec returns `Stories`): rows of
/// `post_id`, `status` ("`PUBLISHED`, `ARCHIVED`"), `creation_time` ("UNIX timestamp"; the
/// example writes it as a string, `"123456"`, and the spec types it `string`), `media_type`
/// ("`video` or `photo`"), `media_id`, `url` ("such as
/// `https://facebook.com/stories/8283482737484972`"). The fake answers every field by default
/// (the guide's request names none), newest first; a story older than 24 hours is `ARCHIVED`
/// (the fake's choice: the guide says archived stories are listed when the Page's story
/// archive is on, which the fake takes as always).
fn list_stories(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", "stories") {
        return r;
    }
    let all = object_fields("Stories");
    let f = match fields(p, "Stories", &[], all) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    let (since, until) = match (unix_param(p, "since"), unix_param(p, "until")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let now = unix(SystemTime::now());
    let stories: Vec<PageStory> = s
        .stories
        .iter()
        .rev()
        .filter(|x| x.page_id == page_id)
        .filter(|x| since.is_none_or(|a| x.created_time >= a))
        .filter(|x| until.is_none_or(|b| x.created_time <= b))
        .cloned()
        .collect();
    let ids: Vec<String> = stories.iter().map(|x| x.post_id.clone()).collect();
    let rows = stories
        .iter()
        .map(|x| {
            let mut o = serde_json::Map::new();
            for field in &f {
                let v = match field.name.as_str() {
                    "post_id" => json!(x.post_id),
                    "status" => json!(if now - x.created_time < 86_400 {
                        "PUBLISHED"
                    } else {
                        "ARCHIVED"
                    }),
                    "creation_time" => json!(x.created_time.to_string()),
                    "media_type" => json!(x.media_type),
                    "media_id" => json!(x.media_id),
                    "url" => json!(format!("https://facebook.com/stories/{}", x.post_id)),
                    _ => continue,
                };
                o.insert(field.name.clone(), v);
            }
            Value::Object(o)
        })
        .collect();
    match paginate(p, &ids, rows, &format!("/{}/{page_id}/stories", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// The token of an upload-host call: `Authorization: OAuth {page-access-token}` (the Reels
/// guide's and the video-ads upload guide's header; the Stories guide's examples omit it).
fn oauth_header(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("oauth")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// `POST /video-upload/{version}/{video-id}`: the upload host (`rupload.facebook.com`) of reels
/// and video stories, served by the fake. Stories API "Upload a hosted file": "send a `POST`
/// request to the `upload_url` endpoint ... with ... `file_url` set to the URL for your video
/// file" (a header: `-H "file_url: https://some.cdn.url/video.mp4"`); "On upload success, your
/// app receives a JSON response with `success` set to `true`" (`{"success": true}`). The token
/// is `Authorization: OAuth {token}`, checked as `page_publisher` checks Page publishing.
///
/// The local-file variant ("`offset` set to `0`", "`file_size` set to the total size in bytes",
/// the bytes as the body) is refused (code 100): the fake takes no uploads. With
/// [`GraphFake::fetch_media`] on, the fake GETs the `file_url` (as Facebook, with the
/// `facebookexternalhit/1.1` user agent the guide names); an answer other than 200 fails the
/// upload with code 6000 (the fake's choice of code; the guide documents no error). Errors are
/// Graph's error object (the fake's choice: the upload host's own error shape is not
/// documented). Upload-host calls are not Graph calls: they take no injected throttle and are
/// not counted in [`GraphFake::graph_calls`].
async fn rupload(
    state: &Shared,
    method: &Method,
    segs: &[String],
    headers: &HeaderMap,
    body: &Bytes,
    version: &str,
    fetch_on: bool,
) -> Response {
    if segs.len() != 3 || segs[1] != version {
        return err(
            2500,
            None,
            "OAuthException",
            &format!("Unknown path components: /{}", segs.join("/")),
        );
    }
    let video_id = segs[2].as_str();
    if method != Method::POST {
        return no_object(method, video_id);
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let file_url = header("file_url");
    let Some(file_url) = file_url else {
        if header("offset").is_some() || header("file_size").is_some() || !body.is_empty() {
            return bad_param(
                "(#100) The fake takes hosted files only (the file_url header); uploading the bytes with offset and file_size is not implemented",
            );
        }
        return bad_param("(#100) The upload needs the file_url header (a hosted file)");
    };
    if !http_url(&file_url) {
        return bad_param("(#100) The file_url header must be an http(s) URL");
    }
    {
        let s = state.lock().unwrap();
        let tok = match authenticate(&s, oauth_header(headers).as_deref()) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let Some(v) = s
            .videos
            .get(video_id)
            .filter(|v| v.kind != VideoKind::Video)
        else {
            return no_object(method, video_id);
        };
        if let Err(r) = page_publisher(&s, &tok, &v.page_id, &["pages_show_list"]) {
            return r;
        }
        if v.finished.is_some() {
            return bad_param("(#100) This video is already finished (the fake's message)");
        }
    }
    let fetched = if fetch_on {
        Some(fetch_status(&file_url).await)
    } else {
        None
    };
    let mut s = state.lock().unwrap();
    if let Some(res) = fetched {
        s.fetched.push((file_url.clone(), res.clone()));
        if res.as_ref().ok() != Some(&200) {
            return err(
                6000,
                None,
                "OAuthException",
                &format!(
                    "There was a problem uploading your video file: it could not be fetched from {file_url}"
                ),
            );
        }
    }
    let polls = s.video_polls;
    let failure = s.fail_next_video.pop_front();
    let Some(v) = s.videos.get_mut(video_id) else {
        return no_object(method, video_id);
    };
    // Sending the file again restarts the upload ("To restart the upload, resend the `POST`
    // request").
    v.file_url = file_url;
    v.uploaded = true;
    v.polls_left = polls;
    v.failure = failure;
    if v.kind == VideoKind::Reel {
        s.reels_uploaded += 1;
    }
    json(200, json!({ "success": true }))
}

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
