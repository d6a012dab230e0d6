//! Who is asking: one `Caller` for every credential the server accepts.
//!
//! `auth::identify` turns a request's credential into a `Caller`; the extractors
//! (`crate::extract`) hand it to handlers, the rate limiter counts it, and services take a
//! `&Caller` and never look at headers.

use super::AuthFailure;
use super::keys::API_KEY_HEADER;
use super::session::{self, Session};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::ConnectInfo;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method};
use chrono::{DateTime, Utc};
use soku_core::idtoken::TokenRejection;
use soku_core::keys::KeyMode;
use soku_core::model::{KeyGrant, RateLimitTier, RateProfile, Role, Subscription, User};
use soku_core::ratelimit::Quota;
use soku_core::scopes::{Scope, ScopeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// An authenticated caller: a valid credential and what its user is entitled to. The
/// subscription gate is applied separately (`auth::gate`): a lapsed subscriber is still a
/// caller, counted against their own rate-limit budget.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user the request acts for.
    pub user_id: String,
    /// The mode the request acts in: the key's; ID tokens and dashboard sessions act in live
    /// mode unless the dashboard asks for test mode.
    pub mode: KeyMode,
    /// How the caller proved who they are.
    pub credential: Credential,
    /// What the credential may do: a restricted key's scopes (spec 4.1), checked against the
    /// route by `auth::scopes::require_scope`; everything for other credentials.
    pub scopes: Scopes,
    /// The rate-limit tier of the user's role and subscription (spec 5).
    pub tier: RateLimitTier,
    /// The operator's override of the user's rate and burst (`soku admin ratelimit set`).
    pub rate_limit: Option<Quota>,
    /// Whether the user's subscription grants access to the API (spec 3.2), when the caller
    /// was identified.
    pub subscribed: bool,
}

/// The credential behind a `Caller`.
#[derive(Clone, Debug)]
pub enum Credential {
    /// An API key (`soku-api-key`), with its record, owner and subscription.
    ApiKey(Arc<KeyGrant>),
    /// An ID token (`Authorization: Bearer`); `session`: the dashboard session a page token
    /// was issued for (checked live on every use).
    IdToken { session: Option<String> },
    /// A dashboard session cookie, with the signed-in user and the session's CSRF token.
    Session(Arc<Session>),
}

/// What a credential may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scopes {
    /// Everything its route allows.
    #[default]
    All,
    /// A restricted key's scopes (spec 4.1).
    Only(ScopeSet),
}

impl Scopes {
    pub fn covers(self, scope: Scope) -> bool {
        match self {
            Scopes::All => true,
            Scopes::Only(set) => set.contains(scope),
        }
    }
}

/// What a user's role, subscription and override entitle them to at one instant.
struct Standing {
    tier: RateLimitTier,
    rate_limit: Option<Quota>,
    subscribed: bool,
}

impl Standing {
    fn new(
        role: Role,
        subscription: Option<&Subscription>,
        rate_limit: Option<Quota>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            tier: RateLimitTier::for_user(role, subscription, now),
            rate_limit,
            subscribed: Subscription::grants_access(subscription, now),
        }
    }

    /// A user's standing from their rate profile; a user without one (not stored yet, or the
    /// store did not answer) is a plain user without a subscription.
    fn of_profile(profile: Option<&RateProfile>, now: DateTime<Utc>) -> Self {
        match profile {
            Some(p) => Self::new(p.role, p.subscription.as_ref(), p.rate_limit, now),
            None => Self::new(Role::User, None, None, now),
        }
    }
}

impl Caller {
    fn new(user_id: String, mode: KeyMode, credential: Credential, standing: Standing) -> Self {
        Self {
            user_id,
            mode,
            credential,
            scopes: Scopes::All,
            tier: standing.tier,
            rate_limit: standing.rate_limit,
            subscribed: standing.subscribed,
        }
    }

