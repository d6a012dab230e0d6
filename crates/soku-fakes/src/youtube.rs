//! A fake of Google's OAuth 2.0 server (web server apps) and the parts of the YouTube Data API v3
//! the YouTube connector uses: `channels.list`, the resumable `videos.insert` and `videos.list`.
//!
//! # Checked against Google's discovery document
//!
//! The API calls are checked against `specs/youtube-api-extract.json`, an extract of Google's
//! discovery document for the YouTube Data API v3 (revision 20260601; see `specs/README.md`):
//! [`CALLS`] names each method the fake serves, with the parameters it accepts, and the tests
//! (`tests/youtube.rs`, and the connector's) check that every method, parameter and field the
//! fake takes or answers is in the extract. The fake also keeps a log of every API call it served
//! ([`YouTubeFake::exchanges`]), and [`drift::problems`] checks each one (method, path, query
//! parameters, request body, JSON answer) against the extract: a test that runs the connector
//! can then assert that everything it sent and everything it was answered fits the document.
//!
//! # What the discovery document does not describe, pinned to Google's documentation
//!
//! OAuth ("Using OAuth 2.0 for Web Server Applications",
//! <https://developers.google.com/identity/protocols/oauth2/web-server>):
//! - `GET /o/oauth2/v2/auth` ("https://accounts.google.com/o/oauth2/v2/auth"): `client_id`,
//!   `redirect_uri` ("must exactly match one of the authorized redirect URIs for the OAuth 2.0
//!   client"), `response_type=code`, `scope` ("A space-delimited list of scopes"), `state`,
//!   `access_type` ("Valid parameter values are online, which is the default value, and
//!   offline"), `prompt` ("A space-delimited, case-sensitive list of prompts": `none`, `consent`,
//!   `select_account`), `include_granted_scopes`, `code_challenge`, `code_challenge_method`
//!   (OpenID configuration: `"code_challenge_methods_supported": ["plain", "S256"]`). Approves
//!   as the one user and redirects to `redirect_uri?state=...&code=...&scope=...`; an unknown
//!   scope redirects with `error=invalid_scope`.
//! - `POST /token` ("https://oauth2.googleapis.com/token"), form-encoded: `client_id`,
//!   `client_secret`, `code`, `grant_type=authorization_code`, `redirect_uri`, and
//!   `code_verifier` when the authorization had a challenge. "access_type ... offline ... This
//!   value instructs the Google authorization server to return a refresh token and an access
//!   token the first time that your application exchanges an authorization code for tokens":
//!   a refresh token is issued for `access_type=offline` on the first consent, and again
//!   whenever `prompt=consent` was asked. The answer: `access_token`, `expires_in` (3599),
//!   `refresh_token` (as above), `scope`, `token_type: Bearer`. `grant_type=refresh_token`
//!   answers the same without a refresh token. A used, unknown or expired code, or a refresh
//!   token revoked, expired or unknown, is `400 {"error": "invalid_grant", ...}` ("Token has been
//!   expired or revoked."); unknown client credentials are `401 {"error": "invalid_client"}`.
//! - `POST /revoke` ("https://oauth2.googleapis.com/revoke", `token=...`): "If the token is an
//!   access token and it has a corresponding refresh token, the refresh token will also be
//!   revoked": revokes the whole grant.
//!
//! The resumable upload protocol ("Resumable Uploads",
//! <https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol>):
//! - `POST /upload/youtube/v3/videos?uploadType=resumable&part=...` with the video resource as
//!   JSON and `X-Upload-Content-Length` ("The number of bytes that will be uploaded in
//!   subsequent requests") and `X-Upload-Content-Type` ("video/*" or
//!   "application/octet-stream", the discovery document's `mediaUpload.accept`): "the API
//!   server will respond with a 200 (OK) HTTP status code, and the response will include a
//!   Location HTTP header that specifies the URI for the resumable session". The discovery
//!   document names `/resumable/upload/youtube/v3/videos` as the resumable path; the fake takes
//!   both.
//! - `PUT` the session URI with `Content-Range: bytes FIRST-LAST/TOTAL`: each chunk but the last
//!   must be a multiple of 256 KiB ("All chunks must be a multiple of 256 KB (256 x 1024 bytes)
//!   in size, except for the final chunk that completes the upload", Google's generic resumable
//!   rule) and start where the session stands; a chunk that leaves the upload incomplete is
//!   answered `308` with `Range: bytes=0-N`; the one that completes it "201 (Created) ... The
//!   body of the response is the video resource".
//! - `PUT` with `Content-Length: 0` and `Content-Range: bytes */TOTAL` asks the session's status:
//!   `308` with `Range` (none when no byte arrived), or, "If the upload already completed, the API
//!   will return the same response that it sent when the upload originally completed".
//! - The session URI is the upload's credential: PUTs to it are not checked for a token (the
//!   guide's requests carry `Authorization`, and the connector sends it; the fake ignores it).
//! - "Each resumable session URI has a finite lifetime and eventually expires": an expired (or
//!   unknown) session is `404 Not Found` ([`YouTubeFake::expire_sessions`]).
//!
//! Errors ("YouTube Data API - Errors", <https://developers.google.com/youtube/v3/docs/errors>),
//! in Google's envelope `{"error": {"code", "message", "errors": [{"message", "domain",
//! "reason"}], "status"}}`: "quotaExceeded (403) quotaExceeded The request cannot be completed
//! because you have exceeded your quota." (domain `youtube.quota`); `uploadLimitExceeded` (400,
//! domain `youtube.video`) "The user has exceeded the number of videos they may upload.";
//! "invalidTitle ... The request metadata specifies an invalid or empty video title.";
//! "invalidDescription ... The request metadata specifies an invalid video description.";
//! "invalidTags ... The request metadata specifies invalid video keywords."; 401 `authError`
//! for a missing, expired or revoked token; 403 `insufficientPermissions` for a token without
//! the method's scope (the scopes are the discovery document's).
//!
//! Quota ("Quota Calculator", <https://developers.google.com/youtube/v3/determine_quota_cost>):
//! "Projects that enable the YouTube Data API have a default quota allocation of 100 search.list
//! calls, 100 videos.insert calls, and 10,000 units per day combined for all other endpoints";
//! "All API requests, including invalid requests, incur a quota cost of at least one point";
//! `channels.list` and `videos.list` cost 1 unit, `videos.insert` 1 of its own bucket. Quota runs
//! out with [`YouTubeFake::exhaust_quota`] / [`YouTubeFake::exhaust_upload_quota`]; a channel's
//! own daily upload limit with [`YouTubeFake::set_channel_upload_limit`].
//!
//! Unverified projects (videos.insert reference): "All videos uploaded via the videos.insert
//! endpoint from unverified API projects created after 28 July 2020 will be restricted to private
//! viewing mode": [`YouTubeFake::set_verified`]`(false)` keeps every upload private.
//!
//! Processing: a completed upload is `status.uploadStatus: uploaded` with
//! `processingDetails.processingStatus: processing` for as many `videos.list` reads as set
//! ([`YouTubeFake::set_processing_polls`]), then `processed` / `succeeded`, or what
//! [`YouTubeFake::set_next_outcome`] says (`failed` with a `failureReason`, `rejected` with a
//! `rejectionReason`, or a processing failure).

