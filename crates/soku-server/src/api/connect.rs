//! Connecting accounts (issue 6): `POST /v1/accounts/connect`, the OAuth callback
//! `GET /v1/oauth/{platform}/callback`, and `DELETE /v1/accounts/{id}`.
//!
//! OAuth platforms: connect answers the authorization URL; the state value in it is random
//! (256 bits), stored only as its SHA-256, bound to the user who asked, usable once, and good
//! for 10 minutes. The PKCE verifier and whatever the connector keeps until the callback (a
//! Mastodon instance's app) are sealed with the server key. The callback trades the code for
//! tokens, stores the account with its tokens encrypted (reconnecting an account the user has
//! replaces its tokens) and sends the browser to the client's `redirectUri` with
//! `status=connected` (or `status=error`), or answers the account itself.
//!
//! Binding to the user: an authorization started from the dashboard completes only in a browser
//! signed in to the dashboard as that user. One started with an API key or an ID token (a script,
//! an agency sending a client the link) completes in whichever browser approves it, as the
//! platform's consent screen names this server's app; but a callback carrying a dashboard session
//! of another user is refused, so an account cannot land in someone else's workspace by mistake.
//! `redirectUri` must be this server, an http URL on loopback, or an https URL (restricted to
//! the origins in `SOKU_CONNECT_REDIRECT_ORIGINS` when the operator sets it).
//! Credential platforms (Bluesky app passwords) connect in the one call.

use super::docs::{ApiKeyErrors, BodyErrors, CommonErrors, ErrorEnvelope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, KeyOrToken};
use crate::json::Json;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use soku_core::ErrorCode;
use soku_core::connector::{
    AuthorizationRequest, CodeExchange, ConnectError, ConnectErrorKind, ConnectMethod,
    ConnectedAccount,
};
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::queue::{Account, AccountStatus, NewAccount, OAuthState, StateUse};
use soku_core::time::rfc3339_millis;

/// How long an authorization may take.
pub const STATE_TTL_MINUTES: i64 = 10;
const RETURN_TO_MAX: usize = 2048;

/// An account as the API shows it (never its tokens).
pub fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id,
        "platform": a.platform.as_str(),
        "accountId": a.account_id,
        "displayName": a.display_name,
        "username": a.username,
        "status": a.status.as_str(),
        "isDefault": a.is_default,
        "tokenExpiresAt": a.token_expires_at.map(rfc3339_millis),
        "createdAt": rfc3339_millis(a.created_at),
    })
}

/// Starts connecting an account: the authorization URL (OAuth platforms), or the connected
/// account (Bluesky, with `identifier` and `appPassword`).
#[utoipa::path(post, path = "/v1/accounts/connect", tag = "accounts",
    security(("apiKey" = []), ("idToken" = [])),
    request_body(content = Value, description = "`{platform, redirectUri?}`; Bluesky: `{platform: \"bluesky\", identifier, appPassword, pds?}`; Mastodon: `instance`"),
    responses(
        (status = 200, description = "`{platform, authorizationUrl, expiresAt}`", body = Value),
        (status = 201, description = "`{account}` (credential platforms)", body = Value),
        ApiKeyErrors, BodyErrors, CommonErrors))]
pub async fn connect(
    State(state): State<AppState>,
    KeyOrToken(caller): KeyOrToken,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    connect_for(&state, &caller.user_id, caller.mode, &body, false).await
}

