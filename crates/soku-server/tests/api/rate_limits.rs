//! Rate limits (spec section 5): tiers and bursts, endpoint limits, who is counted, the headers
//! on every `/v1` response, the 429 envelope, exactness under concurrency, and the Redis
//! backend: shared by two processes, and its outage policies.
//!
//! The memory backend's refill is driven by a `ManualClock` (the limiter's own clock; the rest
//! of the app keeps the system clock, so tokens and subscriptions behave normally). Redis uses
//! its own clock, so the Redis tests use budgets that refill once a minute (`--rate 1`), which
//! makes them exact without waiting. Redis tests run when `SOKU_TEST_REDIS_URL` names a Redis
//! server (`.ci/run` does); the outage test starts its own `redis-server` on a free port.

use crate::binary::{Server, database, ok, subscriber};
use crate::util::{Builder, TestApp, eventually, expect_error};
use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use soku_core::clock::ManualClock;
use soku_core::model::{Role, SubscriptionStatus};
use soku_core::ratelimit::{
    Check, EndpointLimit, LimitHit, Quota, RateLimiter, Subject, TierQuotas,
};
use soku_core::time::rfc3339_millis;
use soku_server::extract::ApiKeyAuth;
use soku_server::ratelimit::redis::RedisLimiter;
use soku_server::ratelimit::{OnError, RateLimitOptions};
use soku_server::state::AppState;
use std::net::IpAddr;
use std::sync::Arc;

// ---- helpers ------------------------------------------------------------------------------

/// An app with the spec's limits in memory, refilled by `clock`.
fn spec_limits(clock: &Arc<ManualClock>) -> RateLimitOptions {
    RateLimitOptions::memory(clock.clone())
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc::now()))
}

/// `X-RateLimit-*` of a response: (limit, remaining, reset, tier); `None` when absent.
fn limit_headers(
    r: &reqwest::Response,
) -> (Option<u64>, Option<u64>, Option<String>, Option<String>) {
    let h = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (
        h("x-ratelimit-limit").map(|v| v.parse().unwrap()),
        h("x-ratelimit-remaining").map(|v| v.parse().unwrap()),
        h("x-ratelimit-reset"),
        h("x-ratelimit-tier"),
    )
}

fn remaining(r: &reqwest::Response) -> u64 {
    limit_headers(r).1.expect("X-RateLimit-Remaining")
}

fn assert_no_limit_headers(r: &reqwest::Response, what: &str) {
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-tier",
    ] {
        assert!(r.headers().get(name).is_none(), "{what}: {name} present");
    }
}

/// Asserts the full set of headers for a response within a known tier.
fn assert_limit_headers(r: &reqwest::Response, limit: u64, tier: &str, what: &str) -> u64 {
    let (l, rem, reset, t) = limit_headers(r);
    assert_eq!(l, Some(limit), "{what}: X-RateLimit-Limit");
    assert_eq!(t.as_deref(), Some(tier), "{what}: X-RateLimit-Tier");
    let reset = reset.unwrap_or_else(|| panic!("{what}: X-RateLimit-Reset"));
    assert!(
        DateTime::parse_from_rfc3339(&reset).is_ok(),
        "{what}: {reset}"
    );
    rem.unwrap_or_else(|| panic!("{what}: X-RateLimit-Remaining"))
}

/// The 429 envelope with its `Retry-After`; returns `details`.
async fn expect_429(r: reqwest::Response, retry_after: u64, what: &str) -> Value {
    let header = r
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{what}: Retry-After"))
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(header, retry_after.to_string(), "{what}: Retry-After");
    assert_eq!(remaining(&r), 0, "{what}: nothing remains");
    let body = expect_error(r, 429, "rate_limit_exceeded", None).await;
    let details = body["error"]["details"].clone();
    assert_eq!(details["retryAfter"], retry_after, "{what}: {body}");
    assert!(
        DateTime::parse_from_rfc3339(details["resetAt"].as_str().unwrap()).is_ok(),
        "{what}: {body}"
    );
    details
}

/// RFC 3339 (milliseconds) of `t + us` microseconds, rounded up to the millisecond.
fn at(t: DateTime<Utc>, us: i64) -> String {
    let exact = t + Duration::microseconds(us);
    let ms = exact.timestamp_micros().div_euclid(1000)
        + i64::from(exact.timestamp_micros().rem_euclid(1000) > 0);
    rfc3339_millis(DateTime::from_timestamp_millis(ms).unwrap())
}

/// A client whose requests leave from `local` (a loopback address: 127.0.0.0/8 is all local).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn admin_user(app: &TestApp) -> String {
    let uid = app
        .user(
            Some(SubscriptionStatus::Active),
            Utc::now() + Duration::days(30),
        )
        .await;
    app.store.set_role(&uid, Role::Admin).await.unwrap();
    uid
}

fn redis_url() -> Option<String> {
    match std::env::var("SOKU_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => None,
    }
}

/// Keys of one test, apart from every other test's and run's.
fn redis_prefix(label: &str) -> String {
    format!(
        "soku-test:{}:",
        soku_core::keys::random_id(&format!("{label}_"), 10)
    )
}

