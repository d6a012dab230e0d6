//! A fake Mastodon instance: app registration, the OAuth authorization page (a user who
//! approves), the token endpoint, `verify_credentials`, media uploads (v2, asynchronous
//! processing polled through `GET /api/v1/media/:id`), statuses with `Idempotency-Key`, an
//! account's statuses and a status's source.
//!
//! What it checks, per Mastodon's documentation:
//! - `POST /api/v1/apps`: `client_name` and `redirect_uris` (absolute URIs) present, `scopes`
//!   known (default `read`); 422 `{"error": "Validation failed: ..."}` otherwise.
//! - `GET /oauth/authorize`: a registered `client_id` and a `redirect_uri` registered for it (else
//!   a 400 error page, no redirect); then `response_type=code`, a `scope` within the app's
//!   scopes, and PKCE (`code_challenge` with `code_challenge_method=S256`; Mastodon makes PKCE
//!   optional, this fake requires it), else a redirect with `error=`; approval redirects (302)
//!   to `redirect_uri?code=...&state=...`.
//! - `POST /oauth/token` (form): `grant_type=authorization_code`, client credentials in the body
//!   or HTTP Basic (401 `invalid_client`), a code issued to that client, unused, for that
//!   `redirect_uri`, and a `code_verifier` matching the challenge (400 `invalid_grant`).
//! - API calls: `Authorization: Bearer` with a token this fake issued and did not revoke (401
//!   `{"error": "The access token is invalid"}` / `"... was revoked"`), holding a scope the
//!   endpoint needs (403 `{"error": "This action is outside the authorized scopes"}`; `read`
//!   and `write` cover their granular scopes).
//! - `POST /api/v2/media`: multipart with a `file` part whose type is a supported image type
//!   (at most 16 MB) or video type (MP4, MOV, WebM; at most 99 MB, the default
//!   `video_size_limit` of 103809024 bytes) and whose bytes are that type (422 otherwise). The
//!   first image upload answers 202 (`url: null`) and needs polling: one 206, then 200
//!   (scriptable). Videos are always processed in the background, as since Mastodon 4.0: 202,
//!   then `video_processing_polls` answers 206 (default 2) before 200, or, when told to fail
//!   processing, 422 `{"error": "Error processing thumbnail for uploaded media"}` (the message is
//!   settable).
//! - `GET /api/v1/media/:id`: only the caller's attachments not yet attached to a status (404
//!   `{"error": "Record not found"}` otherwise, as Mastodon's `where(status_id: nil)`); 206 while
//!   processing, 200 when processed, 422 when processing failed.
//! - `POST /api/v1/statuses` (JSON or form): `status` text or `media_ids`; text at most 500
//!   characters; at most 4 media, each the caller's own, unattached and processed (422 with
//!   Mastodon's messages otherwise); `visibility` one of the documented values. The same
//!   `Idempotency-Key` from the same account within an hour answers the status already made.
//! - `GET /api/v1/accounts/:id/statuses`: `limit` (max 40), `max_id`, `since_id`, `min_id`,
//!   `exclude_reblogs`; a token, when given, must be valid and hold `read:statuses`.
//!
//! Every `/api` answer carries `X-RateLimit-Limit/Remaining/Reset` (an ISO 8601 time);
//! [`MastodonFake::rate_limit_next`] scripts Mastodon's 429.

// Handlers' helpers answer the refusal itself as the error: a Response, large but rare.
#![allow(clippy::result_large_err)]

use crate::common::{Fake, Faults, basic, bearer, json, pkce_challenge, token};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json as j};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const MAX_CHARACTERS: usize = 500;
pub const MAX_MEDIA_ATTACHMENTS: usize = 4;
pub const IMAGE_SIZE_LIMIT: usize = 16 * 1024 * 1024;
pub const SUPPORTED_IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
/// Mastodon's default `video_size_limit` (99 MB).
pub const VIDEO_SIZE_LIMIT: usize = 103_809_024;
pub const SUPPORTED_VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];
/// Mastodon's answer to a poll of an attachment whose processing failed.
pub const PROCESSING_ERROR: &str = "Error processing thumbnail for uploaded media";
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(3600);
const KNOWN_SCOPES: &[&str] = &[
    "read",
    "write",
    "follow",
    "push",
    "profile",
    "read:accounts",
    "read:blocks",
    "read:bookmarks",
    "read:favourites",
    "read:filters",
    "read:follows",
    "read:lists",
    "read:mutes",
    "read:notifications",
    "read:search",
    "read:statuses",
    "write:accounts",
    "write:blocks",
    "write:bookmarks",
    "write:conversations",
    "write:favourites",
    "write:filters",
    "write:follows",
    "write:lists",
    "write:media",
    "write:mutes",
    "write:notifications",
    "write:reports",
    "write:statuses",
];

