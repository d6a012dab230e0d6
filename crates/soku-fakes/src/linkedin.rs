//! A fake of LinkedIn's OAuth 2.0 pages, OpenID Connect `userinfo`, Images API and Posts API.
//!
//! What it checks, answering with LinkedIn's shapes (`{status, serviceErrorCode, code, message}`,
//! OAuth `{error, error_description}`, Rest.li `errorDetails.inputErrors`):
//! - `GET /oauth/v2/authorization`: `response_type=code`, the app's `client_id`, a registered
//!   `redirect_uri`, a non-empty `scope` of known scopes; approves as the member and answers 302
//!   to `redirect_uri?code=...&state=...`.
//! - `POST /oauth/v2/accessToken`: form-encoded; client id and secret; `authorization_code` with a
//!   code used once, within 30 minutes, with the `redirect_uri` it was issued for;
//!   `refresh_token` with a refresh token this fake issued and did not revoke.
//! - `GET /v2/userinfo`: a bearer token this fake issued (not expired, not revoked) with `openid`
//!   and `profile`.
//! - `/rest/*`: a valid bearer token with `w_member_social`, `LinkedIn-Version` present, `YYYYMM`,
//!   not in the future and not sunset (older than 12 months: 426 `NONEXISTENT_VERSION`),
//!   `X-Restli-Protocol-Version: 2.0.0`, `Content-Type: application/json`.
//! - `POST /rest/images?action=initializeUpload`: `initializeUploadRequest.owner` is the token's
//!   member; `PUT /dms-uploads/{id}` takes the bytes (bearer token of the owner, a JPEG, PNG or GIF).
//! - `POST /rest/posts`: every required field with its type and value (`author` the token's member,
//!   `commentary` valid little text, `visibility`, `distribution` with `feedDistribution`,
//!   `targetEntities` and `thirdPartyDistributionChannels`, `lifecycleState: PUBLISHED`,
//!   `isReshareDisabledByAuthor`), `content.media.id` or `content.multiImage.images` (2 to 20) naming
//!   images initialized by the author AND uploaded; refuses a duplicate of an earlier post (422
//!   `DUPLICATE_POST`); answers 201 with the URN in `x-restli-id`.
//! - `GET /rest/posts?q=author`: 403 without `r_member_social` (as for ordinary apps).
//! - Videos API: `POST /rest/videos?action=initializeUpload` (`owner` the token's member,
//!   `fileSizeBytes` of 75 KB to 500 MB, `uploadCaptions` / `uploadThumbnail` booleans) answers
//!   the video's URN, `uploadUrlsExpireAt`, an `uploadToken` (empty for one part) and one upload
//!   instruction per 4 MB part (the last shorter), each a URL of this fake; `PUT
//!   /dms-uploads/sp/{upload}/{part}` takes exactly the part's bytes (`Content-Type:
//!   application/octet-stream`) and answers 201 with a new `ETag`; `POST
//!   /rest/videos?action=finalizeUpload` checks the upload token and that `uploadedPartIds` are
//!   the latest ETag of every part, in order; `GET /rest/videos/{urn}` answers `status`:
//!   `WAITING_UPLOAD` until finalized, then `PROCESSING` for as many polls as set
//!   ([`LinkedInFake::set_video_processing_polls`]), then `AVAILABLE`, or `PROCESSING_FAILED`
//!   with a `processingFailureReason` when told to fail; 404 for a video it forgot. A post's
//!   `content.media.id` may name a video of the author that is `AVAILABLE`.

// Checks hand back the refusal to send as-is; a fake's speed is no concern.
#![allow(clippy::result_large_err)]

use crate::common::{Fake, Faults, bearer, json, parse_form, percent_encode, token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// The callback registered with the fake app at start; others with `register_redirect_uri`.
pub const REDIRECT_URI: &str = "https://soku.test/v1/oauth/linkedin/callback";
pub const MEMBER_SUB: &str = "782bbtaQ";
pub const MEMBER_NAME: &str = "Ada Lovelace";
/// Access tokens live 60 days, refresh tokens a year.
pub const ACCESS_TTL_SECS: u64 = 60 * 24 * 3600;
pub const REFRESH_TTL_SECS: u64 = 365 * 24 * 3600;
const CODE_TTL: Duration = Duration::from_secs(30 * 60);
const KNOWN_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "w_member_social",
    "r_member_social",
];
const RESERVED: &[char] = &[
    '|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '\\', '*', '_', '~',
];

/// How the token endpoint answers a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// The same refresh token again (LinkedIn keeps its lifetime).
    Same,
    /// A new refresh token; the old one stops working.
    Rotate,
    /// No `refresh_token` in the answer.
    Omit,
}

#[derive(Debug, Clone)]
pub struct FakePost {
    pub urn: String,
    pub author: String,
    pub commentary: String,
    /// Image URNs, in order.
    pub images: Vec<String>,
    /// The video's URN, for a video post.
    pub video: Option<String>,
    pub body: Value,
}

