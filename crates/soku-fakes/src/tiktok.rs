//! A fake of TikTok's Login Kit for Web and Content Posting API (Direct Post of videos and
//! photos), stateful: tokens that expire and refresh, a creator whose settings are knobs, uploads
//! checked chunk by chunk, publishes whose status moves on as they are polled, rate limits, the
//! daily caps and the unaudited-app restrictions.
//!
//! Every field this fake reads or answers is pinned to a line of TikTok's documentation, quoted
//! in the comment above the code that handles it. Sources (the stored copies read are verbatim
//! copies of these pages, see `docs/research/tiktok-youtube-snapchat.md`):
//! - [LOGIN] <https://developers.tiktok.com/doc/login-kit-web>
//! - [DESKTOP] <https://developers.tiktok.com/doc/login-kit-desktop> (PKCE)
//! - [TOKEN] <https://developers.tiktok.com/doc/oauth-user-access-token-management>
//! - [OAUTH-ERR] <https://developers.tiktok.com/doc/oauth-error-handling>
//! - [ERR] <https://developers.tiktok.com/doc/tiktok-api-v2-error-handling>
//! - [RATE] <https://developers.tiktok.com/doc/tiktok-api-v2-rate-limit>
//! - [CREATOR] <https://developers.tiktok.com/doc/content-posting-api-reference-query-creator-info>
//! - [DIRECT] <https://developers.tiktok.com/doc/content-posting-api-reference-direct-post>
//! - [TRANSFER] <https://developers.tiktok.com/doc/content-posting-api-media-transfer-guide>
//! - [PHOTO] <https://developers.tiktok.com/doc/content-posting-api-reference-photo-post>
//! - [STATUS] <https://developers.tiktok.com/doc/content-posting-api-reference-get-video-status>
//! - [GUIDE] <https://developers.tiktok.com/doc/content-sharing-guidelines>
//! - [SCOPES] <https://developers.tiktok.com/doc/scopes-overview>
//!
//! Where the documentation is silent the fake says what it chose ("undocumented:").
//!
//! Routes:
//! - `GET /v2/auth/authorize/`: the authorization page; its user approves (302 to the callback).
//! - `POST /v2/oauth/token/`: code exchange and refresh; errors as flat JSON with HTTP 200.
//! - `POST /v2/post/publish/creator_info/query/`
//! - `POST /v2/post/publish/video/init/` (`FILE_UPLOAD` and `PULL_FROM_URL`)
//! - `PUT /upload/video/?upload_id=..&upload_token=..`: the `upload_url` it hands out.
//! - `POST /v2/post/publish/content/init/` (photos, `PULL_FROM_URL`)
//! - `POST /v2/post/publish/status/fetch/`

// Checks hand back the refusal to send as-is; a fake's speed is no concern.
#![allow(clippy::result_large_err)]

use crate::common::{Fake, Faults, bearer, json, parse_form, percent_encode, token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CLIENT_KEY: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// The callback registered with the fake app at start; others with `register_redirect_uri`.
pub const REDIRECT_URI: &str = "https://soku.test/v1/oauth/tiktok/callback";
/// The creator who approves on the authorization page.
pub const OPEN_ID: &str = "afd97af1-b87b-48b9-ac98-410aghda5344";
pub const USERNAME: &str = "soku.creator";
pub const NICKNAME: &str = "Soku Creator";
/// [TOKEN] `expires_in`: "It is valid for 24 hours after initial issuance."
pub const ACCESS_TTL_SECS: u64 = 86_400;
/// [TOKEN] `refresh_token`: "It is valid for 365 days after the initial issuance."
pub const REFRESH_TTL_SECS: u64 = 31_536_000;
/// Undocumented: how long an authorization code works. The fake keeps codes 10 minutes.
const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// [TRANSFER] "Each chunk must be at least 5 MB but no greater than 64 MB, except for the final
/// chunk, which can be greater than `chunk_size` (up to 128 MB)". The docs use "MB" for both
/// 4,194,304 bytes ("the media file is 4 MB") and 10,000,000 bytes; the fake takes the strictest
/// reading of each bound: at least 5 MiB, at most 64,000,000 and 128,000,000 bytes.
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;
pub const MAX_CHUNK: u64 = 64_000_000;
pub const MAX_FINAL_CHUNK: u64 = 128_000_000;
/// [TRANSFER] "There must be a minimum of 1 chunk and a maximum of 1000 chunks."
pub const MAX_CHUNKS: u64 = 1000;
/// [DIRECT] "Note: The `upload_url` is valid for one hour after issuance."
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(3600);
/// [GUIDE] "Posting cap: ... (typically around 15 posts per day/...)".
pub const DEFAULT_POST_CAP: usize = 15;
/// [GUIDE] "User cap: Unaudited API Clients can allow up to 5 users to post in a 24 hour window."
pub const UNAUDITED_USER_CAP: usize = 5;
/// [CREATOR] "If the TikTok creator account is public, the available options are:
/// `PUBLIC_TO_EVERYONE` `MUTUAL_FOLLOW_FRIENDS` `SELF_ONLY`"
pub const PUBLIC_OPTIONS: [&str; 3] = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];
/// [CREATOR] "If the TikTok creator account is private, the available options are:
/// `FOLLOWER_OF_CREATOR` `MUTUAL_FOLLOW_FRIENDS` `SELF_ONLY`"
pub const PRIVATE_OPTIONS: [&str; 3] =
    ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];
/// [DIRECT] `privacy_level` "Enum of: PUBLIC_TO_EVERYONE MUTUAL_FOLLOW_FRIENDS
/// FOLLOWER_OF_CREATOR SELF_ONLY".
const PRIVACY_LEVELS: [&str; 4] = [
    "PUBLIC_TO_EVERYONE",
    "MUTUAL_FOLLOW_FRIENDS",
    "FOLLOWER_OF_CREATOR",
    "SELF_ONLY",
];
/// [SCOPES] "The scope user.info.basic will be added by default for all apps with Login Kit."
const KNOWN_SCOPES: &[&str] = &[
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.list",
    "video.publish",
    "video.upload",
];

/// The endpoints whose per-token limits the fake counts ([RATE] "Request rate calculation is
/// based on a one minute sliding window").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// [CREATOR] "Each user access_token is limited to 20 requests per minute."
    CreatorInfo,
    /// [DIRECT] "Each user access_token is limited to 6 requests per minute."
    VideoInit,
    /// [PHOTO] "Each user access_token is limited to six requests per minute."
    ContentInit,
    /// [STATUS] "Each user access_token is limited to 30 requests per minute."
    Status,
}

impl Endpoint {
    fn default_limit(self) -> usize {
        match self {
            Endpoint::CreatorInfo => 20,
            Endpoint::VideoInit | Endpoint::ContentInit => 6,
            Endpoint::Status => 30,
        }
    }
}

/// How the token endpoint answers a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// The same refresh token again.
    Same,
    /// [TOKEN] "The returned refresh_token may be different than the one passed in the payload."
    /// A new one; the old one stops working.
    Rotate,
}

/// What the creator's account allows, as `creator_info/query` tells it.
#[derive(Debug, Clone)]
pub struct Creator {
    pub username: String,
    pub nickname: String,
    /// A private account: [CREATOR]'s private options, and Duet and Stitch disabled ("Returns
    /// `true` if the creator account is private or they set the Duet interaction to "No one"").
    pub private: bool,
    /// Overrides the options the account's privacy gives.
    pub privacy_options: Option<Vec<String>>,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
    /// [CREATOR] `max_video_post_duration_sec`: "The longest video duration in seconds that the
    /// TikTok creator can post."
    pub max_video_post_duration_sec: u32,
    /// [DIRECT] `spam_risk_user_banned_from_posting`: "The user is banned from making new posts."
    pub banned: bool,
    /// Posts a day through the API ([`DEFAULT_POST_CAP`]).
    pub post_cap: usize,
}