// Checks hand back the refusal to send as-is; a fake's speed is no concern.
#![allow(clippy::result_large_err)]

use crate::common::{
    Fake, Faults, bearer, json, percent_decode, percent_encode, pkce_challenge, token,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "test-client-id.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// The callback registered with the fake OAuth client.
pub const REDIRECT_URI: &str = "https://soku.test/v1/oauth/youtube/callback";
pub const CHANNEL_ID: &str = "UCx7Fq3cOZ2dWkq1mN0pYt8A";
pub const UPLOADS_PLAYLIST: &str = "UUx7Fq3cOZ2dWkq1mN0pYt8A";
pub const CHANNEL_TITLE: &str = "Ada Films";
pub const CHANNEL_HANDLE: &str = "@adafilms";
/// Paths of the OAuth endpoints on the fake.
pub const AUTH_PATH: &str = "/o/oauth2/v2/auth";
pub const TOKEN_PATH: &str = "/token";
pub const REVOKE_PATH: &str = "/revoke";
/// "expires_in": 3599 in Google's examples.
pub const ACCESS_TTL_SECS: u64 = 3599;
pub const SCOPE_UPLOAD: &str = "https://www.googleapis.com/auth/youtube.upload";
pub const SCOPE_READONLY: &str = "https://www.googleapis.com/auth/youtube.readonly";
pub const SCOPE_YOUTUBE: &str = "https://www.googleapis.com/auth/youtube";
pub const SCOPE_FORCE_SSL: &str = "https://www.googleapis.com/auth/youtube.force-ssl";
const KNOWN_SCOPES: &[&str] = &[
    SCOPE_UPLOAD,
    SCOPE_READONLY,
    SCOPE_YOUTUBE,
    SCOPE_FORCE_SSL,
    "https://www.googleapis.com/auth/youtubepartner",
    "openid",
    "email",
    "profile",
];
/// "All chunks must be a multiple of 256 KB (256 x 1024 bytes) in size, except for the final
/// chunk".
pub const CHUNK_GRANULARITY: u64 = 256 * 1024;
/// `mediaUpload.maxSize` of videos.insert: "274877906944" (256 GiB).
pub const MAX_VIDEO_BYTES: u64 = 274_877_906_944;
/// Default daily allocations.
pub const DAILY_UNITS: u64 = 10_000;
pub const DAILY_INSERTS: u64 = 100;
const CODE_TTL: Duration = Duration::from_secs(10 * 60);

/// A method of the discovery document the fake serves: its id, HTTP method, the paths it is
/// served at, and the parameters the fake accepts (each must be in the extract, with the
/// document's type).
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub id: &'static str,
    pub http: &'static str,
    pub paths: &'static [&'static str],
    pub params: &'static [&'static str],
}

pub const CALLS: &[Call] = &[
    Call {
        id: "youtube.channels.list",
        http: "GET",
        paths: &["/youtube/v3/channels"],
        params: &["part", "mine"],
    },
    Call {
        id: "youtube.videos.list",
        http: "GET",
        paths: &["/youtube/v3/videos"],
        params: &["part", "id"],
    },
    Call {
        id: "youtube.videos.insert",
        http: "POST",
        paths: &[
            "/upload/youtube/v3/videos",
            "/resumable/upload/youtube/v3/videos",
        ],
        params: &["part", "notifySubscribers"],
    },
];

/// The discovery document's global parameters the fake accepts on any call.
pub const GLOBAL_PARAMS: &[&str] = &["uploadType"];

/// The parts the fake answers for videos and channels.
pub const VIDEO_PARTS: &[&str] = &["id", "snippet", "status", "processingDetails"];
pub const CHANNEL_PARTS: &[&str] = &["id", "snippet", "contentDetails"];

/// The fields of a video resource the fake takes in `videos.insert` (schema, fields).
pub const INSERT_FIELDS: &[(&str, &[&str])] = &[
    ("Video", &["snippet", "status"]),
    (
        "VideoSnippet",
        &["title", "description", "tags", "categoryId"],
    ),
    (
        "VideoStatus",
        &[
            "privacyStatus",
            "selfDeclaredMadeForKids",
            "embeddable",
            "license",
            "publicStatsViewable",
        ],
    ),
];

/// How a video's processing ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `uploadStatus: processed`, `processingStatus: succeeded`.
    Processed,
    /// `uploadStatus: failed` with this `failureReason` (`codec`, `conversion`, ...).
    Failed(String),
    /// `uploadStatus: rejected` with this `rejectionReason` (`duplicate`, `length`, ...).
    Rejected(String),
    /// `processingStatus: failed` with this `processingFailureReason` (`transcodeFailed`, ...).
    ProcessingFailed(String),
}

/// A resumable upload session.
#[derive(Debug, Clone)]
pub struct FakeSession {
    pub upload_id: String,
    pub total: u64,
    pub content_type: String,
    /// The video resource the session was started with.
    pub metadata: Value,
    pub parts: String,
    pub received: Vec<u8>,
    /// Each chunk PUT and taken: (first byte, length).
    pub chunks: Vec<(u64, u64)>,
    /// Status queries (`Content-Range: bytes */TOTAL`) answered.
    pub status_queries: usize,
    /// The video the completed upload made.
    pub video_id: Option<String>,
    pub expired: bool,
    final_answer: Option<Value>,
}

/// A video on the channel.
#[derive(Debug, Clone)]
pub struct FakeVideo {
    pub id: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category_id: String,
    pub privacy_status: String,
    pub self_declared_made_for_kids: Option<bool>,
    pub notify_subscribers: bool,
    pub bytes: Vec<u8>,
    pub upload_status: String,
    pub processing_status: String,
    /// The `uploadStatus` each `videos.list` read answered, in order.
    pub reads: Vec<String>,
    polls_left: usize,
    outcome: Outcome,
    published_at: String,
}

/// One API call the fake served, as the drift check reads it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The discovery method it was (`None`: the session URI of the upload protocol).
    pub call: Option<&'static str>,
    pub request_body: Option<Value>,
    pub status: u16,
    pub response_body: Option<Value>,
}

struct Grant {
    redirect_uri: String,
    scope: String,
    issued: Instant,
    challenge: Option<(String, String)>,
    offline: bool,
    force_consent: bool,
}

struct AccessToken {
    scope: String,
    /// The refresh token it came from (revoking either revokes the grant).
    refresh: Option<String>,
    expired: bool,
    revoked: bool,
}

struct RefreshToken {
    scope: String,
    revoked: bool,
}

