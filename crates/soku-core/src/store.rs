//! The storage trait: domain-level operations, one implementation per database.
//! SQL never leaks above it.

use crate::keys::KeyHash;
use crate::model::{
    ApiKey, KeyGrant, NewApiKey, RateProfile, Role, SigningKey, Subscription, User,
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

    async fn insert_api_key(&self, key: &NewApiKey) -> StoreResult<()>;
    /// The key with this hash if it is neither revoked nor expired at `now`, with its owner, the
    /// owner's subscription and rate-limit override, in one query.
    async fn find_key_grant(
        &self,
        hash: &KeyHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<KeyGrant>>;
    /// A user's keys, newest first.
    async fn list_api_keys(&self, user_id: &str) -> StoreResult<Vec<ApiKey>>;
    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>>;
    /// Revokes a key of this user (any user when `user_id` is `None`). Revoking a revoked key
    /// keeps its first revocation time. `None` when there is no such key for that user.
    async fn revoke_api_key(
        &self,
        user_id: Option<&str>,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ApiKey>>;
    /// Records use of a key, unless a use was recorded less than a minute before `now`.
    async fn touch_api_key(&self, id: &str, now: DateTime<Utc>) -> StoreResult<()>;

    /// Sets (replaces) a user's rate-limit override. False when there is no such user.
    async fn set_rate_limit_override(
        &self,
        user_id: &str,
        quota: Quota,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Removes a user's override; false when there was none.
    async fn clear_rate_limit_override(&self, user_id: &str) -> StoreResult<bool>;
    /// A user's role, subscription and override, in one query; `None` when there is no such
    /// user. (Requests authenticated by ID token are rate limited with it.)
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
