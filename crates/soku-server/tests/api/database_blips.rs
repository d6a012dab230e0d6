//! Publishing through database blips (PostgreSQL only): connections terminated while a burst
//! of targets publishes must not leave targets `publishing` until their lease expires, nor
//! publish any of them twice.

use crate::posts::{submit, text_post};
use crate::util::Builder;
use serde_json::json;
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::posts::TargetStatus;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Posts in the burst; each goes to two platforms.
const POSTS: usize = 100;
const PLATFORMS: [Platform; 2] = [Platform::X, Platform::Threads];

/// The schema of the test's store: the `t_api_…` schema whose users include `uid`.
async fn schema_of(admin: &sqlx::PgPool, uid: &str) -> String {
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 't\\_api\\_%'",
    )
    .fetch_all(admin)
    .await
    .unwrap();
    for schema in schemas {
        let found: Result<i64, _> = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM \"{schema}\".users WHERE id = $1"
        ))
        .bind(uid)
        .fetch_one(admin)
        .await;
        if found.is_ok_and(|n| n == 1) {
            return schema;
        }
    }
    panic!("no schema holds the test's user");
}

/// Terminates the backends working in `schema` (holding a lock on one of its tables): only
/// this test's connections, never another test's. Returns how many it ended.
async fn terminate(admin: &sqlx::PgPool, schema: &str) -> u64 {
    let rows = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT l.pid FROM pg_locks l \
         JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()) p",
    )
    .bind(schema)
    .fetch_all(admin)
    .await
    .unwrap();
    rows.iter()
        .filter(|r| r.try_get::<bool, _>(0).unwrap_or(false))
        .count() as u64
}

/// Every target by id once all are final (the test's own reads may meet a terminated
/// connection too: then not yet).
async fn settled(
    app: &crate::util::TestApp,
    uid: &str,
    ids: &[String],
) -> Option<HashMap<String, soku_core::queue::TargetRecord>> {
    let mut targets = HashMap::new();
    for id in ids {
        let Ok(Some(s)) = app.store.get_submission(uid, KeyMode::Test, id).await else {
            return None;
        };
        for t in s.targets {
            targets.insert(t.id.clone(), t);
        }
    }
    let done = targets.len() == POSTS * PLATFORMS.len()
        && targets.values().all(|t| {
            !matches!(
                t.status,
                TargetStatus::Queued | TargetStatus::Scheduled | TargetStatus::Publishing
            )
        });
    done.then_some(targets)
}

#[tokio::test]
async fn outcomes_survive_terminated_connections_without_waiting_for_the_lease() {
    let Some(url) = std::env::var("SOKU_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: SOKU_TEST_POSTGRES_URL is not set");
        return;
    };
    // The engine starts once the burst is queued.
    let app = Builder::default().without_engine().start().await;
    let (uid, key) = app.test_subscriber().await;
    let mut ids = Vec::with_capacity(POSTS);
    let bodies: Vec<_> = (0..POSTS)
        .map(|i| text_post(&format!("burst {i}"), json!(["x", "threads"])))
        .collect();
    for chunk in bodies.chunks(10) {
        let sent = chunk.iter().map(|body| submit(&app, &key, body));
        ids.extend(futures_util::future::join_all(sent).await);
    }

    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let schema = schema_of(&admin, &uid).await;

    // Connections are terminated every 20 ms from before the engine starts until the burst
    // has settled or 4 s have passed.
    let stop = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicU64::new(0));
    let killer = {
        let (stop, terminated, schema) = (stop.clone(), terminated.clone(), schema.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(4) {
                let n = terminate(&admin, &schema).await;
                if n > 0 {
                    terminated.fetch_add(n, Ordering::Relaxed);
                }
                last = Instant::now();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            last
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_stop_engine, engine_stopped) = tokio::sync::watch::channel(false);
    let config = soku_engine::EngineConfig {
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        ..soku_engine::EngineConfig::default()
    };
    assert_eq!(config.lease, Duration::from_secs(120), "the default lease");
    soku_server::spawn_engine(&app.state, config, engine_stopped);

    let give_up = Instant::now() + Duration::from_secs(30);
    while Instant::now() < give_up && settled(&app, &uid, &ids).await.is_none() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let last_kill = killer.await.unwrap();
    let terminated = terminated.load(Ordering::Relaxed);
    // Within 10 s of the last termination (the database answers right after each one).
    let deadline = last_kill + Duration::from_secs(10);
    let targets = loop {
        if let Some(t) = settled(&app, &uid, &ids).await {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "targets still unsettled 10 s after the last terminated connection \
             ({terminated} terminated)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let settle = last_kill.elapsed();
    eprintln!(
        "{} targets settled; {terminated} connections terminated; settled {settle:?} after the last termination",
        targets.len()
    );
    assert!(terminated > 0, "the burst met terminated connections");
    for t in targets.values() {
        assert_eq!(t.status, TargetStatus::Published, "{t:?}");
    }

    // Each target reached its platform exactly once.
    for platform in PLATFORMS {
        let received = app.store.sandbox_list(&uid, platform, 1000).await.unwrap();
        assert_eq!(received.len(), POSTS, "{platform}");
        for post in &received {
            assert_eq!(post.create_count, 1, "published twice: {post:?}");
            let target = &targets[&post.marker];
            assert_eq!(target.platform, platform);
            assert_eq!(target.platform_post_id.as_deref(), Some(post.id.as_str()));
        }
    }
}
