//! A fake of the X API v2 and its OAuth 2.0 authorization server, for the X connector's tests.
//!
//! What it serves, each checked against the documented shape (docs.x.com):
//! - `GET /i/oauth2/authorize`: the authorization page. Acting as a user who approves, it answers
//!   302 to `redirect_uri?state=…&code=…`. Refused (400): a `response_type` other than `code`, an
//!   unknown `client_id`, a `redirect_uri` not registered for the app (exact match), no `state`,
//!   no `code_challenge`, a `code_challenge_method` other than `S256`/`plain`, an unknown scope.
//! - `POST /2/oauth2/token` (`application/x-www-form-urlencoded`; the app is a confidential client,
//!   so HTTP Basic `client_id:client_secret` is required, and a `client_id` in the body must be
//!   the same): `authorization_code` (single-use codes valid 30 s, `redirect_uri` equal to the
//!   authorization's, `code_verifier` against the challenge) and `refresh_token` (rotation: the
//!   old refresh token stops working). Refusals as X answers them: 400
//!   `{"error":"invalid_request","error_description":"Value passed for the token was invalid."}`,
//!   401 `unauthorized_client` for bad client credentials.
//! - Bearer tokens it issued, unexpired and holding the scope the endpoint needs, on every API
//!   call; else 401 `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`
//!   (403 for a missing scope).
//! - `GET /2/users/me`; `GET /2/users/{id}/tweets` (query names, `max_results` 5..=100,
//!   `start_time`/`end_time` as `YYYY-MM-DDTHH:mm:ssZ` without milliseconds, `exclude`, the
//!   fields parameter, `pagination_token`); `POST /2/tweets` (JSON; `text` a string of at most 280
//!   weighted characters, `media.media_ids` 1 to 4 ids it issued to this user and finalized;
//!   duplicate text refused with 403 as X does). A test can make new posts show in the timeline
//!   only after a lag ([`XFake::set_timeline_lag`]), as an eventually consistent timeline does.
//! - The timeline's fields parameter by either of its names: `tweet.fields` (X's fields guide,
//!   the OpenAPI description up to v2.159) and `post.fields` (the published OpenAPI description
//!   v2.167, `PostFieldsParameter`), each checked against its own list of values. A test can
//!   make it know only one ([`XFake::accept_fields_parameters`]); the other is then refused as
//!   X refuses an unknown query parameter (400 naming it).
//! - The limits on `POST /2/tweets` (<https://docs.x.com/x-api/fundamentals/rate-limits>: 100
//!   per user per 15 minutes, 10,000 per app per 24 hours; some access tiers also cap a user's
//!   posts per 24 hours), set with [`XFake::set_post_limits`]. Every authenticated request that
//!   is not itself refused by a limit counts in each window; a window starts with the first
//!   request after the previous one ended. Every answer past authentication carries the
//!   15-minute window's `x-rate-limit-limit` / `-remaining` / `-reset` (Unix seconds), the app's
//!   `x-app-limit-24hour-limit` / `-remaining` / `-reset` and, when a per-user daily limit is
//!   set, the user's `x-user-limit-24hour-*` (X omits them where no such limit applies). Over
//!   any limit the answer is 429 with the body X's rate-limit page documents,
//!   `{"errors":[{"code":88,"message":"Rate limit exceeded"}]}`.
//! - The chunked media upload (<https://docs.x.com/x-api/media/quickstart/media-upload-chunked>):
//!   `POST /2/media/upload/initialize` (JSON `media_type` from the documented enumeration,
//!   `total_bytes`, `media_category`, the type fitting the category, size limits per category:
//!   5 MB images, 15 MB GIFs, 512 MB videos), `POST /2/media/upload/{id}/append` (multipart
//!   `segment_index` 0..=999 and `media` of at most 5 MB; segments in order: the next index, or
//!   the last one again as a retry; the bytes never beyond `total_bytes`),
//!   `POST /2/media/upload/{id}/finalize` (every segment, their sum equal to `total_bytes`, bytes
//!   of the declared type; else 400), `GET /2/media/upload` (`command=STATUS`, `media_id`; an id
//!   it does not know, or one that expired, is a 400). Every initialize that reaches it is counted
//!   ([`XFake::init_calls`]), and the segments each session received are kept in order.
//! - Media processing as the STATUS reference describes it: GIFs and videos answer FINALIZE with
//!   `processing_info` `{"state":"pending","check_after_secs":1}`; a video's STATUS then answers
//!   `in_progress` (with `progress_percent`) for [`XFake::set_video_processing_steps`] polls (1 by
//!   default), then `succeeded`, or `failed` with `error` `{"code":1,"name":"InvalidMedia",
//!   "message"}` when told to ([`XFake::fail_video_processing`]). A post may carry the media only
//!   once it has succeeded.
//!
//! What X does to text is reproduced where the connector must cope with it: post text comes back
//! HTML-escaped (`&amp;`, `&lt;`, `&gt;`), with a trailing `https://t.co/…` link when media is
//! attached.

