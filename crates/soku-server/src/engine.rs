//! The publishing engine (spec 7): workers that take due targets from the database queue,
//! publish them through their platform's connector, and record each outcome.
//!
//! Every target is leased to one worker at a time (`claim_targets`), so several processes share
//! the work. Before a request that may reach the platform, the target is marked in flight; a
//! target found in flight again (its worker died, or the platform's answer was ambiguous) is
//! reconciled with `find_existing` before anything is sent again, or ends `unknown` where the
//! platform cannot tell. Retryable failures back off exponentially with jitter, honouring
//! `Retry-After`, for a bounded number of attempts.
//!
//! The dispatcher sleeps until the next due time or lease expiry, woken early when this
//! process accepts a post, and looks at the database at least every `poll_interval` for work
//! that other processes added.

use crate::account_tokens::{AccountTokens, Refresh};
use rand::Rng;
use soku_core::batch::GroupCommit;
use soku_core::connector::{
    AccountCredentials, Connector, Existing, FailureClass, PublishError, PublishRequest,
    TOKEN_INVALID,
};
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::posts::PostContent;
use soku_core::queue::{
    AccountStatus, ClaimedTarget, FinishTarget, InFlight, TargetError, TargetOutcome,
};
use soku_core::{Clock, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tracing::Instrument;

const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// Idempotency keys are kept this long (spec 6.1).
pub const IDEMPOTENCY_KEPT_HOURS: i64 = 24;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Targets published at once by this process.
    pub concurrency: usize,
    /// How long a claimed target stays with its worker; a dead worker's targets are taken
    /// over after it. Longer than any one platform call.
    pub lease: Duration,
    /// Attempts before a target that keeps failing retryably ends `failed`.
    pub max_attempts: i64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The longest the dispatcher sleeps without looking for work other processes added.
    pub poll_interval: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 128,
            lease: Duration::from_secs(120),
            max_attempts: 5,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The real networks' connectors, by platform.
pub type LiveConnectors = HashMap<Platform, Arc<dyn Connector>>;

/// The connectors the engine publishes through: the simulated platforms for test mode, and
/// the real ones that exist for live mode.
#[derive(Clone)]
pub struct Connectors {
    pub simulated: Arc<dyn Connector>,
    pub live: LiveConnectors,
}

impl Connectors {
    pub fn for_target(&self, mode: KeyMode, platform: Platform) -> Option<Arc<dyn Connector>> {
        match mode {
            KeyMode::Test => Some(self.simulated.clone()),
            KeyMode::Live => self.live.get(&platform).cloned(),
        }
    }
}

pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    connectors: Connectors,
    tokens: Arc<AccountTokens>,
    config: EngineConfig,
    wake: Arc<Notify>,
    worker_id: String,
    claims: AtomicU64,
    /// Outcomes and in-flight marks of the attempts running at once, written together.
    finish: GroupCommit<FinishTarget, bool>,
    in_flight: GroupCommit<InFlight, bool>,
}