struct Inner {
    base: String,
    redirect_uris: Vec<String>,
    codes: HashMap<String, Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    consented: bool,
    has_channel: bool,
    verified: bool,
    units_used: u64,
    units_limit: u64,
    inserts_used: u64,
    inserts_limit: u64,
    channel_upload_limit: Option<u64>,
    channel_uploads: u64,
    sessions: Vec<FakeSession>,
    videos: Vec<FakeVideo>,
    processing_polls: usize,
    next_outcome: Outcome,
    next_id: u64,
    token_calls: usize,
    exchanges: Vec<Exchange>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct YouTubeFake {
    pub url: String,
    pub faults: Faults,
    inner: Shared,
    _fake: Fake,
}

impl YouTubeFake {
    pub async fn start() -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            base: String::new(),
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            consented: false,
            has_channel: true,
            verified: true,
            units_used: 0,
            units_limit: DAILY_UNITS,
            inserts_used: 0,
            inserts_limit: DAILY_INSERTS,
            channel_upload_limit: None,
            channel_uploads: 0,
            sessions: Vec::new(),
            videos: Vec::new(),
            processing_polls: 1,
            next_outcome: Outcome::Processed,
            next_id: 1,
            token_calls: 0,
            exchanges: Vec::new(),
        }));
        let router = Router::new()
            .route(AUTH_PATH, get(authorize))
            .route(TOKEN_PATH, post(token_endpoint))
            .route(REVOKE_PATH, post(revoke))
            .route("/youtube/v3/channels", get(channels_list))
            .route("/youtube/v3/videos", get(videos_list))
            .route(
                "/upload/youtube/v3/videos",
                post(insert)
                    .put(session_put)
                    .layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
            )
            .route(
                "/resumable/upload/youtube/v3/videos",
                post(insert)
                    .put(session_put)
                    .layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
            )
            .with_state(inner.clone());
        let faults = Faults::default();
        let fake = Fake::serve(router, faults.clone()).await;
        inner.lock().unwrap().base = fake.url.clone();
        Self {
            url: fake.url.clone(),
            faults,
            inner,
            _fake: fake,
        }
    }

    /// The authorization page (the connector's `auth_url`).
    pub fn auth_url(&self) -> String {
        format!("{}{AUTH_PATH}", self.url)
    }

    /// The token endpoint (`YouTube::with_token_url`).
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    pub fn register_redirect_uri(&self, uri: &str) {
        self.lock().redirect_uris.push(uri.to_owned());
    }

    /// An access token with `scope` (space-delimited), as if the user had connected.
    pub fn mint_access_token(&self, scope: &str) -> String {
        let t = token("ya29.");
        self.lock().access.insert(
            t.clone(),
            AccessToken {
                scope: scope.to_owned(),
                refresh: None,
                expired: false,
                revoked: false,
            },
        );
        t
    }

    /// A refresh token with `scope`.
    pub fn mint_refresh_token(&self, scope: &str) -> String {
        let t = token("1//0g");
        self.lock().refresh.insert(
            t.clone(),
            RefreshToken {
                scope: scope.to_owned(),
                revoked: false,
            },
        );
        t
    }

    /// Both scopes the connector asks for.
    pub fn full_scope() -> String {
        format!("{SCOPE_UPLOAD} {SCOPE_READONLY}")
    }

    pub fn expire_access_token(&self, t: &str) {
        if let Some(a) = self.lock().access.get_mut(t) {
            a.expired = true;
        }
    }

    /// The user revokes the app: every token stops working.
    pub fn revoke_all(&self) {
        let mut st = self.lock();
        st.access.values_mut().for_each(|a| a.revoked = true);
        st.refresh.values_mut().for_each(|r| r.revoked = true);
    }

    pub fn access_token_valid(&self, t: &str) -> bool {
        self.lock()
            .access
            .get(t)
            .is_some_and(|a| !a.expired && !a.revoked)
    }

    /// `POST /token` calls.
    pub fn token_calls(&self) -> usize {
        self.lock().token_calls
    }

    /// Whether the user has a YouTube channel (`channels.list mine=true` answers none if not).
    pub fn set_has_channel(&self, on: bool) {
        self.lock().has_channel = on;
    }

    /// An unverified project's uploads are kept private.
    pub fn set_verified(&self, on: bool) {
        self.lock().verified = on;
    }

    /// The project's 10,000 daily units are used up.
    pub fn exhaust_quota(&self) {
        let mut st = self.lock();
        st.units_used = st.units_limit;
    }

    /// The project's 100 daily `videos.insert` calls are used up.
    pub fn exhaust_upload_quota(&self) {
        let mut st = self.lock();
        st.inserts_used = st.inserts_limit;
    }

    /// The channel may upload `n` more videos today (`uploadLimitExceeded` after).
    pub fn set_channel_upload_limit(&self, n: Option<u64>) {
        let mut st = self.lock();
        st.channel_upload_limit = n;
        st.channel_uploads = 0;
    }

    pub fn units_used(&self) -> u64 {
        self.lock().units_used
    }

    pub fn inserts_used(&self) -> u64 {
        self.lock().inserts_used
    }

    /// Reads of a new video that answer `processing` before it ends (1 unless set).
    pub fn set_processing_polls(&self, n: usize) {
        self.lock().processing_polls = n;
    }

    /// How the processing of videos completed from now on ends.
    pub fn set_next_outcome(&self, outcome: Outcome) {
        self.lock().next_outcome = outcome;
    }

    /// Every session expires: 404 from now on.
    pub fn expire_sessions(&self) {
        self.lock()
            .sessions
            .iter_mut()
            .for_each(|s| s.expired = true);
    }

    pub fn sessions(&self) -> Vec<FakeSession> {
        self.lock().sessions.clone()
    }

    pub fn videos(&self) -> Vec<FakeVideo> {
        self.lock().videos.clone()
    }

    pub fn video(&self, id: &str) -> Option<FakeVideo> {
        self.lock().videos.iter().find(|v| v.id == id).cloned()
    }

    /// Chunk PUTs taken, over all sessions.
    pub fn chunk_puts(&self) -> usize {
        self.lock().sessions.iter().map(|s| s.chunks.len()).sum()
    }

    /// Every API call served (OAuth excluded), in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.lock().exchanges.clone()
    }

    /// What in the calls served so far does not fit the discovery document's extract.
    pub fn drift_problems(&self) -> Vec<String> {
        drift::problems(&self.exchanges())
    }

    /// Google's 5xx for the next `method` call to `path`.
    pub fn push_server_error(&self, method: &str, path: &str, status: u16) {
        self.faults.reply(
            method,
            path,
            status,
            &[],
            error_body(status, "backendError", "global", "Backend Error"),
        );
    }
}

fn error_body(code: u16, reason: &str, domain: &str, message: &str) -> Value {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    json!({"error": {
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
        "status": status,
    }})
}

/// Google's error envelope as a response.
pub fn google_error(code: u16, reason: &str, domain: &str, message: &str) -> Response {
    json(code, error_body(code, reason, domain, message))
}

