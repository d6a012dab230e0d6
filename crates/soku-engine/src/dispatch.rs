//! The dispatcher: claims due targets within the free slots, runs each attempt in its own
//! task, sleeps until the next due time (woken early when this process accepts a post) and
//! forgets expired idempotency records now and then.

use crate::EngineConfig;
use crate::account_tokens::AccountTokens;
use crate::metrics::EngineMetrics;
use crate::save::{StoreHealth, retry_wait};
use soku_core::batch::GroupCommit;
use soku_core::queue::{ClaimedTarget, FinishTarget, InFlight};
use soku_core::{Clock, Store};
use soku_platforms::Connectors;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

/// The publishing engine of one process: `new`, then `run` until shutdown.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) connectors: Connectors,
    pub(crate) tokens: Arc<AccountTokens>,
    pub(crate) config: EngineConfig,
    pub(crate) metrics: Arc<EngineMetrics>,
    wake: Arc<Notify>,
    worker_id: String,
    claims: AtomicU64,
    /// Outcomes and in-flight marks of the attempts running at once, written together.
    pub(crate) finish: GroupCommit<FinishTarget, bool>,
    pub(crate) in_flight: GroupCommit<InFlight, bool>,
    pub(crate) health: StoreHealth,
    /// Makes a post's media hosted before its targets are published; `None`: URLs go to the
    /// connectors as they are.
    pub(crate) media: Option<Arc<crate::EngineMedia>>,
}

/// The most attempts written in one transaction.
const WRITE_BATCH: usize = 256;

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        connectors: Connectors,
        tokens: Arc<AccountTokens>,
        config: EngineConfig,
        wake: Arc<Notify>,
        metrics: Arc<EngineMetrics>,
        media: Option<Arc<crate::EngineMedia>>,
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
            metrics,
            wake,
            worker_id: soku_core::keys::random_id("w", 10),
            claims: AtomicU64::new(0),
            health: StoreHealth::default(),
            media,
        })
    }

    /// Runs until `shutdown` turns true, then lets the attempts in progress finish.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let finished = Arc::new(Notify::new());
        tracing::info!(worker = %self.worker_id, concurrency = self.config.concurrency, "publishing engine started");
        let mut last_housekeeping: Option<std::time::Instant> = None;
        let mut claim_failures = 0u32;
        // When the first of failed claims began: a lost claim's leases (returned by the next
        // claim with its owner token) date from then.
        let mut failed_claim_at: Option<std::time::Instant> = None;
        while !*shutdown.borrow() {
            if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
                last_housekeeping = Some(std::time::Instant::now());
                self.housekeeping();
            }
            let free = slots.available_permits();
            let mut claimed_all = false;
            if free > 0 {
                let leased_at = *failed_claim_at.get_or_insert_with(std::time::Instant::now);
                match self.claim(free).await {
                    Ok((owner, claimed)) => {
                        claim_failures = 0;
                        failed_claim_at = None;
                        claimed_all = claimed.len() >= free;
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
                                engine.attempt(&owner, target, leased_at).await;
                                drop(permit);
                                finished.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        // Soon again (the database may answer in a moment), never busily.
                        self.health.failed("claiming due targets", &e);
                        let wait = retry_wait(claim_failures).min(self.config.poll_interval);
                        claim_failures += 1;
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.changed() => {}
                        }
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

    /// Off the dispatch path: forgets idempotency records past their 24 hours, audit events
    /// past their 90 days (spec 4.1), and sessions that ended more than a day ago.
    fn housekeeping(&self) {
        let store = self.store.clone();
        let now = self.clock.now();
        let idempotency = now - chrono::Duration::hours(crate::IDEMPOTENCY_KEPT_HOURS);
        let audit = now - chrono::Duration::days(soku_core::audit::AUDIT_KEPT_DAYS);
        let sessions = now - chrono::Duration::days(1);
        tokio::spawn(async move {
            let purged = [
                (
                    "expired idempotency records",
                    store.idempotency_purge(idempotency).await,
                ),
                (
                    "audit events older than 90 days",
                    store.purge_audit_events(audit).await,
                ),
                (
                    "ended dashboard sessions",
                    store.purge_sessions(sessions).await,
                ),
            ];
            for (what, result) in purged {
                match result {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "{what} removed"),
                    Err(e) => tracing::warn!(error = %e, "removing {what} failed"),
                }
            }
        });
    }

    /// Leases due targets to a new owner token. After a failed claim the next one reuses the
    /// token: a claim whose commit went through but whose answer was lost then returns its
    /// targets too, instead of leaving them to the lease's expiry.
    async fn claim(
        &self,
        limit: usize,
    ) -> Result<(String, Vec<ClaimedTarget>), soku_core::StoreError> {
        let owner = format!("{}:{}", self.worker_id, self.claims.load(Ordering::Relaxed));
        let now = self.clock.now();
        let lease =
            chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::minutes(2));
        let claimed = self
            .store
            .claim_targets(&owner, now, now + lease, limit as i64)
            .await?;
        self.health.answered();
        self.claims.fetch_add(1, Ordering::Relaxed);
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
                self.health.failed("reading the next due time", &e);
                poll
            }
        }
    }
}