use crate::common::{Fake, Faults, basic, bearer, json, pkce_challenge, token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// The callback registered for the fake's app.
pub const REDIRECT_URI: &str = "https://soku.test/v1/oauth/x/callback";
pub const USER_ID: &str = "2244994945";
pub const USERNAME: &str = "sokudev";
pub const NAME: &str = "Soku Dev";
/// The authorization page's path on the fake.
pub const AUTHORIZE_PATH: &str = "/i/oauth2/authorize";

const ACCESS_TTL: Duration = Duration::from_secs(7200);
const CODE_TTL: Duration = Duration::from_secs(30);
const KNOWN_SCOPES: &[&str] = &[
    "tweet.read",
    "tweet.write",
    "tweet.moderate.write",
    "users.email",
    "users.read",
    "follows.read",
    "follows.write",
    "offline.access",
    "space.read",
    "mute.read",
    "mute.write",
    "like.read",
    "like.write",
    "list.read",
    "list.write",
    "block.read",
    "block.write",
    "bookmark.read",
    "bookmark.write",
    "media.write",
    "dm.read",
    "dm.write",
];
const TWEET_FIELDS: &[&str] = &[
    "article",
    "attachments",
    "author_id",
    "card_uri",
    "community_id",
    "context_annotations",
    "conversation_id",
    "created_at",
    "display_text_range",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "geo",
    "id",
    "in_reply_to_user_id",
    "lang",
    "media_metadata",
    "non_public_metrics",
    "note_tweet",
    "organic_metrics",
    "possibly_sensitive",
    "promoted_metrics",
    "public_metrics",
    "referenced_tweets",
    "reply_settings",
    "scopes",
    "source",
    "text",
    "withheld",
];
/// `post.fields`' values in the OpenAPI description v2.167 (`PostFieldsParameter`).
const POST_FIELDS: &[&str] = &[
    "article",
    "article_title",
    "attachments",
    "card_uri",
    "community_id",
    "context_annotations",
    "conversation_id",
    "created_at",
    "display_text_range",
    "edit_controls",
    "entities",
    "geo",
    "id",
    "lang",
    "matched_media_notes",
    "media_metadata",
    "non_public_metrics",
    "note_post",
    "note_request_suggestions",
    "organic_metrics",
    "paid_partnership",
    "possibly_sensitive",
    "promoted_metrics",
    "public_metrics",
    "reply_settings",
    "scopes",
    "source",
    "suggested_source_links",
    "suggested_source_links_with_counts",
    "text",
    "withheld",
];
/// The timeline's query parameters besides the fields parameter.
const TIMELINE_PARAMS: &[&str] = &[
    "since_id",
    "until_id",
    "max_results",
    "pagination_token",
    "exclude",
    "start_time",
    "end_time",
    "expansions",
    "media.fields",
    "poll.fields",
    "user.fields",
    "place.fields",
];
/// The names of the timeline's fields parameter, and the values each takes.
const FIELDS_PARAMETERS: &[(&str, &[&str])] =
    &[("tweet.fields", TWEET_FIELDS), ("post.fields", POST_FIELDS)];
const CREATE_FIELDS: &[&str] = &[
    "text",
    "media",
    "reply",
    "quote_tweet_id",
    "poll",
    "reply_settings",
    "for_super_followers_only",
    "direct_message_deep_link",
    "geo",
    "nullcast",
    "card_uri",
    "community_id",
    "made_with_ai",
    "paid_partnership",
    "share_with_followers",
];
const MEDIA_TYPES: &[&str] = &[
    "video/mp4",
    "video/webm",
    "video/mp2t",
    "video/quicktime",
    "text/srt",
    "text/vtt",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/png",
    "image/webp",
    "image/pjpeg",
    "image/tiff",
    "model/gltf-binary",
    "model/vnd.usdz+zip",
];
const MEDIA_CATEGORIES: &[&str] = &[
    "amplify_video",
    "tweet_gif",
    "tweet_image",
    "tweet_video",
    "dm_gif",
    "dm_image",
    "dm_video",
    "subtitles",
];
const MB: u64 = 1024 * 1024;

/// A post the fake holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTweet {
    pub id: String,
    /// The text as it was sent.
    pub text: String,
    pub media_ids: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// The limits on `POST /2/tweets` (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostLimits {
    /// Requests per user per `window` (X: 100 per 15 minutes).
    pub per_window: u32,
    pub window: Duration,
    /// Requests per user per `day`, where the access tier sets one (none by default).
    pub per_day_user: Option<u32>,
    /// Requests per app per `day` (X: 10,000).
    pub per_day_app: u32,
    /// The length of the daily windows (24 hours; shorter in tests).
    pub day: Duration,
}