pub fn quota_exceeded() -> Response {
    google_error(
        403,
        "quotaExceeded",
        "youtube.quota",
        "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
    )
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// A query string or form body as ordered pairs.
pub fn parse_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn has_scope(scope: &str, want: &[&str]) -> bool {
    scope.split(' ').any(|s| want.contains(&s))
}

async fn authorize(State(s): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let q = parse_pairs(q.as_deref().unwrap_or(""));
    let get = |k: &str| first(&q, k).unwrap_or("");
    // Google shows an error page (no redirect) for a wrong client or redirect URI.
    if get("client_id") != CLIENT_ID {
        return (
            StatusCode::UNAUTHORIZED,
            "Error 401: invalid_client. The OAuth client was not found.",
        )
            .into_response();
    }
    let redirect_uri = get("redirect_uri").to_owned();
    if !s.lock().unwrap().redirect_uris.contains(&redirect_uri) {
        return (
            StatusCode::BAD_REQUEST,
            "Error 400: redirect_uri_mismatch. You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.",
        )
            .into_response();
    }
    if get("response_type") != "code" {
        return (
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request. Invalid response_type.",
        )
            .into_response();
    }
    let access_type = get("access_type");
    if !matches!(access_type, "" | "online" | "offline") {
        return (
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request. Invalid access_type.",
        )
            .into_response();
    }
    let prompts: Vec<&str> = get("prompt").split(' ').filter(|p| !p.is_empty()).collect();
    if prompts
        .iter()
        .any(|p| !matches!(*p, "none" | "consent" | "select_account"))
    {
        return (
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request. Invalid prompt.",
        )
            .into_response();
    }
    let challenge = match (
        first(&q, "code_challenge"),
        first(&q, "code_challenge_method"),
    ) {
        (None, _) => None,
        (Some(c), m) => {
            let m = m.unwrap_or("plain");
            if !matches!(m, "S256" | "plain") || c.len() < 43 {
                return (
                    StatusCode::BAD_REQUEST,
                    "Error 400: invalid_request. Invalid code_challenge.",
                )
                    .into_response();
            }
            Some((c.to_owned(), m.to_owned()))
        }
    };
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let state = first(&q, "state")
        .map(|st| format!("state={}&", percent_encode(st)))
        .unwrap_or_default();
    let scopes: Vec<&str> = get("scope").split(' ').filter(|x| !x.is_empty()).collect();
    if scopes.is_empty() || scopes.iter().any(|x| !KNOWN_SCOPES.contains(x)) {
        let location = format!("{redirect_uri}{sep}{state}error=invalid_scope");
        return (StatusCode::FOUND, [("location", location)]).into_response();
    }
    let scope = scopes.join(" ");
    let code = token("4/0A");
    s.lock().unwrap().codes.insert(
        code.clone(),
        Grant {
            redirect_uri: redirect_uri.clone(),
            scope: scope.clone(),
            issued: Instant::now(),
            challenge,
            offline: access_type == "offline",
            force_consent: prompts.contains(&"consent"),
        },
    );
    let location = format!(
        "{redirect_uri}{sep}{state}code={}&scope={}",
        percent_encode(&code),
        percent_encode(&scope)
    );
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn token_endpoint(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    s.lock().unwrap().token_calls += 1;
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(400, "invalid_request", "Invalid content type.");
    }
    let form = parse_pairs(&String::from_utf8_lossy(&body));
    let get = |k: &str| first(&form, k).unwrap_or("");
    if get("client_id") != CLIENT_ID {
        return oauth_error(401, "invalid_client", "The OAuth client was not found.");
    }
    if get("client_secret") != CLIENT_SECRET {
        return oauth_error(401, "invalid_client", "Unauthorized");
    }
    let mut st = s.lock().unwrap();
    let (scope, refresh_issued, parent) = match get("grant_type") {
        "authorization_code" => {
            // Single use, whatever the outcome.
            let Some(g) = st.codes.remove(get("code")) else {
                return oauth_error(400, "invalid_grant", "Bad Request");
            };
            if g.issued.elapsed() > CODE_TTL {
                return oauth_error(400, "invalid_grant", "Bad Request");
            }
            if g.redirect_uri != get("redirect_uri") {
                return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
            }
            if let Some((challenge, method)) = &g.challenge {
                let Some(verifier) = first(&form, "code_verifier") else {
                    return oauth_error(400, "invalid_grant", "Missing code verifier.");
                };
                let computed = if method == "S256" {
                    pkce_challenge(verifier)
                } else {
                    verifier.to_owned()
                };
                if &computed != challenge {
                    return oauth_error(400, "invalid_grant", "Invalid code verifier.");
                }
            }
            let first_consent = !st.consented;
            st.consented = true;
            let refresh = (g.offline && (first_consent || g.force_consent)).then(|| {
                let r = token("1//0g");
                st.refresh.insert(
                    r.clone(),
                    RefreshToken {
                        scope: g.scope.clone(),
                        revoked: false,
                    },
                );
                r
            });
            (g.scope, refresh.clone(), refresh)
        }
        "refresh_token" => match st.refresh.get(get("refresh_token")) {
            Some(r) if !r.revoked => (r.scope.clone(), None, Some(get("refresh_token").to_owned())),
            _ => {
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.");
            }
        },
        "" => {
            return oauth_error(
                400,
                "invalid_request",
                "Required parameter is missing: grant_type",
            );
        }
        _ => return oauth_error(400, "unsupported_grant_type", "Invalid grant_type: "),
    };
    let access = token("ya29.");
    st.access.insert(
        access.clone(),
        AccessToken {
            scope: scope.clone(),
            refresh: parent,
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
    if let Some(r) = refresh_issued {
        answer["refresh_token"] = json!(r);
    }
    json(200, answer)
}

async fn revoke(State(s): State<Shared>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let mut pairs = parse_pairs(q.as_deref().unwrap_or(""));
    pairs.extend(parse_pairs(&String::from_utf8_lossy(&body)));
    let t = first(&pairs, "token").unwrap_or("").to_owned();
    let mut st = s.lock().unwrap();
    let refresh = match st.access.get(&t) {
        Some(a) => a.refresh.clone(),
        None if st.refresh.contains_key(&t) => Some(t.clone()),
        None => return oauth_error(400, "invalid_token", "Token expired or revoked"),
    };
    if let Some(a) = st.access.get_mut(&t) {
        a.revoked = true;
    }
    if let Some(r) = refresh {
        if let Some(rt) = st.refresh.get_mut(&r) {
            rt.revoked = true;
        }
        for a in st.access.values_mut() {
            if a.refresh.as_deref() == Some(r.as_str()) {
                a.revoked = true;
            }
        }
    }
    (StatusCode::OK, "").into_response()
}

/// A request to the API as the fake checks and logs it.
struct ApiRequest {
    query: Vec<(String, String)>,
}

impl ApiRequest {
    fn get(&self, k: &str) -> Option<&str> {
        first(&self.query, k)
    }
    /// A repeated parameter: every value, comma-separated ones split.
    fn list(&self, k: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(n, _)| n == k)
            .flat_map(|(_, v)| v.split(',').map(|p| p.trim().to_owned()))
            .filter(|p| !p.is_empty())
            .collect()
    }
}

fn log(
    s: &Shared,
    method: &Method,
    uri: &Uri,
    call: Option<&'static str>,
    request_body: Option<Value>,
    response: (u16, Option<Value>),
) {
    s.lock().unwrap().exchanges.push(Exchange {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: parse_pairs(uri.query().unwrap_or("")),
        call,
        request_body,
        status: response.0,
        response_body: response.1,
    });
}

/// Authentication, quota (charged once the caller is known, "including invalid requests") and
/// the discovery document's parameters.
fn api_checks(
    s: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<ApiRequest, (u16, Value)> {
    let call = CALLS
        .iter()
        .find(|c| c.http == method.as_str() && c.paths.contains(&uri.path()))
        .expect("routed calls are in CALLS");
    let query = parse_pairs(uri.query().unwrap_or(""));
    let mut st = s.lock().unwrap();
    let auth_error = || {
        (
            401,
            json!({"error": {
                "code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "errors": [{"message": "Invalid Credentials", "domain": "global",
                            "reason": "authError", "location": "Authorization",
                            "locationType": "header"}],
                "status": "UNAUTHENTICATED",
            }}),
        )
    };
    let Some(t) = bearer(headers) else {
        return Err(auth_error());
    };
    let scope = match st.access.get(&t) {
        Some(a) if !a.expired && !a.revoked => a.scope.clone(),
        _ => return Err(auth_error()),
    };
    let is_insert = call.id == "youtube.videos.insert";
    if is_insert {
        if st.inserts_used >= st.inserts_limit {
            return Err((403, quota_body()));
        }
        st.inserts_used += 1;
    } else {
        if st.units_used >= st.units_limit {
            return Err((403, quota_body()));
        }
        st.units_used += 1;
    }
    let scopes: &[&str] = if is_insert {
        &[SCOPE_UPLOAD, SCOPE_YOUTUBE, SCOPE_FORCE_SSL]
    } else {
        &[SCOPE_READONLY, SCOPE_YOUTUBE, SCOPE_FORCE_SSL]
    };
    if !has_scope(&scope, scopes) {
        return Err((
            403,
            json!({"error": {
                "code": 403,
                "message": "Request had insufficient authentication scopes.",
                "errors": [{"message": "Insufficient Permission", "domain": "global",
                            "reason": "insufficientPermissions"}],
                "status": "PERMISSION_DENIED",
            }}),
        ));
    }
    for (k, _) in &query {
        if !call.params.contains(&k.as_str()) && !GLOBAL_PARAMS.contains(&k.as_str()) {
            return Err((
                400,
                error_body(
                    400,
                    "unexpectedParameter",
                    "youtube.parameter",
                    &format!("The request specifies an unexpected parameter: {k}."),
                ),
            ));
        }
    }
    let request = ApiRequest { query };
    if request.list("part").is_empty() {
        return Err((
            400,
            error_body(
                400,
                "missingRequiredParameter",
                "youtube.parameter",
                "No filter selected. Expected one of: part",
            ),
        ));
    }
    Ok(request)
}

fn quota_body() -> Value {
    error_body(
        403,
        "quotaExceeded",
        "youtube.quota",
        "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
    )
}

fn bad_part(part: &str) -> (u16, Value) {
    (
        400,
        error_body(400, "unknownPart", "youtube.part", &format!("'{part}'")),
    )
}

fn reply(r: (u16, Value)) -> Response {
    json(r.0, r.1)
}

async fn channels_list(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        let req = api_checks(&s, &method, &uri, &headers)?;
        let parts = req.list("part");
        if let Some(p) = parts.iter().find(|p| !CHANNEL_PARTS.contains(&p.as_str())) {
            return Err(bad_part(p));
        }
        if req.get("mine") != Some("true") {
            return Err((
                400,
                error_body(
                    400,
                    "missingRequiredParameter",
                    "youtube.parameter",
                    "No filter selected. Expected one of: mine, id, forHandle, forUsername, managedByMe, categoryId, mySubscribers",
                ),
            ));
        }
        let st = s.lock().unwrap();
        let mut items = Vec::new();
        if st.has_channel {
            let mut item =
                json!({"kind": "youtube#channel", "etag": "ch-etag-1", "id": CHANNEL_ID});
            if parts.iter().any(|p| p == "snippet") {
                item["snippet"] = json!({
                    "title": CHANNEL_TITLE,
                    "description": "Short films.",
                    "customUrl": CHANNEL_HANDLE,
                    "publishedAt": "2019-05-02T10:11:12Z",
                });
            }
            if parts.iter().any(|p| p == "contentDetails") {
                item["contentDetails"] =
                    json!({"relatedPlaylists": {"likes": "LL", "uploads": UPLOADS_PLAYLIST}});
            }
            items.push(item);
        }
        Ok((
            200,
            json!({
                "kind": "youtube#channelListResponse",
                "etag": "chl-etag-1",
                "pageInfo": {"totalResults": items.len(), "resultsPerPage": 5},
                "items": items,
            }),
        ))
    })();
    let r = result.unwrap_or_else(|e| e);
    log(
        &s,
        &method,
        &uri,
        Some("youtube.channels.list"),
        None,
        (r.0, Some(r.1.clone())),
    );
    reply(r)
}

