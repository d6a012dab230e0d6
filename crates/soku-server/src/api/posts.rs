//! `POST /v1/posts`, `GET /v1/posts/{id}`, `GET /v1/posts`, `DELETE /v1/posts/{id}`
//! (spec 6.1 and 6.2).

use super::docs::{ApiKeyErrors, BodyErrors, CommonErrors, ErrorEnvelope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiKeyAuth};
use crate::json::Json;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use soku_core::ErrorCode;
use soku_core::accounts::{ResolveError, resolve_targets};
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::posts::{Invalid, SubmissionStatus, TargetStatus, validate_post};
use soku_core::queue::{
    CancelOutcome, IdempotencyState, IdempotentResponse, NewSubmission, NewTarget,
    SubmissionFilter, SubmissionRecord, TargetRecord,
};
use soku_core::time::{from_millis, rfc3339_millis};
use std::collections::HashMap;

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// An idempotency record still in flight after this long belongs to a request that died.
const ABANDONED_AFTER_SECS: i64 = 60;

/// The body of `POST /v1/posts` (documentation; the handler validates the JSON itself to name
/// the failing field precisely).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct CreatePostRequest {
    post: PostBody,
    /// RFC 3339 with an offset or `Z`, at least 1 minute ahead; omit to publish now.
    scheduled_time: Option<String>,
    enable_repurposing: Option<bool>,
    #[schema(rename = "trial_reel")]
    trial_reel: Option<bool>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PostBody {
    content: PostContentBody,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct PostContentBody {
    text: Option<String>,
    /// `text`, `image` or `video`; inferred from the media when omitted.
    media_type: Option<String>,
    media_urls: Option<Vec<String>>,
    image_urls: Option<Vec<String>>,
    video_url: Option<String>,
    /// A platform name, or an array of platform names and `{"platform", "accountId"}` objects.
    /// `twitter` means `x`.
    #[schema(value_type = Object)]
    platform: Value,
}

/// A submission and the state of each of its targets.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct Submission {
    /// Only in the answer to `POST /v1/posts`.
    post_submission_id: Option<String>,
    id: String,
    /// scheduled, queued, publishing, published, partially_published, failed, canceled
    status: String,
    /// `live` or `test`.
    mode: String,
    created_at: String,
    scheduled_time: Option<String>,
    /// The `post` object as it was sent.
    #[schema(value_type = Object)]
    post: Value,
    targets: Vec<Target>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct Target {
    /// `platform:accountId`
    target_id: String,
    platform: String,
    account_id: String,
    /// scheduled, queued, publishing, published, failed, unknown, canceled
    status: String,
    attempts: i64,
    platform_post_id: Option<String>,
    platform_post_url: Option<String>,
    error: Option<TargetErrorBody>,
    published_at: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct TargetErrorBody {
    code: String,
    message: String,
    /// The platform's own answer, as received.
    platform_error: Option<String>,
}

/// Accepts a post for one or more platforms, to publish now or at `scheduledTime`.
#[utoipa::path(post, path = "/v1/posts", tag = "posts", security(("apiKey" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; a retry with the same key and body replays the first response")),
    request_body(content = CreatePostRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted: `postSubmissionId` and the submission", body = Submission),
        (status = 409, description = "`idempotency_conflict`: the key was used with another body, or its first request is still in flight (`Retry-After: 1`)", body = ErrorEnvelope),
        BodyErrors, ApiKeyErrors, CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    create_for(&state, &caller.user_id, caller.mode, &headers, body).await
}

/// `POST /v1/posts` for a user and mode (the dashboard's composer uses it too).
pub async fn create_for(
    state: &AppState,
    user_id: &str,
    mode: KeyMode,
    headers: &HeaderMap,
    body: Value,
) -> ApiResult<Response> {
    let now = state.clock.now();
    let idempotency_key = match headers.get(&IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().map(str::trim).unwrap_or("");
            if key.is_empty()
                || key.len() > 255
                || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
            {
                return Err(ApiError::validation(
                    "Idempotency-Key",
                    "invalid_value",
                    "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
                ));
            }
            Some(key.to_owned())
        }
    };

    if let Some(key) = &idempotency_key {
        let hash = hex(&Sha256::digest(
            serde_json::to_vec(&body).unwrap_or_default(),
        ));
        match state
            .store
            .idempotency_acquire(
                user_id,
                mode,
                key,
                &hash,
                now,
                now - Duration::seconds(ABANDONED_AFTER_SECS),
                now - Duration::hours(soku_engine::IDEMPOTENCY_KEPT_HOURS),
            )
            .await?
        {
            IdempotencyState::Acquired => {}
            IdempotencyState::Existing { request_hash, .. } if request_hash != hash => {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyConflict,
                    "This Idempotency-Key was already used with a different request body.",
                ));
            }
            IdempotencyState::Existing { response: None, .. } => {
                return Err(ApiError::new(
                    ErrorCode::IdempotencyConflict,
                    "A request with this Idempotency-Key is still in progress; retry shortly.",
                )
                .with_header(RETRY_AFTER, HeaderValue::from_static("1")));
            }
            IdempotencyState::Existing {
                response: Some((status, body)),
                ..
            } => {
                return Ok(raw_json(status, body, true));
            }
        }
    }

    let result = accept(state, user_id, mode, &body, idempotency_key.as_deref()).await;
    if result.is_err()
        && let Some(key) = &idempotency_key
    {
        // Nothing was created: the client may fix the request and use the key again.
        if let Err(e) = state.store.idempotency_release(user_id, mode, key).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
    }
    let bytes = result?;
    state.wake_engine();
    Ok(raw_json(200, bytes, false))
}