impl Default for PostLimits {
    fn default() -> Self {
        Self {
            per_window: 100,
            window: Duration::from_secs(15 * 60),
            per_day_user: None,
            per_day_app: 10_000,
            day: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// One rate-limit window: requests counted since it started, and when it ends.
#[derive(Debug, Clone, Copy)]
struct Window {
    used: u32,
    ends: SystemTime,
}

impl Window {
    /// The window running at `now`, a fresh one if the last has ended.
    fn current(slot: &mut Option<Window>, now: SystemTime, length: Duration) -> &mut Window {
        if slot.is_none_or(|w| w.ends <= now) {
            *slot = Some(Window {
                used: 0,
                ends: now + length,
            });
        }
        slot.as_mut().unwrap()
    }

    /// `x-…-limit`, `x-…-remaining` and `x-…-reset` (Unix seconds, rounded up so that the
    /// window has ended at the announced second).
    fn headers(&self, prefix: &str, limit: u32, out: &mut Vec<(String, String)>) {
        let ends = self.ends.duration_since(UNIX_EPOCH).unwrap_or_default();
        let reset = ends.as_secs() + u64::from(ends.subsec_nanos() > 0);
        out.push((format!("{prefix}-limit"), limit.to_string()));
        out.push((
            format!("{prefix}-remaining"),
            limit.saturating_sub(self.used).to_string(),
        ));
        out.push((format!("{prefix}-reset"), reset.to_string()));
    }
}

/// The running windows on `POST /2/tweets`.
#[derive(Debug, Default)]
struct PostWindows {
    /// Per user: the 15-minute window and the daily one.
    user: HashMap<String, (Option<Window>, Option<Window>)>,
    app: Option<Window>,
}

/// An upload session.
#[derive(Debug, Clone)]
pub struct FakeUpload {
    pub id: String,
    pub media_type: String,
    pub media_category: String,
    pub total_bytes: u64,
    /// The file, once finalized.
    pub bytes: Vec<u8>,
    pub finalized: bool,
    /// Each APPEND accepted, in the order received: `(segment_index, bytes)`.
    pub appends: Vec<(u32, usize)>,
    /// The STATUS answers given, in order (`pending`, `in_progress`, `succeeded`, `failed`).
    pub states: Vec<String>,
}

#[derive(Debug, Clone)]
struct Code {
    redirect_uri: String,
    challenge: String,
    method: String,
    scopes: Vec<String>,
    issued: SystemTime,
    used: bool,
}

#[derive(Debug, Clone)]
struct Access {
    user: String,
    scopes: Vec<String>,
    expires: SystemTime,
}

#[derive(Debug, Clone)]
struct Refresh {
    user: String,
    scopes: Vec<String>,
    valid: bool,
}

#[derive(Debug, Clone)]
struct Session {
    upload: FakeUpload,
    owner: String,
    segments: BTreeMap<u32, Vec<u8>>,
    /// `None` for images; a GIF is `pending` until its status is asked once; a video moves
    /// through `in_progress` as [`XState::video_steps`] says.
    processing: Option<&'static str>,
    /// STATUS polls answered `in_progress` so far (videos).
    polls: u32,
    /// Why processing failed, once it has.
    failure: Option<String>,
}

#[derive(Debug)]
struct XState {
    redirect_uris: Vec<String>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    tweets: Vec<(String, FakeTweet)>,
    create_calls: usize,
    sessions: HashMap<String, Session>,
    next_id: u64,
    tokens_issued: usize,
    access_ttl: Duration,
    post_limits: PostLimits,
    post_windows: PostWindows,
    /// The names of the timeline's fields parameter this X knows.
    fields_parameters: Vec<&'static str>,
    timeline_calls: usize,
    /// Every `POST /2/media/upload/initialize` that reached the fake, refused or not.
    init_calls: usize,
    /// STATUS polls a video answers `in_progress` before it is done.
    video_steps: u32,
    /// When set, video processing ends `failed` with this message.
    video_failure: Option<String>,
    /// The `check_after_secs` processing answers carry.
    check_after_secs: u64,
    /// How long a new post stays out of the timeline ([`XFake::set_timeline_lag`]).
    timeline_lag: Duration,
    /// When each post made through `POST /2/tweets` under a lag shows in the timeline.
    listed_from: HashMap<String, std::time::Instant>,
    /// Fields the next successful token answer carries in place of its own (fault injection:
    /// an answer whose tokens are issued, and the old refresh token spent, but another field
    /// is odd).
    token_answer_faults: Vec<(String, serde_json::Value)>,
}

type Shared = Arc<Mutex<XState>>;

/// The running fake.
pub struct XFake {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub faults: Faults,
    state: Shared,
    _server: Fake,
}

impl XFake {
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(XState {
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            tweets: Vec::new(),
            create_calls: 0,
            sessions: HashMap::new(),
            next_id: 1_880_000_000_000_000_000,
            tokens_issued: 0,
            access_ttl: ACCESS_TTL,
            post_limits: PostLimits::default(),
            post_windows: PostWindows::default(),
            fields_parameters: FIELDS_PARAMETERS.iter().map(|(n, _)| *n).collect(),
            timeline_calls: 0,
            init_calls: 0,
            video_steps: 1,
            video_failure: None,
            check_after_secs: 1,
            timeline_lag: Duration::ZERO,
            listed_from: HashMap::new(),
            token_answer_faults: Vec::new(),
        }));
        let router = Router::new()
            .route(AUTHORIZE_PATH, get(authorize))
            .route("/2/oauth2/token", post(token_endpoint))
            .route("/2/users/me", get(users_me))
            .route("/2/users/{id}/tweets", get(timeline))
            .route("/2/tweets", post(create_tweet))
            .route("/2/media/upload/initialize", post(media_initialize))
            // A segment is at most 5 MB (checked in the handler, as X answers it), plus the form.
            .route(
                "/2/media/upload/{id}/append",
                post(media_append).layer(DefaultBodyLimit::max(6 * MB as usize)),
            )
            .route("/2/media/upload/{id}/finalize", post(media_finalize))
            .route("/2/media/upload", get(media_status))
            .fallback(not_found)
            .with_state(state.clone());
        let faults = Faults::default();
        let server = Fake::serve(router, faults.clone()).await;
        Self {
            url: server.url.clone(),
            faults,
            state,
            _server: server,
        }
    }

    /// Registers another callback URL for the fake's app (X matches `redirect_uri` exactly
    /// against the app's registered ones).
    pub fn register_redirect_uri(&self, uri: &str) {
        self.lock().redirect_uris.push(uri.to_owned());
    }

    /// The authorization page's full URL (the connector's `auth_url`).
    pub fn authorize_url(&self) -> String {
        format!("{}{AUTHORIZE_PATH}", self.url)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, XState> {
        self.state.lock().unwrap()
    }

    /// Posts created, oldest first.
    pub fn posts(&self) -> Vec<FakeTweet> {
        self.lock().tweets.iter().map(|(_, t)| t.clone()).collect()
    }

    /// Every `POST /2/tweets` that reached the fake (past the scripted faults), refused or not.
    pub fn create_calls(&self) -> usize {
        self.lock().create_calls
    }

    /// Every `GET /2/users/{id}/tweets` that reached the fake, refused or not.
    pub fn timeline_calls(&self) -> usize {
        self.lock().timeline_calls
    }

    /// Sets the limits on `POST /2/tweets`; every window starts afresh.
    pub fn set_post_limits(&self, limits: PostLimits) {
        let mut s = self.lock();
        s.post_limits = limits;
        s.post_windows = PostWindows::default();
    }

    /// The names of the timeline's fields parameter this X knows (`tweet.fields`,
    /// `post.fields`); any other is refused as an unknown query parameter.
    pub fn accept_fields_parameters(&self, names: &[&str]) {
        let known: Vec<&'static str> = FIELDS_PARAMETERS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| names.contains(n))
            .collect();
        assert_eq!(
            known.len(),
            names.len(),
            "unknown fields parameter in {names:?}"
        );
        self.lock().fields_parameters = known;
    }

    /// Upload sessions, in no order.
    pub fn uploads(&self) -> Vec<FakeUpload> {
        self.lock()
            .sessions
            .values()
            .map(|s| s.upload.clone())
            .collect()
    }

    pub fn upload(&self, id: &str) -> Option<FakeUpload> {
        self.lock().sessions.get(id).map(|s| s.upload.clone())
    }

    /// Every `POST /2/media/upload/initialize` that reached the fake (past the scripted faults),
    /// refused or not: how many uploads were started.
    pub fn init_calls(&self) -> usize {
        self.lock().init_calls
    }

    /// How many STATUS polls a video answers `in_progress` before its processing ends (1 by
    /// default; more for slow processing). Applies to videos still processing.
    pub fn set_video_processing_steps(&self, steps: u32) {
        self.lock().video_steps = steps;
    }

    /// Video processing that has not ended yet ends `failed`, X's `error.message` being
    /// `message`; `None` lets it succeed again.
    pub fn fail_video_processing(&self, message: Option<&str>) {
        self.lock().video_failure = message.map(str::to_owned);
    }

    /// The `check_after_secs` that processing answers carry (1 by default).
    pub fn set_check_after_secs(&self, secs: u64) {
        self.lock().check_after_secs = secs;
    }

    /// The upload session `id` is gone, as after its `expires_after_secs`: X no longer knows the
    /// media id.
    pub fn expire_upload(&self, id: &str) {
        self.lock().sessions.remove(id);
    }

    /// Access tokens issued so far.
    /// The next successful token answer (the tokens issued as usual, a refresh token spent)
    /// carries `value` as its `field` (`expires_in` as `"soon"`, a `scope` without
    /// `tweet.write`); several calls change several fields.
    pub fn alter_next_token_answer(&self, field: &str, value: serde_json::Value) {
        self.lock()
            .token_answer_faults
            .push((field.to_owned(), value));
    }

    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }

    /// Tokens for the fake's user with every scope the connector asks for, as if an
    /// authorization had completed: `(access_token, refresh_token)`.
    pub fn issue_tokens(&self) -> (String, String) {
        let scopes: Vec<String> = [
            "tweet.read",
            "tweet.write",
            "users.read",
            "offline.access",
            "media.write",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut s = self.lock();
        let (access, refresh, _) = s.issue(USER_ID, &scopes);
        (
            access,
            refresh.expect("offline.access gives a refresh token"),
        )
    }

    /// Every access token issued so far stops working (as after its two hours).
    pub fn expire_access_tokens(&self) {
        let now = SystemTime::now();
        for a in self.lock().access.values_mut() {
            a.expires = now;
        }
    }

    /// The user revoked the app: no refresh token works any more.
    pub fn revoke_refresh_tokens(&self) {
        for r in self.lock().refresh.values_mut() {
            r.valid = false;
        }
    }

    pub fn refresh_token_works(&self, refresh_token: &str) -> bool {
        self.lock()
            .refresh
            .get(refresh_token)
            .is_some_and(|r| r.valid)
    }

    pub fn access_token_works(&self, access_token: &str) -> bool {
        self.lock()
            .access
            .get(access_token)
            .is_some_and(|a| a.expires > SystemTime::now())
    }

    /// Posts made from now on show in `GET /2/users/{id}/tweets` only `lag` after they were
    /// created (none by default). X's timelines are eventually consistent: a post just made may
    /// be missing from them for a while, though X already holds it (and refuses the same text
    /// again as a duplicate).
    pub fn set_timeline_lag(&self, lag: Duration) {
        self.lock().timeline_lag = lag;
    }

    /// Adds a post as if the user had made it `age` ago (not counted as a create call).
    pub fn seed_post(&self, text: &str, age: Duration) -> String {
        let mut s = self.lock();
        let id = s.new_id();
        let created_at = unix_now() - age.as_secs() as i64;
        s.tweets.push((
            USER_ID.to_owned(),
            FakeTweet {
                id: id.clone(),
                text: text.to_owned(),
                media_ids: Vec::new(),
                created_at,
            },
        ));
        id
    }

    /// The next matching request gets X's 429 with its rate-limit headers, the window resetting
    /// in `reset_in`.
    pub fn rate_limit_next(&self, method: &str, path: &str, reset_in: Duration) {
        let reset = (unix_now() + reset_in.as_secs() as i64).to_string();
        self.faults.reply(
            method,
            path,
            429,
            &[
                ("x-rate-limit-limit", "100"),
                ("x-rate-limit-remaining", "0"),
                ("x-rate-limit-reset", reset.as_str()),
            ],
            problem(429, "Too Many Requests", "Too Many Requests"),
        );
    }

    /// The next matching request gets a 503 with X's problem body.
    pub fn fail_next(&self, method: &str, path: &str) {
        self.faults.reply(
            method,
            path,
            503,
            &[],
            problem(503, "Service Unavailable", "Service Unavailable"),
        );
    }
}

impl XState {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    fn issue(&mut self, user: &str, scopes: &[String]) -> (String, Option<String>, u64) {
        let access = token("xat_");
        self.access.insert(
            access.clone(),
            Access {
                user: user.to_owned(),
                scopes: scopes.to_vec(),
                expires: SystemTime::now() + self.access_ttl,
            },
        );
        self.tokens_issued += 1;
        let refresh = scopes.iter().any(|s| s == "offline.access").then(|| {
            let r = token("xrt_");
            self.refresh.insert(
                r.clone(),
                Refresh {
                    user: user.to_owned(),
                    scopes: scopes.to_vec(),
                    valid: true,
                },
            );
            r
        });
        (access, refresh, self.access_ttl.as_secs())
    }

    /// Counts a `POST /2/tweets` by `user` in every window unless a limit refuses it: the
    /// windows' headers, and whether it is refused.
    fn count_post(&mut self, user: &str) -> (Vec<(String, String)>, bool) {
        let now = SystemTime::now();
        let limits = self.post_limits;
        let PostWindows { user: users, app } = &mut self.post_windows;
        let (quarter, day) = users.entry(user.to_owned()).or_default();
        let quarter = Window::current(quarter, now, limits.window);
        let app = Window::current(app, now, limits.day);
        let day = limits
            .per_day_user
            .map(|limit| (Window::current(day, now, limits.day), limit));
        let refused = quarter.used >= limits.per_window
            || app.used >= limits.per_day_app
            || day.as_ref().is_some_and(|(w, limit)| w.used >= *limit);
        if !refused {
            quarter.used += 1;
            app.used += 1;
        }
        let mut headers = Vec::new();
        quarter.headers("x-rate-limit", limits.per_window, &mut headers);
        app.headers("x-app-limit-24hour", limits.per_day_app, &mut headers);
        if let Some((w, limit)) = day {
            if !refused {
                w.used += 1;
            }
            w.headers("x-user-limit-24hour", limit, &mut headers);
        }
        (headers, refused)
    }

    /// The user of a valid bearer token holding every one of `scopes`; else the answer to give.
    #[allow(clippy::result_large_err)] // the error is the response itself, made once per request
    fn authenticate(&self, headers: &HeaderMap, scopes: &[&str]) -> Result<String, Response> {
        let Some(t) = bearer(headers) else {
            return Err(unauthorized());
        };
        let Some(a) = self.access.get(&t) else {
            return Err(unauthorized());
        };
        if a.expires <= SystemTime::now() {
            return Err(unauthorized());
        }
        if let Some(missing) = scopes.iter().find(|s| !a.scopes.iter().any(|h| h == *s)) {
            return Err(json(
                403,
                json!({
                    "title": "Forbidden",
                    "type": "about:blank",
                    "status": 403,
                    "detail": format!("Missing scope: {missing}. You are not permitted to perform this action."),
                }),
            ));
        }
        Ok(a.user.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

fn problem(status: u16, title: &str, detail: &str) -> Value {
    json!({ "title": title, "detail": detail, "type": "about:blank", "status": status })
}

fn unauthorized() -> Response {
    json(401, problem(401, "Unauthorized", "Unauthorized"))
}

/// X's 400 for a malformed request: `errors` naming what is wrong.
fn invalid(message: impl Into<String>, parameters: Value) -> Response {
    json(
        400,
        json!({
            "errors": [{ "parameters": parameters, "message": message.into() }],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        }),
    )
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

async fn not_found() -> Response {
    json(
        404,
        json!({ "errors": [{ "message": "Sorry, that page does not exist", "code": 34 }] }),
    )
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------------
// OAuth

async fn authorize(
    State(state): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut params: HashMap<String, String> = HashMap::new();
    for (k, v) in query {
        if params.insert(k.clone(), v).is_some() {
            return authorize_refused(&format!("Parameter {k} is repeated."));
        }
    }
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if get("response_type") != "code" {
        return authorize_refused("response_type must be code.");
    }
    if get("client_id") != CLIENT_ID {
        return authorize_refused("Unknown client_id.");
    }
    let redirect_uri = get("redirect_uri");
    let mut s = state.lock().unwrap();
    if !s.redirect_uris.iter().any(|r| r == redirect_uri) {
        return authorize_refused(
            "redirect_uri does not match a callback URL registered for the app.",
        );
    }
    let st = get("state");
    if st.is_empty() || st.len() > 500 {
        return authorize_refused("state is required (up to 500 characters).");
    }
    let challenge = get("code_challenge");
    if challenge.is_empty() {
        return authorize_refused("code_challenge is required.");
    }
    let method = get("code_challenge_method");
    if method != "S256" && method != "plain" {
        return authorize_refused("code_challenge_method must be S256 or plain.");
    }
    let scopes: Vec<String> = get("scope").split(' ').map(str::to_owned).collect();
    if scopes.iter().any(|sc| !KNOWN_SCOPES.contains(&sc.as_str())) {
        return authorize_refused("scope holds an unknown scope.");
    }
    let code = token("xcode_");
    s.codes.insert(
        code.clone(),
        Code {
            redirect_uri: redirect_uri.to_owned(),
            challenge: challenge.to_owned(),
            method: method.to_owned(),
            scopes,
            issued: SystemTime::now(),
            used: false,
        },
    );
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!(
        "{redirect_uri}{sep}state={}&code={}",
        percent_encode(st),
        percent_encode(&code)
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn authorize_refused(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<html><body><p>Something went wrong. You weren't able to give access to the App. {why}</p></body></html>"
        ),
    )
        .into_response()
}

async fn token_endpoint(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    match basic(&headers) {
        Some((id, secret)) if id == CLIENT_ID && secret == CLIENT_SECRET => {}
        _ => {
            return oauth_error(
                401,
                "unauthorized_client",
                "Missing valid authorization header",
            );
        }
    }
    if content_type(&headers) != "application/x-www-form-urlencoded" {
        return oauth_error(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
        );
    }
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(why) => return oauth_error(400, "invalid_request", &why),
    };
    let get = |k: &str| form.get(k).map(String::as_str);
    if let Some(id) = get("client_id")
        && id != CLIENT_ID
    {
        return oauth_error(
            400,
            "invalid_request",
            "client_id does not match the client.",
        );
    }
    let mut s = state.lock().unwrap();
    match get("grant_type") {
        Some("authorization_code") => {
            for k in ["code", "redirect_uri", "code_verifier"] {
                if get(k).is_none_or(str::is_empty) {
                    return oauth_error(
                        400,
                        "invalid_request",
                        &format!("Missing required parameter [{k}]."),
                    );
                }
            }
            let code_value = get("code").unwrap();
            let Some(code) = s.codes.get_mut(code_value) else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Value passed for the authorization code was invalid.",
                );
            };
            let fresh = code.issued.elapsed().unwrap_or_default() < CODE_TTL;
            if code.used || !fresh {
                code.used = true;
                return oauth_error(
                    400,
                    "invalid_request",
                    "Value passed for the authorization code was invalid.",
                );
            }
            code.used = true;
            let code = code.clone();
            if get("redirect_uri") != Some(code.redirect_uri.as_str()) {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Value passed for the redirect uri did not match the uri of the authorization code.",
                );
            }
            let verifier = get("code_verifier").unwrap();
            let expected = if code.method == "S256" {
                pkce_challenge(verifier)
            } else {
                verifier.to_owned()
            };
            if expected != code.challenge {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Value passed for the code verifier did not match the code challenge.",
                );
            }
            let (access, refresh, ttl) = s.issue(USER_ID, &code.scopes);
            let faults = std::mem::take(&mut s.token_answer_faults);
            token_answer(access, refresh, ttl, &code.scopes, faults)
        }
        Some("refresh_token") => {
            let Some(value) = get("refresh_token").filter(|v| !v.is_empty()) else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Missing required parameter [refresh_token].",
                );
            };
            let Some(old) = s.refresh.get_mut(value).filter(|r| r.valid) else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Value passed for the token was invalid.",
                );
            };
            old.valid = false;
            let (user, scopes) = (old.user.clone(), old.scopes.clone());
            let (access, refresh, ttl) = s.issue(&user, &scopes);
            let faults = std::mem::take(&mut s.token_answer_faults);
            token_answer(access, refresh, ttl, &scopes, faults)
        }
        Some(_) => oauth_error(
            400,
            "unsupported_grant_type",
            "The grant type is not supported.",
        ),
        None => oauth_error(
            400,
            "invalid_request",
            "Missing required parameter [grant_type].",
        ),
    }
}

