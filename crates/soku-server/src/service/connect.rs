//! Connecting accounts (issue 6): start an authorization (or connect with credentials), and
//! finish it when the platform sends the user back.
//!
//! OAuth platforms: the state value in the authorization URL is random (256 bits), stored only
//! as its SHA-256, bound to the user who asked, usable once, and good for 10 minutes. The PKCE
//! verifier and whatever the connector keeps until the callback (a Mastodon instance's app) are
//! sealed with the server key. The callback trades the code for tokens and stores the account
//! with its tokens encrypted (reconnecting an account the user has replaces its tokens).
//!
//! Binding to the user: an authorization started from the dashboard completes only in a browser
//! signed in to the dashboard as that user. One started with an API key or an ID token (a script,
//! an agency sending a client the link) completes in whichever browser approves it, as the
//! platform's consent screen names this server's app; but a callback carrying a dashboard session
//! of another user is refused, so an account cannot land in someone else's workspace by mistake.
//! `redirectUri` must be this server, an http URL on loopback, or an https URL (restricted to
//! the origins in `SOKU_CONNECT_REDIRECT_ORIGINS` when the operator sets it).
//! Credential platforms (Bluesky app passwords) connect in the one call.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{AccountView, AuthorizationStarted, Connected};
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
use soku_core::request::Field;
use soku_core::time::rfc3339_millis;
use utoipa::ToSchema;

/// How long an authorization may take.
pub const STATE_TTL_MINUTES: i64 = 10;
const RETURN_TO_MAX: usize = 2048;

/// The body of `POST /v1/accounts/connect`. The whole body also goes to the platform's
/// connector, which reads its own fields (Bluesky's `identifier`, `appPassword` and `pds`,
/// Mastodon's `instance`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(from = "Value", rename_all = "camelCase")]
pub struct ConnectRequest {
    /// x, threads, linkedin, mastodon, bluesky, ...
    #[schema(value_type = String)]
    pub platform: Field<String>,
    /// Where the browser goes when the authorization ends (OAuth platforms): this server, an
    /// http URL on loopback, or an allowed https URL.
    #[schema(value_type = Option<String>)]
    pub redirect_uri: Field<String>,
    /// Bluesky: the handle or email.
    #[schema(value_type = Option<String>)]
    pub identifier: Field<String>,
    /// Bluesky: an app password.
    #[schema(value_type = Option<String>)]
    pub app_password: Field<String>,
    /// Bluesky: the PDS, when not bsky.social.
    #[schema(value_type = Option<String>)]
    pub pds: Field<String>,
    /// Mastodon: the instance, e.g. `mastodon.social`.
    #[schema(value_type = Option<String>)]
    pub instance: Field<String>,
    /// The body as sent, for the connector.
    #[serde(skip)]
    pub raw: Value,
}

impl From<Value> for ConnectRequest {
    fn from(raw: Value) -> Self {
        Self {
            platform: Field::member(&raw, "platform"),
            redirect_uri: Field::member(&raw, "redirectUri"),
            identifier: Field::member(&raw, "identifier"),
            app_password: Field::member(&raw, "appPassword"),
            pds: Field::member(&raw, "pds"),
            instance: Field::member(&raw, "instance"),
            raw,
        }
    }
}

impl ConnectRequest {
    /// The same request with `redirectUri` set (the dashboard brings the browser back to itself).
    pub fn with_redirect_uri(mut self, uri: String) -> Self {
        if let Value::Object(o) = &mut self.raw {
            o.insert("redirectUri".into(), Value::String(uri));
        }
        Self::from(self.raw)
    }
}

/// Starts connecting an account for the caller: the authorization URL (OAuth platforms), or the
/// connected account (credentials). `from_dashboard`: the callback must come with the caller's
/// dashboard session.
pub async fn connect(
    state: &AppState,
    caller: &Caller,
    request: ConnectRequest,
    from_dashboard: bool,
) -> ApiResult<Connected> {
    let user_id = caller.user_id.as_str();
    let body = &request.raw;
    let platform = match &request.platform {
        Field::Value(s) => Platform::parse(s).ok_or_else(|| {
            ApiError::validation("platform", "unknown", format!("Unknown platform '{s}'."))
        })?,
        Field::Null | Field::WrongType => {
            return Err(ApiError::validation(
                "platform",
                "type",
                "'platform' must be a string.",
            ));
        }
        Field::Absent => {
            return Err(ApiError::validation(
                "platform",
                "required",
                "The 'platform' field is required.",
            ));
        }
    };
    if caller.mode == KeyMode::Test {
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
            Ok(Connected::Account(AccountView::of(&account)))
        }
        ConnectMethod::OAuth => {
            let return_to = match &request.redirect_uri {
                Field::Absent | Field::Null => None,
                Field::Value(s) => Some(return_to(state, s)?),
                Field::WrongType => {
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
            Ok(Connected::Started(AuthorizationStarted {
                platform: platform.as_str(),
                authorization_url: start.url,
                expires_at: rfc3339_millis(expires_at),
            }))
        }
        ConnectMethod::None => Err(ApiError::validation(
            "platform",
            "unsupported",
            format!("This server cannot connect {name} accounts yet."),
        )),
    }
}

/// What the platform sends back to `GET /v1/oauth/{platform}/callback`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The state value of the authorization URL.
    pub state: Option<String>,
    /// The platform's error, when the user or the platform refused.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// An authorization that came back: where its browser goes, and how it ended.
pub struct Finished {
    pub platform: Platform,
    /// The client's `redirectUri`, when it gave one.
    pub return_to: Option<String>,
    /// The accounts connected (at least one), in the platform's order.
    pub accounts: ApiResult<Vec<Account>>,
}

/// The second half of an authorization. `session_user`: the user of the dashboard session the
/// callback came with, if any. Errors about the state itself (unknown, used, expired, another
/// user's) are the `Err`; everything after is in `Finished::accounts`.
pub async fn finish(
    state: &AppState,
    platform: &str,
    query: &CallbackQuery,
    session_user: Option<&str>,
) -> ApiResult<Finished> {
    let platform = Platform::parse(platform).ok_or_else(|| ApiError::not_found("platform"))?;
    let Some(state_value) = query.state.as_deref().filter(|s| !s.is_empty()) else {
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
    if session_user.is_some_and(|u| u != started.user_id) {
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
    let accounts = complete(state, &started, query).await;
    Ok(Finished {
        platform,
        return_to: started.return_to,
        accounts,
    })
}

/// The code for tokens, then every account the authorization granted stored.
async fn complete(
    state: &AppState,
    started: &OAuthState,
    q: &CallbackQuery,
) -> ApiResult<Vec<Account>> {
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
        .exchange_all(&CodeExchange {
            code: code.to_owned(),
            redirect_uri: started.redirect_uri.clone(),
            code_verifier: opened["verifier"].as_str().unwrap_or_default().to_owned(),
            pending: opened["pending"].clone(),
        })
        .await
        .map_err(|e| connect_error(platform, e))?;
    if connected.is_empty() {
        return Err(ApiError::validation(
            "code",
            "no_accounts",
            format!("{name} granted no account to connect."),
        ));
    }
    let mut accounts = Vec::with_capacity(connected.len());
    for one in connected {
        accounts.push(save_account(state, &started.user_id, platform, one).await?);
    }
    Ok(accounts)
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
