//! Holding a target's lease for a whole attempt.
//!
//! A target is leased to one worker for `EngineConfig::lease`; once it runs out, any worker
//! (this process's dispatcher too) may take the target over, reconcile it and publish it. So the
//! lease is renewed every third of it from the claim to the outcome: through a slow media import,
//! a token refresh, a reconciliation's paging and the platform call alike, not only during the
//! call. The in-flight mark renews it too (and is refused on a lease that ran out), so the call
//! starts with a whole lease. Every deadline of the attempt (how long the mark and the outcome
//! are written through a database blip) counts from the last renewal.
//!
//! When a renewal finds the lease taken over (or cannot reach the database until half the lease
//! is gone), the lease counts as lost: the platform call, if one is running, is stopped, and
//! the store refuses the attempt's in-flight mark and outcome (it records them only for the
//! lease's owner). The rest of the attempt (an import, a token refresh) is let finish: cutting
//! a token refresh short could lose a rotated refresh token.

use crate::dispatch::Engine;
use crate::save::retry_wait;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The lease of one attempt.
pub(crate) struct Lease {
    pub(crate) target_id: String,
    pub(crate) owner: String,
    /// No later than when the lease was last taken or renewed (when that request was sent).
    renewed: Mutex<Instant>,
    lost: watch::Sender<bool>,
}

impl Lease {
    pub(crate) fn new(target_id: &str, owner: &str, leased_at: Instant) -> Self {
        Self {
            target_id: target_id.to_owned(),
            owner: owner.to_owned(),
            renewed: Mutex::new(leased_at),
            lost: watch::Sender::new(false),
        }
    }

    /// When the lease was last taken or renewed, at the latest.
    pub(crate) fn renewed_at(&self) -> Instant {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lease was renewed by a request sent at `at`.
    pub(crate) fn renewed(&self, at: Instant) {
        let mut renewed = self.renewed.lock().unwrap_or_else(|p| p.into_inner());
        *renewed = (*renewed).max(at);
    }

    fn lose(&self) {
        self.lost.send_replace(true);
    }

    /// Resolves once the lease is lost.
    pub(crate) async fn lost(&self) {
        let mut lost = self.lost.subscribe();
        // The sender lives as long as `self`.
        let _ = lost.wait_for(|lost| *lost).await;
    }
}

impl Engine {
    /// Renews `lease` every third of the lease from its last renewal, until it is lost (another
    /// worker took the target over, or the database did not answer for half the lease): then
    /// marks it lost and returns. Runs beside the attempt, which drops it when done.
    pub(crate) async fn keep_lease(&self, lease: &Lease) {
        let length = self.config.lease;
        let every = length / 3;
        let mut failures = 0u32;
        loop {
            let due = lease.renewed_at() + every;
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
                // The in-flight mark may have renewed it meanwhile.
                if lease.renewed_at() + every > Instant::now() {
                    continue;
                }
            }
            let sent = Instant::now();
            let until = self.clock.now()
                + chrono::Duration::from_std(length).unwrap_or(chrono::Duration::seconds(120));
            match self
                .store
                .extend_lease(&lease.target_id, &lease.owner, until)
                .await
            {
                Ok(true) => {
                    failures = 0;
                    self.health.answered();
                    lease.renewed(sent);
                }
                Ok(false) => {
                    tracing::warn!("the lease was lost: another worker owns the target now");
                    lease.lose();
                    return;
                }
                // A database blip: try again while the lease surely still holds.
                Err(e) if lease.renewed_at().elapsed() < length / 2 => {
                    self.health.failed("renewing a lease", &e);
                    tokio::time::sleep(
                        retry_wait(failures).min(every.max(Duration::from_millis(10))),
                    )
                    .await;
                    failures += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the lease could not be renewed; giving the target up");
                    lease.lose();
                    return;
                }
            }
        }
    }
}