/// A video as the fake holds it.
#[derive(Debug, Clone)]
pub struct FakeVideo {
    pub urn: String,
    pub owner: String,
    pub size: u64,
    /// The parts' byte ranges (`firstByte`, `lastByte`), as the upload instructions said.
    pub parts: Vec<(u64, u64)>,
    pub upload_token: String,
    /// The latest ETag answered for each part.
    pub etags: Vec<Option<String>>,
    /// The bytes taken for each part.
    pub bytes: Vec<Option<Vec<u8>>>,
    /// How many PUTs each part took.
    pub part_uploads: Vec<usize>,
    /// The ETags finalize was given, once it took them.
    pub finalized_with: Option<Vec<String>>,
    /// `WAITING_UPLOAD`, `PROCESSING`, `AVAILABLE` or `PROCESSING_FAILED`.
    pub status: String,
    /// The statuses `GET /rest/videos/{urn}` answered, in order.
    pub states: Vec<String>,
    upload_id: String,
    urls_expire_at_ms: u64,
    polls_left: usize,
    fail: Option<String>,
    gone: bool,
}

impl FakeVideo {
    /// The whole file, when every part has been uploaded.
    pub fn file(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size as usize);
        for b in &self.bytes {
            out.extend_from_slice(b.as_deref()?);
        }
        Some(out)
    }
}

/// The parts the fake cuts a video into (LinkedIn's 4 MB), the last one shorter.
pub const VIDEO_PART_BYTES: u64 = 4 * 1024 * 1024;
pub const VIDEO_MIN_BYTES: u64 = 75_000;
pub const VIDEO_MAX_BYTES: u64 = 500 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct FakeImage {
    pub urn: String,
    pub owner: String,
    /// The bytes PUT to its upload URL, if any.
    pub bytes: Option<Vec<u8>>,
}

struct Grant {
    redirect_uri: String,
    scope: String,
    issued: Instant,
}

struct AccessToken {
    scope: String,
    expired: bool,
    revoked: bool,
}

struct Inner {
    redirect_uris: Vec<String>,
    codes: HashMap<String, Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, (String, bool)>,
    issue_refresh_tokens: bool,
    refresh_mode: RefreshMode,
    images: Vec<FakeImage>,
    upload_ids: HashMap<String, String>,
    posts: Vec<FakePost>,
    create_calls: usize,
    upload_calls: usize,
    next_id: u64,
    videos: Vec<FakeVideo>,
    video_init_calls: usize,
    video_part_uploads: usize,
    video_finalize_calls: usize,
    /// `GET` polls a finalized video answers `PROCESSING` before it is done.
    video_processing_polls: usize,
    /// Processing ends in `PROCESSING_FAILED` with this reason.
    video_failure: Option<String>,
    /// How long upload URLs stay valid.
    upload_urls_ttl: Duration,
}

type Shared = Arc<Mutex<Inner>>;

pub struct LinkedInFake {
    pub url: String,
    pub faults: Faults,
    inner: Shared,
    _fake: Fake,
}

