//! `POST /v1/auth/login`: email and password of the built-in identity provider, for an ID token
//! of the built-in issuer (the dashboard's sign-in; scripts may use it too).

use super::docs::{BodyErrors, CommonErrors};
use crate::dashboard::passwords;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::json::Json;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::json;
use soku_core::ErrorCode;
use soku_core::ratelimit::Subject;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// ID tokens from a password sign-in last this long.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// Signs in with the email and password of the built-in identity provider. Five failed
/// attempts for one email (or fifty from one address) within 15 minutes lock further attempts
/// out until the 15 minutes are over: 429 with `Retry-After`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", operation_id = "login",
    request_body(content = LoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "An ID token of the built-in issuer", body = crate::views::IdTokenIssued),
        (status = 401, description = "`unauthorized`: the email and password do not match a user", body = crate::views::ErrorEnvelope),
        (status = 429, description = "`rate_limit_exceeded`: too many failed attempts", body = crate::views::ErrorEnvelope),
        BodyErrors, CommonErrors))]
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<crate::views::IdTokenIssued>> {
    let email = body.email.trim().to_lowercase();
    let mut keys = vec![format!("email:{email}")];
    if let Some(Extension(ConnectInfo(addr))) = peer {
        // The client, not a proxy in front of it (or every client behind one proxy would
        // share one count, and one of them could lock all the others out); IPv6 by /64, as
        // the rate limits count it.
        keys.push(Subject::ip(state.client_ip(addr.ip(), &headers)).key());
    }
    if let Some(wait) = state.login_throttle.locked(&keys, Instant::now()) {
        return Err(ApiError::new(
            ErrorCode::RateLimitExceeded,
            "Too many failed sign-in attempts; try again later.",
        )
        .with_details(json!({ "limit": "sign_in" }))
        .with_header(
            RETRY_AFTER,
            HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64),
        ));
    }
    let candidates = if email.is_empty() || body.password.is_empty() || body.password.len() > 1024 {
        Vec::new()
    } else {
        state.store.password_users(&email).await?
    };
    let password = body.password;
    let matched = tokio::task::spawn_blocking(move || {
        if candidates.is_empty() {
            // The same work as a wrong password, so that timing does not tell which emails exist.
            passwords::verify(passwords::decoy(), &password);
            return None;
        }
        candidates
            .into_iter()
            .find(|(_, hash)| passwords::verify(hash, &password))
            .map(|(user, _)| user)
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(user) = matched else {
        state.login_throttle.failed(&keys, Instant::now());
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "The email or password is incorrect.",
        ));
    };
    state.login_throttle.succeeded(&keys[0]);
    let token = state
        .tokens
        .builtin()
        .issue(
            &user.id,
            user.email.as_deref(),
            state.clock.now(),
            TOKEN_TTL,
        )
        .map_err(ApiError::internal)?;
    Ok(Json(crate::views::IdTokenIssued {
        id_token: token,
        expires_in: TOKEN_TTL.as_secs(),
        user_id: user.id,
    }))
}
