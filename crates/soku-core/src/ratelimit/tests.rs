//! GCRA, the policy and the memory backend.
use super::memory::SHARDS;
use super::*;
use crate::clock::ManualClock;
use chrono::{TimeZone, Utc};
use std::sync::Arc;

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
