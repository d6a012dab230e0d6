//! A fake of Snap's Public Profile API (and the Snap OAuth it needs), stateful: tokens that
//! expire, refresh and are revoked, one Public Profile, media containers that live 24 hours and
//! take their encrypted file in multipart parts, a FINALIZE that really decrypts (AES-256-CBC,
//! PKCS#7) what arrived, and Story, Spotlight and Saved Story posts that refuse a media posted
//! twice.
//!
//! Both hosts (`accounts.snapchat.com` for OAuth and `businessapi.snapchat.com` for the API) are
//! served at the one base URL `url`.
//!
//! Snap's own pages could be read only as far as their first screen (see
//! `docs/research/snapchat.md`): every field the fake reads or answers is pinned, in the comment
//! above the code that handles it, to a quoted official line where there is one, to
//! third-party code ("[3P: …]") where only that exists, or says "undocumented: the fake
//! chooses …". Sources:
//! - [ASSET] <https://developers.snap.com/api/marketing-api/Public-Profile-API/ProfileAssetManagement>
//! - [PROFILES] <https://developers.snap.com/api/marketing-api/Public-Profile-API/Profiles>
//! - [GETSTARTED] <https://developers.snap.com/api/marketing-api/Public-Profile-API/GetStarted>
//! - [AUTH] <https://developers.snap.com/api/marketing-api/Ads-API/authentication>
//! - [RATE] <https://developers.snap.com/api/marketing-api/Ads-API/rate-limits>
//! - [3P] open-source publishers calling the API (Python, Node, PHP, Java, NestJS connectors and
//!   their test fixtures), an OpenAPI description of the profile endpoints
//!   (getlate-dev/openapi-specs), and Snap Marketing API SDK fixtures (Airbyte, snapads4j); see
//!   `docs/research/snapchat.md`. Most of it was never shown to run against Snap; where one
//!   source claims experience it is said.
//!
//! Official: the authorize URL and its parameters, the profile entity's fields, the create-media
//! request (`type`, `name`, `key`, `iv`), `request_id`, the 24-hour media life, the 32 MB split,
//! the encrypt-then-split order, HTTP 429 for rate limits. Third-party only: the token
//! endpoint's body and answer, `my_profile`, everything in the create-media answer but
//! `request_id`, the multipart fields, FINALIZE, 35 parts and 1 GB, the posting and read-back
//! endpoints, the error envelope and its `error_code`s.
//!
//! Routes:
//! - `GET /login/oauth2/authorize`: the authorization page; its user approves (302).
//! - `POST /login/oauth2/access_token`: code exchange and refresh.
//! - `GET /v1/public_profiles/my_profile`
//! - `POST /v1/public_profiles/{profile_id}/media`
//! - `POST /us/v1/public_profiles/{profile_id}/media/{media_id}/multipart-upload` (ADD, FINALIZE)
//! - `POST|GET /v1/public_profiles/{profile_id}/stories`
//! - `POST|GET /v1/public_profiles/{profile_id}/spotlights`,
//!   `GET /v1/public_profiles/{profile_id}/spotlights/{spotlight_id}`
//! - `POST /v1/public_profiles/{profile_id}/saved_stories`
//!
//! Rate limits are scripted with `faults` ([RATE] "If you reach the rate limit, you will start
//! receiving an HTTP 429 Too Many Requests response."), e.g.
//! `faults.reply("POST", "/v1/public_profiles", 429, &[("retry-after", "3")], body)`. ADD and
//! FINALIZE share one path, so FINALIZE's own faults are scripted with `push_finalize_fault`.

// Checks hand back the refusal to send as-is; a fake's speed is no concern.
#![allow(clippy::result_large_err)]

mod media;
mod oauth;
mod posts;
#[cfg(test)]
mod tests;