fn token_answer(
    access: String,
    refresh: Option<String>,
    ttl: u64,
    scopes: &[String],
    faults: Vec<(String, serde_json::Value)>,
) -> Response {
    let mut body = json!({
        "token_type": "bearer",
        "expires_in": ttl,
        "access_token": access,
        "scope": scopes.join(" "),
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    for (field, value) in faults {
        body[field] = value;
    }
    json(200, body)
}

// ---------------------------------------------------------------------------------------------
// Users and posts

async fn users_me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let s = state.lock().unwrap();
    if let Err(r) = s.authenticate(&headers, &["users.read", "tweet.read"]) {
        return r;
    }
    json(
        200,
        json!({ "data": { "id": USER_ID, "name": NAME, "username": USERNAME } }),
    )
}

async fn timeline(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut s = state.lock().unwrap();
    s.timeline_calls += 1;
    if let Err(r) = s.authenticate(&headers, &["tweet.read", "users.read"]) {
        return r;
    }
    let known: Vec<&str> = TIMELINE_PARAMS
        .iter()
        .chain(&s.fields_parameters)
        .copied()
        .collect();
    let mut params: HashMap<String, String> = HashMap::new();
    for (k, v) in query {
        if !known.contains(&k.as_str()) {
            return invalid(
                format!(
                    "The query parameter [{k}] is not one of [{}]",
                    known.join(",")
                ),
                json!({ k.clone(): [v] }),
            );
        }
        if params.insert(k.clone(), v).is_some() {
            return invalid(format!("The query parameter [{k}] is repeated."), json!({}));
        }
    }
    if !is_id(&id) {
        return invalid(
            format!("The `id` query parameter value [{id}] does not match ^[0-9]{{1,19}}$"),
            json!({ "id": [id] }),
        );
    }
    let max_results = match params.get("max_results") {
        None => 10,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (5..=100).contains(&n) => n,
            _ => {
                return invalid(
                    format!(
                        "The `max_results` query parameter value [{v}] is not between 5 and 100"
                    ),
                    json!({ "max_results": [v] }),
                );
            }
        },
    };
    let mut bounds = [None, None];
    for (i, name) in ["start_time", "end_time"].iter().enumerate() {
        if let Some(v) = params.get(*name) {
            match parse_time(v) {
                Some(t) => bounds[i] = Some(t),
                None => {
                    return invalid(
                        format!(
                            "Invalid '{name}':'{v}'. '{name}' must be a valid RFC 3339 date of the form YYYY-MM-DDTHH:mm:ssZ."
                        ),
                        json!({ *name: [v] }),
                    );
                }
            }
        }
    }
    for (name, allowed) in [("exclude", &["replies", "retweets"][..])]
        .into_iter()
        .chain(FIELDS_PARAMETERS.iter().copied())
    {
        if let Some(v) = params.get(name)
            && let Some(bad) = v.split(',').find(|f| !allowed.contains(f))
        {
            return invalid(
                format!(
                    "The `{name}` query parameter value [{bad}] is not one of [{}]",
                    allowed.join(",")
                ),
                json!({ name: [v] }),
            );
        }
    }
    if id != USER_ID {
        return json(
            200,
            json!({ "errors": [{
                "value": id,
                "detail": format!("Could not find user with id: [{id}]."),
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "id",
                "resource_id": id,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }] }),
        );
    }
    let offset = match params.get("pagination_token") {
        None => 0,
        Some(t) => match t.strip_prefix("xpt").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return invalid(
                    "The `pagination_token` query parameter value is invalid.",
                    json!({ "pagination_token": [t] }),
                );
            }
        },
    };
    let fields: Vec<&str> = FIELDS_PARAMETERS
        .iter()
        .filter_map(|(name, _)| params.get(*name))
        .flat_map(|v| v.split(','))
        .collect();
    let mut mine: Vec<&FakeTweet> = s
        .tweets
        .iter()
        .filter(|(author, _)| author == &id)
        .map(|(_, t)| t)
        .filter(|t| bounds[0].is_none_or(|b| t.created_at >= b))
        .filter(|t| bounds[1].is_none_or(|b| t.created_at <= b))
        .filter(|t| {
            s.listed_from
                .get(&t.id)
                .is_none_or(|from| *from <= std::time::Instant::now())
        })
        .collect();
    mine.sort_by(|a, b| b.id.cmp(&a.id).then(b.created_at.cmp(&a.created_at)));
    let page: Vec<&FakeTweet> = mine
        .iter()
        .skip(offset)
        .take(max_results)
        .copied()
        .collect();
    let mut meta = Map::new();
    meta.insert("result_count".into(), json!(page.len()));
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        meta.insert("newest_id".into(), json!(first.id));
        meta.insert("oldest_id".into(), json!(last.id));
    }
    if offset + page.len() < mine.len() {
        meta.insert(
            "next_token".into(),
            json!(format!("xpt{}", offset + page.len())),
        );
    }
    let mut body = Map::new();
    if !page.is_empty() {
        let data: Vec<Value> = page
            .iter()
            .map(|t| {
                let mut o = json!({
                    "id": t.id,
                    "text": shown_text(t),
                    "edit_history_tweet_ids": [t.id],
                });
                if fields.contains(&"created_at") {
                    o["created_at"] = json!(rfc3339(t.created_at));
                }
                if fields.contains(&"attachments") && !t.media_ids.is_empty() {
                    let keys: Vec<String> = t
                        .media_ids
                        .iter()
                        .map(|m| media_key(s.sessions.get(m), m))
                        .collect();
                    o["attachments"] = json!({ "media_keys": keys });
                }
                o
            })
            .collect();
        body.insert("data".into(), Value::Array(data));
    }
    body.insert("meta".into(), Value::Object(meta));
    json(200, Value::Object(body))
}