    /// A caller by API key, as of `now`.
    pub fn api_key(grant: Arc<KeyGrant>, now: DateTime<Utc>) -> Self {
        let standing = Standing::new(
            grant.user.role,
            grant.subscription.as_ref(),
            grant.rate_limit,
            now,
        );
        let scopes = grant.key.scopes.map_or(Scopes::All, Scopes::Only);
        let mut caller = Self::new(
            grant.user.id.clone(),
            grant.key.mode,
            Credential::ApiKey(grant),
            standing,
        );
        caller.scopes = scopes;
        caller
    }

    /// A caller by ID token, acting in live mode, with the user's rate profile.
    pub fn id_token(
        user_id: String,
        session: Option<String>,
        profile: Option<&RateProfile>,
        now: DateTime<Utc>,
    ) -> Self {
        let standing = Standing::of_profile(profile, now);
        Self::new(
            user_id,
            KeyMode::Live,
            Credential::IdToken { session },
            standing,
        )
    }

    /// Whether the caller's ID token is a dashboard page's (bound to a session).
    pub fn is_page_token(&self) -> bool {
        matches!(&self.credential, Credential::IdToken { session: Some(_) })
    }

    /// A signed-in dashboard user, acting in live mode (a dashboard call may switch `mode`),
    /// with the user's rate profile.
    pub fn session(
        session: Arc<Session>,
        profile: Option<&RateProfile>,
        now: DateTime<Utc>,
    ) -> Self {
        let standing = Standing::of_profile(profile, now);
        Self::new(
            session.user.id.clone(),
            KeyMode::Live,
            Credential::Session(session),
            standing,
        )
    }

    /// The key's grant, for a caller by API key.
    pub fn grant(&self) -> Option<&Arc<KeyGrant>> {
        match &self.credential {
            Credential::ApiKey(grant) => Some(grant),
            _ => None,
        }
    }

    /// The dashboard session, for a signed-in caller.
    pub fn session_info(&self) -> Option<&Session> {
        match &self.credential {
            Credential::Session(session) => Some(session),
            _ => None,
        }
    }

    /// The user's record, where the credential came with it (API keys and sessions).
    pub fn user(&self) -> Option<&User> {
        match &self.credential {
            Credential::ApiKey(grant) => Some(&grant.user),
            Credential::Session(session) => Some(&session.user),
            Credential::IdToken { .. } => None,
        }
    }
}

// ---- finding the caller of a request ----------------------------------------------------------

/// The credential a route takes (spec 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// `soku-api-key`: the content endpoints. Also what the other `/v1` routes are asked
    /// for (those that take no credential, and paths that match no route), so that a valid
    /// key's requests there count against its owner.
    ApiKey,
    /// `Authorization: Bearer <ID token>`: key management.
    IdToken,
    /// Either; a request with both is judged by its key.
    KeyOrToken,
    /// The dashboard's session cookie.
    Session,
    /// The dashboard's session cookie and its CSRF token: state-changing dashboard calls.
    SessionForChange,
}

impl Accepts {
    /// The credential of a route the request middleware identifies callers for (every route
    /// under `/v1`, and the dashboard's composer), by method and route template. It agrees
    /// with the route's extractor; a route it does not know is asked for an API key.
    pub fn of_route(method: &Method, route: &str) -> Accepts {
        match route {
            "/v1/api-keys" | "/v1/audit-events" | "/v1/metrics/refresh" => Accepts::IdToken,
            r if r.starts_with("/v1/api-keys/") => Accepts::IdToken,
            "/v1/accounts/connect" | "/v1/accounts/{id}" => Accepts::KeyOrToken,
            "/dashboard/api/posts" | "/dashboard/api/media" if method == Method::POST => {
                Accepts::SessionForChange
            }
            _ => Accepts::ApiKey,
        }
    }
}

/// Who is asking, as far as the credential a route takes goes.
#[derive(Clone, Debug)]
pub enum Identity {
    /// A valid credential of the kind the route takes.
    Caller(Caller),
    /// None: the client's address (what such requests are counted by), and the failure the
    /// route's extractor answers with.
    Anonymous { ip: IpAddr, failure: AuthFailure },
}