impl LinkedInFake {
    pub async fn start() -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            issue_refresh_tokens: true,
            refresh_mode: RefreshMode::Same,
            images: Vec::new(),
            upload_ids: HashMap::new(),
            posts: Vec::new(),
            create_calls: 0,
            upload_calls: 0,
            next_id: 7_100_000_000_000_000_000,
            videos: Vec::new(),
            video_init_calls: 0,
            video_part_uploads: 0,
            video_finalize_calls: 0,
            video_processing_polls: 1,
            video_failure: None,
            upload_urls_ttl: Duration::from_secs(24 * 3600),
        }));
        let router = Router::new()
            .route("/oauth/v2/authorization", get(authorization))
            .route("/oauth/v2/accessToken", post(access_token))
            .route("/v2/userinfo", get(userinfo))
            .route("/rest/images", post(initialize_upload))
            .route("/dms-uploads/{id}", put(upload))
            .route("/rest/videos", post(video_action))
            .route("/rest/videos/{urn}", get(get_video))
            .route(
                "/dms-uploads/sp/{id}/{part}",
                put(upload_part).layer(DefaultBodyLimit::max(2 * VIDEO_PART_BYTES as usize)),
            )
            .route("/rest/posts", post(create_post).get(find_posts))
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

    /// The base URL to give the connector as `auth_url`.
    pub fn auth_url(&self) -> String {
        format!("{}/oauth/v2", self.url)
    }

    pub fn author_urn(&self) -> String {
        format!("urn:li:person:{MEMBER_SUB}")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Another redirect URI registered for the app (LinkedIn matches them exactly).
    pub fn register_redirect_uri(&self, uri: &str) {
        self.lock().redirect_uris.push(uri.to_owned());
    }

    /// An access token for the member, as if the member had connected with these scopes.
    pub fn mint_access_token(&self, scope: &str) -> String {
        let t = token("AQV");
        self.lock().access.insert(
            t.clone(),
            AccessToken {
                scope: scope.to_owned(),
                expired: false,
                revoked: false,
            },
        );
        t
    }

    /// A refresh token for the member (as an app with programmatic refresh tokens gets).
    pub fn mint_refresh_token(&self, scope: &str) -> String {
        let t = token("AQX");
        self.lock()
            .refresh
            .insert(t.clone(), (scope.to_owned(), false));
        t
    }

    pub fn expire_access_token(&self, t: &str) {
        if let Some(a) = self.lock().access.get_mut(t) {
            a.expired = true;
        }
    }

    pub fn revoke_access_token(&self, t: &str) {
        if let Some(a) = self.lock().access.get_mut(t) {
            a.revoked = true;
        }
    }

    pub fn revoke_refresh_token(&self, t: &str) {
        if let Some(r) = self.lock().refresh.get_mut(t) {
            r.1 = true;
        }
    }

    /// Whether code exchanges hand out refresh tokens (only some LinkedIn apps get them).
    pub fn set_issue_refresh_tokens(&self, on: bool) {
        self.lock().issue_refresh_tokens = on;
    }

    pub fn set_refresh_mode(&self, mode: RefreshMode) {
        self.lock().refresh_mode = mode;
    }

    pub fn access_token_valid(&self, t: &str) -> bool {
        self.lock()
            .access
            .get(t)
            .is_some_and(|a| !a.expired && !a.revoked)
    }

    pub fn issued_access_tokens(&self) -> usize {
        self.lock().access.len()
    }

    pub fn posts(&self) -> Vec<FakePost> {
        self.lock().posts.clone()
    }

    /// `POST /rest/posts` calls, refused ones included.
    pub fn create_calls(&self) -> usize {
        self.lock().create_calls
    }

    pub fn images(&self) -> Vec<FakeImage> {
        self.lock().images.clone()
    }

    pub fn upload_calls(&self) -> usize {
        self.lock().upload_calls
    }

    pub fn videos(&self) -> Vec<FakeVideo> {
        self.lock().videos.clone()
    }

    pub fn video(&self, urn: &str) -> Option<FakeVideo> {
        self.lock().videos.iter().find(|v| v.urn == urn).cloned()
    }

    /// `initializeUpload` calls for videos that the fake took.
    pub fn video_init_calls(&self) -> usize {
        self.lock().video_init_calls
    }

    /// Video parts PUT and taken, over all videos.
    pub fn video_part_uploads(&self) -> usize {
        self.lock().video_part_uploads
    }

    /// `finalizeUpload` calls that the fake took.
    pub fn video_finalize_calls(&self) -> usize {
        self.lock().video_finalize_calls
    }

    /// How many status polls a finalized video answers `PROCESSING` before it is done (1 unless
    /// set; 0 makes it available at once).
    pub fn set_video_processing_polls(&self, polls: usize) {
        self.lock().video_processing_polls = polls;
    }

    /// Processing of videos finalized from now on ends in `PROCESSING_FAILED` with `reason`
    /// (`None`: it succeeds).
    pub fn fail_video_processing(&self, reason: Option<&str>) {
        self.lock().video_failure = reason.map(str::to_owned);
    }

    /// How long the upload URLs of videos initialized from now on stay valid.
    pub fn set_upload_urls_ttl(&self, ttl: Duration) {
        self.lock().upload_urls_ttl = ttl;
    }

    /// LinkedIn forgets the video: 404 on its status, its upload URLs and in posts.
    pub fn forget_video(&self, urn: &str) {
        if let Some(v) = self.lock().videos.iter_mut().find(|v| v.urn == urn) {
            v.gone = true;
        }
    }

    /// LinkedIn's 429, with `Retry-After` when given, for the next `method` call to `path`.
    pub fn push_rate_limit(&self, method: &str, path: &str, retry_after: Option<u64>) {
        let ra = retry_after.map(|s| s.to_string());
        let headers: Vec<(&str, &str)> = ra
            .as_deref()
            .map(|v| vec![("retry-after", v)])
            .unwrap_or_default();
        let message = if retry_after.is_some() {
            "Too many requests"
        } else {
            "Resource level throttle MEMBER DAY limit for calls to this resource is reached."
        };
        self.faults.reply(
            method,
            path,
            429,
            &headers,
            json!({"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS",
                   "message": message}),
        );
    }

    /// LinkedIn's 5xx for the next `method` call to `path`.
    pub fn push_server_error(&self, method: &str, path: &str, status: u16) {
        self.faults.reply(
            method,
            path,
            status,
            &[],
            json!({"status": status, "serviceErrorCode": 0, "code": "INTERNAL_SERVER_ERROR",
                   "message": "Internal Server Error"}),
        );
    }
}

