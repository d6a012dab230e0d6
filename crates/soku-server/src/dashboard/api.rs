//! The dashboard's JSON endpoints (`/dashboard/api/...`), for the signed-in user.

use super::session::{not_signed_in, signed_for_change, signed_in};
use crate::api::{accounts, posts};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::json::Json;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use soku_core::keys::KeyMode;
use soku_core::model::Subscription;
use soku_core::time::rfc3339_millis;
use std::collections::HashMap;

pub(super) async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let sub = state.store.get_subscription(&signed.user.id).await?;
    let now = state.clock.now();
    Ok(Json(json!({
        "user": { "id": signed.user.id, "email": signed.user.email },
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
    headers: HeaderMap,
    Query(mut params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let mode = mode_of(&params)?;
    params.remove("mode");
    posts::list_for(&state, &signed.user.id, mode, &params).await
}

#[derive(Deserialize)]
pub(super) struct Compose {
    mode: Option<String>,
    /// What `POST /v1/posts` takes.
    request: Value,
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
    let mut response = match posts::create_for(
        &state,
        &signed.user.id,
        mode,
        &HeaderMap::new(),
        body.request,
    )
    .await
    {
        Ok(r) => r,
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
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let signed = signed_for_change(&state, &headers).await?;
    posts::cancel_for(&state, &signed.user.id, mode_of(&params)?, &id).await
}

pub(super) async fn list_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    accounts::list_for(&state, &signed.user, mode_of(&params)?).await
}

/// The platforms this server can connect, and how.
pub(super) async fn connectable(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
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
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<Value>,
) -> ApiResult<Response> {
    let signed = signed_for_change(&state, &headers).await?;
    body["redirectUri"] = Value::String(format!(
        "{}/accounts",
        state.tokens.builtin().issuer().trim_end_matches('/')
    ));
    crate::api::connect::connect_for(&state, &signed.user.id, KeyMode::Live, &body, true).await
}

pub(super) async fn disconnect_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let signed = signed_for_change(&state, &headers).await?;
    if state.store.delete_account(&signed.user.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("account"))
    }
}