impl Default for Creator {
    fn default() -> Self {
        Self {
            username: USERNAME.into(),
            nickname: NICKNAME.into(),
            private: false,
            privacy_options: None,
            comment_disabled: false,
            duet_disabled: false,
            stitch_disabled: false,
            max_video_post_duration_sec: 600,
            banned: false,
            post_cap: DEFAULT_POST_CAP,
        }
    }
}

impl Creator {
    pub fn options(&self) -> Vec<String> {
        self.privacy_options.clone().unwrap_or_else(|| {
            let list = if self.private {
                PRIVATE_OPTIONS
            } else {
                PUBLIC_OPTIONS
            };
            list.iter().map(|s| s.to_string()).collect()
        })
    }
}

/// A publish (one `publish_id`) as the fake holds it.
#[derive(Debug, Clone)]
pub struct FakePublish {
    pub publish_id: String,
    pub open_id: String,
    /// `VIDEO` or `PHOTO`.
    pub media_type: String,
    /// `FILE_UPLOAD` or `PULL_FROM_URL`.
    pub source: String,
    /// The init request's body, as sent.
    pub body: Value,
    /// `post_info.privacy_level` as sent.
    pub privacy_level: String,
    /// What the post is shown as: `SELF_ONLY` when the app is unaudited ([DIRECT] "All content
    /// posted by unaudited clients will be restricted to private viewing mode.").
    pub effective_privacy: String,
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
    /// PUTs accepted for each chunk.
    pub chunk_puts: Vec<usize>,
    /// The bytes received, in order.
    pub bytes: Vec<u8>,
    /// The `Content-Type` of each accepted chunk.
    pub chunk_types: Vec<String>,
    /// Photo (or pulled video) URLs.
    pub urls: Vec<String>,
    /// `PROCESSING_UPLOAD`, `PROCESSING_DOWNLOAD`, `PUBLISH_COMPLETE` or `FAILED`.
    pub status: String,
    pub fail_reason: Option<String>,
    /// The public post's id, once it is public and moderated.
    pub post_id: Option<u64>,
    /// The statuses `status/fetch` answered, in order.
    pub answered: Vec<String>,
    upload_id: String,
    upload_token: String,
    upload_expires: Instant,
    polls_left: usize,
    moderation_left: usize,
    fail: Option<String>,
    downloaded: bool,
}

impl FakePublish {
    /// Whether every byte of a `FILE_UPLOAD` has arrived.
    pub fn uploaded(&self) -> bool {
        self.source == "FILE_UPLOAD" && self.bytes.len() as u64 == self.video_size
    }
}

struct Grant {
    redirect_uri: String,
    scope: String,
    challenge: Option<String>,
    issued: Instant,
}

struct AccessToken {
    open_id: String,
    scope: String,
    expires: Instant,
    revoked: bool,
}

struct RefreshToken {
    open_id: String,
    scope: String,
    expires: Instant,
    revoked: bool,
}