fn li_error(status: u16, service_code: u32, code: &str, message: &str) -> Response {
    json(
        status,
        json!({"status": status, "serviceErrorCode": service_code, "code": code, "message": message}),
    )
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// Rest.li's answer to a body that does not fit the schema.
fn input_error(status: u16, path: &str, code: &str, description: &str) -> Response {
    json(
        status,
        json!({
            "errorDetailType": "com.linkedin.common.error.BadRequest",
            "message": format!("ERROR :: {path} :: {description}\n"),
            "errorDetails": {"inputErrors": [{
                "description": description,
                "input": {"inputPath": {"fieldPath": path}},
                "code": code,
            }]},
            "status": status,
        }),
    )
}

async fn authorization(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID {
        return (StatusCode::BAD_REQUEST, "Invalid client_id").into_response();
    }
    let redirect_uri = get("redirect_uri").to_owned();
    if !s.lock().unwrap().redirect_uris.contains(&redirect_uri) {
        return (
            StatusCode::BAD_REQUEST,
            "The redirect_uri does not match the registered value",
        )
            .into_response();
    }
    if get("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "response_type must be code").into_response();
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let state = q
        .get("state")
        .map(|st| format!("&state={}", percent_encode(st)));
    let scopes: Vec<&str> = get("scope").split(' ').filter(|x| !x.is_empty()).collect();
    if scopes.is_empty() || scopes.iter().any(|x| !KNOWN_SCOPES.contains(x)) {
        let location = format!(
            "{redirect_uri}{sep}error=unauthorized_scope_error&error_description={}{}",
            percent_encode("Scope is not authorized for your application"),
            state.unwrap_or_default()
        );
        return (StatusCode::FOUND, [("location", location)]).into_response();
    }
    let code = token("AQT");
    s.lock().unwrap().codes.insert(
        code.clone(),
        Grant {
            redirect_uri: redirect_uri.clone(),
            scope: scopes.join(","),
            issued: Instant::now(),
        },
    );
    let location = format!(
        "{redirect_uri}{sep}code={}{}",
        percent_encode(&code),
        state.unwrap_or_default()
    );
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn access_token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let form = parse_form(&body);
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    for k in ["grant_type", "client_id", "client_secret"] {
        if get(k).is_empty() {
            return oauth_error(
                400,
                "invalid_request",
                &format!("A required parameter \"{k}\" is missing"),
            );
        }
    }
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    }
    let mut st = s.lock().unwrap();
    let (scope, old_refresh) = match get("grant_type") {
        "authorization_code" => {
            if get("code").is_empty() || get("redirect_uri").is_empty() {
                return oauth_error(
                    400,
                    "invalid_request",
                    "A required parameter \"code\" or \"redirect_uri\" is missing",
                );
            }
            // Single use: a code is gone once presented, whatever the outcome.
            let grant = st.codes.remove(get("code"));
            match grant {
                Some(g)
                    if g.redirect_uri == get("redirect_uri") && g.issued.elapsed() < CODE_TTL =>
                {
                    (g.scope, None)
                }
                _ => {
                    return oauth_error(
                        400,
                        "invalid_request",
                        "Unable to retrieve access token: appid/redirect uri/code verifier does \
                         not match authorization code. Or authorization code expired. Or external \
                         member binding exists",
                    );
                }
            }
        }
        "refresh_token" => match st.refresh.get(get("refresh_token")) {
            Some((scope, false)) => (scope.clone(), Some(get("refresh_token").to_owned())),
            _ => {
                return oauth_error(
                    400,
                    "invalid_request",
                    "The provided authorization grant or refresh token is invalid, expired or \
                     revoked",
                );
            }
        },
        _ => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The grant type is not supported",
            );
        }
    };
    let access = token("AQV");
    st.access.insert(
        access.clone(),
        AccessToken {
            scope: scope.clone(),
            expired: false,
            revoked: false,
        },
    );
    let mut answer = json!({
        "access_token": access,
        "expires_in": ACCESS_TTL_SECS,
        "scope": scope,
        "token_type": "Bearer",
    });
    let refresh = match old_refresh {
        None if st.issue_refresh_tokens => Some(token("AQX")),
        None => None,
        Some(old) => match st.refresh_mode {
            RefreshMode::Same => Some(old),
            RefreshMode::Omit => None,
            RefreshMode::Rotate => {
                st.refresh.remove(&old);
                Some(token("AQX"))
            }
        },
    };
    if let Some(r) = refresh {
        st.refresh.insert(r.clone(), (scope, false));
        answer["refresh_token"] = json!(r);
        answer["refresh_token_expires_in"] = json!(REFRESH_TTL_SECS);
    }
    json(200, answer)
}

/// The token's scope, or LinkedIn's 401.
fn authorize(s: &Shared, headers: &HeaderMap) -> Result<String, Response> {
    let Some(t) = bearer(headers) else {
        return Err(li_error(
            401,
            65604,
            "EMPTY_ACCESS_TOKEN",
            "Empty oauth2 access token",
        ));
    };
    let st = s.lock().unwrap();
    match st.access.get(&t) {
        None => Err(li_error(
            401,
            65600,
            "INVALID_ACCESS_TOKEN",
            "Invalid access token",
        )),
        Some(a) if a.revoked => Err(li_error(
            401,
            65601,
            "REVOKED_ACCESS_TOKEN",
            "The token used in the request has been revoked by the user",
        )),
        Some(a) if a.expired => Err(li_error(
            401,
            65602,
            "EXPIRED_ACCESS_TOKEN",
            "The token used in the request has expired",
        )),
        Some(a) => Ok(a.scope.clone()),
    }
}

fn has_scope(scope: &str, want: &str) -> bool {
    scope.split([',', ' ']).any(|x| x == want)
}

async fn userinfo(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let scope = match authorize(&s, &headers) {
        Ok(scope) => scope,
        Err(r) => return r,
    };
    if !has_scope(&scope, "openid") || !has_scope(&scope, "profile") {
        return li_error(
            403,
            100,
            "ACCESS_DENIED",
            "Not enough permissions to access: userinfo.GET.NO_VERSION",
        );
    }
    json(
        200,
        json!({
            "sub": MEMBER_SUB,
            "email_verified": true,
            "name": MEMBER_NAME,
            "locale": {"country": "GB", "language": "en"},
            "given_name": "Ada",
            "family_name": "Lovelace",
            "picture": "https://media.licdn.com/dms/image/fake/profile.jpg",
        }),
    )
}

/// `YYYYMM` of today (UTC).
fn current_version() -> u32 {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year * 100 + month) as u32
}

fn months(v: u32) -> i64 {
    i64::from(v / 100) * 12 + i64::from(v % 100) - 1
}

