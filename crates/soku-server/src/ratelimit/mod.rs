//! Rate limits (spec section 5): a step of the request middleware (`middleware.rs`), taken
//! after the request id is assigned and before the handler runs.
//!
//! (It is a step of that middleware rather than a layer of its own: a second `from_fn` layer
//! clones the inner service and boxes a future on every request, which cost more than the
//! limiting itself; see docs/RATE-LIMITS-PERFORMANCE.md.)
//!
//! For every request under `/v1` the step
//! 1. works out who is asking, authenticating once: the API key (for API-key routes) or the ID
//!    token (for the key-management routes) is checked here, and the outcome is left in the
//!    request's `RequestContext` (`Checked`), where `ApiKeyAuth` and `IdTokenUser` pick it up
//!    instead of checking again;
//! 2. counts the request against that user (all of a user's keys and tokens share one budget)
//!    or, with no valid credential, against the client address;
//! 3. applies the tier quota (or the user's override) and, for a user, the endpoint limit of
//!    the route, if any (the spec's endpoint limits are per account: a request with no valid
//!    credential has only its address's Default tier), in one atomic check of the limiter
//!    (memory or Redis);
//! 4. answers 429 when a limit refuses; the middleware renders it as the envelope like any
//!    error, and puts `X-RateLimit-*` on every response, errors and panics included.
//!
//! Steps 1 to 4 run without building a future when nothing has to wait (`admit_now`): on the
//! memory backend, a request on an API-key route with a cached key or with no usable one
//! (missing, in the wrong header, malformed). That is nearly every request of a busy key.
//! An ID-token route, a key not in the cache (a key's first request on this node, one every
//! `KEY_CACHE_TTL` after that, and every unknown key) and the Redis backend continue in
//! `admit_later`.
//!
//! When the backend (Redis) cannot be asked, `SOKU_RATE_LIMIT_ON_ERROR` decides: `allow` serves
//! the request, unlimited, with the headers of a stand-in count in this node's memory (so they
//! are all there, and a client that paces itself by them keeps pacing); `deny` answers 503 with
//! `Retry-After: 1`, `X-RateLimit-Remaining: 0` and that second as the reset.
//!
//! Paths outside `/v1` (`/healthz`, `/readyz`, `/metrics`, `/.well-known/...`) are not limited
//! and carry no headers.

pub mod client_ip;
pub mod redis;

use crate::auth::keys::{KEY_CACHE_TTL, KeyCheck, KeyFailure, KeyLookup};
use crate::auth::tokens::TokenFailure;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use soku_core::ErrorCode;
use soku_core::idtoken::VerifiedIdentity;
use soku_core::model::{KeyGrant, RateLimitTier, RateProfile, Role, Subscription};
use soku_core::ratelimit::{
    Check, Decision, LimitHit, LimiterError, MemoryLimiter, Policy, Quota, RateLimiter, Subject,
};
use soku_core::{Clock, Store, SystemClock};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

pub const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
pub const TIER: HeaderName = HeaderName::from_static("x-ratelimit-tier");

/// Backend failures are logged at most this often.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// `Retry-After` (seconds) of the 503s of `deny` while the backend cannot be asked.
const OUTAGE_RETRY_SECS: u64 = 1;
/// Above this many cached profiles of token users, the cache is emptied.
const PROFILE_CACHE_MAX: usize = 100_000;

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
    /// On, in memory, spec quotas, failures allowed, no trusted proxies.
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
    profiles: RwLock<HashMap<String, (Instant, Option<RateProfile>)>>,
    /// While the backend cannot be asked and failures are allowed: this node's own count of
    /// the requests it lets through, for their `X-RateLimit-Remaining` and `-Reset` (it never
    /// refuses anything). Emptied when the backend answers again.
    stand_in: MemoryLimiter,
    /// `X-RateLimit-Limit` of each tier's rate, made once: a static value costs nothing to
    /// clone, where formatting one allocates (it is on every response).
    tier_limits: [(u32, HeaderValue); 4],
    failing: AtomicBool,
    /// Milliseconds after `started` of the last failure log line; 0 for never.
    last_failure_log: AtomicU64,
    started: Instant,
}