/// A registered app.
#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub name: String,
    pub website: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    challenge: String,
    account_id: String,
    used: bool,
}

/// An access token this instance issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub client_id: Option<String>,
    pub account_id: String,
    pub scopes: Vec<String>,
    pub revoked: bool,
}

/// An uploaded file.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub account_id: String,
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub file_name: Option<String>,
    pub description: Option<String>,
    pub processed: bool,
    /// 206 answers still to give before the file is processed.
    polls_left: u32,
    /// Processing ends in this failure (422 with it as `error`) instead of a processed file.
    pub failure: Option<String>,
    /// Processing has ended in `failure`.
    pub failed: bool,
    pub status_id: Option<String>,
}

impl Upload {
    pub fn is_video(&self) -> bool {
        self.content_type.starts_with("video/")
    }
}

/// A status on this instance.
#[derive(Debug, Clone)]
pub struct Post {
    pub id: String,
    pub account_id: String,
    pub text: String,
    pub media_ids: Vec<String>,
    pub visibility: String,
    pub created_at: SystemTime,
    pub idempotency_key: Option<String>,
    pub application: Option<String>,
}

#[derive(Default)]
struct St {
    base: String,
    next_id: u64,
    apps: Vec<App>,
    accounts: Vec<Account>,
    approver: String,
    grants: HashMap<String, Grant>,
    tokens: HashMap<String, IssuedToken>,
    uploads: Vec<Upload>,
    posts: Vec<Post>,
    idempotency: HashMap<(String, String), (String, Instant)>,
    /// How the next uploads are processed: `None` synchronously (200), `Some(n)` in the
    /// background (202, then n answers 206 before 200). Afterwards, synchronously.
    processing: VecDeque<Option<u32>>,
    /// 206 answers a new video upload gives before it is processed (or fails).
    video_polls: u32,
    /// New video uploads fail processing with this message.
    video_failure: Option<String>,
    create_calls: usize,
    upload_calls: usize,
    poll_calls: usize,
    token_calls: usize,
}

impl St {
    fn id(&mut self) -> String {
        self.next_id += 1 + (self.next_id % 7);
        self.next_id.to_string()
    }
    fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }
}

type Shared = Arc<Mutex<St>>;

/// A running fake instance.
pub struct MastodonFake {
    /// `http://127.0.0.1:<port>`: the instance's address.
    pub url: String,
    pub faults: Faults,
    state: Shared,
    _server: Fake,
}

