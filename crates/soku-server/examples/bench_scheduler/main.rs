//! Benchmark: the publishing engine with a burst of scheduled targets (docs/POSTS-PERFORMANCE.md).
//!
//! For each engine concurrency asked for, on a fresh database:
//! 1. inserts `--targets` test-mode targets as scheduled submissions of one user
//!    (`--per-submission` platforms each), with due times spread uniformly over `--spread-secs`
//!    starting `--lead-secs` after the insertion is expected to end (a short calibration
//!    insert, due a day later, estimates how long the insertion takes; those targets stay
//!    scheduled and are not counted);
//! 2. starts the real engine (`build_state` + `spawn_engine`, simulated platforms, latency 0)
//!    once the insertion is over, and waits until nothing is due any more;
//! 3. reads every post the simulated platforms received (`sandbox_list`) and reports the lag
//!    from each target's due time to the platform call (`received_at - due_at`, millisecond
//!    precision): p50, p90, p99, max; and targets published per second.
//!
//! ```text
//! cargo run --release -p soku-server --example bench_scheduler -- \
//!     [--db sqlite|postgres] [--pg-url URL] [--targets 100000] [--per-submission 10] \
//!     [--concurrency 32,128] [--spread-secs 60] [--lead-secs 20] [--timeout-secs 600]
//! ```
//!
//! `--spread-secs 0` makes every target due at the same instant: that measures how fast the
//! engine drains a backlog. PostgreSQL runs use a fresh schema (`fresh_schema_url`), dropped
//! afterwards with `psql`. Every wait is bounded (`--timeout-secs` after the last due time).

use chrono::{DateTime, Utc};
use clap::Parser;
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PostContent, SubmissionStatus, TargetStatus};
use soku_core::queue::{NewSubmission, NewTarget};
use soku_core::{Clock, Store, SystemClock};
use soku_engine::EngineConfig;
use soku_server::{ServerOptions, build_state, spawn_engine};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod measure;
use measure::{cpu_report, cpu_ticks, loadavg, percentile};

#[derive(Parser, Debug)]
#[command(about = "Scheduler lag and throughput with a burst of due targets")]
struct Args {
    /// `sqlite` (a fresh file in a temp dir) or `postgres` (a fresh schema).
    #[arg(long, default_value = "sqlite")]
    db: String,
    #[arg(
        long,
        env = "SOKU_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg_url: String,
    /// Targets due in the window.
    #[arg(long, default_value_t = 100_000)]
    targets: usize,
    /// Targets per submission (one per platform, at most 10).
    #[arg(long, default_value_t = 10)]
    per_submission: usize,
    /// Engine concurrencies to run, one fresh database each.
    #[arg(long, value_delimiter = ',', default_value = "32,128")]
    concurrency: Vec<usize>,
    /// Width of the window the due times are spread over; 0: all due at once.
    #[arg(long, default_value_t = 60)]
    spread_secs: u64,
    /// Idle time between the end of the insertion and the first due time.
    #[arg(long, default_value_t = 20)]
    lead_secs: u64,
    /// Give up this long after the last due time.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Insert tasks (default: 4 on SQLite, 16 on PostgreSQL).
    #[arg(long)]
    insert_tasks: Option<usize>,
    /// Measure only `create_submission` (what `POST /v1/posts` commits): for each value of
    /// `--concurrency`, that many concurrent writers insert `--targets` targets (due a day
    /// later) into a fresh database; prints submissions/s and the latency of one call.
    #[arg(long)]
    insert_only: bool,
}

