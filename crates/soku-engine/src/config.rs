//! How the engine of one process behaves.

use std::time::Duration;

/// The default `retry_after_max`: 24 hours and 5 minutes.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600 + 300);

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
    /// The longest a platform's `Retry-After` may push a target's next attempt (longer ones are
    /// cut to this). A little over a day, so that a daily cap's reset (X's) is honoured.
    pub retry_after_max: Duration,
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
            retry_after_max: RETRY_AFTER_MAX,
            poll_interval: Duration::from_secs(1),
        }
    }
}