/// The headers every `/rest` call needs; the token's scope when they are right.
fn rest_checks(s: &Shared, headers: &HeaderMap, json_body: bool) -> Result<String, Response> {
    let scope = authorize(s, headers)?;
    let version = headers
        .get("linkedin-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if version.is_empty() {
        return Err(li_error(
            400,
            0,
            "VERSION_MISSING",
            "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
        ));
    }
    let parsed = (version.len() == 6)
        .then(|| version.parse::<u32>().ok())
        .flatten()
        .filter(|v| (1..=12).contains(&(v % 100)));
    let Some(v) = parsed else {
        return Err(li_error(
            400,
            0,
            "INVALID_VERSION",
            &format!("Invalid version format {version}; expected YYYYMM"),
        ));
    };
    let age = months(current_version()) - months(v);
    if !(0..=12).contains(&age) {
        return Err(li_error(
            426,
            0,
            "NONEXISTENT_VERSION",
            &format!("Requested version {version} is not active"),
        ));
    }
    if headers
        .get("x-restli-protocol-version")
        .and_then(|v| v.to_str().ok())
        != Some("2.0.0")
    {
        return Err(li_error(
            400,
            0,
            "INVALID_PROTOCOL_VERSION",
            "X-Restli-Protocol-Version: 2.0.0 is required",
        ));
    }
    if json_body
        && !headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err(li_error(
            415,
            0,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
        ));
    }
    if !has_scope(&scope, "w_member_social") {
        return Err(li_error(
            403,
            100,
            "ACCESS_DENIED",
            "Not enough permissions to access this resource",
        ));
    }
    Ok(scope)
}

fn member_urn() -> String {
    format!("urn:li:person:{MEMBER_SUB}")
}

async fn initialize_upload(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = rest_checks(&s, &headers, true) {
        return r;
    }
    if q.get("action").map(String::as_str) != Some("initializeUpload") {
        return li_error(400, 0, "BAD_REQUEST", "action=initializeUpload is required");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return li_error(400, 0, "BAD_REQUEST", "The request body is not JSON");
    };
    let Some(owner) = body
        .get("initializeUploadRequest")
        .and_then(|r| r.get("owner"))
    else {
        return input_error(
            422,
            "/initializeUploadRequest/owner",
            "FIELD_REQUIRED",
            "field is required but not found and has no default value",
        );
    };
    let Some(owner) = owner.as_str() else {
        return input_error(
            422,
            "/initializeUploadRequest/owner",
            "INVALID_TYPE",
            "field must be a string",
        );
    };
    if owner != member_urn() {
        return li_error(
            403,
            100,
            "ACCESS_DENIED",
            &format!("Not enough permissions to upload images for {owner}"),
        );
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut st = s.lock().unwrap();
    st.next_id += 1;
    let urn = format!("urn:li:image:D4E10AQ{}", st.next_id);
    let upload_id = token("up");
    st.upload_ids.insert(upload_id.clone(), urn.clone());
    st.images.push(FakeImage {
        urn: urn.clone(),
        owner: owner.to_owned(),
        bytes: None,
    });
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000;
    json(
        200,
        json!({"value": {
            "uploadUrlExpiresAt": expires as u64,
            "uploadUrl": format!("http://{host}/dms-uploads/{upload_id}"),
            "image": urn,
        }}),
    )
}

async fn upload(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&s, &headers) {
        return r;
    }
    let mut st = s.lock().unwrap();
    st.upload_calls += 1;
    let Some(urn) = st.upload_ids.get(&id).cloned() else {
        return li_error(404, 0, "NOT_FOUND", "Unknown upload");
    };
    let magic = body.starts_with(&[0xFF, 0xD8, 0xFF])
        || body.starts_with(b"\x89PNG\r\n\x1a\n")
        || body.starts_with(b"GIF87a")
        || body.starts_with(b"GIF89a");
    if !magic {
        return li_error(
            400,
            0,
            "BAD_REQUEST",
            "The upload is not a JPEG, PNG or GIF image",
        );
    }
    if let Some(img) = st.images.iter_mut().find(|i| i.urn == urn) {
        img.bytes = Some(body.to_vec());
    }
    StatusCode::CREATED.into_response()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `POST /rest/videos?action=initializeUpload | finalizeUpload`.
async fn video_action(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = rest_checks(&s, &headers, true) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return li_error(400, 0, "BAD_REQUEST", "The request body is not JSON");
    };
    match q.get("action").map(String::as_str) {
        Some("initializeUpload") => initialize_video(&s, &headers, &body),
        Some("finalizeUpload") => finalize_video(&s, &body),
        _ => li_error(
            400,
            0,
            "BAD_REQUEST",
            "action=initializeUpload or action=finalizeUpload is required",
        ),
    }
}

