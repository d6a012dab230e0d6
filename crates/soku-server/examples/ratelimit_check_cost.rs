//! The cost of one rate-limit check, per backend (a benchmark, not a test).
//!
//! ```sh
//! cargo run --release -p soku-server --example ratelimit_check_cost            # memory only
//! SOKU_REDIS_URL=redis://127.0.0.1:6379 \
//!   cargo run --release -p soku-server --example ratelimit_check_cost          # and Redis
//! ```
//!
//! Memory: checks through the `RateLimiter` trait (boxed future, system clock), as the
//! middleware makes them: one user over and over, then 10,000 users in turn (a larger map),
//! then two threads on one user (lock contention). Redis: sequential checks (one round trip
//! each: the latency of a check) and 64 concurrent callers (throughput of one node's
//! connection). Quotas are large enough that every check is admitted and charged, which is
//! the common path. Keys go under a fresh prefix and expire by themselves.

use soku_core::SystemClock;
use soku_core::ratelimit::{Check, EndpointLimit, MemoryLimiter, Quota, RateLimiter, Subject};
use soku_server::ratelimit::redis::RedisLimiter;
use std::sync::Arc;
use std::time::Instant;

const BIG: Quota = Quota::new(1_000_000, 10_000_000);

fn per_op(elapsed: std::time::Duration, n: u64) -> f64 {
    elapsed.as_nanos() as f64 / n as f64
}

async fn run<L: RateLimiter + ?Sized>(limiter: &L, subjects: &[Subject<'_>], n: u64) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let check = Check {
            subject: subjects[(i as usize) % subjects.len()],
            quota: BIG,
            endpoint: None,
        };
        let d = limiter.check(&check).await.expect("the backend answers");
        assert!(d.allowed, "the benchmark's quota ran out");
    }
    per_op(started.elapsed(), n)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let one = vec![Subject::User("bench-user")];
        let ids: Vec<String> = (0..10_000).map(|i| format!("bench-user-{i}")).collect();
        let many: Vec<Subject<'_>> = ids.iter().map(|id| Subject::User(id)).collect();

        let memory = Arc::new(MemoryLimiter::new(Arc::new(SystemClock)));
        run(memory.as_ref(), &one, 200_000).await; // warm-up
        let n = 2_000_000;
        let one_user = run(memory.as_ref(), &one, n).await;
        let many_users = run(memory.as_ref(), &many, n).await;
        // The same without the trait's boxed future and the clock read: what they cost.
        let bare = Subject::User("bench-bare");
        let now = soku_core::ratelimit::now_us(&SystemClock);
        let started = Instant::now();
        for _ in 0..n {
            let c = Check {
                subject: bare,
                quota: BIG,
                endpoint: None,
            };
            assert!(memory.check_at(&c, now).allowed);
        }
        let bare_check = per_op(started.elapsed(), n);
        let started = Instant::now();
        let mut sink = 0i64;
        for _ in 0..n {
            sink ^= soku_core::ratelimit::now_us(&SystemClock);
        }
        let clock_read = per_op(started.elapsed(), n);
        assert_ne!(sink, 1);
        // With an endpoint limit too (two buckets, one decision). The endpoint admits
        // 1,000,000 at once, so fewer checks here.
        let e = EndpointLimit::new("POST", "/v1/posts", 1_000_000);
        let other = Subject::User("bench-endpoint");
        let n_endpoint = 900_000;
        let started = Instant::now();
        for _ in 0..n_endpoint {
            let c = Check {
                subject: other,
                quota: BIG,
                endpoint: Some((0, &e)),
            };
            assert!(memory.check(&c).await.unwrap().allowed);
        }
        let with_endpoint = per_op(started.elapsed(), n_endpoint);
        // Two threads, one user: both take the same shard's lock.
        let started = Instant::now();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let memory = memory.clone();
                std::thread::spawn(move || {
                    let s = Subject::User("bench-contended");
                    for _ in 0..n / 2 {
                        let c = Check {
                            subject: s,
                            quota: BIG,
                            endpoint: None,
                        };
                        assert!(
                            memory
                                .check_at(&c, soku_core::ratelimit::now_us(&SystemClock))
                                .allowed
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let contended = per_op(started.elapsed(), n);
        println!("memory backend, {n} checks each (ns per check):");
        println!("  one user, one thread            {one_user:8.0} ns");
        println!("  10,000 users in turn            {many_users:8.0} ns");
        println!(
            "  of which: check_at alone        {bare_check:8.0} ns (no clock read, no boxed future)"
        );
        println!("  of which: one clock read        {clock_read:8.0} ns");
        println!("  one user, tier + endpoint       {with_endpoint:8.0} ns  ({n_endpoint} checks)");
        println!("  one user, 2 threads (wall/op)   {contended:8.0} ns");

        let Ok(url) = std::env::var("SOKU_REDIS_URL") else {
            println!("SOKU_REDIS_URL not set: Redis not measured");
            return;
        };
        let prefix = format!("soku-bench:{}:", soku_core::keys::random_id("", 8));
        let redis = Arc::new(RedisLimiter::connect(&url, &prefix).expect("a Redis URL"));
        run(redis.as_ref(), &one, 2_000).await; // connect, load the script
        let n = 20_000;
        let started = Instant::now();
        for _ in 0..n {
            redis.ping().await.expect("PING");
        }
        let ping = per_op(started.elapsed(), n);
        let sequential = run(redis.as_ref(), &one, n).await;
        let sequential_many = run(redis.as_ref(), &many, n).await;
        let callers = 64u64;
        let started = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|c| {
                let redis = redis.clone();
                tokio::spawn(async move {
                    let id = format!("bench-concurrent-{}", c % 8);
                    let s = vec![Subject::User(&id)];
                    run(redis.as_ref(), &s, n / callers).await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let concurrent = started.elapsed();
        let done = callers * (n / callers);
        println!(
            "redis backend ({}), {n} checks each:",
            soku_store::redact_url(&url)
        );
        println!(
            "  PING, same connection           {:8.1} µs (the round trip alone)",
            ping / 1000.0
        );
        println!(
            "  sequential, one user            {:8.1} µs per check",
            sequential / 1000.0
        );
        println!(
            "  sequential, 10,000 users        {:8.1} µs per check",
            sequential_many / 1000.0
        );
        println!(
            "  {callers} concurrent callers          {:8.0} checks/s ({:.1} µs per check, wall)",
            done as f64 / concurrent.as_secs_f64(),
            per_op(concurrent, done) / 1000.0
        );
    });
}
