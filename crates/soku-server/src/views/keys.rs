//! The views of key management (spec 4 and 4.1): a created key, the listing, and the audit
//! events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use soku_core::audit::AuditEvent;
use soku_core::model::ApiKey;
use soku_core::scopes::ScopeSet;
use soku_core::time::rfc3339_millis;
use utoipa::ToSchema;

/// A key just created (or the new key of a rotation).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// The full key. This is the only time it is shown.
    pub api_key: String,
    pub id: String,
    pub name: Option<String>,
    pub mode: &'static str,
    pub preview: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Null: full access.
    pub scopes: Option<Vec<&'static str>>,
    /// Null: anywhere.
    pub allowed_ips: Option<Vec<String>>,
}

impl CreatedKey {
    /// A key just stored (`NewApiKey::stored` for one just created).
    pub fn of(k: &ApiKey, secret: String) -> Self {
        Self {
            api_key: secret,
            id: k.id.clone(),
            name: k.name.clone(),
            mode: k.mode.as_str(),
            preview: k.preview.clone(),
            created_at: rfc3339_millis(k.created_at),
            expires_at: k.expires_at.map(rfc3339_millis),
            scopes: k.scopes.map(ScopeSet::names),
            allowed_ips: crate::service::keys::ip_texts(&k.allowed_ips),
        }
    }
}

/// A key as its owner sees it: never the full key or its hash.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyListing {
    pub id: String,
    pub name: Option<String>,
    /// `sk_live_abc...xyz`
    pub preview: String,
    pub mode: &'static str,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// The client address of the use at `lastUsedAt`.
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<String>,
    /// When the key stops working: its expiry, or the end of a rotation's grace period.
    pub expires_at: Option<String>,
    /// Null: full access.
    pub scopes: Option<Vec<&'static str>>,
    /// Null: anywhere.
    pub allowed_ips: Option<Vec<String>>,
    /// The id of the key that replaced this one in a rotation.
    pub replaced_by: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: &'static str,
}

impl KeyListing {
    pub fn of(k: &ApiKey, now: DateTime<Utc>) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            preview: k.preview.clone(),
            mode: k.mode.as_str(),
            created_at: rfc3339_millis(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339_millis),
            last_used_ip: k.last_used_ip.clone(),
            revoked_at: k.revoked_at.map(rfc3339_millis),
            expires_at: k.expires_at.map(rfc3339_millis),
            scopes: k.scopes.map(ScopeSet::names),
            allowed_ips: crate::service::keys::ip_texts(&k.allowed_ips),
            replaced_by: k.replaced_by.clone(),
            status: k.status(now),
        }
    }
}

/// One security event (spec 4.1).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventView {
    pub id: String,
    /// `api_key.created`, `api_key.rotated`, `api_key.revoked`, `api_key.updated`,
    /// `api_key.leaked`, `api_key.used_from_new_ip`, `api_key.denied_ip`,
    /// `session.signed_in`, `session.sign_in_failed` or `session.signed_out`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub at: String,
    pub key_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl AuditEventView {
    pub fn of(e: &AuditEvent) -> Self {
        Self {
            id: e.id.clone(),
            kind: e.kind.as_str(),
            at: rfc3339_millis(e.at),
            key_id: e.key_id.clone(),
            ip: e.origin.ip.clone(),
            user_agent: e.origin.user_agent.clone(),
            details: e.details.clone(),
        }
    }
}

/// `GET /v1/audit-events`: newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    pub api_keys: Vec<KeyListing>,
}
