//! Dashboard sessions: sign-in and sign-out, and the page's short-lived ID token. The session
//! itself (its row, the cookie, the CSRF check) is `auth::session`'s; listing and ending
//! sessions from the Sessions page is `service::sessions`'.

use crate::auth::session::{self, SESSION_HOURS};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientOrigin, IdTokenUser, SessionForChange};
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

/// Exchanges an ID token (`Authorization: Bearer …`) for a new session and its cookie
/// (`session.signed_in`).
pub(super) async fn open_session(
    State(state): State<AppState>,
    IdTokenUser(user): IdTokenUser,
    ClientOrigin(origin): ClientOrigin,
) -> ApiResult<Response> {
    if user.is_page_token() {
        // A session's page token opens no other session: otherwise a copied cookie could mint
        // tokens and outlive "Sign out everywhere" through them.
        return Err(ApiError::invalid_id_token());
    }
    let sealed = session::start(&state, &user.user_id, origin).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        session::cookie_header(&state, &sealed, SESSION_HOURS * 3600),
    );
    Ok(response)
}

/// Ends this session on the server (`session.signed_out`): every copy of its cookie stops
/// working. The browser's cookie is cleared too.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    SessionForChange(caller): SessionForChange,
    ClientOrigin(origin): ClientOrigin,
) -> ApiResult<Response> {
    crate::service::sessions::sign_out(&state, &caller, origin).await?;
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
    let session = caller
        .session_info()
        .expect("a session caller has a session");
    let token = state
        .tokens
        .builtin()
        .issue_for_session(
            &user.id,
            user.email.as_deref(),
            state.clock.now(),
            PAGE_TOKEN_TTL,
            Some(&session.id),
        )
        .map_err(ApiError::internal)?;
    Ok(Json(IdTokenIssued {
        id_token: token,
        expires_in: PAGE_TOKEN_TTL.as_secs(),
        user_id: user.id.clone(),
    }))
}