fn initialize_video(s: &Shared, headers: &HeaderMap, body: &Value) -> Response {
    let req = body.get("initializeUploadRequest");
    let field = |name: &str| req.and_then(|r| r.get(name));
    let path = |name: &str| format!("/initializeUploadRequest/{name}");
    let Some(owner) = field("owner") else {
        return input_error(
            422,
            &path("owner"),
            "FIELD_REQUIRED",
            "field is required but not found and has no default value",
        );
    };
    let Some(owner) = owner.as_str() else {
        return input_error(
            422,
            &path("owner"),
            "INVALID_TYPE",
            "field must be a string",
        );
    };
    if owner != member_urn() {
        return li_error(
            403,
            100,
            "ACCESS_DENIED",
            "Accessing this video resource is forbidden. Please check your permissions for this resource",
        );
    }
    let Some(size) = field("fileSizeBytes") else {
        return input_error(
            422,
            &path("fileSizeBytes"),
            "FIELD_REQUIRED",
            "field is required but not found and has no default value",
        );
    };
    let Some(size) = size.as_u64() else {
        return input_error(
            422,
            &path("fileSizeBytes"),
            "INVALID_TYPE",
            "field must be a long",
        );
    };
    if !(VIDEO_MIN_BYTES..=VIDEO_MAX_BYTES).contains(&size) {
        return input_error(
            400,
            &path("fileSizeBytes"),
            "INVALID_VALUE",
            "video file size must be between 75 KB and 500 MB",
        );
    }
    for flag in ["uploadCaptions", "uploadThumbnail"] {
        if field(flag).is_some_and(|v| !v.is_boolean()) {
            return input_error(422, &path(flag), "INVALID_TYPE", "field must be a boolean");
        }
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut st = s.lock().unwrap();
    st.video_init_calls += 1;
    st.next_id += 1;
    let urn = format!("urn:li:video:C5F10AQ{}", st.next_id);
    let upload_id = token("sp");
    let mut parts = Vec::new();
    let mut first = 0u64;
    while first < size {
        let last = (first + VIDEO_PART_BYTES).min(size) - 1;
        parts.push((first, last));
        first = last + 1;
    }
    // LinkedIn sends an empty token for a single-part upload.
    let upload_token = if parts.len() > 1 {
        token("ut")
    } else {
        String::new()
    };
    let expires = now_ms() + st.upload_urls_ttl.as_millis() as u64;
    let instructions: Vec<Value> = parts
        .iter()
        .enumerate()
        .map(|(i, (first, last))| {
            json!({
                "uploadUrl": format!("http://{host}/dms-uploads/sp/{upload_id}/{i}"),
                "firstByte": first,
                "lastByte": last,
            })
        })
        .collect();
    let n = parts.len();
    st.videos.push(FakeVideo {
        urn: urn.clone(),
        owner: owner.to_owned(),
        size,
        parts,
        upload_token: upload_token.clone(),
        etags: vec![None; n],
        bytes: vec![None; n],
        part_uploads: vec![0; n],
        finalized_with: None,
        status: "WAITING_UPLOAD".to_owned(),
        states: Vec::new(),
        upload_id,
        urls_expire_at_ms: expires,
        polls_left: 0,
        fail: None,
        gone: false,
    });
    json(
        200,
        json!({"value": {
            "uploadUrlsExpireAt": expires,
            "video": urn,
            "uploadInstructions": instructions,
            "uploadToken": upload_token,
        }}),
    )
}

fn finalize_video(s: &Shared, body: &Value) -> Response {
    let req = body.get("finalizeUploadRequest");
    let field = |name: &str| req.and_then(|r| r.get(name));
    let path = |name: &str| format!("/finalizeUploadRequest/{name}");
    for name in ["video", "uploadToken", "uploadedPartIds"] {
        if field(name).is_none() {
            return input_error(
                422,
                &path(name),
                "FIELD_REQUIRED",
                "field is required but not found and has no default value",
            );
        }
    }
    let (Some(urn), Some(upload_token), Some(ids)) = (
        field("video").and_then(Value::as_str),
        field("uploadToken").and_then(Value::as_str),
        field("uploadedPartIds").and_then(Value::as_array),
    ) else {
        return input_error(
            422,
            "/finalizeUploadRequest",
            "INVALID_TYPE",
            "video and uploadToken must be strings, uploadedPartIds an array",
        );
    };
    let ids: Vec<String> = ids
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    let mut st = s.lock().unwrap();
    let polls = st.video_processing_polls;
    let failure = st.video_failure.clone();
    let Some(video) = st.videos.iter_mut().find(|v| v.urn == urn && !v.gone) else {
        return li_error(404, 0, "NOT_FOUND", &format!("Video {urn} does not exist"));
    };
    if video.owner != member_urn() {
        return li_error(403, 100, "ACCESS_DENIED", "Not the video's owner");
    }
    if let Some(done) = &video.finalized_with {
        // Finalizing again with the same parts changes nothing.
        if *done == ids {
            return StatusCode::OK.into_response();
        }
        return li_error(400, 0, "BAD_REQUEST", "The upload is already finalized");
    }
    if upload_token != video.upload_token {
        return li_error(400, 0, "BAD_REQUEST", "Invalid upload token");
    }
    if ids.len() != video.parts.len() {
        return li_error(
            400,
            0,
            "BAD_REQUEST",
            &format!(
                "Expected {} uploaded part ids, got {}",
                video.parts.len(),
                ids.len()
            ),
        );
    }
    for (i, (id, etag)) in ids.iter().zip(&video.etags).enumerate() {
        match etag {
            None => {
                return li_error(400, 0, "BAD_REQUEST", &format!("Part {i} was not uploaded"));
            }
            Some(e) if e != id => {
                return li_error(
                    400,
                    0,
                    "BAD_REQUEST",
                    &format!("Uploaded part id {i} does not match the part's ETag"),
                );
            }
            _ => {}
        }
    }
    video.finalized_with = Some(ids);
    video.status = "PROCESSING".to_owned();
    video.polls_left = polls;
    video.fail = failure;
    st.video_finalize_calls += 1;
    StatusCode::OK.into_response()
}

/// `PUT` of one part to its upload URL.
async fn upload_part(
    State(s): State<Shared>,
    Path((id, part)): Path<(String, usize)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.contains_key("authorization")
        && let Err(r) = authorize(&s, &headers)
    {
        return r;
    }
    if headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|c| c != "application/octet-stream")
    {
        return li_error(
            400,
            0,
            "BAD_REQUEST",
            "Content-Type must be application/octet-stream",
        );
    }
    let mut st = s.lock().unwrap();
    let Some(video) = st.videos.iter_mut().find(|v| v.upload_id == id && !v.gone) else {
        return li_error(404, 0, "NOT_FOUND", "Unknown upload");
    };
    if now_ms() > video.urls_expire_at_ms {
        return li_error(403, 0, "FORBIDDEN", "The upload URL has expired");
    }
    if video.finalized_with.is_some() {
        return li_error(400, 0, "BAD_REQUEST", "The upload is already finalized");
    }
    let Some(&(first, last)) = video.parts.get(part) else {
        return li_error(404, 0, "NOT_FOUND", "Unknown part");
    };
    let want = last - first + 1;
    if body.len() as u64 != want {
        return li_error(
            400,
            0,
            "BAD_REQUEST",
            &format!(
                "Part {part} is bytes {first}-{last} ({want} bytes); got {}",
                body.len()
            ),
        );
    }
    let etag = format!("/ambry-video/signedBlobs/{}", token("part"));
    video.etags[part] = Some(etag.clone());
    video.bytes[part] = Some(body.to_vec());
    video.part_uploads[part] += 1;
    st.video_part_uploads += 1;
    (StatusCode::CREATED, [("etag", etag)]).into_response()
}