impl MastodonFake {
    /// Starts an instance with one account, `alice`, who approves authorizations.
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(St {
            next_id: 110_000_000_000_000_000,
            processing: VecDeque::from([Some(1)]),
            video_polls: 2,
            ..St::default()
        }));
        let faults = Faults::default();
        let router = Router::new()
            .route("/api/v1/apps", post(create_app))
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/token", post(token_endpoint))
            .route(
                "/api/v1/accounts/verify_credentials",
                get(verify_credentials),
            )
            .route("/api/v1/accounts/{id}/statuses", get(account_statuses))
            .route("/api/v2/media", post(upload_media))
            .route("/api/v1/media/{id}", get(get_media))
            .route("/api/v1/statuses", post(create_status))
            .route("/api/v1/statuses/{id}/source", get(status_source))
            .layer(axum::middleware::map_response(rate_limit_headers))
            .layer(DefaultBodyLimit::max(VIDEO_SIZE_LIMIT + 1024 * 1024))
            .with_state(state.clone());
        let server = Fake::serve(router, faults.clone()).await;
        let fake = Self {
            url: server.url.clone(),
            faults,
            state,
            _server: server,
        };
        fake.st().base = fake.url.clone();
        let alice = fake.add_account("alice", "Alice");
        fake.approve_as(&alice);
        fake
    }

    fn st(&self) -> std::sync::MutexGuard<'_, St> {
        self.state.lock().unwrap()
    }

    /// The instance's host as in account ids (`127.0.0.1:<port>`).
    pub fn host(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// Adds a local account; answers its id.
    pub fn add_account(&self, username: &str, display_name: &str) -> String {
        let mut st = self.st();
        let id = st.id();
        st.accounts.push(Account {
            id: id.clone(),
            username: username.to_owned(),
            display_name: display_name.to_owned(),
        });
        id
    }

    /// The account that approves the next authorizations.
    pub fn approve_as(&self, account_id: &str) {
        self.st().approver = account_id.to_owned();
    }

    pub fn account_id(&self, username: &str) -> Option<String> {
        let st = self.st();
        st.accounts
            .iter()
            .find(|a| a.username == username)
            .map(|a| a.id.clone())
    }

    /// Issues a token directly (as if authorized earlier).
    pub fn issue_token(&self, account_id: &str, scopes: &str) -> String {
        let t = token("mtok_");
        self.st().tokens.insert(
            t.clone(),
            IssuedToken {
                token: t.clone(),
                client_id: None,
                account_id: account_id.to_owned(),
                scopes: split_scopes(scopes),
                revoked: false,
            },
        );
        t
    }

    /// Revokes an access token (the user removed the app, or an admin did).
    pub fn revoke_token(&self, t: &str) {
        if let Some(found) = self.st().tokens.get_mut(t) {
            found.revoked = true;
        }
    }

    pub fn apps(&self) -> Vec<App> {
        self.st().apps.clone()
    }

    pub fn tokens_issued(&self) -> Vec<IssuedToken> {
        self.st().tokens.values().cloned().collect()
    }

    /// Statuses, oldest first.
    pub fn posts(&self) -> Vec<Post> {
        self.st().posts.clone()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.st().uploads.clone()
    }

    /// `POST /api/v1/statuses` requests that reached the handler.
    pub fn create_calls(&self) -> usize {
        self.st().create_calls
    }

    pub fn upload_calls(&self) -> usize {
        self.st().upload_calls
    }

    pub fn poll_calls(&self) -> usize {
        self.st().poll_calls
    }

    pub fn token_calls(&self) -> usize {
        self.st().token_calls
    }

    /// How the next uploads are processed (see `St::processing`), replacing the script.
    pub fn script_processing(&self, script: &[Option<u32>]) {
        self.st().processing = script.iter().copied().collect();
    }

    /// How many polls a new video upload answers 206 to before it is processed (default 2): a
    /// slow instance.
    pub fn set_video_processing_polls(&self, polls: u32) {
        self.st().video_polls = polls;
    }

    /// New video uploads fail processing (with Mastodon's message, [`PROCESSING_ERROR`], when
    /// `message` is `None`); `fail_video_processing(false, None)` ends it.
    pub fn fail_video_processing(&self, fail: bool, message: Option<&str>) {
        self.st().video_failure = fail.then(|| message.unwrap_or(PROCESSING_ERROR).to_owned());
    }

    /// Video uploads that were accepted (whatever became of them).
    pub fn video_uploads(&self) -> usize {
        self.st().uploads.iter().filter(|u| u.is_video()).count()
    }

    /// Deletes an attachment (as `DELETE /api/v1/media/:id`, or an instance's cleanup of
    /// unattached media): polling it answers 404 from then on.
    pub fn delete_upload(&self, id: &str) {
        self.st().uploads.retain(|u| u.id != id);
    }

    /// A status made outside the API (another client), `age` ago.
    pub fn seed_status(&self, account_id: &str, text: &str, age: Duration) -> String {
        let mut st = self.st();
        let id = st.id();
        st.posts.push(Post {
            id: id.clone(),
            account_id: account_id.to_owned(),
            text: text.to_owned(),
            media_ids: vec![],
            visibility: "public".into(),
            created_at: SystemTime::now() - age,
            idempotency_key: None,
            application: Some("Web".into()),
        });
        st.posts.sort_by_key(|p| p.created_at);
        id
    }

    /// The next `method` request to `path_prefix` gets Mastodon's 429, resetting after `reset_in`.
    pub fn rate_limit_next(&self, method: &str, path_prefix: &str, reset_in: Duration) {
        let reset = iso8601(SystemTime::now() + reset_in);
        self.faults.reply(
            method,
            path_prefix,
            429,
            &[
                ("X-RateLimit-Limit", "300"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", &reset),
            ],
            j!({ "error": "Too many requests" }),
        );
    }
}

// ---- helpers ------------------------------------------------------------------------------

fn error(status: u16, message: &str) -> Response {
    json(status, j!({ "error": message }))
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json(
        status,
        j!({ "error": error, "error_description": description }),
    )
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split([' ', '+'])
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `granted` covers one of `needed` (`read`/`write` cover their granular scopes).
fn has_scope(granted: &[String], needed: &[&str]) -> bool {
    needed.iter().any(|n| {
        granted.iter().any(|g| {
            g == n
                || n.split_once(':')
                    .is_some_and(|(family, _)| g == family && !n.starts_with("admin"))
        })
    })
}

/// The caller's token, checked for validity and one of `needed`.
fn authed(st: &St, headers: &HeaderMap, needed: &[&str]) -> Result<IssuedToken, Response> {
    let Some(t) = bearer(headers) else {
        return Err(error(401, "The access token is invalid"));
    };
    let Some(found) = st.tokens.get(&t) else {
        return Err(error(401, "The access token is invalid"));
    };
    if found.revoked {
        return Err(error(401, "The access token was revoked"));
    }
    if !has_scope(&found.scopes, needed) {
        return Err(error(403, "This action is outside the authorized scopes"));
    }
    Ok(found.clone())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// An `application/x-www-form-urlencoded` body.
fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let s = std::str::from_utf8(body).ok()?;
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
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

/// A JSON or form body as a JSON object (form `name[]` keys become arrays). `Err` is the 400.
fn params(headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    let parse_error = || error(400, "Error occurred while parsing request parameters.");
    match content_type(headers).as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(parse_error()),
        },
        "application/x-www-form-urlencoded" => {
            let pairs = parse_form(body).ok_or_else(parse_error)?;
            let mut map = serde_json::Map::new();
            for (k, v) in pairs {
                if let Some(name) = k.strip_suffix("[]") {
                    let entry = map.entry(name.to_owned()).or_insert_with(|| j!([]));
                    if let Value::Array(items) = entry {
                        items.push(Value::String(v));
                    }
                } else {
                    map.insert(k, Value::String(v));
                }
            }
            Ok(map)
        }
        // Rails ignores a body it cannot read: the parameters are simply missing.
        _ => Ok(serde_json::Map::new()),
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// `2019-12-05T11:34:47.196Z`.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

async fn rate_limit_headers(
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    mut response: Response,
) -> Response {
    if uri.path().starts_with("/api/") {
        let h = response.headers_mut();
        h.insert("X-RateLimit-Limit", HeaderValue::from_static("300"));
        h.insert("X-RateLimit-Remaining", HeaderValue::from_static("299"));
        if let Ok(v) = HeaderValue::from_str(&iso8601(SystemTime::now() + Duration::from_secs(300)))
        {
            h.insert("X-RateLimit-Reset", v);
        }
    }
    response
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Mastodon's rendering of a status's text: paragraphs, line breaks, links, hashtags, mentions.
fn render(base: &str, text: &str) -> String {
    let word = |w: &str| -> String {
        if let Some(rest) = w
            .strip_prefix("https://")
            .map(|r| ("https://", r))
            .or_else(|| w.strip_prefix("http://").map(|r| ("http://", r)))
        {
            let (scheme, rest) = rest;
            let (shown, hidden) = rest.split_at(rest.len().min(30));
            return format!(
                "<a href=\"{}\" target=\"_blank\" rel=\"nofollow noopener\" translate=\"no\"><span class=\"invisible\">{}</span><span class=\"{}\">{}</span><span class=\"invisible\">{}</span></a>",
                escape(w),
                scheme,
                if hidden.is_empty() { "" } else { "ellipsis" },
                escape(shown),
                escape(hidden)
            );
        }
        if let Some(tag) = w.strip_prefix('#').filter(|t| !t.is_empty()) {
            return format!(
                "<a href=\"{base}/tags/{0}\" class=\"mention hashtag\" rel=\"tag\">#<span>{0}</span></a>",
                escape(tag)
            );
        }
        if let Some(handle) = w.strip_prefix('@').filter(|t| !t.is_empty()) {
            let (user, domain) = handle.split_once('@').unwrap_or((handle, ""));
            let href = if domain.is_empty() {
                format!("{base}/@{user}")
            } else {
                format!("https://{domain}/@{user}")
            };
            return format!(
                "<span class=\"h-card\" translate=\"no\"><a href=\"{}\" class=\"u-url mention\">@<span>{}</span></a></span>",
                escape(&href),
                escape(user)
            );
        }
        escape(w)
    };
    text.trim()
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let lines: Vec<String> = p
                .trim_matches('\n')
                .split('\n')
                .map(|line| line.split(' ').map(word).collect::<Vec<_>>().join(" "))
                .collect();
            format!("<p>{}</p>", lines.join("<br />"))
        })
        .collect()
}

fn media_json(st: &St, u: &Upload) -> Value {
    let ext = if u.is_video() { "mp4" } else { "img" };
    let url = u.processed.then(|| {
        format!(
            "{}/system/media_attachments/files/{}/original.{ext}",
            st.base, u.id
        )
    });
    j!({
        "id": u.id,
        "type": if u.is_video() { "video" } else { "image" },
        "url": url,
        "preview_url": format!("{}/system/media_attachments/files/{}/small.img", st.base, u.id),
        "remote_url": null,
        "text_url": null,
        "meta": { "original": { "width": 640, "height": 480, "size": "640x480", "aspect": 1.3333333333333333 } },
        "description": u.description,
        "blurhash": "UFBWY:8_0Jxv4mx]t8t64.%M-:IUWGWAt6M}",
    })
}

fn account_json(st: &St, a: &Account) -> Value {
    j!({
        "id": a.id,
        "username": a.username,
        "acct": a.username,
        "display_name": a.display_name,
        "locked": false,
        "bot": false,
        "created_at": "2024-01-01T00:00:00.000Z",
        "note": "",
        "url": format!("{}/@{}", st.base, a.username),
        "avatar": format!("{}/avatars/original/missing.png", st.base),
        "avatar_static": format!("{}/avatars/original/missing.png", st.base),
        "header": format!("{}/headers/original/missing.png", st.base),
        "header_static": format!("{}/headers/original/missing.png", st.base),
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": st.posts.iter().filter(|p| p.account_id == a.id).count(),
        "last_status_at": null,
        "emojis": [],
        "fields": [],
    })
}

fn status_json(st: &St, p: &Post) -> Value {
    let account = st.account(&p.account_id).expect("a status has an account");
    let media: Vec<Value> = p
        .media_ids
        .iter()
        .filter_map(|id| st.uploads.iter().find(|u| &u.id == id))
        .map(|u| media_json(st, u))
        .collect();
    j!({
        "id": p.id,
        "created_at": iso8601(p.created_at),
        "in_reply_to_id": null,
        "in_reply_to_account_id": null,
        "sensitive": false,
        "spoiler_text": "",
        "visibility": p.visibility,
        "language": "en",
        "uri": format!("{}/users/{}/statuses/{}", st.base, account.username, p.id),
        "url": format!("{}/@{}/{}", st.base, account.username, p.id),
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "favourited": false,
        "reblogged": false,
        "muted": false,
        "bookmarked": false,
        "pinned": false,
        "content": render(&st.base, &p.text),
        "reblog": null,
        "application": p.application.as_ref().map(|name| j!({ "name": name, "website": null })),
        "account": account_json(st, account),
        "media_attachments": media,
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": null,
        "poll": null,
    })
}

fn sniffs_as(bytes: &[u8], mime: &str) -> bool {
    match mime {
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        "image/webp" => bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        // ISO-BMFF: a `ftyp` box first; QuickTime's major brand is `qt  `.
        "video/mp4" => bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && &bytes[8..12] != b"qt  ",
        "video/quicktime" => {
            bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && &bytes[8..12] == b"qt  "
        }
        "video/webm" => bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]),
        _ => false,
    }
}