const USER: &str = "bench_scheduler_user";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.per_submission == 0 || args.per_submission > Platform::ALL.len() {
        fail("--per-submission must be 1 to 10");
    }
    if args.targets == 0 || args.targets % args.per_submission != 0 {
        fail("--targets must be a positive multiple of --per-submission");
    }
    if args.db != "sqlite" && args.db != "postgres" {
        fail("--db must be sqlite or postgres");
    }
    println!(
        "bench_scheduler: {} targets ({} submissions x {} platforms), due over {} s, db {}, {} CPUs",
        args.targets,
        args.targets / args.per_submission,
        args.per_submission,
        args.spread_secs,
        args.db,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    if args.insert_only {
        for &writers in &args.concurrency {
            insert_only(&args, writers).await;
        }
        return;
    }
    let mut rows = Vec::new();
    for &concurrency in &args.concurrency {
        rows.push(run(&args, concurrency).await);
    }
    println!();
    println!(
        "{:<9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>7}",
        "db",
        "conc",
        "targets",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "late>1s",
        "publ./s",
        "drain s",
        "dupes"
    );
    for r in &rows {
        println!(
            "{:<9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10.0} {:>10.1} {:>7}",
            args.db,
            r.concurrency,
            r.published,
            r.p50,
            r.p90,
            r.p99,
            r.max,
            r.late,
            r.rate,
            r.drain_secs,
            r.dupes
        );
    }
    println!(
        "(lag = received_at - due_at; publ./s = targets / (last received - first received); \
         drain s = last received - last due time)"
    );
}

fn fail(msg: &str) -> ! {
    eprintln!("bench_scheduler: {msg}");
    std::process::exit(2);
}

struct Row {
    concurrency: usize,
    published: usize,
    p50: i64,
    p90: i64,
    p99: i64,
    max: i64,
    late: usize,
    rate: f64,
    drain_secs: f64,
    dupes: usize,
}

/// A fresh database; for PostgreSQL also the schema to drop afterwards.
async fn fresh_db(args: &Args) -> (String, Option<tempfile::TempDir>, Option<String>) {
    if args.db == "sqlite" {
        let dir = tempfile::Builder::new()
            .prefix("soku-bench-sched")
            .tempdir()
            .unwrap_or_else(|e| fail(&format!("temp dir: {e}")));
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        (url, Some(dir), None)
    } else {
        let url = soku_store::postgres::fresh_schema_url(&args.pg_url, "bench_sched")
            .await
            .unwrap_or_else(|e| fail(&format!("fresh schema: {e}")));
        let schema = url
            .rsplit("search_path%3D")
            .next()
            .map(str::to_owned)
            .unwrap_or_else(|| fail("no schema in the fresh URL"));
        (url, None, Some(schema))
    }
}

fn drop_schema(pg_url: &str, schema: &str) {
    let ok = std::process::Command::new("psql")
        .args([
            pg_url,
            "-q",
            "-c",
            &format!("DROP SCHEMA \"{schema}\" CASCADE"),
        ])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("bench_scheduler: could not drop schema {schema}; drop it by hand");
    }
}

fn submission(i: usize, per: usize, due: DateTime<Utc>, now: DateTime<Utc>) -> NewSubmission {
    let content = PostContent {
        text: Some(format!("bench post {i}")),
        media_type: MediaType::Text,
        image_urls: vec![],
        video_url: None,
    };
    let platforms = &Platform::ALL[..per];
    let post_json = serde_json::json!({
        "content": { "text": content.text, "platform": platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>() },
        "scheduledTime": soku_core::time::rfc3339_millis(due),
    });
    NewSubmission {
        id: soku_core::keys::uuid_v4(),
        user_id: USER.into(),
        mode: KeyMode::Test,
        status: SubmissionStatus::Scheduled,
        post_json: post_json.to_string(),
        content_json: serde_json::to_string(&content).expect("content serialises"),
        scheduled_at: Some(due),
        created_at: now,
        targets: platforms
            .iter()
            .enumerate()
            .map(|(pos, p)| NewTarget {
                id: soku_core::keys::uuid_v4(),
                position: pos as i64,
                platform: *p,
                account_ref: None,
                account_id: format!("test_{}", p.as_str()),
                status: TargetStatus::Scheduled,
                due_at: due,
                text: None,
            })
            .collect(),
        idempotency: None,
        media_ids: Vec::new(),
    }
}