/// `GET /rest/videos/{urn}`: the video, its status moving on with each poll once finalized.
async fn get_video(
    State(s): State<Shared>,
    Path(urn): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = rest_checks(&s, &headers, false) {
        return r;
    }
    let mut st = s.lock().unwrap();
    let Some(video) = st.videos.iter_mut().find(|v| v.urn == urn && !v.gone) else {
        return li_error(404, 0, "NOT_FOUND", &format!("Video {urn} does not exist"));
    };
    if video.owner != member_urn() {
        return li_error(
            403,
            100,
            "ACCESS_DENIED",
            "Accessing this video resource is forbidden. Please check your permissions for this resource",
        );
    }
    if video.status == "PROCESSING" {
        if video.polls_left == 0 {
            video.status = if video.fail.is_some() {
                "PROCESSING_FAILED".to_owned()
            } else {
                "AVAILABLE".to_owned()
            };
        } else {
            video.polls_left -= 1;
        }
    }
    video.states.push(video.status.clone());
    let mut answer = json!({
        "id": video.urn,
        "owner": video.owner,
        "status": video.status,
    });
    if video.status == "AVAILABLE" {
        answer["duration"] = json!(10_000);
        answer["aspectRatioWidth"] = json!(16.0);
        answer["aspectRatioHeight"] = json!(9.0);
    }
    if video.status == "PROCESSING_FAILED" {
        answer["processingFailureReason"] = json!(video.fail);
    }
    json(200, answer)
}

/// Where `text` breaks the little text format (an unescaped reserved character other than a
/// hashtag's `#`, or a backslash escaping nothing reserved).
fn little_error(text: &str) -> Option<usize> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            if chars.get(i + 1).is_some_and(|n| RESERVED.contains(n)) {
                i += 2;
                continue;
            }
            return Some(i);
        }
        if c == '#'
            && (i == 0 || chars[i - 1].is_whitespace())
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
        {
            i += 1;
            continue;
        }
        if RESERVED.contains(&c) {
            return Some(i);
        }
        i += 1;
    }
    None
}

