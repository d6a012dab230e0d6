//! Storage of posts: accounts, submissions and their targets, the job queue those targets
//! form, idempotency records, and the simulated platforms' own record.

use crate::keys::KeyMode;
use crate::platform::Platform;
use crate::posts::{SubmissionStatus, TargetStatus};
use crate::store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    NeedsReconnect,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReconnect => "needs_reconnect",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "needs_reconnect" => Some(Self::NeedsReconnect),
            _ => None,
        }
    }
}

/// A connected account; tokens stay encrypted in `NewAccount` / `AccountSecrets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub user_id: String,
    pub platform: Platform,
    pub account_id: String,
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub status: AccountStatus,
    pub is_default: bool,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// What the connector keeps about the account (`ConnectedAccount::meta`); not secret.
    pub meta: serde_json::Value,
}

#[derive(Clone)]
pub struct NewAccount {
    pub account: Account,
    /// Encrypted access and refresh tokens (see the server's secret box).
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
}

/// An authorization in progress (`POST /v1/accounts/connect` until its callback).
#[derive(Clone)]
pub struct OAuthState {
    /// SHA-256 of the state value sent to the platform.
    pub state_hash: Vec<u8>,
    pub user_id: String,
    pub platform: Platform,
    /// Our callback URL, as given to the platform.
    pub redirect_uri: String,
    /// Where the browser goes after the callback (the client's `redirectUri`).
    pub return_to: Option<String>,
    /// Started from the dashboard: the callback must carry that user's session.
    pub from_dashboard: bool,
    /// The PKCE verifier and the connector's pending data, sealed with the server key.
    pub sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What using a state found.
#[derive(Clone)]
pub enum StateUse {
    /// This call used it; it can never be used again.
    Used(OAuthState),
    /// It exists but was used before.
    AlreadyUsed,
    Unknown,
}

/// How a refresh that did not produce tokens ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshEnd {
    /// The platform refused: the account becomes `needs_reconnect`.
    NeedsReconnect,
    /// The platform could not be asked: the background refresher tries again at this time.
    RetryAt(DateTime<Utc>),
}