// ---- handlers -----------------------------------------------------------------------------

async fn create_app(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match params(&headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = p.get("client_name").and_then(Value::as_str).unwrap_or("");
    if name.trim().is_empty() {
        return error(422, "Validation failed: Name can't be blank");
    }
    // Before 4.3 Mastodon permits `redirect_uris` only as a string (newline-separated URIs); an
    // array is dropped by its parameter filter, leaving the field blank. This fake plays such
    // an instance, so that a client relying on 4.3 is caught.
    let redirect_uris: Vec<String> = match p.get("redirect_uris") {
        Some(Value::String(s)) => s.lines().map(str::to_owned).collect(),
        _ => vec![],
    };
    if redirect_uris.is_empty() {
        return error(422, "Validation failed: Redirect URI can't be blank");
    }
    let absolute = |u: &str| {
        u == "urn:ietf:wg:oauth:2.0:oob"
            || u.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '+')
                    && !rest.is_empty()
                    && !u.contains('#')
            })
    };
    if !redirect_uris.iter().all(|u| absolute(u)) {
        return error(
            422,
            "Validation failed: Redirect URI must be an absolute URI.",
        );
    }
    let scopes = match p.get("scopes") {
        None => vec!["read".to_owned()],
        Some(Value::String(s)) => split_scopes(s),
        Some(_) => return error(400, "scopes must be a string"),
    };
    if scopes.is_empty() || !scopes.iter().all(|s| KNOWN_SCOPES.contains(&s.as_str())) {
        return error(422, "Validation failed: Scopes is invalid");
    }
    let website = p.get("website").and_then(Value::as_str).map(str::to_owned);
    let mut st = s.lock().unwrap();
    let app = App {
        id: st.id(),
        name: name.to_owned(),
        website: website.clone(),
        client_id: token("cid_"),
        client_secret: token("csec_"),
        redirect_uris: redirect_uris.clone(),
        scopes: scopes.clone(),
    };
    st.apps.push(app.clone());
    json(
        200,
        j!({
            "id": app.id,
            "name": app.name,
            "website": website,
            "scopes": scopes,
            "redirect_uri": redirect_uris.join("\n"),
            "redirect_uris": redirect_uris,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "client_secret_expires_at": 0,
        }),
    )
}