/// `POST /v1/accounts/connect` for a user; `from_dashboard`: the callback must come with that
/// user's dashboard session.
pub async fn connect_for(
    state: &AppState,
    user_id: &str,
    mode: KeyMode,
    body: &Value,
    from_dashboard: bool,
) -> ApiResult<Response> {
    let platform = match body.get("platform") {
        Some(Value::String(s)) => Platform::parse(s).ok_or_else(|| {
            ApiError::validation("platform", "unknown", format!("Unknown platform '{s}'."))
        })?,
        Some(_) => {
            return Err(ApiError::validation(
                "platform",
                "type",
                "'platform' must be a string.",
            ));
        }
        None => {
            return Err(ApiError::validation(
                "platform",
                "required",
                "The 'platform' field is required.",
            ));
        }
    };
    if mode == KeyMode::Test {
        return Err(ApiError::validation(
            "platform",
            "test_mode",
            "Test-mode keys publish to simulated accounts, which need no connecting; connect real accounts with a live key.",
        ));
    }
    let name = platform.display_name();
    let connector = state
        .connectors
        .live
        .get(&platform)
        .cloned()
        .ok_or_else(|| {
            ApiError::validation(
                "platform",
                "unsupported",
                format!("This server cannot connect {name} accounts yet."),
            )
        })?;
    match connector.connect_method() {
        ConnectMethod::Credentials => {
            let connected = connector
                .connect_direct(body)
                .await
                .map_err(|e| connect_error(platform, e))?;
            let account = save_account(state, user_id, platform, connected).await?;
            Ok((
                StatusCode::CREATED,
                Json(json!({ "account": account_json(&account) })),
            )
                .into_response())
        }
        ConnectMethod::OAuth => {
            let return_to = match body.get("redirectUri") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(return_to(state, s)?),
                Some(_) => {
                    return Err(ApiError::validation(
                        "redirectUri",
                        "type",
                        "'redirectUri' must be a string.",
                    ));
                }
            };
            let state_value = random_token(32);
            let verifier = random_token(48);
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let redirect_uri = callback_url(state, platform);
            let start = connector
                .authorize(&AuthorizationRequest {
                    state: state_value.clone(),
                    redirect_uri: redirect_uri.clone(),
                    code_challenge: challenge,
                    params: body.clone(),
                })
                .await
                .map_err(|e| connect_error(platform, e))?;
            let now = state.clock.now();
            let expires_at = now + chrono::Duration::minutes(STATE_TTL_MINUTES);
            let sealed = state
                .secrets
                .seal(&json!({ "verifier": verifier, "pending": start.pending }).to_string());
            state
                .store
                .insert_oauth_state(&OAuthState {
                    state_hash: Sha256::digest(state_value.as_bytes()).to_vec(),
                    user_id: user_id.to_owned(),
                    platform,
                    redirect_uri,
                    return_to,
                    from_dashboard,
                    sealed,
                    created_at: now,
                    expires_at,
                })
                .await?;
            Ok(Json(json!({
                "platform": platform.as_str(),
                "authorizationUrl": start.url,
                "expiresAt": rfc3339_millis(expires_at),
            }))
            .into_response())
        }
        ConnectMethod::None => Err(ApiError::validation(
            "platform",
            "unsupported",
            format!("This server cannot connect {name} accounts yet."),
        )),
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Where the platform sends the user back after the authorization.
#[utoipa::path(get, path = "/v1/oauth/{platform}/callback", tag = "accounts",
    params(("platform" = String, Path, description = "x, threads, linkedin, mastodon")),
    responses(
        (status = 200, description = "`{account}` (an HTML page for browsers) when the authorization had no `redirectUri`", body = Value),
        (status = 303, description = "To the client's `redirectUri` with `status=connected&platform=..&accountId=..&id=..` or `status=error&error=..&message=..`"),
        (status = 400, description = "`validation_error`: unknown, used or expired state (`details.reason` `state_unknown`, `state_used`, `state_expired`), or the platform refused the code", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: the authorization was started by another user (`details.reason` `state_other_user`)", body = ErrorEnvelope),
        CommonErrors))]