impl RateLimits {
    pub fn new(options: RateLimitOptions) -> Option<RateLimits> {
        let tiers = options.policy.tiers;
        let limit = |rate: u32| (rate, HeaderValue::from_static(interned_number(rate)));
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
            profiles: RwLock::new(HashMap::new()),
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

    /// Role, subscription and override of a user known by ID token; cached like key lookups.
    async fn profile(&self, store: &dyn Store, uid: &str) -> Option<RateProfile> {
        if let Some((fetched, profile)) = self
            .profiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            && fetched.elapsed() < KEY_CACHE_TTL
        {
            return profile.clone();
        }
        match store.rate_profile(uid).await {
            Ok(profile) => {
                let mut cache = self.profiles.write().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= PROFILE_CACHE_MAX {
                    cache.clear();
                }
                cache.insert(uid.to_owned(), (Instant::now(), profile.clone()));
                profile
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read a user's rate-limit profile");
                None
            }
        }
    }

    /// `X-RateLimit-Limit` for a rate: a tier's rate is ready made; an operator's override is
    /// written once per thread and then shared (a user with an override sends request after
    /// request with the same rate).
    fn limit_value(&self, rate: u32) -> HeaderValue {
        if let Some((_, value)) = self.tier_limits.iter().find(|(r, _)| *r == rate) {
            return value.clone();
        }
        thread_local! {
            static LAST_OVERRIDE: RefCell<Option<(u32, HeaderValue)>> = const { RefCell::new(None) };
        }
        LAST_OVERRIDE.with_borrow_mut(|last| match last {
            Some((r, value)) if *r == rate => value.clone(),
            _ => last.insert((rate, number_value(u64::from(rate)))).1.clone(),
        })
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

/// The credentials the rate-limit step checked, for the extractors to take instead of checking
/// again (they travel in the middleware's `RequestContext`).
#[derive(Clone, Default)]
pub struct Checked {
    /// The API key, subscription gate included; `ApiKeyAuth` takes it.
    pub key: Option<Result<Arc<KeyGrant>, KeyFailure>>,
    /// The ID token; `IdTokenUser` takes it.
    pub token: Option<Result<VerifiedIdentity, TokenFailure>>,
}

/// Routes authenticated by ID token (spec section 3): their requests are counted against the
/// token's user.
fn is_id_token_route(route: &str) -> bool {
    route == "/v1/api-keys" || route.starts_with("/v1/api-keys/") || route == "/v1/metrics/refresh"
}

/// `Authorization: Bearer <token>`, if that is what the header holds.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        _ => None,
    }
}

/// Who is asking and with which quota.
struct Caller {
    who: Who,
    tier: RateLimitTier,
    quota: Quota,
}

/// What the rate-limit step reads of a request: references to its parts that may be held
/// across an await (the body may not: it is not `Sync`).
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub extensions: &'a Extensions,
}

