//! Rate limits (spec section 5): a step of the request middleware (`middleware.rs`), taken
//! after the request id is assigned and before the handler runs. The limiter does no
//! authentication: the middleware asks `auth::identify` who is asking, and the limiter counts
//! that `Caller`, or the client address of a request without one.
//!
//! For every request under `/v1`, and the dashboard's composer (counted as the
//! `POST /v1/posts` it stands for, so that it is no way around that endpoint's limit), the step
//! 1. counts the request against its caller's user (all of a user's keys, tokens and
//!    sessions share one budget) or, with no valid credential, against the client address;
//! 2. applies the tier quota (or the user's override) and, for a user, the endpoint limit of
//!    the route, if any (the spec's endpoint limits are per account: a request with no valid
//!    credential has only its address's Default tier), in one atomic check of the limiter
//!    (memory or Redis);
//! 3. answers 429 when a limit refuses; the middleware renders it as the envelope like any
//!    error, and puts `X-RateLimit-*` on every response, errors and panics included.
//!
//! When the backend (Redis) cannot be asked, `SOKU_RATE_LIMIT_ON_ERROR` decides: `allow` serves
//! the request, unlimited, with the headers of a stand-in count in this node's memory (so they
//! are all there, and a client that paces itself by them keeps pacing); `deny` answers 503 with
//! `Retry-After: 1`, `X-RateLimit-Remaining: 0` and that second as the reset.
//!
//! Paths outside `/v1` (`/healthz`, `/readyz`, `/metrics`, `/.well-known/...`) and the
//! dashboard's other calls are not limited and carry no headers.

mod admission;
mod headers;
pub mod redis;

/// The client address moved to `auth`; this path stays for the binary's settings.
pub use admission::Admission;
pub use headers::{LIMIT, REMAINING, RESET, TIER};

use crate::state::AppState;
use axum::http::{HeaderValue, Method};
use soku_core::ratelimit::{LimiterError, MemoryLimiter, Policy, RateLimiter};
use soku_core::{Clock, SystemClock};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Backend failures are logged at most this often.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// `Retry-After` (seconds) of the 503s of `deny` while the backend cannot be asked.
const OUTAGE_RETRY_SECS: u64 = 1;

/// What to do with a request when the shared backend (Redis) cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Let it through (the default): an outage of Redis does not take the API down.
    Allow,
    /// Refuse it with 503 `service_unavailable`.
    Deny,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Allow => "allow",
            OnError::Deny => "deny",
        }
    }
}

/// How the server limits requests.
pub struct RateLimitOptions {
    /// `SOKU_RATE_LIMITS=off` makes this false: no limits, no headers.
    pub enabled: bool,
    /// Where the buckets live: `MemoryLimiter` (one process) or `RedisLimiter` (shared).
    pub limiter: Arc<dyn RateLimiter>,
    pub on_error: OnError,
    pub policy: Policy,
}

impl Default for RateLimitOptions {
    /// On, in memory, spec quotas, failures allowed.
    fn default() -> Self {
        Self::memory(Arc::new(SystemClock))
    }
}