/// The request middleware's `Identity` of a request, in its extensions, for the route's
/// extractor to take instead of identifying the caller again.
#[derive(Clone, Debug)]
pub struct Identified {
    pub accepts: Accepts,
    pub identity: Identity,
}

/// Who is asking, by the credential the route takes.
pub async fn identify(
    state: &AppState,
    accepts: Accepts,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Identity {
    let found = match accepts {
        Accepts::ApiKey => by_api_key(state, headers, extensions).await,
        // Boxed: verifying a token may wait on the identity provider's keys, a large future
        // that would otherwise be part of every request's.
        Accepts::IdToken => Box::pin(by_id_token(state, headers)).await,
        Accepts::KeyOrToken if prefers_token(headers) => {
            Box::pin(by_id_token(state, headers)).await
        }
        Accepts::KeyOrToken => by_api_key(state, headers, extensions).await,
        Accepts::Session => by_session(state, headers, extensions, false).await,
        Accepts::SessionForChange => by_session(state, headers, extensions, true).await,
    };
    match found {
        Ok(caller) => Identity::Caller(caller),
        Err(failure) => Identity::Anonymous {
            ip: client_address(state, headers, extensions),
            failure,
        },
    }
}

/// The caller of a request on a route taking `accepts`: the one the request middleware
/// identified, or, where it did not (limits off, or a route it does not count), identified
/// now, the same way.
pub async fn identified(
    state: &AppState,
    parts: &mut Parts,
    accepts: Accepts,
) -> Result<Caller, AuthFailure> {
    let identity = match parts.extensions.remove::<Identified>() {
        Some(identified) if identified.accepts == accepts => identified.identity,
        _ => identify(state, accepts, &parts.headers, &parts.extensions).await,
    };
    match identity {
        Identity::Caller(caller) => Ok(caller),
        Identity::Anonymous { failure, .. } => Err(failure),
    }
}

/// The subscription gate (spec 3.2), for callers by API key and the dashboard's composer:
/// 403 unless the user's subscription grants access.
pub fn gate(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if caller.subscribed {
        Ok(())
    } else {
        Err(AuthFailure::Subscription.reject(state))
    }
}

async fn by_api_key(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<Caller, AuthFailure> {
    let ip = client_address(state, headers, extensions);
    let grant = state
        .keys
        .authenticate(headers, ip)
        .await
        .map_err(AuthFailure::Key)?;
    Ok(Caller::api_key(grant, state.clock.now()))
}

/// On a route taking a key or a token: whether to judge the request by its ID token. An API
/// key sent as a bearer token is a key in the wrong header: judged as a key (its 401).
fn prefers_token(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION)
        && !headers.contains_key(API_KEY_HEADER)
        && !bearer_token(headers).is_some_and(|t| t.starts_with("sk_"))
}

async fn by_id_token(state: &AppState, headers: &HeaderMap) -> Result<Caller, AuthFailure> {
    if !headers.contains_key(AUTHORIZATION) {
        return Err(AuthFailure::TokenMissing);
    }
    let token =
        bearer_token(headers).ok_or(AuthFailure::Token(TokenRejection::Malformed.into()))?;
    let identity = state
        .tokens
        .verify(token)
        .await
        .map_err(AuthFailure::Token)?;
    let store = state.store.as_ref();
    if let Some(session) = &identity.session {
        // A page token lives no longer than its session: signing out (here or everywhere)
        // ends the tokens the page was given too.
        let live = store
            .find_session(session, state.clock.now())
            .await
            .map_err(AuthFailure::store)?;
        if live.is_none_or(|(s, _)| s.user_id != identity.uid) {
            return Err(AuthFailure::Token(TokenRejection::SessionEnded.into()));
        }
    }
    state
        .users
        .ensure(store, state.clock.as_ref(), &identity)
        .await
        .map_err(AuthFailure::store)?;
    // The profile says whether the user signed out everywhere since this token's sign-in, so
    // a store that does not answer fails the request rather than accept the token unchecked.
    // A user without one is a plain user.
    let profile = state
        .users
        .profile(store, &identity.uid)
        .await
        .map_err(AuthFailure::store)?;
    if let Some(after) = profile.as_ref().and_then(|p| p.tokens_valid_after)
        && identity.signed_in_at < after.timestamp()
    {
        // Whole seconds, as Firebase compares `auth_time` with `tokensValidAfterTime`: a token
        // signed in within the second of the sign-out is not refused, and no token signed in
        // after it ever is.
        return Err(AuthFailure::Token(TokenRejection::Revoked.into()));
    }
    Ok(Caller::id_token(
        identity.uid,
        identity.session,
        profile.as_ref(),
        state.clock.now(),
    ))
}

/// The dashboard session of the request: looked up in the store on every request (a revoked
/// session fails at once); the user's standing comes from the same profile cache as an ID
/// token's, so a subscription set or changed in the store takes effect within it.
async fn by_session(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
    for_change: bool,
) -> Result<Caller, AuthFailure> {
    let client = client_address(state, headers, extensions);
    let session = session::open(state, headers, Some(client))
        .await
        .map_err(AuthFailure::store)?
        .ok_or(AuthFailure::NotSignedIn)?;
    if for_change && !session::csrf_matches(&session, headers) {
        return Err(AuthFailure::Csrf);
    }
    let profile = state
        .users
        .profile(state.store.as_ref(), &session.user.id)
        .await
        .map_err(AuthFailure::store)?;
    Ok(Caller::session(
        Arc::new(session),
        profile.as_ref(),
        state.clock.now(),
    ))
}

/// `Authorization: Bearer <token>`, if that is what the header holds.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        _ => None,
    }
}