impl<'a> Incoming<'a> {
    pub fn of(req: &'a Request) -> Self {
        Incoming {
            method: req.method(),
            path: req.uri().path(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }
}

/// What the subject is borrowed from.
enum Who {
    /// A valid key, and whether its owner passes the subscription gate. The grant is handed to
    /// `ApiKeyAuth` once the request is counted (moved, not cloned: its count is shared by
    /// every request of the key, on every core).
    Key {
        grant: Arc<KeyGrant>,
        gated: bool,
    },
    Token(String),
    Address(Subject<'static>),
}

impl Caller {
    fn subject(&self) -> Subject<'_> {
        match &self.who {
            Who::Key { grant, .. } => Subject::User(&grant.user.id),
            Who::Token(uid) => Subject::User(uid),
            Who::Address(subject) => *subject,
        }
    }

    /// Leaves a checked key for `ApiKeyAuth`.
    fn hand_over(self, checked: &mut Checked) {
        if let Who::Key { grant, gated } = self.who {
            checked.key = Some(if gated {
                Ok(grant)
            } else {
                Err(KeyFailure::Subscription)
            });
        }
    }
}

/// Who is asking, when that is known without waiting: on an API-key route, a missing or
/// malformed key, or a key in the cache. `Err` holds what is left to do: `None` on an
/// ID-token route (the token, if any, is verified by `identify_later`), or the key to look up
/// in the store.
fn identify_now(
    state: &AppState,
    rl: &RateLimits,
    req: &Incoming<'_>,
    route: &str,
    checked: &mut Checked,
) -> Result<Caller, Option<KeyLookup>> {
    if is_id_token_route(route) {
        return Err(None);
    }
    // Without a `soku-api-key` this fails at once (`Missing`, or `WrongHeader` for a key in
    // another header), and `ApiKeyAuth` gives the same answer from what is left here.
    match state.keys.authenticate_cached(req.headers) {
        KeyCheck::Done(Ok(grant)) => Ok(key_caller(state, rl, grant)),
        KeyCheck::Done(Err(failure)) => {
            checked.key = Some(Err(failure));
            Ok(address_caller(state, rl, req))
        }
        KeyCheck::Lookup(lookup) => Err(Some(lookup)),
    }
}

/// Who is asking, from what `identify_now` left to do.
async fn identify_later(
    state: &AppState,
    rl: &RateLimits,
    req: &Incoming<'_>,
    checked: &mut Checked,
    lookup: Option<KeyLookup>,
) -> Caller {
    match lookup {
        None => {
            if let Some(caller) = identify_token(state, rl, req, checked).await {
                return caller;
            }
        }
        Some(lookup) => match state.keys.look_up(lookup).await {
            Ok(grant) => return key_caller(state, rl, grant),
            Err(failure) => checked.key = Some(Err(failure)),
        },
    }
    address_caller(state, rl, req)
}

/// The owner of a valid key, with the tier and quota of their role, subscription and override.
fn key_caller(state: &AppState, rl: &RateLimits, grant: Arc<KeyGrant>) -> Caller {
    // One reading of the clock for the tier and the subscription gate.
    let now = state.clock.now();
    let sub = grant.subscription.as_ref();
    let tier = RateLimitTier::for_user(grant.user.role, sub, now);
    let gated = Subscription::grants_access(sub, now);
    let quota = grant.rate_limit.unwrap_or(rl.policy.tiers.get(tier));
    Caller {
        who: Who::Key { grant, gated },
        tier,
        quota,
    }
}

/// A request with no valid credential: its client address, at the Default tier.
fn address_caller(state: &AppState, rl: &RateLimits, req: &Incoming<'_>) -> Caller {
    let peer = req
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let ip = state.client_ip(peer, req.headers);
    Caller {
        who: Who::Address(Subject::ip(ip)),
        tier: RateLimitTier::Default,
        quota: rl.policy.tiers.default,
    }
}

/// The user of a valid `Authorization: Bearer` ID token, if there is one; the verification's
/// outcome is left for `IdTokenUser`.
async fn identify_token(
    state: &AppState,
    rl: &RateLimits,
    req: &Incoming<'_>,
    checked: &mut Checked,
) -> Option<Caller> {
    let token = bearer_token(req.headers)?;
    let verified = state.tokens.verify(token).await;
    let caller = match &verified {
        Ok(identity) => Some(user_caller(state, rl, &identity.uid).await),
        Err(_) => None,
    };
    checked.token = Some(verified);
    caller
}

/// A user known by id (an ID token's, or a dashboard session's), with the tier and quota of
/// their role, subscription and override.
async fn user_caller(state: &AppState, rl: &RateLimits, uid: &str) -> Caller {
    let profile = rl.profile(state.store.as_ref(), uid).await;
    let (role, sub, custom) = match &profile {
        Some(p) => (p.role, p.subscription.as_ref(), p.rate_limit),
        None => (Role::User, None, None),
    };
    let tier = RateLimitTier::for_user(role, sub, state.clock.now());
    Caller {
        who: Who::Token(uid.to_owned()),
        tier,
        quota: custom.unwrap_or(rl.policy.tiers.get(tier)),
    }
}

/// Whether limits apply to a path: everything under `/v1`, nothing else.
pub fn applies(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// The rate-limit step's outcome for one request: the caller's tier and limit, the decision
/// (while the backend cannot be asked: the stand-in's count, or none left with `deny`), and
/// the answer to give instead of running the handler.
pub struct Admission {
    tier: RateLimitTier,
    /// `X-RateLimit-Limit`, ready made.
    limit: HeaderValue,
    decision: Decision,
    /// Boxed: refusals are rare, and the admission lives in every request's middleware future.
    refusal: Option<Box<ApiError>>,
}

impl Admission {
    /// 429 (a limit refused) or 503 (`deny` while the backend cannot be asked): the request
    /// must not reach its handler.
    pub fn take_refusal(&mut self) -> Option<Response> {
        self.refusal
            .take()
            .map(|refusal| (*refusal).into_response())
    }

    /// `X-RateLimit-*`.
    pub fn put_headers(self, headers: &mut HeaderMap) {
        // These four, X-Request-ID, and the content-length that axum adds after the
        // middleware: seven entries with content-type, one more than an empty map's first
        // table holds. `Json` and error responses come with room for them (`json.rs`); for
        // any other response, growing the map now moves one entry, where growing it at the
        // seventh insert would move six.
        headers.reserve(6);
        headers.insert(LIMIT, self.limit);
        let d = &self.decision;
        headers.insert(REMAINING, number_value(d.remaining));
        headers.insert(RESET, reset_value(d.reset_us.max(d.now_us)));
        headers.insert(TIER, tier_value(self.tier));
    }
}

/// The part of counting a request that has to wait, left by `admit_now` for `admit_later`.
pub struct Pending(Left);

enum Left {
    /// Who is asking: on an ID-token route (`None`), or with a key to look up in the store.
    Identify(Option<KeyLookup>),
    /// The limiter's answer (a shared backend).
    Decide(Caller, Option<usize>),
}

/// Counts a request under `/v1` (see the module documentation), without waiting when it
/// can: on the memory backend, an API-key route with a cached key or with no usable one.
/// Otherwise the rest is left for `admit_later` (an ID-token route, a key not in the cache,
/// the Redis backend). Called by the request middleware after the request id is
/// assigned, so refusals get the envelope like any error. `route` is the matched route
/// template; the credentials checked are left in `checked`.
pub fn admit_now(
    state: &AppState,
    rl: &RateLimits,
    req: &Incoming<'_>,
    route: Option<&str>,
    checked: &mut Checked,
) -> Result<Admission, Pending> {
    let caller = match identify_now(state, rl, req, route.unwrap_or(req.path), checked) {
        Ok(caller) => caller,
        Err(lookup) => return Err(Pending(Left::Identify(lookup))),
    };
    let endpoint = endpoint_of(rl, &caller, req.method, route);
    match decide_now(state, rl, &caller, endpoint) {
        Some(admission) => {
            caller.hand_over(checked);
            Ok(admission)
        }
        None => Err(Pending(Left::Decide(caller, endpoint))),
    }
}

/// The rest of `admit_now`'s work, waiting where it must.
pub async fn admit_later(
    state: &AppState,
    rl: &RateLimits,
    req: &Incoming<'_>,
    route: Option<&str>,
    checked: &mut Checked,
    pending: Pending,
) -> Admission {
    let (caller, admission) = match pending.0 {
        Left::Identify(lookup) => {
            let caller = identify_later(state, rl, req, checked, lookup).await;
            let endpoint = endpoint_of(rl, &caller, req.method, route);
            let admission = decide(state, rl, &caller, endpoint).await;
            (caller, admission)
        }
        Left::Decide(caller, endpoint) => {
            let admission = decide_waiting(state, rl, &caller, endpoint).await;
            (caller, admission)
        }
    };
    caller.hand_over(checked);
    admission
}

/// The endpoint limit that applies to a request, if any. Endpoint limits are an account's;
/// an address has its Default tier only.
fn endpoint_of(
    rl: &RateLimits,
    caller: &Caller,
    method: &Method,
    route: Option<&str>,
) -> Option<usize> {
    match caller.who {
        Who::Address(_) => None,
        _ => route.and_then(|r| rl.policy.endpoint(method.as_str(), r)),
    }
}

/// Counts a dashboard call made for a signed-in user against that user's budget, as the `/v1`
/// request it stands for (the composer counts as `POST /v1/posts`), so that the composer is no
/// way around that endpoint's limit. (The dashboard's other calls are not counted.)
pub async fn admit_user(
    state: &AppState,
    rl: &RateLimits,
    uid: &str,
    method: &str,
    route: &str,
) -> Admission {
    let caller = user_caller(state, rl, uid).await;
    decide(state, rl, &caller, rl.policy.endpoint(method, route)).await
}

/// Asks the limiter about one request of `caller` (and of the endpoint limit, if any).
async fn decide(
    state: &AppState,
    rl: &RateLimits,
    caller: &Caller,
    endpoint: Option<usize>,
) -> Admission {
    match decide_now(state, rl, caller, endpoint) {
        Some(admission) => admission,
        None => decide_waiting(state, rl, caller, endpoint).await,
    }
}

/// `decide` by the limiter's `check`, which may wait (the Redis backend).
async fn decide_waiting(
    state: &AppState,
    rl: &RateLimits,
    caller: &Caller,
    endpoint: Option<usize>,
) -> Admission {
    let check = check_of(rl, caller, endpoint);
    let outcome = rl.limiter.check(&check).await;
    conclude(state, rl, caller, &check, outcome)
}

/// `decide` when the limiter answers without waiting (the memory backend); `None` otherwise.
fn decide_now(
    state: &AppState,
    rl: &RateLimits,
    caller: &Caller,
    endpoint: Option<usize>,
) -> Option<Admission> {
    let check = check_of(rl, caller, endpoint);
    let decision = rl.limiter.check_now(&check)?;
    Some(conclude(state, rl, caller, &check, Ok(decision)))
}

fn check_of<'a>(rl: &'a RateLimits, caller: &'a Caller, endpoint: Option<usize>) -> Check<'a> {
    Check {
        subject: caller.subject(),
        quota: caller.quota,
        endpoint: endpoint.map(|i| (i, &rl.policy.endpoints[i])),
    }
}

/// The admission for the limiter's answer: served, refused (429), or, when the backend could
/// not be asked, what `SOKU_RATE_LIMIT_ON_ERROR` says.
fn conclude(
    state: &AppState,
    rl: &RateLimits,
    caller: &Caller,
    check: &Check<'_>,
    outcome: Result<Decision, LimiterError>,
) -> Admission {
    let (decision, refusal) = match outcome {
        Ok(decision) if decision.allowed => {
            rl.note_success();
            (decision, None)
        }
        Ok(decision) => {
            rl.note_success();
            let hit = decision.hit.unwrap_or(LimitHit::Tier);
            state.metrics.record_rate_limited(
                match hit {
                    LimitHit::Tier => "tier",
                    LimitHit::Endpoint => "endpoint",
                },
                caller.tier.as_str(),
            );
            let refusal = too_many(caller, check, &decision);
            (decision, Some(Box::new(refusal)))
        }
        Err(e) => {
            rl.note_failure(state, &e);
            let now = state.clock.now_micros();
            let retry_us = OUTAGE_RETRY_SECS as i64 * 1_000_000;
            match rl.on_error {
                // Served, unlimited. The headers count what this node lets through meanwhile,
                // so that a client pacing itself by them keeps to its budget.
                OnError::Allow => (rl.stand_in.check_at(check, now), None),
                // Nothing is admitted until the backend answers: none left, and the time to
                // ask again (`Retry-After`) as the reset.
                OnError::Deny => {
                    let decision = Decision {
                        allowed: false,
                        hit: None,
                        remaining: 0,
                        reset_us: now + retry_us,
                        retry_after_us: retry_us,
                        hit_reset_us: now + retry_us,
                        now_us: now,
                    };
                    // No `cause`: the middleware logs every 5xx that has one, and
                    // `note_failure` has already logged this failure (at most once a minute,
                    // however many requests it refuses).
                    let refusal = ApiError::new(
                        ErrorCode::ServiceUnavailable,
                        "Rate limiting is temporarily unavailable; try again shortly.",
                    )
                    .with_header(
                        axum::http::header::RETRY_AFTER,
                        number_value(OUTAGE_RETRY_SECS),
                    );
                    (decision, Some(Box::new(refusal)))
                }
            }
        }
    };
    Admission {
        tier: caller.tier,
        limit: rl.limit_value(caller.quota.rate),
        decision,
        refusal,
    }
}

/// `X-RateLimit-Tier`, ready made (`from_static` checks every byte when it runs at run time).
fn tier_value(tier: RateLimitTier) -> HeaderValue {
    const DEFAULT: HeaderValue = HeaderValue::from_static("default");
    const AUTHENTICATED: HeaderValue = HeaderValue::from_static("authenticated");
    const PREMIUM: HeaderValue = HeaderValue::from_static("premium");
    const ADMIN: HeaderValue = HeaderValue::from_static("admin");
    match tier {
        RateLimitTier::Default => DEFAULT,
        RateLimitTier::Authenticated => AUTHENTICATED,
        RateLimitTier::Premium => PREMIUM,
        RateLimitTier::Admin => ADMIN,
    }
}

/// Numbers below this have a ready-made header value: every tier's and endpoint's capacity is
/// smaller, so `X-RateLimit-Remaining` costs nothing to make for any request counted against
/// the spec's quotas.
const SMALL_NUMBERS: u64 = 1024;

/// `n` in decimal, as a header value: ready made below `SMALL_NUMBERS`, else one small
/// allocation (no formatting machinery).
fn number_value(n: u64) -> HeaderValue {
    static SMALL: LazyLock<Box<[HeaderValue]>> = LazyLock::new(|| {
        (0..SMALL_NUMBERS)
            .map(|n| HeaderValue::from_static(Box::leak(n.to_string().into_boxed_str())))
            .collect()
    });
    match SMALL.get(n as usize) {
        Some(value) => value.clone(),
        None => HeaderValue::from_str(itoa::Buffer::new().format(n))
            .expect("digits make a header value"),
    }
}

/// `n` in decimal as a `&'static str`, made once per distinct value for this process and
/// kept: for the tiers' rates (a handful), whose `X-RateLimit-Limit` is then a static header
/// value, free to copy.
fn interned_number(n: u32) -> &'static str {
    static NUMBERS: Mutex<Vec<(u32, &'static str)>> = Mutex::new(Vec::new());
    let mut numbers = NUMBERS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, s)) = numbers.iter().find(|(v, _)| *v == n) {
        return s;
    }
    let s: &'static str = Box::leak(n.to_string().into_boxed_str());
    numbers.push((n, s));
    s
}

/// `X-RateLimit-Reset` for `us` microseconds since the epoch.
fn reset_value(us: i64) -> HeaderValue {
    HeaderValue::from_bytes(&rfc3339_bytes(us)).expect("a timestamp makes a header value")
}

/// RFC 3339 with milliseconds, rounded up so that the bucket is full at that time.
fn rfc3339_micros(us: i64) -> String {
    String::from_utf8_lossy(&rfc3339_bytes(us)).into_owned()
}

/// `2026-03-01T12:00:00.123Z` for `us` microseconds since the epoch, rounded up to the
/// millisecond, written without allocating or calendar types (it is on every response).
/// Years 0 to 9999.
fn rfc3339_bytes(us: i64) -> [u8; 24] {
    thread_local! {
        /// The last second written, as `YYYY-MM-DDTHH:MM:SS.`: reset times of requests
        /// answered one after the other often fall in the same second (a busy key's, or those
        /// of one tier's keys, `now` plus the same interval), and then only the milliseconds
        /// are left to write.
        static LAST_SECOND: Cell<(i64, [u8; 20])> = const { Cell::new((i64::MIN, [0; 20])) };
    }
    let ms = us.div_euclid(1000) + i64::from(us.rem_euclid(1000) > 0);
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000) as usize;
    let prefix = match LAST_SECOND.get() {
        (second, prefix) if second == secs => prefix,
        _ => {
            let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
            let year = year.clamp(0, 9999) as usize;
            let second_of_day = secs.rem_euclid(86_400) as usize;
            let mut prefix = *b"0000-00-00T00:00:00.";
            put_pair(&mut prefix, 0, year / 100);
            put_pair(&mut prefix, 2, year % 100);
            put_pair(&mut prefix, 5, month as usize);
            put_pair(&mut prefix, 8, day as usize);
            put_pair(&mut prefix, 11, second_of_day / 3600);
            put_pair(&mut prefix, 14, second_of_day / 60 % 60);
            put_pair(&mut prefix, 17, second_of_day % 60);
            LAST_SECOND.set((secs, prefix));
            prefix
        }
    };
    let mut out = *b"0000-00-00T00:00:00.000Z";
    out[..20].copy_from_slice(&prefix);
    put_pair(&mut out, 20, milli / 10);
    out[22] = b'0' + (milli % 10) as u8;
    out
}