/// The most attempts written in one transaction.
const WRITE_BATCH: usize = 256;

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        connectors: Connectors,
        tokens: Arc<AccountTokens>,
        config: EngineConfig,
        wake: Arc<Notify>,
    ) -> Arc<Self> {
        let finish = {
            let store = store.clone();
            GroupCommit::spawn(WRITE_BATCH, move |batch: Arc<[FinishTarget]>| {
                let store = store.clone();
                async move { store.finish_targets(&batch).await }
            })
        };
        let in_flight = {
            let store = store.clone();
            GroupCommit::spawn(WRITE_BATCH, move |batch: Arc<[InFlight]>| {
                let store = store.clone();
                async move { store.mark_in_flight_batch(&batch).await }
            })
        };
        Arc::new(Self {
            finish,
            in_flight,
            store,
            clock,
            connectors,
            tokens,
            config,
            wake,
            worker_id: soku_core::keys::random_id("w", 10),
            claims: AtomicU64::new(0),
        })
    }

    /// Runs until `shutdown` turns true, then lets the attempts in progress finish.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let finished = Arc::new(Notify::new());
        tracing::info!(worker = %self.worker_id, concurrency = self.config.concurrency, "publishing engine started");
        let mut last_housekeeping: Option<std::time::Instant> = None;
        while !*shutdown.borrow() {
            if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
                last_housekeeping = Some(std::time::Instant::now());
                self.housekeeping();
            }
            let free = slots.available_permits();
            let mut claimed_all = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok((owner, claimed)) => {
                        claimed_all = claimed.len() == free;
                        for target in claimed {
                            let permit = slots
                                .clone()
                                .acquire_owned()
                                .await
                                .expect("the semaphore is never closed");
                            let engine = self.clone();
                            let owner = owner.clone();
                            let finished = finished.clone();
                            tokio::spawn(async move {
                                engine.attempt(&owner, target).await;
                                drop(permit);
                                finished.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "claiming due targets failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            if claimed_all {
                continue;
            }
            let wait = if slots.available_permits() == 0 {
                self.config.poll_interval
            } else {
                self.until_next_due().await
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = finished.notified(), if slots.available_permits() == 0 || free == 0 => {}
                _ = shutdown.changed() => {}
            }
        }
        // Let attempts in progress record their outcome.
        let _ = slots.acquire_many(self.config.concurrency as u32).await;
        tracing::info!(worker = %self.worker_id, "publishing engine stopped");
    }

    /// Forgets idempotency records past their 24 hours, off the dispatch path.
    fn housekeeping(&self) {
        let store = self.store.clone();
        let before = self.clock.now() - chrono::Duration::hours(IDEMPOTENCY_KEPT_HOURS);
        tokio::spawn(async move {
            match store.idempotency_purge(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired idempotency records removed"),
                Err(e) => tracing::warn!(error = %e, "removing expired idempotency records failed"),
            }
        });
    }

    async fn claim(
        &self,
        limit: usize,
    ) -> Result<(String, Vec<ClaimedTarget>), soku_core::StoreError> {
        let owner = format!(
            "{}:{}",
            self.worker_id,
            self.claims.fetch_add(1, Ordering::Relaxed)
        );
        let now = self.clock.now();
        let lease =
            chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::minutes(2));
        let claimed = self
            .store
            .claim_targets(&owner, now, now + lease, limit as i64)
            .await?;
        Ok((owner, claimed))
    }

    async fn until_next_due(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.store.next_due().await {
            Ok(Some(t)) => {
                let ms = (t - self.clock.now()).num_milliseconds();
                // Never a busy loop, even when another process holds what is due.
                Duration::from_millis(ms.clamp(5, poll.as_millis() as i64) as u64)
            }
            Ok(None) => poll,
            Err(e) => {
                tracing::error!(error = %e, "reading the next due time failed");
                poll
            }
        }
    }

    /// One attempt at one target, ending in a recorded outcome.
    async fn attempt(&self, owner: &str, claimed: ClaimedTarget) {
        let span = tracing::info_span!(
            "publish",
            target = %claimed.target.id,
            platform = %claimed.target.platform,
            attempt = claimed.target.attempts
        );
        self.attempt_in_span(owner, &claimed).instrument(span).await
    }

    async fn attempt_in_span(&self, owner: &str, claimed: &ClaimedTarget) {
        let target = &claimed.target;
        let outcome = self.decide(owner, claimed).await;
        let Some(outcome) = outcome else { return };
        match &outcome {
            TargetOutcome::Published { post_id, .. } => {
                tracing::info!(post_id = %post_id, "published")
            }
            TargetOutcome::Retry { due_at, error, .. } => {
                tracing::warn!(code = %error.code, retry_at = %due_at, "attempt failed; will retry")
            }
            TargetOutcome::Failed(e) => tracing::warn!(code = %e.code, "failed"),
            TargetOutcome::Unknown(e) => tracing::warn!(code = %e.code, "outcome unknown"),
        }
        let done = FinishTarget {
            target_id: target.id.clone(),
            owner: owner.to_owned(),
            outcome,
            now: self.clock.now(),
        };
        match self.finish.submit(done).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "lease lost before the outcome was recorded; another worker owns the target"
            ),
            Err(e) => {
                tracing::error!(error = %e, "recording the outcome failed; the lease will expire and the target be reconciled")
            }
        }
    }

    /// Runs the attempt; `None` when the lease was lost and another worker owns the target.
    async fn decide(&self, owner: &str, claimed: &ClaimedTarget) -> Option<TargetOutcome> {
        let target = &claimed.target;
        let Some(connector) = self.connectors.for_target(claimed.mode, target.platform) else {
            return Some(TargetOutcome::Failed(error(
                "no_connector",
                format!(
                    "This server cannot publish to {} yet.",
                    target.platform.display_name()
                ),
            )));
        };
        let request = match self.request(claimed).await {
            Ok(r) => r,
            // An earlier attempt may have published: what cannot be checked now is unknown,
            // never failed (a failed target invites a repost).
            Err(TargetOutcome::Failed(e)) if claimed.in_flight => {
                return Some(TargetOutcome::Unknown(TargetError {
                    message: format!(
                        "{} An earlier attempt may have published it; it is not retried.",
                        e.message
                    ),
                    ..e
                }));
            }
            Err(outcome) => return Some(outcome),
        };

        if claimed.in_flight {
            // An earlier attempt may have reached the platform.
            match self
                .reconcile(connector.as_ref(), &request, claimed, None)
                .await
            {
                Reconciled::Done(outcome) => return Some(outcome),
                Reconciled::NotThere => {}
            }
        }
        let mark = InFlight {
            target_id: target.id.clone(),
            owner: owner.to_owned(),
        };
        match self.in_flight.submit(mark).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                return Some(self.retry_or_fail(
                    claimed,
                    error("store_unavailable", e.to_string()),
                    None,
                    false,
                ));
            }
        }
        // A hard bound well inside the lease, so a hung call cannot outlive its lease.
        let deadline = self.config.lease / 2;
        let result = match tokio::time::timeout(deadline, connector.publish(&request)).await {
            Ok(r) => r,
            Err(_) => Err(PublishError::new(
                FailureClass::Ambiguous,
                "timeout",
                "The platform did not answer in time.",
            )),
        };
        Some(match result {
            Ok(post) => TargetOutcome::Published {
                post_id: post.id,
                url: post.url,
            },
            Err(e) if e.code == TOKEN_INVALID => self.after_token_refused(claimed, &e).await,
            Err(e) => match e.class {
                FailureClass::Retryable { retry_after } => {
                    self.retry_or_fail(claimed, from_publish(&e), retry_after, false)
                }
                FailureClass::Permanent => TargetOutcome::Failed(from_publish(&e)),
                FailureClass::Ambiguous => match self
                    .reconcile(connector.as_ref(), &request, claimed, Some(&e))
                    .await
                {
                    Reconciled::Done(outcome) => outcome,
                    Reconciled::NotThere => {
                        self.retry_or_fail(claimed, from_publish(&e), None, false)
                    }
                },
            },
        })
    }

    /// Asks the platform whether the post exists. `cause` is the ambiguous failure that led
    /// here, if it happened in this attempt.
    async fn reconcile(
        &self,
        connector: &dyn Connector,
        request: &PublishRequest,
        claimed: &ClaimedTarget,
        cause: Option<&PublishError>,
    ) -> Reconciled {
        let cause_error = cause.map(from_publish).unwrap_or_else(|| {
            error(
                "interrupted",
                "An earlier attempt was interrupted after it may have reached the platform.",
            )
        });
        match connector.find_existing(request).await {
            Ok(Existing::Found(post)) => Reconciled::Done(TargetOutcome::Published {
                post_id: post.id,
                url: post.url,
            }),
            Ok(Existing::NotFound) => Reconciled::NotThere,
            Ok(Existing::CannotTell) => Reconciled::Done(TargetOutcome::Unknown(TargetError {
                code: "outcome_unknown".into(),
                message: format!(
                    "{} It may have been published; the platform cannot say, so it is not retried.",
                    cause_error.message
                ),
                platform_error: cause_error.platform_error,
            })),
            // The lookup's token was refused: refresh it for the next lookup, or, when the account
            // needs reconnecting, the outcome cannot be learned.
            Err(e) if e.code == TOKEN_INVALID => {
                let Some(account_ref) = claimed.target.account_ref.as_deref() else {
                    return Reconciled::Done(self.retry_or_fail(
                        claimed,
                        from_publish(&e),
                        None,
                        true,
                    ));
                };
                match self.tokens.refresh(account_ref, true).await {
                    Refresh::NeedsReconnect(why) => {
                        Reconciled::Done(TargetOutcome::Unknown(TargetError {
                            code: "outcome_unknown".into(),
                            message: format!(
                                "{} Whether it was published cannot be checked: the {} account needs to be reconnected ({why}).",
                                cause_error.message,
                                claimed.target.platform.display_name()
                            ),
                            platform_error: cause_error.platform_error,
                        }))
                    }
                    _ => {
                        Reconciled::Done(self.retry_or_fail(claimed, from_publish(&e), None, true))
                    }
                }
            }
            // Still unknown: try the reconciliation again later, never a blind publish.
            Err(e) => Reconciled::Done(self.retry_or_fail(claimed, from_publish(&e), None, true)),
        }
    }

    /// The platform refused the account's access token (nothing was published): refresh the
    /// tokens and try again, or fail the target when the account needs reconnecting.
    async fn after_token_refused(
        &self,
        claimed: &ClaimedTarget,
        refused: &PublishError,
    ) -> TargetOutcome {
        let Some(account_ref) = claimed.target.account_ref.as_deref() else {
            return TargetOutcome::Failed(from_publish(refused));
        };
        match self.tokens.refresh(account_ref, true).await {
            Refresh::Refreshed => self.retry_or_fail(
                claimed,
                from_publish(refused),
                Some(Duration::from_secs(1)),
                false,
            ),
            // Another worker is refreshing it (a refresh takes about a second).
            Refresh::Busy => self.retry_or_fail(
                claimed,
                from_publish(refused),
                Some(Duration::from_secs(5)),
                false,
            ),
            Refresh::NeedsReconnect(why) => TargetOutcome::Failed(TargetError {
                code: "account_needs_reconnect".into(),
                message: format!(
                    "The {} account needs to be reconnected: its token was refused and could not be refreshed ({why}).",
                    claimed.target.platform.display_name()
                ),
                platform_error: refused.platform_error.clone(),
            }),
            Refresh::Unavailable(why) => self.retry_or_fail(
                claimed,
                error(
                    "token_refresh_failed",
                    format!("The account's token was refused and refreshing it failed: {why}"),
                ),
                None,
                false,
            ),
        }
    }

    fn retry_or_fail(
        &self,
        claimed: &ClaimedTarget,
        error: TargetError,
        retry_after: Option<Duration>,
        in_flight: bool,
    ) -> TargetOutcome {
        let attempts = claimed.target.attempts;
        if attempts >= self.config.max_attempts {
            let message = format!("{} (gave up after {attempts} attempts)", error.message);
            let err = TargetError { message, ..error };
            return if in_flight {
                TargetOutcome::Unknown(err)
            } else {
                TargetOutcome::Failed(err)
            };
        }
        let delay = backoff(&self.config, attempts).max(retry_after.unwrap_or_default());
        let due_at = self.clock.now()
            + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
        TargetOutcome::Retry {
            due_at,
            error,
            in_flight,
        }
    }

    /// The publish request of a claimed target, with the account's tokens decrypted.
    async fn request(&self, claimed: &ClaimedTarget) -> Result<PublishRequest, TargetOutcome> {
        let target = &claimed.target;
        let content: PostContent = serde_json::from_str(&claimed.content_json).map_err(|e| {
            TargetOutcome::Failed(error(
                "corrupt_post",
                format!("The stored post cannot be read: {e}"),
            ))
        })?;
        let account = match (&target.account_ref, claimed.mode) {
            (None, _) | (_, KeyMode::Test) => AccountCredentials {
                account_id: target.account_id.clone(),
                username: None,
                access_token: None,
                refresh_token: None,
                meta: serde_json::Value::Null,
            },
            (Some(account_ref), KeyMode::Live) => {
                let mut found = self.load_account(claimed, account_ref).await?;
                let expired = found
                    .0
                    .token_expires_at
                    .is_some_and(|at| at <= self.clock.now() + chrono::Duration::seconds(30));
                if expired {
                    // Expired (the background refresher was late or failed): refresh first.
                    match self.tokens.refresh(account_ref, false).await {
                        Refresh::Refreshed => {
                            found = self.load_account(claimed, account_ref).await?
                        }
                        Refresh::Busy => {
                            return Err(self.retry_or_fail(
                                claimed,
                                error(
                                    "token_refreshing",
                                    "The account's tokens are being refreshed.",
                                ),
                                Some(Duration::from_secs(5)),
                                claimed.in_flight,
                            ));
                        }
                        Refresh::NeedsReconnect(why) => {
                            return Err(TargetOutcome::Failed(error(
                                "account_needs_reconnect",
                                format!(
                                    "The {} account needs to be reconnected: its token expired and could not be refreshed ({why}).",
                                    target.platform.display_name()
                                ),
                            )));
                        }
                        Refresh::Unavailable(why) => {
                            return Err(self.retry_or_fail(
                                claimed,
                                error(
                                    "token_refresh_failed",
                                    format!("The account's token expired and refreshing it failed: {why}"),
                                ),
                                None,
                                claimed.in_flight,
                            ));
                        }
                    }
                }
                let (account, secrets) = found;
                self.tokens.credentials(&account, &secrets)
            }
        };
        Ok(PublishRequest {
            marker: target.id.clone(),
            user_id: claimed.user_id.clone(),
            submission_id: target.submission_id.clone(),
            target_id: format!("{}:{}", target.platform, target.account_id),
            platform: target.platform,
            account,
            content,
            not_before: claimed.submitted_at,
        })
    }
}

