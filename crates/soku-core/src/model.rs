//! Users, subscriptions and API keys, and the rules that decide access.

use crate::keys::{KeyHash, KeyMode};
use crate::ratelimit::Quota;
use crate::scopes::ScopeSet;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    Canceled,
    Expired,
    PastDue,
    Unpaid,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 6] = [
        Self::Trialing,
        Self::Active,
        Self::Canceled,
        Self::Expired,
        Self::PastDue,
        Self::Unpaid,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::PastDue => "past_due",
            Self::Unpaid => "unpaid",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub status: SubscriptionStatus,
    pub current_period_end: DateTime<Utc>,
}

impl Subscription {
    /// Spec 3.2: trialing and active give access while the period has not ended; every other
    /// status, and no subscription at all, does not.
    pub fn grants_access(sub: Option<&Subscription>, now: DateTime<Utc>) -> bool {
        match sub {
            Some(s) => {
                matches!(
                    s.status,
                    SubscriptionStatus::Trialing | SubscriptionStatus::Active
                ) && s.current_period_end > now
            }
            None => false,
        }
    }
}

/// The rate-limit tiers of spec section 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitTier {
    Default,
    Authenticated,
    Premium,
    Admin,
}

impl RateLimitTier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Authenticated => "authenticated",
            Self::Premium => "premium",
            Self::Admin => "admin",
        }
    }

    /// The tier of a request made with a valid key.
    pub fn for_user(role: Role, sub: Option<&Subscription>, now: DateTime<Utc>) -> Self {
        if role == Role::Admin {
            Self::Admin
        } else if Subscription::grants_access(sub, now) {
            Self::Premium
        } else {
            Self::Authenticated
        }
    }
}

/// An API key as listed to its owner: never the secret, never the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub mode: KeyMode,
    pub preview: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The client address of the recorded use at `last_used_at`.
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the key stops working: its expiry at creation, or the end of a rotation's grace.
    pub expires_at: Option<DateTime<Utc>>,
    /// `None`: full access (spec 4.1).
    pub scopes: Option<ScopeSet>,
    /// The addresses the key may be used from; empty: anywhere.
    pub allowed_ips: Vec<IpNet>,
    /// The key that replaced this one in a rotation.
    pub replaced_by: Option<String>,
}

impl ApiKey {
    /// `active`, `revoked` or `expired` at `now` (spec 4.1).
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|t| t <= now) {
            "expired"
        } else {
            "active"
        }
    }

    /// Whether a request from `ip` may use the key.
    pub fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4 client reached over an IPv6 socket arrives as `::ffff:a.b.c.d`.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&ip))
    }
}

/// What `Store::insert_api_key` writes.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub mode: KeyMode,
    pub hash: KeyHash,
    pub preview: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Option<ScopeSet>,
    pub allowed_ips: Vec<IpNet>,
}

impl NewApiKey {
    /// The key as the store holds it once inserted.
    pub fn stored(&self) -> ApiKey {
        ApiKey {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            name: self.name.clone(),
            mode: self.mode,
            preview: self.preview.clone(),
            created_at: self.created_at,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            expires_at: self.expires_at,
            scopes: self.scopes,
            allowed_ips: self.allowed_ips.clone(),
            replaced_by: None,
        }
    }

    /// The key's `api_key.created` event.
    pub fn created_event(
        &self,
        origin: crate::audit::Origin,
        details: serde_json::Value,
    ) -> crate::audit::AuditEvent {
        crate::audit::AuditEvent::new(
            &self.user_id,
            crate::audit::AuditKind::KeyCreated,
            self.created_at,
            Some(&self.id),
            origin,
            details,
        )
    }
}

/// A change to a key's name or allowed addresses (`PATCH /v1/api-keys/{id}`); `None` leaves
/// the field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    pub name: Option<Option<String>>,
    pub allowed_ips: Option<Vec<IpNet>>,
}

/// What `Store::rotate_api_key` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The old key, now replaced (its `expires_at` is the end of the grace period), and the
    /// new key as stored.
    Rotated { old: Box<ApiKey>, new: Box<ApiKey> },
    /// No such key of that user.
    NotFound,
    /// The key is revoked, expired or already rotated.
    NotActive,
}