// ---- tiers ------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limits_each_tier_admits_rate_plus_burst_then_429_with_retry_after() {
    let clock = manual_clock();
    let app = Builder::default()
        .rate_limits(spec_limits(&clock))
        .start()
        .await;
    let (_, premium_key) = app.subscriber().await;
    let lapsed = app
        .user(
            Some(SubscriptionStatus::Canceled),
            Utc::now() + Duration::days(1),
        )
        .await;
    let lapsed_key = app.key_for(&lapsed).await;
    let admin = admin_user(&app).await;
    let admin_key = app.key_for(&admin).await;

    let me = app.url("/v1/me");
    // (tier, key, status under the limit, rate, capacity = rate + burst, Retry-After)
    /// (tier, key, status under the limit, rate, capacity, Retry-After)
    type Case<'a> = (&'a str, Option<&'a str>, u16, u64, i64, u64);
    let cases: [Case; 4] = [
        ("default", None, 401, 25, 35, 3),
        ("authenticated", Some(&lapsed_key), 403, 60, 90, 1),
        ("premium", Some(&premium_key), 200, 100, 200, 1),
        ("admin", Some(&admin_key), 200, 200, 700, 1),
    ];
    for (tier, key, status, rate, capacity, retry_after) in cases {
        let send = || {
            let mut r = app.http.get(&me);
            if let Some(k) = key {
                r = r.header("soku-api-key", k);
            }
            r.send()
        };
        let interval = 60_000_000 / rate as i64;
        let t0 = clock.now_utc();
        for i in 0..capacity {
            let r = send().await.unwrap();
            assert_eq!(r.status().as_u16(), status, "{tier}: request {i}");
            let left = assert_limit_headers(&r, rate, tier, tier);
            assert_eq!(left, (capacity - 1 - i) as u64, "{tier}: drops by one");
            assert_eq!(
                limit_headers(&r).2.unwrap(),
                at(t0, (i + 1) * interval),
                "{tier}: X-RateLimit-Reset is when the bucket is full again"
            );
        }
        let r = send().await.unwrap();
        assert_limit_headers(&r, rate, tier, tier);
        assert_eq!(limit_headers(&r).2.unwrap(), at(t0, capacity * interval));
        let details = expect_429(r, retry_after, tier).await;
        assert_eq!(details["limit"], "tier", "{tier}");
        assert_eq!(details["tier"], tier);
        assert_eq!(details["rate"], rate);
        assert_eq!(details["burst"], capacity as u64 - rate);

        // One millisecond before the interval: still refused; at the interval: exactly one.
        clock.advance(Duration::microseconds(interval - 1000));
        let r = send().await.unwrap();
        expect_429(r, 1, tier).await;
        clock.advance(Duration::milliseconds(1));
        let r = send().await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            status,
            "{tier}: one more after the interval"
        );
        assert_eq!(remaining(&r), 0);
        let r = send().await.unwrap();
        expect_429(r, retry_after, tier).await;
        // Waiting what Retry-After said is enough.
        clock.advance(Duration::seconds(retry_after as i64));
        let r = send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{tier}: after Retry-After");
    }
}

trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        soku_core::Clock::now(self)
    }
}

// ---- endpoint limits ---------------------------------------------------------------------------

/// An app with the spec's limits on `clock`, serving every endpoint-limited route.
async fn spec_app_with_every_endpoint(clock: &Arc<ManualClock>) -> TestApp {
    Builder::default()
        .rate_limits(spec_limits(clock))
        .routes(stand_in_routes())
        .start()
        .await
}

/// Test routes for the spec's limited endpoints that the app does not serve yet (a real route,
/// once it exists, is used instead: every request is counted before its handler runs).
fn stand_in_routes() -> Router<AppState> {
    let doc = soku_server::api::routes().doc;
    let mut routes = Router::new();
    for e in soku_core::ratelimit::Policy::spec().endpoints {
        let served = doc
            .paths
            .paths
            .get(&e.route)
            .is_some_and(|p| p.post.is_some());
        if !served {
            routes = routes.route(
                &e.route,
                post(|ApiKeyAuth(caller): ApiKeyAuth| async move {
                    axum::Json(json!({ "userId": caller.user_id }))
                }),
            );
        }
    }
    routes
}

/// The spec's endpoint limits are per account: a request with no valid key has its address's
/// Default tier and nothing else, so it keeps getting its 401 past an endpoint's rate.
#[tokio::test]
async fn rate_limits_endpoint_limits_are_per_account_not_per_address() {
    let clock = manual_clock();
    let app = spec_app_with_every_endpoint(&clock).await;
    let send = |key: Option<&'static str>| {
        let mut r = app.http.post(app.url("/v1/ai/transcribe")).json(&json!({}));
        if let Some(key) = key {
            r = r.header("soku-api-key", key);
        }
        r.send()
    };
    // 35 at once for the address (25 + 10), well past transcription's 10; a key that is no
    // key counts against the address too.
    for i in 0..35u64 {
        let key = (i % 2 == 1).then_some("sk_live_not_a_real_key");
        let r = send(key).await.unwrap();
        assert_eq!(r.status(), 401, "request {i}");
        assert_eq!(assert_limit_headers(&r, 25, "default", "no key"), 34 - i);
    }
    let details = expect_429(send(None).await.unwrap(), 3, "no key").await;
    assert_eq!(details["limit"], "tier");
}