/// A video resource with the parts asked for.
fn video_resource(v: &FakeVideo, parts: &[String]) -> Value {
    let mut out = json!({"kind": "youtube#video", "etag": format!("etag-{}", v.id), "id": v.id});
    let has = |p: &str| parts.iter().any(|x| x == p);
    if has("snippet") {
        out["snippet"] = json!({
            "publishedAt": v.published_at,
            "channelId": CHANNEL_ID,
            "title": v.title,
            "description": v.description,
            "channelTitle": CHANNEL_TITLE,
            "categoryId": v.category_id,
        });
        if !v.tags.is_empty() {
            out["snippet"]["tags"] = json!(v.tags);
        }
    }
    if has("status") {
        let mut status = json!({
            "uploadStatus": v.upload_status,
            "privacyStatus": v.privacy_status,
            "license": "youtube",
            "embeddable": true,
            "publicStatsViewable": true,
            "madeForKids": v.self_declared_made_for_kids.unwrap_or(false),
        });
        if let Some(k) = v.self_declared_made_for_kids {
            status["selfDeclaredMadeForKids"] = json!(k);
        }
        match &v.outcome {
            Outcome::Failed(r) if v.upload_status == "failed" => {
                status["failureReason"] = json!(r);
            }
            Outcome::Rejected(r) if v.upload_status == "rejected" => {
                status["rejectionReason"] = json!(r);
            }
            _ => {}
        }
        out["status"] = status;
    }
    if has("processingDetails") {
        let mut pd = json!({"processingStatus": v.processing_status});
        if v.processing_status == "processing" {
            // int64/uint64 fields are JSON strings in Google's APIs.
            pd["processingProgress"] = json!({
                "partsTotal": "1000",
                "partsProcessed": "400",
                "timeLeftMs": "60000",
            });
        }
        if let Outcome::ProcessingFailed(r) = &v.outcome
            && v.processing_status == "failed"
        {
            pd["processingFailureReason"] = json!(r);
        }
        out["processingDetails"] = pd;
    }
    out
}