/// A dashboard session (spec 4.2). The cookie holds its id, sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What authentication needs to know about a key, read in one query: the key (active only),
/// its owner, the owner's subscription and the owner's rate-limit override.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key: ApiKey,
    pub user: User,
    pub subscription: Option<Subscription>,
    /// The operator's override of this user's rate and burst (`soku admin ratelimit set`).
    pub rate_limit: Option<Quota>,
}

/// What rate limiting needs to know about a user, read in one query, and what refusing their
/// older ID tokens does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateProfile {
    pub role: Role,
    pub subscription: Option<Subscription>,
    pub rate_limit: Option<Quota>,
    /// When the user last signed out everywhere: ID tokens signed in before this second are
    /// refused. `None` for never.
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

/// A signing key of the built-in identity provider.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    /// PKCS#8 PEM of the RSA private key.
    pub private_pem: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A new key for `user_id`: the record to store and the secret to show once.
pub fn new_api_key(
    user_id: &str,
    name: Option<String>,
    mode: KeyMode,
    now: DateTime<Utc>,
) -> (NewApiKey, crate::keys::GeneratedKey) {
    let generated = crate::keys::generate(mode);
    let record = NewApiKey {
        id: crate::keys::random_id("key_", 20),
        user_id: user_id.to_owned(),
        name,
        mode,
        hash: generated.hash,
        preview: generated.preview.clone(),
        created_at: now,
        expires_at: None,
        scopes: None,
        allowed_ips: Vec::new(),
    };
    (record, generated)
}

/// Key names: optional; 1 to 100 characters after trimming (spec 3.1).
pub fn normalize_key_name(name: Option<&str>) -> Result<Option<String>, &'static str> {
    match name {
        None => Ok(None),
        Some(raw) => {
            let trimmed = raw.trim();
            let len = trimmed.chars().count();
            if len == 0 {
                Err("invalid_value")
            } else if len > 100 {
                Err("too_long")
            } else if trimmed.chars().any(char::is_control) {
                Err("invalid_value")
            } else {
                Ok(Some(trimmed.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn sub(status: SubscriptionStatus, ends_in: Duration) -> Subscription {
        Subscription {
            status,
            current_period_end: Utc::now() + ends_in,
        }
    }

    #[test]
    fn subscription_gate() {
        let now = Utc::now();
        let day = Duration::days(1);
        assert!(Subscription::grants_access(
            Some(&sub(SubscriptionStatus::Active, day)),
            now
        ));
        assert!(Subscription::grants_access(
            Some(&sub(SubscriptionStatus::Trialing, day)),
            now
        ));
        assert!(!Subscription::grants_access(
            Some(&sub(SubscriptionStatus::Active, -day)),
            now
        ));
        assert!(!Subscription::grants_access(
            Some(&sub(SubscriptionStatus::Trialing, -day)),
            now
        ));
        for s in [
            SubscriptionStatus::Canceled,
            SubscriptionStatus::Expired,
            SubscriptionStatus::PastDue,
            SubscriptionStatus::Unpaid,
        ] {
            assert!(
                !Subscription::grants_access(Some(&sub(s, day)), now),
                "{s:?}"
            );
        }
        assert!(!Subscription::grants_access(None, now));
    }

    #[test]
    fn tiers() {
        let now = Utc::now();
        let active = sub(SubscriptionStatus::Active, Duration::days(1));
        assert_eq!(
            RateLimitTier::for_user(Role::Admin, None, now),
            RateLimitTier::Admin
        );
        assert_eq!(
            RateLimitTier::for_user(Role::User, Some(&active), now),
            RateLimitTier::Premium
        );
        assert_eq!(
            RateLimitTier::for_user(Role::User, None, now),
            RateLimitTier::Authenticated
        );
    }

    #[test]
    fn key_names() {
        assert_eq!(normalize_key_name(None), Ok(None));
        assert_eq!(
            normalize_key_name(Some("  Prod  ")),
            Ok(Some("Prod".into()))
        );
        assert_eq!(normalize_key_name(Some("   ")), Err("invalid_value"));
        assert_eq!(
            normalize_key_name(Some(&"é".repeat(100))),
            Ok(Some("é".repeat(100)))
        );
        assert_eq!(normalize_key_name(Some(&"a".repeat(101))), Err("too_long"));
        assert_eq!(normalize_key_name(Some("a\u{0}b")), Err("invalid_value"));
    }

    #[test]
    fn statuses_round_trip() {
        for s in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SubscriptionStatus::parse("paused"), None);
    }
}
