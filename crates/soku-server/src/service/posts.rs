//! Posts (spec 6.1 and 6.2): accept a submission (idempotently), read one, list them, cancel one.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{Accepted, Submission, SubmissionPage};
use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use soku_core::ErrorCode;
use soku_core::accounts::{ResolveError, resolve_targets};
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::posts::{
    CreatePostRequest, Invalid, StoredContent, SubmissionStatus, TargetStatus, validate_post,
};
use soku_core::queue::{
    CancelOutcome, IdempotencyState, IdempotentResponse, NewSubmission, NewTarget,
    SubmissionFilter, SubmissionRecord, TargetRecord,
};
use soku_core::time::from_millis;
use soku_media::ingest::hex;

/// An idempotency record still in flight after this long belongs to a request that died.
const ABANDONED_AFTER_SECS: i64 = 60;

/// `POST /v1/posts`: the body, and the `Idempotency-Key` when the client sent one.
pub struct CreatePost {
    pub body: CreatePostRequest,
    pub idempotency_key: Option<String>,
}

/// Checks an `Idempotency-Key` header: 1 to 255 printable ASCII characters.
pub fn idempotency_key(header: Option<&HeaderValue>) -> ApiResult<Option<String>> {
    let Some(v) = header else {
        return Ok(None);
    };
    let key = v.to_str().ok().map(str::trim).unwrap_or("");
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(ApiError::validation(
            "Idempotency-Key",
            "invalid_value",
            "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Accepts a post for the caller: validates it, resolves its accounts and stores the
/// submission, once per idempotency key.
pub async fn create(state: &AppState, caller: &Caller, request: CreatePost) -> ApiResult<Accepted> {
    let (user_id, mode) = (caller.user_id.as_str(), caller.mode);
    let now = state.clock.now();
    let CreatePost {
        body,
        idempotency_key,
    } = request;
    if let Some(key) = &idempotency_key {
        let hash = hex(&Sha256::digest(
            serde_json::to_vec(&body.raw).unwrap_or_default(),
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
                return Ok(Accepted {
                    status,
                    body,
                    replayed: true,
                });
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
    Ok(Accepted {
        status: 200,
        body: bytes,
        replayed: false,
    })
}

/// Validates, resolves accounts, and stores the submission; returns the response body.
async fn accept(
    state: &AppState,
    user_id: &str,
    mode: KeyMode,
    body: &CreatePostRequest,
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
    let hosted = super::media::check_in_post(
        state,
        user_id,
        mode,
        &post.post,
        &post.content,
        &post.options,
        targets.iter().map(|t| t.platform),
    )
    .await?;

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
            text: t.text.as_ref().map(|t| t.stored()),
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
                text: t.text.clone(),
            })
            .collect(),
    };
    let answer = Submission {
        post_submission_id: Some(id.clone()),
        ..Submission::of(&record)
    };
    let bytes = serde_json::to_vec(&answer).expect("JSON serialises");

    let stored = state
        .new_submissions
        .submit(NewSubmission {
            id,
            user_id: user_id.to_owned(),
            mode,
            status,
            post_json: post_json.to_string(),
            content_json: serde_json::to_string(&StoredContent {
                content: post.content.clone(),
                options: post.options.clone(),
            })
            .expect("content serialises"),
            scheduled_at: post.scheduled_time,
            created_at: now,
            targets: new_targets,
            idempotency: idempotency_key.map(|key| IdempotentResponse {
                key: key.to_owned(),
                status: 200,
                body: bytes.clone(),
            }),
            media_ids: hosted.iter().map(|(_, id)| id.clone()).collect(),
        })
        .await?;
    if !stored {
        // One of its files was deleted after the check above, before the post was stored.
        let mut field = hosted
            .first()
            .map_or("post.content", |(field, _)| field.as_str());
        for (named, id) in &hosted {
            let file = state.store.get_media(id).await?;
            if file.is_none_or(|f| f.user_id != user_id || f.mode != mode) {
                field = named;
                break;
            }
        }
        return Err(ApiError::validation(
            field,
            "not_found",
            "A hosted file this post names was deleted while the post was being accepted; \
             upload it again with POST /v1/media.",
        ));
    }
    Ok(bytes)
}

fn invalid(e: Invalid) -> ApiError {
    let details = e.details();
    ApiError::new(ErrorCode::ValidationError, e.message).with_details(details)
}

/// One of the caller's submissions.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Submission> {
    let record = state
        .store
        .get_submission(&caller.user_id, caller.mode, id)
        .await?
        .ok_or_else(|| ApiError::not_found("post submission"))?;
    Ok(Submission::of(&record))
}

/// The filters and page of `GET /v1/posts`, as sent (checked by `list`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPosts {
    /// scheduled, queued, publishing, published, partially_published, failed or canceled
    pub status: Option<String>,
    /// Only submissions with a target on this platform
    pub platform: Option<String>,
    /// 1 to 100, default 20
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page
    pub cursor: Option<String>,
}

/// The caller's submissions, newest first, with filters and cursor pagination.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    query: &ListPosts,
) -> ApiResult<SubmissionPage> {
    let status = match &query.status {
        Some(s) => Some(SubmissionStatus::parse(s).ok_or_else(|| {
            ApiError::validation("status", "invalid_value", "Unknown status; use scheduled, queued, publishing, published, partially_published, failed or canceled.")
        })?),
        None => None,
    };
    let platform = match &query.platform {
        Some(p) => Some(Platform::parse(p).ok_or_else(|| {
            ApiError::validation("platform", "invalid_value", "Unknown platform.")
        })?),
        None => None,
    };
    let limit = page_limit(query.limit.as_deref())?;
    let before = page_cursor(Listing::Posts, query.cursor.as_deref())?;
    let page = state
        .store
        .list_submissions(
            &caller.user_id,
            caller.mode,
            &SubmissionFilter {
                status,
                platform,
                before,
                limit,
            },
        )
        .await?;
    let next_cursor = if page.len() as i64 == limit {
        page.last()
            .map(|s| encode_cursor(s.created_at.timestamp_millis(), &s.id))
    } else {
        None
    };
    Ok(SubmissionPage {
        posts: page.iter().map(Submission::of).collect(),
        next_cursor,
    })
}