fn redirect(to: String) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(&to).unwrap());
    r
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.join("&"))
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The authorization page, as a user who approves.
async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    let client_id = q.get("client_id").map(String::as_str).unwrap_or("");
    let Some(app) = st.apps.iter().find(|a| a.client_id == client_id).cloned() else {
        return oauth_error(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        );
    };
    let redirect_uri = q.get("redirect_uri").map(String::as_str).unwrap_or("");
    if !app.redirect_uris.iter().any(|u| u == redirect_uri) {
        return oauth_error(
            400,
            "invalid_redirect_uri",
            "The requested redirect uri is malformed or doesn't match client redirect URI.",
        );
    }
    let state = q.get("state").cloned();
    let refuse = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(state) = state.as_deref() {
            pairs.push(("state", state));
        }
        redirect(with_query(redirect_uri, &pairs))
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return refuse(
            "unsupported_response_type",
            "The authorization server does not support this response type.",
        );
    }
    let scopes = split_scopes(q.get("scope").map(String::as_str).unwrap_or("read"));
    if scopes.is_empty() || !scopes.iter().all(|sc| app.scopes.contains(sc)) {
        return refuse(
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
        );
    }
    let challenge = q.get("code_challenge").cloned().unwrap_or_default();
    if challenge.len() < 43 || q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return refuse(
            "invalid_request",
            "This fake requires PKCE: code_challenge with code_challenge_method=S256.",
        );
    }
    let code = token("code_");
    let account_id = st.approver.clone();
    st.grants.insert(
        code.clone(),
        Grant {
            client_id: app.client_id,
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            challenge,
            account_id,
            used: false,
        },
    );
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = state.as_deref() {
        pairs.push(("state", state));
    }
    redirect(with_query(redirect_uri, &pairs))
}

