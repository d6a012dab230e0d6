//! A fake Bluesky PDS: the XRPC methods the connector uses, checked against their lexicons.
//!
//! - `POST com.atproto.server.createSession` {identifier, password}: the account's handle or DID
//!   with its app password (a session of scope `com.atproto.appPass`) or its main password
//!   (`com.atproto.access`); anything else is `401 AuthenticationRequired`. Answers JWT-shaped
//!   tokens (header.payload.signature, base64url, with `scope`, `sub`, `iat`, `exp`) and a DID
//!   document naming this fake as the account's PDS.
//! - `POST com.atproto.server.refreshSession` with `Bearer <refreshJwt>` only: an access JWT is
//!   `400 InvalidToken`, a used, revoked or unknown one `400 ExpiredToken`; the pair rotates.
//! - `POST com.atproto.server.deleteSession` with `Bearer <refreshJwt>`: ends the session.
//! - `GET com.atproto.identity.resolveHandle?handle=`: `{did}` or `400 HandleNotFound`.
//! - `POST com.atproto.repo.uploadBlob`: a valid access JWT, a `Content-Type` that is an image type
//!   and matches the bytes, a non-empty body; answers `{blob: {$type: blob, ref: {$link}, mimeType,
//!   size}}`.
//! - `POST com.atproto.repo.createRecord`: a valid access JWT, JSON; `repo` = the session's DID,
//!   `collection` = `app.bsky.feed.post`, `rkey` (if given) a TID, `record` with `$type`,
//!   `text` (≤ 300 graphemes, ≤ 3000 bytes), `createdAt` (RFC 3339 with a time zone), `facets`
//!   whose byte ranges lie inside the text on character boundaries with known features, `embed`
//!   `app.bsky.embed.images` of 1 to 4 images, each `{alt, image}` naming a blob this account
//!   uploaded with its type and size, at most 1,000,000 bytes. An existing rkey gets the `500`
//!   the reference PDS answers today.
//! - `GET com.atproto.repo.getRecord?repo&collection&rkey`: the record or `400 RecordNotFound`.
//! - `GET com.atproto.server.getServiceAuth?aud&lxm&exp`: a valid access JWT; `aud` a DID
//!   (`400 InvalidRequest` otherwise), `exp` not past and at most an hour ahead (`400
//!   BadExpiration`, as the reference PDS); answers `{token}`, a JWT {iss, aud, lxm, exp}.
//!   This PDS's own DID is [`FakeBluesky::service_did`] (`did:web:127.0.0.1%3A<port>`).
//!
//! A fake video service, on its own port ([`FakeBluesky::video_url`]), as `video.bsky.app`
//! (lexicons `app.bsky.video.*`, docs.bsky.app "Uploading Video"):
//! - `POST app.bsky.video.uploadVideo?did&name`: `Bearer` a service token from `getServiceAuth`
//!   with `aud` this PDS's DID, `lxm` `com.atproto.repo.uploadBlob`, not expired, `iss` = `did`
//!   (`401` otherwise); `Content-Type: video/mp4` and MP4 bytes (an `ftyp` box). Answers
//!   `{jobStatus: {jobId, did, state: JOB_STATE_CREATED}}`; the same bytes again for the same
//!   account answer `409` with the bare `{did, error: already_exists, jobId, message, state:
//!   JOB_STATE_COMPLETED}` the service answers (bluesky-social/atproto#3097).
//! - `GET app.bsky.video.getJobStatus?jobId` (no auth): each poll moves the job on through
//!   `JOB_STATE_ENCODING`, `_SCANNING`, `_UPLOADING` until `JOB_STATE_COMPLETED` after
//!   [`FakeBluesky::set_processing_polls`] polls (then the blob is stored on the PDS for the
//!   account, `video/mp4`), or `JOB_STATE_FAILED` with `error` and `message` when told to fail;
//!   an unknown job is `404`.
//! - `createRecord` then takes `app.bsky.embed.video` {video: such a blob (`video/mp4`, at most
//!   300,000,000 bytes), aspectRatio? {width ≥ 1, height ≥ 1}, alt?, presentation?, captions?
//!   (≤ 20)}.
//!
//! Access JWTs are checked against those this fake issued and their expiry (`400 ExpiredToken`
//! as the PDS answers); errors are XRPC `{"error", "message"}` bodies.

// Request checks return the XRPC error response itself as their `Err`.
#![allow(clippy::result_large_err)]

