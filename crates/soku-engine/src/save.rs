//! Writing an attempt's in-flight mark and outcome through a database blip.
//!
//! Once the platform has answered, the outcome is known and must not be given up because a
//! database connection dropped: it is written again with exponential backoff (100 ms doubling
//! up to 2 s) until it is stored, for as long as this process surely still holds the lease
//! (the lease minus a margin). Past that, another worker may take the target over and
//! reconcile it; a late write could then only lose (the store records an outcome only for the
//! lease's owner, and every claim has its own owner token), but there is no point trying.
//! The lease's takeover stays the fallback for a process that died.
//!
//! A lost database shows as one warning when it starts and one note when it answers again,
//! not a line per target.

use crate::dispatch::Engine;
use crate::lease::Lease;
use soku_core::StoreError;
use soku_core::queue::{FinishTarget, InFlight};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The first wait before writing again; it doubles up to `RETRY_MAX`.
pub(crate) const RETRY_FIRST: Duration = Duration::from_millis(100);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(2);

/// Whether the database is answering, to log an outage once rather than per target.
#[derive(Default)]
pub(crate) struct StoreHealth {
    down: AtomicBool,
}

impl StoreHealth {
    /// A call failed: the first failure of an outage is logged as a warning, the rest at debug.
    pub(crate) fn failed(&self, what: &str, error: &StoreError) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %error, "{what} failed; the database is unavailable, retrying until it answers");
        } else {
            tracing::debug!(error = %error, "{what} failed again");
        }
    }

    /// A call succeeded: the end of an outage is noted once.
    pub(crate) fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("the database answers again");
        }
    }
}

/// The wait after `RETRY_FIRST` doubled `n` times, at most `RETRY_MAX`.
pub(crate) fn retry_wait(n: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(2u32.saturating_pow(n.min(16)))
        .min(RETRY_MAX)
}

/// How long before its lease runs out a process stops writing an attempt's outcome: room for
/// the last write and for clocks that disagree between nodes.
pub(crate) fn lease_margin(lease: Duration) -> Duration {
    (lease / 6).max(Duration::from_millis(500)).min(lease / 2)
}

/// Runs `write` until it succeeds, or, once the next try would start after `until`, returns
/// its last error.
pub(crate) async fn with_retries<R, F, Fut>(
    health: &StoreHealth,
    what: &str,
    until: Instant,
    mut write: F,
) -> Result<R, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<R, StoreError>>,
{
    let mut tries = 0u32;
    loop {
        match write().await {
            Ok(r) => {
                health.answered();
                return Ok(r);
            }
            Err(e) => {
                health.failed(what, &e);
                let wait = retry_wait(tries);
                tries += 1;
                if Instant::now() + wait > until {
                    return Err(e);
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

impl Engine {
    /// Marks the target in flight before the platform call, renewing its lease; refused when
    /// the lease was lost or ran out. Tried again for a quarter of the lease from its last
    /// renewal at most, which leaves the call and the outcome's write their time.
    pub(crate) async fn save_in_flight(&self, lease: &Lease) -> Result<bool, StoreError> {
        let until = lease.renewed_at() + self.config.lease / 4;
        let length =
            chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::minutes(2));
        let mut sent = Instant::now();
        let marked = with_retries(&self.health, "marking a target in flight", until, || {
            sent = Instant::now();
            let now = self.clock.now();
            self.in_flight.submit(InFlight {
                target_id: lease.target_id.clone(),
                owner: lease.owner.clone(),
                now,
                lease_until: now + length,
            })
        })
        .await?;
        if marked {
            lease.renewed(sent);
        }
        Ok(marked)
    }

    /// Records the attempt's outcome, written again through a database blip while the lease
    /// is surely still this process's.
    pub(crate) async fn save_outcome(&self, done: FinishTarget, leased_at: Instant) {
        let until = leased_at + self.config.lease - lease_margin(self.config.lease);
        let mut tries = 0u32;
        let result = with_retries(&self.health, "recording an outcome", until, || {
            tries += 1;
            self.finish.submit(done.clone())
        })
        .await;
        match result {
            Ok(true) => {}
            // A write whose commit went through but whose answer was lost finds its own outcome.
            Ok(false) if tries > 1 => tracing::info!(
                "the outcome was recorded by an earlier write whose answer was lost, or the lease was lost"
            ),
            Ok(false) => tracing::warn!(
                "lease lost before the outcome was recorded; another worker owns the target"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "recording the outcome failed until the lease's end drew near; the lease will expire and the target be reconciled"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_write_is_tried_again_until_it_succeeds() {
        let health = StoreHealth::default();
        let mut tries = 0;
        let started = Instant::now();
        let until = Instant::now() + Duration::from_secs(100);
        let result = with_retries(&health, "writing", until, || {
            tries += 1;
            let n = tries;
            async move {
                if n <= 4 {
                    Err(StoreError::Backend("connection closed".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 5);
        // 100 + 200 + 400 + 800 ms of waiting.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        assert!(!health.down.load(Ordering::Relaxed), "the outage ended");
    }

    #[tokio::test]
    async fn a_write_that_keeps_failing_is_given_up_before_the_deadline() {
        let health = StoreHealth::default();
        let started = Instant::now();
        let until = started + Duration::from_millis(400);
        let mut tries = 0;
        let result: Result<(), _> = with_retries(&health, "writing", until, || {
            tries += 1;
            async { Err(StoreError::Backend("connection refused".into())) }
        })
        .await;
        assert!(result.is_err());
        assert!(Instant::now() <= until, "no try starts after the deadline");
        // At 0, 100 and 300 ms; the next would start at 700 ms.
        assert_eq!(tries, 3);
        assert!(health.down.load(Ordering::Relaxed));
    }

    #[test]
    fn waits_double_up_to_a_cap() {
        assert_eq!(retry_wait(0), Duration::from_millis(100));
        assert_eq!(retry_wait(1), Duration::from_millis(200));
        assert_eq!(retry_wait(4), Duration::from_millis(1600));
        assert_eq!(retry_wait(5), RETRY_MAX);
        assert_eq!(retry_wait(100), RETRY_MAX);
    }

    #[test]
    fn the_margin_leaves_most_of_the_lease_and_never_all_of_it() {
        assert_eq!(
            lease_margin(Duration::from_secs(120)),
            Duration::from_secs(20)
        );
        assert_eq!(
            lease_margin(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert!(lease_margin(Duration::from_millis(600)) <= Duration::from_millis(300));
    }
}
