//! `soku-core`'s `Store` for both backends (users, keys, audit events, sessions, rate-limit
//! overrides, signing keys and settings), `PostStore` (`posts`) and `MediaStore` (`media`): each
//! method hands over to the module of its concern.

mod media;
mod posts;

use crate::sql::audit::Audit;
use crate::sql::keys::Keys;
use crate::sql::sessions::Sessions;
use crate::sql::settings::Settings;
use crate::sql::users::Users;
use crate::sql::{Backend, SqlStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use soku_core::Store;
use soku_core::audit::{AuditCursor, AuditDraft, AuditEvent};
use soku_core::keys::KeyHash;
use soku_core::model::{
    ApiKey, KeyGrant, KeyUpdate, NewApiKey, RateProfile, Role, Rotation, SessionRecord, SigningKey,
    Subscription, User,
};
use soku_core::ratelimit::Quota;
use soku_core::store::StoreResult;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

#[async_trait]
impl<DB: Backend> Store for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
{
    fn backend(&self) -> &'static str {
        DB::BACKEND
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(crate::backend_error)?;
        Ok(())
    }

    async fn create_user(
        &self,
        id: &str,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        Users(&self.pool).create(id, email, now).await
    }

    async fn set_password_hash(&self, user_id: &str, hash: &str) -> StoreResult<bool> {
        Users(&self.pool).set_password_hash(user_id, hash).await
    }

    async fn password_users(&self, email: &str) -> StoreResult<Vec<(User, String)>> {
        Users(&self.pool).with_password(email).await
    }

    async fn ensure_user(
        &self,
        id: &str,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        Users(&self.pool).ensure(id, email, now).await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        Users(&self.pool).get(id).await
    }

    async fn set_role(&self, id: &str, role: Role) -> StoreResult<bool> {
        Users(&self.pool).set_role(id, role).await
    }

    async fn set_subscription(
        &self,
        user_id: &str,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Users(&self.pool).set_subscription(user_id, sub, now).await
    }

    async fn get_subscription(&self, user_id: &str) -> StoreResult<Option<Subscription>> {
        Users(&self.pool).subscription(user_id).await
    }

    async fn insert_api_key(&self, key: &NewApiKey, event: &AuditEvent) -> StoreResult<()> {
        Keys(&self.pool).insert(key, event).await
    }

    async fn find_key_grant(
        &self,
        hash: &KeyHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<KeyGrant>> {
        Keys(&self.pool).find_grant(hash, now).await
    }

    async fn find_api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        Keys(&self.pool).by_hash(hash).await
    }

    async fn list_api_keys(&self, user_id: &str) -> StoreResult<Vec<ApiKey>> {
        Keys(&self.pool).list(user_id).await
    }

    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        Keys(&self.pool).get(id).await
    }

    async fn revoke_api_key(
        &self,
        user_id: Option<&str>,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Option<ApiKey>> {
        Keys(&self.pool).revoke(user_id, id, now, audit).await
    }

    async fn rotate_api_key(
        &self,
        user_id: &str,
        id: &str,
        new: &NewApiKey,
        grace_ends: DateTime<Utc>,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Rotation> {
        Keys(&self.pool)
            .rotate(user_id, id, new, grace_ends, now, audit)
            .await
    }

    async fn update_api_key(
        &self,
        user_id: &str,
        id: &str,
        update: &KeyUpdate,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Option<ApiKey>> {
        Keys(&self.pool)
            .update(user_id, id, update, now, audit)
            .await
    }

    async fn touch_api_key(
        &self,
        id: &str,
        now: DateTime<Utc>,
        ip: Option<&str>,
    ) -> StoreResult<()> {
        Keys(&self.pool).touch(id, now, ip).await
    }

    async fn note_key_address(
        &self,
        user_id: &str,
        key_id: &str,
        ip: &str,
        max_per_key: usize,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<bool> {
        Keys(&self.pool)
            .note_address(user_id, key_id, ip, max_per_key, now, audit)
            .await
    }

    async fn insert_audit_event(&self, event: &AuditEvent) -> StoreResult<()> {
        Audit(&self.pool).insert(event).await
    }

    async fn list_audit_events(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<&AuditCursor>,
    ) -> StoreResult<Vec<AuditEvent>> {
        Audit(&self.pool).list(user_id, limit, cursor).await
    }

    async fn purge_audit_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Audit(&self.pool).purge(before).await
    }

    async fn insert_session(&self, session: &SessionRecord, event: &AuditEvent) -> StoreResult<()> {
        Sessions(&self.pool).insert(session, event).await
    }

    async fn find_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(SessionRecord, User)>> {
        Sessions(&self.pool).find(id, now).await
    }

    async fn touch_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
        ip: Option<&str>,
    ) -> StoreResult<()> {
        Sessions(&self.pool).touch(id, now, ip).await
    }

    async fn list_sessions(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionRecord>> {
        Sessions(&self.pool).list(user_id, now).await
    }

    async fn revoke_sessions(
        &self,
        user_id: &str,
        only: Option<&str>,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<u64> {
        Sessions(&self.pool).revoke(user_id, only, now, audit).await
    }

    async fn purge_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Sessions(&self.pool).purge(before).await
    }

    async fn set_rate_limit_override(
        &self,
        user_id: &str,
        quota: Quota,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Users(&self.pool)
            .set_rate_limit_override(user_id, quota, now)
            .await
    }

    async fn clear_rate_limit_override(&self, user_id: &str) -> StoreResult<bool> {
        Users(&self.pool).clear_rate_limit_override(user_id).await
    }

    async fn rate_profile(&self, user_id: &str) -> StoreResult<Option<RateProfile>> {
        Users(&self.pool).rate_profile(user_id).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        Settings(&self.pool).signing_keys().await
    }

    async fn insert_signing_key_if_none(&self, key: &SigningKey) -> StoreResult<()> {
        Settings(&self.pool).insert_signing_key_if_none(key).await
    }

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        Settings(&self.pool).get(name).await
    }

    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        Settings(&self.pool).put(name, value).await
    }

    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> StoreResult<bool> {
        Settings(&self.pool).insert_if_absent(name, value).await
    }
}