use crate::common::{Fake, Fault, Faults, bearer, json};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// The callback registered with the fake app at start; others with `register_redirect_uri`.
/// [AUTH] `redirect_uri`: "URLEncoded Redirect URI (must match URI on OAuth App)".
pub const REDIRECT_URI: &str = "https://soku.test/v1/oauth/snapchat/callback";
/// [PROFILES] `id`: "UUID of the profile".
pub const PROFILE_ID: &str = "62d2298b-4bd1-4c6f-9a4c-3f1e2d7c8a90";
/// [PROFILES] `organization_id`: "UUID of the organization the profile belongs to".
pub const ORGANIZATION_ID: &str = "8f3c1a2e-5b7d-4c9e-a1f0-6d2b4e8c0a13";
/// [PROFILES] `snap_user_name`: "Snap-user-name this profile is hosted on".
pub const SNAP_USER_NAME: &str = "soku.snaps";
/// [PROFILES] `display_name`: "Profile display name".
pub const DISPLAY_NAME: &str = "Soku Snaps";
/// [3P: ≥6 connectors request it; the official scope table is cut off before it].
pub const SCOPE: &str = "snapchat-profile-api";
/// [3P: Snap's old doc example as copied by SDK fixtures, `"expires_in": 1800`; others say
/// 3600].
pub const ACCESS_TTL_SECS: u64 = 1800;
/// [ASSET] "If the file is larger than 32MB then split it into smaller chunks". [3P: one
/// experience report, "a chunk sized at exactly the cap was getting rejected ("Media size is
/// too large")"]: a part of this size or more is refused.
pub const MAX_PART_BYTES: usize = 32 * 1024 * 1024;
/// [3P: "part_number (1..35)"; "should not exceed 35 parts"].
pub const MAX_PARTS: u32 = 35;
/// [3P: 1 GB total; the Ads API's official "up to 1 GB allowed using chunked upload" agrees].
pub const MAX_MEDIA_BYTES: u64 = 1024 * 1024 * 1024;
/// [ASSET] "A media object stays active for 24 hours after creation and can be used for story
/// posting until then."
pub const MEDIA_TTL: Duration = Duration::from_secs(24 * 3600);
/// [3P: getlate, relayapi, dashsocial "max 160" characters "including hashtags"].
pub const MAX_DESCRIPTION_CHARS: usize = 160;
/// [3P: getlate and relayapi, a Saved Story title of at most 45 characters].
pub const MAX_TITLE_CHARS: usize = 45;
/// Undocumented: how long an authorization code works. The fake keeps codes 10 minutes.
const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// The multipart route's body limit: a part up to [`MAX_PART_BYTES`] and the form around it.
const UPLOAD_BODY_LIMIT: usize = 33 * 1024 * 1024;

/// How the token endpoint answers a refresh. Undocumented by Snap: [3P] code "may return a new
/// refresh_token; keep the old one if absent".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// The same refresh token again (the default).
    Same,
    /// A new one; the old one stops working.
    Rotate,
    /// No `refresh_token` in the answer; the old one keeps working.
    Omit,
}

/// A media container as the fake holds it.
#[derive(Debug, Clone)]
pub struct FakeMedia {
    pub id: String,
    pub profile_id: String,
    /// `VIDEO` or `IMAGE`.
    pub kind: String,
    pub name: String,
    /// The decoded `key` (32 bytes) and `iv` (16 bytes).
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
    /// `(part_number, size)` of the parts held, by part number.
    pub parts: Vec<(u32, usize)>,
    pub finalized: bool,
    /// The decrypted file's length and SHA-256 (lower-case hex), once FINALIZE succeeded.
    pub plaintext_len: Option<usize>,
    pub sha256: Option<String>,
    /// Past [`MEDIA_TTL`] or expired with `expire_media`.
    pub expired: bool,
    /// `"story"`, `"spotlight"` or `"saved_story"` once posted.
    pub posted_as: Option<String>,
    pub created_at: SystemTime,
}

/// One accepted ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePart {
    pub media_id: String,
    pub part_number: u32,
    pub size: usize,
}

