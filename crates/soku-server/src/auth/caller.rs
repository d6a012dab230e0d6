//! Who is asking: one `Caller` for every credential the server accepts.
//!
//! The extractors (`crate::extract`) turn a request's credential into a `Caller`; services
//! (`crate::service`) take a `&Caller` and never look at headers.

use soku_core::keys::KeyMode;
use soku_core::model::KeyGrant;
use std::sync::Arc;

/// An authenticated caller, past the checks its route asks for.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user the request acts for.
    pub user_id: String,
    /// The mode the request acts in: the key's; ID tokens and dashboard sessions act in live
    /// mode unless the dashboard asks for test mode.
    pub mode: KeyMode,
    /// How the caller proved who they are.
    pub credential: Credential,
    /// What the credential may do. Every credential may do everything until restricted keys
    /// exist (the key-lifecycle work).
    pub scopes: Scopes,
}

/// The credential behind a `Caller`.
#[derive(Clone, Debug)]
pub enum Credential {
    /// An API key (`soku-api-key`), with its record, owner and subscription.
    ApiKey(Arc<KeyGrant>),
    /// An ID token (`Authorization: Bearer`).
    IdToken,
    /// A dashboard session cookie.
    Session,
}

/// What a credential may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scopes {
    /// Everything its route allows.
    #[default]
    All,
}

impl Caller {
    /// A caller by API key.
    pub fn api_key(grant: Arc<KeyGrant>) -> Self {
        Self {
            user_id: grant.user.id.clone(),
            mode: grant.key.mode,
            credential: Credential::ApiKey(grant),
            scopes: Scopes::All,
        }
    }

    /// A caller by ID token, acting in live mode.
    pub fn id_token(user_id: String) -> Self {
        Self {
            user_id,
            mode: KeyMode::Live,
            credential: Credential::IdToken,
            scopes: Scopes::All,
        }
    }

    /// A signed-in dashboard user, acting in `mode`.
    pub fn session(user_id: String, mode: KeyMode) -> Self {
        Self {
            user_id,
            mode,
            credential: Credential::Session,
            scopes: Scopes::All,
        }
    }

    /// The key's grant, for a caller by API key.
    pub fn grant(&self) -> Option<&Arc<KeyGrant>> {
        match &self.credential {
            Credential::ApiKey(grant) => Some(grant),
            _ => None,
        }
    }
}