/// Inserts `count` submissions with `tasks` concurrent writers; `due(i)` is submission i's
/// due time. Returns (target id -> due time) and the elapsed time.
async fn insert(
    store: &Arc<dyn Store>,
    count: usize,
    per: usize,
    tasks: usize,
    due: Arc<dyn Fn(usize) -> DateTime<Utc> + Send + Sync>,
) -> (HashMap<String, DateTime<Utc>>, Duration) {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (store, next, due) = (store.clone(), next.clone(), due.clone());
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                // A permutation, so that insertion order is not due order.
                let k = (i * 7919) % count;
                let s = submission(k, per, due(k), SystemClock.now());
                store
                    .create_submission(&s)
                    .await
                    .unwrap_or_else(|e| fail(&format!("create_submission: {e}")));
                mine.extend(s.targets.into_iter().map(|t| (t.id, t.due_at)));
            }
            mine
        }));
    }
    let mut all = HashMap::with_capacity(count * per);
    for h in handles {
        all.extend(h.await.expect("insert task"));
    }
    (all, started.elapsed())
}

/// `--insert-only`: throughput and latency of `create_submission` with `writers` tasks.
async fn insert_only(args: &Args, writers: usize) {
    let (url, _dir, schema) = fresh_db(args).await;
    let store = soku_store::open(&url)
        .await
        .unwrap_or_else(|e| fail(&format!("open {}: {e}", soku_store::redact_url(&url))));
    store
        .create_user(USER, None, SystemClock.now())
        .await
        .unwrap_or_else(|e| fail(&format!("create_user: {e}")));
    let per = args.per_submission;
    let subs = args.targets / per;
    let due = SystemClock.now() + chrono::Duration::days(1);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_ticks();
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..writers {
        let (store, next) = (store.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= subs {
                    break;
                }
                let s = submission(i, per, due, SystemClock.now());
                let t = Instant::now();
                store
                    .create_submission(&s)
                    .await
                    .unwrap_or_else(|e| fail(&format!("create_submission: {e}")));
                lat.push(t.elapsed().as_micros() as i64);
            }
            lat
        }));
    }
    let mut lat = Vec::with_capacity(subs);
    for h in handles {
        lat.extend(h.await.expect("insert task"));
    }
    let took = started.elapsed().as_secs_f64();
    let cpu1 = cpu_ticks();
    lat.sort_unstable();
    println!(
        "{} {writers:>4} writers: {subs} submissions ({} targets each) in {took:.1} s = {:.0} submissions/s; \
         one call p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; {}; load {}",
        args.db,
        per,
        subs as f64 / took,
        percentile(&lat, 50.0) as f64 / 1000.0,
        percentile(&lat, 99.0) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        cpu_report(cpu0, cpu1, took),
        loadavg()
    );
    drop(store);
    if let Some(schema) = schema {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop_schema(&args.pg_url, &schema);
    }
}

