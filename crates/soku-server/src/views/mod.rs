//! What the API answers: typed views that are both the JSON response bodies and their schema in
//! the OpenAPI document. Services return them; handlers serialise them.

use crate::json::{JSON_UTF8, Json};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use soku_core::accounts::test_account_id;
use soku_core::model::User;
use soku_core::platform::Platform;
use soku_core::posts::TargetStatus;
use soku_core::queue::{Account, SandboxPost, SubmissionRecord, TargetRecord};
use soku_core::time::rfc3339_millis;
use utoipa::ToSchema;

mod keys;
pub use keys::{AuditEventView, AuditPage, CreatedKey, KeyList, KeyListing};

/// The body of every non-2xx response.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error` or `api_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Stable, snake_case; clients branch on it.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    /// `req_` and 12 lower-case letters or digits; also in the `X-Request-ID` header.
    pub request_id: String,
    /// What went wrong, e.g. `{"field": "name", "reason": "too_long"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// A submission and the state of each of its targets.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// Only in the answer to `POST /v1/posts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_submission_id: Option<String>,
    pub id: String,
    /// scheduled, queued, publishing, published, partially_published, failed, canceled
    pub status: &'static str,
    /// `live` or `test`.
    pub mode: &'static str,
    pub created_at: String,
    pub scheduled_time: Option<String>,
    /// The `post` object as it was sent.
    #[schema(value_type = soku_core::posts::PostRequest)]
    pub post: Value,
    pub targets: Vec<Target>,
}

impl Submission {
    pub fn of(s: &SubmissionRecord) -> Self {
        let post = match serde_json::from_str(&s.post_json).unwrap_or(Value::Null) {
            Value::Object(mut o) => {
                o.remove("_options");
                Value::Object(o)
            }
            other => other,
        };
        Self {
            post_submission_id: None,
            id: s.id.clone(),
            status: s.status.as_str(),
            mode: s.mode.as_str(),
            created_at: rfc3339_millis(s.created_at),
            scheduled_time: s.scheduled_at.map(rfc3339_millis),
            post,
            targets: s.targets.iter().map(Target::of).collect(),
        }
    }
}

/// Where one copy of the post goes, and how far it got.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// `platform:accountId`
    pub target_id: String,
    pub platform: &'static str,
    pub account_id: String,
    /// scheduled, queued, publishing, published, failed, unknown, canceled
    pub status: &'static str,
    pub attempts: i64,
    pub platform_post_id: Option<String>,
    pub platform_post_url: Option<String>,
    pub error: Option<TargetError>,
    pub published_at: Option<String>,
    /// The target's own text (spec 8.2), which it publishes instead of `post.content.text`;
    /// absent when it publishes the post's text, `""` when it publishes none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// When the engine will next try this target: the scheduled time while `scheduled`, the
    /// time a retry is due while `queued` after a retryable failure (or the submission time
    /// before the first attempt). A time in the past means the attempt is due and waits for a
    /// worker. `null` in every other status.
    pub next_attempt_at: Option<String>,
}

impl Target {
    pub fn of(t: &TargetRecord) -> Self {
        Self {
            target_id: format!("{}:{}", t.platform, t.account_id),
            platform: t.platform.as_str(),
            account_id: t.account_id.clone(),
            status: t.status.as_str(),
            attempts: t.attempts,
            platform_post_id: t.platform_post_id.clone(),
            platform_post_url: t.platform_post_url.clone(),
            error: t.error.as_ref().map(|e| TargetError {
                code: e.code.clone(),
                message: e.message.clone(),
                platform_error: e.platform_error.clone(),
            }),
            published_at: t.published_at.map(rfc3339_millis),
            text: t.text.clone(),
            next_attempt_at: matches!(t.status, TargetStatus::Scheduled | TargetStatus::Queued)
                .then(|| rfc3339_millis(t.due_at)),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetError {
    pub code: String,
    pub message: String,
    /// The platform's own answer, as received.
    pub platform_error: Option<String>,
}

/// Marks the replay of an idempotent request's first answer.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The answer to an accepted post, as stored with its idempotency key: the first answer, or
/// the same bytes again for a retry.
pub struct Accepted {
    pub status: u16,
    /// The JSON of a `Submission` with its `postSubmissionId`.
    pub body: Vec<u8>,
    /// A retry answered with the first request's response (`Idempotent-Replayed: true`).
    pub replayed: bool,
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        r.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, JSON_UTF8);
        if self.replayed {
            r.headers_mut().insert(
                IDEMPOTENT_REPLAYED.clone(),
                HeaderValue::from_static("true"),
            );
        }
        r
    }
}

/// A page of the caller's submissions, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionPage {
    pub posts: Vec<Submission>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// A connected account as the API shows it (never its tokens).
#[derive(Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: String,
    pub platform: &'static str,
    pub account_id: String,
    pub display_name: Option<String>,
    pub username: Option<String>,
    /// `active`, or why the account cannot publish.
    pub status: &'static str,
    pub is_default: bool,
    pub token_expires_at: Option<String>,
    pub created_at: String,
    /// Test mode's accounts: `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulated: Option<bool>,
}