pub async fn callback(
    State(state): State<AppState>,
    Path(platform): Path<String>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let platform = Platform::parse(&platform).ok_or_else(|| ApiError::not_found("platform"))?;
    let Some(state_value) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(ApiError::validation(
            "state",
            "required",
            "The callback has no 'state'.",
        ));
    };
    let now = state.clock.now();
    let hash = Sha256::digest(state_value.as_bytes()).to_vec();
    let started = match state.store.use_oauth_state(&hash, now).await? {
        StateUse::Used(st) if st.platform == platform => st,
        StateUse::Used(_) | StateUse::Unknown => {
            return Err(state_error(
                "state_unknown",
                "This authorization is unknown. Start again with POST /v1/accounts/connect.",
            ));
        }
        StateUse::AlreadyUsed => {
            return Err(state_error(
                "state_used",
                "This authorization was already used; each one works once. Start again with POST /v1/accounts/connect.",
            ));
        }
    };
    if started.expires_at <= now {
        return Err(state_error(
            "state_expired",
            "This authorization expired (they last 10 minutes). Start again with POST /v1/accounts/connect.",
        ));
    }
    let session_user = crate::dashboard::session_user_id(&state, &headers).await;
    if session_user
        .as_deref()
        .is_some_and(|u| u != started.user_id)
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "This authorization was started by another user; the account was not connected.",
        )
        .with_details(json!({ "reason": "state_other_user" })));
    }
    if started.from_dashboard && session_user.is_none() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "This authorization was started in the dashboard: finish it in the browser signed in as the same user.",
        )
        .with_details(json!({ "reason": "session_required" })));
    }

    let result = complete(&state, &started, &q).await;
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    match (result, &started.return_to) {
        (Ok(account), Some(to)) => Ok(redirect(
            to,
            &[
                ("status", "connected"),
                ("platform", platform.as_str()),
                ("accountId", &account.account_id),
                ("id", &account.id),
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
        (Ok(account), None) if wants_html => Ok(connected_page(&account)),
        (Ok(account), None) => {
            Ok(Json(json!({ "account": account_json(&account) })).into_response())
        }
        (Err(e), None) => Err(e),
    }
}

/// The second half of the authorization: the code for tokens, then the account stored.
async fn complete(state: &AppState, started: &OAuthState, q: &CallbackQuery) -> ApiResult<Account> {
    let platform = started.platform;
    let name = platform.display_name();
    if let Some(error) = &q.error {
        let why = q.error_description.as_deref().unwrap_or(error);
        return Err(ApiError::validation(
            "code",
            "authorization_denied",
            format!(
                "{name} did not authorize the connection: {}",
                truncate(why, 300)
            ),
        ));
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(ApiError::validation(
            "code",
            "required",
            "The callback has no 'code'.",
        ));
    };
    let opened: Value = state
        .secrets
        .open(&started.sealed)
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(|| ApiError::internal("an OAuth state could not be opened"))?;
    let connector = state
        .connectors
        .live
        .get(&platform)
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("no {name} connector for a stored state")))?;
    let connected = connector
        .exchange(&CodeExchange {
            code: code.to_owned(),
            redirect_uri: started.redirect_uri.clone(),
            code_verifier: opened["verifier"].as_str().unwrap_or_default().to_owned(),
            pending: opened["pending"].clone(),
        })
        .await
        .map_err(|e| connect_error(platform, e))?;
    save_account(state, &started.user_id, platform, connected).await
}

async fn save_account(
    state: &AppState,
    user_id: &str,
    platform: Platform,
    connected: ConnectedAccount,
) -> ApiResult<Account> {
    let now = state.clock.now();
    let tokens = &connected.tokens;
    let new = NewAccount {
        account: Account {
            id: soku_core::keys::random_id("acc_", 20),
            user_id: user_id.to_owned(),
            platform,
            account_id: connected.account_id,
            display_name: connected.display_name,
            username: connected.username,
            status: AccountStatus::Active,
            is_default: false,
            token_expires_at: tokens.expires_at,
            created_at: now,
            meta: connected.meta,
        },
        access_token: Some(state.secrets.seal(&tokens.access_token)),
        refresh_token: tokens
            .refresh_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| state.secrets.seal(t)),
    };
    let account = state.store.upsert_account(&new).await?;
    tracing::info!(account = %account.id, platform = %platform, "account connected");
    Ok(account)
}

