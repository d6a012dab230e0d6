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
//! The in-process backend is `MemoryLimiter`, below; the Redis backend (in the server) runs
//! the same comparison inside one Lua script and hands the state it read back to `decide`.

use crate::clock::Clock;
use crate::model::RateLimitTier;
use async_trait::async_trait;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

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

// ---- the in-process backend ------------------------------------------------------------------

const SHARDS: usize = 64;
/// A shard drops its idle (full) buckets at most this often.
const SWEEP_EVERY_US: i64 = 60_000_000;

#[derive(Default)]
struct Bucket {
    tat: i64,
    /// (endpoint index, TAT) of the endpoint limits this subject has used.
    endpoints: Vec<(usize, i64)>,
}

impl Bucket {
    fn endpoint_tat(&self, index: usize) -> i64 {
        self.endpoints
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(0, |(_, t)| *t)
    }

    fn set_endpoint_tat(&mut self, index: usize, tat: i64) {
        match self.endpoints.iter_mut().find(|(i, _)| *i == index) {
            Some(slot) => slot.1 = tat,
            None => self.endpoints.push((index, tat)),
        }
    }

    /// True when every limit of this subject is full again: forgetting it changes nothing.
    fn idle(&self, now: i64) -> bool {
        self.tat <= now && self.endpoints.iter().all(|(_, t)| *t <= now)
    }
}

#[derive(Default)]
struct Shard {
    /// Users' buckets, by the limiter's hash of the user id (see `MemoryLimiter::users`).
    users: HashTable<(Box<str>, Bucket)>,
    /// Addresses' buckets, behind SipHash: clients choose their addresses (a whole IPv6 /64
    /// each, if they like), so this map is the one a flood of crafted keys could aim at.
    ips: HashMap<IpAddr, Bucket>,
    next_sweep: i64,
}

/// Buckets in this process's memory, in shards each behind its own lock: a check is one hash,
/// one lock, one lookup. Idle buckets are dropped by a sweep that each shard runs at most once
/// a minute, so memory follows the number of recently active subjects.
pub struct MemoryLimiter {
    shards: Box<[Mutex<Shard>]>,
    /// Hashes user ids, once per check for both the shard and the slot in it: foldhash with
    /// this process's random seed. User ids are given by the server (or its identity
    /// provider), not by the client, so a fast hash is safe here; addresses are not.
    users: DefaultHashBuilder,
    clock: Arc<dyn Clock>,
}

impl MemoryLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            users: DefaultHashBuilder::default(),
            clock,
        }
    }

    /// The shard of a hash: bits that the tables inside use for neither the slot (the low
    /// bits) nor the tag (the top seven).
    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        self.shards[(hash >> 40) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The shard of an address: a cheap spread (FNV-1a) is enough, because a crafted address
    /// can at worst crowd one shard; the map inside keeps SipHash against floods.
    fn ip_hash(ip: IpAddr) -> u64 {
        let fnv = |bytes: &[u8]| {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        let h = match ip {
            IpAddr::V4(a) => fnv(&a.octets()),
            IpAddr::V6(a) => fnv(&a.octets()),
        };
        h ^ (h << 32)
    }

    /// The decision for `check`, made at `now` (µs). Public so that tests can drive it.
    pub fn check_at(&self, check: &Check<'_>, now: i64) -> Decision {
        match check.subject {
            Subject::User(id) => {
                let hash = self.users.hash_one(id);
                let mut shard = self.shard(hash);
                shard.sweep(now);
                // One lookup when the bucket exists (the common case).
                if let Some((_, bucket)) = shard.users.find_mut(hash, |(k, _)| **k == *id) {
                    return apply(bucket, check, now);
                }
                let entry =
                    shard
                        .users
                        .insert_unique(hash, (id.into(), Bucket::default()), |(k, _)| {
                            self.users.hash_one(&**k)
                        });
                apply(&mut entry.into_mut().1, check, now)
            }
            Subject::Ip(ip) => {
                let mut shard = self.shard(Self::ip_hash(ip));
                shard.sweep(now);
                apply(shard.ips.entry(ip).or_default(), check, now)
            }
        }
    }

    /// Forgets every bucket: every subject's budget is full again.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.users.clear();
            shard.ips.clear();
        }
    }

    /// Buckets held (for tests of the sweep).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.users.len() + s.ips.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shard {
    /// Drops the idle buckets, at most once a minute.
    fn sweep(&mut self, now: i64) {
        if now >= self.next_sweep {
            self.users.retain(|(_, b)| !b.idle(now));
            self.ips.retain(|_, b| !b.idle(now));
            self.next_sweep = now + SWEEP_EVERY_US;
        }
    }
}