struct Inner {
    base_url: String,
    redirect_uris: Vec<String>,
    /// PKCE required on the authorization page (field reports; [DESKTOP] requires it for desktop
    /// apps). Off: the web guide's parameters, where PKCE is optional.
    require_pkce: bool,
    /// The scopes the user grants, when fewer than asked ([SCOPES] "Users can grant or deny the
    /// requested scopes or any subset of them").
    granted: Option<String>,
    codes: HashMap<String, Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    refresh_mode: RefreshMode,
    /// The HTTP status of OAuth errors: 200, as recorded live (see the research notes).
    oauth_error_status: u16,
    creator: Creator,
    audited: bool,
    /// Distinct creators who may post through the app in 24 hours (`None`: no cap).
    active_user_cap: Option<usize>,
    /// Verified domains and URL prefixes ([TRANSFER] "Pull from URL").
    verified: Vec<String>,
    /// Refuse `http://` media URLs ([TRANSFER] "The media URL must use "https""): on unless
    /// tests on loopback turn it off.
    require_https: bool,
    /// GET photo URLs as TikTok downloads them.
    fetch_media: bool,
    fetched: Vec<(String, Result<u16, String>)>,
    publishes: Vec<FakePublish>,
    /// (open_id, when) of each accepted init, for the daily caps.
    posted: Vec<(String, Instant)>,
    next_id: u64,
    processing_polls: usize,
    moderation_polls: usize,
    processing_failure: Option<String>,
    upload_url_ttl: Duration,
    /// The 416's `Content-Range` ends at the count of bytes held (`{UPLOADED_BYTES}` read
    /// literally) instead of the last byte's index.
    range_end_is_count: bool,
    limits: HashMap<Endpoint, usize>,
    windows: HashMap<(String, Endpoint), VecDeque<Instant>>,
    /// Fields the next successful token answer carries in place of its own (fault injection:
    /// the tokens issued and the old refresh token spent, another field odd).
    token_answer_faults: Vec<(String, Value)>,
    calls: HashMap<&'static str, usize>,
    /// The authorization requests' query strings, as received.
    authorize_queries: Vec<HashMap<String, String>>,
    /// The PUTs' `Authorization` headers (TikTok's upload URL takes none).
    put_authorizations: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct TikTokFake {
    pub url: String,
    pub faults: Faults,
    inner: Shared,
    _fake: Fake,
}

impl TikTokFake {
    pub async fn start() -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            base_url: String::new(),
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            require_pkce: false,
            granted: None,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            refresh_mode: RefreshMode::Same,
            oauth_error_status: 200,
            creator: Creator::default(),
            audited: true,
            active_user_cap: None,
            verified: Vec::new(),
            require_https: true,
            fetch_media: false,
            fetched: Vec::new(),
            publishes: Vec::new(),
            posted: Vec::new(),
            next_id: 7_312_345_678_901_234_000,
            processing_polls: 1,
            moderation_polls: 0,
            processing_failure: None,
            upload_url_ttl: UPLOAD_URL_TTL,
            range_end_is_count: false,
            limits: HashMap::new(),
            windows: HashMap::new(),
            token_answer_faults: Vec::new(),
            calls: HashMap::new(),
            authorize_queries: Vec::new(),
            put_authorizations: Vec::new(),
        }));
        let router = Router::new()
            .route("/v2/auth/authorize/", get(authorize_page))
            .route("/v2/oauth/token/", post(token_endpoint))
            .route("/v2/post/publish/creator_info/query/", post(creator_info))
            .route("/v2/post/publish/video/init/", post(video_init))
            .route("/v2/post/publish/content/init/", post(content_init))
            .route("/v2/post/publish/status/fetch/", post(status_fetch))
            .route(
                "/upload/video/",
                put(upload_chunk).layer(DefaultBodyLimit::max(MAX_FINAL_CHUNK as usize + 1024)),
            )
            .with_state(inner.clone());
        let faults = Faults::default();
        let fake = Fake::serve(router, faults.clone()).await;
        inner.lock().unwrap().base_url = fake.url.clone();
        Self {
            url: fake.url.clone(),
            faults,
            inner,
            _fake: fake,
        }
    }

    /// The authorization page's URL, as the connector's `auth_url`.
    pub fn auth_url(&self) -> String {
        format!("{}/v2/auth/authorize/", self.url)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    pub fn register_redirect_uri(&self, uri: &str) {
        self.lock().redirect_uris.push(uri.to_owned());
    }

    pub fn require_pkce(&self, on: bool) {
        self.lock().require_pkce = on;
    }

    /// The user grants only these scopes (comma-separated); `None`: all that were asked.
    pub fn set_granted_scopes(&self, scopes: Option<&str>) {
        self.lock().granted = scopes.map(str::to_owned);
    }

    /// The next successful token answer (the tokens issued as usual, a refresh token spent)
    /// carries `value` as its `field` (`expires_in` as `"soon"`, another `open_id`, a `scope`
    /// without `video.publish`); several calls change several fields.
    pub fn alter_next_token_answer(&self, field: &str, value: Value) {
        self.lock()
            .token_answer_faults
            .push((field.to_owned(), value));
    }

    pub fn set_refresh_mode(&self, mode: RefreshMode) {
        self.lock().refresh_mode = mode;
    }

    /// The HTTP status OAuth errors come with (200 unless set).
    pub fn set_oauth_error_status(&self, status: u16) {
        self.lock().oauth_error_status = status;
    }

    /// An access token for `OPEN_ID` with these (comma-separated) scopes, as if connected.
    pub fn mint_access_token(&self, scope: &str) -> String {
        self.mint_access_token_for(OPEN_ID, scope)
    }

    /// An access token for another creator (the same settings; counts for the user cap).
    pub fn mint_access_token_for(&self, open_id: &str, scope: &str) -> String {
        let t = token("act.");
        self.lock().access.insert(
            t.clone(),
            AccessToken {
                open_id: open_id.to_owned(),
                scope: scope.to_owned(),
                expires: Instant::now() + Duration::from_secs(ACCESS_TTL_SECS),
                revoked: false,
            },
        );
        t
    }

    pub fn mint_refresh_token(&self, scope: &str) -> String {
        let t = token("rft.");
        self.lock().refresh.insert(
            t.clone(),
            RefreshToken {
                open_id: OPEN_ID.to_owned(),
                scope: scope.to_owned(),
                expires: Instant::now() + Duration::from_secs(REFRESH_TTL_SECS),
                revoked: false,
            },
        );
        t
    }

    /// The access token's 24 hours are over.
    pub fn expire_access_token(&self, t: &str) {
        if let Some(a) = self.lock().access.get_mut(t) {
            a.expires = Instant::now();
        }
    }

    /// The refresh token's 365 days are over.
    pub fn expire_refresh_token(&self, t: &str) {
        if let Some(r) = self.lock().refresh.get_mut(t) {
            r.expires = Instant::now();
        }
    }

    /// The creator removed the app: every token of `OPEN_ID` stops working, and publishes still
    /// processing fail with `auth_removed` ([STATUS] "This TikTok creator has removed the
    /// developer's access while the download/uploading is being processed").
    pub fn revoke_access(&self) {
        let mut st = self.lock();
        for a in st.access.values_mut().filter(|a| a.open_id == OPEN_ID) {
            a.revoked = true;
        }
        for r in st.refresh.values_mut().filter(|r| r.open_id == OPEN_ID) {
            r.revoked = true;
        }
        for p in st.publishes.iter_mut().filter(|p| p.open_id == OPEN_ID) {
            if p.status.starts_with("PROCESSING") {
                p.fail = Some("auth_removed".into());
                p.polls_left = 0;
            }
        }
    }

    pub fn access_token_valid(&self, t: &str) -> bool {
        self.lock()
            .access
            .get(t)
            .is_some_and(|a| !a.revoked && a.expires > Instant::now())
    }

    pub fn refresh_token_valid(&self, t: &str) -> bool {
        self.lock()
            .refresh
            .get(t)
            .is_some_and(|r| !r.revoked && r.expires > Instant::now())
    }

    pub fn creator(&self) -> Creator {
        self.lock().creator.clone()
    }

    /// Changes what `creator_info/query` answers (and what the inits accept).
    pub fn set_creator(&self, f: impl FnOnce(&mut Creator)) {
        f(&mut self.lock().creator);
    }

    /// An unaudited app: creators must be private, posts are `SELF_ONLY`, and at most
    /// [`UNAUDITED_USER_CAP`] creators post in 24 hours.
    pub fn set_audited(&self, audited: bool) {
        let mut st = self.lock();
        st.audited = audited;
        st.active_user_cap = (!audited).then_some(UNAUDITED_USER_CAP);
    }

    /// The app's daily cap of creators who post ([DIRECT] `reached_active_user_cap`).
    pub fn set_active_user_cap(&self, cap: Option<usize>) {
        self.lock().active_user_cap = cap;
    }

    /// A verified domain (`example.com`) or URL prefix (`https://example.com/media/`).
    pub fn verify(&self, domain_or_prefix: &str) {
        self.lock().verified.push(domain_or_prefix.to_owned());
    }

    /// Tests on loopback serve `http://`: take it from verified prefixes (TikTok would not).
    pub fn allow_http_media(&self, on: bool) {
        self.lock().require_https = !on;
    }

    /// Download pulled photos from their URLs (plain `http://` only), as TikTok does.
    pub fn fetch_media(&self, on: bool) {
        self.lock().fetch_media = on;
    }

    /// The URLs downloaded and what each answered.
    pub fn fetched(&self) -> Vec<(String, Result<u16, String>)> {
        self.lock().fetched.clone()
    }

    /// How many status polls a complete upload (or a download) answers `PROCESSING_*` before
    /// it is done (1 unless set).
    pub fn set_processing_polls(&self, polls: usize) {
        self.lock().processing_polls = polls;
    }

    /// How many `PUBLISH_COMPLETE` answers of a public post come before its post id (moderation).
    pub fn set_moderation_polls(&self, polls: usize) {
        self.lock().moderation_polls = polls;
    }

    /// Processing of publishes started from now on ends `FAILED` with this `fail_reason`.
    pub fn fail_processing(&self, reason: Option<&str>) {
        self.lock().processing_failure = reason.map(str::to_owned);
    }

    /// How long the `upload_url`s handed out from now on work.
    pub fn set_upload_url_ttl(&self, ttl: Duration) {
        self.lock().upload_url_ttl = ttl;
    }

    /// Whether chunk answers' `Content-Range: bytes 0-{UPLOADED_BYTES}/{TOTAL}` end at the count
    /// of bytes held (the placeholder's name read literally) rather than at the last byte's
    /// index (HTTP's reading, the default): the documentation allows both.
    pub fn set_range_end_is_count(&self, on: bool) {
        self.lock().range_end_is_count = on;
    }

    /// Another per-token limit per minute for `endpoint`.
    pub fn set_rate_limit(&self, endpoint: Endpoint, per_minute: usize) {
        self.lock().limits.insert(endpoint, per_minute);
    }

    /// TikTok forgets the publish: `invalid_publish_id` from now on.
    pub fn forget_publish(&self, publish_id: &str) {
        self.lock().publishes.retain(|p| p.publish_id != publish_id);
    }

    pub fn publishes(&self) -> Vec<FakePublish> {
        self.lock().publishes.clone()
    }

    pub fn publish(&self, publish_id: &str) -> Option<FakePublish> {
        self.lock()
            .publishes
            .iter()
            .find(|p| p.publish_id == publish_id)
            .cloned()
    }

    /// Calls to a route that reached its handler (`"video_init"`, `"content_init"`,
    /// `"creator_info"`, `"status"`, `"put"`, `"token"`), refused ones included.
    pub fn calls(&self, route: &str) -> usize {
        self.lock().calls.get(route).copied().unwrap_or(0)
    }

    /// Chunks accepted (206 or 201), over every upload.
    pub fn chunks_accepted(&self) -> usize {
        self.lock()
            .publishes
            .iter()
            .map(|p| p.chunk_puts.iter().sum::<usize>())
            .sum()
    }

    /// The query of each authorization request.
    pub fn authorize_queries(&self) -> Vec<HashMap<String, String>> {
        self.lock().authorize_queries.clone()
    }

    /// The `Authorization` headers PUTs carried (there should be none).
    pub fn put_authorizations(&self) -> Vec<String> {
        self.lock().put_authorizations.clone()
    }

    /// A 429 `rate_limit_exceeded` for the next `POST` to `path`, with `Retry-After` if given
    /// (undocumented whether TikTok sends it).
    pub fn push_rate_limit(&self, path: &str, retry_after: Option<u64>) {
        let ra = retry_after.map(|s| s.to_string());
        let headers: Vec<(&str, &str)> = ra
            .as_deref()
            .map(|v| vec![("retry-after", v)])
            .unwrap_or_default();
        self.faults.reply(
            "POST",
            path,
            429,
            &headers,
            envelope_error(
                "rate_limit_exceeded",
                "Your request is blocked due to exceeding the API rate limit.",
            ),
        );
    }

    /// A 5xx for the next `method` call to `path`.
    pub fn push_server_error(&self, method: &str, path: &str, status: u16) {
        self.faults.reply(
            method,
            path,
            status,
            &[],
            envelope_error(
                "internal_error",
                "TikTok server or network error. Try again later.",
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

/// [ERR] every endpoint answers `{"data": {...}, "error": {"code", "message", "log_id"}}`; "Any
/// code other than `ok` indicates the request did not succeed." (The Content Posting tables name
/// the field `logid`; every JSON example there says `log_id`, which the fake sends.)
fn envelope(data: Value) -> Value {
    json!({"data": data, "error": {"code": "ok", "message": "", "log_id": log_id()}})
}

fn envelope_error(code: &str, message: &str) -> Value {
    json!({"data": {}, "error": {"code": code, "message": message, "log_id": log_id()}})
}

fn api_error(status: u16, code: &str, message: &str) -> Response {
    json(status, envelope_error(code, message))
}

fn log_id() -> String {
    token("202601011200").chars().take(34).collect::<String>()
}

/// [OAUTH-ERR] `{"error", "error_description", "log_id"}`.
fn oauth_error(st: &Inner, error: &str, description: &str) -> Response {
    json(
        st.oauth_error_status,
        json!({"error": error, "error_description": description, "log_id": log_id()}),
    )
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn count(st: &mut Inner, route: &'static str) {
    *st.calls.entry(route).or_default() += 1;
}

// ---------------------------------------------------------------------------------------------
// Login Kit

/// [LOGIN] "the following query parameters below must be added to the Authorization Page URL
/// using the application/x-www-form-urlencoded format": `client_key` ("The unique
/// identification key provisioned to the partner."), `scope` ("A comma (,) separated string of
/// authorization scope(s)"), `redirect_uri` ("It must match one of the redirect URIs you
/// registered for the app."), `state` ("This value will be included when redirecting the user
/// back to the client."), `response_type` ("This value should always be set to code.").
/// [DESKTOP] PKCE: `code_challenge`, `code_challenge_method` ("Since we only support S256");
/// "You must use hex encoding of SHA256 to generate the code challenge from the code verifier."
/// The page takes any challenge; a wrong encoding fails at the token exchange, as reported.
/// Approval: [LOGIN] "they will be redirected to redirect_uri with the following query
/// parameters": `code`, `scopes` ("A comma-separated (,) string of authorization scope(s), which
/// the user has granted."), `state`.
async fn authorize_page(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.authorize_queries.push(q.clone());
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("client_key") != CLIENT_KEY {
        return (StatusCode::BAD_REQUEST, "Something went wrong: client_key").into_response();
    }
    let redirect_uri = get("redirect_uri").to_owned();
    if !st.redirect_uris.contains(&redirect_uri) {
        return (
            StatusCode::BAD_REQUEST,
            "Something went wrong: redirect_uri",
        )
            .into_response();
    }
    if get("response_type") != "code" {
        return (
            StatusCode::BAD_REQUEST,
            "Something went wrong: response_type",
        )
            .into_response();
    }
    let challenge = q.get("code_challenge").filter(|c| !c.is_empty()).cloned();
    match &challenge {
        None if st.require_pkce => {
            return (
                StatusCode::BAD_REQUEST,
                "Please correct the following: code_challenge",
            )
                .into_response();
        }
        Some(_) if get("code_challenge_method") != "S256" => {
            return (
                StatusCode::BAD_REQUEST,
                "Please correct the following: code_challenge_method",
            )
                .into_response();
        }
        _ => {}
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let state = q
        .get("state")
        .map(|v| format!("&state={}", percent_encode(v)))
        .unwrap_or_default();
    let asked: Vec<&str> = get("scope").split(',').filter(|x| !x.is_empty()).collect();
    if asked.is_empty() || asked.iter().any(|x| !KNOWN_SCOPES.contains(x)) {
        let location = format!(
            "{redirect_uri}{sep}error=invalid_scope&error_description={}{state}",
            percent_encode("The requested scope is invalid, unknown, or malformed.")
        );
        return (StatusCode::FOUND, [("location", location)]).into_response();
    }
    let mut granted: Vec<String> = match &st.granted {
        Some(g) => g
            .split(',')
            .filter(|x| asked.contains(x))
            .map(str::to_owned)
            .collect(),
        None => asked.iter().map(|x| x.to_string()).collect(),
    };
    if !granted.iter().any(|x| x == "user.info.basic") {
        granted.insert(0, "user.info.basic".into());
    }
    let scope = granted.join(",");
    let code = token("code.");
    st.codes.insert(
        code.clone(),
        Grant {
            redirect_uri: redirect_uri.clone(),
            scope: scope.clone(),
            challenge,
            issued: Instant::now(),
        },
    );
    let location = format!(
        "{redirect_uri}{sep}code={}&scopes={}{state}",
        percent_encode(&code),
        percent_encode(&scope)
    );
    (StatusCode::FOUND, [("location", location)]).into_response()
}

/// [TOKEN] `POST /v2/oauth/token/`, "Content-Type application/x-www-form-urlencoded".
/// Exchange: `client_key`, `client_secret`, `code` ("The value should be URL decoded."),
/// `grant_type` ("Its value should always be set as authorization_code."), `redirect_uri` ("Its
/// value must be the same as the redirect_uri used for requesting code."), `code_verifier`
/// ("Code verifier is used to generate code challenge in PKCE authorization flow.").
/// Refresh: `client_key`, `client_secret`, `grant_type` ("refresh_token"), `refresh_token`.
/// Answer: `open_id`, `scope` ("A comma-separated list (,) of the scopes"), `access_token`,
/// `expires_in`, `refresh_token`, `refresh_expires_in`, `token_type` ("The value should be
/// Bearer."). Errors: [OAUTH-ERR] `invalid_request`, `invalid_client` ("Client authentication
/// failed"), `invalid_grant` ("authorization code ... or refresh token is invalid, expired,
/// revoked, does not match the redirection URI"), `unsupported_grant_type`; sent with HTTP 200
/// (recorded live; see the research notes).
async fn token_endpoint(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "token");
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            &st,
            "invalid_request",
            "The request parameters are malformed.",
        );
    }
    let form = parse_form(&body);
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("client_key").is_empty() || get("grant_type").is_empty() {
        return oauth_error(
            &st,
            "invalid_request",
            "The request parameters are malformed.",
        );
    }
    if get("client_key") != CLIENT_KEY || get("client_secret") != CLIENT_SECRET {
        return oauth_error(&st, "invalid_client", "Client key or secret is incorrect.");
    }
    let now = Instant::now();
    let (open_id, scope, old_refresh) = match get("grant_type") {
        "authorization_code" => {
            // Single use: a code is gone once presented, whatever the outcome.
            let Some(grant) = st.codes.remove(get("code")) else {
                return oauth_error(&st, "invalid_grant", "Authorization code is expired.");
            };
            if grant.issued.elapsed() > CODE_TTL {
                return oauth_error(&st, "invalid_grant", "Authorization code is expired.");
            }
            if grant.redirect_uri != get("redirect_uri") {
                return oauth_error(
                    &st,
                    "invalid_request",
                    "Redirect_uri is not matched with the uri when requesting code.",
                );
            }
            if let Some(challenge) = &grant.challenge
                && hex_sha256(get("code_verifier")) != *challenge
            {
                return oauth_error(
                    &st,
                    "invalid_grant",
                    "Code verifier or code challenge is invalid.",
                );
            }
            (OPEN_ID.to_owned(), grant.scope, None)
        }
        "refresh_token" => match st.refresh.get(get("refresh_token")) {
            Some(r) if !r.revoked && r.expires > now => (
                r.open_id.clone(),
                r.scope.clone(),
                Some(get("refresh_token").to_owned()),
            ),
            _ => {
                return oauth_error(&st, "invalid_grant", "Refresh token is invalid or expired.");
            }
        },
        _ => {
            return oauth_error(
                &st,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
    };
    let access = token("act.");
    st.access.insert(
        access.clone(),
        AccessToken {
            open_id: open_id.clone(),
            scope: scope.clone(),
            expires: now + Duration::from_secs(ACCESS_TTL_SECS),
            revoked: false,
        },
    );
    let refresh = match old_refresh {
        Some(old) if st.refresh_mode == RefreshMode::Same => old,
        old => {
            if let Some(old) = old {
                st.refresh.remove(&old);
            }
            let r = token("rft.");
            st.refresh.insert(
                r.clone(),
                RefreshToken {
                    open_id: open_id.clone(),
                    scope: scope.clone(),
                    expires: now + Duration::from_secs(REFRESH_TTL_SECS),
                    revoked: false,
                },
            );
            r
        }
    };
    let mut answer = json!({
        "access_token": access,
        "expires_in": ACCESS_TTL_SECS,
        "open_id": open_id,
        "refresh_expires_in": REFRESH_TTL_SECS,
        "refresh_token": refresh,
        "scope": scope,
        "token_type": "Bearer",
    });
    for (field, value) in std::mem::take(&mut st.token_answer_faults) {
        answer[field] = value;
    }
    json(200, answer)
}

// ---------------------------------------------------------------------------------------------
// Content Posting API

/// The checks every Content Posting call shares; the token's creator when they pass.
/// Headers ([CREATOR], [DIRECT], [STATUS]): `Authorization` "Bearer {$UserAccessToken}",
/// `Content-Type` "application/json; charset=UTF-8" (the photo examples send
/// `application/json`). Errors: 401 `access_token_invalid` ("The access_token is invalid or has
/// expired."), 401 `scope_not_authorized` ("The access_token does not bear user's grant on
/// `video.publish` scope"), 429 `rate_limit_exceeded`.
fn api_checks(
    st: &mut Inner,
    headers: &HeaderMap,
    endpoint: Endpoint,
    scopes: &[&str],
) -> Result<(String, String), Response> {
    let Some(t) = bearer(headers) else {
        return Err(api_error(
            401,
            "access_token_invalid",
            "The access token is invalid or not found in the request.",
        ));
    };
    let now = Instant::now();
    let (open_id, scope) = match st.access.get(&t) {
        Some(a) if !a.revoked && a.expires > now => (a.open_id.clone(), a.scope.clone()),
        _ => {
            return Err(api_error(
                401,
                "access_token_invalid",
                "The access_token is invalid or has expired.",
            ));
        }
    };
    if !scope.split(',').any(|x| scopes.contains(&x)) {
        return Err(api_error(
            401,
            "scope_not_authorized",
            &format!(
                "The access_token does not bear user's grant on {} scope",
                scopes.join(" or ")
            ),
        ));
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(api_error(
            400,
            "invalid_params",
            "Content-Type must be application/json; charset=UTF-8",
        ));
    }
    let limit = st
        .limits
        .get(&endpoint)
        .copied()
        .unwrap_or(endpoint.default_limit());
    let window = st.windows.entry((t.clone(), endpoint)).or_default();
    while window
        .front()
        .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
    {
        window.pop_front();
    }
    if window.len() >= limit {
        return Err(api_error(
            429,
            "rate_limit_exceeded",
            "Your request is blocked due to exceeding the API rate limit.",
        ));
    }
    window.push_back(now);
    Ok((t, open_id))
}

fn parse_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            api_error(
                400,
                "invalid_params",
                "The request body is not a JSON object.",
            )
        })
}

fn invalid_param(message: &str) -> Response {
    // [DIRECT] and [PHOTO] spell it `invalid_param` ("Check error message for details.").
    api_error(400, "invalid_param", message)
}

/// The caps an init and `creator_info` both check: the creator's ban, the creator's daily posts
/// and the app's daily creators. `None` when the creator may post.
fn cap_refusal(st: &Inner, open_id: &str) -> Option<(&'static str, &'static str)> {
    let day = Duration::from_secs(24 * 3600);
    let recent: Vec<&(String, Instant)> = st
        .posted
        .iter()
        .filter(|(_, at)| at.elapsed() < day)
        .collect();
    if st.creator.banned {
        // [DIRECT] "The user is banned from making new posts."
        return Some((
            "spam_risk_user_banned_from_posting",
            "The user is banned from making new posts.",
        ));
    }
    if recent.iter().filter(|(o, _)| o == open_id).count() >= st.creator.post_cap {
        // [DIRECT] "The daily post cap from the API is reached for the current user."
        return Some((
            "spam_risk_too_many_posts",
            "The daily post cap from the API is reached for the current user.",
        ));
    }
    if let Some(cap) = st.active_user_cap {
        let users: HashSet<&str> = recent.iter().map(|(o, _)| o.as_str()).collect();
        if !users.contains(open_id) && users.len() >= cap {
            // [DIRECT] "The daily quota for active publishing users from your client is reached."
            return Some((
                "reached_active_user_cap",
                "The daily quota for active publishing users from your client is reached.",
            ));
        }
    }
    None
}

/// [CREATOR] `POST /v2/post/publish/creator_info/query/`, scope `video.publish`, no body.
/// Answers `creator_avatar_url`, `creator_username` ("The unique ID of the TikTok creator."),
/// `creator_nickname`, `privacy_level_options`, `comment_disabled`, `duet_disabled`,
/// `stitch_disabled`, `max_video_post_duration_sec`. "200 (intentional)" for
/// `spam_risk_too_many_posts`, `spam_risk_user_banned_from_posting`, `reached_active_user_cap`.
async fn creator_info(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "creator_info");
    let (_, open_id) =
        match api_checks(&mut st, &headers, Endpoint::CreatorInfo, &["video.publish"]) {
            Ok(v) => v,
            Err(r) => return r,
        };
    if let Some((code, message)) = cap_refusal(&st, &open_id) {
        return api_error(200, code, message);
    }
    let c = &st.creator;
    let username = if open_id == OPEN_ID {
        c.username.clone()
    } else {
        format!("creator.{}", &open_id[..open_id.len().min(8)])
    };
    json(
        200,
        envelope(json!({
            "creator_avatar_url": "https://lf16-tt4d.tiktokcdn.com/obj/tiktok-open-platform/fake",
            "creator_username": username,
            "creator_nickname": c.nickname,
            "privacy_level_options": c.options(),
            "comment_disabled": c.comment_disabled,
            "duet_disabled": c.duet_disabled || c.private,
            "stitch_disabled": c.stitch_disabled || c.private,
            "max_video_post_duration_sec": c.max_video_post_duration_sec,
        })),
    )
}

/// UTF-16 length ([DIRECT] "The maximum length is 2200 in UTF-16 runes.").
fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `post_info` fields both inits share. [DIRECT]/[PHOTO]: `privacy_level` (required; "The
/// provided value must match one of the `privacy_level_options`"), `disable_comment`,
/// `brand_content_toggle` (bool, required), `brand_organic_toggle` (bool). 403
/// `privacy_level_option_mismatch`: "`privacy_level` is not specified or not among the options
/// from the `privacy_level_options`".
fn check_post_info(st: &Inner, info: &Value, photo: bool) -> Result<String, Response> {
    let Some(info) = info.as_object() else {
        return Err(invalid_param("post_info is required"));
    };
    for k in [
        "disable_comment",
        "disable_duet",
        "disable_stitch",
        "brand_content_toggle",
        "brand_organic_toggle",
        "auto_add_music",
        "is_aigc",
    ] {
        if info.get(k).is_some_and(|v| !v.is_boolean()) {
            return Err(invalid_param(&format!("post_info.{k} must be a bool")));
        }
    }
    if !info
        .get("brand_content_toggle")
        .is_some_and(Value::is_boolean)
    {
        return Err(invalid_param("post_info.brand_content_toggle is required"));
    }
    // [PHOTO] `brand_organic_toggle` "| true |" (required for photos).
    if photo
        && !info
            .get("brand_organic_toggle")
            .is_some_and(Value::is_boolean)
    {
        return Err(invalid_param("post_info.brand_organic_toggle is required"));
    }
    let privacy = info
        .get("privacy_level")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !privacy.is_empty() && !PRIVACY_LEVELS.contains(&privacy) {
        return Err(invalid_param(
            "post_info.privacy_level is not a valid value",
        ));
    }
    if privacy.is_empty() || !st.creator.options().iter().any(|o| o == privacy) {
        return Err(api_error(
            403,
            "privacy_level_option_mismatch",
            "privacy_level is not specified or not among the options from the \
             privacy_level_options returned in /publish/creator_info/query/ API.",
        ));
    }
    // [CREATOR] interactions the creator turned off cannot be turned on (the server disables
    // them: [DIRECT] "The TikTok server disables Duets for private accounts and those who set
    // the Duet permission to "No one""). The fake refuses a post that asks for one, so that a
    // client that ignores `creator_info` is seen.
    let c = &st.creator;
    let on = |k: &str| info.get(k).and_then(Value::as_bool) == Some(false);
    if c.comment_disabled && on("disable_comment") {
        return Err(invalid_param("comments are disabled by the creator"));
    }
    if !photo && (c.duet_disabled || c.private) && on("disable_duet") {
        return Err(invalid_param("duet is disabled by the creator"));
    }
    if !photo && (c.stitch_disabled || c.private) && on("disable_stitch") {
        return Err(invalid_param("stitch is disabled by the creator"));
    }
    Ok(privacy.to_owned())
}

/// [TRANSFER] ownership: "Once the ownership of a domain is verified, all paths under that
/// domain or its subdomains are considered owned"; "Once a URL prefix's ownership is verified,
/// all URLs with the exact prefix are considered owned"; "The media URL must use "https"".
fn owned(st: &Inner, url: &str) -> bool {
    let https = url.starts_with("https://");
    if st.require_https && !https {
        return false;
    }
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', ':']).next().unwrap_or(""))
        .unwrap_or("")
        .to_ascii_lowercase();
    st.verified.iter().any(|v| {
        if v.contains("://") {
            url.starts_with(v.as_str())
        } else {
            let d = v.to_ascii_lowercase();
            host == d || host.ends_with(&format!(".{d}"))
        }
    })
}

/// The checks of an init after its body: the caps, then the unaudited app's restriction.
/// [DIRECT] 403 `unaudited_client_can_only_post_to_private_accounts`: "Unaudited clients can only
/// post to a private account. The publish attempt will be blocked when calling
/// `/publish/video/init/`."
fn init_refusal(st: &Inner, open_id: &str) -> Option<Response> {
    if let Some((code, message)) = cap_refusal(st, open_id) {
        return Some(api_error(403, code, message));
    }
    if !st.audited && !st.creator.private {
        return Some(api_error(
            403,
            "unaudited_client_can_only_post_to_private_accounts",
            "Unaudited clients can only post to a private account.",
        ));
    }
    None
}

fn new_publish(
    st: &mut Inner,
    prefix: &str,
    open_id: &str,
    media_type: &str,
    source: &str,
    body: Value,
    privacy: String,
) -> FakePublish {
    st.next_id += 1;
    let n = st.next_id;
    st.posted.push((open_id.to_owned(), Instant::now()));
    FakePublish {
        publish_id: format!("{prefix}~v2.{n}"),
        open_id: open_id.to_owned(),
        media_type: media_type.into(),
        source: source.into(),
        body,
        effective_privacy: if st.audited {
            privacy.clone()
        } else {
            "SELF_ONLY".into()
        },
        privacy_level: privacy,
        video_size: 0,
        chunk_size: 0,
        total_chunk_count: 0,
        chunk_puts: Vec::new(),
        bytes: Vec::new(),
        chunk_types: Vec::new(),
        urls: Vec::new(),
        status: if source == "FILE_UPLOAD" {
            "PROCESSING_UPLOAD".into()
        } else {
            "PROCESSING_DOWNLOAD".into()
        },
        fail_reason: None,
        post_id: None,
        answered: Vec::new(),
        upload_id: n.to_string(),
        upload_token: token("up"),
        upload_expires: Instant::now() + st.upload_url_ttl,
        polls_left: st.processing_polls,
        moderation_left: st.moderation_polls,
        fail: st.processing_failure.clone(),
        downloaded: !st.fetch_media,
    }
}

/// [DIRECT] `POST /v2/post/publish/video/init/`, scope `video.publish`. Body `post_info`
/// (`title`: "The maximum length is 2200 in UTF-16 runes.") and `source_info`: `source`
/// ("Choose from: `PULL_FROM_URL` `FILE_UPLOAD`"), `video_url` ("true for `PULL_FROM_URL`"),
/// `video_size`, `chunk_size`, `total_chunk_count` (int64, "true for `FILE_UPLOAD`"). Answer
/// `data.publish_id` ("The maximum length of this field is 64.") and `data.upload_url` ("The
/// maximum length of this field is 256. This field is only for `source=FILE_UPLOAD`."). Chunk
/// rules [TRANSFER]: "The value of `total_chunk_count` should be equal to `video_size` divided
/// by `chunk_size`, rounded down to the nearest integer."; "Videos with a total size less than
/// 5 MB must be uploaded as a whole, with `chunk_size` equal to the entire video's byte size.
/// Videos with a total size greater than 64 MB must be uploaded in multiple chunks."
async fn video_init(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "video_init");
    let (_, open_id) = match api_checks(&mut st, &headers, Endpoint::VideoInit, &["video.publish"])
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let privacy = match check_post_info(&st, &body["post_info"], false) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(title) = body["post_info"].get("title") {
        match title.as_str() {
            Some(t) if utf16_len(t) <= 2200 => {}
            _ => return invalid_param("post_info.title is longer than 2200 UTF-16 runes"),
        }
    }
    let source_info = &body["source_info"];
    let source = source_info["source"].as_str().unwrap_or("");
    let int = |k: &str| source_info.get(k).and_then(Value::as_u64);
    match source {
        "FILE_UPLOAD" => {
            let (Some(size), Some(chunk), Some(n)) = (
                int("video_size"),
                int("chunk_size"),
                int("total_chunk_count"),
            ) else {
                return invalid_param(
                    "video_size, chunk_size and total_chunk_count are required for FILE_UPLOAD",
                );
            };
            if let Err(why) = chunk_plan_ok(size, chunk, n) {
                return invalid_param(&why);
            }
            if let Some(r) = init_refusal(&st, &open_id) {
                return r;
            }
            let mut p = new_publish(
                &mut st,
                "v_pub_file",
                &open_id,
                "VIDEO",
                source,
                body.clone(),
                privacy,
            );
            p.video_size = size;
            p.chunk_size = chunk;
            p.total_chunk_count = n;
            p.chunk_puts = vec![0; n as usize];
            let upload_url = format!(
                "{}/upload/video/?upload_id={}&upload_token={}",
                st.base_url, p.upload_id, p.upload_token
            );
            let publish_id = p.publish_id.clone();
            st.publishes.push(p);
            json(
                200,
                envelope(json!({"publish_id": publish_id, "upload_url": upload_url})),
            )
        }
        "PULL_FROM_URL" => {
            let Some(url) = source_info["video_url"].as_str().filter(|u| !u.is_empty()) else {
                return invalid_param("video_url is required for PULL_FROM_URL");
            };
            if !owned(&st, url) {
                return url_unverified();
            }
            if let Some(r) = init_refusal(&st, &open_id) {
                return r;
            }
            let mut p = new_publish(
                &mut st,
                "v_pub_url",
                &open_id,
                "VIDEO",
                source,
                body.clone(),
                privacy,
            );
            p.urls = vec![url.to_owned()];
            let publish_id = p.publish_id.clone();
            st.publishes.push(p);
            drop(st);
            spawn_download(&s, &publish_id);
            json(200, envelope(json!({"publish_id": publish_id})))
        }
        _ => invalid_param("source_info.source must be PULL_FROM_URL or FILE_UPLOAD"),
    }
}

fn url_unverified() -> Response {
    // [DIRECT] 403 `url_ownership_unverified`: "To use `PULL_FROM_URL` as the video transfer
    // method, the developer must verify the ownership of the URL prefix or domain."
    api_error(
        403,
        "url_ownership_unverified",
        "To use PULL_FROM_URL as the media transfer method, developer must verify the \
         ownership of the URL prefix or domain.",
    )
}

/// [TRANSFER]'s chunk restrictions, as the fake reads them (see [`MIN_CHUNK`]).
pub fn chunk_plan_ok(size: u64, chunk: u64, n: u64) -> Result<(), String> {
    if size == 0 || chunk == 0 {
        return Err("video_size and chunk_size must be positive".into());
    }
    if n == 0 || n > MAX_CHUNKS {
        return Err("There must be a minimum of 1 chunk and a maximum of 1000 chunks.".into());
    }
    if n != size / chunk {
        return Err(
            "total_chunk_count should be equal to video_size divided by chunk_size, rounded down"
                .into(),
        );
    }
    if size < MIN_CHUNK && chunk != size {
        return Err("Videos with a total size less than 5 MB must be uploaded as a whole".into());
    }
    if chunk != size && chunk < MIN_CHUNK {
        return Err("Each chunk must be at least 5 MB".into());
    }
    if chunk > MAX_CHUNK {
        return Err("Each chunk must be no greater than 64 MB".into());
    }
    if size - (n - 1) * chunk > MAX_FINAL_CHUNK {
        return Err("The final chunk can be up to 128 MB".into());
    }
    Ok(())
}

/// [TRANSFER] "PUT {UPLOAD_URL}" with `Content-Type` ("Select from: video/mp4 video/quicktime
/// video/webm"), `Content-Length` ("Byte size of this chunk."), `Content-Range` ("bytes
/// {FIRST_BYTE}-{LAST_BYTE}/{TOTAL_BYTE_LENGTH}"); "File chunks must be uploaded sequentially."
/// Answers: 201 "All parts are uploaded. TikTok will start the posting process."; 206 "The
/// current chunk has been successfully processed."; 400 "Malformated request headers, or
/// BYTE_SIZE_OF_THIS_CHUNK does not reflect the true byte size"; 403 "The `upload_url` has
/// expired."; 404 "TikTok cannot find a valid upload task given the `upload_url`."; 416
/// "`Content-Range` does not reflect the actual upload progress."; and "The response header
/// includes ... `Content-Range:bytes 0-{UPLOADED_BYTES}/{TOTAL_BYTE_LENGTH}`" (the fake sends the
/// last byte's index, as HTTP ranges do, or the count with `set_range_end_is_count`; nothing
/// when no byte has arrived).
async fn upload_chunk(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "put");
    if let Some(a) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        st.put_authorizations.push(a.to_owned());
    }
    let upload_id = q.get("upload_id").cloned().unwrap_or_default();
    let upload_token = q.get("upload_token").cloned().unwrap_or_default();
    let count_end = st.range_end_is_count;
    let Some(p) = st.publishes.iter_mut().find(|p| {
        p.upload_id == upload_id && p.upload_token == upload_token && p.source == "FILE_UPLOAD"
    }) else {
        return (StatusCode::NOT_FOUND, "upload task not found").into_response();
    };
    if Instant::now() >= p.upload_expires {
        return (StatusCode::FORBIDDEN, "upload_url has expired").into_response();
    }
    let progress = |p: &FakePublish| -> Vec<(&'static str, String)> {
        if p.bytes.is_empty() {
            Vec::new()
        } else {
            let end = if count_end {
                p.bytes.len()
            } else {
                p.bytes.len() - 1
            };
            vec![("content-range", format!("bytes 0-{end}/{}", p.video_size))]
        }
    };
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !["video/mp4", "video/quicktime", "video/webm"].contains(&ct.as_str()) {
        return (StatusCode::BAD_REQUEST, "Content-Type must be a video type").into_response();
    }
    if headers.get_all("content-length").iter().count() != 1 {
        return (StatusCode::BAD_REQUEST, "one Content-Length").into_response();
    }
    let declared_len = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len != Some(body.len() as u64) {
        return (StatusCode::BAD_REQUEST, "Content-Length").into_response();
    }
    let range = headers
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range);
    let Some((first, last, total)) = range else {
        return (StatusCode::BAD_REQUEST, "Content-Range").into_response();
    };
    if total != p.video_size || last < first || last - first + 1 != body.len() as u64 {
        return (
            StatusCode::BAD_REQUEST,
            "Content-Range does not match the chunk",
        )
            .into_response();
    }
    let done = p.bytes.len() as u64;
    if first != done || done == p.video_size {
        let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, "Content-Range").into_response();
        for (k, v) in progress(p) {
            r.headers_mut().insert(k, v.parse().unwrap());
        }
        return r;
    }
    let index = (first / p.chunk_size) as usize;
    let last_index = p.total_chunk_count as usize - 1;
    let expected = if index == last_index {
        p.video_size - first
    } else {
        p.chunk_size
    };
    if index > last_index || body.len() as u64 != expected {
        return (
            StatusCode::BAD_REQUEST,
            "the chunk's size does not follow chunk_size",
        )
            .into_response();
    }
    p.bytes.extend_from_slice(&body);
    p.chunk_puts[index] += 1;
    p.chunk_types.push(ct);
    let status = if p.uploaded() {
        StatusCode::CREATED
    } else {
        StatusCode::PARTIAL_CONTENT
    };
    let mut r = status.into_response();
    for (k, v) in progress(p) {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?, total.parse().ok()?))
}

