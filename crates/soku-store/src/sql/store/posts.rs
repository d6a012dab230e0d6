//! `soku-core`'s `PostStore` for both backends: connected accounts, OAuth states, submissions,
//! idempotency keys, the publishing queue and the sandbox, each handed to the module of its
//! concern.

use crate::sql::accounts::Accounts;
use crate::sql::queue::Queue;
use crate::sql::sandbox::Sandbox;
use crate::sql::stats::Stats;
use crate::sql::submissions::Submissions;
use crate::sql::{Backend, SqlStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::queue::{
    Account, AccountSecrets, CancelOutcome, ClaimedTarget, FinishTarget, IdempotencyState,
    InFlight, NewAccount, NewSubmission, OAuthState, PostStore, QueueStats, RefreshEnd,
    RefreshedTokens, SandboxPost, StateUse, SubmissionFilter, SubmissionRecord,
};
use soku_core::store::StoreResult;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

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

    async fn create_submissions(&self, submissions: &[NewSubmission]) -> StoreResult<Vec<bool>> {
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