use crate::common::{Fake, Faults, bearer, json, token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use unicode_segmentation::UnicodeSegmentation;

pub const HANDLE: &str = "alice.test";
pub const DID: &str = "did:plc:fakealice234567abcdefghij";
/// The account's app password (sessions of scope `com.atproto.appPass`).
pub const APP_PASSWORD: &str = "abcd-efgh-ijkl-mnop";
/// The account's main password (sessions of scope `com.atproto.access`).
pub const MAIN_PASSWORD: &str = "correct horse battery staple";
pub const POST_COLLECTION: &str = "app.bsky.feed.post";
pub const MAX_IMAGE_BYTES: usize = 1_000_000;
/// `app.bsky.embed.video`: `maxSize`.
pub const MAX_VIDEO_BYTES: u64 = 300_000_000;
/// The `lxm` of the service tokens the video service takes.
pub const UPLOAD_BLOB_LXM: &str = "com.atproto.repo.uploadBlob";
const TID_ALPHABET: &[u8] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A post the fake holds.
#[derive(Debug, Clone)]
pub struct FakePost {
    pub did: String,
    pub rkey: String,
    pub uri: String,
    pub cid: String,
    pub record: Value,
}

/// An uploaded blob.
#[derive(Debug, Clone)]
pub struct FakeBlob {
    pub did: String,
    pub cid: String,
    pub mime: String,
    pub bytes: Vec<u8>,
}

struct Session {
    did: String,
    exp: u64,
}

/// A service auth token issued by `getServiceAuth`.
#[derive(Debug, Clone)]
struct ServiceToken {
    iss: String,
    aud: String,
    lxm: Option<String>,
    exp: u64,
}

/// A video processing job of the fake video service.
#[derive(Debug, Clone)]
pub struct FakeVideoJob {
    pub job_id: String,
    pub did: String,
    pub name: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
    /// `getJobStatus` calls so far.
    pub polls: usize,
    /// Polls before the job ends.
    pub needs_polls: usize,
    /// `Some(message)`: the job fails.
    pub fail: Option<String>,
    /// The blob, once completed.
    pub blob: Option<Value>,
}

struct St {
    base_url: String,
    access: HashMap<String, Session>,
    /// Live refresh JWTs and their account.
    refresh: HashMap<String, String>,
    /// Refresh JWTs used, rotated or revoked.
    dead_refresh: HashSet<String>,
    posts: Vec<FakePost>,
    create_calls: usize,
    blobs: Vec<FakeBlob>,
    handles: HashMap<String, String>,
    access_ttl_secs: u64,
    sessions_created: usize,
    sessions_deleted: usize,
    refreshes: usize,
    /// This PDS's did:web.
    service_did: String,
    service_tokens: HashMap<String, ServiceToken>,
    jobs: Vec<FakeVideoJob>,
    video_uploads: usize,
    processing_polls: usize,
    fail_next_video: Option<String>,
}

type Shared = Arc<Mutex<St>>;

pub struct FakeBluesky {
    pub url: String,
    pub faults: Faults,
    /// The fake video service's base URL.
    pub video_url: String,
    /// Scripted failures of the video service.
    pub video_faults: Faults,
    state: Shared,
    _fake: Fake,
    _video: Fake,
}

impl FakeBluesky {
    pub async fn start() -> Self {
        let mut handles = HashMap::new();
        handles.insert(HANDLE.to_owned(), DID.to_owned());
        let state: Shared = Arc::new(Mutex::new(St {
            base_url: String::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            dead_refresh: HashSet::new(),
            posts: Vec::new(),
            create_calls: 0,
            blobs: Vec::new(),
            handles,
            access_ttl_secs: 2 * 3600,
            sessions_created: 0,
            sessions_deleted: 0,
            refreshes: 0,
            service_did: String::new(),
            service_tokens: HashMap::new(),
            jobs: Vec::new(),
            video_uploads: 0,
            processing_polls: 2,
            fail_next_video: None,
        }));
        let router = Router::new()
            .route(
                "/xrpc/com.atproto.server.createSession",
                post(create_session),
            )
            .route(
                "/xrpc/com.atproto.server.refreshSession",
                post(refresh_session),
            )
            .route(
                "/xrpc/com.atproto.server.deleteSession",
                post(delete_session),
            )
            .route(
                "/xrpc/com.atproto.identity.resolveHandle",
                get(resolve_handle),
            )
            .route("/xrpc/com.atproto.repo.uploadBlob", post(upload_blob))
            .route("/xrpc/com.atproto.repo.createRecord", post(create_record))
            .route("/xrpc/com.atproto.repo.getRecord", get(get_record))
            .route(
                "/xrpc/com.atproto.server.getServiceAuth",
                get(get_service_auth),
            )
            .fallback(|| async {
                xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")
            })
            .layer(DefaultBodyLimit::max(10 * 1024 * 1024))
            .with_state(state.clone());
        let faults = Faults::default();
        let fake = Fake::serve(router, faults.clone()).await;
        let video_router = Router::new()
            .route("/xrpc/app.bsky.video.uploadVideo", post(upload_video))
            .route("/xrpc/app.bsky.video.getJobStatus", get(get_job_status))
            .fallback(|| async {
                xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")
            })
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(state.clone());
        let video_faults = Faults::default();
        let video = Fake::serve(video_router, video_faults.clone()).await;
        {
            let mut st = state.lock().unwrap();
            st.base_url = fake.url.clone();
            let hostport = fake.url.trim_start_matches("http://").replace(':', "%3A");
            st.service_did = format!("did:web:{hostport}");
        }
        Self {
            url: fake.url.clone(),
            faults,
            video_url: video.url.clone(),
            video_faults,
            state,
            _fake: fake,
            _video: video,
        }
    }

    /// This PDS's DID (the `aud` of service tokens meant for it).
    pub fn service_did(&self) -> String {
        self.st().service_did.clone()
    }
    /// `uploadVideo` requests that reached the video service with a valid token (409s too).
    pub fn video_uploads(&self) -> usize {
        self.st().video_uploads
    }
    /// The video service's jobs, in order.
    pub fn video_jobs(&self) -> Vec<FakeVideoJob> {
        self.st().jobs.clone()
    }
    /// `getJobStatus` polls a job created from now on takes to end (default 2).
    pub fn set_processing_polls(&self, polls: usize) {
        self.st().processing_polls = polls;
    }
    /// The next job created fails (`JOB_STATE_FAILED`) with this message.
    pub fn fail_next_video(&self, message: &str) {
        self.st().fail_next_video = Some(message.to_owned());
    }
    /// Every unfinished job ends `polls` polls from now.
    pub fn finish_video_jobs_after(&self, polls: usize) {
        for job in self.st().jobs.iter_mut() {
            job.needs_polls = job.polls + polls;
        }
    }
    /// The service forgets every job (as after their retention); processed videos stay known.
    pub fn forget_video_jobs(&self) {
        for job in self.st().jobs.iter_mut() {
            job.job_id = format!("forgotten-{}", job.job_id);
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, St> {
        self.state.lock().unwrap()
    }

    /// Posts created, in order.
    pub fn posts(&self) -> Vec<FakePost> {
        self.st().posts.clone()
    }
    /// `createRecord` requests that reached the fake (valid or not).
    pub fn create_calls(&self) -> usize {
        self.st().create_calls
    }
    /// Blobs uploaded, in order.
    pub fn blobs(&self) -> Vec<FakeBlob> {
        self.st().blobs.clone()
    }
    pub fn sessions_created(&self) -> usize {
        self.st().sessions_created
    }
    /// Sessions ended with `deleteSession`.
    pub fn sessions_deleted(&self) -> usize {
        self.st().sessions_deleted
    }
    pub fn refreshes(&self) -> usize {
        self.st().refreshes
    }
    /// Whether this access JWT was issued here and has not expired.
    pub fn access_token_valid(&self, token: &str) -> bool {
        self.st()
            .access
            .get(token)
            .is_some_and(|s| s.exp > now_secs())
    }
    /// Whether this refresh JWT is live.
    pub fn refresh_token_valid(&self, token: &str) -> bool {
        self.st().refresh.contains_key(token)
    }
    /// Every access JWT issued so far stops working (as if its `exp` had passed).
    pub fn expire_access_tokens(&self) {
        for s in self.st().access.values_mut() {
            s.exp = 0;
        }
    }
    /// Every live refresh JWT is revoked (the app password was deleted).
    pub fn revoke_refresh_tokens(&self) {
        let mut st = self.st();
        let live: Vec<String> = st.refresh.drain().map(|(t, _)| t).collect();
        st.dead_refresh.extend(live);
    }
    /// Lifetime of access JWTs issued from now on.
    pub fn set_access_ttl(&self, secs: u64) {
        self.st().access_ttl_secs = secs;
    }
    /// Another handle `resolveHandle` knows.
    pub fn add_handle(&self, handle: &str, did: &str) {
        self.st()
            .handles
            .insert(handle.to_ascii_lowercase(), did.to_owned());
    }
    /// Puts a record at a key directly (e.g. another client's post).
    pub fn insert_post(&self, rkey: &str, record: Value) {
        let mut st = self.st();
        let uri = format!("at://{DID}/{POST_COLLECTION}/{rkey}");
        let cid = cid_of(record.to_string().as_bytes());
        st.posts.push(FakePost {
            did: DID.into(),
            rkey: rkey.into(),
            uri,
            cid,
            record,
        });
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn xrpc_error(status: u16, error: &str, message: &str) -> Response {
    json(status, json!({"error": error, "message": message}))
}

fn invalid(message: impl AsRef<str>) -> Response {
    xrpc_error(400, "InvalidRequest", message.as_ref())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn jwt(typ: &str, claims: Value) -> String {
    let header = json!({"typ": typ, "alg": "ES256K"});
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(token("sig").as_bytes())
    )
}

/// A CID-shaped string (CIDv1, raw, sha-256, base32) of the bytes.
fn cid_of(bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::from("bafkrei");
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in digest {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(b"abcdefghijklmnopqrstuvwxyz234567"[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(b"abcdefghijklmnopqrstuvwxyz234567"[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn is_tid(s: &str) -> bool {
    s.len() == 13
        && s.bytes().all(|b| TID_ALPHABET.contains(&b))
        && b"234567abcdefghij".contains(&s.as_bytes()[0])
}

fn new_tid() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let v = ((micros & ((1 << 53) - 1)) << 10) | (micros & 0x3FF);
    (0..13)
        .rev()
        .map(|i| TID_ALPHABET[((v >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// The atproto `datetime` format: RFC 3339 with a time zone (`Z` or `±hh:mm`).
fn is_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':'
            && rest[1..3].bytes().all(|d| d.is_ascii_digit())
            && rest[4..6].bytes().all(|d| d.is_ascii_digit()))
}

fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Response> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(invalid(format!(
            "Wrong request encoding (Content-Type): {ct}"
        )));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|_| invalid("Request body is not valid JSON"))?;
    if !v.is_object() {
        return Err(invalid("Input must be an object"));
    }
    Ok(v)
}

fn required_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, Response> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(format!("Input/{field} must be a string"))),
        None => Err(invalid(format!("Input must have the property \"{field}\""))),
    }
}

/// The DID of a valid access JWT in the request.
fn access_did(st: &St, headers: &HeaderMap) -> Result<String, Response> {
    let Some(t) = bearer(headers) else {
        return Err(xrpc_error(
            401,
            "AuthenticationRequired",
            "Authentication Required",
        ));
    };
    if st.refresh.contains_key(&t) || st.dead_refresh.contains(&t) {
        return Err(xrpc_error(400, "InvalidToken", "Invalid token type"));
    }
    match st.access.get(&t) {
        None => Err(xrpc_error(
            401,
            "InvalidToken",
            "Token could not be verified",
        )),
        Some(s) if s.exp <= now_secs() => Err(xrpc_error(400, "ExpiredToken", "Token has expired")),
        Some(s) => Ok(s.did.clone()),
    }
}

fn issue_session(st: &mut St, did: &str, scope: &str) -> Value {
    let now = now_secs();
    let exp = now + st.access_ttl_secs;
    let access = jwt(
        "at+jwt",
        json!({"scope": scope, "sub": did, "iat": now, "exp": exp, "aud": "did:web:fake.pds"}),
    );
    let refresh = jwt(
        "refresh+jwt",
        json!({"scope": "com.atproto.refresh", "sub": did, "iat": now,
               "exp": now + 90 * 24 * 3600, "aud": "did:web:fake.pds", "jti": token("jti")}),
    );
    st.access.insert(
        access.clone(),
        Session {
            did: did.to_owned(),
            exp,
        },
    );
    st.refresh.insert(refresh.clone(), did.to_owned());
    json!({
        "accessJwt": access,
        "refreshJwt": refresh,
        "handle": HANDLE,
        "did": did,
        "active": true,
    })
}

async fn create_session(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let v = match json_body(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (identifier, password) =
        match (required_str(&v, "identifier"), required_str(&v, "password")) {
            (Ok(i), Ok(p)) => (i, p),
            (Err(r), _) | (_, Err(r)) => return r,
        };
    let me = identifier.eq_ignore_ascii_case(HANDLE) || identifier == DID;
    let scope = match password {
        APP_PASSWORD if me => "com.atproto.appPass",
        MAIN_PASSWORD if me => "com.atproto.access",
        _ => {
            return xrpc_error(
                401,
                "AuthenticationRequired",
                "Invalid identifier or password",
            );
        }
    };
    let mut st = state.lock().unwrap();
    st.sessions_created += 1;
    let mut out = issue_session(&mut st, DID, scope);
    out["didDoc"] = json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": DID,
        "alsoKnownAs": [format!("at://{HANDLE}")],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": st.base_url,
        }],
    });
    out["email"] = json!("alice@example.com");
    out["emailConfirmed"] = json!(true);
    json(200, out)
}

async fn refresh_session(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(t) = bearer(&headers) else {
        return xrpc_error(401, "AuthenticationRequired", "Authentication Required");
    };
    let mut st = state.lock().unwrap();
    if st.access.contains_key(&t) {
        return xrpc_error(400, "InvalidToken", "Invalid token type");
    }
    let Some(did) = st.refresh.remove(&t) else {
        return xrpc_error(400, "ExpiredToken", "Token has been revoked");
    };
    st.dead_refresh.insert(t);
    st.refreshes += 1;
    let out = issue_session(&mut st, &did, "com.atproto.appPass");
    json(200, out)
}

async fn delete_session(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(t) = bearer(&headers) else {
        return xrpc_error(401, "AuthenticationRequired", "Authentication Required");
    };
    let mut st = state.lock().unwrap();
    if st.access.contains_key(&t) {
        return xrpc_error(400, "InvalidToken", "Invalid token type");
    }
    if st.refresh.remove(&t).is_none() {
        return xrpc_error(400, "ExpiredToken", "Token has been revoked");
    }
    st.dead_refresh.insert(t);
    st.sessions_deleted += 1;
    axum::http::StatusCode::OK.into_response()
}

async fn resolve_handle(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(handle) = q.get("handle") else {
        return invalid("Error: Params must have the property \"handle\"");
    };
    match state
        .lock()
        .unwrap()
        .handles
        .get(&handle.to_ascii_lowercase())
    {
        Some(did) => json(200, json!({"did": did})),
        None => xrpc_error(400, "HandleNotFound", "Unable to resolve handle"),
    }
}

async fn upload_blob(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = state.lock().unwrap();
    let did = match access_did(&st, &headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(ct) = headers.get("content-type").and_then(|v| v.to_str().ok()) else {
        return invalid("Missing Content-Type");
    };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if body.is_empty() {
        return invalid("Request body is empty");
    }
    if !ct.starts_with("image/") {
        return invalid(format!("This fake takes images only, not {ct}"));
    }
    if sniff(&body) != Some(ct.as_str()) {
        return invalid(format!(
            "The blob's bytes are not {ct} (Content-Type must match the content)"
        ));
    }
    let cid = cid_of(&body);
    st.blobs.push(FakeBlob {
        did,
        cid: cid.clone(),
        mime: ct.clone(),
        bytes: body.to_vec(),
    });
    json(
        200,
        json!({"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": ct, "size": body.len()}}),
    )
}

async fn create_record(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = state.lock().unwrap();
    st.create_calls += 1;
    let did = match access_did(&st, &headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let v = match json_body(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match check_create(&st, &did, &v) {
        Err(r) => r,
        Ok((rkey, record)) => {
            if st.posts.iter().any(|p| p.did == did && p.rkey == rkey) {
                // What the reference PDS answers today for a key that is taken
                // (bluesky-social/atproto#4725).
                return xrpc_error(500, "InternalServerError", "Internal Server Error");
            }
            let uri = format!("at://{did}/{POST_COLLECTION}/{rkey}");
            let cid = cid_of(record.to_string().as_bytes());
            st.posts.push(FakePost {
                did,
                rkey,
                uri: uri.clone(),
                cid: cid.clone(),
                record,
            });
            json(
                200,
                json!({"uri": uri, "cid": cid,
                       "commit": {"cid": cid_of(uri.as_bytes()), "rev": new_tid()},
                       "validationStatus": "valid"}),
            )
        }
    }
}

fn check_create(st: &St, did: &str, v: &Value) -> Result<(String, Value), Response> {
    let repo = required_str(v, "repo")?;
    if repo != did && !repo.eq_ignore_ascii_case(HANDLE) {
        return Err(invalid(format!(
            "Input/repo must be the authenticated account ({did}), not {repo}"
        )));
    }
    let collection = required_str(v, "collection")?;
    if collection != POST_COLLECTION {
        return Err(invalid(format!(
            "This fake holds {POST_COLLECTION} records only, not {collection}"
        )));
    }
    let rkey = match v.get("rkey") {
        None => new_tid(),
        Some(Value::String(k)) if is_tid(k) => k.clone(),
        Some(Value::String(k)) => {
            return Err(invalid(format!(
                "Invalid record key for {POST_COLLECTION} (must be a TID): {k}"
            )));
        }
        Some(_) => return Err(invalid("Input/rkey must be a string")),
    };
    if let Some(val) = v.get("validate")
        && !val.is_boolean()
    {
        return Err(invalid("Input/validate must be a boolean"));
    }
    let Some(record) = v.get("record").filter(|r| r.is_object()) else {
        return Err(invalid(
            "Input must have the property \"record\" (an object)",
        ));
    };
    let bad = |m: String| invalid(format!("Invalid {POST_COLLECTION} record: {m}"));
    if record.get("$type").and_then(Value::as_str) != Some(POST_COLLECTION) {
        return Err(bad(format!("Record/$type must be {POST_COLLECTION}")));
    }
    let text = match record.get("text") {
        Some(Value::String(t)) => t.as_str(),
        _ => return Err(bad("Record must have the property \"text\"".into())),
    };
    if text.len() > 3000 {
        return Err(bad(
            "Record/text must not be longer than 3000 characters".into()
        ));
    }
    if text.graphemes(true).count() > 300 {
        return Err(bad(
            "Record/text must not be longer than 300 graphemes".into()
        ));
    }
    match record.get("createdAt") {
        Some(Value::String(c)) if is_datetime(c) => {}
        Some(_) => {
            return Err(bad(
                "Record/createdAt must be an valid atproto datetime".into()
            ));
        }
        None => return Err(bad("Record must have the property \"createdAt\"".into())),
    }
    if let Some(facets) = record.get("facets") {
        check_facets(text, facets).map_err(bad)?;
    }
    if let Some(embed) = record.get("embed") {
        check_embed(st, did, embed).map_err(bad)?;
    }
    Ok((rkey, record.clone()))
}

fn check_facets(text: &str, facets: &Value) -> Result<(), String> {
    let Some(facets) = facets.as_array() else {
        return Err("Record/facets must be an array".into());
    };
    for (i, f) in facets.iter().enumerate() {
        let start = f.pointer("/index/byteStart").and_then(Value::as_u64);
        let end = f.pointer("/index/byteEnd").and_then(Value::as_u64);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(format!(
                "Record/facets/{i}/index must have integer byteStart and byteEnd"
            ));
        };
        let (start, end) = (start as usize, end as usize);
        if start >= end
            || end > text.len()
            || !text.is_char_boundary(start)
            || !text.is_char_boundary(end)
        {
            return Err(format!(
                "Record/facets/{i}/index [{start}, {end}) is not a byte range of the text"
            ));
        }
        let Some(features) = f.get("features").and_then(Value::as_array) else {
            return Err(format!("Record/facets/{i}/features must be an array"));
        };
        if features.is_empty() {
            return Err(format!("Record/facets/{i}/features must not be empty"));
        }
        for feature in features {
            let ok = match feature.get("$type").and_then(Value::as_str) {
                Some("app.bsky.richtext.facet#link") => feature
                    .get("uri")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.contains(':')),
                Some("app.bsky.richtext.facet#mention") => feature
                    .get("did")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.starts_with("did:")),
                Some("app.bsky.richtext.facet#tag") => feature
                    .get("tag")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty() && t.len() <= 640),
                _ => false,
            };
            if !ok {
                return Err(format!("Record/facets/{i}/features has an invalid feature"));
            }
        }
    }
    Ok(())
}

fn check_embed(st: &St, did: &str, embed: &Value) -> Result<(), String> {
    match embed.get("$type").and_then(Value::as_str) {
        Some("app.bsky.embed.images") => {}
        Some("app.bsky.embed.video") => return check_video_embed(st, did, embed),
        _ => {
            return Err(
                "Record/embed: this fake knows app.bsky.embed.images and app.bsky.embed.video only"
                    .into(),
            );
        }
    }
    let Some(images) = embed.get("images").and_then(Value::as_array) else {
        return Err("Record/embed must have the property \"images\"".into());
    };
    if images.is_empty() || images.len() > 4 {
        return Err("Record/embed/images must hold 1 to 4 images".into());
    }
    for (i, img) in images.iter().enumerate() {
        if !img.get("alt").is_some_and(Value::is_string) {
            return Err(format!(
                "Record/embed/images/{i} must have the property \"alt\""
            ));
        }
        let Some(blob) = img.get("image") else {
            return Err(format!(
                "Record/embed/images/{i} must have the property \"image\""
            ));
        };
        let link = blob.pointer("/ref/$link").and_then(Value::as_str);
        let mime = blob.get("mimeType").and_then(Value::as_str);
        let size = blob.get("size").and_then(Value::as_u64);
        if blob.get("$type").and_then(Value::as_str) != Some("blob") {
            return Err(format!(
                "Record/embed/images/{i}/image should be a blob ref"
            ));
        }
        let (Some(link), Some(mime), Some(size)) = (link, mime, size) else {
            return Err(format!(
                "Record/embed/images/{i}/image must have ref.$link, mimeType and size"
            ));
        };
        let Some(uploaded) = st.blobs.iter().find(|b| b.cid == link && b.did == did) else {
            return Err(format!(
                "Could not find blob: {link} (not uploaded by this account)"
            ));
        };
        if uploaded.mime != mime || uploaded.bytes.len() as u64 != size {
            return Err(format!(
                "Record/embed/images/{i}/image does not match the uploaded blob"
            ));
        }
        if !mime.starts_with("image/") {
            return Err(format!(
                "Record/embed/images/{i}/image mimeType must be image/*"
            ));
        }
        if size as usize > MAX_IMAGE_BYTES {
            return Err(format!(
                "Record/embed/images/{i}/image file too large ({size} > {MAX_IMAGE_BYTES})"
            ));
        }
    }
    Ok(())
}

async fn get_record(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(repo), Some(collection), Some(rkey)) =
        (q.get("repo"), q.get("collection"), q.get("rkey"))
    else {
        return invalid(
            "Error: Params must have the properties \"repo\", \"collection\" and \"rkey\"",
        );
    };
    if repo != DID && !repo.eq_ignore_ascii_case(HANDLE) {
        return invalid(format!("Could not find repo: {repo}"));
    }
    let uri = format!("at://{DID}/{collection}/{rkey}");
    let st = state.lock().unwrap();
    match st
        .posts
        .iter()
        .find(|p| collection == POST_COLLECTION && &p.rkey == rkey)
    {
        Some(p) => json(200, json!({"uri": p.uri, "cid": p.cid, "value": p.record})),
        None => xrpc_error(
            400,
            "RecordNotFound",
            &format!("Could not locate record: {uri}"),
        ),
    }
}

async fn get_service_auth(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = state.lock().unwrap();
    let did = match access_did(&st, &headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(aud) = q.get("aud") else {
        return invalid("Error: Params must have the property \"aud\"");
    };
    if !aud.starts_with("did:") || aud.len() > 2048 {
        return invalid("aud must be a valid atproto DID or did#serviceId reference");
    }
    let lxm = q.get("lxm").cloned();
    let now = now_secs();
    let exp = match q.get("exp") {
        None => now + 60,
        Some(e) => match e.parse::<u64>() {
            Err(_) => return invalid("Error: exp must be an integer"),
            Ok(e) if e < now => {
                return xrpc_error(400, "BadExpiration", "expiration is in past");
            }
            Ok(e) if e > now + 3600 => {
                return xrpc_error(
                    400,
                    "BadExpiration",
                    "cannot request a token with an expiration more than an hour in the future",
                );
            }
            Ok(e) if lxm.is_none() && e > now + 60 => {
                return xrpc_error(
                    400,
                    "BadExpiration",
                    "cannot request a method-less token with an expiration more than a minute in the future",
                );
            }
            Ok(e) => e,
        },
    };
    let token = jwt(
        "JWT",
        json!({"iss": did, "aud": aud, "lxm": lxm, "exp": exp, "iat": now, "jti": token("jti")}),
    );
    st.service_tokens.insert(
        token.clone(),
        ServiceToken {
            iss: did,
            aud: aud.clone(),
            lxm,
            exp,
        },
    );
    json(200, json!({"token": token}))
}

/// An MP4 (ISO BMFF) file: an `ftyp` box first.
fn is_mp4(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[4..8] == b"ftyp"
}

fn job_json(job: &FakeVideoJob, state: &str) -> Value {
    let mut v = json!({"jobId": job.job_id, "did": job.did, "state": state});
    if let Some(blob) = &job.blob {
        v["blob"] = blob.clone();
    }
    v
}

async fn upload_video(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap();
    let Some(t) = bearer(&headers) else {
        return xrpc_error(401, "AuthMissing", "Authentication Required");
    };
    let Some(service) = st.service_tokens.get(&t).cloned() else {
        // An access JWT (or anything else) is not a service token for this service.
        return xrpc_error(
            401,
            "InvalidToken",
            "could not verify the service auth token",
        );
    };
    if service.exp <= now_secs() {
        return xrpc_error(401, "ExpiredToken", "service auth token has expired");
    }
    if service.aud != st.service_did {
        return xrpc_error(
            401,
            "InvalidToken",
            &format!(
                "service auth token audience {} is not the account's PDS {}",
                service.aud, st.service_did
            ),
        );
    }
    if service.lxm.as_deref() != Some(UPLOAD_BLOB_LXM) {
        return xrpc_error(
            401,
            "InvalidToken",
            "service auth token lxm must be com.atproto.repo.uploadBlob",
        );
    }
    let (Some(did), Some(name)) = (q.get("did"), q.get("name")) else {
        return invalid("the did and name parameters are required");
    };
    if *did != service.iss {
        return xrpc_error(
            401,
            "InvalidToken",
            "did does not match the service auth token's issuer",
        );
    }
    if name.is_empty() {
        return invalid("name must not be empty");
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.split(';').next().unwrap_or("").trim() != "video/mp4" {
        return invalid(format!(
            "Wrong request encoding (Content-Type): {ct}, expected video/mp4"
        ));
    }
    if let Some(len) = headers.get("content-length").and_then(|v| v.to_str().ok())
        && len.parse::<usize>().ok() != Some(body.len())
    {
        return invalid("Content-Length does not match the body");
    }
    if body.is_empty() || !is_mp4(&body) {
        return invalid("the body is not an MP4 video");
    }
    st.video_uploads += 1;
    let sha = hex(&sha2::Sha256::digest(&body));
    if let Some(done) = st
        .jobs
        .iter()
        .find(|j| j.did == *did && j.sha256 == sha && j.blob.is_some())
    {
        return json(
            409,
            json!({"did": did, "error": "already_exists", "jobId": done.job_id,
                   "message": "Video already processed", "state": "JOB_STATE_COMPLETED"}),
        );
    }
    let fail = st.fail_next_video.take();
    let job = FakeVideoJob {
        job_id: token("job").replace('_', ""),
        did: did.clone(),
        name: name.clone(),
        sha256: sha,
        bytes: body.to_vec(),
        polls: 0,
        needs_polls: st.processing_polls,
        fail,
        blob: None,
    };
    let out = job_json(&job, "JOB_STATE_CREATED");
    st.jobs.push(job);
    json(200, json!({"jobStatus": out}))
}

async fn get_job_status(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(job_id) = q.get("jobId") else {
        return invalid("Error: Params must have the property \"jobId\"");
    };
    let mut guard = state.lock().unwrap();
    let st = &mut *guard;
    let Some(job) = st.jobs.iter_mut().find(|j| &j.job_id == job_id) else {
        return xrpc_error(404, "NotFound", "job not found");
    };
    job.polls += 1;
    if job.blob.is_some() {
        return json(
            200,
            json!({"jobStatus": job_json(job, "JOB_STATE_COMPLETED")}),
        );
    }
    if job.polls < job.needs_polls {
        const STATES: [&str; 3] = [
            "JOB_STATE_ENCODING",
            "JOB_STATE_SCANNING",
            "JOB_STATE_UPLOADING",
        ];
        let i = (job.polls - 1) * STATES.len() / job.needs_polls.max(1);
        let mut v = job_json(job, STATES[i.min(STATES.len() - 1)]);
        v["progress"] = json!(50);
        return json(200, json!({"jobStatus": v}));
    }
    if let Some(message) = &job.fail {
        let mut v = job_json(job, "JOB_STATE_FAILED");
        v["error"] = json!(format!("video processing error for job: {}", job.job_id));
        v["message"] = json!(message);
        return json(200, json!({"jobStatus": v}));
    }
    // Done: the processed video is stored on the PDS for the account (with the service token).
    let cid = cid_of(&job.bytes);
    let blob = json!({"$type": "blob", "ref": {"$link": cid}, "mimeType": "video/mp4",
                      "size": job.bytes.len()});
    job.blob = Some(blob);
    let out = job_json(job, "JOB_STATE_COMPLETED");
    let fake_blob = FakeBlob {
        did: job.did.clone(),
        cid,
        mime: "video/mp4".into(),
        bytes: job.bytes.clone(),
    };
    st.blobs.push(fake_blob);
    json(200, json!({"jobStatus": out}))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_video_embed(st: &St, did: &str, embed: &Value) -> Result<(), String> {
    let Some(blob) = embed.get("video") else {
        return Err("Record/embed must have the property \"video\"".into());
    };
    if blob.get("$type").and_then(Value::as_str) != Some("blob") {
        return Err("Record/embed/video should be a blob ref".into());
    }
    let link = blob.pointer("/ref/$link").and_then(Value::as_str);
    let mime = blob.get("mimeType").and_then(Value::as_str);
    let size = blob.get("size").and_then(Value::as_u64);
    let (Some(link), Some(mime), Some(size)) = (link, mime, size) else {
        return Err("Record/embed/video must have ref.$link, mimeType and size".into());
    };
    let Some(stored) = st.blobs.iter().find(|b| b.cid == link && b.did == did) else {
        return Err(format!(
            "Could not find blob: {link} (not stored for this account)"
        ));
    };
    if stored.mime != mime || stored.bytes.len() as u64 != size {
        return Err("Record/embed/video does not match the stored blob".into());
    }
    if mime != "video/mp4" {
        return Err(format!(
            "Record/embed/video mimeType must be video/mp4, not {mime}"
        ));
    }
    if size > MAX_VIDEO_BYTES {
        return Err(format!(
            "Record/embed/video file too large ({size} > {MAX_VIDEO_BYTES})"
        ));
    }
    if let Some(ratio) = embed.get("aspectRatio") {
        let w = ratio.get("width").and_then(Value::as_u64);
        let h = ratio.get("height").and_then(Value::as_u64);
        if !matches!((w, h), (Some(w), Some(h)) if w >= 1 && h >= 1) {
            return Err(
                "Record/embed/aspectRatio must have integer width and height of at least 1".into(),
            );
        }
    }
    if let Some(alt) = embed.get("alt")
        && !alt.is_string()
    {
        return Err("Record/embed/alt must be a string".into());
    }
    if let Some(p) = embed.get("presentation")
        && !p.is_string()
    {
        return Err("Record/embed/presentation must be a string".into());
    }
    if let Some(c) = embed.get("captions")
        && c.as_array().is_none_or(|c| c.len() > 20)
    {
        return Err("Record/embed/captions must be an array of at most 20".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_and_tids() {
        assert!(is_datetime("2025-03-01T12:00:00.123Z"));
        assert!(is_datetime("2025-03-01T12:00:00+01:00"));
        assert!(!is_datetime("2025-03-01 12:00:00Z"));
        assert!(!is_datetime("2025-03-01T12:00:00"));
        assert!(!is_datetime("2025-13-01T12:00:00Z"));
        assert!(is_tid(&new_tid()));
        assert!(cid_of(b"x").starts_with("bafkrei") && cid_of(b"x").len() == 59);
    }
}