async fn create_tweet(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().unwrap();
    s.create_calls += 1;
    let user = match s.authenticate(&headers, &["tweet.read", "tweet.write", "users.read"]) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (limits, refused) = s.count_post(&user);
    let mut response = if refused {
        json(
            429,
            json!({ "errors": [{ "code": 88, "message": "Rate limit exceeded" }] }),
        )
    } else {
        create(&mut s, user, &headers, &body)
    };
    for (name, value) in limits {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

/// `POST /2/tweets` past authentication and the limits.
fn create(s: &mut XState, user: String, headers: &HeaderMap, body: &[u8]) -> Response {
    if content_type(headers) != "application/json" {
        return invalid("Content-Type must be application/json.", json!({}));
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return invalid("The request body is not a JSON object.", json!({}));
    };
    if let Some(k) = req.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
        return invalid(
            format!(
                "$.{k}: is not defined in the schema and the schema does not allow additional properties"
            ),
            json!({}),
        );
    }
    let text = match req.get("text") {
        None => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(other) => {
            return invalid(
                format!("$.text: {} found, string expected", json_type(other)),
                json!({ "text": [other] }),
            );
        }
    };
    let mut media_ids: Vec<String> = Vec::new();
    if let Some(media) = req.get("media") {
        let Some(ids) = media.get("media_ids").and_then(Value::as_array) else {
            return invalid(
                "$.media.media_ids: is missing but it is required",
                json!({}),
            );
        };
        if ids.is_empty() || ids.len() > 4 {
            return invalid(
                "$.media.media_ids: there must be between 1 and 4 items in the array",
                json!({ "media.media_ids": ids }),
            );
        }
        for v in ids {
            match v.as_str() {
                Some(id) if is_id(id) => media_ids.push(id.to_owned()),
                _ => {
                    return invalid(
                        format!("$.media.media_ids: {} is not a media id string", v),
                        json!({ "media.media_ids": ids }),
                    );
                }
            }
        }
        let usable = media_ids.iter().all(|id| {
            s.sessions.get(id).is_some_and(|m| {
                m.owner == user
                    && m.upload.finalized
                    && m.processing.is_none_or(|p| p == "succeeded")
            })
        });
        let gifs = media_ids
            .iter()
            .filter(|id| {
                s.sessions
                    .get(*id)
                    .is_some_and(|m| m.upload.media_category == "tweet_gif")
            })
            .count();
        if !usable || (gifs > 0 && media_ids.len() > 1) {
            return invalid(
                "Your media IDs are invalid.",
                json!({ "media.media_ids": media_ids }),
            );
        }
    }
    let text = text.unwrap_or_default();
    if text.is_empty() && media_ids.is_empty() {
        return invalid(
            "You must provide either text or media for a Post.",
            json!({ "text": [""] }),
        );
    }
    if weighted_length(&text) > 280 {
        return json(
            403,
            problem(403, "Forbidden", "Your Tweet text is too long."),
        );
    }
    if !text.is_empty()
        && s.tweets
            .iter()
            .any(|(author, t)| author == &user && t.text == text)
    {
        return json(
            403,
            problem(
                403,
                "Forbidden",
                "You are not allowed to create a Tweet with duplicate content.",
            ),
        );
    }
    let id = s.new_id();
    let tweet = FakeTweet {
        id: id.clone(),
        text,
        media_ids,
        created_at: unix_now(),
    };
    let shown = shown_text(&tweet);
    if !s.timeline_lag.is_zero() {
        let from = std::time::Instant::now() + s.timeline_lag;
        s.listed_from.insert(id.clone(), from);
    }
    s.tweets.push((user, tweet));
    json(201, json!({ "data": { "id": id, "text": shown } }))
}

/// The text as X shows it: HTML-escaped, with a t.co link to attached media.
fn shown_text(t: &FakeTweet) -> String {
    let mut out = t
        .text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    if !t.media_ids.is_empty() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("https://t.co/m{}", &t.id[t.id.len() - 6..]));
    }
    out
}