impl RateLimitOptions {
    /// The spec's limits in this process's memory, with `clock` driving the buckets.
    pub fn memory(clock: Arc<dyn Clock>) -> Self {
        Self {
            enabled: true,
            limiter: Arc::new(MemoryLimiter::new(clock)),
            on_error: OnError::Allow,
            policy: Policy::spec(),
        }
    }

    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// The running limiter, in the app state.
pub struct RateLimits {
    limiter: Arc<dyn RateLimiter>,
    policy: Policy,
    on_error: OnError,
    /// While the backend cannot be asked and failures are allowed: this node's own count of
    /// the requests it lets through, for their `X-RateLimit-Remaining` and `-Reset` (it never
    /// refuses anything). Emptied when the backend answers again.
    stand_in: MemoryLimiter,
    /// `X-RateLimit-Limit` of each tier's rate, made once.
    tier_limits: [(u32, HeaderValue); 4],
    failing: AtomicBool,
    /// Milliseconds after `started` of the last failure log line; 0 for never.
    last_failure_log: AtomicU64,
    started: Instant,
}

impl RateLimits {
    pub fn new(options: RateLimitOptions) -> Option<RateLimits> {
        let tiers = options.policy.tiers;
        let limit = |rate: u32| {
            (
                rate,
                HeaderValue::from_static(headers::interned_number(rate)),
            )
        };
        options.enabled.then(|| RateLimits {
            tier_limits: [
                limit(tiers.default.rate),
                limit(tiers.authenticated.rate),
                limit(tiers.premium.rate),
                limit(tiers.admin.rate),
            ],
            limiter: options.limiter,
            policy: options.policy,
            on_error: options.on_error,
            // Driven by the app's clock through `check_at`; its own clock is not read.
            stand_in: MemoryLimiter::new(Arc::new(SystemClock)),
            failing: AtomicBool::new(false),
            last_failure_log: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    pub fn backend(&self) -> &'static str {
        self.limiter.backend()
    }

    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `X-RateLimit-Limit` for a rate: a tier's is ready made; an operator's override is
    /// written out.
    fn limit_value(&self, rate: u32) -> HeaderValue {
        match self.tier_limits.iter().find(|(r, _)| *r == rate) {
            Some((_, value)) => value.clone(),
            None => HeaderValue::from(rate),
        }
    }

    fn note_failure(&self, state: &AppState, error: &LimiterError) {
        state.metrics.record_rate_limit_backend_error();
        self.failing.store(true, Ordering::Relaxed);
        let now = (self.started.elapsed().as_millis() as u64).max(1);
        let last = self.last_failure_log.load(Ordering::Relaxed);
        // `last` may be newer than `now`: another request can log between the two readings.
        let due = last == 0 || now.saturating_sub(last) >= FAILURE_LOG_INTERVAL.as_millis() as u64;
        if due
            && self
                .last_failure_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                error = %error,
                backend = self.limiter.backend(),
                on_error = self.on_error.as_str(),
                "rate limiting unavailable: requests are {} meanwhile (logged at most once a minute; \
                 see soku_rate_limit_backend_errors_total)",
                match self.on_error {
                    OnError::Allow => "let through unlimited",
                    OnError::Deny => "refused with 503",
                }
            );
        }
    }

    fn note_success(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            self.stand_in.clear();
            tracing::warn!(
                backend = self.limiter.backend(),
                "rate limiting is working again"
            );
        }
    }
}

/// The route a request is counted as, if it is limited: a request under `/v1` as its route
/// template (`None` inside when no route matched: counted, with no endpoint limit), and the
/// dashboard's composer as `POST /v1/posts`. GitHub's secret scanning reports are counted like
/// any request without a credential, by client address: exempt, a forged report would cost a
/// 1 MiB read and a signature check without limit; GitHub sends one report per batch of
/// matches and meets a 429 with `Retry-After` like any client.
pub fn counted_as<'a>(
    method: &Method,
    path: &str,
    route: Option<&'a str>,
) -> Option<Option<&'a str>> {
    if method == Method::POST && matches!(route, Some("/v1/media/uploads" | "/dashboard/api/media"))
    {
        // Spec 5's `POST /v1/media` limit counts every way of adding media.
        Some(Some("/v1/media"))
    } else if path == "/v1" || path.starts_with("/v1/") {
        Some(route)
    } else if method == Method::POST && route == Some("/dashboard/api/posts") {
        Some(Some("/v1/posts"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_values() {
        let rl = RateLimits::new(RateLimitOptions::default()).expect("on");
        for (rate, text) in [(25, "25"), (200, "200"), (1234, "1234"), (99, "99")] {
            assert_eq!(rl.limit_value(rate), text);
        }
    }

    #[test]
    fn counted_routes() {
        let get = Method::GET;
        assert_eq!(
            counted_as(&get, "/v1/me", Some("/v1/me")),
            Some(Some("/v1/me"))
        );
        assert_eq!(counted_as(&get, "/v1/nothing", None), Some(None));
        assert_eq!(counted_as(&get, "/v1", None), Some(None));
        assert_eq!(counted_as(&get, "/v1x", None), None);
        assert_eq!(
            counted_as(
                &Method::POST,
                "/v1/media/uploads",
                Some("/v1/media/uploads")
            ),
            Some(Some("/v1/media"))
        );
        assert_eq!(
            counted_as(&get, "/media/med_1/image.png", Some("/media/{id}/{file}")),
            None
        );
        assert_eq!(counted_as(&get, "/healthz", Some("/healthz")), None);
        let scanning = Some("/v1/secret-scanning/github");
        assert_eq!(
            counted_as(&Method::POST, "/v1/secret-scanning/github", scanning),
            Some(scanning)
        );
        let composer = Some("/dashboard/api/posts");
        assert_eq!(
            counted_as(&Method::POST, "/dashboard/api/posts", composer),
            Some(Some("/v1/posts"))
        );
        assert_eq!(counted_as(&get, "/dashboard/api/posts", composer), None);
        let uploads = Some("/dashboard/api/media");
        assert_eq!(
            counted_as(&Method::POST, "/dashboard/api/media", uploads),
            Some(Some("/v1/media"))
        );
        assert_eq!(counted_as(&get, "/dashboard/api/media", uploads), None);
    }
}