/// `decide` on one subject's buckets, charging them when the request is admitted.
fn apply(bucket: &mut Bucket, check: &Check<'_>, now: i64) -> Decision {
    let endpoint = check
        .endpoint
        .map(|(i, e)| (bucket.endpoint_tat(i), e.quota()));
    let (decision, (tier_tat, endpoint_tat)) = decide(now, bucket.tat, check.quota, endpoint);
    bucket.tat = tier_tat;
    if let (Some((i, _)), Some((stored, _)), Some(t)) = (check.endpoint, endpoint, endpoint_tat)
        && t != stored
    {
        bucket.set_endpoint_tat(i, t);
    }
    decision
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn check(&self, check: &Check<'_>) -> Result<Decision, LimiterError> {
        Ok(self.check_at(check, now_us(self.clock.as_ref())))
    }

    fn check_now(&self, check: &Check<'_>) -> Option<Decision> {
        Some(self.check_at(check, now_us(self.clock.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::{TimeZone, Utc};

    const SEC: i64 = 1_000_000;

    fn t0() -> i64 {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .unwrap()
            .timestamp_micros()
    }

    fn user(id: &str) -> Subject<'_> {
        Subject::User(id)
    }

    /// Sends requests at `now` until one is refused; returns how many passed and the refusal.
    fn drain(l: &MemoryLimiter, c: &Check<'_>, now: i64) -> (u64, Decision) {
        let mut passed = 0;
        loop {
            let d = l.check_at(c, now);
            if !d.allowed {
                return (passed, d);
            }
            passed += 1;
            assert!(passed < 10_000_000, "never refused");
        }
    }

    #[test]
    fn each_tier_admits_rate_plus_burst_then_one_per_interval() {
        let tiers = TierQuotas::SPEC;
        // (tier, capacity, Retry-After in whole seconds = ceil(60 / rate))
        let cases = [
            (RateLimitTier::Default, 35, 3),
            (RateLimitTier::Authenticated, 90, 1),
            (RateLimitTier::Premium, 200, 1),
            (RateLimitTier::Admin, 700, 1),
        ];
        for (tier, capacity, retry_after) in cases {
            let l = MemoryLimiter::new(Arc::new(ManualClock::new(Utc::now())));
            let s = user("u1");
            let quota = tiers.get(tier);
            let c = Check {
                subject: s,
                quota,
                endpoint: None,
            };
            let now = t0();
            // Remaining drops by one per request, from capacity - 1 to 0.
            for i in 0..capacity {
                let d = l.check_at(&c, now);
                assert!(d.allowed, "{tier:?}: request {i}");
                assert_eq!(d.remaining, (capacity - 1 - i) as u64, "{tier:?}");
            }
            let refused = l.check_at(&c, now);
            assert!(!refused.allowed, "{tier:?}: request {capacity} passed");
            assert_eq!(refused.hit, Some(LimitHit::Tier));
            assert_eq!(refused.remaining, 0);
            assert_eq!(refused.retry_after_secs(), retry_after, "{tier:?}");
            let interval = 60 * SEC / i64::from(quota.rate);
            assert_eq!(refused.retry_after_us, interval, "{tier:?}");
            // Full again `capacity` intervals after the burst.
            assert_eq!(refused.reset_us, now + capacity * interval, "{tier:?}");
            // One microsecond too early: still refused, and nothing was charged meanwhile.
            assert!(!l.check_at(&c, now + interval - 1).allowed, "{tier:?}");
            // After the interval exactly one passes.
            let later = now + interval;
            let (passed, again) = drain(&l, &c, later);
            assert_eq!(passed, 1, "{tier:?}");
            assert_eq!(again.retry_after_us, interval);
            // After waiting Retry-After (rounded up) at least one passes again.
            let later = later + (retry_after as i64) * SEC;
            assert!(l.check_at(&c, later).allowed, "{tier:?}");
            // And from idle (a full window later) the whole capacity again.
            let idle = later + capacity * interval + 60 * SEC;
            assert_eq!(drain(&l, &c, idle).0, capacity as u64, "{tier:?}");
        }
    }

    #[test]
    fn a_clock_stepped_back_or_a_smaller_quota_empties_the_bucket_instead_of_blocking() {
        let l = MemoryLimiter::new(Arc::new(ManualClock::new(Utc::now())));
        let endpoint = EndpointLimit::new("POST", "/v1/posts", 30);
        let quota = TierQuotas::SPEC.authenticated; // 60/min + 30: one per second once spent
        let c = Check {
            subject: user("u1"),
            quota,
            endpoint: Some((0, &endpoint)),
        };
        let now = t0();
        let (passed, refused) = drain(&l, &c, now);
        assert_eq!(passed, 30, "the endpoint limit is the smaller");
        assert_eq!(refused.hit, Some(LimitHit::Endpoint));

        // The clock steps back an hour: the buckets read as empty at the new time, not as
        // spent for an hour more. One interval later a request passes, and the bucket
        // refills from the new time on (the bounded TAT was stored).
        let back = now - 3600 * SEC;
        let refused = l.check_at(&c, back);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_us, 2 * SEC, "one endpoint interval");
        assert_eq!(refused.retry_after_secs(), 2);
        assert!(
            refused.reset_us <= back + quota.tolerance_us(),
            "{refused:?}"
        );
        assert!(!l.check_at(&c, back + 2 * SEC - 1).allowed);
        assert!(l.check_at(&c, back + 2 * SEC).allowed);
        let idle = back + 2 * SEC + 60 * SEC;
        assert_eq!(drain(&l, &c, idle).0, 30, "full again a window later");

        // A tier bucket spent under a large quota (an override), read under a smaller one:
        // empty under the smaller, not blocked for the larger one's window.
        let big = Check {
            subject: user("u2"),
            quota: Quota::new(6000, 100_000), // 10 ms apart; its tolerance is about 17 min
            endpoint: None,
        };
        assert_eq!(drain(&l, &big, now).0, 106_000);
        let small = Check { quota, ..big };
        let refused = l.check_at(&small, now);
        assert!(!refused.allowed);
        assert_eq!(
            refused.retry_after_us, SEC,
            "one interval of the smaller quota"
        );
        assert!(l.check_at(&small, now + SEC).allowed);
        // In normal operation the bound changes nothing: the same microsecond after spending
        // the whole capacity, nothing more passes.
        let fresh = Check {
            subject: user("u3"),
            quota,
            endpoint: None,
        };
        assert_eq!(drain(&l, &fresh, now).0, 90);
        assert!(!l.check_at(&fresh, now).allowed);
    }

    #[test]
    fn each_endpoint_limit_admits_its_rate_then_one_per_interval() {
        let policy = Policy::spec();
        let expected = [
            ("POST", "/v1/posts", 30, 2),
            ("POST", "/v1/media", 30, 2),
            ("POST", "/v1/ai/transcribe", 10, 6),
            ("POST", "/v1/templates", 20, 3),
            ("POST", "/v1/media/render-og", 20, 3),
        ];
        assert_eq!(policy.endpoints.len(), expected.len());
        for (method, route, rate, retry_after) in expected {
            let index = policy.endpoint(method, route).unwrap();
            let limit = &policy.endpoints[index];
            assert_eq!(limit.name, format!("{method} {route}"));
            let l = MemoryLimiter::new(Arc::new(ManualClock::new(Utc::now())));
            let s = user("u1");
            // Premium: the tier (200 at once) is not what stops these.
            let c = Check {
                subject: s,
                quota: TierQuotas::SPEC.premium,
                endpoint: Some((index, limit)),
            };
            let now = t0();
            let (passed, refused) = drain(&l, &c, now);
            assert_eq!(passed, rate, "{route}");
            assert_eq!(refused.hit, Some(LimitHit::Endpoint), "{route}");
            assert_eq!(refused.retry_after_secs(), retry_after, "{route}");
            assert_eq!(
                refused.hit_reset_us,
                now + rate as i64 * (60 * SEC / rate as i64)
            );
            // The refused request charged nothing: the tier still has 200 - rate left.
            assert_eq!(refused.remaining, 200 - rate, "{route}");
            let interval = 60 * SEC / rate as i64;
            assert!(!l.check_at(&c, now + interval - 1).allowed, "{route}");
            assert_eq!(drain(&l, &c, now + interval).0, 1, "{route}");
            assert!(
                l.check_at(&c, now + interval + retry_after as i64 * SEC)
                    .allowed,
                "{route}"
            );
            // Another endpoint of the same user is not affected, nor the tier.
            let other = Check {
                endpoint: None,
                ..c
            };
            assert!(l.check_at(&other, now + interval).allowed, "{route}");
        }
        assert_eq!(policy.endpoint("GET", "/v1/posts"), None);
        assert_eq!(policy.endpoint("post", "/v1/posts"), Some(0));
        assert_eq!(policy.endpoint("POST", "/v1/posts/{id}"), None);
    }

    #[test]
    fn a_refusal_by_either_limit_charges_neither() {
        // An endpoint limit of 100 per 60 s, and two tier quotas with the same interval (1 s),
        // so that switching between them keeps the meaning of the stored tier state.
        let e = EndpointLimit::new("POST", "/v1/x", 100);
        let l = MemoryLimiter::new(Arc::new(ManualClock::new(Utc::now())));
        let s = user("u1");
        let small = Check {
            subject: s,
            quota: Quota::new(60, 0),
            endpoint: Some((0, &e)),
        };
        let now = t0();
        // The tier admits 60 (charging the endpoint 60), then refuses.
        assert_eq!(drain(&l, &small, now).0, 60);
        for _ in 0..5 {
            assert_eq!(l.check_at(&small, now).hit, Some(LimitHit::Tier));
        }
        // With a larger tier the endpoint has exactly 100 - 60 left: the refusals took nothing.
        let big = Check {
            quota: Quota::new(60, 1000),
            ..small
        };
        let (passed, refused) = drain(&l, &big, now);
        assert_eq!(passed, 40);
        assert_eq!(refused.hit, Some(LimitHit::Endpoint));
        // Endpoint refusals do not charge the tier either.
        let tier_only = Check {
            endpoint: None,
            ..big
        };
        let before = l.check_at(&tier_only, now);
        assert!(before.allowed);
        for _ in 0..5 {
            let d = l.check_at(&big, now);
            assert_eq!(d.hit, Some(LimitHit::Endpoint));
            assert_eq!(d.remaining, before.remaining, "uncharged tier remaining");
        }
        let after = l.check_at(&tier_only, now);
        assert_eq!(after.remaining, before.remaining - 1);
    }

    #[test]
    fn when_both_refuse_the_longer_wait_is_named() {
        // Tier: 1 per 60 s; endpoint: 10 per 60 s (6 s apart).
        let e = EndpointLimit::new("POST", "/x", 10);
        // Tier waits 60 s, endpoint 6 s: the tier is named, and the wait is the longer one.
        let (d, stored) = decide(
            100 * SEC,
            100 * SEC + 60 * SEC,
            Quota::new(1, 0),
            Some((100 * SEC + 60 * SEC, e.quota())),
        );
        assert_eq!(
            stored,
            (100 * SEC + 60 * SEC, Some(100 * SEC + 60 * SEC)),
            "nothing charged"
        );
        assert_eq!(d.hit, Some(LimitHit::Tier));
        assert_eq!(d.retry_after_us, 60 * SEC);
        // Tier waits 1 s, endpoint 6 s: the endpoint is named.
        let (d, _) = decide(
            100 * SEC,
            100 * SEC + 60 * SEC,
            Quota::new(60, 0),
            Some((100 * SEC + 60 * SEC, e.quota())),
        );
        assert_eq!(d.hit, Some(LimitHit::Endpoint));
        assert_eq!(d.retry_after_us, 6 * SEC);
    }

    #[test]
    fn subjects_have_separate_budgets_and_ips_group_by_64() {
        let l = MemoryLimiter::new(Arc::new(ManualClock::new(Utc::now())));
        let q = Quota::new(1, 1);
        let now = t0();
        let a = user("a");
        let b = user("b");
        let ip1 = Subject::ip("192.0.2.1".parse().unwrap());
        let mapped = Subject::ip("::ffff:192.0.2.1".parse().unwrap());
        let v6a = Subject::ip("2001:db8:1:2:aaaa::1".parse().unwrap());
        let v6b = Subject::ip("2001:db8:1:2:bbbb::2".parse().unwrap());
        let v6c = Subject::ip("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(ip1, mapped);
        assert_eq!(v6a, v6b);
        assert_ne!(v6a, v6c);
        assert_eq!(v6a.key(), "ip:2001:db8:1:2::/64");
        assert_eq!(ip1.key(), "ip:192.0.2.1");
        assert_eq!(a.key(), "u:a");
        for s in [a, b, ip1, v6a, v6c] {
            let c = Check {
                subject: s,
                quota: q,
                endpoint: None,
            };
            assert_eq!(drain(&l, &c, now).0, 2, "{s:?}");
        }
        let c = Check {
            subject: mapped,
            quota: q,
            endpoint: None,
        };
        assert!(!l.check_at(&c, now).allowed);
    }

    #[test]
    fn idle_buckets_are_swept() {
        let l = MemoryLimiter::new(Arc::new(ManualClock::new(Utc::now())));
        let q = Quota::new(60, 0);
        let now = t0();
        for i in 0..1000 {
            let id = format!("u{i}");
            let s = Subject::User(&id);
            let c = Check {
                subject: s,
                quota: q,
                endpoint: None,
            };
            assert!(l.check_at(&c, now).allowed);
        }
        assert_eq!(l.len(), 1000);
        // Two minutes later every bucket is full again; each shard sweeps on its next use.
        let later = now + 120 * SEC;
        for i in 0..SHARDS * 20 {
            let id = format!("fresh{i}");
            let s = Subject::User(&id);
            let c = Check {
                subject: s,
                quota: q,
                endpoint: None,
            };
            l.check_at(&c, later);
        }
        assert_eq!(l.len(), SHARDS * 20, "only the fresh buckets remain");
    }

    #[test]
    fn clear_fills_every_budget_again() {
        let l = MemoryLimiter::new(Arc::new(ManualClock::new(Utc::now())));
        let now = t0();
        let user = Check {
            subject: user("u1"),
            quota: Quota::new(1, 0),
            endpoint: None,
        };
        let ip = Check {
            subject: Subject::ip("192.0.2.7".parse().unwrap()),
            ..user
        };
        for c in [&user, &ip] {
            assert!(l.check_at(c, now).allowed);
            assert!(!l.check_at(c, now).allowed, "the budget of one is spent");
        }
        l.clear();
        assert!(l.is_empty());
        for c in [&user, &ip] {
            let d = l.check_at(c, now);
            assert!(d.allowed, "full again after clear");
            assert_eq!(d.remaining, 0);
        }
    }

    #[test]
    fn concurrent_checks_never_admit_more_than_the_budget() {
        let l = Arc::new(MemoryLimiter::new(Arc::new(ManualClock::new(Utc::now()))));
        let now = t0();
        let admitted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let l = l.clone();
                let admitted = admitted.clone();
                std::thread::spawn(move || {
                    let s = user("shared");
                    for _ in 0..25 {
                        let c = Check {
                            subject: s,
                            quota: TierQuotas::SPEC.default,
                            endpoint: None,
                        };
                        if l.check_at(&c, now).allowed {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(admitted.load(std::sync::atomic::Ordering::Relaxed), 35);
    }

    #[test]
    fn the_clock_drives_the_async_check() {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
        ));
        let l = MemoryLimiter::new(clock.clone());
        let s = user("u");
        let c = Check {
            subject: s,
            quota: Quota::new(1, 0),
            endpoint: None,
        };
        let rt = |l: &MemoryLimiter| block_on(l.check(&c)).unwrap();
        assert!(rt(&l).allowed);
        assert_eq!(l.check_now(&c).map(|d| d.allowed), Some(false));
        let refused = rt(&l);
        assert!(!refused.allowed);
        assert_eq!(refused.now_us, t0());
        clock.advance(chrono::Duration::seconds(60));
        assert!(rt(&l).allowed);
    }

    /// The memory backend's future completes on its first poll.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the memory limiter never waits"),
        }
    }

    #[test]
    fn overrides_are_validated() {
        assert_eq!(Quota::validate(5, 0), Ok(Quota::new(5, 0)));
        assert!(Quota::validate(0, 0).is_err());
        assert!(Quota::validate(-1, 0).is_err());
        assert!(Quota::validate(5, -1).is_err());
        assert!(Quota::validate(i64::from(MAX_RATE) + 1, 0).is_err());
        assert!(Quota::validate(1, i64::from(MAX_BURST) + 1).is_err());
        // The largest products stay exact in a double.
        let q = Quota::new(1, MAX_BURST);
        assert!(q.tolerance_us() < (1i64 << 53));
    }
}
