//! Rate limits (spec section 5): the tiers, the endpoint limits, and GCRA, the one algorithm
//! every backend applies.
//!
//! GCRA (the generic cell rate algorithm) keeps one number per bucket: the *theoretical arrival
//! time* (TAT), the instant at which the bucket would be full again if nothing more arrived.
//! With an emission interval `I = 60 s / rate` and a capacity `C` (the requests admitted at
//! once from idle: `rate + burst` for a tier, `rate` for an endpoint limit), a request at `now`
//! is admitted when `max(TAT, now) + I - C·I <= now`, and then moves TAT to
//! `max(TAT, now) + I`. That is a continuous sliding window: from idle exactly `C` requests
//! pass, then one every `I`.
//!
//! Time is whole microseconds since the Unix epoch, in integers, so the arithmetic is exact.
//! A stored TAT is read no further ahead than `C·I` (`Step::bounded`): beyond that it
//! comes from a clock that stepped back or from a larger quota, and the bucket reads as empty
//! instead of refusing until the clock catches up.
//! A tier check and an endpoint check for one request are decided together: both pass and both
//! are charged, or neither is charged (`decide`).
//!
//! The in-process backend is `MemoryLimiter` (`memory.rs`); the Redis backend (in the server) runs
//! the same comparison inside one Lua script and hands the state it read back to `decide`.

mod memory;
#[cfg(test)]
mod tests;

pub use memory::MemoryLimiter;

use crate::clock::Clock;
use crate::model::RateLimitTier;
use async_trait::async_trait;
use std::net::IpAddr;

/// The window of every rate in the contract: 60 seconds, in microseconds.
pub const PERIOD_US: i64 = 60_000_000;
/// Largest accepted rate (per 60 s) and burst, so that every product below fits easily in an
/// `i64` and exactly in a double (the Redis script's numbers).
pub const MAX_RATE: u32 = 1_000_000;
pub const MAX_BURST: u32 = 10_000_000;

/// A rate per 60 seconds and the extra requests allowed at once on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub rate: u32,
    pub burst: u32,
}

impl Quota {
    pub const fn new(rate: u32, burst: u32) -> Self {
        Self { rate, burst }
    }

    /// Time between two admissions once the burst is spent.
    pub fn interval_us(self) -> i64 {
        PERIOD_US / i64::from(self.rate.clamp(1, MAX_RATE))
    }

    /// Requests admitted at once from idle.
    pub fn capacity(self) -> i64 {
        i64::from(self.rate.clamp(1, MAX_RATE)) + i64::from(self.burst.min(MAX_BURST))
    }

    /// How far ahead of `now` the TAT may run: `capacity · interval`.
    pub fn tolerance_us(self) -> i64 {
        self.interval_us() * self.capacity()
    }

    /// Checks an operator's override.
    pub fn validate(rate: i64, burst: i64) -> Result<Quota, String> {
        if !(1..=i64::from(MAX_RATE)).contains(&rate) {
            return Err(format!("the rate must be between 1 and {MAX_RATE}"));
        }
        if !(0..=i64::from(MAX_BURST)).contains(&burst) {
            return Err(format!("the burst must be between 0 and {MAX_BURST}"));
        }
        Ok(Quota::new(rate as u32, burst as u32))
    }
}

/// The quota of each tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierQuotas {
    pub default: Quota,
    pub authenticated: Quota,
    pub premium: Quota,
    pub admin: Quota,
}

impl TierQuotas {
    /// Spec section 5.
    pub const SPEC: TierQuotas = TierQuotas {
        default: Quota::new(25, 10),
        authenticated: Quota::new(60, 30),
        premium: Quota::new(100, 100),
        admin: Quota::new(200, 500),
    };

    pub fn get(&self, tier: RateLimitTier) -> Quota {
        match tier {
            RateLimitTier::Default => self.default,
            RateLimitTier::Authenticated => self.authenticated,
            RateLimitTier::Premium => self.premium,
            RateLimitTier::Admin => self.admin,
        }
    }
}

/// A limit on one endpoint, per account, on top of the tier: `rate` per 60 s, `rate` at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointLimit {
    pub method: String,
    /// The route template, as the router names it (`/v1/posts`).
    pub route: String,
    pub rate: u32,
    /// `POST /v1/posts`: how clients and the Redis keys name it.
    pub name: String,
}