/// twitter-text's weighted length: most Latin, Greek, Cyrillic… count 1, other characters
/// (CJK, emoji) 2, every URL 23.
fn weighted_length(text: &str) -> usize {
    let mut total = 0;
    for word in text.split_inclusive(char::is_whitespace) {
        let trimmed = word.trim_end();
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            total += 23 + (word.len() - trimmed.len());
            continue;
        }
        total += word
            .chars()
            .map(|c| {
                let cp = c as u32;
                let light = cp <= 4351
                    || (8192..=8205).contains(&cp)
                    || (8208..=8223).contains(&cp)
                    || (8242..=8247).contains(&cp);
                if light { 1 } else { 2 }
            })
            .sum::<usize>();
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Media

fn media_key(session: Option<&Session>, id: &str) -> String {
    let prefix = match session.map(|s| s.upload.media_category.as_str()) {
        Some("tweet_gif") => "16",
        Some("tweet_video") => "7",
        Some("amplify_video") => "13",
        _ => "3",
    };
    format!("{prefix}_{id}")
}

async fn media_initialize(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    s.init_calls += 1;
    let user = match s.authenticate(&headers, &["media.write"]) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if content_type(&headers) != "application/json" {
        return invalid("Content-Type must be application/json.", json!({}));
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return invalid("The request body is not a JSON object.", json!({}));
    };
    const FIELDS: &[&str] = &[
        "media_type",
        "total_bytes",
        "media_category",
        "additional_owners",
        "shared",
    ];
    if let Some(k) = req.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return invalid(
            format!(
                "$.{k}: is not defined in the schema and the schema does not allow additional properties"
            ),
            json!({}),
        );
    }
    let Some(media_type) = req.get("media_type").and_then(Value::as_str) else {
        return invalid("$.media_type: is missing but it is required", json!({}));
    };
    if !MEDIA_TYPES.contains(&media_type) {
        return invalid(
            format!(
                "$.media_type: does not have a value in the enumeration [{}]",
                MEDIA_TYPES.join(", ")
            ),
            json!({ "media_type": [media_type] }),
        );
    }
    let Some(total_bytes) = req.get("total_bytes").and_then(Value::as_u64) else {
        return invalid("$.total_bytes: is missing or not an integer", json!({}));
    };
    let category = match req.get("media_category") {
        None => {
            if media_type == "image/gif" {
                "tweet_gif"
            } else if media_type.starts_with("video/") {
                "tweet_video"
            } else {
                "tweet_image"
            }
        }
        Some(Value::String(c)) if MEDIA_CATEGORIES.contains(&c.as_str()) => {
            MEDIA_CATEGORIES.iter().find(|x| **x == c).unwrap()
        }
        Some(other) => {
            return invalid(
                format!(
                    "$.media_category: does not have a value in the enumeration [{}]",
                    MEDIA_CATEGORIES.join(", ")
                ),
                json!({ "media_category": [other] }),
            );
        }
    };
    let (fits, limit) = match category {
        "tweet_image" => (
            [
                "image/jpeg",
                "image/png",
                "image/webp",
                "image/bmp",
                "image/pjpeg",
                "image/tiff",
            ]
            .contains(&media_type),
            5 * MB,
        ),
        "tweet_gif" => (media_type == "image/gif", 15 * MB),
        "tweet_video" | "amplify_video" | "dm_video" => {
            (media_type.starts_with("video/"), 512 * MB)
        }
        _ => (true, 512 * MB),
    };
    if !fits {
        return invalid(
            format!("media_type {media_type} does not fit media_category {category}."),
            json!({ "media_type": [media_type], "media_category": [category] }),
        );
    }
    if total_bytes == 0 || total_bytes > limit {
        return invalid(
            format!("File size exceeds {} bytes or is empty.", limit),
            json!({ "total_bytes": [total_bytes] }),
        );
    }
    let id = s.new_id();
    let session = Session {
        upload: FakeUpload {
            id: id.clone(),
            media_type: media_type.to_owned(),
            media_category: category.to_owned(),
            total_bytes,
            bytes: Vec::new(),
            finalized: false,
            appends: Vec::new(),
            states: Vec::new(),
        },
        owner: user,
        segments: BTreeMap::new(),
        processing: None,
        polls: 0,
        failure: None,
    };
    let key = media_key(Some(&session), &id);
    s.sessions.insert(id.clone(), session);
    json(
        200,
        json!({ "data": { "id": id, "media_key": key, "expires_after_secs": 86400 } }),
    )
}

