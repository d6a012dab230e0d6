//! Security events of a user (spec 4.1): what happened to their keys and sessions, kept 90
//! days. Each event that records a change is written in the same transaction as the change.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// How long events are kept before the engine's housekeeping deletes them.
pub const AUDIT_KEPT_DAYS: i64 = 90;

/// The event types of spec 4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    KeyCreated,
    KeyRotated,
    KeyRevoked,
    KeyUpdated,
    KeyLeaked,
    KeyUsedFromNewIp,
    KeyDeniedIp,
    SignedIn,
    SignInFailed,
    SignedOut,
}

impl AuditKind {
    pub const ALL: [AuditKind; 10] = [
        AuditKind::KeyCreated,
        AuditKind::KeyRotated,
        AuditKind::KeyRevoked,
        AuditKind::KeyUpdated,
        AuditKind::KeyLeaked,
        AuditKind::KeyUsedFromNewIp,
        AuditKind::KeyDeniedIp,
        AuditKind::SignedIn,
        AuditKind::SignInFailed,
        AuditKind::SignedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::KeyCreated => "api_key.created",
            AuditKind::KeyRotated => "api_key.rotated",
            AuditKind::KeyRevoked => "api_key.revoked",
            AuditKind::KeyUpdated => "api_key.updated",
            AuditKind::KeyLeaked => "api_key.leaked",
            AuditKind::KeyUsedFromNewIp => "api_key.used_from_new_ip",
            AuditKind::KeyDeniedIp => "api_key.denied_ip",
            AuditKind::SignedIn => "session.signed_in",
            AuditKind::SignInFailed => "session.sign_in_failed",
            AuditKind::SignedOut => "session.signed_out",
        }
    }

    pub fn parse(s: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who caused an event and from where: the request's client address and `User-Agent`
/// (cut to 200 characters), when there was a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn new(ip: Option<String>, user_agent: Option<&str>) -> Self {
        Self {
            ip,
            user_agent: user_agent.map(|ua| ua.chars().take(200).collect()),
        }
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: String,
    pub user_id: String,
    pub kind: AuditKind,
    pub at: DateTime<Utc>,
    pub key_id: Option<String>,
    pub origin: Origin,
    /// Event-specific facts (`{"replacedBy": ...}`, `{"url": ...}`, `{"fields": [...]}`);
    /// never a secret.
    pub details: Value,
}

impl AuditEvent {
    /// A new event with a fresh id.
    pub fn new(
        user_id: &str,
        kind: AuditKind,
        at: DateTime<Utc>,
        key_id: Option<&str>,
        origin: Origin,
        details: Value,
    ) -> Self {
        Self {
            id: crate::keys::random_id("evt_", 20),
            user_id: user_id.to_owned(),
            kind,
            at,
            key_id: key_id.map(str::to_owned),
            origin,
            details,
        }
    }
}

/// Where a page of events starts: after the event at `at` with id `id` (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    pub at: DateTime<Utc>,
    pub id: String,
}

/// An event the store writes with the change it records, once it knows the key's owner and
/// only when the change happened (revoking a revoked key records nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    pub kind: AuditKind,
    pub origin: Origin,
    pub details: Value,
}

impl AuditDraft {
    pub fn new(kind: AuditKind, origin: Origin, details: Value) -> Self {
        Self {
            kind,
            origin,
            details,
        }
    }

    /// The event for `user_id`'s key `key_id` at `at`.
    pub fn event(&self, user_id: &str, key_id: Option<&str>, at: DateTime<Utc>) -> AuditEvent {
        AuditEvent::new(
            user_id,
            self.kind,
            at,
            key_id,
            self.origin.clone(),
            self.details.clone(),
        )
    }
}