async fn videos_list(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        let req = api_checks(&s, &method, &uri, &headers)?;
        let parts = req.list("part");
        if let Some(p) = parts.iter().find(|p| !VIDEO_PARTS.contains(&p.as_str())) {
            return Err(bad_part(p));
        }
        let ids = req.list("id");
        if ids.is_empty() {
            return Err((
                400,
                error_body(
                    400,
                    "missingRequiredParameter",
                    "youtube.parameter",
                    "No filter selected. Expected one of: id, chart, myRating",
                ),
            ));
        }
        let mut st = s.lock().unwrap();
        let mut items = Vec::new();
        for id in &ids {
            let Some(v) = st.videos.iter_mut().find(|v| &v.id == id) else {
                continue;
            };
            if v.upload_status == "uploaded" {
                if v.polls_left == 0 {
                    match v.outcome.clone() {
                        Outcome::Processed => {
                            v.upload_status = "processed".into();
                            v.processing_status = "succeeded".into();
                        }
                        Outcome::Failed(_) => {
                            v.upload_status = "failed".into();
                            v.processing_status = "failed".into();
                        }
                        Outcome::Rejected(_) => {
                            v.upload_status = "rejected".into();
                            v.processing_status = "terminated".into();
                        }
                        Outcome::ProcessingFailed(_) => {
                            v.upload_status = "failed".into();
                            v.processing_status = "failed".into();
                        }
                    }
                } else {
                    v.polls_left -= 1;
                }
            }
            v.reads.push(v.upload_status.clone());
            items.push(video_resource(v, &parts));
        }
        Ok((
            200,
            json!({
                "kind": "youtube#videoListResponse",
                "etag": "vl-etag-1",
                "pageInfo": {"totalResults": items.len(), "resultsPerPage": items.len()},
                "items": items,
            }),
        ))
    })();
    let r = result.unwrap_or_else(|e| e);
    log(
        &s,
        &method,
        &uri,
        Some("youtube.videos.list"),
        None,
        (r.0, Some(r.1.clone())),
    );
    reply(r)
}

fn invalid(reason: &str, message: &str) -> (u16, Value) {
    (400, error_body(400, reason, "youtube.video", message))
}

/// Checks a video resource to insert: only fields of [`INSERT_FIELDS`], with the documented
/// limits on title, description and tags.
fn check_metadata(body: &Value) -> Result<(), (u16, Value)> {
    fn unknown(path: &str, k: &str) -> (u16, Value) {
        let message = format!(
            "Invalid JSON payload received. Unknown name \"{k}\" at '{path}': Cannot find field."
        );
        (400, error_body(400, "invalid", "global", &message))
    }
    let Some(obj) = body.as_object() else {
        return Err(invalid(
            "invalidVideoMetadata",
            "The request metadata is invalid.",
        ));
    };
    let allowed = |schema: &str| {
        INSERT_FIELDS
            .iter()
            .find(|(n, _)| *n == schema)
            .map(|(_, f)| *f)
            .unwrap_or(&[])
    };
    for (k, v) in obj {
        if !allowed("Video").contains(&k.as_str()) {
            return Err(unknown("resource", k));
        }
        let schema = if k == "snippet" {
            "VideoSnippet"
        } else {
            "VideoStatus"
        };
        let Some(inner) = v.as_object() else {
            return Err(invalid(
                "invalidVideoMetadata",
                "The request metadata is invalid.",
            ));
        };
        for ik in inner.keys() {
            if !allowed(schema).contains(&ik.as_str()) {
                return Err(unknown(&format!("resource.{k}"), ik));
            }
        }
    }
    let snippet = &body["snippet"];
    let title = snippet["title"].as_str().unwrap_or("");
    if title.trim().is_empty() || title.chars().count() > 100 || title.contains(['<', '>']) {
        return Err(invalid(
            "invalidTitle",
            "The request metadata specifies an invalid or empty video title.",
        ));
    }
    if let Some(d) = snippet.get("description") {
        let d = d.as_str().unwrap_or("<");
        if d.len() > 5000 || d.contains(['<', '>']) {
            return Err(invalid(
                "invalidDescription",
                "The request metadata specifies an invalid video description.",
            ));
        }
    }
    if let Some(tags) = snippet.get("tags") {
        let Some(tags) = tags.as_array().filter(|t| t.iter().all(Value::is_string)) else {
            return Err(invalid(
                "invalidTags",
                "The request metadata specifies invalid video keywords.",
            ));
        };
        // "The property value has a maximum length of 500 characters": commas between tags
        // count, and a tag with a space counts its quotes.
        let len: usize = tags
            .iter()
            .map(|t| {
                let t = t.as_str().unwrap();
                t.chars().count() + if t.contains(' ') { 2 } else { 0 }
            })
            .sum::<usize>()
            + tags.len().saturating_sub(1);
        if len > 500
            || tags
                .iter()
                .any(|t| t.as_str().unwrap().contains(['<', '>']))
        {
            return Err(invalid(
                "invalidTags",
                "The request metadata specifies invalid video keywords.",
            ));
        }
    }
    if let Some(c) = snippet.get("categoryId")
        && !c
            .as_str()
            .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(
            "invalidCategoryId",
            "The snippet.categoryId property specifies an invalid category ID.",
        ));
    }
    let status = &body["status"];
    if let Some(p) = status.get("privacyStatus")
        && !matches!(p.as_str(), Some("public" | "unlisted" | "private"))
    {
        return Err(invalid(
            "invalidVideoMetadata",
            "The request metadata is invalid.",
        ));
    }
    for k in [
        "selfDeclaredMadeForKids",
        "embeddable",
        "publicStatsViewable",
    ] {
        if status.get(k).is_some_and(|v| !v.is_boolean()) {
            return Err(invalid(
                "invalidVideoMetadata",
                "The request metadata is invalid.",
            ));
        }
    }
    Ok(())
}