async fn run(args: &Args, concurrency: usize) -> Row {
    println!(
        "\n== concurrency {concurrency} ({}; load {})",
        args.db,
        loadavg()
    );
    let (url, _dir, schema) = fresh_db(args).await;
    let store = soku_store::open(&url)
        .await
        .unwrap_or_else(|e| fail(&format!("open {}: {e}", soku_store::redact_url(&url))));
    store
        .create_user(USER, Some("bench@example.com"), SystemClock.now())
        .await
        .unwrap_or_else(|e| fail(&format!("create_user: {e}")));
    let per = args.per_submission;
    let subs = args.targets / per;
    let tasks = args
        .insert_tasks
        .unwrap_or(if args.db == "sqlite" { 4 } else { 16 });

    // Calibration: a few submissions due a day later (they stay scheduled, never published).
    let calib = (subs / 100).max(20);
    let day = SystemClock.now() + chrono::Duration::days(1);
    let (_, took) = insert(&store, calib, per, tasks, Arc::new(move |_: usize| day)).await;
    let estimate = took.mul_f64(subs as f64 / calib as f64 * 1.3) + Duration::from_secs(3);
    let start = SystemClock.now()
        + chrono::Duration::from_std(estimate + Duration::from_secs(args.lead_secs)).unwrap();
    let spread_ms = args.spread_secs as i64 * 1000;
    let last_due = start + chrono::Duration::milliseconds(spread_ms);
    println!(
        "calibration: {calib} submissions in {:.2} s; insertion estimated at {:.1} s; first due at +{:.1} s",
        took.as_secs_f64(),
        estimate.as_secs_f64(),
        (start - SystemClock.now()).num_milliseconds() as f64 / 1000.0
    );

    let due =
        move |k: usize| start + chrono::Duration::milliseconds(spread_ms * k as i64 / subs as i64);
    let (dues, took) = insert(&store, subs, per, tasks, Arc::new(due)).await;
    let margin = (start - SystemClock.now()).num_milliseconds();
    println!(
        "inserted {} targets in {:.1} s ({:.0} targets/s, {tasks} tasks); first due in {:.1} s",
        dues.len(),
        took.as_secs_f64(),
        dues.len() as f64 / took.as_secs_f64(),
        margin as f64 / 1000.0
    );
    if margin < 2000 {
        fail("the insertion ended less than 2 s before the first due time: raise --lead-secs");
    }

    let media_dir = tempfile::tempdir().unwrap_or_else(|e| fail(&format!("tempdir: {e}")));
    let state = build_state(
        store.clone(),
        Arc::new(SystemClock),
        ServerOptions {
            public_url: "http://127.0.0.1".into(),
            firebase: None,
            secret_key: None,
            simulated_latency: Duration::ZERO,
            rate_limits: soku_server::ratelimit::RateLimitOptions {
                enabled: false,
                ..Default::default()
            },
            trusted_proxies: Vec::new(),
            live_connectors: Default::default(),
            connect_redirect_origins: None,
            // No media in this benchmark's posts: an empty store in a temporary directory.
            media: soku_server::service::media::MediaHost {
                library: soku_media::MediaLibrary {
                    storage: soku_media::MediaStorage::local(&media_dir.path().join("media"))
                        .await
                        .unwrap_or_else(|e| fail(&format!("media store: {e}"))),
                    store: store.clone(),
                    base_url: "http://127.0.0.1".into(),
                },
                importer: soku_platforms::import::Importer::new(
                    Default::default(),
                    Duration::from_secs(60),
                    Duration::from_secs(30),
                ),
                upload_idle: Duration::from_secs(30),
            },
            github_secret_scanning_keys_url: soku_server::auth::github::DEFAULT_KEYS_URL.into(),
        },
    )
    .await
    .unwrap_or_else(|e| fail(&format!("build_state: {e}")));
    let mut cpu0 = None;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = spawn_engine(
        &state,
        EngineConfig {
            concurrency,
            ..EngineConfig::default()
        },
        stopped,
    );

    // Wait until nothing is due before the calibration targets (a day later): every target
    // of the window is then published (or failed). `next_due` is two indexed MIN queries;
    // how far it lies behind the clock is the age of the backlog.
    let deadline = last_due + chrono::Duration::seconds(args.timeout_secs as i64);
    let horizon = chrono::Duration::hours(1);
    let mut last_print = Instant::now();
    loop {
        let now = SystemClock.now();
        if cpu0.is_none() && now >= start {
            cpu0 = Some((cpu_ticks(), Instant::now()));
        }
        let next = store
            .next_due()
            .await
            .unwrap_or_else(|e| fail(&format!("next_due: {e}")));
        match next {
            Some(t) if t < now + horizon => {}
            _ => break,
        }
        if now > deadline {
            eprintln!("bench_scheduler: timed out; reporting what was published");
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(5) && now >= start {
            let behind = next.map(|t| (now - t).num_milliseconds()).unwrap_or(0);
            println!(
                "  t=+{:.0} s: oldest waiting target is {:.1} s overdue (load {})",
                (now - start).num_milliseconds() as f64 / 1000.0,
                behind.max(0) as f64 / 1000.0,
                loadavg()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu1 = cpu_ticks();
    let (cpu0, t0) = cpu0.unwrap_or((cpu1, Instant::now()));
    let window = t0.elapsed().as_secs_f64().max(0.001);
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), engine).await;

    // Everything the simulated platforms received.
    let mut lags = Vec::with_capacity(dues.len());
    let (mut first, mut last) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
    let mut dupes = 0;
    let mut unknown = 0;
    let mut by_second: Vec<Vec<i64>> = vec![Vec::new(); args.spread_secs.max(1) as usize / 10 + 1];
    for p in &Platform::ALL[..per] {
        let posts = store
            .sandbox_list(USER, *p, (dues.len() + 1000) as i64)
            .await
            .unwrap_or_else(|e| fail(&format!("sandbox_list: {e}")));
        for post in posts {
            let Some(due) = dues.get(&post.marker) else {
                unknown += 1;
                continue;
            };
            if post.create_count > 1 {
                dupes += 1;
            }
            let lag = (post.received_at - *due).num_milliseconds();
            lags.push(lag);
            let bucket = ((*due - start).num_milliseconds().max(0) / 10_000) as usize;
            if let Some(b) = by_second.get_mut(bucket) {
                b.push(lag);
            }
            first = Some(first.map_or(post.received_at, |f| f.min(post.received_at)));
            last = Some(last.map_or(post.received_at, |l| l.max(post.received_at)));
        }
    }
    lags.sort_unstable();
    let published = lags.len();
    if published != dues.len() {
        eprintln!(
            "bench_scheduler: WARNING: {} of {} targets reached the platform",
            published,
            dues.len()
        );
    }
    if unknown > 0 {
        eprintln!("bench_scheduler: WARNING: {unknown} sandbox posts of unknown targets");
    }
    let span = match (first, last) {
        (Some(f), Some(l)) => (l - f).num_milliseconds().max(1) as f64 / 1000.0,
        _ => f64::NAN,
    };
    let row = Row {
        concurrency,
        published,
        p50: percentile(&lags, 50.0),
        p90: percentile(&lags, 90.0),
        p99: percentile(&lags, 99.0),
        max: lags.last().copied().unwrap_or(0),
        late: lags.iter().filter(|&&l| l > 1000).count(),
        rate: published as f64 / span,
        drain_secs: last.map_or(f64::NAN, |l| {
            (l - last_due).num_milliseconds() as f64 / 1000.0
        }),
        dupes,
    };
    println!(
        "published {published}: lag p50 {} ms, p90 {} ms, p99 {} ms, max {} ms; {} later than 1 s; \
         {:.0} targets/s over {:.1} s; negative lags {}",
        row.p50,
        row.p90,
        row.p99,
        row.max,
        row.late,
        row.rate,
        span,
        lags.iter().filter(|&&l| l < 0).count()
    );
    if args.spread_secs >= 10 {
        let line: Vec<String> = by_second
            .iter_mut()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(i, b)| {
                b.sort_unstable();
                format!("{}-{}s: {}", i * 10, i * 10 + 10, percentile(b, 99.0))
            })
            .collect();
        println!(
            "p99 lag (ms) by due time within the window: {}",
            line.join(", ")
        );
    }
    println!(
        "CPU from the first due time to the end ({window:.0} s): {}",
        cpu_report(cpu0, cpu1, window)
    );
    println!("(load at the end: {})", loadavg());
    drop(state);
    drop(store);
    if let Some(schema) = schema {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop_schema(&args.pg_url, &schema);
    }
    row
}