#[derive(Debug, Clone)]
pub struct FakeStory {
    /// The fake's own id (the post answer carries none).
    pub id: String,
    pub profile_id: String,
    pub media_id: String,
    pub created_at: SystemTime,
    /// The request body, as sent.
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct FakeSpotlight {
    pub id: String,
    pub profile_id: String,
    pub media_id: String,
    /// `SUBMITTED`, then `LIVE` or `REJECTED` (`set_spotlight_status`).
    pub status: String,
    pub description: Option<String>,
    pub locale: String,
    pub skip_save_to_profile: Option<bool>,
    pub created_at: SystemTime,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct FakeSavedStory {
    pub id: String,
    pub profile_id: String,
    pub title: Option<String>,
    pub media_ids: Vec<String>,
    pub created_at: SystemTime,
    pub body: Value,
}

struct Grant {
    redirect_uri: String,
    scope: String,
    issued: Instant,
}

struct AccessToken {
    scope: String,
    expires: Instant,
    revoked: bool,
}

struct RefreshToken {
    scope: String,
    revoked: bool,
}

struct MediaRec {
    info: FakeMedia,
    bytes: BTreeMap<u32, Vec<u8>>,
    expires: Instant,
    /// Post calls still answered `MEDIA_PROCESSING`.
    processing_left: usize,
}

impl MediaRec {
    fn expired(&self) -> bool {
        Instant::now() >= self.expires
    }

    fn view(&self) -> FakeMedia {
        let mut m = self.info.clone();
        m.parts = self.bytes.iter().map(|(n, b)| (*n, b.len())).collect();
        m.expired = self.expired();
        m
    }
}

struct Inner {
    redirect_uris: Vec<String>,
    deny_next: bool,
    granted_scope: Option<String>,
    codes: HashMap<String, Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    refresh_mode: RefreshMode,
    omit_expires_in: bool,
    profile_wrapped: bool,
    logical_errors_as_200: bool,
    processing_posts: usize,
    fail_processing: bool,
    /// Served to the next FINALIZE calls, one each (ADD shares their path, so `faults` cannot
    /// tell them apart).
    finalize_faults: VecDeque<Fault>,
    media: Vec<MediaRec>,
    parts_log: Vec<FakePart>,
    stories: Vec<FakeStory>,
    spotlights: Vec<FakeSpotlight>,
    saved_stories: Vec<FakeSavedStory>,
    calls: HashMap<&'static str, usize>,
    authorize_queries: Vec<HashMap<String, String>>,
    /// The `Authorization` header of every API request (`""` when there was none).
    authorizations: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct SnapchatFake {
    /// The base URL of both hosts.
    pub url: String,
    pub faults: Faults,
    inner: Shared,
    _fake: Fake,
}

impl SnapchatFake {
    pub async fn start() -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            deny_next: false,
            granted_scope: None,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            refresh_mode: RefreshMode::Same,
            omit_expires_in: false,
            profile_wrapped: false,
            logical_errors_as_200: false,
            processing_posts: 0,
            fail_processing: false,
            finalize_faults: VecDeque::new(),
            media: Vec::new(),
            parts_log: Vec::new(),
            stories: Vec::new(),
            spotlights: Vec::new(),
            saved_stories: Vec::new(),
            calls: HashMap::new(),
            authorize_queries: Vec::new(),
            authorizations: Vec::new(),
        }));
        let p = "/v1/public_profiles/{profile_id}";
        let router = Router::new()
            .route("/login/oauth2/authorize", get(oauth::authorize_page))
            .route("/login/oauth2/access_token", post(oauth::token_endpoint))
            .route("/v1/public_profiles/my_profile", get(posts::my_profile))
            .route(&format!("{p}/media"), post(media::create_media))
            .route(
                "/us/v1/public_profiles/{profile_id}/media/{media_id}/multipart-upload",
                post(media::multipart_upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
            )
            .route(
                &format!("{p}/stories"),
                post(posts::post_story).get(posts::list_stories),
            )
            .route(
                &format!("{p}/spotlights"),
                post(posts::post_spotlight).get(posts::list_spotlights),
            )
            .route(
                &format!("{p}/spotlights/{{spotlight_id}}"),
                get(posts::get_spotlight),
            )
            .route(
                &format!("{p}/saved_stories"),
                post(posts::post_saved_stories),
            )
            .with_state(inner.clone());
        let faults = Faults::default();
        let fake = Fake::serve(router, faults.clone()).await;
        Self {
            url: fake.url.clone(),
            faults,
            inner,
            _fake: fake,
        }
    }