/// [PHOTO] `POST /v2/post/publish/content/init/`, scope "video.publish or video.upload". Body:
/// `media_type` ("Currently only `PHOTO` is allowed"), `post_mode` ("`DIRECT POST`: Directly
/// post the content to TikTok user's account."; the examples spell it `DIRECT_POST`, which the
/// fake takes, with `MEDIA_UPLOAD`), `post_info` (`title`: "The maximum length for photo posts
/// is 90 in UTF-16 runes."; `description`: "The maximum length for photo posts is 4000 in UTF-16
/// runes."; `privacy_level` "Required for `DIRECT POST`"; `disable_comment`; `auto_add_music`;
/// `brand_content_toggle`, `brand_organic_toggle` both "true"), `source_info` (`source`: "Only
/// `PULL_FROM_URL` is allowed"; `photo_images`: "An array containing up to 35 photo content
/// URLs. The URLs must be publicly accessible and verified by your app."; `photo_cover_index`:
/// "Indicates the index (starting from 0) of the photo to be used as the cover", required).
/// Answer `data.publish_id`. The fake implements `DIRECT_POST` only.
async fn content_init(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "content_init");
    let (_, open_id) =
        match api_checks(&mut st, &headers, Endpoint::ContentInit, &["video.publish"]) {
            Ok(v) => v,
            Err(r) => return r,
        };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body["media_type"] != "PHOTO" {
        return invalid_param("media_type: currently only PHOTO is allowed");
    }
    if !matches!(
        body["post_mode"].as_str(),
        Some("DIRECT_POST" | "DIRECT POST")
    ) {
        return invalid_param("post_mode: this fake takes DIRECT_POST only");
    }
    let privacy = match check_post_info(&st, &body["post_info"], true) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let info = &body["post_info"];
    for (k, max) in [("title", 90), ("description", 4000)] {
        if let Some(v) = info.get(k) {
            match v.as_str() {
                Some(t) if utf16_len(t) <= max => {}
                _ => {
                    return invalid_param(&format!(
                        "post_info.{k}: the maximum length for photo posts is {max}"
                    ));
                }
            }
        }
    }
    let source_info = &body["source_info"];
    if source_info["source"] != "PULL_FROM_URL" {
        return invalid_param("source_info.source: only PULL_FROM_URL is allowed");
    }
    let images: Vec<String> = match source_info["photo_images"].as_array() {
        Some(list) if !list.is_empty() && list.len() <= 35 => {
            match list.iter().map(|v| v.as_str().map(str::to_owned)).collect() {
                Some(urls) => urls,
                None => return invalid_param("photo_images must be URLs"),
            }
        }
        _ => return invalid_param("photo_images: 1 to 35 photo URLs"),
    };
    match source_info["photo_cover_index"].as_u64() {
        Some(i) if (i as usize) < images.len() => {}
        _ => return invalid_param("photo_cover_index is required and must index photo_images"),
    }
    if images.iter().any(|u| !owned(&st, u)) {
        return url_unverified();
    }
    if let Some(r) = init_refusal(&st, &open_id) {
        return r;
    }
    let mut p = new_publish(
        &mut st,
        "p_pub_url",
        &open_id,
        "PHOTO",
        "PULL_FROM_URL",
        body.clone(),
        privacy,
    );
    p.urls = images;
    let publish_id = p.publish_id.clone();
    st.publishes.push(p);
    drop(st);
    spawn_download(&s, &publish_id);
    json(200, envelope(json!({"publish_id": publish_id})))
}