async fn token_endpoint(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    st.token_calls += 1;
    if content_type(&headers) != "application/x-www-form-urlencoded" {
        return oauth_error(
            400,
            "invalid_request",
            "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.",
        );
    }
    let Some(pairs) = parse_form(&body) else {
        return oauth_error(400, "invalid_request", "The request body is malformed.");
    };
    let form: HashMap<String, String> = pairs.into_iter().collect();
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let (client_id, client_secret) = match basic(&headers) {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            get("client_id").map(str::to_owned),
            get("client_secret").map(str::to_owned),
        ),
    };
    let app = st
        .apps
        .iter()
        .find(|a| Some(&a.client_id) == client_id.as_ref())
        .cloned();
    let Some(app) = app.filter(|a| Some(&a.client_secret) == client_secret.as_ref()) else {
        return oauth_error(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        );
    };
    match get("grant_type") {
        Some("authorization_code") => {}
        Some(_) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
        None => {
            return oauth_error(
                400,
                "invalid_request",
                "Missing required parameter: grant_type.",
            );
        }
    }
    let (Some(code), Some(redirect_uri)) = (get("code"), get("redirect_uri")) else {
        return oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: code or redirect_uri.",
        );
    };
    let invalid_grant = || {
        oauth_error(
            400,
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
        )
    };
    let Some(grant) = st.grants.get(code).cloned() else {
        return invalid_grant();
    };
    if grant.used || grant.client_id != app.client_id || grant.redirect_uri != redirect_uri {
        return invalid_grant();
    }
    match get("code_verifier") {
        Some(v) if pkce_challenge(v) == grant.challenge => {}
        _ => return invalid_grant(),
    }
    st.grants.get_mut(code).unwrap().used = true;
    let t = token("mtok_");
    st.tokens.insert(
        t.clone(),
        IssuedToken {
            token: t.clone(),
            client_id: Some(app.client_id),
            account_id: grant.account_id,
            scopes: grant.scopes.clone(),
            revoked: false,
        },
    );
    json(
        200,
        j!({
            "access_token": t,
            "token_type": "Bearer",
            "scope": grant.scopes.join(" "),
            "created_at": unix(SystemTime::now()),
        }),
    )
}

async fn verify_credentials(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let st = s.lock().unwrap();
    let t = match authed(&st, &headers, &["read:accounts", "profile"]) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let account = st
        .account(&t.account_id)
        .expect("tokens belong to accounts");
    let mut body = account_json(&st, account);
    body["source"] =
        j!({ "privacy": "public", "sensitive": false, "language": "", "note": "", "fields": [] });
    json(200, body)
}

