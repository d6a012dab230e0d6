//! The dashboard's JSON endpoints (`/dashboard/api/...`), for the signed-in user.

use super::session::{not_signed_in, signed_for_change, signed_in};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::json::Json;
use crate::service::connect::ConnectRequest;
use crate::service::posts::{CreatePost, ListPosts};
use crate::service::{accounts, connect, posts};
use crate::state::AppState;
use crate::views::{AccountList, ConnectableList, Overview, Submission, SubmissionPage};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use soku_core::keys::KeyMode;
use soku_core::model::Subscription;
use soku_core::posts::CreatePostRequest;

pub(super) async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Overview>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    accounts::overview(&state, signed.user).await.map(Json)
}

/// `?mode=live|test` of the dashboard's endpoints.
#[derive(Deserialize)]
pub(super) struct ModeQuery {
    mode: Option<String>,
}

/// `live` (the default) or `test`.
pub(super) fn parse_mode(mode: Option<&str>) -> ApiResult<KeyMode> {
    match mode {
        None | Some("live") => Ok(KeyMode::Live),
        Some("test") => Ok(KeyMode::Test),
        Some(_) => Err(ApiError::validation(
            "mode",
            "invalid_value",
            "'mode' is live or test.",
        )),
    }
}

/// The posts list's query: the mode and `GET /v1/posts`' filters.
#[derive(Deserialize)]
pub(super) struct PostsQuery {
    mode: Option<String>,
    #[serde(flatten)]
    list: ListPosts,
}

pub(super) async fn list_posts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PostsQuery>,
) -> ApiResult<Json<SubmissionPage>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let caller = Caller::session(signed.user.id, parse_mode(query.mode.as_deref())?);
    posts::list(&state, &caller, &query.list).await.map(Json)
}

#[derive(Deserialize)]
pub(super) struct Compose {
    mode: Option<String>,
    /// What `POST /v1/posts` takes.
    request: CreatePostRequest,
}

/// The composer: `POST /v1/posts` on the signed-in user's behalf, behind the same
/// subscription gate as an API key.
pub(super) async fn create_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Compose>,
) -> ApiResult<Response> {
    let signed = signed_for_change(&state, &headers).await?;
    let mode = parse_mode(body.mode.as_deref())?;
    let sub = state.store.get_subscription(&signed.user.id).await?;
    if !Subscription::grants_access(sub.as_ref(), state.clock.now()) {
        return Err(ApiError::subscription_required());
    }
    // The user's rate-limit budget, and POST /v1/posts' endpoint limit, as through the API.
    let admission = match &state.rate_limits {
        Some(rl) => {
            let mut a =
                crate::ratelimit::admit_user(&state, rl, &signed.user.id, "POST", "/v1/posts")
                    .await;
            if let Some(mut refusal) = a.take_refusal() {
                a.put_headers(refusal.headers_mut());
                return Ok(refusal);
            }
            Some(a)
        }
        None => None,
    };
    let caller = Caller::session(signed.user.id, mode);
    let request = CreatePost {
        body: body.request,
        idempotency_key: None,
    };
    let mut response = match posts::create(&state, &caller, request).await {
        Ok(accepted) => accepted.into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(a) = admission {
        a.put_headers(response.headers_mut());
    }
    Ok(response)
}

pub(super) async fn cancel_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<ModeQuery>,
) -> ApiResult<Json<Submission>> {
    let signed = signed_for_change(&state, &headers).await?;
    let caller = Caller::session(signed.user.id, parse_mode(query.mode.as_deref())?);
    posts::cancel(&state, &caller, &id).await.map(Json)
}

pub(super) async fn list_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ModeQuery>,
) -> ApiResult<Json<AccountList>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let caller = Caller::session(signed.user.id, parse_mode(query.mode.as_deref())?);
    accounts::list(&state, &caller).await.map(Json)
}

/// The platforms this server can connect, and how.
pub(super) async fn connectable(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ConnectableList>> {
    signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    Ok(Json(accounts::connectable(&state)))
}

/// Connects an account for the signed-in user; OAuth brings the browser back to the
/// Accounts page.
pub(super) async fn connect_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ConnectRequest>,
) -> ApiResult<Response> {
    let signed = signed_for_change(&state, &headers).await?;
    let body = body.with_redirect_uri(format!(
        "{}/accounts",
        state.tokens.builtin().issuer().trim_end_matches('/')
    ));
    let caller = Caller::session(signed.user.id, KeyMode::Live);
    let connected = connect::connect(&state, &caller, body, true).await?;
    Ok(connected.into_response())
}

pub(super) async fn disconnect_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let signed = signed_for_change(&state, &headers).await?;
    let caller = Caller::session(signed.user.id, KeyMode::Live);
    accounts::disconnect(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