async fn create_post(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    s.lock().unwrap().create_calls += 1;
    if let Err(r) = rest_checks(&s, &headers, true) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return li_error(400, 0, "BAD_REQUEST", "The request body is not JSON");
    };
    let required = |path: &str| {
        input_error(
            422,
            path,
            "FIELD_REQUIRED",
            "field is required but not found and has no default value",
        )
    };
    let bad = |path: &str, what: &str| input_error(422, path, "INVALID_VALUE", what);

    let Some(author) = body.get("author") else {
        return required("/author");
    };
    let Some(author) = author.as_str() else {
        return bad("/author", "field must be a URN string");
    };
    if author != member_urn() {
        return li_error(
            403,
            100,
            "ACCESS_DENIED",
            &format!("Not enough permissions to post as {author}"),
        );
    }
    let Some(commentary) = body.get("commentary") else {
        return required("/commentary");
    };
    let Some(commentary) = commentary.as_str() else {
        return bad("/commentary", "field must be a string");
    };
    if let Some(at) = little_error(commentary) {
        return bad(
            "/commentary",
            &format!("invalid little text: unescaped reserved character at {at}"),
        );
    }
    // Counted as the reader sees it: escapes are not characters of the post.
    let escapes = commentary.matches('\\').count() - commentary.matches("\\\\").count();
    if commentary.chars().count() - escapes > 3000 {
        return bad("/commentary", "commentary is longer than 3000 characters");
    }
    match body.get("visibility") {
        None => return required("/visibility"),
        Some(v) if !matches!(v.as_str(), Some("PUBLIC" | "CONNECTIONS" | "LOGGED_IN")) => {
            return bad("/visibility", "unknown visibility");
        }
        _ => {}
    }
    let Some(dist) = body.get("distribution") else {
        return required("/distribution");
    };
    match dist.get("feedDistribution") {
        None => return required("/distribution/feedDistribution"),
        Some(v) if !matches!(v.as_str(), Some("MAIN_FEED" | "NONE")) => {
            return bad("/distribution/feedDistribution", "unknown feedDistribution");
        }
        _ => {}
    }
    for f in ["targetEntities", "thirdPartyDistributionChannels"] {
        match dist.get(f) {
            None => return required(&format!("/distribution/{f}")),
            Some(v) if !v.is_array() => {
                return bad(&format!("/distribution/{f}"), "field must be an array");
            }
            _ => {}
        }
    }
    match body.get("lifecycleState") {
        None => return required("/lifecycleState"),
        Some(v) if v.as_str() != Some("PUBLISHED") => {
            return bad(
                "/lifecycleState",
                "only PUBLISHED posts can be created here",
            );
        }
        _ => {}
    }
    match body.get("isReshareDisabledByAuthor") {
        None => return required("/isReshareDisabledByAuthor"),
        Some(v) if !v.is_boolean() => {
            return bad("/isReshareDisabledByAuthor", "field must be a boolean");
        }
        _ => {}
    }

    let mut images = Vec::new();
    if let Some(content) = body.get("content") {
        match (content.get("media"), content.get("multiImage")) {
            (Some(m), None) => match m.get("id").and_then(Value::as_str) {
                Some(id) => images.push(("/content/media/id".to_owned(), id.to_owned())),
                None => return required("/content/media/id"),
            },
            (None, Some(mi)) => {
                let Some(list) = mi.get("images").and_then(Value::as_array) else {
                    return required("/content/multiImage/images");
                };
                if !(2..=20).contains(&list.len()) {
                    return bad(
                        "/content/multiImage/images",
                        "a MultiImage post holds 2 to 20 images",
                    );
                }
                for (i, img) in list.iter().enumerate() {
                    let path = format!("/content/multiImage/images/{i}/id");
                    match img.get("id").and_then(Value::as_str) {
                        Some(id) => images.push((path, id.to_owned())),
                        None => return required(&path),
                    }
                }
            }
            _ => return bad("/content", "exactly one of media or multiImage is expected"),
        }
    }

    let mut st = s.lock().unwrap();
    let mut video = None;
    if let [(path, id)] = images.as_slice()
        && id.starts_with("urn:li:video:")
    {
        match st.videos.iter().find(|v| &v.urn == id && !v.gone) {
            None => return bad(path, &format!("{id} does not exist")),
            Some(v) if v.owner != author => {
                return bad(path, &format!("{id} is not owned by {author}"));
            }
            Some(v) if v.status != "AVAILABLE" => {
                return bad(
                    path,
                    &format!("{id} is not available to post (status {})", v.status),
                );
            }
            _ => {}
        }
        video = Some(id.clone());
        images.clear();
    }
    for (path, id) in &images {
        match st.images.iter().find(|i| &i.urn == id) {
            None => return bad(path, &format!("{id} does not exist")),
            Some(i) if i.owner != author => {
                return bad(path, &format!("{id} is not owned by {author}"));
            }
            Some(i) if i.bytes.is_none() => {
                return bad(path, &format!("{id} has not been uploaded"));
            }
            _ => {}
        }
    }
    let ids: Vec<String> = images.into_iter().map(|(_, id)| id).collect();
    if let Some(dup) = st.posts.iter().find(|p| {
        p.author == author && p.commentary == commentary && p.images == ids && p.video == video
    }) {
        return json(
            422,
            json!({
                "errorDetailType": "com.linkedin.common.error.BadRequest",
                "message": format!("com.linkedin.content.common.exception.BadRequestResponseException: Content is a duplicate of {}", dup.urn),
                "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}]},
                "status": 422,
            }),
        );
    }
    st.next_id += 1;
    let urn = format!("urn:li:share:{}", st.next_id);
    st.posts.push(FakePost {
        urn: urn.clone(),
        author: author.to_owned(),
        commentary: commentary.to_owned(),
        images: ids,
        video,
        body,
    });
    (
        StatusCode::CREATED,
        [
            ("x-restli-id", urn.as_str()),
            ("x-linkedin-id", urn.as_str()),
        ],
    )
        .into_response()
}

/// The finder on posts by author: needs `r_member_social`, a restricted permission.
async fn find_posts(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let scope = match rest_checks(&s, &headers, false) {
        Ok(scope) => scope,
        Err(r) => return r,
    };
    if q.get("q").map(String::as_str) != Some("author") || !q.contains_key("author") {
        return li_error(400, 0, "BAD_REQUEST", "q=author and author are required");
    }
    if !has_scope(&scope, "r_member_social") {
        return li_error(
            403,
            100,
            "ACCESS_DENIED",
            "Not enough permissions to access: partnerApiPostsExternal.FINDER-author",
        );
    }
    let st = s.lock().unwrap();
    let author = q.get("author").cloned().unwrap_or_default();
    let elements: Vec<Value> = st
        .posts
        .iter()
        .rev()
        .filter(|p| p.author == author)
        .map(|p| {
            let mut v = p.body.clone();
            v["id"] = json!(p.urn);
            v
        })
        .collect();
    json(
        200,
        json!({"elements": elements, "paging": {"start": 0, "count": 10, "links": []}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn little_text_validation() {
        assert_eq!(little_error("plain #tag \\(x\\)"), None);
        assert_eq!(little_error("a (b)"), Some(2));
        assert_eq!(little_error("C# x"), Some(1));
        assert_eq!(little_error("back\\slash"), Some(4));
    }

    #[test]
    fn forms_decode() {
        let f = parse_form(b"a=1&redirect_uri=https%3A%2F%2Fx.test%2Fcb&s=a+b");
        assert_eq!(f["redirect_uri"], "https://x.test/cb");
        assert_eq!(f["s"], "a b");
    }

    #[test]
    fn current_version_is_yyyymm() {
        let v = current_version();
        assert!(v > 202600 && (1..=12).contains(&(v % 100)));
    }
}