async fn media_append(
    State(state): State<Shared>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    {
        let s = state.lock().unwrap();
        let user = match s.authenticate(&headers, &["media.write"]) {
            Ok(u) => u,
            Err(r) => return r,
        };
        match s.sessions.get(&id) {
            Some(m) if m.owner == user && !m.upload.finalized => {}
            _ => return invalid("Invalid media id or upload session.", json!({ "id": [id] })),
        }
    }
    if content_type(&headers) != "multipart/form-data" {
        return invalid("Content-Type must be multipart/form-data.", json!({}));
    }
    let mut multipart = match Multipart::from_request(request, &()).await {
        Ok(m) => m,
        Err(_) => return invalid("The multipart body could not be read.", json!({})),
    };
    let mut segment: Option<String> = None;
    let mut media: Option<Vec<u8>> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_owned();
                let Ok(data) = field.bytes().await else {
                    return invalid("The multipart body could not be read.", json!({}));
                };
                match name.as_str() {
                    "segment_index" => segment = Some(String::from_utf8_lossy(&data).into_owned()),
                    "media" => media = Some(data.to_vec()),
                    other => {
                        return invalid(format!("Unexpected field [{other}]."), json!({}));
                    }
                }
            }
            Ok(None) => break,
            Err(_) => return invalid("The multipart body could not be read.", json!({})),
        }
    }
    let index = match segment.as_deref().map(str::parse::<u32>) {
        Some(Ok(n)) if n <= 999 => n,
        _ => {
            return invalid(
                "segment_index is required, an integer between 0 and 999.",
                json!({ "segment_index": [segment] }),
            );
        }
    };
    let Some(media) = media.filter(|m| !m.is_empty()) else {
        return invalid("media is required.", json!({}));
    };
    if media.len() as u64 > 5 * MB {
        return invalid("A segment must be at most 5 MB.", json!({}));
    }
    let mut s = state.lock().unwrap();
    let Some(session) = s.sessions.get_mut(&id).filter(|m| !m.upload.finalized) else {
        return invalid("Invalid media id or upload session.", json!({ "id": [id] }));
    };
    // Segments come in order: the next one, or the last one again (a retried APPEND).
    let next = session.segments.len() as u32;
    if index > next || (index + 1 < next) {
        return invalid(
            format!("segment_index {index} is out of order: the next segment is {next}."),
            json!({ "segment_index": [index] }),
        );
    }
    let before: usize = session
        .segments
        .iter()
        .filter(|(k, _)| **k != index)
        .map(|(_, v)| v.len())
        .sum();
    if (before + media.len()) as u64 > session.upload.total_bytes {
        return invalid(
            format!(
                "The segments exceed total_bytes ({} bytes).",
                session.upload.total_bytes
            ),
            json!({ "segment_index": [index] }),
        );
    }
    session.upload.appends.push((index, media.len()));
    session.segments.insert(index, media);
    json(200, json!({ "data": { "expires_at": unix_now() + 86400 } }))
}