impl EndpointLimit {
    pub fn new(method: &str, route: &str, rate: u32) -> Self {
        Self {
            method: method.to_owned(),
            route: route.to_owned(),
            rate,
            name: format!("{method} {route}"),
        }
    }

    pub fn quota(&self) -> Quota {
        Quota::new(self.rate, 0)
    }
}

/// Which limits apply: the tier quotas and the endpoint table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub tiers: TierQuotas,
    pub endpoints: Vec<EndpointLimit>,
}

impl Policy {
    /// Spec section 5: the tiers and the five endpoint limits.
    pub fn spec() -> Policy {
        Policy {
            tiers: TierQuotas::SPEC,
            endpoints: vec![
                EndpointLimit::new("POST", "/v1/posts", 30),
                EndpointLimit::new("POST", "/v1/media", 30),
                EndpointLimit::new("POST", "/v1/ai/transcribe", 10),
                EndpointLimit::new("POST", "/v1/templates", 20),
                EndpointLimit::new("POST", "/v1/media/render-og", 20),
            ],
        }
    }

    /// The endpoint limit of a request, by method and route template.
    pub fn endpoint(&self, method: &str, route: &str) -> Option<usize> {
        self.endpoints
            .iter()
            .position(|e| e.method.eq_ignore_ascii_case(method) && e.route == route)
    }
}

/// Who a request is counted against (borrowed: a check copies nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject<'a> {
    /// A user: every key of theirs, and their ID tokens, share this budget.
    User(&'a str),
    /// A client address: requests with no key or an invalid one. IPv6 addresses are counted
    /// per /64 (what one subscriber is usually given), IPv4-mapped IPv6 as IPv4.
    Ip(IpAddr),
}

impl Subject<'_> {
    pub fn ip(addr: IpAddr) -> Subject<'static> {
        Subject::Ip(match addr.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
            v4 => v4,
        })
    }

    /// A stable text form for shared backends' keys: `u:<id>` or `ip:<address>`.
    pub fn key(&self) -> String {
        match self {
            Subject::User(id) => format!("u:{id}"),
            Subject::Ip(IpAddr::V4(a)) => format!("ip:{a}"),
            Subject::Ip(IpAddr::V6(a)) => format!("ip:{a}/64"),
        }
    }
}

/// One request to check: against whom, with which tier quota and which endpoint limit.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub subject: Subject<'a>,
    pub quota: Quota,
    /// The endpoint limit's index in the policy's table, and the limit.
    pub endpoint: Option<(usize, &'a EndpointLimit)>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    Tier,
    Endpoint,
}

/// The answer to a check. `remaining` and `reset_us` describe the tier bucket (what the
/// `X-RateLimit-*` headers report) after this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The limit that refused the request (when refused by both, the one to wait longer for).
    pub hit: Option<LimitHit>,
    /// Requests the tier bucket admits now, after this one.
    pub remaining: u64,
    /// When the tier bucket is full again (µs since the epoch).
    pub reset_us: i64,
    /// When refused: how long until this request would be admitted by every limit (µs).
    pub retry_after_us: i64,
    /// When refused: when the limit that was hit is full again (µs since the epoch).
    pub hit_reset_us: i64,
    /// The time the decision was made at (µs since the epoch), by the backend's clock.
    pub now_us: i64,
}

impl Decision {
    /// `Retry-After` in whole seconds, rounded up.
    pub fn retry_after_secs(&self) -> u64 {
        if self.retry_after_us <= 0 {
            0
        } else {
            ((self.retry_after_us + 999_999) / 1_000_000) as u64
        }
    }
}

/// One GCRA step for one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The stored TAT, at most the tolerance ahead of now: as far as admissions under this
    /// quota can push it. A TAT further ahead comes from a clock that stepped back since it
    /// was stored, or from a larger quota than this one (an override lowered, a tier lost).
    /// Cut to the tolerance, the bucket reads as empty and refills from now, instead of
    /// refusing every request until the clock catches up with the old TAT. Backends store
    /// this value when they charge nothing, so that the bucket does refill.
    pub bounded: i64,
    /// `max(bounded, now)`: the state before this request, clamped to now.
    pub tat: i64,
    /// The TAT if this request is admitted.
    pub new_tat: i64,
    /// The earliest time at which this request would be admitted.
    pub allow_at: i64,
    interval: i64,
    tolerance: i64,
}