impl AccountView {
    pub fn of(a: &Account) -> Self {
        Self {
            id: a.id.clone(),
            platform: a.platform.as_str(),
            account_id: a.account_id.clone(),
            display_name: a.display_name.clone(),
            username: a.username.clone(),
            status: a.status.as_str(),
            is_default: a.is_default,
            token_expires_at: a.token_expires_at.map(rfc3339_millis),
            created_at: rfc3339_millis(a.created_at),
            simulated: None,
        }
    }

    /// The simulated account of `platform` that test mode publishes to.
    pub fn simulated(platform: Platform, user: &User) -> Self {
        Self {
            id: test_account_id(platform),
            platform: platform.as_str(),
            account_id: test_account_id(platform),
            display_name: Some(format!("Simulated {}", platform.display_name())),
            username: Some(test_account_id(platform)),
            status: "active",
            is_default: true,
            token_expires_at: None,
            created_at: rfc3339_millis(user.created_at),
            simulated: Some(true),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountView>,
}

/// An account just connected: `account`, and every account the same authorization connected
/// in `accounts` (a Facebook login may grant several Pages; `account` is the first).
#[derive(Serialize, ToSchema)]
pub struct ConnectedAccount {
    pub account: AccountView,
    pub accounts: Vec<AccountView>,
}

impl ConnectedAccount {
    /// The view of `accounts`, which holds at least one.
    pub fn of(accounts: &[Account]) -> Self {
        let accounts: Vec<AccountView> = accounts.iter().map(AccountView::of).collect();
        Self {
            account: accounts[0].clone(),
            accounts,
        }
    }
}

/// An authorization started: send the user to `authorizationUrl`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationStarted {
    pub platform: &'static str,
    pub authorization_url: String,
    /// The authorization must be completed before this time.
    pub expires_at: String,
}

/// The answer to a connect request.
pub enum Connected {
    /// OAuth: send the user to the authorization URL (200).
    Started(AuthorizationStarted),
    /// Credentials: the account is connected (201).
    Account(AccountView),
}

impl IntoResponse for Connected {
    fn into_response(self) -> Response {
        match self {
            Connected::Started(started) => Json(started).into_response(),
            Connected::Account(account) => (
                StatusCode::CREATED,
                Json(ConnectedAccount {
                    accounts: vec![account.clone()],
                    account,
                }),
            )
                .into_response(),
        }
    }
}

/// What a simulated platform received.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxPostView {
    pub id: String,
    pub submission_id: String,
    pub target_id: String,
    pub text: Option<String>,
    /// What the platform received of each of the post's files: its hosted `url`, `mediaId`,
    /// `kind`, `mimeType`, `size`, `sha256`, `width`, `height` and `durationSeconds`.
    #[schema(value_type = Vec<Object>)]
    pub media: Value,
    /// The options of `post.options` for this platform that the platform received (spec 8.2),
    /// in the request's field names; `{}` for none.
    #[schema(value_type = Object)]
    pub options: Value,
    pub received_at: String,
    /// How many times the platform was asked to create this post.
    pub create_count: i64,
}

