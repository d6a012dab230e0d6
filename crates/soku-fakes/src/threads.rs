//! A fake of the Threads API: the authorization window (`/oauth/authorize`), the token endpoints
//! (`POST /oauth/access_token`, `GET /access_token` with `th_exchange_token`,
//! `GET /refresh_access_token` with `th_refresh_token`) and the Graph endpoints a publisher uses
//! (`GET /v1.0/me`, `POST /v1.0/{user}/threads`, `GET /v1.0/{container}?fields=status,...`,
//! `POST /v1.0/{user}/threads_publish`, `GET /v1.0/{user}/threads`, `GET /v1.0/{media}`).
//!
//! What it checks, as the documentation describes the real API:
//! - the authorization window: `client_id`, an exactly registered `redirect_uri`,
//!   `response_type=code`, a `scope` list (comma or space separated) that holds `threads_basic`
//!   and only known permissions; it approves as a user would and redirects with `code` and `state`
//!   (and the `#_` the real window appends);
//! - the code exchange: client id and secret, `grant_type=authorization_code`, the same
//!   `redirect_uri` as the authorization, single-use codes valid for an hour;
//! - `th_exchange_token` takes the app secret and an unexpired SHORT-lived token;
//!   `th_refresh_token` takes an unexpired LONG-lived token at least 24 hours old;
//! - every Graph call: an `access_token` parameter (query or form body) that the fake issued,
//!   unexpired and not revoked, with `threads_basic` (and `threads_content_publish` to publish);
//!   the user in the path is the token's user (or `me`); `fields` names only fields of the node;
//! - containers: `media_type` one of TEXT, IMAGE, VIDEO, CAROUSEL and the parameters each needs
//!   (`text` for TEXT, `image_url` for IMAGE, 2 to 20 `children` for CAROUSEL, each an
//!   unpublished carousel item of this user), text of at most 500 characters, an emoji counting
//!   as its UTF-8 bytes;
//! - containers start `IN_PROGRESS` and become `FINISHED` (or `ERROR`, for image URLs marked to
//!   fail) after `in_progress_polls` status reads; `threads_publish` takes a numeric
//!   `creation_id` of a FINISHED container that is not a carousel item and was not published.
//! - VIDEO containers: Threads downloads the `video_url`. The fake "downloads" the files served
//!   with [`ThreadsFake::serve_video`]: an unknown URL ends in ERROR `FAILED_DOWNLOADING_VIDEO`,
//!   bytes that are not MP4 or MOV (an ISO-BMFF `ftyp` box) in `FAILED_PROCESSING_VIDEO`, a
//!   duration (the `mvhd` box) over 5 minutes in `INVALID_DURATION` (the error messages of
//!   "Troubleshooting"); URLs marked to fail end in ERROR with the given message. A VIDEO
//!   container stays IN_PROGRESS for `video_in_progress_polls` status reads (a slow processing;
//!   default 2); a container can be made EXPIRED (as after 24 hours unpublished), and an
//!   unknown container id is Graph's code 100, subcode 33.
//!
//! Errors are Graph API error bodies (`{"error": {"message", "type", "code", "error_subcode",
//! "fbtrace_id"}}`, HTTP 400): code 190 for a bad, expired or revoked token, 100 for a bad
//! parameter, 10 for a missing permission. Where the documentation gives no error for a refusal
//! (a token too young to refresh, a container not yet finished) the fake answers in the same shape
//! with a code of its own choosing (100, and 9007 as Instagram's content publishing does).
//! Rate limits and 5xx are scripted with `faults` (see `graph_error` for bodies).

use crate::common::{Fake, Faults, json, token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The app the fake knows (the values `PlatformSettings::at` uses).
pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// Registered at start; others with `register_redirect_uri`.
pub const REDIRECT_URI: &str = "https://soku.test/v1/oauth/threads/callback";
/// The one Threads user of the fake.
pub const USER_ID: &str = "1234567890123456";
pub const USERNAME: &str = "threadsapitestuser";
pub const NAME: &str = "Threads API Test User";

pub const SCOPE_BASIC: &str = "threads_basic";
pub const SCOPE_PUBLISH: &str = "threads_content_publish";
const KNOWN_SCOPES: &[&str] = &[
    "threads_basic",
    "threads_content_publish",
    "threads_manage_replies",
    "threads_read_replies",
    "threads_manage_insights",
    "threads_delete",
    "threads_keyword_search",
    "threads_location_tagging",
    "threads_manage_mentions",
    "threads_profile_discovery",
];

pub const SHORT_LIVED: Duration = Duration::from_secs(3600);
pub const LONG_LIVED: Duration = Duration::from_secs(60 * 24 * 3600);
const REFRESH_MIN_AGE: Duration = Duration::from_secs(24 * 3600);
const CODE_TTL: Duration = Duration::from_secs(3600);
const MAX_TEXT: usize = 500;
const MAX_CHILDREN: usize = 20;
/// `since` and `until` must not be earlier than this (documented).
const EARLIEST: i64 = 1_688_540_400;

const PROFILE_FIELDS: &[&str] = &[
    "id",
    "username",
    "name",
    "threads_profile_picture_url",
    "threads_biography",
    "is_verified",
];
const CONTAINER_FIELDS: &[&str] = &["id", "status", "error_message"];
const MEDIA_FIELDS: &[&str] = &[
    "id",
    "media_product_type",
    "media_type",
    "media_url",
    "permalink",
    "owner",
    "username",
    "text",
    "timestamp",
    "shortcode",
    "thumbnail_url",
    "children",
    "is_quote_post",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Short,
    Long,
}

/// A token the fake issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub kind: TokenKind,
    pub scopes: Vec<String>,
    pub issued_at: SystemTime,
    pub expires_at: SystemTime,
    pub revoked: bool,
}