impl Engine {
    /// The target's account and its sealed tokens, if it is still connected and usable.
    async fn load_account(
        &self,
        claimed: &ClaimedTarget,
        account_ref: &str,
    ) -> Result<(soku_core::queue::Account, soku_core::queue::AccountSecrets), TargetOutcome> {
        let found = self.store.account_secrets(account_ref).await.map_err(|e| {
            self.retry_or_fail(
                claimed,
                error("store_unavailable", e.to_string()),
                None,
                claimed.in_flight,
            )
        })?;
        let Some((account, secrets)) = found else {
            return Err(TargetOutcome::Failed(error(
                "account_disconnected",
                "The account was disconnected before the post was published.",
            )));
        };
        if account.status == AccountStatus::NeedsReconnect {
            return Err(TargetOutcome::Failed(error(
                "account_needs_reconnect",
                format!(
                    "The {} account needs to be reconnected.",
                    claimed.target.platform.display_name()
                ),
            )));
        }
        Ok((account, secrets))
    }
}

enum Reconciled {
    Done(TargetOutcome),
    NotThere,
}

fn error(code: &str, message: impl Into<String>) -> TargetError {
    TargetError {
        code: code.into(),
        message: message.into(),
        platform_error: None,
    }
}

fn from_publish(e: &PublishError) -> TargetError {
    TargetError {
        code: e.code.clone(),
        message: e.message.clone(),
        platform_error: e.platform_error.clone(),
    }
}

/// Exponential backoff with jitter: base × 2^(attempt-1), capped, then a uniform draw from
/// its upper half.
pub fn backoff(config: &EngineConfig, attempt: i64) -> Duration {
    let exp = (attempt.max(1) - 1).min(20) as u32;
    let full = config
        .backoff_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(config.backoff_max);
    let ms = full.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let c = EngineConfig {
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            ..EngineConfig::default()
        };
        for _ in 0..100 {
            let first = backoff(&c, 1);
            assert!(
                first >= Duration::from_secs(1) && first <= Duration::from_secs(2),
                "{first:?}"
            );
            let third = backoff(&c, 3);
            assert!(
                third >= Duration::from_secs(4) && third <= Duration::from_secs(8),
                "{third:?}"
            );
            assert!(backoff(&c, 30) <= Duration::from_secs(60));
        }
    }
}