/// The client's address: the TCP peer's, or, from a trusted proxy, the one its
/// `X-Forwarded-For` names (`client_ip`).
pub fn client_address(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    state.client_ip(peer, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_of_routes() {
        let get = Method::GET;
        for route in ["/v1/api-keys", "/v1/api-keys/{id}", "/v1/metrics/refresh"] {
            assert_eq!(Accepts::of_route(&get, route), Accepts::IdToken, "{route}");
        }
        for route in [
            "/v1/me",
            "/v1/api-keysx",
            "/v1/posts",
            "/v1/nothing",
            "/v1/auth/login",
        ] {
            assert_eq!(Accepts::of_route(&get, route), Accepts::ApiKey, "{route}");
        }
        assert_eq!(
            Accepts::of_route(&Method::DELETE, "/v1/accounts/{id}"),
            Accepts::KeyOrToken
        );
        assert_eq!(
            Accepts::of_route(&Method::PATCH, "/v1/accounts/{id}"),
            Accepts::KeyOrToken
        );
        assert_eq!(
            Accepts::of_route(&Method::POST, "/dashboard/api/posts"),
            Accepts::SessionForChange
        );
    }

    /// Every documented operation's security agrees with the credential the middleware
    /// identifies callers by.
    #[test]
    fn credentials_agree_with_the_openapi_document() {
        let doc = crate::api::routes().doc;
        let doc = serde_json::to_value(&doc).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let schemes: Vec<&str> = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_object()?.keys().next().map(String::as_str))
                    .collect();
                let method: Method = method.to_uppercase().parse().unwrap();
                let accepts = Accepts::of_route(&method, path);
                let expected = match (schemes.contains(&"apiKey"), schemes.contains(&"idToken")) {
                    (true, true) => Accepts::KeyOrToken,
                    (false, true) => Accepts::IdToken,
                    _ => Accepts::ApiKey,
                };
                assert_eq!(accepts, expected, "{method} {path}: {schemes:?}");
            }
        }
    }
}