/// With `fetch_media` on, TikTok's download of pulled media ([TRANSFER] "the TikTok server
/// starts to download the media resource using the URL you provide"): a URL that does not
/// answer 200 fails the publish with `photo_pull_failed` / `video_pull_failed`.
fn spawn_download(s: &Shared, publish_id: &str) {
    let (on, urls) = {
        let st = s.lock().unwrap();
        let urls = st
            .publishes
            .iter()
            .find(|p| p.publish_id == publish_id)
            .map(|p| p.urls.clone())
            .unwrap_or_default();
        (st.fetch_media, urls)
    };
    if !on {
        return;
    }
    let s = s.clone();
    let publish_id = publish_id.to_owned();
    tokio::spawn(async move {
        let mut ok = true;
        for url in urls {
            let r = fetch_status(&url).await;
            ok &= r == Ok(200);
            s.lock().unwrap().fetched.push((url, r));
        }
        let mut st = s.lock().unwrap();
        if let Some(p) = st.publishes.iter_mut().find(|p| p.publish_id == publish_id) {
            p.downloaded = true;
            if !ok && p.fail.is_none() {
                p.fail = Some(if p.media_type == "PHOTO" {
                    "photo_pull_failed".into()
                } else {
                    "video_pull_failed".into()
                });
            }
        }
    });
}