async fn upload_media(State(s): State<Shared>, headers: HeaderMap, req: Request) -> Response {
    let account_id = {
        let mut st = s.lock().unwrap();
        st.upload_calls += 1;
        match authed(&st, &headers, &["write:media"]) {
            Ok(t) => t.account_id,
            Err(r) => return r,
        }
    };
    let Ok(mut multipart) = Multipart::from_request(req, &()).await else {
        return error(422, "Validation failed: File can't be blank");
    };
    let mut file: Option<(Vec<u8>, String, Option<String>)> = None;
    let mut description = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_owned();
                let ctype = field.content_type().map(str::to_owned);
                let file_name = field.file_name().map(str::to_owned);
                let Ok(data) = field.bytes().await else {
                    return error(400, "Error occurred while parsing request parameters.");
                };
                match name.as_str() {
                    "file" => file = Some((data.to_vec(), ctype.unwrap_or_default(), file_name)),
                    "description" => {
                        description = Some(String::from_utf8_lossy(&data).into_owned())
                    }
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => return error(400, "Error occurred while parsing request parameters."),
        }
    }
    let Some((bytes, ctype, file_name)) = file else {
        return error(422, "Validation failed: File can't be blank");
    };
    let video = SUPPORTED_VIDEO_TYPES.contains(&ctype.as_str());
    if bytes.is_empty()
        || !(video || SUPPORTED_IMAGE_TYPES.contains(&ctype.as_str()))
        || !sniffs_as(&bytes, &ctype)
    {
        return error(
            422,
            "Validation failed: File content type is invalid, File is invalid",
        );
    }
    if video && bytes.len() > VIDEO_SIZE_LIMIT {
        return error(
            422,
            "Validation failed: File file size must be less than 99 MB",
        );
    }
    if !video && bytes.len() > IMAGE_SIZE_LIMIT {
        return error(
            422,
            "Validation failed: File file size must be less than 16 MB",
        );
    }
    let mut st = s.lock().unwrap();
    // Videos are always processed in the background (Mastodon 4.0+).
    let (processing, failure) = if video {
        (Some(st.video_polls), st.video_failure.clone())
    } else {
        (st.processing.pop_front().flatten(), None)
    };
    let upload = Upload {
        id: st.id(),
        account_id,
        bytes,
        content_type: ctype,
        file_name,
        description,
        processed: processing.is_none(),
        polls_left: processing.unwrap_or(0),
        failure,
        failed: false,
        status_id: None,
    };
    let body = media_json(&st, &upload);
    st.uploads.push(upload);
    json(if processing.is_none() { 200 } else { 202 }, body)
}

async fn get_media(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut st = s.lock().unwrap();
    st.poll_calls += 1;
    let t = match authed(&st, &headers, &["write:media"]) {
        Ok(t) => t,
        Err(r) => return r,
    };
    // As Mastodon: `current_account.media_attachments.where(status_id: nil).find(id)`.
    let Some(i) = st
        .uploads
        .iter()
        .position(|u| u.id == id && u.account_id == t.account_id && u.status_id.is_none())
    else {
        return error(404, "Record not found");
    };
    let upload = &mut st.uploads[i];
    let code = if upload.processed {
        200
    } else if upload.failed {
        422
    } else if upload.polls_left > 0 {
        upload.polls_left -= 1;
        206
    } else if upload.failure.is_some() {
        upload.failed = true;
        422
    } else {
        upload.processed = true;
        200
    };
    if code == 422 {
        let message = upload.failure.clone().unwrap_or_default();
        return error(422, &message);
    }
    let body = media_json(&st, &st.uploads[i]);
    json(code, body)
}

