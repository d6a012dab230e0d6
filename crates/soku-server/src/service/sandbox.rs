//! Test mode's sandbox (spec 9): what a simulated platform received for the caller.

use super::posts::{encode_cursor, page_cursor};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{SandboxPostList, SandboxPostView};
use serde::Deserialize;
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;

/// The page of `GET /v1/sandbox/{platform}/posts`, as sent (checked by `posts`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SandboxQuery {
    /// 1 to 1000, default 100
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page
    pub cursor: Option<String>,
}

/// Newest first, with how many times each post was asked for, with cursor pagination like
/// `GET /v1/posts`; test mode only (404 otherwise).
pub async fn posts(
    state: &AppState,
    caller: &Caller,
    platform: &str,
    query: &SandboxQuery,
) -> ApiResult<SandboxPostList> {
    if caller.mode != KeyMode::Test {
        return Err(ApiError::new(
            soku_core::ErrorCode::NotFound,
            "The sandbox exists only for sk_test_ keys.",
        ));
    }
    let platform =
        Platform::parse(platform).ok_or_else(|| ApiError::not_found("simulated platform"))?;
    let limit = match &query.limit {
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
    let before = page_cursor(super::posts::Listing::SandboxPosts, query.cursor.as_deref())?;
    let posts = state
        .store
        .sandbox_page(&caller.user_id, platform, before, limit)
        .await?;
    let next_cursor = if posts.len() as i64 == limit {
        posts
            .last()
            .map(|p| encode_cursor(p.received_at.timestamp_millis(), &p.id))
    } else {
        None
    };
    Ok(SandboxPostList {
        posts: posts.iter().map(SandboxPostView::of).collect(),
        next_cursor,
    })
}