#[tokio::test]
async fn rate_limits_each_endpoint_limit_admits_its_rate_then_429_naming_it() {
    let clock = manual_clock();
    let app = spec_app_with_every_endpoint(&clock).await;
    let (_, key) = app.subscriber().await;
    let send = |route: &str| {
        app.http
            .post(app.url(route))
            .header("soku-api-key", &key)
            .json(&json!({}))
            .send()
    };
    // The premium tier (200 at once) is charged by every admitted request, never by refusals.
    let mut tier_left = 200u64;
    for (route, rate, retry_after) in [
        ("/v1/posts", 30i64, 2u64),
        ("/v1/media", 30, 2),
        ("/v1/ai/transcribe", 10, 6),
        ("/v1/templates", 20, 3),
        ("/v1/media/render-og", 20, 3),
    ] {
        let mut statuses = std::collections::HashSet::new();
        for i in 0..rate {
            let r = send(route).await.unwrap();
            assert_ne!(r.status().as_u16(), 429, "{route}: request {i}");
            statuses.insert(r.status().as_u16());
            tier_left -= 1;
            let left = assert_limit_headers(&r, 100, "premium", route);
            assert_eq!(
                left, tier_left,
                "{route}: the tier is charged once per request"
            );
        }
        assert_eq!(statuses.len(), 1, "{route}: {statuses:?}");
        let t0 = clock.now_utc();
        let interval = 60_000_000 / rate;
        for _ in 0..3 {
            let r = send(route).await.unwrap();
            // The headers still describe the tier, which the refusal did not charge.
            let left = assert_limit_headers(&r, 100, "premium", route);
            assert_eq!(left, tier_left, "{route}: refusals charge nothing");
            let retry = r.headers()["retry-after"].to_str().unwrap().to_owned();
            assert_eq!(retry, retry_after.to_string(), "{route}");
            let body = expect_error(r, 429, "rate_limit_exceeded", None).await;
            let details = &body["error"]["details"];
            assert_eq!(details["limit"], "endpoint", "{body}");
            assert_eq!(details["endpoint"], format!("POST {route}"), "{body}");
            assert_eq!(details["rate"], rate, "{body}");
            assert_eq!(details["retryAfter"], retry_after, "{body}");
            assert_eq!(details["resetAt"], at(t0, rate * interval), "{body}");
        }
        // Another endpoint (here /v1/me, unlimited) is unaffected.
        let r = app.get_with_key("/v1/me", &key).await;
        assert_eq!(r.status(), 200, "{route}");
        assert_eq!(remaining(&r), tier_left - 1, "{route}");
        // The interval less a millisecond: refused; at the interval: one, then refused again.
        clock.advance(Duration::microseconds(interval - 1000));
        assert_eq!(send(route).await.unwrap().status(), 429, "{route}");
        clock.advance(Duration::milliseconds(1));
        let r = send(route).await.unwrap();
        assert_ne!(r.status(), 429, "{route}: one more after the interval");
        assert_limit_headers(&r, 100, "premium", route);
        assert_eq!(send(route).await.unwrap().status(), 429, "{route}");
        clock.advance(Duration::seconds(retry_after as i64));
        let r = send(route).await.unwrap();
        assert_ne!(r.status(), 429, "{route}: after Retry-After");
        // The tier refilled meanwhile too (0.6 s per request): carry on from what it says.
        tier_left = remaining(&r);
    }
    // GET on a limited path is not the limited endpoint (only the method + route template is).
    let r = app.get_with_key("/v1/posts", &key).await;
    assert_ne!(r.status(), 429);
}

// ---- headers ------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limits_headers_on_every_v1_response_and_one_budget_per_user() {
    let clock = manual_clock();
    let panic_route = Router::new().route(
        "/v1/test/panic",
        get(|| async {
            if true {
                panic!("deliberate panic for the rate-limit headers test");
            }
            "unreachable"
        }),
    );
    let app = Builder::default()
        .rate_limits(spec_limits(&clock))
        .routes(panic_route)
        .start()
        .await;
    let (uid, key) = app.subscriber().await;
    let second_key = app.key_for(&uid).await;
    let token = app.token(&uid);
    let lapsed = app
        .user(
            Some(SubscriptionStatus::Expired),
            Utc::now() + Duration::days(1),
        )
        .await;
    let lapsed_key = app.key_for(&lapsed).await;
    let http = &app.http;

    // One user, two keys and an ID token: one budget, dropping by one per request.
    let mut expected = 199u64;
    for request in [
        http.get(app.url("/v1/me")).header("soku-api-key", &key),
        http.get(app.url("/v1/me"))
            .header("soku-api-key", &second_key),
        http.get(app.url("/v1/api-keys")).bearer_auth(&token),
        http.get(app.url("/v1/me")).header("soku-api-key", &key),
        // A valid key on an unknown /v1 path still counts against its owner.
        http.get(app.url("/v1/nothing-here"))
            .header("soku-api-key", &key),
        http.get(app.url("/v1/me"))
            .header("soku-api-key", &second_key),
    ] {
        let r = request.send().await.unwrap();
        let left = assert_limit_headers(&r, 100, "premium", "shared budget");
        assert_eq!(left, expected, "{}", r.url());
        expected -= 1;
    }

    // Errors carry the headers too: (what, request, status, tier, limit).
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str, u64)> = vec![
        ("401", http.get(app.url("/v1/me")), 401, "default", 25),
        (
            "401 invalid key",
            http.get(app.url("/v1/me"))
                .header("soku-api-key", "sk_live_nonsense"),
            401,
            "default",
            25,
        ),
        (
            "401 bad token",
            http.get(app.url("/v1/api-keys")).bearer_auth("not.a.token"),
            401,
            "default",
            25,
        ),
        (
            "403",
            http.get(app.url("/v1/me"))
                .header("soku-api-key", &lapsed_key),
            403,
            "authenticated",
            60,
        ),
        (
            "404",
            http.get(app.url("/v1/nothing-here")),
            404,
            "default",
            25,
        ),
        ("405", http.patch(app.url("/v1/me")), 405, "default", 25),
        (
            "415",
            http.post(app.url("/v1/api-keys"))
                .bearer_auth(&token)
                .header("content-type", "text/plain")
                .body("{}"),
            415,
            "premium",
            100,
        ),
        (
            "413",
            http.post(app.url("/v1/api-keys"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(vec![b' '; 2 * 1024 * 1024]),
            413,
            "premium",
            100,
        ),
        (
            "500",
            http.get(app.url("/v1/test/panic"))
                .header("soku-api-key", &key),
            500,
            "premium",
            100,
        ),
        (
            "openapi",
            http.get(app.url("/v1/openapi.json")),
            200,
            "default",
            25,
        ),
    ];
    for (what, request, status, tier, limit) in cases {
        let r = request.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert_limit_headers(&r, limit, tier, what);
    }
    // Nothing outside /v1.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/jwks.json",
        "/nothing",
    ] {
        let r = http.get(app.url(path)).send().await.unwrap();
        assert_no_limit_headers(&r, path);
    }
}

// ---- who is counted -------------------------------------------------------------------------