async fn create_status(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = s.lock().unwrap();
    st.create_calls += 1;
    let t = match authed(&st, &headers, &["write:statuses"]) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let p = match params(&headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|k| !k.is_empty());
    if let Some(key) = &key {
        let now = Instant::now();
        st.idempotency
            .retain(|_, (_, at)| now.duration_since(*at) < IDEMPOTENCY_TTL);
        if let Some((id, _)) = st.idempotency.get(&(t.account_id.clone(), key.clone())) {
            let post = st.posts.iter().find(|p| &p.id == id).cloned();
            if let Some(post) = post {
                return json(200, status_json(&st, &post));
            }
        }
    }
    let text = match p.get("status") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return error(400, "status must be a string"),
    };
    let media_ids: Vec<String> = match p.get("media_ids") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => {
            let mut ids = vec![];
            for item in items {
                match item {
                    Value::String(s) => ids.push(s.clone()),
                    Value::Number(n) => ids.push(n.to_string()),
                    _ => return error(400, "media_ids must be an array of ids"),
                }
            }
            ids
        }
        Some(_) => return error(400, "media_ids must be an array of ids"),
    };
    let visibility = match p.get("visibility") {
        None | Some(Value::Null) => "public".to_owned(),
        Some(Value::String(v))
            if ["public", "unlisted", "private", "direct"].contains(&v.as_str()) =>
        {
            v.clone()
        }
        Some(_) => {
            return error(
                422,
                "Validation failed: Visibility is not included in the list",
            );
        }
    };
    if text.trim().is_empty() && media_ids.is_empty() {
        return error(422, "Validation failed: Text can't be blank");
    }
    if text.chars().count() > MAX_CHARACTERS {
        return error(
            422,
            &format!("Validation failed: Text character limit of {MAX_CHARACTERS} exceeded"),
        );
    }
    if media_ids.len() > MAX_MEDIA_ATTACHMENTS {
        return error(
            422,
            &format!("Cannot attach more than {MAX_MEDIA_ATTACHMENTS} files"),
        );
    }
    let missing: Vec<&String> = media_ids
        .iter()
        .filter(|id| {
            !st.uploads
                .iter()
                .any(|u| &&u.id == id && u.account_id == t.account_id && u.status_id.is_none())
        })
        .collect();
    if !missing.is_empty() {
        let ids: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return error(
            422,
            &format!(
                "Media {} not found or already attached to another post",
                ids.join(", ")
            ),
        );
    }
    if media_ids
        .iter()
        .any(|id| st.uploads.iter().any(|u| &u.id == id && !u.processed))
    {
        return error(
            422,
            "Cannot attach files that have not finished processing. Try again in a moment!",
        );
    }
    let id = st.id();
    for u in st.uploads.iter_mut() {
        if media_ids.contains(&u.id) {
            u.status_id = Some(id.clone());
        }
    }
    let application = t
        .client_id
        .as_ref()
        .and_then(|cid| st.apps.iter().find(|a| &a.client_id == cid))
        .map(|a| a.name.clone());
    let post = Post {
        id: id.clone(),
        account_id: t.account_id.clone(),
        text,
        media_ids,
        visibility,
        created_at: SystemTime::now(),
        idempotency_key: key.clone(),
        application,
    };
    st.posts.push(post.clone());
    if let Some(key) = key {
        st.idempotency
            .insert((t.account_id, key), (id, Instant::now()));
    }
    json(200, status_json(&st, &post))
}

async fn account_statuses(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = s.lock().unwrap();
    let viewer = if headers.contains_key(header::AUTHORIZATION) {
        match authed(&st, &headers, &["read:statuses"]) {
            Ok(t) => Some(t.account_id),
            Err(r) => return r,
        }
    } else {
        None
    };
    if st.account(&id).is_none() {
        return error(404, "Record not found");
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) => n.clamp(1, 40),
        Some(Err(_)) => return error(400, "limit must be an integer"),
    };
    let bound = |name: &str| -> Result<Option<u64>, Response> {
        match q.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| error(400, &format!("{name} must be an id"))),
        }
    };
    let (max_id, since_id, min_id) = match (bound("max_id"), bound("since_id"), bound("min_id")) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let mine = viewer.as_deref() == Some(id.as_str());
    let mut found: Vec<&Post> = st
        .posts
        .iter()
        .filter(|p| p.account_id == id)
        .filter(|p| mine || matches!(p.visibility.as_str(), "public" | "unlisted"))
        .filter(|p| {
            let n: u64 = p.id.parse().unwrap_or(0);
            max_id.is_none_or(|m| n < m)
                && since_id.is_none_or(|m| n > m)
                && min_id.is_none_or(|m| n > m)
        })
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.id.parse::<u64>().unwrap_or(0)));
    if min_id.is_some() {
        // min_id pages forward: the statuses just after it, still newest first.
        let skip = found.len().saturating_sub(limit);
        found.drain(..skip);
    }
    found.truncate(limit);
    let body: Vec<Value> = found.iter().map(|p| status_json(&st, p)).collect();
    json(200, Value::Array(body))
}

async fn status_source(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let st = s.lock().unwrap();
    let t = match authed(&st, &headers, &["read:statuses"]) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match st
        .posts
        .iter()
        .find(|p| p.id == id && p.account_id == t.account_id)
    {
        Some(p) => json(200, j!({ "id": p.id, "text": p.text, "spoiler_text": "" })),
        None => error(404, "Record not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_forms() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_millis(1_575_545_687_196)),
            "2019-12-05T11:34:47.196Z"
        );
        assert_eq!(
            parse_form(b"a=1+2&b%5B%5D=x%26y&c=").unwrap(),
            vec![
                ("a".into(), "1 2".into()),
                ("b[]".into(), "x&y".into()),
                ("c".into(), "".into())
            ]
        );
        assert!(parse_form(b"a=%zz").is_none());
        assert!(has_scope(&["write".into()], &["write:media"]));
        assert!(!has_scope(&["read".into()], &["write:media"]));
        assert!(has_scope(
            &["profile".into()],
            &["read:accounts", "profile"]
        ));
    }

    #[test]
    fn rendering_is_html() {
        assert_eq!(
            render("https://x", "a & b\nc\n\nd"),
            "<p>a &amp; b<br />c</p><p>d</p>"
        );
        assert!(render("https://x", "@bob@example.org hi").contains("@<span>bob</span>"));
    }
}
