//! The dashboard's JSON endpoints (`/dashboard/api/...`), for the signed-in user. Each one
//! takes the session's `Caller` (in the mode the page asks for) and calls one service.

use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientOrigin, MediaUpload, SessionForChange, SessionUser};
use crate::json::Json;
use crate::service::connect::ConnectRequest;
use crate::service::media::ListMedia;
use crate::service::posts::{CreatePost, ListPosts};
use crate::service::{accounts, connect, media, posts, sessions};
use crate::state::AppState;
use crate::views::{
    AccountList, ConnectableList, MediaCreated, MediaPageView, MediaView, Overview, Submission,
    SubmissionPage,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use soku_core::keys::KeyMode;
use soku_core::posts::CreatePostRequest;

pub(super) async fn overview(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
) -> ApiResult<Json<Overview>> {
    accounts::overview(&state, &caller).await.map(Json)
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

/// The session's caller, acting in the mode the page asked for.
fn in_mode(caller: Caller, mode: Option<&str>) -> ApiResult<Caller> {
    Ok(Caller {
        mode: parse_mode(mode)?,
        ..caller
    })
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
    SessionUser(caller): SessionUser,
    Query(query): Query<PostsQuery>,
) -> ApiResult<Json<SubmissionPage>> {
    let caller = in_mode(caller, query.mode.as_deref())?;
    posts::list(&state, &caller, &query.list).await.map(Json)
}

#[derive(Deserialize)]
pub(super) struct Compose {
    mode: Option<String>,
    /// What `POST /v1/posts` takes.
    request: CreatePostRequest,
}

/// The composer: `POST /v1/posts` on the signed-in user's behalf, behind the same
/// subscription gate as an API key. The request middleware counts it as `POST /v1/posts`
/// against the user's rate-limit budget (`ratelimit::counted_as`), with its headers.
pub(super) async fn create_post(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    ApiJson(body): ApiJson<Compose>,
) -> ApiResult<Response> {
    let caller = in_mode(caller, body.mode.as_deref())?;
    auth::gate(&state, &caller)?;
    let request = CreatePost {
        body: body.request,
        idempotency_key: None,
    };
    let accepted = posts::create(&state, &caller, request).await?;
    Ok(accepted.into_response())
}

pub(super) async fn cancel_post(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    Path(id): Path<String>,
    Query(query): Query<ModeQuery>,
) -> ApiResult<Json<Submission>> {
    let caller = in_mode(caller, query.mode.as_deref())?;
    posts::cancel(&state, &caller, &id).await.map(Json)
}

/// The media list's query: the mode and `GET /v1/media`'s paging.
#[derive(Deserialize)]
pub(super) struct MediaQuery {
    mode: Option<String>,
    #[serde(flatten)]
    list: ListMedia,
}

pub(super) async fn list_media(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    Query(query): Query<MediaQuery>,
) -> ApiResult<Json<MediaPageView>> {
    let caller = in_mode(caller, query.mode.as_deref())?;
    media::list(&state, &caller, &query.list).await.map(Json)
}

/// The Media page's upload: `POST /v1/media/uploads` on the signed-in user's behalf, behind
/// the same subscription gate, counted as `POST /v1/media` (`ratelimit::counted_as`).
pub(super) async fn upload_media(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    Query(query): Query<ModeQuery>,
    upload: MediaUpload,
) -> ApiResult<MediaCreated> {
    let caller = in_mode(caller, query.mode.as_deref())?;
    auth::gate(&state, &caller)?;
    let MediaUpload {
        declared,
        idempotency_key,
        body,
    } = upload;
    media::upload(&state, &caller, declared, body, idempotency_key).await
}

pub(super) async fn delete_media(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    Path(id): Path<String>,
    Query(query): Query<ModeQuery>,
) -> ApiResult<Json<MediaView>> {
    let caller = in_mode(caller, query.mode.as_deref())?;
    media::delete(&state, &caller, &id).await.map(Json)
}

pub(super) async fn list_accounts(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    Query(query): Query<ModeQuery>,
) -> ApiResult<Json<AccountList>> {
    let caller = in_mode(caller, query.mode.as_deref())?;
    accounts::list(&state, &caller).await.map(Json)
}

/// The platforms this server can connect, and how.
pub(super) async fn connectable(
    State(state): State<AppState>,
    SessionUser(_): SessionUser,
) -> Json<ConnectableList> {
    Json(accounts::connectable(&state))
}

/// Connects an account for the signed-in user; OAuth brings the browser back to the
/// Accounts page.
pub(super) async fn connect_account(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    ApiJson(body): ApiJson<ConnectRequest>,
) -> ApiResult<Response> {
    let body = body.with_redirect_uri(format!(
        "{}/accounts",
        state.tokens.builtin().issuer().trim_end_matches('/')
    ));
    let connected = connect::connect(&state, &caller, body, true).await?;
    Ok(connected.into_response())
}

pub(super) async fn disconnect_account(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    accounts::disconnect(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes one of the user's accounts its platform's default (the Accounts page's "Make
/// default"), through the same service as `PATCH /v1/accounts/{id}`.
pub(super) async fn make_default_account(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::views::AccountView>> {
    let request = accounts::UpdateAccountRequest {
        is_default: Some(true),
    };
    accounts::update(&state, &caller, &id, request)
        .await
        .map(Json)
}

// ---- Sessions (Settings › Sessions) -----------------------------------------------------------

/// The signed-in user's active sessions, the current one marked.
pub(super) async fn list_sessions(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
) -> ApiResult<Json<crate::views::SessionList>> {
    sessions::list(&state, &caller).await.map(Json)
}

/// Ends one of the user's sessions (another user's id: 404). Ending the current one also
/// clears this browser's cookie.
pub(super) async fn revoke_session(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let was_current = sessions::revoke(&state, &caller, &id, origin).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if was_current {
        clear_cookie(&state, &mut response);
    }
    Ok(response)
}

/// Ends every session of the user, this one included ("Sign out everywhere").
pub(super) async fn revoke_all_sessions(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    ClientOrigin(origin): ClientOrigin,
) -> ApiResult<Response> {
    let revoked = sessions::revoke_all(&state, &caller, origin).await?;
    let mut response = Json(revoked).into_response();
    clear_cookie(&state, &mut response);
    Ok(response)
}

fn clear_cookie(state: &AppState, response: &mut Response) {
    response.headers_mut().insert(
        axum::http::header::SET_COOKIE,
        crate::auth::session::cookie_header(state, "", 0),
    );
}