/// Starts a resumable session (`videos.insert` with `uploadType=resumable`).
async fn insert(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let mut location = None;
    let result = (|| {
        let req = api_checks(&s, &method, &uri, &headers)?;
        let parts = req.list("part");
        if let Some(p) = parts.iter().find(|p| !VIDEO_PARTS.contains(&p.as_str())) {
            return Err(bad_part(p));
        }
        if req.get("uploadType") != Some("resumable") {
            return Err((
                400,
                error_body(
                    400,
                    "mediaBodyRequired",
                    "youtube.video",
                    "The request does not include the video content.",
                ),
            ));
        }
        if let Some(n) = req.get("notifySubscribers")
            && !matches!(n, "true" | "false")
        {
            return Err((
                400,
                error_body(400, "invalidParameter", "global", "Invalid boolean value"),
            ));
        }
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(invalid(
                "invalidVideoMetadata",
                "The request metadata is invalid.",
            ));
        }
        let Some(metadata) = parsed.clone() else {
            return Err((400, error_body(400, "parseError", "global", "Parse Error")));
        };
        for k in metadata
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !parts.contains(&k) {
                return Err(invalid(
                    "invalidVideoMetadata",
                    &format!(
                        "The request metadata has a '{k}' part that the part parameter does not name."
                    ),
                ));
            }
        }
        check_metadata(&metadata)?;
        let total = headers
            .get("x-upload-content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let Some(total) = total.filter(|t| *t > 0 && *t <= MAX_VIDEO_BYTES) else {
            return Err(invalid(
                "invalidVideoMetadata",
                "X-Upload-Content-Length must give the video's size (at most 256 GB).",
            ));
        };
        let content_type = headers
            .get("x-upload-content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !(content_type.starts_with("video/") || content_type == "application/octet-stream") {
            return Err((
                400,
                error_body(
                    400,
                    "invalidContentType",
                    "youtube.video",
                    "Media type not accepted: expected video/* or application/octet-stream.",
                ),
            ));
        }
        let mut st = s.lock().unwrap();
        if st
            .channel_upload_limit
            .is_some_and(|limit| st.channel_uploads >= limit)
        {
            return Err(invalid(
                "uploadLimitExceeded",
                "The user has exceeded the number of videos they may upload.",
            ));
        }
        if !st.has_channel {
            return Err((
                401,
                error_body(
                    401,
                    "youtubeSignupRequired",
                    "youtube.header",
                    "Unauthorized",
                ),
            ));
        }
        let upload_id = token("ADPycdu");
        let url = format!(
            "{}{}?uploadType=resumable&part={}&upload_id={}",
            st.base,
            uri.path(),
            parts.join(","),
            upload_id
        );
        st.sessions.push(FakeSession {
            upload_id,
            total,
            content_type,
            metadata: {
                let mut m = metadata;
                m["_notifySubscribers"] = json!(req.get("notifySubscribers") != Some("false"));
                m
            },
            parts: parts.join(","),
            received: Vec::new(),
            chunks: Vec::new(),
            status_queries: 0,
            video_id: None,
            expired: false,
            final_answer: None,
        });
        location = Some(url);
        Ok((200, Value::Null))
    })();
    let r = result.unwrap_or_else(|e| e);
    log(
        &s,
        &method,
        &uri,
        Some("youtube.videos.insert"),
        parsed,
        (r.0, (!r.1.is_null()).then(|| r.1.clone())),
    );
    match location {
        Some(l) => (StatusCode::OK, [("location", l)]).into_response(),
        None => reply(r),
    }
}

/// `Content-Range: bytes FIRST-LAST/TOTAL` or `bytes */TOTAL`.
fn content_range(headers: &HeaderMap) -> Option<(Option<(u64, u64)>, u64)> {
    let v = headers.get("content-range")?.to_str().ok()?;
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = total.parse().ok()?;
    if range == "*" {
        return Some((None, total));
    }
    let (a, b) = range.split_once('-')?;
    Some((Some((a.parse().ok()?, b.parse().ok()?)), total))
}

fn resume_incomplete(received: u64) -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if received > 0 {
        r.headers_mut().insert(
            "range",
            format!("bytes=0-{}", received - 1).parse().unwrap(),
        );
    }
    r
}

/// A PUT to a session URI: a chunk, or a status query.
async fn session_put(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = parse_pairs(uri.query().unwrap_or(""));
    let upload_id = first(&query, "upload_id").unwrap_or("").to_owned();
    let logged = |status: u16, answer: Option<Value>| {
        log(&s, &method, &uri, None, None, (status, answer));
    };
    let not_found = || json(404, json!({"error": {"code": 404, "message": "Not Found"}}));
    let mut st = s.lock().unwrap();
    let verified = st.verified;
    let polls = st.processing_polls;
    let outcome = st.next_outcome.clone();
    let Some(i) = st
        .sessions
        .iter()
        .position(|x| x.upload_id == upload_id && !x.expired)
    else {
        drop(st);
        logged(404, None);
        return not_found();
    };
    let Some((range, total)) = content_range(&headers) else {
        drop(st);
        logged(400, None);
        return google_error(400, "badContent", "global", "Invalid Content-Range header.");
    };
    let session = &mut st.sessions[i];
    if total != session.total {
        drop(st);
        logged(400, None);
        return google_error(
            400,
            "badContent",
            "global",
            "The Content-Range total does not match X-Upload-Content-Length.",
        );
    }
    let Some((a, b)) = range else {
        session.status_queries += 1;
        if !body.is_empty() {
            drop(st);
            logged(400, None);
            return google_error(400, "badContent", "global", "A status query has no body.");
        }
        if let Some(answer) = session.final_answer.clone() {
            drop(st);
            logged(201, Some(answer.clone()));
            return json(201, answer);
        }
        let received = session.received.len() as u64;
        drop(st);
        logged(308, None);
        return resume_incomplete(received);
    };
    let received = session.received.len() as u64;
    let len = body.len() as u64;
    if session.final_answer.is_some() || a != received || b < a || b - a + 1 != len || b >= total {
        drop(st);
        logged(400, None);
        return google_error(
            400,
            "badContent",
            "global",
            &format!(
                "Invalid Content-Range: the session has {received} of {total} bytes; the chunk says bytes {a}-{b} and carries {len}."
            ),
        );
    }
    let completes = b + 1 == total;
    if !completes && !len.is_multiple_of(CHUNK_GRANULARITY) {
        drop(st);
        logged(400, None);
        return google_error(
            400,
            "badContent",
            "global",
            &format!(
                "Invalid request. The number of bytes uploaded is required to be a multiple of {CHUNK_GRANULARITY}, except for the final request. The received request contained {len} bytes, which does not meet this requirement."
            ),
        );
    }
    session.received.extend_from_slice(&body);
    session.chunks.push((a, len));
    if !completes {
        let received = session.received.len() as u64;
        drop(st);
        logged(308, None);
        return resume_incomplete(received);
    }
    // The upload is complete: the video exists.
    let n = st.next_id;
    st.next_id += 1;
    st.channel_uploads += 1;
    let session = &st.sessions[i];
    let meta = &session.metadata;
    let snippet = &meta["snippet"];
    let status = &meta["status"];
    let privacy = if verified {
        status["privacyStatus"]
            .as_str()
            .unwrap_or("public")
            .to_owned()
    } else {
        "private".to_owned()
    };
    let video = FakeVideo {
        id: video_id(n),
        title: snippet["title"].as_str().unwrap_or("").to_owned(),
        description: snippet["description"].as_str().unwrap_or("").to_owned(),
        tags: snippet["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        category_id: snippet["categoryId"].as_str().unwrap_or("22").to_owned(),
        privacy_status: privacy,
        self_declared_made_for_kids: status["selfDeclaredMadeForKids"].as_bool(),
        notify_subscribers: meta["_notifySubscribers"].as_bool().unwrap_or(true),
        bytes: session.received.clone(),
        upload_status: "uploaded".into(),
        processing_status: "processing".into(),
        reads: Vec::new(),
        polls_left: polls,
        outcome,
        published_at: "2026-06-02T10:00:00Z".into(),
    };
    let parts: Vec<String> = session.parts.split(',').map(str::to_owned).collect();
    let answer = video_resource(&video, &parts);
    let session = &mut st.sessions[i];
    session.video_id = Some(video.id.clone());
    session.final_answer = Some(answer.clone());
    st.videos.push(video);
    drop(st);
    logged(201, Some(answer.clone()));
    json(201, answer)
}

/// An 11-character video id.
fn video_id(n: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..11)
        .map(|_| {
            let c = ALPHABET[(x % 64) as usize] as char;
            x /= 64;
            c
        })
        .collect()
}

