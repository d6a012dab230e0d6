//! The storage trait: domain-level operations, one implementation per database.
//! SQL never leaks above it.

use crate::audit::{AuditCursor, AuditDraft, AuditEvent};
use crate::keys::KeyHash;
use crate::model::{
    ApiKey, KeyGrant, KeyUpdate, NewApiKey, RateProfile, Role, Rotation, SessionRecord, SigningKey,
    Subscription, User,
};
use crate::ratelimit::Quota;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store:
    crate::queue::PostStore + crate::media::MediaStore + Send + Sync + 'static
{
    /// The backend's name, `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Creates a user; `Conflict` when the id is taken.
    async fn create_user(
        &self,
        id: &str,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<User>;
    /// Sets the user's password hash (an argon2id PHC string); false when there is no such user.
    async fn set_password_hash(&self, user_id: &str, hash: &str) -> StoreResult<bool>;
    /// The users with this email (compared without case) that have a password, oldest first,
    /// with their password hashes.
    async fn password_users(&self, email: &str) -> StoreResult<Vec<(User, String)>>;
    /// Returns the user, creating it when it does not exist yet (first sight of an ID token).
    async fn ensure_user(
        &self,
        id: &str,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<User>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;
    /// False when there is no such user.
    async fn set_role(&self, id: &str, role: Role) -> StoreResult<bool>;

    /// Sets (replaces) a user's subscription. False when there is no such user.
    async fn set_subscription(
        &self,
        user_id: &str,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn get_subscription(&self, user_id: &str) -> StoreResult<Option<Subscription>>;

    /// Stores a new key and its `api_key.created` event, in one transaction.
    async fn insert_api_key(&self, key: &NewApiKey, event: &AuditEvent) -> StoreResult<()>;
    /// The key with this hash if it is neither revoked nor expired at `now`, with its owner, the
    /// owner's subscription and rate-limit override, in one query.
    async fn find_key_grant(
        &self,
        hash: &KeyHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<KeyGrant>>;
    /// The key with this hash, whatever its status (a leaked-key report).
    async fn find_api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>>;
    /// A user's keys, newest first.
    async fn list_api_keys(&self, user_id: &str) -> StoreResult<Vec<ApiKey>>;
    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>>;
    /// Revokes a key of this user (any user when `user_id` is `None`), and records `audit`
    /// for it in the same transaction when the key was not revoked yet. Revoking a revoked key
    /// keeps its first revocation time and records nothing. `None` when there is no such key
    /// for that user.
    async fn revoke_api_key(
        &self,
        user_id: Option<&str>,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Option<ApiKey>>;
    /// Replaces the active key `id` of `user_id` by `new` (stored), in one transaction: the
    /// new key takes the old one's name, scopes and allowed addresses as they are in that
    /// transaction, and, when the old key expires, the same lifetime from `now`; the old key's
    /// `replaced_by` is set and it expires at `grace_ends` (or its own expiry, if sooner);
    /// `audit` is recorded for the old key.
    async fn rotate_api_key(
        &self,
        user_id: &str,
        id: &str,
        new: &NewApiKey,
        grace_ends: DateTime<Utc>,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Rotation>;
    /// Changes a key's name or allowed addresses and records `audit`, in one transaction.
    /// `None` when there is no such key of that user.
    async fn update_api_key(
        &self,
        user_id: &str,
        id: &str,
        update: &KeyUpdate,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Option<ApiKey>>;
    /// Records use of a key from `ip`, unless a use was recorded less than a minute before
    /// `now`.
    async fn touch_api_key(
        &self,
        id: &str,
        now: DateTime<Utc>,
        ip: Option<&str>,
    ) -> StoreResult<()>;
    /// Notes that the key was used from `ip`. The first time (among the key's
    /// `max_per_key` most recently seen addresses), records `audit` (`used_from_new_ip`) in the
    /// same transaction and answers true.
    async fn note_key_address(
        &self,
        user_id: &str,
        key_id: &str,
        ip: &str,
        max_per_key: usize,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<bool>;

    /// Records an event that goes with no change (a refused address, a failed sign-in).
    async fn insert_audit_event(&self, event: &AuditEvent) -> StoreResult<()>;
    /// A user's events, newest first, after `cursor`.
    async fn list_audit_events(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<&AuditCursor>,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// Deletes events older than `before`; how many.
    async fn purge_audit_events(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Stores a new dashboard session and its `session.signed_in` event, in one transaction.
    async fn insert_session(&self, session: &SessionRecord, event: &AuditEvent) -> StoreResult<()>;
    /// The session with this id and its user, if it is neither revoked nor expired at `now`.
    async fn find_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(SessionRecord, User)>>;
    /// Records that the session was seen at `now` from `ip`.
    async fn touch_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
        ip: Option<&str>,
    ) -> StoreResult<()>;
    /// A user's sessions that are neither revoked nor expired at `now`, newest first.
    async fn list_sessions(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// Ends the user's session `only`, or all of them, and records `audit` (once, with the
    /// number ended in `details.sessions`) when any was ended; how many were ended. All of
    /// them ("sign out everywhere") also moves the user's `tokens_valid_after` to `now` (never
    /// back), in the same transaction: their ID tokens signed in before are refused.
    async fn revoke_sessions(
        &self,
        user_id: &str,
        only: Option<&str>,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<u64>;
    /// Deletes sessions that expired or were revoked before `before`; how many.
    async fn purge_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Sets (replaces) a user's rate-limit override. False when there is no such user.
    async fn set_rate_limit_override(
        &self,
        user_id: &str,
        quota: Quota,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Removes a user's override; false when there was none.
    async fn clear_rate_limit_override(&self, user_id: &str) -> StoreResult<bool>;
    /// A user's role, subscription, override and `tokens_valid_after`, in one query; `None`
    /// when there is no such user. (Requests authenticated by ID token are rate limited and
    /// checked with it.)
    async fn rate_profile(&self, user_id: &str) -> StoreResult<Option<RateProfile>>;

    /// The built-in identity provider's signing keys, oldest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Stores `key` unless a signing key exists already (several nodes may start at once).
    async fn insert_signing_key_if_none(&self, key: &SigningKey) -> StoreResult<()>;

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Writes the setting unless it exists; true when this call wrote it.
    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> StoreResult<bool>;
}
