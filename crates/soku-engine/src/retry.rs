//! Retries: exponential backoff with jitter, at least the platform's `Retry-After`, for a
//! bounded number of attempts.

use crate::EngineConfig;
use crate::dispatch::Engine;
use rand::Rng;
use soku_core::connector::PublishError;
use soku_core::queue::{ClaimedTarget, TargetError, TargetOutcome};
use std::time::Duration;

impl Engine {
    pub(crate) fn retry_or_fail(
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
        let delay = retry_delay(&self.config, attempts, retry_after);
        let due_at = self.clock.now()
            + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1));
        TargetOutcome::Retry {
            due_at,
            error,
            in_flight,
        }
    }
}

pub(crate) fn error(code: &str, message: impl Into<String>) -> TargetError {
    TargetError {
        code: code.into(),
        message: message.into(),
        platform_error: None,
    }
}

pub(crate) fn from_publish(e: &PublishError) -> TargetError {
    TargetError {
        code: e.code.clone(),
        message: e.message.clone(),
        platform_error: e.platform_error.clone(),
    }
}

/// When the next attempt comes: the engine's backoff, or the platform's `Retry-After` where
/// that is later, but never further than `retry_after_max`.
pub fn retry_delay(config: &EngineConfig, attempt: i64, retry_after: Option<Duration>) -> Duration {
    let asked = retry_after.unwrap_or_default().min(config.retry_after_max);
    backoff(config, attempt).max(asked)
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

    #[test]
    fn a_retry_after_is_honoured_up_to_its_bound_and_not_cut_to_the_backoff() {
        let c = EngineConfig {
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            ..EngineConfig::default()
        };
        let day = Duration::from_secs(24 * 3600);
        assert!(c.retry_after_max > day, "X's daily reset fits");
        // X's daily cap: honoured, well past the backoff's maximum.
        let x_daily = day - Duration::from_secs(60);
        assert_eq!(retry_delay(&c, 1, Some(x_daily)), x_daily);
        // A connector cannot push a target arbitrarily far.
        let month = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(retry_delay(&c, 1, Some(month)), c.retry_after_max);
        assert_eq!(retry_delay(&c, 1, Some(Duration::MAX)), c.retry_after_max);
        // A short one does not shorten the backoff.
        let d = retry_delay(&c, 3, Some(Duration::from_millis(10)));
        assert!(
            d >= Duration::from_secs(4) && d <= Duration::from_secs(8),
            "{d:?}"
        );
        // Without one, the backoff.
        assert!(retry_delay(&c, 1, None) <= Duration::from_secs(2));
        // A smaller bound is a bound.
        let tight = EngineConfig {
            retry_after_max: Duration::from_secs(3600),
            ..c
        };
        assert_eq!(retry_delay(&tight, 1, Some(day)), Duration::from_secs(3600));
    }
}