/// The drift check: calls and answers against `specs/youtube-api-extract.json`.
pub mod drift {
    use super::{CALLS, Exchange, GLOBAL_PARAMS};
    use serde_json::Value;

    /// The extract of Google's discovery document (see `specs/README.md`).
    pub const EXTRACT: &str = include_str!("../specs/youtube-api-extract.json");

    pub fn extract() -> Value {
        serde_json::from_str(EXTRACT).expect("the extract is JSON")
    }

    /// What in `exchanges` does not fit the extract: for each discovery method, its HTTP method
    /// and path, every query parameter (name, and the document's type: booleans `true`/`false`,
    /// enums among their values), the request body's fields and every key of the JSON answer
    /// (a 2xx answer against the method's response schema, recursively). Session PUTs (the
    /// upload protocol, not in the document) have their completed answer checked as a `Video`.
    pub fn problems(exchanges: &[Exchange]) -> Vec<String> {
        let x = extract();
        let mut out = Vec::new();
        for (i, e) in exchanges.iter().enumerate() {
            let at = format!("#{i} {} {}", e.method, e.path);
            let Some(id) = e.call else {
                if e.method != "PUT" || !e.path.ends_with("/upload/youtube/v3/videos") {
                    out.push(format!(
                        "{at}: not a discovery method nor an upload session"
                    ));
                }
                if let Some(body) = e.response_body.as_ref().filter(|_| e.status / 100 == 2) {
                    check_object(&x, "Video", body, &format!("{at} answer"), &mut out);
                }
                continue;
            };
            let m = &x["methods"][id];
            if m.is_null() {
                out.push(format!("{at}: {id} is not in the extract"));
                continue;
            }
            if m["httpMethod"] != e.method.as_str() {
                out.push(format!("{at}: {id} is {}", m["httpMethod"]));
            }
            let path = m["path"].as_str().unwrap();
            let upload = m["mediaUpload"]["protocols"]
                .as_object()
                .map(|p| {
                    p.values()
                        .any(|v| v["path"].as_str() == Some(e.path.as_str()))
                })
                .unwrap_or(false);
            if e.path.trim_start_matches('/') != path && !upload {
                out.push(format!("{at}: {id}'s path is {path}"));
            }
            for (k, v) in &e.query {
                let p = if m["parameters"][k].is_object() {
                    &m["parameters"][k]
                } else {
                    &x["global_parameters"][k]
                };
                if !p.is_object() {
                    out.push(format!("{at}: parameter {k} is not {id}'s"));
                    continue;
                }
                let fits = match p["type"].as_str() {
                    Some("boolean") => matches!(v.as_str(), "true" | "false"),
                    Some("integer") => v.parse::<i64>().is_ok(),
                    _ => p["enum"]
                        .as_array()
                        .is_none_or(|values| values.iter().any(|x| x == v.as_str())),
                };
                if !fits {
                    out.push(format!("{at}: {k}={v} does not fit {}", p["type"]));
                }
            }
            for r in m["required"].as_array().unwrap() {
                if !e.query.iter().any(|(k, _)| r == k.as_str()) {
                    out.push(format!("{at}: required parameter {r} missing"));
                }
            }
            if let (Some(body), Some(schema)) = (&e.request_body, m["request"].as_str()) {
                check_object(&x, schema, body, &format!("{at} body"), &mut out);
            }
            if let (Some(body), Some(schema)) = (&e.response_body, m["response"].as_str())
                && e.status / 100 == 2
            {
                check_object(&x, schema, body, &format!("{at} answer"), &mut out);
            }
        }
        out
    }

    /// Every key of `v` is a field of `schema` in the extract, with the document's type,
    /// recursing into referenced schemas and arrays.
    pub fn check_object(x: &Value, schema: &str, v: &Value, at: &str, out: &mut Vec<String>) {
        let fields = &x["schemas"][schema]["fields"];
        let Some(o) = v.as_object() else {
            out.push(format!("{at}: not an object ({schema}): {v}"));
            return;
        };
        if !fields.is_object() {
            out.push(format!("{at}: schema {schema} is not in the extract"));
            return;
        }
        for (k, val) in o {
            let f = &fields[k];
            let path = format!("{at}.{k}");
            if !f.is_object() {
                out.push(format!("{path}: not a field of {schema} in the extract"));
                continue;
            }
            check_value(x, f, val, &path, out);
        }
    }

    fn check_value(x: &Value, f: &Value, val: &Value, path: &str, out: &mut Vec<String>) {
        if let Some(r) = f["ref"].as_str() {
            check_object(x, r, val, path, out);
            return;
        }
        let ok = match f["type"].as_str().unwrap_or("") {
            // int64 / uint64 travel as strings, per the document's "format".
            "string" => val.as_str().is_some_and(|s| {
                f["enum"]
                    .as_array()
                    .is_none_or(|e| e.iter().any(|x| x == s))
                    && match f["format"].as_str() {
                        Some("uint64" | "int64") => s.parse::<i128>().is_ok(),
                        Some("date-time") => s.len() >= 20 && s.as_bytes()[10] == b'T',
                        _ => true,
                    }
            }),
            "boolean" => val.is_boolean(),
            "integer" => val.is_i64() || val.is_u64(),
            "number" => val.is_number(),
            "array" => {
                if let Some(items) = val.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check_value(x, &f["items"], item, &format!("{path}[{i}]"), out);
                    }
                    true
                } else {
                    false
                }
            }
            "object" => val.is_object(),
            _ => false,
        };
        if !ok {
            out.push(format!("{path}: {val} does not fit {f}"));
        }
    }

    /// Every method and parameter of [`CALLS`] and [`GLOBAL_PARAMS`] is in the extract.
    pub fn table_problems() -> Vec<String> {
        let x = extract();
        let mut out = Vec::new();
        for c in CALLS {
            let m = &x["methods"][c.id];
            if !m.is_object() {
                out.push(format!("{}: not in the extract", c.id));
                continue;
            }
            if m["httpMethod"] != c.http {
                out.push(format!(
                    "{}: {} in the fake, {} in the document",
                    c.id, c.http, m["httpMethod"]
                ));
            }
            for p in c.params {
                if !m["parameters"][p].is_object() {
                    out.push(format!("{}: parameter {p} is not in the extract", c.id));
                }
            }
            for r in m["required"].as_array().unwrap() {
                if !c.params.iter().any(|p| r == p) {
                    out.push(format!("{}: the fake does not take required {r}", c.id));
                }
            }
        }
        for p in GLOBAL_PARAMS {
            if !x["global_parameters"][p].is_object() {
                out.push(format!("global parameter {p} is not in the extract"));
            }
        }
        for (schema, fields) in super::INSERT_FIELDS {
            for f in *fields {
                if !x["schemas"][schema]["fields"][f].is_object() {
                    out.push(format!("{schema}.{f} is not in the extract"));
                }
            }
        }
        out
    }
}