/// New tokens after a refresh, encrypted.
#[derive(Clone)]
pub struct RefreshedTokens {
    pub access_token: Vec<u8>,
    /// `None` keeps the refresh token the account has (never overwritten with nothing).
    pub refresh_token: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Stored, but the account needs reconnecting (the answer that carried them did not grant
    /// what posting needs); otherwise it becomes `active`.
    pub needs_reconnect: bool,
}

/// An account's encrypted tokens.
#[derive(Clone, Default)]
pub struct AccountSecrets {
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct NewTarget {
    pub id: String,
    pub position: i64,
    pub platform: Platform,
    /// Our id of the connected account; `None` for simulated accounts.
    pub account_ref: Option<String>,
    /// The platform's account id (`test_<platform>` in test mode).
    pub account_id: String,
    pub status: TargetStatus,
    pub due_at: DateTime<Utc>,
    /// The target's own text (spec 8.2): `None` when it publishes the post's text; `Some("")`
    /// when it was given an empty text (it publishes none).
    pub text: Option<String>,
}

/// A stored response to replay for an idempotency key.
#[derive(Debug, Clone)]
pub struct IdempotentResponse {
    pub key: String,
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub id: String,
    pub user_id: String,
    pub mode: KeyMode,
    pub status: SubmissionStatus,
    /// The request's `post` object, as JSON text.
    pub post_json: String,
    /// The normalised content and options (`posts::StoredContent`), as JSON text.
    pub content_json: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub targets: Vec<NewTarget>,
    /// Completes the caller's idempotency record in the same transaction.
    pub idempotency: Option<IdempotentResponse>,
    /// The hosted files (media ids) the post names. The submission is stored only if each is
    /// still the user's file then; a deletion of one of them and the storing of the post wait
    /// for each other (`MediaStore::delete_media`), so a file a post was accepted with is there
    /// when it publishes.
    pub media_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    pub code: String,
    pub message: String,
    pub platform_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TargetRecord {
    pub id: String,
    pub submission_id: String,
    pub position: i64,
    pub platform: Platform,
    pub account_ref: Option<String>,
    pub account_id: String,
    pub status: TargetStatus,
    pub attempts: i64,
    pub platform_post_id: Option<String>,
    pub platform_post_url: Option<String>,
    pub error: Option<TargetError>,
    pub published_at: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    /// The target's own text, as in `NewTarget::text`.
    pub text: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SubmissionRecord {
    pub id: String,
    pub user_id: String,
    pub mode: KeyMode,
    pub status: SubmissionStatus,
    pub post_json: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub targets: Vec<TargetRecord>,
}

#[derive(Debug, Clone, Default)]
pub struct SubmissionFilter {
    pub status: Option<SubmissionStatus>,
    pub platform: Option<Platform>,
    /// Only submissions older than this `(created_at, id)` (the cursor).
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub enum CancelOutcome {
    NotFound,
    /// Some target has started (or the submission is finished): nothing was changed.
    TooLate(SubmissionRecord),
    Canceled(SubmissionRecord),
}

/// State of an idempotency key when a request arrives with it.
#[derive(Debug, Clone)]
pub enum IdempotencyState {
    /// This request holds the key now; it must complete it or abandon it.
    Acquired,
    /// Another request holds or held it.
    Existing {
        request_hash: String,
        /// `None` while that request is still in flight.
        response: Option<(u16, Vec<u8>)>,
    },
}

/// A target taken by a worker.
#[derive(Debug, Clone)]
pub struct ClaimedTarget {
    pub target: TargetRecord,
    pub user_id: String,
    pub mode: KeyMode,
    pub content_json: String,
    /// An earlier attempt may have reached the platform: reconcile before publishing.
    pub in_flight: bool,
    /// When the submission became due: its scheduled time, or when it was accepted.
    pub submitted_at: DateTime<Utc>,
    /// What the connector saved on an earlier attempt (`connector::Progress`), as JSON.
    pub progress_json: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum TargetOutcome {
    Published {
        post_id: String,
        url: Option<String>,
    },
    /// Try again at `due_at`; the error is kept meanwhile.
    /// `in_flight`: an earlier attempt may still have reached the platform, so the next
    /// attempt reconciles first.
    Retry {
        due_at: DateTime<Utc>,
        error: TargetError,
        in_flight: bool,
    },
    Failed(TargetError),
    Unknown(TargetError),
}

/// The end of one attempt, as `finish_targets` records it.
#[derive(Debug, Clone)]
pub struct FinishTarget {
    pub target_id: String,
    /// The lease the attempt ran under.
    pub owner: String,
    pub outcome: TargetOutcome,
    pub now: DateTime<Utc>,
}

/// A target about to reach its platform, as `mark_in_flight_batch` records it.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub target_id: String,
    pub owner: String,
    /// The mark is refused when the lease ran out by then (another worker may take the target
    /// over at any moment: nothing may be sent under it).
    pub now: DateTime<Utc>,
    /// The lease is renewed to this with the mark, so that the call starts with a whole lease.
    pub lease_until: DateTime<Utc>,
}

/// Open targets of one platform and mode in one status, as `queue_stats` counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCount {
    pub platform: Platform,
    pub mode: KeyMode,
    /// `Scheduled`, `Queued` or `Publishing`.
    pub status: TargetStatus,
    pub count: i64,
    /// Of those, the ones no worker holds although they could be claimed: due and waiting, or
    /// publishing under a lease that ran out.
    pub due: i64,
    /// The earliest time one of the `due` ones became claimable.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// The queue and the accounts at a glance, for operators' metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub targets: Vec<QueueCount>,
    /// Accounts whose tokens were refused and cannot be refreshed, by platform.
    pub accounts_needing_reconnect: Vec<(Platform, i64)>,
}

/// What a simulated platform received (spec 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPost {
    pub id: String,
    pub user_id: String,
    pub platform: Platform,
    pub marker: String,
    pub submission_id: String,
    pub target_id: String,
    pub text: Option<String>,
    pub media_json: String,
    /// The options the platform received (`PlatformOptions::to_json`), as JSON text; `{}` for
    /// none.
    pub options_json: String,
    pub received_at: DateTime<Utc>,
    /// How many times the platform was asked to create this post.
    pub create_count: i64,
}

#[async_trait]
pub trait PostStore: Send + Sync + 'static {
    // Accounts.
    /// `Conflict` when the user has this platform account already. `is_default` clears the
    /// flag on the user's other accounts of that platform.
    async fn insert_account(&self, account: &NewAccount) -> StoreResult<()>;
    async fn list_accounts(&self, user_id: &str) -> StoreResult<Vec<Account>>;
    /// Disconnects (deletes) one of the user's accounts; false when the user has no such account.
    async fn delete_account(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    /// Makes one of the user's accounts the default of its platform and clears the flag on the
    /// user's other accounts of that platform, in one transaction; false when the user has no
    /// such account.
    async fn set_default_account(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    async fn account_secrets(
        &self,
        account_ref: &str,
    ) -> StoreResult<Option<(Account, AccountSecrets)>>;
    /// Connects an account, or reconnects it when the user has it already (same platform and
    /// platform account id): names, tokens and meta are replaced and it becomes `active`, but a
    /// `None` refresh token keeps the stored one. The first account of a platform becomes the
    /// default. Returns the stored account.
    async fn upsert_account(&self, account: &NewAccount) -> StoreResult<Account>;
    /// Active accounts whose tokens expire before `before`, soonest first, leaving out those
    /// whose last refresh failed and are not to be tried again before `now`.
    async fn accounts_expiring(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Account>>;
    /// Takes the right to refresh the account's tokens until `until`, for `owner`; false while
    /// another holder's lease runs.
    async fn lease_account_refresh(
        &self,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Stores refreshed tokens, makes the account `active` (`needs_reconnect` when the tokens
    /// say so) and ends the lease, if `owner`
    /// still holds it (a reconnection meanwhile ends the lease: its tokens win). False when it
    /// did not.
    async fn save_refreshed_tokens(
        &self,
        id: &str,
        owner: &str,
        tokens: &RefreshedTokens,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Ends `owner`'s refresh lease without new tokens; the tokens are kept.
    async fn end_account_refresh(
        &self,
        id: &str,
        owner: &str,
        end: RefreshEnd,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    // OAuth authorizations in progress.
    async fn insert_oauth_state(&self, state: &OAuthState) -> StoreResult<()>;
    /// Marks the state used, atomically: of two callbacks with one state, one gets `Used`.
    async fn use_oauth_state(&self, state_hash: &[u8], now: DateTime<Utc>)
    -> StoreResult<StateUse>;
    /// Deletes states that expired before `before`.
    async fn purge_oauth_states(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // Submissions.
    /// Inserts the submission and its targets, and completes the idempotency record, in one
    /// transaction; `false` (and nothing stored) when one of its `media_ids` is no longer the
    /// user's file.
    async fn create_submission(&self, submission: &NewSubmission) -> StoreResult<bool> {
        let stored = self
            .create_submissions(std::slice::from_ref(submission))
            .await?;
        Ok(stored.first().copied().unwrap_or(false))
    }
    /// `create_submission` for several submissions, all in one transaction: whether each was
    /// stored, in order.
    async fn create_submissions(&self, submissions: &[NewSubmission]) -> StoreResult<Vec<bool>>;
    async fn get_submission(
        &self,
        user_id: &str,
        mode: crate::keys::KeyMode,
        id: &str,
    ) -> StoreResult<Option<SubmissionRecord>>;
    /// Newest first.
    async fn list_submissions(
        &self,
        user_id: &str,
        mode: crate::keys::KeyMode,
        filter: &SubmissionFilter,
    ) -> StoreResult<Vec<SubmissionRecord>>;
    /// Cancels every target, or none when one has started.
    async fn cancel_submission(
        &self,
        user_id: &str,
        mode: crate::keys::KeyMode,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CancelOutcome>;

    // Idempotency.
    /// Takes the key for this request unless another request holds it or completed it. A
    /// record older than `expired_before`, or one still in flight since before
    /// `abandoned_before`, is taken over.
    #[allow(clippy::too_many_arguments)]
    async fn idempotency_acquire(
        &self,
        user_id: &str,
        mode: crate::keys::KeyMode,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState>;
    /// Gives up a key this request holds (the request failed before creating anything).
    async fn idempotency_release(
        &self,
        user_id: &str,
        mode: crate::keys::KeyMode,
        key: &str,
    ) -> StoreResult<()>;
    /// Deletes idempotency records created before `before`; returns how many.
    async fn idempotency_purge(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // The queue.
    /// Takes up to `limit` targets that are due (or whose lease expired), oldest due first,
    /// and leases them to `owner` until `lease_until`.
    async fn claim_targets(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedTarget>>;
    /// The earliest time a target becomes claimable (due or lease expiry), if any.
    async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Counts of open targets by platform, mode and status, what of them is due and unclaimed
    /// at `now`, and the accounts needing reconnection. Reads only open targets (the partial
    /// indexes on the queue), so it stays cheap however many posts were published.
    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<QueueStats>;
    /// Records that an attempt is about to reach the platform and renews its lease to
    /// `lease_until`. False when `owner` lost the lease, or it ran out before `now` (even when no
    /// other worker took the target over yet).
    async fn mark_in_flight(
        &self,
        target_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let one = InFlight {
            target_id: target_id.to_owned(),
            owner: owner.to_owned(),
            now,
            lease_until,
        };
        Ok(self.mark_in_flight_batch(&[one]).await?.first() == Some(&true))
    }
    /// `mark_in_flight` for several targets in one transaction; one answer per target.
    async fn mark_in_flight_batch(&self, targets: &[InFlight]) -> StoreResult<Vec<bool>>;
    /// Moves the lease of a target `owner` holds to `until` (a long upload keeps its target);
    /// false when `owner` holds it no more.
    async fn extend_lease(
        &self,
        target_id: &str,
        owner: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Keeps a connector's progress on a target for later attempts; false when `owner` no
    /// longer holds the target's lease.
    async fn save_target_progress(
        &self,
        target_id: &str,
        owner: &str,
        progress_json: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Ends an attempt and updates the submission's status. False when `owner` lost the lease.
    async fn finish_target(
        &self,
        target_id: &str,
        owner: &str,
        outcome: &TargetOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let one = FinishTarget {
            target_id: target_id.to_owned(),
            owner: owner.to_owned(),
            outcome: outcome.clone(),
            now,
        };
        Ok(self.finish_targets(&[one]).await?.first() == Some(&true))
    }
    /// `finish_target` for several attempts in one transaction; one answer per attempt.
    async fn finish_targets(&self, attempts: &[FinishTarget]) -> StoreResult<Vec<bool>>;

    // Simulated platforms.
    /// Records a create call: a new post, or one more call for a marker seen before.
    async fn sandbox_create(&self, post: &SandboxPost) -> StoreResult<SandboxPost> {
        self.sandbox_create_batch(std::slice::from_ref(post))
            .await?
            .pop()
            .ok_or_else(|| crate::StoreError::Backend("no record returned".into()))
    }
    /// `sandbox_create` for several calls in one transaction; one record per call, in order.
    async fn sandbox_create_batch(&self, posts: &[SandboxPost]) -> StoreResult<Vec<SandboxPost>>;
    async fn sandbox_find(
        &self,
        user_id: &str,
        platform: Platform,
        marker: &str,
    ) -> StoreResult<Option<SandboxPost>>;
    /// The newest `limit` posts, newest first (`sandbox_page` without a cursor).
    async fn sandbox_list(
        &self,
        user_id: &str,
        platform: Platform,
        limit: i64,
    ) -> StoreResult<Vec<SandboxPost>> {
        self.sandbox_page(user_id, platform, None, limit).await
    }
    /// Newest first (by `received_at`, then `id`), only posts older than `before`
    /// `(received_at, id)` when given (the cursor), at most `limit`.
    async fn sandbox_page(
        &self,
        user_id: &str,
        platform: Platform,
        before: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> StoreResult<Vec<SandboxPost>>;
}
