//! Dashboard sessions: the sealed session cookie, its CSRF token, sign-in and sign-out.

use crate::error::{ApiError, ApiResult};
use crate::extract::IdTokenUser;
use crate::json::Json;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use soku_core::ErrorCode;
use soku_core::model::User;
use std::time::Duration;

pub const SESSION_COOKIE: &str = "soku_session";
const SESSION_HOURS: i64 = 12;
/// ID tokens handed to the page for `/v1/api-keys`.
const PAGE_TOKEN_TTL: Duration = Duration::from_secs(600);
static CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

#[derive(Serialize, Deserialize)]
struct Session {
    /// The user id.
    u: String,
    /// Expiry, Unix seconds.
    e: i64,
    /// The CSRF token of this session.
    c: String,
}

/// The signed-in user of a request, from its session cookie.
pub(super) struct Signed {
    pub(super) user: User,
    pub(super) csrf: String,
}

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(super) async fn signed_in(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Signed>> {
    let Some(raw) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|sealed| state.secrets.open(&sealed))
        .and_then(|json| serde_json::from_str::<Session>(&json).ok())
    else {
        return Ok(None);
    };
    if session.e <= state.clock.now().timestamp() {
        return Ok(None);
    }
    let Some(user) = state.store.get_user(&session.u).await? else {
        return Ok(None);
    };
    Ok(Some(Signed {
        user,
        csrf: session.c,
    }))
}

/// The user of the request's dashboard session, if it has a valid one.
pub async fn session_user_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    signed_in(state, headers)
        .await
        .ok()
        .flatten()
        .map(|s| s.user.id)
}

pub(super) fn not_signed_in() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "Sign in to use the dashboard.")
}

/// The signed-in user of a state-changing request: the session, and its CSRF token in
/// `X-CSRF-Token`.
pub(super) async fn signed_for_change(state: &AppState, headers: &HeaderMap) -> ApiResult<Signed> {
    let signed = signed_in(state, headers).await?.ok_or_else(not_signed_in)?;
    let sent = headers.get(&CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !sent.is_some_and(|s| constant_time_eq(s.as_bytes(), signed.csrf.as_bytes())) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "The request lacks this session's CSRF token; reload the page.",
        ));
    }
    Ok(signed)
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn secure(state: &AppState) -> bool {
    state.tokens.builtin().issuer().starts_with("https://")
}

pub(super) fn session_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie text is ASCII")
}

/// Exchanges an ID token (`Authorization: Bearer …`) for a session cookie.
pub(super) async fn open_session(
    State(state): State<AppState>,
    IdTokenUser(user): IdTokenUser,
) -> ApiResult<Response> {
    let session = Session {
        u: user.user_id,
        e: state.clock.now().timestamp() + SESSION_HOURS * 3600,
        c: soku_core::keys::random_id("", 32),
    };
    let sealed = state
        .secrets
        .seal(&serde_json::to_string(&session).expect("a session serialises"));
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        session_cookie(
            &state,
            &URL_SAFE_NO_PAD.encode(sealed),
            SESSION_HOURS * 3600,
        ),
    );
    Ok(response)
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    signed_for_change(&state, &headers).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

/// A short-lived ID token of the built-in issuer for the signed-in user, for the page to call
/// `/v1/api-keys` with. Kept in the page's memory only.
pub(super) async fn page_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let signed = signed_for_change(&state, &headers).await?;
    let token = state
        .tokens
        .builtin()
        .issue(
            &signed.user.id,
            signed.user.email.as_deref(),
            state.clock.now(),
            PAGE_TOKEN_TTL,
        )
        .map_err(ApiError::internal)?;
    Ok(Json(
        json!({ "idToken": token, "expiresIn": PAGE_TOKEN_TTL.as_secs() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_comparison() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; soku_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
