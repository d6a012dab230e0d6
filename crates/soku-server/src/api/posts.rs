//! `POST /v1/posts`, `GET /v1/posts/{id}`, `GET /v1/posts`, `DELETE /v1/posts/{id}`
//! (spec 6.1 and 6.2).

use super::docs::{ApiKeyErrors, BodyErrors, CommonErrors};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiKeyAuth, IDEMPOTENCY_KEY};
use crate::json::Json;
use crate::service::posts::{self, CreatePost, ListPosts};
use crate::state::AppState;
use crate::views::{ErrorEnvelope, Submission, SubmissionPage};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use soku_core::posts::CreatePostRequest;

/// Accepts a post for one or more platforms, to publish now or at `scheduledTime`.
#[utoipa::path(post, path = "/v1/posts", tag = "posts", operation_id = "createPost",
    security(("apiKey" = ["posts:write"])),
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
    ApiJson(body): ApiJson<CreatePostRequest>,
) -> ApiResult<Response> {
    let idempotency_key = posts::idempotency_key(headers.get(&IDEMPOTENCY_KEY))?;
    let accepted = posts::create(
        &state,
        &caller,
        CreatePost {
            body,
            idempotency_key,
        },
    )
    .await?;
    Ok(accepted.into_response())
}

/// One submission with the status of every target.
#[utoipa::path(get, path = "/v1/posts/{id}", tag = "posts", operation_id = "getPost",
    security(("apiKey" = ["posts:read"])),
    params(("id" = String, Path, description = "The postSubmissionId")),
    responses((status = 200, description = "The submission", body = Submission), ApiKeyErrors, CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Submission>> {
    posts::get(&state, &caller, &id).await.map(Json)
}

/// The caller's submissions, newest first, with filters and cursor pagination.
#[utoipa::path(get, path = "/v1/posts", tag = "posts", operation_id = "listPosts",
    security(("apiKey" = ["posts:read"])),
    params(ListPosts),
    responses((status = 200, description = "A page of submissions", body = SubmissionPage),
        (status = 400, description = "`validation_error`: a bad filter", body = ErrorEnvelope), ApiKeyErrors, CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Query(query): Query<ListPosts>,
) -> ApiResult<Json<SubmissionPage>> {
    posts::list(&state, &caller, &query).await.map(Json)
}

/// Cancels a scheduled submission none of whose targets has started; 409 `conflict` otherwise.
#[utoipa::path(delete, path = "/v1/posts/{id}", tag = "posts", operation_id = "cancelPost",
    security(("apiKey" = ["posts:write"])),
    params(("id" = String, Path, description = "The postSubmissionId")),
    responses((status = 200, description = "Canceled: the submission", body = Submission),
        (status = 409, description = "`conflict`: publishing has started", body = ErrorEnvelope), ApiKeyErrors, CommonErrors))]
pub async fn cancel(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Submission>> {
    posts::cancel(&state, &caller, &id).await.map(Json)
}