/// Disconnects one of the caller's accounts (its tokens are deleted with it).
#[utoipa::path(delete, path = "/v1/accounts/{id}", tag = "accounts",
    security(("apiKey" = []), ("idToken" = [])),
    params(("id" = String, Path, description = "The account's `id` from GET /v1/accounts")),
    responses((status = 204, description = "Disconnected"), ApiKeyErrors, CommonErrors))]
pub async fn disconnect(
    State(state): State<AppState>,
    KeyOrToken(caller): KeyOrToken,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if caller.mode == KeyMode::Live && state.store.delete_account(&caller.user_id, &id).await? {
        tracing::info!(account = %id, "account disconnected");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("account"))
    }
}

fn connect_error(platform: Platform, e: ConnectError) -> ApiError {
    let name = platform.display_name();
    let (reason, message) = match e.kind {
        ConnectErrorKind::Invalid => ("invalid", e.message.clone()),
        ConnectErrorKind::Rejected => ("rejected", format!("{name} refused: {}", e.message)),
        ConnectErrorKind::Unsupported | ConnectErrorKind::NotRefreshable => {
            ("unsupported", e.message.clone())
        }
        ConnectErrorKind::NotConfigured => (
            "not_configured",
            format!("{name} is not configured on this server: {}", e.message),
        ),
        ConnectErrorKind::Unavailable => {
            return ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!("{name} could not be reached; try again shortly."),
            )
            .with_details(
                json!({ "platform": platform.as_str(), "reason": "platform_unavailable" }),
            );
        }
    };
    let mut details = json!({ "field": e.field.unwrap_or("platform"), "platform": platform.as_str(), "reason": reason });
    if let Some(raw) = e.platform_error {
        details["platformError"] = Value::String(truncate(&raw, 1000));
    }
    ApiError::new(ErrorCode::ValidationError, message).with_details(details)
}

fn state_error(reason: &str, message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::ValidationError, message)
        .with_details(json!({ "field": "state", "reason": reason }))
}

/// The client's `redirectUri`: this server, an http URL on loopback (a local app or script), or
/// an https URL, restricted to `SOKU_CONNECT_REDIRECT_ORIGINS` (comma-separated origins) when set.
fn return_to(state: &AppState, s: &str) -> ApiResult<String> {
    let bad =
        |why: &str| ApiError::validation("redirectUri", "invalid", format!("'redirectUri' {why}"));
    if s.len() > RETURN_TO_MAX {
        return Err(bad("is too long."));
    }
    let url = url::Url::parse(s).map_err(|_| bad("must be an absolute URL."))?;
    let origin = url.origin().ascii_serialization();
    let own = url::Url::parse(state.tokens.builtin().issuer())
        .map(|u| u.origin().ascii_serialization())
        .ok();
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let allowed = own.as_deref() == Some(origin.as_str())
        || (url.scheme() == "http" && loopback)
        || (url.scheme() == "https"
            && (state.connect_redirect_origins.as_ref()).is_none_or(|list| list.contains(&origin)));
    if !allowed {
        return Err(bad(
            "must be an https URL (or http on localhost) whose origin this server allows.",
        ));
    }
    Ok(url.to_string())
}

/// Our callback for `platform`, as registered with the platform.
pub fn callback_url(state: &AppState, platform: Platform) -> String {
    format!(
        "{}/v1/oauth/{}/callback",
        state.tokens.builtin().issuer().trim_end_matches('/'),
        platform.as_str()
    )
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

fn connected_page(account: &Account) -> Response {
    let who = account
        .username
        .as_deref()
        .or(account.display_name.as_deref())
        .unwrap_or(&account.account_id);
    let html = match crate::templates::connected_page(account.platform.display_name(), who) {
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

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}