/// A media container.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub media_type: String,
    pub text: Option<String>,
    pub image_url: Option<String>,
    pub video_url: Option<String>,
    pub is_carousel_item: bool,
    pub children: Vec<String>,
    /// Status reads left before it leaves IN_PROGRESS.
    pub polls_left: u32,
    /// What it becomes: `None` = FINISHED, `Some(message)` = ERROR with that message.
    pub failure: Option<String>,
    pub published: bool,
    /// Not published within 24 hours.
    pub expired: bool,
}

impl Container {
    fn status(&self) -> &'static str {
        if self.published {
            "PUBLISHED"
        } else if self.expired {
            "EXPIRED"
        } else if self.polls_left > 0 {
            "IN_PROGRESS"
        } else if self.failure.is_some() {
            "ERROR"
        } else {
            "FINISHED"
        }
    }
}

/// A published post.
#[derive(Debug, Clone)]
pub struct Post {
    pub id: String,
    pub container_id: Option<String>,
    /// As the retrieval API names it: TEXT_POST, IMAGE, VIDEO, CAROUSEL_ALBUM.
    pub media_type: String,
    pub text: Option<String>,
    /// The image URLs Threads would have fetched, in order.
    pub image_urls: Vec<String>,
    pub children: Vec<String>,
    pub shortcode: String,
    pub permalink: String,
    /// Unix seconds.
    pub timestamp: i64,
}

struct Code {
    redirect_uri: String,
    scopes: Vec<String>,
    issued: SystemTime,
    used: bool,
}

struct Inner {
    redirect_uris: Vec<String>,
    codes: HashMap<String, Code>,
    tokens: Vec<IssuedToken>,
    containers: HashMap<String, Container>,
    /// Newest last.
    posts: Vec<Post>,
    next_id: u64,
    in_progress_polls: u32,
    video_in_progress_polls: u32,
    failing_urls: HashMap<String, String>,
    /// The video files "on the web" that VIDEO containers download.
    videos: HashMap<String, Vec<u8>>,
    create_calls: usize,
    publish_calls: usize,
    status_reads: usize,
    exchange_calls: usize,
    refresh_calls: usize,
}

impl Inner {
    fn id(&mut self, base: u64) -> String {
        self.next_id += 1;
        (base + self.next_id).to_string()
    }
}

type Shared = Arc<Mutex<Inner>>;

/// A running Threads fake.
pub struct ThreadsFake {
    pub url: String,
    pub faults: Faults,
    state: Shared,
    _server: Fake,
}