async fn media_finalize(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut s = state.lock().unwrap();
    let user = match s.authenticate(&headers, &["media.write"]) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(session) = s.sessions.get_mut(&id).filter(|m| m.owner == user) else {
        return invalid("Invalid media id or upload session.", json!({ "id": [id] }));
    };
    if !session.upload.finalized {
        let contiguous = session
            .segments
            .keys()
            .enumerate()
            .all(|(i, k)| i as u32 == *k);
        let bytes: Vec<u8> = session.segments.values().flatten().copied().collect();
        if session.segments.is_empty() || !contiguous {
            return invalid("Segments are missing.", json!({ "id": [id] }));
        }
        if bytes.len() as u64 != session.upload.total_bytes {
            return invalid(
                format!(
                    "File size mismatch: {} bytes received, total_bytes was {}.",
                    bytes.len(),
                    session.upload.total_bytes
                ),
                json!({ "id": [id] }),
            );
        }
        if !bytes_are(&bytes, &session.upload.media_type) {
            return invalid(
                "InvalidMedia: the file is not of the declared media_type.",
                json!({ "id": [id] }),
            );
        }
        session.upload.bytes = bytes;
        session.upload.finalized = true;
        if session.upload.media_category == "tweet_gif" || is_video(session) {
            session.processing = Some("pending");
        }
    }
    let session = session.clone();
    json(
        200,
        json!({ "data": upload_status(&session, s.check_after_secs) }),
    )
}

fn is_video(session: &Session) -> bool {
    matches!(
        session.upload.media_category.as_str(),
        "tweet_video" | "amplify_video" | "dm_video"
    )
}

/// A video's processing, one STATUS poll further: `pending` → `in_progress` (for `steps` polls)
/// → `succeeded`, or `failed` when `failure` is set.
fn advance_video(session: &mut Session, steps: u32, failure: Option<&str>) {
    match session.processing {
        Some("pending") | Some("in_progress") if session.polls < steps => {
            session.polls += 1;
            session.processing = Some("in_progress");
        }
        Some("pending") | Some("in_progress") => match failure {
            Some(message) => {
                session.processing = Some("failed");
                session.failure = Some(message.to_owned());
            }
            None => session.processing = Some("succeeded"),
        },
        _ => {}
    }
}

fn upload_status(session: &Session, check_after_secs: u64) -> Value {
    let mut data = json!({
        "id": session.upload.id,
        "media_key": media_key(Some(session), &session.upload.id),
        "size": session.upload.total_bytes,
        "expires_after_secs": 86400,
    });
    if let Some(state) = session.processing {
        let mut info = json!({ "state": state });
        match state {
            "succeeded" => info["progress_percent"] = json!(100),
            "failed" => {
                info["progress_percent"] = json!(session.polls * 10);
                info["error"] = json!({
                    "code": 1,
                    "name": "InvalidMedia",
                    "message": session.failure.as_deref().unwrap_or("Unsupported video format"),
                });
            }
            "in_progress" => {
                info["check_after_secs"] = json!(check_after_secs);
                info["progress_percent"] = json!((session.polls * 10).min(99));
            }
            _ => {
                info["check_after_secs"] = json!(check_after_secs);
                info["progress_percent"] = json!(0);
            }
        }
        data["processing_info"] = info;
    }
    data
}

async fn media_status(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().unwrap();
    let user = match s.authenticate(&headers, &["media.write"]) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if query.get("command").map(String::as_str) != Some("STATUS") {
        return invalid(
            "command must be STATUS.",
            json!({ "command": [query.get("command")] }),
        );
    }
    let Some(id) = query.get("media_id").filter(|i| is_id(i)) else {
        return invalid("media_id is required.", json!({}));
    };
    let (steps, failure, check_after) =
        (s.video_steps, s.video_failure.clone(), s.check_after_secs);
    let Some(session) = s
        .sessions
        .get_mut(id)
        .filter(|m| m.owner == user && m.upload.finalized)
    else {
        return invalid("Invalid media id.", json!({ "media_id": [id] }));
    };
    if is_video(session) {
        advance_video(session, steps, failure.as_deref());
        let now = upload_status(session, check_after);
        session
            .upload
            .states
            .push(session.processing.unwrap_or("").to_owned());
        return json(200, json!({ "data": now }));
    }
    let now = upload_status(session, check_after);
    if session.processing.is_some() {
        // A GIF's processing ends once it has been asked about.
        session.processing = Some("succeeded");
    }
    json(200, json!({ "data": now }))
}

fn bytes_are(bytes: &[u8], media_type: &str) -> bool {
    match media_type {
        "image/jpeg" | "image/pjpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        // ISO base media files (MP4, QuickTime) open with an `ftyp` box.
        "video/mp4" | "video/quicktime" => bytes.len() >= 12 && &bytes[4..8] == b"ftyp",
        "video/webm" => bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

/// `application/x-www-form-urlencoded`, each name once.
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "The body is not UTF-8.".to_owned())?;
    let mut out = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k)?, percent_decode(v)?);
        if out.insert(k.clone(), v).is_some() {
            return Err(format!("Parameter [{k}] is repeated."));
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "Bad percent-encoding.".to_owned())?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "The form is not UTF-8.".to_owned())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `YYYY-MM-DDTHH:mm:ssZ` exactly (X refuses milliseconds here) to Unix seconds.
fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// Unix seconds as X writes `created_at`: `2021-01-06T18:40:40.000Z`.
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2021-01-06T18:40:40Z"), Some(1_609_958_440));
        assert_eq!(rfc3339(1_609_958_440), "2021-01-06T18:40:40.000Z");
        assert_eq!(parse_time("2021-01-06T18:40:40.000Z"), None);
        assert_eq!(parse_time("2021-13-06T18:40:40Z"), None);
    }

    #[test]
    fn lengths_are_weighted() {
        assert_eq!(weighted_length("hello"), 5);
        assert_eq!(weighted_length("日本"), 4);
        assert_eq!(
            weighted_length("see https://example.com/very/long/path"),
            4 + 23
        );
    }

    #[test]
    fn forms_decode() {
        let f = parse_form(b"a=1&b=x+y%2Fz").unwrap();
        assert_eq!(f["b"], "x y/z");
        assert!(parse_form(b"a=1&a=2").is_err());
    }
}