/// Validates, resolves accounts, and stores the submission; returns the response body.
async fn accept(
    state: &AppState,
    user_id: &str,
    mode: KeyMode,
    body: &Value,
    idempotency_key: Option<&str>,
) -> ApiResult<Vec<u8>> {
    let now = state.clock.now();
    let post = validate_post(body, now).map_err(invalid)?;
    let accounts = match mode {
        KeyMode::Live => state.store.list_accounts(user_id).await?,
        KeyMode::Test => Vec::new(),
    };
    let targets = resolve_targets(&post.targets, mode, &accounts).map_err(|e| match e {
        ResolveError::MissingAccount { message, details } => {
            ApiError::new(ErrorCode::MissingAccount, message).with_details(details)
        }
        ResolveError::Duplicate { field, message } => {
            ApiError::validation(&field, "duplicate", message)
        }
    })?;
    for t in &targets {
        if state.connectors.for_target(mode, t.platform).is_none() {
            return Err(ApiError::validation(
                &t.field,
                "unsupported_platform",
                format!(
                    "This server cannot publish to {} yet. Use an sk_test_ key to try it in test mode.",
                    t.platform.display_name()
                ),
            )
            .with_details(json!({"field": t.field, "reason": "unsupported_platform", "platform": t.platform.as_str()})));
        }
    }

    let id = soku_core::keys::uuid_v4();
    let (status, target_status, due_at) = match post.scheduled_time {
        Some(t) => (SubmissionStatus::Scheduled, TargetStatus::Scheduled, t),
        None => (SubmissionStatus::Queued, TargetStatus::Queued, now),
    };
    let mut post_json = post.post.clone();
    if post.enable_repurposing || post.trial_reel {
        // Kept with the post, as sent.
        post_json["_options"] =
            json!({"enableRepurposing": post.enable_repurposing, "trial_reel": post.trial_reel});
    }
    let new_targets: Vec<NewTarget> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| NewTarget {
            id: soku_core::keys::uuid_v4(),
            position: i as i64,
            platform: t.platform,
            account_ref: t.account_ref.clone(),
            account_id: t.account_id.clone(),
            status: target_status,
            due_at,
        })
        .collect();
    let record = SubmissionRecord {
        id: id.clone(),
        user_id: user_id.to_owned(),
        mode,
        status,
        post_json: post.post.to_string(),
        scheduled_at: post.scheduled_time,
        created_at: now,
        targets: new_targets
            .iter()
            .map(|t| TargetRecord {
                id: t.id.clone(),
                submission_id: id.clone(),
                position: t.position,
                platform: t.platform,
                account_ref: t.account_ref.clone(),
                account_id: t.account_id.clone(),
                status: t.status,
                attempts: 0,
                platform_post_id: None,
                platform_post_url: None,
                error: None,
                published_at: None,
                due_at,
            })
            .collect(),
    };
    let mut response = submission_json(&record);
    let mut with_id = serde_json::Map::new();
    with_id.insert("postSubmissionId".into(), json!(id));
    with_id.extend(
        response
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default(),
    );
    let bytes = serde_json::to_vec(&Value::Object(with_id)).expect("JSON serialises");

    state
        .new_submissions
        .submit(NewSubmission {
            id,
            user_id: user_id.to_owned(),
            mode,
            status,
            post_json: post_json.to_string(),
            content_json: serde_json::to_string(&post.content).expect("content serialises"),
            scheduled_at: post.scheduled_time,
            created_at: now,
            targets: new_targets,
            idempotency: idempotency_key.map(|key| IdempotentResponse {
                key: key.to_owned(),
                status: 200,
                body: bytes.clone(),
            }),
        })
        .await?;
    Ok(bytes)
}

fn invalid(e: Invalid) -> ApiError {
    let details = e.details();
    ApiError::new(ErrorCode::ValidationError, e.message).with_details(details)
}

fn raw_json(status: u16, body: Vec<u8>, replayed: bool) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if replayed {
        r.headers_mut().insert(
            IDEMPOTENT_REPLAYED.clone(),
            HeaderValue::from_static("true"),
        );
    }
    r
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn target_json(t: &TargetRecord) -> Value {
    json!({
        "targetId": format!("{}:{}", t.platform, t.account_id),
        "platform": t.platform.as_str(),
        "accountId": t.account_id,
        "status": t.status.as_str(),
        "attempts": t.attempts,
        "platformPostId": t.platform_post_id,
        "platformPostUrl": t.platform_post_url,
        "error": t.error.as_ref().map(|e| json!({
            "code": e.code,
            "message": e.message,
            "platformError": e.platform_error,
        })),
        "publishedAt": t.published_at.map(rfc3339_millis),
    })
}