    /// The authorization page's URL (on `accounts.snapchat.com`).
    pub fn auth_url(&self) -> String {
        format!("{}/login/oauth2/authorize", self.url)
    }

    /// The token endpoint's URL (on `accounts.snapchat.com`).
    pub fn token_url(&self) -> String {
        format!("{}/login/oauth2/access_token", self.url)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    pub fn register_redirect_uri(&self, uri: &str) {
        self.lock().redirect_uris.push(uri.to_owned());
    }

    /// The next authorization is refused by its user (`?error=access_denied&state=…`).
    pub fn deny_next_authorization(&self) {
        self.lock().deny_next = true;
    }

    /// The scope the user grants (and the token answer's `scope`); `None`: the scope asked.
    pub fn set_granted_scope(&self, scope: Option<&str>) {
        self.lock().granted_scope = scope.map(str::to_owned);
    }

    pub fn set_refresh_mode(&self, mode: RefreshMode) {
        self.lock().refresh_mode = mode;
    }

    /// Token answers leave out `expires_in` (RFC 6749 §5.1: "RECOMMENDED"); the tokens still
    /// live [`ACCESS_TTL_SECS`].
    pub fn omit_expires_in(&self, on: bool) {
        self.lock().omit_expires_in = on;
    }

    /// An access token of [`SCOPE`] for the profile, as if connected.
    pub fn mint_access_token(&self) -> String {
        let t = new_token("snapat.");
        self.lock().access.insert(
            t.clone(),
            AccessToken {
                scope: SCOPE.into(),
                expires: Instant::now() + Duration::from_secs(ACCESS_TTL_SECS),
                revoked: false,
            },
        );
        t
    }

    pub fn mint_refresh_token(&self) -> String {
        let t = new_token("snaprt.");
        self.lock().refresh.insert(
            t.clone(),
            RefreshToken {
                scope: SCOPE.into(),
                revoked: false,
            },
        );
        t
    }

    /// The access token's 30 minutes are over.
    pub fn expire_access_token(&self, t: &str) {
        if let Some(a) = self.lock().access.get_mut(t) {
            a.expires = Instant::now();
        }
    }

    /// The user removed the app: every access and refresh token stops working.
    pub fn revoke_access(&self) {
        let mut st = self.lock();
        st.access.values_mut().for_each(|a| a.revoked = true);
        st.refresh.values_mut().for_each(|r| r.revoked = true);
        st.codes.clear();
    }

    pub fn access_token_valid(&self, t: &str) -> bool {
        self.lock()
            .access
            .get(t)
            .is_some_and(|a| !a.revoked && a.expires > Instant::now())
    }

    pub fn refresh_token_valid(&self, t: &str) -> bool {
        self.lock().refresh.get(t).is_some_and(|r| !r.revoked)
    }

    /// `my_profile` answers `public_profiles: [{sub_request_status, public_profile}]` instead of
    /// `public_profile` (the two shapes third-party code reports).
    pub fn set_profile_wrapped(&self, on: bool) {
        self.lock().profile_wrapped = on;
    }

    /// Logical posting errors (`MEDIA_EXPIRED`, `MEDIA_POSTING_ALREADY_IN_PROGRESS`,
    /// `MEDIA_PROCESSING`, `MEDIA_PROCESSING_FAILED`) come with HTTP 200 instead of 400.
    pub fn set_logical_errors_as_200(&self, on: bool) {
        self.lock().logical_errors_as_200 = on;
    }

    /// Media finalized from now on answer `MEDIA_PROCESSING` to their first `n` post calls,
    /// then are ready.
    pub fn set_processing_posts(&self, n: usize) {
        self.lock().processing_posts = n;
    }

    /// While on, post calls answer `MEDIA_PROCESSING_FAILED` and nothing is posted.
    pub fn fail_media_processing(&self, on: bool) {
        self.lock().fail_processing = on;
    }

    /// The next FINALIZE (not the ADDs, which share its path) gets `fault`: a `Reply` instead of
    /// being handled (nothing is finalized), or `DelayAfterEffect` (finalized, the answer held
    /// back). Several queue up, one per FINALIZE.
    pub fn push_finalize_fault(&self, fault: Fault) {
        self.lock().finalize_faults.push_back(fault);
    }

    /// The media's 24 hours are over.
    pub fn expire_media(&self, media_id: &str) {
        if let Some(m) = self.lock().media.iter_mut().find(|m| m.info.id == media_id) {
            m.expires = Instant::now();
        }
    }

    /// Snap's review of a Spotlight ends: `LIVE` or `REJECTED`.
    pub fn set_spotlight_status(&self, spotlight_id: &str, status: &str) {
        if let Some(s) = self
            .lock()
            .spotlights
            .iter_mut()
            .find(|s| s.id == spotlight_id)
        {
            s.status = status.to_owned();
        }
    }

    pub fn media(&self) -> Vec<FakeMedia> {
        self.lock().media.iter().map(MediaRec::view).collect()
    }

    /// The ADD calls accepted, over every media.
    pub fn parts_received(&self) -> usize {
        self.lock().parts_log.len()
    }

    /// Every accepted ADD, in order.
    pub fn parts_log(&self) -> Vec<FakePart> {
        self.lock().parts_log.clone()
    }

    pub fn stories(&self) -> Vec<FakeStory> {
        self.lock().stories.clone()
    }

    pub fn spotlights(&self) -> Vec<FakeSpotlight> {
        self.lock().spotlights.clone()
    }

    pub fn saved_stories(&self) -> Vec<FakeSavedStory> {
        self.lock().saved_stories.clone()
    }

    /// Calls to a route that reached its handler, refused ones included: `"authorize"`,
    /// `"token"`, `"my_profile"`, `"media"`, `"add"`, `"finalize"`, `"stories"`,
    /// `"spotlights"`, `"saved_stories"`, `"spotlight_get"`, `"stories_list"`,
    /// `"spotlights_list"`, and `"upload"` (a multipart-upload call with no valid `action`).
    pub fn calls(&self, route: &str) -> usize {
        self.lock().calls.get(route).copied().unwrap_or(0)
    }

    /// The query of each authorization request.
    pub fn authorize_queries(&self) -> Vec<HashMap<String, String>> {
        self.lock().authorize_queries.clone()
    }

    /// The `Authorization` header of every API request, as sent (`""` when absent).
    pub fn authorization_headers(&self) -> Vec<String> {
        self.lock().authorizations.clone()
    }

    /// The tokens of the API requests that used the `Authorization: Bearer` form.
    pub fn bearer_tokens_seen(&self) -> Vec<String> {
        self.lock()
            .authorizations
            .iter()
            .filter_map(|h| {
                let (scheme, t) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| t.to_owned())
            })
            .collect()
    }

