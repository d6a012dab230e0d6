//! Connecting accounts (issue 6): `POST /v1/accounts/connect`, the OAuth callback
//! `GET /v1/oauth/{platform}/callback`, and `DELETE /v1/accounts/{id}`. The use cases are in
//! `crate::service::connect`; this file maps their answers to HTTP: the callback sends the
//! browser to the client's `redirectUri` with `status=connected` (or `status=error`), or
//! answers the account itself (an HTML page for browsers).

use super::docs::{ApiKeyErrors, BodyErrors, CommonErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, KeyOrToken};
use crate::json::Json;
use crate::service::connect::{self, CallbackQuery, ConnectRequest};
use crate::state::AppState;
use crate::views::{AuthorizationStarted, ConnectedAccount, ErrorEnvelope};
use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use soku_core::queue::Account;

/// Starts connecting an account: the authorization URL (OAuth platforms), or the connected
/// account (Bluesky, with `identifier` and `appPassword`).
#[utoipa::path(post, path = "/v1/accounts/connect", tag = "accounts",
    operation_id = "connectAccount",
    security(("apiKey" = ["accounts:write"]), ("idToken" = [])),
    request_body(content = ConnectRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "OAuth: where to send the user", body = AuthorizationStarted),
        (status = 201, description = "Credential platforms: the connected account", body = ConnectedAccount),
        ApiKeyErrors, BodyErrors, CommonErrors))]
pub async fn connect(
    State(state): State<AppState>,
    KeyOrToken(caller): KeyOrToken,
    ApiJson(body): ApiJson<ConnectRequest>,
) -> ApiResult<Response> {
    Ok(connect::connect(&state, &caller, body, false)
        .await?
        .into_response())
}

/// Where the platform sends the user back after the authorization.
#[utoipa::path(get, path = "/v1/oauth/{platform}/callback", tag = "accounts",
    operation_id = "oauthCallback",
    params(("platform" = String, Path, description = "x, threads, linkedin, mastodon"), CallbackQuery),
    responses(
        (status = 200, description = "The account (an HTML page for browsers) when the authorization had no `redirectUri`", body = ConnectedAccount),
        (status = 303, description = "To the client's `redirectUri` with `status=connected&platform=..&accountId=..&id=..&accounts=N` (the first account, and how many the authorization connected) or `status=error&error=..&message=..`"),
        (status = 400, description = "`validation_error`: unknown, used or expired state (`details.reason` `state_unknown`, `state_used`, `state_expired`), or the platform refused the code", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: the authorization was started by another user (`details.reason` `state_other_user`)", body = ErrorEnvelope),
        CommonErrors))]
pub async fn callback(
    State(state): State<AppState>,
    Path(platform): Path<String>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let session_user = crate::auth::session::session_user_id(&state, &headers).await;
    let finished = connect::finish(&state, &platform, &q, session_user.as_deref()).await?;
    let platform = finished.platform;
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    match (finished.accounts, &finished.return_to) {
        (Ok(accounts), Some(to)) => Ok(redirect(
            to,
            &[
                ("status", "connected"),
                ("platform", platform.as_str()),
                ("accountId", &accounts[0].account_id),
                ("id", &accounts[0].id),
                ("accounts", &accounts.len().to_string()),
            ],
        )),
        (Err(e), Some(to)) => {
            // Answered by a redirect, not an error response: log what the envelope would have.
            if let Some(cause) = &e.cause {
                tracing::error!(%platform, %cause, "completing an authorization failed");
            } else {
                tracing::info!(%platform, code = e.code.as_str(), message = %e.message, "authorization not completed");
            }
            Ok(redirect(
                to,
                &[
                    ("status", "error"),
                    ("platform", platform.as_str()),
                    ("error", e.code.as_str()),
                    ("message", &e.message),
                ],
            ))
        }
        (Ok(accounts), None) if wants_html => Ok(connected_page(&accounts)),
        (Ok(accounts), None) => Ok(Json(ConnectedAccount::of(&accounts)).into_response()),
        (Err(e), None) => Err(e),
    }
}

/// Disconnects one of the caller's accounts (its tokens are deleted with it).
#[utoipa::path(delete, path = "/v1/accounts/{id}", tag = "accounts",
    operation_id = "disconnectAccount",
    security(("apiKey" = ["accounts:write"]), ("idToken" = [])),
    params(("id" = String, Path, description = "The account's `id` from GET /v1/accounts")),
    responses((status = 204, description = "Disconnected"), ApiKeyErrors, CommonErrors))]
pub async fn disconnect(
    State(state): State<AppState>,
    KeyOrToken(caller): KeyOrToken,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    crate::service::accounts::disconnect(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn redirect(to: &str, params: &[(&str, &str)]) -> Response {
    let mut url = url::Url::parse(to).expect("checked when the authorization started");
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn connected_page(accounts: &[Account]) -> Response {
    let who = accounts
        .iter()
        .map(|a| {
            a.username
                .as_deref()
                .or(a.display_name.as_deref())
                .unwrap_or(&a.account_id)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let html = match crate::templates::connected_page(accounts[0].platform.display_name(), &who) {
        Ok(html) => html,
        Err(e) => return ApiError::internal(format!("rendering the page: {e}")).into_response(),
    };
    let mut r = html.into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}
