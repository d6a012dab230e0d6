//! Dashboard sessions: sign-in and sign-out, and the page's short-lived ID token. The cookie
//! itself (sealing, opening, the CSRF check) is `auth::session`'s.

use crate::auth::session::{self, SESSION_HOURS};
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdTokenUser, SessionForChange};
use crate::json::Json;
use crate::state::AppState;
use crate::views::IdTokenIssued;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// ID tokens handed to the page for `/v1/api-keys`.
const PAGE_TOKEN_TTL: Duration = Duration::from_secs(600);

/// Exchanges an ID token (`Authorization: Bearer …`) for a session cookie.
pub(super) async fn open_session(
    State(state): State<AppState>,
    IdTokenUser(user): IdTokenUser,
) -> ApiResult<Response> {
    let sealed = session::seal(&state, user.user_id);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        session::cookie_header(&state, &sealed, SESSION_HOURS * 3600),
    );
    Ok(response)
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    SessionForChange(_): SessionForChange,
) -> ApiResult<Response> {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session::cookie_header(&state, "", 0));
    Ok(response)
}

/// A short-lived ID token of the built-in issuer for the signed-in user, for the page to call
/// `/v1/api-keys` with. Kept in the page's memory only.
pub(super) async fn page_token(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
) -> ApiResult<Json<IdTokenIssued>> {
    let user = caller.user().expect("a session caller has a user");
    let token = state
        .tokens
        .builtin()
        .issue(
            &user.id,
            user.email.as_deref(),
            state.clock.now(),
            PAGE_TOKEN_TTL,
        )
        .map_err(ApiError::internal)?;
    Ok(Json(IdTokenIssued {
        id_token: token,
        expires_in: PAGE_TOKEN_TTL.as_secs(),
        user_id: user.id.clone(),
    }))
}
