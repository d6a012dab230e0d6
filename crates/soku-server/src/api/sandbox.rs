//! `GET /v1/sandbox/{platform}/posts` (spec 9): what a simulated platform received for the
//! caller, newest first, and how many times it was asked to create each post.

use super::docs::{ApiKeyErrors, CommonErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiKeyAuth;
use crate::json::Json;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::time::rfc3339_millis;
use std::collections::HashMap;

/// Test keys only; a live key gets 404.
#[utoipa::path(get, path = "/v1/sandbox/{platform}/posts", tag = "test mode", security(("apiKey" = [])),
    params(("platform" = String, Path, description = "A platform name"),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, description = "`{posts: [...]}`", body = Value), ApiKeyErrors, CommonErrors))]
pub async fn posts(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Path(platform): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    if caller.mode != KeyMode::Test {
        return Err(ApiError::new(
            soku_core::ErrorCode::NotFound,
            "The sandbox exists only for sk_test_ keys.",
        ));
    }
    let platform =
        Platform::parse(&platform).ok_or_else(|| ApiError::not_found("simulated platform"))?;
    let limit = match params.get("limit") {
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::validation(
                    "limit",
                    "invalid_value",
                    "'limit' must be a whole number from 1 to 1000.",
                )
            })?,
        None => 100,
    };
    let posts = state
        .store
        .sandbox_list(&caller.user_id, platform, limit)
        .await?;
    Ok(Json(json!({
        "posts": posts.iter().map(|p| json!({
            "id": p.id,
            "submissionId": p.submission_id,
            "targetId": p.target_id,
            "text": p.text,
            "media": serde_json::from_str::<Value>(&p.media_json).unwrap_or(Value::Null),
            "receivedAt": rfc3339_millis(p.received_at),
            "createCount": p.create_count,
        })).collect::<Vec<_>>(),
    })))
}