/// A listing's `limit`: 1 to 100, default 20 (posts, media, the sandbox).
pub(crate) fn page_limit(limit: Option<&str>) -> ApiResult<i64> {
    let Some(l) = limit else { return Ok(20) };
    l.parse::<i64>()
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| {
            ApiError::validation(
                "limit",
                "invalid_value",
                "'limit' must be a whole number from 1 to 100.",
            )
        })
}

/// What a listing's records are, and so what the id in its cursors looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// `GET /v1/posts`: submissions, whose ids are UUIDs.
    Posts,
    /// `GET /v1/media`: `med_` and 24 characters.
    Media,
    /// `GET /v1/audit-events`: `evt_` and 20 characters.
    AuditEvents,
    /// `GET /v1/sandbox/{platform}/posts`: `sim_` and 20 characters.
    SandboxPosts,
}

impl Listing {
    /// Whether `id` has the form of this listing's ids.
    fn is_id(self, id: &str) -> bool {
        use soku_core::keys::{is_random_id, is_uuid};
        match self {
            Listing::Posts => is_uuid(id),
            Listing::Media => is_random_id(id, "med_", 24),
            Listing::AuditEvents => is_random_id(id, "evt_", 20),
            Listing::SandboxPosts => is_random_id(id, "sim_", 20),
        }
    }
}

/// A listing's `cursor`, as `encode_cursor` made it for that listing: 400 for anything else
/// (not base64 of `<milliseconds>:<id>`, a time outside the years 1970 to 9999, an id not of
/// the listing's form).
pub(crate) fn page_cursor(
    listing: Listing,
    cursor: Option<&str>,
) -> ApiResult<Option<(chrono::DateTime<chrono::Utc>, String)>> {
    cursor
        .map(|c| {
            decode_cursor(c)
                .filter(|(_, id)| listing.is_id(id))
                .ok_or_else(|| {
                    ApiError::validation(
                        "cursor",
                        "invalid_value",
                        "The cursor is not one this server issued.",
                    )
                })
        })
        .transpose()
}

/// The opaque cursor of a page that ends at `(time, id)`; shared by `GET /v1/posts`, media and
/// the sandbox listing.
pub(crate) fn encode_cursor(created_ms: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_ms}:{id}"))
}

/// `None` when the cursor is not one `encode_cursor` made.
pub(crate) fn decode_cursor(c: &str) -> Option<(chrono::DateTime<chrono::Utc>, String)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (ms, id) = text.split_once(':')?;
    // Ids are printable; a control character (a NUL would make PostgreSQL refuse the query)
    // means the cursor was not made here.
    if id.chars().any(char::is_control) {
        return None;
    }
    // Milliseconds as `encode_cursor` writes them: digits only, up to the end of year 9999.
    const LAST_MS: i64 = 253_402_300_799_999;
    if ms.is_empty()
        || !ms.bytes().all(|b| b.is_ascii_digit())
        || (ms.len() > 1 && ms.starts_with('0'))
    {
        return None;
    }
    let ms: i64 = ms.parse().ok().filter(|ms| *ms <= LAST_MS)?;
    Some((from_millis(ms), id.to_owned()))
}

/// Cancels a scheduled submission none of whose targets has started; `conflict` otherwise.
pub async fn cancel(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Submission> {
    match state
        .store
        .cancel_submission(&caller.user_id, caller.mode, id, state.clock.now())
        .await?
    {
        CancelOutcome::NotFound => Err(ApiError::not_found("post submission")),
        CancelOutcome::TooLate(record) => Err(ApiError::new(
            ErrorCode::Conflict,
            if record.status == SubmissionStatus::Canceled {
                "This post was canceled already."
            } else {
                "Publishing has started (or finished) for this post; it can no longer be canceled."
            },
        )
        .with_details(json!({"status": record.status.as_str()}))),
        CancelOutcome::Canceled(record) => Ok(Submission::of(&record)),
    }
}