impl ThreadsFake {
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Inner {
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            codes: HashMap::new(),
            tokens: Vec::new(),
            containers: HashMap::new(),
            posts: Vec::new(),
            next_id: 0,
            in_progress_polls: 1,
            video_in_progress_polls: 2,
            failing_urls: HashMap::new(),
            videos: HashMap::new(),
            create_calls: 0,
            publish_calls: 0,
            status_reads: 0,
            exchange_calls: 0,
            refresh_calls: 0,
        }));
        let faults = Faults::default();
        let router = Router::new()
            .route("/oauth/authorize", get(authorize).fallback(unsupported))
            .route(
                "/oauth/access_token",
                post(code_exchange).fallback(unsupported),
            )
            .route("/access_token", get(exchange_token).fallback(unsupported))
            .route(
                "/refresh_access_token",
                get(refresh_token).fallback(unsupported),
            )
            .route("/v1.0/{node}", get(node).fallback(unsupported))
            .route(
                "/v1.0/{node}/threads",
                get(list_threads)
                    .post(create_container)
                    .fallback(unsupported),
            )
            .route(
                "/v1.0/{node}/threads_publish",
                post(publish).fallback(unsupported),
            )
            .fallback(unsupported)
            .with_state(state.clone());
        let server = Fake::serve(router, faults.clone()).await;
        Self {
            url: server.url.clone(),
            faults,
            state,
            _server: server,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Another redirect URI the app registered.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.with(|s| s.redirect_uris.push(uri.to_owned()));
    }

    /// A long-lived token with these scopes, as if the OAuth dance had happened.
    pub fn grant_token(&self, scopes: &[&str]) -> String {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        self.with(|s| issue(s, TokenKind::Long, scopes))
    }

    /// Tokens issued so far (short- and long-lived), oldest first.
    pub fn tokens(&self) -> Vec<IssuedToken> {
        self.with(|s| s.tokens.clone())
    }

    /// Moves a token's issue and expiry times back (e.g. past the 24 hours before a long-lived
    /// token may be refreshed).
    pub fn age_token(&self, token: &str, by: Duration) {
        self.with(|s| {
            if let Some(t) = s.tokens.iter_mut().find(|t| t.token == token) {
                t.issued_at -= by;
                t.expires_at -= by;
            }
        });
    }

    /// Makes a token expired.
    pub fn expire_token(&self, token: &str) {
        self.with(|s| {
            if let Some(t) = s.tokens.iter_mut().find(|t| t.token == token) {
                t.expires_at = SystemTime::now() - Duration::from_secs(1);
            }
        });
    }

    /// Revokes a token (the user removed the app, or changed their password).
    pub fn revoke_token(&self, token: &str) {
        self.with(|s| {
            if let Some(t) = s.tokens.iter_mut().find(|t| t.token == token) {
                t.revoked = true;
            }
        });
    }

    /// How many status reads a new container answers IN_PROGRESS to (default 1).
    pub fn set_in_progress_polls(&self, n: u32) {
        self.with(|s| s.in_progress_polls = n);
    }

    /// Containers made from this image URL end in ERROR with this `error_message`.
    pub fn fail_image_url(&self, url: &str, error_message: &str) {
        self.with(|s| {
            s.failing_urls
                .insert(url.to_owned(), error_message.to_owned())
        });
    }

    /// How many status reads a new VIDEO container answers IN_PROGRESS to (default 2): a slow
    /// processing.
    pub fn set_video_processing_polls(&self, n: u32) {
        self.with(|s| s.video_in_progress_polls = n);
    }

    /// Serves `bytes` at `url` for VIDEO containers to download.
    pub fn serve_video(&self, url: &str, bytes: Vec<u8>) {
        self.with(|s| s.videos.insert(url.to_owned(), bytes));
    }

    /// Containers made from this video URL end in ERROR with this `error_message` (e.g.
    /// `FAILED_PROCESSING_VIDEO`).
    pub fn fail_video_url(&self, url: &str, error_message: &str) {
        self.fail_image_url(url, error_message);
    }

    /// The container has not been published within 24 hours: EXPIRED.
    pub fn expire_container(&self, id: &str) {
        self.with(|s| {
            if let Some(c) = s.containers.get_mut(id) {
                c.expired = true;
            }
        });
    }

    /// Forgets a container (Threads no longer knows the id).
    pub fn drop_container(&self, id: &str) {
        self.with(|s| s.containers.remove(id));
    }

    /// VIDEO containers created.
    pub fn video_containers(&self) -> usize {
        self.with(|s| {
            s.containers
                .values()
                .filter(|c| c.media_type == "VIDEO")
                .count()
        })
    }

    /// A post made some other way (the app, another tool), `age` ago.
    pub fn insert_post(&self, media_type: &str, text: Option<&str>, age: Duration) -> String {
        self.with(|s| {
            let id = s.id(18_000_000_000_000_000);
            let shortcode = token("")[..11].to_owned();
            let post = Post {
                id: id.clone(),
                container_id: None,
                media_type: media_type.to_owned(),
                text: text.map(str::to_owned),
                image_urls: Vec::new(),
                children: Vec::new(),
                permalink: permalink(&shortcode),
                shortcode,
                timestamp: unix(SystemTime::now() - age),
            };
            s.posts.push(post);
            s.posts.sort_by_key(|p| p.timestamp);
            id
        })
    }

    /// Published posts, oldest first.
    pub fn posts(&self) -> Vec<Post> {
        self.with(|s| s.posts.clone())
    }

    pub fn containers(&self) -> Vec<Container> {
        self.with(|s| {
            let mut c: Vec<Container> = s.containers.values().cloned().collect();
            c.sort_by(|a, b| a.id.cmp(&b.id));
            c
        })
    }

    /// `POST /v1.0/{user}/threads` calls that created a container.
    pub fn create_calls(&self) -> usize {
        self.with(|s| s.create_calls)
    }

    /// `threads_publish` calls that published a post.
    pub fn publish_calls(&self) -> usize {
        self.with(|s| s.publish_calls)
    }

    /// Container status reads answered.
    pub fn status_reads(&self) -> usize {
        self.with(|s| s.status_reads)
    }

    /// Successful `th_exchange_token` and `th_refresh_token` calls.
    pub fn exchange_calls(&self) -> usize {
        self.with(|s| s.exchange_calls)
    }
    pub fn refresh_calls(&self) -> usize {
        self.with(|s| s.refresh_calls)
    }
}