    /// A 429 for the next `method` request to a path starting with `path`, with
    /// `Retry-After` if given ([RATE]; undocumented whether Snap sends the header or a body: the
    /// fake sends its error envelope).
    pub fn push_rate_limit(&self, method: &str, path: &str, retry_after: Option<u64>) {
        let ra = retry_after.map(|s| s.to_string());
        let headers: Vec<(&str, &str)> = ra
            .as_deref()
            .map(|v| vec![("retry-after", v)])
            .unwrap_or_default();
        self.faults.reply(
            method,
            path,
            429,
            &headers,
            error_body("E3005", "Too Many Requests"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

/// [ASSET] `request_id`: "A UUID to identify this request." `request_status`: [3P: getlate
/// `ApiResponse`, "SUCCESS|ERROR|PARTIAL"].
fn success(mut fields: Value) -> Response {
    fields["request_id"] = json!(uuid());
    fields["request_status"] = json!("SUCCESS");
    json(200, fields)
}

/// [3P: getlate `ApiResponse`] `{request_id, request_status, debug_message, display_message,
/// error_code}`. The `error_code` values other than the `MEDIA_*` ones are the fake's choice
/// (undocumented): `E1001` a refused request, `E1004` not found, `E1008` another profile,
/// `E2005` a media that does not decrypt to its type, `E3003` a bad token, `E3005` rate limit.
fn error_body(code: &str, debug: &str) -> Value {
    json!({
        "request_id": uuid(),
        "request_status": "ERROR",
        "debug_message": debug,
        "display_message": "Something went wrong. Please try again.",
        "error_code": code,
    })
}

fn api_error(status: u16, code: &str, debug: &str) -> Response {
    json(status, error_body(code, debug))
}

fn invalid(debug: &str) -> Response {
    api_error(400, "E1001", debug)
}

/// [3P: fixtures answer `MEDIA_EXPIRED` as HTTP 200 with `request_status: "ERROR"`; other code
/// reads `error_code` from a non-2xx body.] 400 unless `set_logical_errors_as_200`.
fn logical(st: &Inner, code: &str, debug: &str) -> Response {
    api_error(
        if st.logical_errors_as_200 { 200 } else { 400 },
        code,
        debug,
    )
}

fn count(st: &mut Inner, route: &'static str) {
    *st.calls.entry(route).or_default() += 1;
}

/// The checks every API call shares. [AUTH] `Authorization: Bearer …` (the PPA [GETSTARTED]
/// page shows a bare `Authorization: <ACCESS_TOKEN>`; the fake takes the Ads API's Bearer form
/// only). A missing, unknown, expired or revoked token: 401 with
/// `WWW-Authenticate: Bearer error="invalid_token"` [3P: adskull's 401 page, unverified] and
/// the error envelope with `E3003` (undocumented: the fake chooses the code). A token without
/// [`SCOPE`]: 403 `E1008` (undocumented: the fake chooses).
fn api_auth(st: &mut Inner, headers: &HeaderMap) -> Result<(), Response> {
    let raw = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    st.authorizations.push(raw);
    let now = Instant::now();
    let scope = bearer(headers).and_then(|t| {
        st.access
            .get(&t)
            .filter(|a| !a.revoked && a.expires > now)
            .map(|a| a.scope.clone())
    });
    let Some(scope) = scope else {
        let mut r = api_error(
            401,
            "E3003",
            "The access token is missing, invalid or expired.",
        );
        r.headers_mut().insert(
            "www-authenticate",
            "Bearer error=\"invalid_token\"".parse().unwrap(),
        );
        return Err(r);
    };
    if !scope.split(' ').any(|s| s == SCOPE) {
        return Err(api_error(
            403,
            "E1008",
            "The access token was not granted the snapchat-profile-api scope.",
        ));
    }
    Ok(())
}

/// [3P] 403 for "wrong profile". Every token of the fake is the one profile's.
fn own_profile(profile_id: &str) -> Result<(), Response> {
    if profile_id == PROFILE_ID {
        Ok(())
    } else {
        Err(api_error(
            403,
            "E1008",
            "The access token is not authorized for this public profile.",
        ))
    }
}

fn parse_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, Response> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("application/json") {
        return Err(invalid("Content-Type must be application/json"));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| invalid("The request body is not a JSON object."))
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn fresh_seed() -> Vec<u8> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{n}{:?}{:?}",
        SystemTime::now(),
        std::thread::current().id()
    )
    .into_bytes()
}

/// A random version-4 UUID.
fn uuid() -> String {
    let mut b = digest(&[b"uuid", &fresh_seed()]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An opaque token (undocumented format: the fake's own).
fn new_token(prefix: &str) -> String {
    use base64::Engine;
    let b = digest(&[prefix.as_bytes(), &fresh_seed()]);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b[..24])
    )
}

/// Undocumented: the form of `created_at`. The fake chooses the Marketing API's ISO-8601 UTC
/// with milliseconds, `2026-01-02T03:04:05.678Z`.
fn iso(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}
