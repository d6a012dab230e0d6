//! The dashboard's JSON endpoints (`/dashboard/api/...`), for the signed-in user.

use crate::api::{accounts, posts};
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, SessionForChange, SessionUser};
use crate::json::Json;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use soku_core::keys::KeyMode;
use soku_core::model::Subscription;
use soku_core::time::rfc3339_millis;
use std::collections::HashMap;

pub(super) async fn overview(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
) -> ApiResult<Json<Value>> {
    let user = caller.user().expect("a session caller has a user");
    let sub = state.store.get_subscription(&user.id).await?;
    let now = state.clock.now();
    Ok(Json(json!({
        "user": { "id": user.id, "email": user.email },
        "subscription": sub.as_ref().map(|s| json!({
            "status": s.status.as_str(),
            "currentPeriodEnd": rfc3339_millis(s.current_period_end),
        })),
        "hasAccess": Subscription::grants_access(sub.as_ref(), now),
    })))
}

pub(super) fn mode_of(params: &HashMap<String, String>) -> ApiResult<KeyMode> {
    parse_mode(params.get("mode").map(String::as_str))
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

pub(super) async fn list_posts(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    Query(mut params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let mode = mode_of(&params)?;
    params.remove("mode");
    posts::list_for(&state, &caller.user_id, mode, &params).await
}

#[derive(Deserialize)]
pub(super) struct Compose {
    mode: Option<String>,
    /// What `POST /v1/posts` takes.
    request: Value,
}

/// The composer: `POST /v1/posts` on the signed-in user's behalf, behind the same
/// subscription gate as an API key. The request middleware counts it as `POST /v1/posts`
/// against the user's rate-limit budget (`ratelimit::counted_as`), with its headers.
pub(super) async fn create_post(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    ApiJson(body): ApiJson<Compose>,
) -> ApiResult<Response> {
    let mode = parse_mode(body.mode.as_deref())?;
    auth::gate(&state, &caller)?;
    posts::create_for(
        &state,
        &caller.user_id,
        mode,
        &HeaderMap::new(),
        body.request,
    )
    .await
}

pub(super) async fn cancel_post(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    posts::cancel_for(&state, &caller.user_id, mode_of(&params)?, &id).await
}

pub(super) async fn list_accounts(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let user = caller.user().expect("a session caller has a user");
    accounts::list_for(&state, user, mode_of(&params)?).await
}

/// The platforms this server can connect, and how.
pub(super) async fn connectable(
    State(state): State<AppState>,
    SessionUser(_): SessionUser,
) -> ApiResult<Json<Value>> {
    let mut platforms: Vec<Value> = soku_core::platform::Platform::ALL
        .iter()
        .filter_map(|p| {
            let connector = state.connectors.live.get(p)?;
            if !connector.configured() {
                return None;
            }
            let method = match connector.connect_method() {
                soku_core::connector::ConnectMethod::OAuth => "oauth",
                soku_core::connector::ConnectMethod::Credentials => "credentials",
                soku_core::connector::ConnectMethod::None => return None,
            };
            Some(json!({ "platform": p.as_str(), "name": p.display_name(), "method": method }))
        })
        .collect();
    platforms.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(json!({ "platforms": platforms })))
}

/// Connects an account for the signed-in user; OAuth brings the browser back to the
/// Accounts page.
pub(super) async fn connect_account(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    ApiJson(mut body): ApiJson<Value>,
) -> ApiResult<Response> {
    body["redirectUri"] = Value::String(format!(
        "{}/accounts",
        state.tokens.builtin().issuer().trim_end_matches('/')
    ));
    crate::api::connect::connect_for(&state, &caller.user_id, KeyMode::Live, &body, true).await
}

pub(super) async fn disconnect_account(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.delete_account(&caller.user_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("account"))
    }
}
