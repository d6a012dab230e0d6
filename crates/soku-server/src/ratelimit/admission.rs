//! Counting one request: the limiter's answer for a caller or a client address, and what it
//! puts on the response (the `X-RateLimit-*` headers, and a 429 or 503 in place of the
//! handler's answer).

use super::headers::{
    LIMIT, REMAINING, RESET, TIER, number_value, reset_time, reset_value, tier_value,
};
use super::{OUTAGE_RETRY_SECS, OnError, RateLimits};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use soku_core::ErrorCode;
use soku_core::model::RateLimitTier;
use soku_core::ratelimit::{Check, Decision, LimitHit, LimiterError, Quota, Subject};

/// The rate-limit step's outcome for one request: the caller's tier and limit, the decision
/// (while the backend cannot be asked: the stand-in's count, or none left with `deny`), and
/// the answer to give instead of running the handler.
pub struct Admission {
    tier: RateLimitTier,
    /// `X-RateLimit-Limit`.
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
        headers.insert(LIMIT, self.limit);
        let d = &self.decision;
        headers.insert(REMAINING, number_value(d.remaining));
        headers.insert(RESET, reset_value(d.reset_us.max(d.now_us)));
        headers.insert(TIER, tier_value(self.tier));
    }
}

/// Who a request is counted against, with which tier and quota.
struct Counted<'a> {
    subject: Subject<'a>,
    tier: RateLimitTier,
    quota: Quota,
    /// Endpoint limits are an account's: an address has its Default tier only.
    account: bool,
}

impl<'a> Counted<'a> {
    fn of(rl: &RateLimits, who: &'a Identity) -> Self {
        match who {
            Identity::Caller(caller) => Counted {
                subject: Subject::User(&caller.user_id),
                tier: caller.tier,
                quota: caller
                    .rate_limit
                    .unwrap_or(rl.policy.tiers.get(caller.tier)),
                account: true,
            },
            Identity::Anonymous { ip, .. } => Counted {
                subject: Subject::ip(*ip),
                tier: RateLimitTier::Default,
                quota: rl.policy.tiers.default,
                account: false,
            },
        }
    }
}

impl RateLimits {
    /// Counts one request of `who` on `route` (the route template it is counted as; `None`
    /// for a path that matches no route): against the user (all of a user's keys, tokens and
    /// sessions share one budget) or the client address, with the tier quota (or the user's
    /// override) and, for a user, the route's endpoint limit, in one atomic check of the
    /// limiter.
    pub async fn admit(
        &self,
        state: &AppState,
        who: &Identity,
        method: &Method,
        route: Option<&str>,
    ) -> Admission {
        let counted = Counted::of(self, who);
        let endpoint = route
            .filter(|_| counted.account)
            .and_then(|r| self.policy.endpoint(method.as_str(), r));
        let check = Check {
            subject: counted.subject,
            quota: counted.quota,
            endpoint: endpoint.map(|i| (i, &self.policy.endpoints[i])),
        };
        // The memory backend answers at once; a shared one (Redis) is asked and awaited.
        let outcome = match self.limiter.check_now(&check) {
            Some(decision) => Ok(decision),
            None => self.limiter.check(&check).await,
        };
        self.conclude(state, &counted, &check, outcome)
    }

    /// The admission for the limiter's answer: served, refused (429), or, when the backend
    /// could not be asked, what `SOKU_RATE_LIMIT_ON_ERROR` says.
    fn conclude(
        &self,
        state: &AppState,
        counted: &Counted<'_>,
        check: &Check<'_>,
        outcome: Result<Decision, LimiterError>,
    ) -> Admission {
        let (decision, refusal) = match outcome {
            Ok(decision) if decision.allowed => {
                self.note_success();
                (decision, None)
            }
            Ok(decision) => {
                self.note_success();
                let hit = decision.hit.unwrap_or(LimitHit::Tier);
                state.metrics.record_rate_limited(
                    match hit {
                        LimitHit::Tier => "tier",
                        LimitHit::Endpoint => "endpoint",
                    },
                    counted.tier.as_str(),
                );
                let refusal = too_many(counted, check, &decision);
                (decision, Some(Box::new(refusal)))
            }
            Err(e) => {
                self.note_failure(state, &e);
                let now = state.clock.now_micros();
                match self.on_error {
                    // Served, unlimited. The headers count what this node lets through
                    // meanwhile, so that a client pacing itself by them keeps to its budget.
                    OnError::Allow => (self.stand_in.check_at(check, now), None),
                    OnError::Deny => (outage_decision(now), Some(Box::new(outage_refusal()))),
                }
            }
        };
        Admission {
            tier: counted.tier,
            limit: self.limit_value(counted.quota.rate),
            decision,
            refusal,
        }
    }
}

/// While the backend cannot be asked and failures are denied, nothing is admitted: none
/// left, and the time to ask again (`Retry-After`) as the reset.
fn outage_decision(now: i64) -> Decision {
    let retry_us = OUTAGE_RETRY_SECS as i64 * 1_000_000;
    Decision {
        allowed: false,
        hit: None,
        remaining: 0,
        reset_us: now + retry_us,
        retry_after_us: retry_us,
        hit_reset_us: now + retry_us,
        now_us: now,
    }
}

/// The 503 of `deny`. No `cause`: the middleware logs every 5xx that has one, and
/// `note_failure` has already logged this failure (at most once a minute, however many
/// requests it refuses).
fn outage_refusal() -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        "Rate limiting is temporarily unavailable; try again shortly.",
    )
    .with_header(
        axum::http::header::RETRY_AFTER,
        number_value(OUTAGE_RETRY_SECS),
    )
}

/// The 429, naming the limit that refused and when to retry.
fn too_many(counted: &Counted<'_>, check: &Check<'_>, d: &Decision) -> ApiError {
    let retry_after = d.retry_after_secs().max(1);
    let reset_at = reset_time(d.hit_reset_us.max(d.now_us));
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
                counted.tier.as_str(),
                counted.quota.rate
            ),
            json!({
                "limit": "tier",
                "tier": counted.tier.as_str(),
                "rate": counted.quota.rate,
                "burst": counted.quota.burst,
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
