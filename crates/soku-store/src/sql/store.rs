//! `soku-core`'s `Store` and `PostStore` for both backends: each method hands over to the
//! module of its concern.

use super::accounts::Accounts;
use super::audit::Audit;
use super::keys::Keys;
use super::media::Media;
use super::queue::Queue;
use super::sandbox::Sandbox;
use super::sessions::Sessions;
use super::settings::Settings;
use super::stats::Stats;
use super::submissions::Submissions;
use super::users::Users;
use super::{Backend, SqlStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use soku_core::Store;
use soku_core::audit::{AuditCursor, AuditDraft, AuditEvent};
use soku_core::keys::{KeyHash, KeyMode};
use soku_core::media::{MediaPage, MediaRecord, MediaStore};
use soku_core::model::{
    ApiKey, KeyGrant, KeyUpdate, NewApiKey, RateProfile, Role, Rotation, SessionRecord, SigningKey,
    Subscription, User,
};
use soku_core::platform::Platform;
use soku_core::queue::{
    Account, AccountSecrets, CancelOutcome, ClaimedTarget, FinishTarget, IdempotencyState,
    InFlight, NewAccount, NewSubmission, OAuthState, PostStore, QueueStats, RefreshEnd,
    RefreshedTokens, SandboxPost, StateUse, SubmissionFilter, SubmissionRecord,
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

#[async_trait]
impl<DB: Backend> PostStore for SqlStore<DB>
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
    async fn insert_account(&self, account: &NewAccount) -> StoreResult<()> {
        Accounts(&self.pool).insert(account).await
    }

    async fn list_accounts(&self, user_id: &str) -> StoreResult<Vec<Account>> {
        Accounts(&self.pool).list(user_id).await
    }

    async fn delete_account(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        Accounts(&self.pool).delete(user_id, id).await
    }

    async fn set_default_account(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        Accounts(&self.pool).set_default(user_id, id).await
    }

    async fn account_secrets(
        &self,
        account_ref: &str,
    ) -> StoreResult<Option<(Account, AccountSecrets)>> {
        Accounts(&self.pool).secrets(account_ref).await
    }

    async fn upsert_account(&self, account: &NewAccount) -> StoreResult<Account> {
        Accounts(&self.pool).upsert(account).await
    }

    async fn accounts_expiring(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Account>> {
        Accounts(&self.pool).expiring(before, now, limit).await
    }

    async fn lease_account_refresh(
        &self,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Accounts(&self.pool)
            .lease_refresh(id, owner, now, until)
            .await
    }

    async fn save_refreshed_tokens(
        &self,
        id: &str,
        owner: &str,
        tokens: &RefreshedTokens,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Accounts(&self.pool)
            .save_refreshed_tokens(id, owner, tokens, now)
            .await
    }

    async fn end_account_refresh(
        &self,
        id: &str,
        owner: &str,
        end: RefreshEnd,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Accounts(&self.pool).end_refresh(id, owner, end, now).await
    }

    async fn insert_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        Accounts(&self.pool).insert_oauth_state(state).await
    }

    async fn use_oauth_state(
        &self,
        state_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<StateUse> {
        Accounts(&self.pool).use_oauth_state(state_hash, now).await
    }

    async fn purge_oauth_states(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Accounts(&self.pool).purge_oauth_states(before).await
    }

    async fn create_submissions(&self, submissions: &[NewSubmission]) -> StoreResult<()> {
        Submissions(&self.pool).create(submissions).await
    }

    async fn get_submission(
        &self,
        user_id: &str,
        mode: KeyMode,
        id: &str,
    ) -> StoreResult<Option<SubmissionRecord>> {
        Submissions(&self.pool).get(user_id, mode, id).await
    }

    async fn list_submissions(
        &self,
        user_id: &str,
        mode: KeyMode,
        filter: &SubmissionFilter,
    ) -> StoreResult<Vec<SubmissionRecord>> {
        Submissions(&self.pool).list(user_id, mode, filter).await
    }

    async fn cancel_submission(
        &self,
        user_id: &str,
        mode: KeyMode,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CancelOutcome> {
        Submissions(&self.pool).cancel(user_id, mode, id, now).await
    }

    async fn idempotency_acquire(
        &self,
        user_id: &str,
        mode: KeyMode,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        Submissions(&self.pool)
            .idempotency_acquire(
                user_id,
                mode,
                key,
                request_hash,
                now,
                abandoned_before,
                expired_before,
            )
            .await
    }

    async fn idempotency_release(
        &self,
        user_id: &str,
        mode: KeyMode,
        key: &str,
    ) -> StoreResult<()> {
        Submissions(&self.pool)
            .idempotency_release(user_id, mode, key)
            .await
    }

    async fn idempotency_purge(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Submissions(&self.pool).idempotency_purge(before).await
    }

    async fn claim_targets(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedTarget>> {
        Queue(&self.pool)
            .claim(owner, now, lease_until, limit)
            .await
    }

    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Queue(&self.pool).next_due().await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<QueueStats> {
        Stats(&self.pool).queue(now).await
    }

    async fn extend_lease(
        &self,
        target_id: &str,
        owner: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Queue(&self.pool)
            .extend_lease(target_id, owner, until)
            .await
    }

    async fn save_target_progress(
        &self,
        target_id: &str,
        owner: &str,
        progress_json: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Queue(&self.pool)
            .save_progress(target_id, owner, progress_json, now)
            .await
    }

    async fn mark_in_flight_batch(&self, targets: &[InFlight]) -> StoreResult<Vec<bool>> {
        Queue(&self.pool).mark_in_flight(targets).await
    }

    async fn finish_targets(&self, attempts: &[FinishTarget]) -> StoreResult<Vec<bool>> {
        Queue(&self.pool).finish(attempts).await
    }

    async fn sandbox_create_batch(&self, posts: &[SandboxPost]) -> StoreResult<Vec<SandboxPost>> {
        Sandbox(&self.pool).create(posts).await
    }

    async fn sandbox_find(
        &self,
        user_id: &str,
        platform: Platform,
        marker: &str,
    ) -> StoreResult<Option<SandboxPost>> {
        Sandbox(&self.pool).find(user_id, platform, marker).await
    }

    async fn sandbox_page(
        &self,
        user_id: &str,
        platform: Platform,
        before: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> StoreResult<Vec<SandboxPost>> {
        Sandbox(&self.pool)
            .list(user_id, platform, before, limit)
            .await
    }
}

#[async_trait]
impl<DB: Backend> MediaStore for SqlStore<DB>
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
    async fn insert_media(&self, media: &MediaRecord) -> StoreResult<()> {
        Media(&self.pool).insert(media).await
    }

    async fn get_media(&self, id: &str) -> StoreResult<Option<MediaRecord>> {
        Media(&self.pool).get(id).await
    }

    async fn find_media_by_key(
        &self,
        user_id: &str,
        mode: KeyMode,
        key: &str,
    ) -> StoreResult<Option<MediaRecord>> {
        Media(&self.pool).by_key(user_id, mode, key).await
    }

    async fn release_media_key(&self, id: &str) -> StoreResult<()> {
        Media(&self.pool).release_key(id).await
    }

    async fn list_media(
        &self,
        user_id: &str,
        mode: KeyMode,
        page: &MediaPage,
    ) -> StoreResult<Vec<MediaRecord>> {
        Media(&self.pool).list(user_id, mode, page).await
    }

    async fn media_in_use(&self, user_id: &str, mode: KeyMode, id: &str) -> StoreResult<bool> {
        Media(&self.pool).in_use(user_id, mode, id).await
    }

    async fn delete_media(
        &self,
        user_id: &str,
        mode: KeyMode,
        id: &str,
    ) -> StoreResult<Option<MediaRecord>> {
        Media(&self.pool).delete(user_id, mode, id).await
    }
}