pub fn submission_json(s: &SubmissionRecord) -> Value {
    let post: Value = serde_json::from_str(&s.post_json).unwrap_or(Value::Null);
    let post = match post {
        Value::Object(mut o) => {
            o.remove("_options");
            Value::Object(o)
        }
        other => other,
    };
    json!({
        "id": s.id,
        "status": s.status.as_str(),
        "mode": s.mode.as_str(),
        "createdAt": rfc3339_millis(s.created_at),
        "scheduledTime": s.scheduled_at.map(rfc3339_millis),
        "post": post,
        "targets": s.targets.iter().map(target_json).collect::<Vec<_>>(),
    })
}

/// One submission with the status of every target.
#[utoipa::path(get, path = "/v1/posts/{id}", tag = "posts", security(("apiKey" = [])),
    params(("id" = String, Path, description = "The postSubmissionId")),
    responses((status = 200, description = "The submission", body = Submission), ApiKeyErrors, CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state
        .store
        .get_submission(&caller.user_id, caller.mode, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("post submission"))?;
    Ok(Json(submission_json(&record)))
}

/// The caller's submissions, newest first, with filters and cursor pagination.
#[utoipa::path(get, path = "/v1/posts", tag = "posts", security(("apiKey" = [])),
    params(
        ("status" = Option<String>, Query, description = "scheduled, queued, publishing, published, partially_published, failed or canceled"),
        ("platform" = Option<String>, Query, description = "Only submissions with a target on this platform"),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page")),
    responses((status = 200, description = "`{posts, nextCursor}`", body = Value),
        (status = 400, description = "`validation_error`: a bad filter", body = ErrorEnvelope), ApiKeyErrors, CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    list_for(&state, &caller.user_id, caller.mode, &params).await
}

/// `GET /v1/posts` for a user and mode.
pub async fn list_for(
    state: &AppState,
    user_id: &str,
    mode: KeyMode,
    params: &HashMap<String, String>,
) -> ApiResult<Json<Value>> {
    let status = match params.get("status") {
        Some(s) => Some(SubmissionStatus::parse(s).ok_or_else(|| {
            ApiError::validation("status", "invalid_value", "Unknown status; use scheduled, queued, publishing, published, partially_published, failed or canceled.")
        })?),
        None => None,
    };
    let platform = match params.get("platform") {
        Some(p) => Some(Platform::parse(p).ok_or_else(|| {
            ApiError::validation("platform", "invalid_value", "Unknown platform.")
        })?),
        None => None,
    };
    let limit = match params.get("limit") {
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::validation(
                    "limit",
                    "invalid_value",
                    "'limit' must be a whole number from 1 to 100.",
                )
            })?,
        None => 20,
    };
    let before = match params.get("cursor") {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::validation(
                "cursor",
                "invalid_value",
                "The cursor is not one this server issued.",
            )
        })?),
        None => None,
    };
    let page = state
        .store
        .list_submissions(
            user_id,
            mode,
            &SubmissionFilter {
                status,
                platform,
                before,
                limit,
            },
        )
        .await?;
    let next = if page.len() as i64 == limit {
        page.last()
            .map(|s| encode_cursor(s.created_at.timestamp_millis(), &s.id))
    } else {
        None
    };
    Ok(Json(json!({
        "posts": page.iter().map(submission_json).collect::<Vec<_>>(),
        "nextCursor": next,
    })))
}

fn encode_cursor(created_ms: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_ms}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(chrono::DateTime<chrono::Utc>, String)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (ms, id) = text.split_once(':')?;
    Some((from_millis(ms.parse().ok()?), id.to_owned()))
}

/// Cancels a scheduled submission none of whose targets has started; 409 `conflict` otherwise.
#[utoipa::path(delete, path = "/v1/posts/{id}", tag = "posts", security(("apiKey" = [])),
    params(("id" = String, Path, description = "The postSubmissionId")),
    responses((status = 200, description = "Canceled: the submission", body = Submission),
        (status = 409, description = "`conflict`: publishing has started", body = ErrorEnvelope), ApiKeyErrors, CommonErrors))]
pub async fn cancel(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    cancel_for(&state, &caller.user_id, caller.mode, &id).await
}

/// `DELETE /v1/posts/{id}` for a user and mode.
pub async fn cancel_for(
    state: &AppState,
    user_id: &str,
    mode: KeyMode,
    id: &str,
) -> ApiResult<Json<Value>> {
    match state
        .store
        .cancel_submission(user_id, mode, id, state.clock.now())
        .await?
    {
        CancelOutcome::NotFound => Err(ApiError::not_found("post submission")),
        CancelOutcome::TooLate(record) => Err(ApiError::new(
            ErrorCode::Conflict,
            "Publishing has started (or finished) for this post; it can no longer be canceled.",
        )
        .with_details(json!({"status": record.status.as_str()}))),
        CancelOutcome::Canceled(record) => Ok(Json(submission_json(&record))),
    }
}
