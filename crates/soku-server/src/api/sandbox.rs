//! `GET /v1/sandbox/{platform}/posts` (spec 9): what a simulated platform received for the
//! caller, newest first, and how many times it was asked to create each post.

use super::docs::{ApiKeyErrors, CommonErrors};
use crate::error::ApiResult;
use crate::extract::ApiKeyAuth;
use crate::json::Json;
use crate::service::sandbox::{self, SandboxQuery};
use crate::state::AppState;
use crate::views::SandboxPostList;
use axum::extract::{Path, Query, State};

/// Test keys only; a live key gets 404.
#[utoipa::path(get, path = "/v1/sandbox/{platform}/posts", tag = "test mode",
    operation_id = "listSandboxPosts", security(("apiKey" = ["posts:read"])),
    params(("platform" = String, Path, description = "A platform name"), SandboxQuery),
    responses((status = 200, description = "What the simulated platform received", body = SandboxPostList), ApiKeyErrors, CommonErrors))]
pub async fn posts(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Path(platform): Path<String>,
    Query(query): Query<SandboxQuery>,
) -> ApiResult<Json<SandboxPostList>> {
    sandbox::posts(&state, &caller, &platform, &query)
        .await
        .map(Json)
}