/// On the routes that take a key or an ID token, a token's requests count against its user,
/// like the key's (spec 5: per account), not against the address.
#[tokio::test]
async fn rate_limits_key_or_token_routes_count_the_tokens_user() {
    let clock = manual_clock();
    let app = Builder::default()
        .rate_limits(spec_limits(&clock))
        .start()
        .await;
    let (uid, key) = app.subscriber().await;
    let token = app.token(&uid);
    let r = app.get_with_key("/v1/me", &key).await;
    assert_eq!(assert_limit_headers(&r, 100, "premium", "key"), 199);
    let r = app
        .http
        .delete(app.url("/v1/accounts/acc_nothing"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(assert_limit_headers(&r, 100, "premium", "token"), 198);
    // A bad token there is no user's: the address's Default tier.
    let r = app
        .http
        .delete(app.url("/v1/accounts/acc_nothing"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_limit_headers(&r, 25, "default", "bad token");
}

#[tokio::test]
async fn rate_limits_invalid_keys_exhaust_the_default_tier_for_that_ip_only() {
    let clock = manual_clock();
    let app = Builder::default()
        .rate_limits(spec_limits(&clock))
        .start()
        .await;
    let (_, key) = app.subscriber().await;
    let invalid = soku_core::keys::generate(soku_core::keys::KeyMode::Live).secret;
    let a = client_from("127.0.0.2");
    let b = client_from("127.0.0.1");
    let me = app.url("/v1/me");
    for i in 0..35u64 {
        let r = a
            .get(&me)
            .header("soku-api-key", &invalid)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "request {i}");
        assert_eq!(assert_limit_headers(&r, 25, "default", "a"), 34 - i);
    }
    let r = a
        .get(&me)
        .header("soku-api-key", &invalid)
        .send()
        .await
        .unwrap();
    let details = expect_429(r, 3, "127.0.0.2").await;
    assert_eq!(details["tier"], "default");
    // Without a key too: it is the address that is out of budget.
    assert_eq!(a.get(&me).send().await.unwrap().status(), 429);
    // Another address is untouched.
    let r = b
        .get(&me)
        .header("soku-api-key", &invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(remaining(&r), 34);
    // A valid key from the exhausted address counts against its user, not the address.
    let r = a
        .get(&me)
        .header("soku-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(assert_limit_headers(&r, 100, "premium", "user"), 199);
}

#[tokio::test]
async fn rate_limits_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let a = client_from("127.0.0.2");
    let b = client_from("127.0.0.1");

    // No trusted proxies: a client cannot pick the address it is counted as.
    let clock = manual_clock();
    let app = Builder::default()
        .rate_limits(spec_limits(&clock))
        .start()
        .await;
    for i in 0..35 {
        let r = a
            .get(app.url("/v1/me"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "request {i}");
    }
    let r = a
        .get(app.url("/v1/me"))
        .header("x-forwarded-for", "203.0.113.99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "spoofed X-Forwarded-For ignored");

    // 127.0.0.2 is a trusted proxy: its X-Forwarded-For names the client.
    let clock = manual_clock();
    let app = Builder::default()
        .rate_limits(spec_limits(&clock))
        .trusted_proxies("127.0.0.2/32")
        .start()
        .await;
    let via_proxy = |client: &'static str| {
        a.get(app.url("/v1/me"))
            .header("x-forwarded-for", format!("{client}, 127.0.0.2"))
            .send()
    };
    for i in 0..35u64 {
        let r = via_proxy("198.51.100.7").await.unwrap();
        assert_eq!(r.status(), 401, "request {i}");
        assert_eq!(remaining(&r), 34 - i);
    }
    assert_eq!(via_proxy("198.51.100.7").await.unwrap().status(), 429);
    let r = via_proxy("198.51.100.8").await.unwrap();
    assert_eq!(r.status(), 401, "another client behind the proxy");
    assert_eq!(remaining(&r), 34);
    // The proxy's own address was never charged.
    let r = a.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(remaining(&r), 34);
    // An untrusted peer claiming the exhausted client is counted as itself.
    let r = b
        .get(app.url("/v1/me"))
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(remaining(&r), 34);
}

// ---- overrides -----------------------------------------------------------------------------

#[tokio::test]
async fn rate_limits_operator_override_applies_within_the_key_cache_ttl() {
    let clock = manual_clock();
    let app = Builder::default()
        .rate_limits(spec_limits(&clock))
        .start()
        .await;
    let (uid, key) = app.subscriber().await;
    let run = |command| soku_server::admin::execute(app.store.clone(), command, Utc::now());
    use soku_server::admin::{AdminCommand, RatelimitCommand};
    let set = |uid: &str, rate, burst| AdminCommand::Ratelimit {
        command: RatelimitCommand::Set {
            uid: uid.into(),
            rate,
            burst,
        },
    };
    // Bad input is refused with a message.
    assert!(
        run(set("nobody", 5, 0))
            .await
            .unwrap_err()
            .contains("no user")
    );
    for (rate, burst) in [(0, 0), (-1, 0), (1, -1), (1_000_001, 0)] {
        assert!(run(set(&uid, rate, burst)).await.is_err(), "{rate}/{burst}");
    }

    let r = app.get_with_key("/v1/me", &key).await;
    assert_limit_headers(&r, 100, "premium", "before");
    // 1 per 60 s with a burst of 2: 3 at once. Seen within the 2 s cache lifetime.
    run(set(&uid, 1, 2)).await.unwrap();
    let started = std::time::Instant::now();
    assert!(
        eventually(std::time::Duration::from_secs(4), || async {
            limit_headers(&app.get_with_key("/v1/me", &key).await).0 == Some(1)
        })
        .await
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // The bucket keeps its state across the change; from idle the override admits exactly 3.
    clock.advance(Duration::minutes(10));
    for i in 0..3 {
        let r = app.get_with_key("/v1/me", &key).await;
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(assert_limit_headers(&r, 1, "premium", "override"), 2 - i);
    }
    let details = expect_429(app.get_with_key("/v1/me", &key).await, 60, "override").await;
    assert_eq!(details["tier"], "premium");
    assert_eq!(details["rate"], 1);
    assert_eq!(details["burst"], 2);

    // Cleared: the tier's quota again, within the cache lifetime.
    let clear = AdminCommand::Ratelimit {
        command: RatelimitCommand::Clear { uid: uid.clone() },
    };
    assert!(run(clear).await.unwrap().contains("removed"));
    assert!(
        eventually(std::time::Duration::from_secs(4), || async {
            limit_headers(&app.get_with_key("/v1/me", &key).await).0 == Some(100)
        })
        .await
    );
    clock.advance(Duration::minutes(10));
    let r = app.get_with_key("/v1/me", &key).await;
    assert_eq!(r.status(), 200);
    assert_eq!(remaining(&r), 199);
}

// ---- exact under concurrency --------------------------------------------------------------------

/// Sends `n` requests at once; returns the statuses.
async fn burst_of(n: usize, request: impl Fn() -> reqwest::RequestBuilder) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let r = request();
            tokio::spawn(async move { r.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::with_capacity(n);
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_200_concurrent_requests_never_exceed_the_budget_in_memory() {
    let clock = manual_clock();
    let app = Builder::default()
        .rate_limits(spec_limits(&clock))
        .start()
        .await;
    // By address: the Default tier, 35 at once.
    let url = app.url("/v1/me");
    let http = app.http.clone();
    let statuses = burst_of(200, || http.get(&url)).await;
    assert_eq!(count(&statuses, 401), 35, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 165);
    // By user, with an endpoint limit on top: 30 of 200 pass `POST /v1/posts`.
    let app = spec_app_with_every_endpoint(&clock).await;
    let (_, key) = app.subscriber().await;
    let url = app.url("/v1/posts");
    let http = app.http.clone();
    let statuses = burst_of(200, || {
        http.post(&url)
            .header("soku-api-key", &key)
            .json(&json!({}))
    })
    .await;
    assert_eq!(200 - count(&statuses, 429), 30, "{statuses:?}");
    // ... and charged the tier exactly 30 times.
    let r = app.get_with_key("/v1/me", &key).await;
    assert_eq!(remaining(&r), 200 - 30 - 1);
}

#[tokio::test]
async fn rate_limits_off_means_no_limits_and_no_headers() {
    let app = Builder::default()
        .rate_limits(RateLimitOptions::disabled())
        .start()
        .await;
    let (_, key) = app.subscriber().await;
    for _ in 0..50 {
        let r = app.http.get(app.url("/v1/me")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_no_limit_headers(&r, "off");
    }
    let r = app.get_with_key("/v1/me", &key).await;
    assert_eq!(r.status(), 200);
    assert_no_limit_headers(&r, "off");
}

/// A backend that always waits (as Redis does): the memory algorithm behind `check` only,
/// counting its calls.
struct WaitingLimiter {
    inner: soku_core::ratelimit::MemoryLimiter,
    checks: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl RateLimiter for WaitingLimiter {
    fn backend(&self) -> &'static str {
        "waiting"
    }

    async fn check(
        &self,
        check: &Check<'_>,
    ) -> Result<soku_core::ratelimit::Decision, soku_core::ratelimit::LimiterError> {
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::task::yield_now().await;
        self.inner.check(check).await
    }
}

#[tokio::test]
async fn rate_limits_a_backend_that_waits_counts_each_request_once() {
    let clock = manual_clock();
    let limiter = Arc::new(WaitingLimiter {
        inner: soku_core::ratelimit::MemoryLimiter::new(clock.clone()),
        checks: Default::default(),
    });
    let app = Builder::default()
        .rate_limits(RateLimitOptions {
            limiter: limiter.clone(),
            ..spec_limits(&clock)
        })
        .start()
        .await;
    let checks = || limiter.checks.load(std::sync::atomic::Ordering::SeqCst);
    let (uid, key) = app.subscriber().await;
    let token = app.token(&uid);
    let (_, unknown) =
        soku_core::model::new_api_key(&uid, None, soku_core::keys::KeyMode::Live, Utc::now());
    let http = &app.http;

    // Every way in, each counted by exactly one check: a key looked up in the store, the
    // same key from the cache, an ID token, no key, and a well-formed key the store does
    // not know (counted against the address).
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str, u64)> = vec![
        (
            "key, looked up",
            http.get(app.url("/v1/me")).header("soku-api-key", &key),
            200,
            "premium",
            199,
        ),
        (
            "key, cached",
            http.get(app.url("/v1/me")).header("soku-api-key", &key),
            200,
            "premium",
            198,
        ),
        (
            "ID token",
            http.get(app.url("/v1/api-keys")).bearer_auth(&token),
            200,
            "premium",
            197,
        ),
        ("no key", http.get(app.url("/v1/me")), 401, "default", 34),
        (
            "unknown key",
            http.get(app.url("/v1/me"))
                .header("soku-api-key", &unknown.secret),
            401,
            "default",
            33,
        ),
    ];
    for (i, (what, request, status, tier, left)) in cases.into_iter().enumerate() {
        let r = request.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{what}");
        let limit = if tier == "premium" { 100 } else { 25 };
        assert_eq!(assert_limit_headers(&r, limit, tier, what), left, "{what}");
        assert_eq!(checks(), i + 1, "{what}: one check");
    }

    // The key's budget runs out through the same path: 197 more pass, the next is refused.
    for n in 0..197u64 {
        let r = app.get_with_key("/v1/me", &key).await;
        assert_eq!(r.status(), 200, "request {n}");
        assert_eq!(remaining(&r), 196 - n);
    }
    let r = app.get_with_key("/v1/me", &key).await;
    expect_429(r, 1, "after the budget").await;
    assert_eq!(checks(), 5 + 197 + 1, "one check per request");
}

// ---- Redis ------------------------------------------------------------------------------------

/// The Redis backend with the server's default bound on each check (250 ms), or `timeout`.
fn redis_options(
    url: &str,
    prefix: &str,
    on_error: OnError,
    timeout: Option<std::time::Duration>,
) -> RateLimitOptions {
    let limiter = match timeout {
        Some(t) => RedisLimiter::connect_with_timeout(url, prefix, t),
        None => RedisLimiter::connect(url, prefix),
    };
    RateLimitOptions {
        limiter: Arc::new(limiter.unwrap()),
        on_error,
        ..RateLimitOptions::default()
    }
}

#[tokio::test]
async fn rate_limits_redis_backend_applies_the_same_algorithm() {
    let Some(url) = redis_url() else {
        eprintln!("SOKU_TEST_REDIS_URL not set: Redis backend test skipped");
        return;
    };
    let limiter = RedisLimiter::connect(&url, &redis_prefix("algo")).unwrap();
    let user = Subject::User("u1");
    // 1 per 60 s with a burst of 4: 5 at once, then refused for about a minute.
    let tier = Check {
        subject: user,
        quota: Quota::new(1, 4),
        endpoint: None,
    };
    for i in 0..5u64 {
        let d = limiter.check(&tier).await.unwrap();
        assert!(d.allowed, "request {i}");
        assert_eq!(d.remaining, 4 - i);
        // Redis's clock, not ours, but the same epoch.
        assert!((d.now_us - Utc::now().timestamp_micros()).abs() < 5_000_000);
        assert!(d.reset_us > d.now_us);
    }
    let d = limiter.check(&tier).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.hit, Some(LimitHit::Tier));
    assert_eq!(d.remaining, 0);
    assert!(
        d.retry_after_us > 55_000_000 && d.retry_after_us <= 60_000_000,
        "{d:?}"
    );
    assert_eq!(d.retry_after_secs(), 60);

    // An endpoint limit of 2 with a large tier: 2 pass, then the endpoint refuses and neither
    // bucket is charged by the refusals.
    let other = Subject::Ip("192.0.2.7".parse().unwrap());
    let e = EndpointLimit::new("POST", "/v1/posts", 2);
    let both = Check {
        subject: other,
        quota: Quota::new(1, 9),
        endpoint: Some((0, &e)),
    };
    assert_eq!(limiter.check(&both).await.unwrap().remaining, 9);
    assert_eq!(limiter.check(&both).await.unwrap().remaining, 8);
    for _ in 0..3 {
        let d = limiter.check(&both).await.unwrap();
        assert_eq!(d.hit, Some(LimitHit::Endpoint));
        assert_eq!(d.remaining, 8, "the tier was not charged");
        assert_eq!(d.retry_after_secs(), 30);
    }
    let tier_only = Check {
        endpoint: None,
        ..both
    };
    assert_eq!(limiter.check(&tier_only).await.unwrap().remaining, 7);
    // The other way round: the tier refuses, and the endpoint is not charged.
    let third = Subject::User("u3");
    let small = Check {
        subject: third,
        quota: Quota::new(1, 0),
        endpoint: Some((0, &e)),
    };
    assert!(limiter.check(&small).await.unwrap().allowed);
    for _ in 0..3 {
        assert_eq!(
            limiter.check(&small).await.unwrap().hit,
            Some(LimitHit::Tier)
        );
    }
    let big = Check {
        quota: Quota::new(1, 100),
        ..small
    };
    assert!(
        limiter.check(&big).await.unwrap().allowed,
        "endpoint has 1 left"
    );
    assert_eq!(
        limiter.check(&big).await.unwrap().hit,
        Some(LimitHit::Endpoint)
    );
    // The spec's tier quotas from idle: capacity = rate + burst.
    for q in [TierQuotas::SPEC.default, TierQuotas::SPEC.authenticated] {
        let id = format!("spec-{}", q.rate);
        let s = Subject::User(&id);
        let c = Check {
            subject: s,
            quota: q,
            endpoint: None,
        };
        let d = limiter.check(&c).await.unwrap();
        assert_eq!(d.remaining as i64, q.capacity() - 1);
    }
}

#[tokio::test]
async fn rate_limits_redis_bounds_buckets_stored_ahead_of_its_clock() {
    let Some(url) = redis_url() else {
        eprintln!("SOKU_TEST_REDIS_URL not set: Redis backend test skipped");
        return;
    };
    let prefix = redis_prefix("bounded");
    let limiter = RedisLimiter::connect(&url, &prefix).unwrap();
    let quota = Quota::new(60, 30);
    let endpoint = EndpointLimit::new("POST", "/v1/posts", 30);
    let check = Check {
        subject: Subject::User("u1"),
        quota,
        endpoint: Some((0, &endpoint)),
    };
    // Both buckets stored an hour ahead, as after Redis's clock stepped back an hour.
    let mut conn = redis::aio::ConnectionManager::new(redis::Client::open(url.as_str()).unwrap())
        .await
        .unwrap();
    let tier_key = format!("{prefix}rl:{{u:u1}}");
    let endpoint_key = format!("{tier_key}:POST /v1/posts");
    let ahead = Utc::now().timestamp_micros() + 3_600_000_000;
    for key in [&tier_key, &endpoint_key] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(ahead)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // Empty, not spent for an hour: one endpoint interval (2 s) to wait.
    let d = limiter.check(&check).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.hit, Some(LimitHit::Endpoint));
    assert_eq!(d.retry_after_secs(), 2, "{d:?}");
    // And stored so, with an expiry, so that they refill from now.
    for (key, tolerance) in [
        (&tier_key, quota.tolerance_us()),
        (&endpoint_key, endpoint.quota().tolerance_us()),
    ] {
        let stored: i64 = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(stored, d.now_us + tolerance, "{key}");
        let ttl_ms: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            ttl_ms > 0 && ttl_ms <= tolerance / 1000 + 1000,
            "{key}: {ttl_ms} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_200_concurrent_requests_never_exceed_the_budget_on_redis() {
    let Some(url) = redis_url() else {
        eprintln!("SOKU_TEST_REDIS_URL not set: Redis concurrency test skipped");
        return;
    };
    // Deny: a check Redis did not answer would show as a 503, not pass unnoticed. The bound is
    // generous because 200 requests at once on a small, shared test machine can keep a check
    // waiting for the executor longer than the production default; the outage test keeps it.
    let app = Builder::default()
        .rate_limits(redis_options(
            &url,
            &redis_prefix("conc"),
            OnError::Deny,
            Some(std::time::Duration::from_secs(5)),
        ))
        .routes(stand_in_routes())
        .start()
        .await;
    // A user whose budget refills once a minute (1 per 60 s, 50 at once): exact in real time.
    let (uid, key) = app.subscriber().await;
    app.store
        .set_rate_limit_override(&uid, Quota::new(1, 49), Utc::now())
        .await
        .unwrap();
    let url_me = app.url("/v1/me");
    let http = app.http.clone();
    let statuses = burst_of(200, || http.get(&url_me).header("soku-api-key", &key)).await;
    assert_eq!(count(&statuses, 200), 50, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 150, "only 200 and 429: {statuses:?}");

    // The endpoint limit on top (30 at once for POST /v1/posts, then one every 2 s), for
    // another user (premium: 200 at once, so the endpoint is what stops them).
    let (_, key2) = app.subscriber().await;
    let url_posts = app.url("/v1/posts");
    let started = std::time::Instant::now();
    let statuses = burst_of(200, || {
        http.post(&url_posts)
            .header("soku-api-key", &key2)
            .json(&json!({}))
    })
    .await;
    let refill = (started.elapsed().as_secs_f64() / 2.0).floor() as usize;
    let passed = 200 - count(&statuses, 429);
    assert!(
        (30..=30 + refill).contains(&passed),
        "{passed} passed (refill allowance {refill}): {statuses:?}"
    );

    // By address: the Default tier (35 at once, then one every 2.4 s).
    let started = std::time::Instant::now();
    let statuses = burst_of(200, || http.get(&url_me)).await;
    let refill = (started.elapsed().as_secs_f64() / 2.4).floor() as usize;
    let passed = count(&statuses, 401);
    assert!(
        (35..=35 + refill).contains(&passed),
        "{passed} passed (refill allowance {refill})"
    );
    assert_eq!(passed + count(&statuses, 429), 200);
}

#[tokio::test]
async fn rate_limits_two_server_processes_on_one_redis_share_one_budget() {
    let Some(url) = redis_url() else {
        eprintln!("SOKU_TEST_REDIS_URL not set: two-node Redis test skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "rlnodes").await;
    let prefix = redis_prefix("nodes");
    let env = [
        ("SOKU_REDIS_URL", url.as_str()),
        ("SOKU_REDIS_PREFIX", prefix.as_str()),
    ];
    let a = Server::start_with(&db, &[], &env);
    let b = Server::start_with(&db, &[], &env);
    let uid = subscriber(&db, "rl@example.com");
    let key = ok(&db, &["admin", "key", "create", "--uid", &uid]);
    let set = ok(
        &db,
        &[
            "admin",
            "ratelimit",
            "set",
            "--uid",
            &uid,
            "--rate",
            "1",
            "--burst",
            "9",
        ],
    );
    assert!(set.contains("1 requests per 60 s, burst 9"), "{set}");

    let http = reqwest::Client::new();
    let get = |server: &Server| {
        http.get(server.url("/v1/me"))
            .header("soku-api-key", &key)
            .send()
    };
    // 10 at once in all, alternating nodes: one sequence of Remaining.
    for i in 0..10u64 {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = get(node).await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(assert_limit_headers(&r, 1, "premium", "two nodes"), 9 - i);
    }
    for node in [&a, &b] {
        let r = get(node).await.unwrap();
        let details = expect_429(r, 60, "two nodes").await;
        assert_eq!(details["limit"], "tier");
    }
    for server in [&a, &b] {
        let logs = server.logs();
        let started = logs
            .iter()
            .find(|l| l.contains("rate limits on"))
            .expect("the startup log says how limits run");
        let v: Value = serde_json::from_str(started).unwrap();
        assert_eq!(v["fields"]["backend"], "redis", "{started}");
        assert_eq!(v["fields"]["on_error"], "allow", "{started}");
    }
    // The CLI clears it too.
    let cleared = ok(&db, &["admin", "ratelimit", "clear", "--uid", &uid]);
    assert!(cleared.contains("removed"), "{cleared}");
}

#[tokio::test]
async fn rate_limits_off_is_said_in_the_startup_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "rloff").await;
    let off = Server::start_with(&db, &[], &[("SOKU_RATE_LIMITS", "off")]);
    let on = Server::start_with(&db, &[], &[]);
    assert!(
        off.logs()
            .iter()
            .any(|l| l.contains("rate limiting is OFF (SOKU_RATE_LIMITS=off)")),
        "{:?}",
        off.logs()
    );
    assert!(!on.logs().iter().any(|l| l.contains("rate limiting is OFF")));
    let started = on
        .logs()
        .into_iter()
        .find(|l| l.contains("rate limits on"))
        .unwrap();
    let v: Value = serde_json::from_str(&started).unwrap();
    assert_eq!(v["fields"]["backend"], "memory");
    let http = reqwest::Client::new();
    let r = http.get(off.url("/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_no_limit_headers(&r, "off");
    let r = http.get(on.url("/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_limit_headers(&r, 25, "default", "on");
    // Bad settings stop the server with a message.
    let (success, _, stderr) = crate::binary::soku_env(
        &db,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("SOKU_TRUSTED_PROXIES", "10.0.0.0/8,not-a-range")],
    );
    assert!(!success);
    assert!(stderr.contains("SOKU_TRUSTED_PROXIES"), "{stderr}");
    let (success, _, stderr) = crate::binary::soku_env(
        &db,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("SOKU_RATE_LIMIT_ON_ERROR", "maybe")],
    );
    assert!(!success);
    assert!(stderr.contains("maybe"), "{stderr}");
}

#[tokio::test]
async fn rate_limits_an_outage_is_logged_once_not_once_per_refused_request() {
    if redis_url().is_none() {
        eprintln!("SOKU_TEST_REDIS_URL not set: outage log test skipped");
        return;
    }
    let mut redis = OwnRedis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "rloutagelog").await;
    let url = redis.url();
    let prefix = redis_prefix("outagelog");
    let server = Server::start_with(
        &db,
        &[],
        &[
            ("SOKU_REDIS_URL", url.as_str()),
            ("SOKU_REDIS_PREFIX", prefix.as_str()),
            ("SOKU_RATE_LIMIT_ON_ERROR", "deny"),
        ],
    );
    let http = reqwest::Client::new();
    let r = http.get(server.url("/v1/me")).send().await.unwrap();
    assert_eq!(
        r.status(),
        401,
        "Redis answers: counted, then refused for the missing key"
    );

    redis.stop();
    const REFUSED: usize = 6;
    for i in 0..REFUSED {
        let r = http.get(server.url("/v1/me")).send().await.unwrap();
        assert_eq!(r.status(), 503, "request {i} while Redis is down");
    }
    // Every request's access line is written after its answer; wait for all of them.
    let access_503 = |logs: &[String]| {
        logs.iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "request" && v["fields"]["status"] == 503)
            .count()
    };
    assert!(
        eventually(std::time::Duration::from_secs(10), || {
            let n = access_503(&server.logs());
            async move { n == REFUSED }
        })
        .await,
        "{:?}",
        server.logs()
    );
    let logs = server.logs();
    let outage = logs
        .iter()
        .filter(|l| l.contains("rate limiting unavailable"))
        .count();
    assert_eq!(
        outage, 1,
        "one line for the outage, not one per request: {logs:?}"
    );
    let per_request_errors: Vec<_> = logs
        .iter()
        .filter(|l| l.contains("\"ERROR\"") && !l.contains("rate limiting unavailable"))
        .collect();
    assert!(
        per_request_errors.is_empty(),
        "no error line per refused request: {per_request_errors:?}"
    );
}

/// A `redis-server` of our own on a free port, killed on drop.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    async fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        let port = self.port;
        assert!(
            eventually(std::time::Duration::from_secs(10), || async move {
                ping(port).await
            })
            .await,
            "redis-server answers on {port}"
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
}

/// A 503 of `deny` while Redis is down, for a request sent at `sent`: all four headers, none
/// left, and the reset one second (the `Retry-After`) after the server's answer.
fn assert_outage_refusal(r: &reqwest::Response, sent: DateTime<Utc>, limit: u64, tier: &str) {
    let what = format!("deny during the outage ({tier})");
    assert_eq!(assert_limit_headers(r, limit, tier, &what), 0, "{what}");
    let reset = DateTime::parse_from_rfc3339(&limit_headers(r).2.unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let second = Duration::seconds(1);
    // Rounded up to the millisecond.
    let latest = Utc::now() + second + Duration::milliseconds(1);
    assert!(
        reset >= sent + second && reset <= latest,
        "{what}: reset {reset}, sent {sent}"
    );
}

#[tokio::test]
async fn rate_limits_redis_outage_follows_the_policy_and_recovers() {
    if redis_url().is_none() {
        eprintln!("SOKU_TEST_REDIS_URL not set: Redis outage test skipped");
        return;
    }
    let mut redis = OwnRedis::start().await;
    let allow = Builder::default()
        .rate_limits(redis_options(
            &redis.url(),
            &redis_prefix("allow"),
            OnError::Allow,
            None,
        ))
        .start()
        .await;
    let deny = Builder::default()
        .rate_limits(redis_options(
            &redis.url(),
            &redis_prefix("deny"),
            OnError::Deny,
            None,
        ))
        .start()
        .await;
    // In each app a user with 3 at once, refilled once a minute.
    let mut keys = Vec::new();
    for app in [&allow, &deny] {
        let (uid, key) = app.subscriber().await;
        app.store
            .set_rate_limit_override(&uid, Quota::new(1, 2), Utc::now())
            .await
            .unwrap();
        for i in 0..3u64 {
            let r = app.get_with_key("/v1/me", &key).await;
            assert_eq!(r.status(), 200);
            assert_eq!(remaining(&r), 2 - i);
        }
        assert_eq!(app.get_with_key("/v1/me", &key).await.status(), 429);
        keys.push(key);
    }
    let (allow_key, deny_key) = (&keys[0], &keys[1]);

    redis.stop();
    // The spent budget lives in Redis: the node cannot see it. allow serves every request and
    // counts them in a stand-in of its own (full at the outage's start), whose headers drop by
    // one per request; the stand-in never refuses.
    for i in 0..4u64 {
        let started = std::time::Instant::now();
        let r = allow.get_with_key("/v1/me", allow_key).await;
        assert_eq!(r.status(), 200, "allow lets requests through");
        let left = assert_limit_headers(&r, 1, "premium", "allow during the outage");
        assert_eq!(left, 2u64.saturating_sub(i), "the stand-in's count");
        // deny: 503 with the envelope, none left, and the reset when to ask again.
        let sent = Utc::now();
        let r = deny.get_with_key("/v1/me", deny_key).await;
        assert_eq!(r.headers()["retry-after"], "1");
        assert_outage_refusal(&r, sent, 1, "premium");
        expect_error(r, 503, "service_unavailable", None).await;
        // Unauthenticated requests follow the policy as well.
        let sent = Utc::now();
        let r = deny.http.get(deny.url("/v1/me")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert_outage_refusal(&r, sent, 25, "default");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "a check does not hang on a dead Redis: {:?}",
            started.elapsed()
        );
    }
    assert!(allow.state.metrics.rate_limit_backend_errors() >= 4);
    let metrics = allow
        .http
        .get(allow.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("soku_rate_limit_backend_errors_total "))
        .unwrap();
    let errors: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(errors >= 4, "{line}");

    // Redis is back (empty: it keeps nothing on disk). Limiting resumes by itself.
    redis.restart().await;
    for (app, key) in [(&allow, allow_key), (&deny, deny_key)] {
        assert!(
            eventually(std::time::Duration::from_secs(10), || async {
                let errors = app.state.metrics.rate_limit_backend_errors();
                let r = app.get_with_key("/v1/me", key).await;
                r.status() == 200 && app.state.metrics.rate_limit_backend_errors() == errors
            })
            .await,
            "limiting resumes after Redis returns"
        );
        // That request took one of the 3; two more pass, then 429.
        for _ in 0..2 {
            assert_eq!(app.get_with_key("/v1/me", key).await.status(), 200);
        }
        let r = app.get_with_key("/v1/me", key).await;
        expect_429(r, 60, "after recovery").await;
    }

    // The stand-in was emptied when Redis answered again: a new outage counts from full.
    redis.stop();
    let r = allow.get_with_key("/v1/me", allow_key).await;
    assert_eq!(r.status(), 200);
    let left = assert_limit_headers(&r, 1, "premium", "a second outage");
    assert_eq!(left, 2, "the stand-in starts full again");
}