impl Step {
    pub fn new(stored_tat: i64, now: i64, quota: Quota) -> Step {
        // One division: `tolerance_us` would divide again.
        let interval = quota.interval_us();
        let tolerance = interval * quota.capacity();
        let bounded = stored_tat.min(now + tolerance);
        let tat = bounded.max(now);
        let new_tat = tat + interval;
        Step {
            bounded,
            tat,
            new_tat,
            allow_at: new_tat - tolerance,
            interval,
            tolerance,
        }
    }

    pub fn admits(&self, now: i64) -> bool {
        now >= self.allow_at
    }

    /// Requests admitted at `now` after this one, if this one is charged.
    pub fn remaining_if_charged(&self, now: i64) -> u64 {
        ((now - self.allow_at) / self.interval).max(0) as u64
    }

    /// Requests admitted at `now` without charging this one.
    pub fn remaining_uncharged(&self, now: i64) -> u64 {
        ((now - (self.tat - self.tolerance)) / self.interval).max(0) as u64
    }
}

/// The TATs to store after a decision: the tier's, and the endpoint's if any.
pub type Stored = (i64, Option<i64>);

/// Decides a request from the stored state: the tier bucket's TAT and, when an endpoint limit
/// applies, its TAT (0 for a bucket never used). Both limits must admit the request; then both
/// are charged, otherwise neither. The returned `Stored` is what to keep: the charged TATs, or
/// when refused the TATs as read, bounded (`Step::bounded`).
pub fn decide(
    now: i64,
    tier_tat: i64,
    tier: Quota,
    endpoint: Option<(i64, Quota)>,
) -> (Decision, Stored) {
    let t = Step::new(tier_tat, now, tier);
    let e = endpoint.map(|(tat, q)| Step::new(tat, now, q));
    let tier_ok = t.admits(now);
    let endpoint_ok = e.is_none_or(|e| e.admits(now));
    if tier_ok && endpoint_ok {
        let decision = Decision {
            allowed: true,
            hit: None,
            remaining: t.remaining_if_charged(now),
            reset_us: t.new_tat,
            retry_after_us: 0,
            hit_reset_us: 0,
            now_us: now,
        };
        return (decision, (t.new_tat, e.map(|e| e.new_tat)));
    }
    // Refused: nothing is charged. The request passes once both limits admit it.
    let tier_wait = (t.allow_at - now).max(0);
    let endpoint_wait = e.map_or(0, |e| (e.allow_at - now).max(0));
    let (hit, hit_reset) = match e {
        Some(e) if !endpoint_ok && (tier_ok || endpoint_wait >= tier_wait) => {
            (LimitHit::Endpoint, e.tat)
        }
        _ => (LimitHit::Tier, t.tat),
    };
    let decision = Decision {
        allowed: false,
        hit: Some(hit),
        remaining: t.remaining_uncharged(now),
        reset_us: t.tat,
        retry_after_us: tier_wait.max(endpoint_wait),
        hit_reset_us: hit_reset,
        now_us: now,
    };
    (decision, (t.bounded, e.map(|e| e.bounded)))
}

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    /// The shared backend did not answer (in time).
    #[error("rate limit backend unavailable: {0}")]
    Unavailable(String),
}

/// A place where buckets live. Every implementation applies `decide` atomically per request.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// `memory` or `redis`.
    fn backend(&self) -> &'static str;
    async fn check(&self, check: &Check<'_>) -> Result<Decision, LimiterError>;
    /// The decision at once, for backends that never wait (memory); `None` means: call
    /// `check`. Saves the boxed future on the hot path.
    fn check_now(&self, _check: &Check<'_>) -> Option<Decision> {
        None
    }
}

/// Whole microseconds since the epoch, from a clock.
pub fn now_us(clock: &dyn Clock) -> i64 {
    clock.now_micros()
}