/// A plain-HTTP GET (no TLS); the status.
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
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
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

/// [STATUS] `POST /v2/post/publish/status/fetch/`, body `{"publish_id"}`, scope
/// "video.upload/video.publish". Answer `status` (`PROCESSING_UPLOAD`: "Only available for
/// `FILE_UPLOAD`. Indicates that the upload is in process."; `PROCESSING_DOWNLOAD`: "Only
/// available for `PULL_FROM_URL`"; `PUBLISH_COMPLETE`: "For the Direct Post, it indicates that
/// the content has been posted."; `FAILED`: "Indicates that an error has occurred and the entire
/// process has failed."), `fail_reason`, `publicaly_available_post_id` (sic; "`post_id` is
/// returned only if the post is published for public viewership and has been approved by the
/// TikTok moderation process."), `uploaded_bytes` ("The number of bytes uploaded (1-indexed)
/// for `FILE_UPLOAD`"), `downloaded_bytes`. Errors: 400 `invalid_publish_id` ("The `publish_id`
/// does not exist"), 400 `token_not_authorized_for_specified_publish_id`.
/// Undocumented: the status between the last chunk and `PUBLISH_COMPLETE`; the fake keeps
/// `PROCESSING_UPLOAD` (with every byte counted) for `processing_polls` polls.
async fn status_fetch(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "status");
    let (_, open_id) = match api_checks(
        &mut st,
        &headers,
        Endpoint::Status,
        &["video.publish", "video.upload"],
    ) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(publish_id) = body["publish_id"].as_str().map(str::to_owned) else {
        return invalid_param("publish_id is required");
    };
    st.next_id += 1;
    let next_post_id = st.next_id;
    let Some(p) = st.publishes.iter_mut().find(|p| p.publish_id == publish_id) else {
        return api_error(400, "invalid_publish_id", "The publish_id does not exist");
    };
    if p.open_id != open_id {
        return api_error(
            400,
            "token_not_authorized_for_specified_publish_id",
            "The access_token does not have authorization for this publish_id",
        );
    }
    let ready = match p.source.as_str() {
        "FILE_UPLOAD" => p.uploaded(),
        _ => p.downloaded,
    };
    if p.status.starts_with("PROCESSING") && ready {
        if p.polls_left > 0 {
            p.polls_left -= 1;
        } else if let Some(reason) = p.fail.clone() {
            p.status = "FAILED".into();
            p.fail_reason = Some(reason);
        } else {
            p.status = "PUBLISH_COMPLETE".into();
        }
    } else if p.status.starts_with("PROCESSING") && p.fail.as_deref() == Some("auth_removed") {
        p.status = "FAILED".into();
        p.fail_reason = Some("auth_removed".into());
    }
    if p.status == "PUBLISH_COMPLETE"
        && p.post_id.is_none()
        && p.effective_privacy == "PUBLIC_TO_EVERYONE"
    {
        if p.moderation_left > 0 {
            p.moderation_left -= 1;
        } else {
            p.post_id = Some(next_post_id);
        }
    }
    p.answered.push(p.status.clone());
    let mut data = json!({
        "status": p.status,
        "publicaly_available_post_id": p.post_id.map(|id| vec![id]).unwrap_or_default(),
    });
    if let Some(reason) = &p.fail_reason {
        data["fail_reason"] = json!(reason);
    }
    if p.source == "FILE_UPLOAD" {
        data["uploaded_bytes"] = json!(p.bytes.len());
    } else if p.downloaded {
        data["downloaded_bytes"] = json!(0);
    }
    json(200, envelope(data))
}
