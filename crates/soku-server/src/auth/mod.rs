//! Authentication: who is asking. One `Caller` for every credential: an API key (spec 3.1),
//! an ID token (3.3) or a dashboard session; a request without one is known by its client
//! address. One subscription gate (3.2).
//!
//! The request middleware asks `identify` once for the routes it rate-limits and leaves the
//! answer (`Identified`) in the request's extensions; the extractors (`crate::extract`) take
//! it from there, or identify the caller themselves the same way where the middleware did not
//! (limits off, or a route it does not count).

pub mod caller;
pub mod client_ip;
pub mod github;
pub mod keys;
pub mod passwords;
pub mod scopes;
pub mod session;
pub mod tokens;
pub mod users;

pub use caller::{
    Accepts, Caller, Credential, Identified, Identity, Scopes, bearer_token, client_address, gate,
    identified, identify,
};

use crate::error::ApiError;
use crate::state::AppState;
use keys::KeyFailure;
use soku_core::ErrorCode;
use tokens::TokenFailure;

/// Why a request has no caller for its route (or, `Subscription`, why its caller is refused).
#[derive(Clone, Debug)]
pub enum AuthFailure {
    /// No valid API key: 401, or 503 when the store did not answer.
    Key(KeyFailure),
    /// No `Authorization` header where an ID token is needed: 401.
    TokenMissing,
    /// No valid ID token: 401, or 503 when the identity provider's keys cannot be fetched.
    Token(TokenFailure),
    /// The owner's subscription does not grant access: 403.
    Subscription,
    /// No dashboard session: 401.
    NotSignedIn,
    /// A state-changing dashboard call without its session's CSRF token: 403.
    Csrf,
    /// The store failed while identifying the caller: 500 (the cause goes to the log).
    Store(String),
}

impl AuthFailure {
    pub fn store(e: soku_core::StoreError) -> Self {
        AuthFailure::Store(e.to_string())
    }

    /// The `reason` label of `soku_auth_failures_total`, for the API's credentials.
    pub fn reason(&self) -> Option<&'static str> {
        Some(match self {
            AuthFailure::Key(f) => f.reason(),
            AuthFailure::TokenMissing => "token_missing",
            AuthFailure::Token(TokenFailure::Rejected(r)) => r.as_str(),
            AuthFailure::Token(TokenFailure::KeysUnavailable) => "token_keys_unavailable",
            AuthFailure::Subscription => "subscription_inactive",
            AuthFailure::NotSignedIn | AuthFailure::Csrf | AuthFailure::Store(_) => return None,
        })
    }

    /// The answer to the request, counted in the metrics.
    pub fn reject(self, state: &AppState) -> ApiError {
        if let Some(reason) = self.reason() {
            state.metrics.record_auth_failure(reason);
        }
        match self {
            AuthFailure::Key(KeyFailure::Unavailable) => ApiError::unavailable(
                "The service is temporarily unavailable.",
                "the database did not answer the key lookup",
            ),
            AuthFailure::Key(_) => ApiError::invalid_api_key(),
            AuthFailure::TokenMissing | AuthFailure::Token(TokenFailure::Rejected(_)) => {
                ApiError::invalid_id_token()
            }
            AuthFailure::Token(TokenFailure::KeysUnavailable) => ApiError::unavailable(
                "ID tokens cannot be verified right now; try again shortly.",
                "the identity provider's public keys could not be fetched",
            ),
            AuthFailure::Subscription => ApiError::subscription_required(),
            AuthFailure::NotSignedIn => {
                ApiError::new(ErrorCode::Unauthorized, "Sign in to use the dashboard.")
            }
            AuthFailure::Csrf => ApiError::new(
                ErrorCode::Forbidden,
                "The request lacks this session's CSRF token; reload the page.",
            ),
            // As for a key's lookup: the database not answering is a passing fault, not ours.
            AuthFailure::Store(cause) => {
                ApiError::unavailable("The service is temporarily unavailable.", cause)
            }
        }
    }
}