/// A Graph API error body.
pub fn graph_error(code: i64, subcode: Option<i64>, kind: &str, message: &str) -> Value {
    let mut e = json!({
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": token("A")[..12].to_owned(),
    });
    if let Some(sub) = subcode {
        e["error_subcode"] = json!(sub);
    }
    json!({ "error": e })
}

fn err(code: i64, subcode: Option<i64>, kind: &str, message: &str) -> Response {
    json(400, graph_error(code, subcode, kind, message))
}

fn bad_param(message: &str) -> Response {
    err(100, None, "THApiException", message)
}

fn issue(s: &mut Inner, kind: TokenKind, scopes: Vec<String>) -> String {
    let prefix = match kind {
        TokenKind::Short => "THs",
        TokenKind::Long => "THl",
    };
    let t = token(prefix);
    let now = SystemTime::now();
    s.tokens.push(IssuedToken {
        token: t.clone(),
        kind,
        scopes,
        issued_at: now,
        expires_at: now
            + match kind {
                TokenKind::Short => SHORT_LIVED,
                TokenKind::Long => LONG_LIVED,
            },
        revoked: false,
    });
    t
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `2023-10-17T05:42:03+0000`, the form the API uses.
fn iso(secs: i64) -> String {
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

fn permalink(shortcode: &str) -> String {
    format!("https://www.threads.net/@{USERNAME}/post/{shortcode}")
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

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse_pairs(s: &str, into: &mut HashMap<String, String>) {
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        into.insert(decode(k), decode(v));
    }
}

/// The request's parameters: the query string, and a form body (the only body type the Graph
/// endpoints take here).
#[allow(clippy::result_large_err)]
fn params(
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<HashMap<String, String>, Response> {
    let mut p = HashMap::new();
    if let Some(q) = uri.query() {
        parse_pairs(q, &mut p);
    }
    if !body.is_empty() {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(bad_param(
                "The request body must be application/x-www-form-urlencoded parameters.",
            ));
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return Err(bad_param("The request body is not UTF-8."));
        };
        parse_pairs(text, &mut p);
    }
    Ok(p)
}

fn nonempty<'a>(p: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    p.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// The token of a Graph call, checked.
#[allow(clippy::result_large_err)]
fn authenticate(
    s: &Inner,
    p: &HashMap<String, String>,
    scope: &str,
) -> Result<IssuedToken, Response> {
    let Some(t) = nonempty(p, "access_token") else {
        return Err(err(
            2500,
            None,
            "OAuthException",
            "An active access token must be used to query information about the current user.",
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
    if tok.revoked {
        return Err(err(
            190,
            Some(460),
            "OAuthException",
            "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
        ));
    }
    if tok.expires_at <= SystemTime::now() {
        return Err(err(
            190,
            Some(463),
            "OAuthException",
            "Error validating access token: Session has expired.",
        ));
    }
    for needed in [SCOPE_BASIC, scope] {
        if !tok.scopes.iter().any(|s| s == needed) {
            return Err(err(
                10,
                None,
                "OAuthException",
                &format!("(#10) Application does not have permission for this action ({needed})."),
            ));
        }
    }
    Ok(tok.clone())
}

/// The `{node}` of a user edge: the token's user, by id or `me`.
#[allow(clippy::result_large_err)]
fn user_node(node: &str, method: &str) -> Result<(), Response> {
    if node == "me" || node == USER_ID {
        Ok(())
    } else {
        Err(err(
            100,
            Some(33),
            "GraphMethodException",
            &format!(
                "Unsupported {method} request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
        ))
    }
}

/// The requested `fields`, each checked against the node type's fields.
#[allow(clippy::result_large_err)]
fn fields(
    p: &HashMap<String, String>,
    allowed: &[&str],
    node_type: &str,
) -> Result<Vec<String>, Response> {
    let Some(f) = p.get("fields") else {
        return Ok(vec!["id".into()]);
    };
    let mut out = Vec::new();
    for name in f.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !allowed.contains(&name) {
            return Err(bad_param(&format!(
                "(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})"
            )));
        }
        out.push(name.to_owned());
    }
    if !out.iter().any(|f| f == "id") {
        out.insert(0, "id".into());
    }
    Ok(out)
}

async fn unsupported(method: Method, uri: Uri) -> Response {
    err(
        100,
        Some(33),
        "GraphMethodException",
        &format!(
            "Unsupported {} request to {}.",
            method.as_str().to_ascii_lowercase(),
            uri.path()
        ),
    )
}

async fn authorize(State(state): State<Shared>, uri: Uri) -> Response {
    let mut p = HashMap::new();
    if let Some(q) = uri.query() {
        parse_pairs(q, &mut p);
    }
    if nonempty(&p, "client_id") != Some(CLIENT_ID) {
        return err(101, None, "OAuthException", "Invalid platform app");
    }
    let mut s = state.lock().unwrap();
    let Some(redirect_uri) = nonempty(&p, "redirect_uri") else {
        return bad_param("redirect_uri is required.");
    };
    if !s.redirect_uris.iter().any(|r| r == redirect_uri) {
        return err(
            191,
            None,
            "OAuthException",
            "URL blocked: this redirect failed because the redirect URI is not whitelisted in the app's Client OAuth Settings.",
        );
    }
    if nonempty(&p, "response_type") != Some("code") {
        return bad_param("response_type must be code.");
    }
    let Some(scope) = nonempty(&p, "scope") else {
        return bad_param("scope is required.");
    };
    let scopes: Vec<String> = scope
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return bad_param(&format!("Invalid scope: {bad}"));
    }
    if !scopes.iter().any(|s| s == SCOPE_BASIC) {
        return bad_param("The threads_basic permission is required.");
    }
    let code = token("AQ");
    s.codes.insert(
        code.clone(),
        Code {
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            issued: SystemTime::now(),
            used: false,
        },
    );
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut location = format!("{redirect_uri}{sep}code={}", encode(&code));
    if let Some(st) = p.get("state") {
        location.push_str(&format!("&state={}", encode(st)));
    }
    location.push_str("#_");
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location)
        .body(axum::body::Body::empty())
        .unwrap()
}

async fn code_exchange(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(client_id) = nonempty(&p, "client_id") else {
        return err(101, None, "OAuthException", "Missing client_id parameter.");
    };
    if client_id != CLIENT_ID {
        return err(
            101,
            None,
            "OAuthException",
            "Error validating application. Invalid application ID.",
        );
    }
    if nonempty(&p, "client_secret") != Some(CLIENT_SECRET) {
        return err(1, None, "OAuthException", "Error validating client secret.");
    }
    if nonempty(&p, "grant_type") != Some("authorization_code") {
        return bad_param("grant_type must be authorization_code.");
    }
    let (Some(code), Some(redirect_uri)) = (nonempty(&p, "code"), nonempty(&p, "redirect_uri"))
    else {
        return bad_param("code and redirect_uri are required.");
    };
    let mut s = state.lock().unwrap();
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
    let scopes = grant.scopes.clone();
    let t = issue(&mut s, TokenKind::Short, scopes);
    json(
        200,
        json!({ "access_token": t, "user_id": USER_ID.parse::<u64>().unwrap() }),
    )
}

async fn exchange_token(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if nonempty(&p, "grant_type") != Some("th_exchange_token") {
        return bad_param("grant_type must be th_exchange_token.");
    }
    if nonempty(&p, "client_secret") != Some(CLIENT_SECRET) {
        return err(1, None, "OAuthException", "Error validating client secret.");
    }
    let mut s = state.lock().unwrap();
    let tok = match authenticate(&s, &p, SCOPE_BASIC) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if tok.kind != TokenKind::Short {
        return err(
            100,
            None,
            "OAuthException",
            "th_exchange_token takes a short-lived access token.",
        );
    }
    let long = issue(&mut s, TokenKind::Long, tok.scopes);
    s.exchange_calls += 1;
    json(
        200,
        json!({ "access_token": long, "token_type": "bearer", "expires_in": LONG_LIVED.as_secs() }),
    )
}

async fn refresh_token(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if nonempty(&p, "grant_type") != Some("th_refresh_token") {
        return bad_param("grant_type must be th_refresh_token.");
    }
    let mut s = state.lock().unwrap();
    let tok = match authenticate(&s, &p, SCOPE_BASIC) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if tok.kind != TokenKind::Long {
        return err(
            100,
            None,
            "OAuthException",
            "th_refresh_token takes a long-lived access token.",
        );
    }
    if tok.issued_at + REFRESH_MIN_AGE > SystemTime::now() {
        return err(
            100,
            None,
            "OAuthException",
            "Long-lived tokens can be refreshed once they are at least 24 hours old.",
        );
    }
    let new = issue(&mut s, TokenKind::Long, tok.scopes);
    s.refresh_calls += 1;
    json(
        200,
        json!({ "access_token": new, "token_type": "bearer", "expires_in": LONG_LIVED.as_secs() }),
    )
}

fn post_json(post: &Post, fields: &[String]) -> Value {
    let mut o = serde_json::Map::new();
    for f in fields {
        let v = match f.as_str() {
            "id" => json!(post.id),
            "media_product_type" => json!("THREADS"),
            "media_type" => json!(post.media_type),
            "permalink" => json!(post.permalink),
            "owner" => json!({ "id": USER_ID }),
            "username" => json!(USERNAME),
            "text" => match &post.text {
                Some(t) => json!(t),
                None => continue,
            },
            "timestamp" => json!(iso(post.timestamp)),
            "shortcode" => json!(post.shortcode),
            "media_url" => match post.image_urls.first() {
                Some(u) if post.media_type == "IMAGE" => json!(u),
                _ => continue,
            },
            "children" => {
                if post.children.is_empty() {
                    continue;
                }
                json!({ "data": post.children.iter().map(|c| json!({ "id": c })).collect::<Vec<_>>() })
            }
            "is_quote_post" => json!(false),
            _ => continue,
        };
        o.insert(f.clone(), v);
    }
    Value::Object(o)
}

async fn node(
    State(state): State<Shared>,
    Path(node): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut s = state.lock().unwrap();
    if let Err(r) = authenticate(&s, &p, SCOPE_BASIC) {
        return r;
    }
    if node == "me" || node == USER_ID {
        let f = match fields(&p, PROFILE_FIELDS, "ThreadsUser") {
            Ok(f) => f,
            Err(r) => return r,
        };
        let mut o = serde_json::Map::new();
        for name in f {
            let v = match name.as_str() {
                "id" => json!(USER_ID),
                "username" => json!(USERNAME),
                "name" => json!(NAME),
                "threads_profile_picture_url" => {
                    json!("https://scontent.cdninstagram.com/fake/profile.jpg")
                }
                "threads_biography" => json!("A fake Threads user."),
                "is_verified" => json!(false),
                _ => continue,
            };
            o.insert(name, v);
        }
        return json(200, Value::Object(o));
    }
    if s.containers.contains_key(&node) {
        let f = match fields(&p, CONTAINER_FIELDS, "ThreadsMediaContainer") {
            Ok(f) => f,
            Err(r) => return r,
        };
        s.status_reads += 1;
        let c = s.containers.get_mut(&node).unwrap();
        let status = c.status();
        if c.polls_left > 0 {
            c.polls_left -= 1;
        }
        let mut o = serde_json::Map::new();
        o.insert("id".into(), json!(c.id));
        if f.iter().any(|x| x == "status") {
            o.insert("status".into(), json!(status));
        }
        if f.iter().any(|x| x == "error_message")
            && status == "ERROR"
            && let Some(m) = &c.failure
        {
            o.insert("error_message".into(), json!(m));
        }
        return json(200, Value::Object(o));
    }
    if let Some(post) = s.posts.iter().find(|x| x.id == node) {
        let f = match fields(&p, MEDIA_FIELDS, "ThreadsMedia") {
            Ok(f) => f,
            Err(r) => return r,
        };
        return json(200, post_json(post, &f));
    }
    err(
        100,
        Some(33),
        "GraphMethodException",
        &format!(
            "Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        ),
    )
}

fn timestamp_param(p: &HashMap<String, String>, key: &str) -> Result<Option<i64>, String> {
    let Some(v) = nonempty(p, key) else {
        return Ok(None);
    };
    // The API also takes strtotime() forms; the fake takes Unix seconds only.
    let n: i64 = v
        .parse()
        .map_err(|_| format!("Param {key} must be a Unix timestamp (the fake's restriction)."))?;
    if n < EARLIEST {
        return Err(format!("Param {key} must be on or after {EARLIEST}."));
    }
    if n > unix(SystemTime::now()) + 60 {
        return Err(format!("Param {key} must not be in the future."));
    }
    Ok(Some(n))
}

async fn list_threads(
    State(state): State<Shared>,
    Path(node): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let s = state.lock().unwrap();
    if let Err(r) = authenticate(&s, &p, SCOPE_BASIC) {
        return r;
    }
    if let Err(r) = user_node(&node, "get") {
        return r;
    }
    let f = match fields(&p, MEDIA_FIELDS, "ThreadsMedia") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (since, until) = match (timestamp_param(&p, "since"), timestamp_param(&p, "until")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    if let (Some(a), Some(b)) = (since, until)
        && a >= b
    {
        return bad_param("Param since must be earlier than until.");
    }
    let limit = match nonempty(&p, "limit").map(str::parse::<usize>) {
        None => 25,
        Some(Ok(n)) if n <= 100 => n,
        _ => return bad_param("Param limit must be a number from 0 to 100."),
    };
    if p.contains_key("after") && p.contains_key("before") {
        return bad_param("Only one of before and after may be given.");
    }
    // Newest first.
    let matching: Vec<&Post> = s
        .posts
        .iter()
        .rev()
        .filter(|x| since.is_none_or(|a| x.timestamp >= a))
        .filter(|x| until.is_none_or(|b| x.timestamp <= b))
        .collect();
    let start = match nonempty(&p, "after") {
        None => 0,
        Some(cursor) => match matching.iter().position(|x| x.id == cursor) {
            Some(i) => i + 1,
            None => return bad_param("Invalid cursor."),
        },
    };
    let page: Vec<&Post> = matching.iter().skip(start).take(limit).copied().collect();
    let more = start + page.len() < matching.len();
    let data: Vec<Value> = page.iter().map(|x| post_json(x, &f)).collect();
    let mut paging = json!({});
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        paging["cursors"] = json!({ "before": first.id, "after": last.id });
        if more {
            paging["next"] = json!(format!(
                "/v1.0/{node}/threads?limit={limit}&after={}",
                last.id
            ));
        }
    }
    json(200, json!({ "data": data, "paging": paging }))
}

fn http_url(v: &str) -> bool {
    (v.starts_with("https://") || v.starts_with("http://")) && v.len() > "https://".len()
}

async fn create_container(
    State(state): State<Shared>,
    Path(node): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut s = state.lock().unwrap();
    if let Err(r) = authenticate(&s, &p, SCOPE_PUBLISH) {
        return r;
    }
    if let Err(r) = user_node(&node, "post") {
        return r;
    }
    let Some(media_type) = nonempty(&p, "media_type") else {
        return bad_param("(#100) The parameter media_type is required");
    };
    if !["TEXT", "IMAGE", "VIDEO", "CAROUSEL"].contains(&media_type) {
        return bad_param("(#100) Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}");
    }
    let is_carousel_item = match p.get("is_carousel_item").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return bad_param("(#100) Param is_carousel_item must be a boolean"),
    };
    let text = nonempty(&p, "text").map(str::to_owned);
    if let Some(t) = &text
        && text_length(t) > MAX_TEXT
    {
        return bad_param("(#100) Param text must be at most 500 characters long.");
    }
    let image_url = nonempty(&p, "image_url").map(str::to_owned);
    let video_url = nonempty(&p, "video_url").map(str::to_owned);
    let mut children = Vec::new();
    let mut failure = None;
    match media_type {
        "TEXT" => {
            if text.is_none() {
                return bad_param("(#100) The parameter text is required for media_type TEXT");
            }
            if is_carousel_item || image_url.is_some() || video_url.is_some() {
                return bad_param("(#100) A TEXT container takes text only");
            }
        }
        "IMAGE" => {
            let Some(u) = &image_url else {
                return bad_param(
                    "(#100) The parameter image_url is required for media_type IMAGE",
                );
            };
            if !http_url(u) {
                return bad_param("(#100) Param image_url must be a valid URL");
            }
            failure = s.failing_urls.get(u).cloned();
        }
        "VIDEO" => {
            let Some(u) = &video_url else {
                return bad_param(
                    "(#100) The parameter video_url is required for media_type VIDEO",
                );
            };
            if !http_url(u) {
                return bad_param("(#100) Param video_url must be a valid URL");
            }
            failure = s
                .failing_urls
                .get(u)
                .cloned()
                .or_else(|| video_problem(s.videos.get(u)));
        }
        _ => {
            if is_carousel_item {
                return bad_param("(#100) A carousel cannot be a carousel item");
            }
            let Some(list) = nonempty(&p, "children") else {
                return bad_param(
                    "(#100) The parameter children is required for media_type CAROUSEL",
                );
            };
            children = list.split(',').map(|c| c.trim().to_owned()).collect();
            if children.len() < 2 || children.len() > MAX_CHILDREN {
                return bad_param("(#100) A carousel takes 2 to 20 children");
            }
            for c in &children {
                let Some(child) = s.containers.get(c) else {
                    return bad_param(&format!("(#100) The child {c} is not a media container"));
                };
                if !child.is_carousel_item || child.published {
                    return bad_param(&format!(
                        "(#100) The child {c} is not an unpublished carousel item"
                    ));
                }
                if child.failure.is_some() && child.polls_left == 0 {
                    return bad_param(&format!("(#100) The child {c} failed processing"));
                }
                if failure.is_none() {
                    failure = child.failure.clone();
                }
            }
        }
    }
    let id = s.id(17_800_000_000_000_000);
    let polls_left = if media_type == "VIDEO" {
        s.video_in_progress_polls
    } else {
        s.in_progress_polls
    };
    s.containers.insert(
        id.clone(),
        Container {
            id: id.clone(),
            media_type: media_type.to_owned(),
            text,
            image_url,
            video_url,
            is_carousel_item,
            children,
            polls_left,
            failure,
            published: false,
            expired: false,
        },
    );
    s.create_calls += 1;
    json(200, json!({ "id": id }))
}

async fn publish(
    State(state): State<Shared>,
    Path(node): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut s = state.lock().unwrap();
    if let Err(r) = authenticate(&s, &p, SCOPE_PUBLISH) {
        return r;
    }
    if let Err(r) = user_node(&node, "post") {
        return r;
    }
    let Some(creation_id) = nonempty(&p, "creation_id") else {
        return bad_param("(#100) The parameter creation_id is required");
    };
    if creation_id.parse::<u64>().is_err() {
        return bad_param("(#100) Param creation_id must be a valid ID");
    }
    let Some(c) = s.containers.get(creation_id).cloned() else {
        return bad_param(&format!("(#100) {creation_id} is not a media container"));
    };
    if c.is_carousel_item {
        return bad_param("(#100) A carousel item is published through its carousel");
    }
    match c.status() {
        "FINISHED" => {}
        "PUBLISHED" => return bad_param("(#100) This container was already published"),
        "EXPIRED" => return bad_param("(#100) This container has expired"),
        "ERROR" => return bad_param("(#100) This container failed processing"),
        _ => {
            return err(
                9007,
                Some(2_207_027),
                "THApiException",
                "The media is not ready for publishing, please wait for a moment",
            );
        }
    }
    let (media_type, image_urls, children) = match c.media_type.as_str() {
        "TEXT" => ("TEXT_POST", Vec::new(), Vec::new()),
        "IMAGE" => (
            "IMAGE",
            vec![c.image_url.clone().unwrap_or_default()],
            Vec::new(),
        ),
        "VIDEO" => ("VIDEO", Vec::new(), Vec::new()),
        _ => {
            let urls: Vec<String> = c
                .children
                .iter()
                .filter_map(|id| s.containers.get(id).and_then(|x| x.image_url.clone()))
                .collect();
            let kids: Vec<String> = c
                .children
                .iter()
                .map(|_| s.id(18_000_000_000_000_000))
                .collect();
            ("CAROUSEL_ALBUM", urls, kids)
        }
    };
    for child in &c.children {
        if let Some(x) = s.containers.get_mut(child) {
            x.published = true;
        }
    }
    s.containers.get_mut(creation_id).unwrap().published = true;
    let id = s.id(18_000_000_000_000_000);
    let shortcode = token("")[..11].to_owned();
    s.posts.push(Post {
        id: id.clone(),
        container_id: Some(c.id.clone()),
        media_type: media_type.to_owned(),
        text: c.text.clone(),
        image_urls,
        children,
        permalink: permalink(&shortcode),
        shortcode,
        timestamp: unix(SystemTime::now()),
    });
    s.publish_calls += 1;
    json(200, json!({ "id": id }))
}

/// What Threads' processing of a downloaded video would fail with (`None`: it succeeds).
fn video_problem(file: Option<&Vec<u8>>) -> Option<String> {
    let Some(bytes) = file else {
        return Some("FAILED_DOWNLOADING_VIDEO".into());
    };
    if bytes.len() < 12 || &bytes[4..8] != b"ftyp" {
        return Some("FAILED_PROCESSING_VIDEO".into());
    }
    match mvhd_duration_ms(bytes) {
        None => Some("FAILED_PROCESSING_VIDEO".into()),
        Some(0) => Some("INVALID_DURATION".into()),
        Some(ms) if ms > 300_000 => Some("INVALID_DURATION".into()),
        Some(_) => None,
    }
}

/// The movie's duration from its `mvhd` box (version 0 or 1), in milliseconds.
fn mvhd_duration_ms(bytes: &[u8]) -> Option<u64> {
    let at = bytes.windows(4).position(|w| w == b"mvhd")?;
    let be = |from: usize, len: usize| -> Option<u64> {
        let b = bytes.get(from..from + len)?;
        Some(b.iter().fold(0u64, |n, &x| (n << 8) | u64::from(x)))
    };
    let (timescale, duration) = match bytes.get(at + 4)? {
        0 => (be(at + 16, 4)?, be(at + 20, 4)?),
        1 => (be(at + 24, 4)?, be(at + 28, 8)?),
        _ => return None,
    };
    (timescale > 0).then(|| duration.saturating_mul(1000) / timescale)
}

/// Threads' count toward the 500-character limit ("Threads Posts", Limitations: "Emojis are
/// counted as the number of UTF-8 bytes"): a grapheme cluster with an emoji counts its bytes,
/// any other grapheme cluster 1.
fn text_length(text: &str) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    text.graphemes(true)
        .map(|g| {
            let emoji = g.chars().any(|c| {
                matches!(
                    c as u32,
                    0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x2300..=0x23FF | 0xFE0F
                )
            });
            if emoji { g.len() } else { 1 }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00+0000");
        assert_eq!(iso(1_697_521_323), "2023-10-17T05:42:03+0000");
    }

    #[test]
    fn video_durations_are_read() {
        let ok = crate::media_files::mp4(320, 240, 4_500, 64);
        assert_eq!(mvhd_duration_ms(&ok), Some(4_500));
        assert_eq!(video_problem(Some(&ok)), None);
        let long = crate::media_files::mp4(320, 240, 301_000, 64);
        assert_eq!(
            video_problem(Some(&long)).as_deref(),
            Some("INVALID_DURATION")
        );
        assert_eq!(
            video_problem(Some(&b"not a video".to_vec())).as_deref(),
            Some("FAILED_PROCESSING_VIDEO")
        );
        assert_eq!(
            video_problem(None).as_deref(),
            Some("FAILED_DOWNLOADING_VIDEO")
        );
    }

    #[test]
    fn form_decoding() {
        let mut p = HashMap::new();
        parse_pairs("a=b%2Cc&scope=threads_basic+x&e=%zz", &mut p);
        assert_eq!(p["a"], "b,c");
        assert_eq!(p["scope"], "threads_basic x");
        assert_eq!(p["e"], "%zz");
    }
}