/// Writes `v` (0 to 99) as two digits at `at`, with one lookup.
fn put_pair(out: &mut [u8], at: usize, v: usize) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    out[at..at + 2].copy_from_slice(&PAIRS[2 * v..2 * v + 2]);
}

/// Year, month (1 to 12) and day (1 to 31) of a count of days since 1970-01-01, in the
/// proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of the 400-year era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year from March, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn too_many(caller: &Caller, check: &Check<'_>, d: &Decision) -> ApiError {
    let retry_after = d.retry_after_secs().max(1);
    let reset_at = rfc3339_micros(d.hit_reset_us.max(d.now_us));
    let (message, details) = match (d.hit, check.endpoint) {
        (Some(LimitHit::Endpoint), Some((_, e))) => (
            format!(
                "Rate limit exceeded for {}: {} requests per 60 seconds. Retry after {retry_after} s.",
                e.name, e.rate
            ),
            json!({
                "limit": "endpoint",
                "endpoint": e.name,
                "rate": e.rate,
                "retryAfter": retry_after,
                "resetAt": reset_at,
            }),
        ),
        _ => (
            format!(
                "Rate limit exceeded for the {} tier: {} requests per 60 seconds. Retry after {retry_after} s.",
                caller.tier.as_str(),
                caller.quota.rate
            ),
            json!({
                "limit": "tier",
                "tier": caller.tier.as_str(),
                "rate": caller.quota.rate,
                "burst": caller.quota.burst,
                "retryAfter": retry_after,
                "resetAt": reset_at,
            }),
        ),
    };
    ApiError::new(ErrorCode::RateLimitExceeded, message)
        .with_details(details)
        .with_header(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(retry_after),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use soku_core::time::{from_millis, rfc3339_millis};

    #[test]
    fn reset_times_round_up_to_the_millisecond() {
        assert_eq!(rfc3339_micros(1_000_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(rfc3339_micros(1_000_001), "1970-01-01T00:00:01.001Z");
        assert_eq!(rfc3339_micros(1_000_999), "1970-01-01T00:00:01.001Z");
        assert_eq!(rfc3339_micros(999_999_999), "1970-01-01T00:16:40.000Z");
        // Within one second (the second is kept between calls), into the next, and back.
        for (us, text) in [
            (1_500_000, "1970-01-01T00:00:01.500Z"),
            (1_999_000, "1970-01-01T00:00:01.999Z"),
            (1_999_001, "1970-01-01T00:00:02.000Z"),
            (1_000_001, "1970-01-01T00:00:01.001Z"),
            (86_401_000_000 + 1_000_001, "1970-01-02T00:00:02.001Z"),
            (1_000_002, "1970-01-01T00:00:01.001Z"),
        ] {
            assert_eq!(rfc3339_micros(us), text, "{us}");
        }
        // The hand-written form agrees with chrono's over a spread of instants.
        let mut us = 946_684_799_999_999i64; // 1999-12-31T23:59:59.999999Z
        for _ in 0..2000 {
            let ms = us.div_euclid(1000) + i64::from(us.rem_euclid(1000) > 0);
            assert_eq!(rfc3339_micros(us), rfc3339_millis(from_millis(ms)), "{us}");
            us += 86_399_123_457; // a day less a bit, so every field moves
        }
        // And every day from 1900 to 2200 (leap years, century years, 2000), at two times
        // of day, before the epoch too.
        let mut day_us = -2_208_988_800_000_000i64; // 1900-01-01T00:00:00Z
        while day_us < 7_258_118_400_000_000 {
            // 2200-01-01T00:00:00Z
            for us in [day_us, day_us + 86_399_999_001] {
                let ms = us.div_euclid(1000) + i64::from(us.rem_euclid(1000) > 0);
                assert_eq!(rfc3339_micros(us), rfc3339_millis(from_millis(ms)), "{us}");
            }
            day_us += 86_400_000_000;
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(number_value(0), "0");
        assert_eq!(number_value(7), "7");
        assert_eq!(number_value(1023), "1023");
        assert_eq!(number_value(1024), "1024");
        assert_eq!(number_value(10_999_999), "10999999");
        assert_eq!(number_value(u64::MAX), "18446744073709551615");
        assert_eq!(reset_value(1_000_001), "1970-01-01T00:00:01.001Z");
        for tier in [
            RateLimitTier::Default,
            RateLimitTier::Authenticated,
            RateLimitTier::Premium,
            RateLimitTier::Admin,
        ] {
            assert_eq!(tier_value(tier), tier.as_str());
        }
        assert_eq!(interned_number(1_000_000), "1000000");
        assert!(std::ptr::eq(interned_number(25), interned_number(25)));
        let rl = RateLimits::new(RateLimitOptions::default()).expect("on");
        for (rate, text) in [
            (25, "25"),
            (200, "200"),
            (1234, "1234"),
            (1234, "1234"),
            (99, "99"),
            (1234, "1234"),
        ] {
            assert_eq!(rl.limit_value(rate), text);
        }
    }

    #[test]
    fn id_token_routes() {
        assert!(is_id_token_route("/v1/api-keys"));
        assert!(is_id_token_route("/v1/api-keys/{id}"));
        assert!(is_id_token_route("/v1/metrics/refresh"));
        assert!(!is_id_token_route("/v1/me"));
        assert!(!is_id_token_route("/v1/api-keysx"));
    }
}