impl SandboxPostView {
    pub fn of(p: &SandboxPost) -> Self {
        Self {
            id: p.id.clone(),
            submission_id: p.submission_id.clone(),
            target_id: p.target_id.clone(),
            text: p.text.clone(),
            media: serde_json::from_str(&p.media_json).unwrap_or(Value::Null),
            options: serde_json::from_str(&p.options_json).unwrap_or(Value::Null),
            received_at: rfc3339_millis(p.received_at),
            create_count: p.create_count,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxPostList {
    pub posts: Vec<SandboxPostView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// A platform the dashboard offers to connect.
#[derive(Serialize, ToSchema)]
pub struct Connectable {
    pub platform: &'static str,
    pub name: &'static str,
    /// `oauth` or `credentials`.
    pub method: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectableList {
    pub platforms: Vec<Connectable>,
}

/// An ID token of the built-in issuer: from a password sign-in, or for the dashboard page.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdTokenIssued {
    /// Send as `Authorization: Bearer <idToken>`.
    pub id_token: String,
    /// Seconds the token is valid for.
    pub expires_in: u64,
    pub user_id: String,
}

/// `GET /healthz`: the process is up.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

/// `GET /readyz`: the database answers.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// `GET /v1/me`: who an API key belongs to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    pub user_id: String,
    pub key: MeKey,
    pub subscription: MeSubscription,
    /// `default`, `authenticated`, `premium` or `admin`.
    pub rate_limit_tier: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct MeKey {
    pub id: String,
    pub name: Option<String>,
    /// `live` or `test`.
    pub mode: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeSubscription {
    pub status: String,
    pub current_period_end: String,
}

/// The dashboard's overview: who is signed in, and whether their subscription gives access.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub user: OverviewUser,
    pub subscription: Option<OverviewSubscription>,
    pub has_access: bool,
}

#[derive(Serialize)]
pub struct OverviewUser {
    pub id: String,
    pub email: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverviewSubscription {
    pub status: &'static str,
    pub current_period_end: String,
}

/// One of the signed-in user's dashboard sessions (the Sessions page).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    /// A short description of the browser and system, from the `User-Agent` ("Firefox on
    /// Linux").
    pub device: String,
    /// The full `User-Agent` (at most 200 characters), if the browser sent one.
    pub user_agent: Option<String>,
    /// The client's address when the session was last seen.
    pub ip: Option<String>,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// The signed-in user's active sessions, newest first.
#[derive(Serialize)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// How many sessions "Sign out everywhere" ended.
#[derive(Serialize)]
pub struct SessionsRevoked {
    pub revoked: u64,
}

/// A hosted file (spec 8.1).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaView {
    /// `med_` and 24 letters or digits.
    pub id: String,
    /// Where the file is served, without authentication: `<base>/media/<id>/<file>`.
    pub url: String,
    /// `image` or `video`.
    pub kind: &'static str,
    /// From the file's bytes: image/jpeg, image/png, image/gif, image/webp, video/mp4,
    /// video/quicktime, video/webm or video/x-matroska.
    pub mime_type: &'static str,
    /// Bytes.
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Videos only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Where an imported file came from (`POST /v1/media`); absent for uploads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub created_at: String,
}

impl MediaView {
    pub fn of(m: &soku_core::media::MediaRecord, base_url: &str) -> Self {
        let f = &m.facts;
        Self {
            id: m.id.clone(),
            url: soku_media::library::hosted_url(base_url, &m.id, &m.file_name),
            kind: f.kind.as_str(),
            mime_type: f.mime,
            size: f.size,
            sha256: m.sha256.clone(),
            width: f.width,
            height: f.height,
            duration_seconds: f.duration_ms.map(|ms| ms as f64 / 1000.0),
            source_url: m.source_url.clone(),
            created_at: rfc3339_millis(m.created_at),
        }
    }
}

/// A created (201) or replayed (201, `Idempotent-Replayed: true`) file.
pub struct MediaCreated {
    pub media: MediaView,
    pub replayed: bool,
}

impl IntoResponse for MediaCreated {
    fn into_response(self) -> Response {
        let mut r = (StatusCode::CREATED, Json(self.media)).into_response();
        if self.replayed {
            r.headers_mut().insert(
                IDEMPOTENT_REPLAYED.clone(),
                HeaderValue::from_static("true"),
            );
        }
        r
    }
}

/// A page of the caller's files, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaPageView {
    pub media: Vec<MediaView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}
