//! Benchmark: resident memory of an idle `soku serve` with N scheduled targets waiting
//! (docs/POSTS-PERFORMANCE.md). The goal: flat in N.
//!
//! For each N: fills a fresh SQLite file with N test-mode targets due a day later
//! (`--per-submission` targets per submission, inserted here through `PostStore`), starts the
//! release `soku serve` on it (engine on, SOKU_LOG=warn), waits for /readyz, lets it idle
//! `--idle-secs` (the engine looks at the queue every second), then reads VmRSS and VmHWM from
//! /proc/<pid>/status and the CPU time it used while idle, and kills it.
//!
//! ```text
//! cargo build --release -p soku-server --bins --examples
//! target/release/examples/bench_memory [--counts 0,100000,1000000] [--idle-secs 5] \
//!     [--per-submission 10] [--soku-bin target/release/soku] [--max-insert-secs 600]
//! ```
//!
//! Every wait is bounded: the insertion by `--max-insert-secs` (the table then says how many
//! targets were inserted), readiness by 60 s.

use clap::Parser;
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PostContent, SubmissionStatus, TargetStatus};
use soku_core::queue::{NewSubmission, NewTarget};
use soku_core::{Clock, Store, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Resident memory of an idle server with N scheduled targets")]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "0,100000,1000000")]
    counts: Vec<usize>,
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Targets per submission (one per platform, at most 10).
    #[arg(long, default_value_t = 10)]
    per_submission: usize,
    /// The server binary; default: `soku` next to this example's directory.
    #[arg(long)]
    soku_bin: Option<PathBuf>,
    /// Stop inserting after this long, and measure with what was inserted.
    #[arg(long, default_value_t = 600)]
    max_insert_secs: u64,
    #[arg(long, default_value_t = 4)]
    insert_tasks: usize,
}

const USER: &str = "bench_memory_user";

fn fail(msg: &str) -> ! {
    eprintln!("bench_memory: {msg}");
    std::process::exit(2);
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// VmRSS and VmHWM in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| fail(&format!("/proc/{pid}/status: {e}")));
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3 of the line, i.e. index 0 here; utime is 14 -> 11.
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn submission(i: usize, per: usize, due: chrono::DateTime<chrono::Utc>) -> NewSubmission {
    let content = PostContent {
        text: Some(format!("scheduled bench post {i}")),
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
        created_at: SystemClock.now(),
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

/// Inserts up to `count` targets; returns how many were inserted before the deadline.
async fn fill(
    store: &Arc<dyn Store>,
    count: usize,
    per: usize,
    tasks: usize,
    limit: Duration,
) -> usize {
    let subs = count.div_ceil(per);
    let deadline = Instant::now() + limit;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    // Due a day later, spread over an hour: never due during the measurement.
    let base = SystemClock.now() + chrono::Duration::days(1);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (store, next, done) = (store.clone(), next.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= subs || Instant::now() > deadline {
                    break;
                }
                let n = per.min(count - i * per);
                let due =
                    base + chrono::Duration::milliseconds((i as i64 * 3_600_000) / subs as i64);
                store
                    .create_submission(&submission(i, n, due))
                    .await
                    .unwrap_or_else(|e| fail(&format!("create_submission: {e}")));
                done.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    let mut last = Instant::now();
    for h in handles {
        while !h.is_finished() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if last.elapsed() > Duration::from_secs(15) {
                println!("  ... {} targets inserted", done.load(Ordering::Relaxed));
                last = Instant::now();
            }
        }
        h.await.expect("insert task");
    }
    done.load(Ordering::Relaxed)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(&format!("no free port: {e}")))
}

struct Row {
    asked: usize,
    targets: usize,
    insert_secs: f64,
    db_mib: f64,
    ready_ms: u128,
    rss_kib: u64,
    hwm_kib: u64,
    idle_cpu_pct: f64,
    load: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.per_submission == 0 || args.per_submission > Platform::ALL.len() {
        fail("--per-submission must be 1 to 10");
    }
    let bin = args.soku_bin.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
        // target/release/examples/bench_memory -> target/release/soku
        exe.parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("soku"))
            .unwrap_or_else(|| fail("cannot locate the soku binary; pass --soku-bin"))
    });
    if !bin.is_file() {
        fail(&format!(
            "{} is not a file; build it (cargo build --release -p soku-server) or pass --soku-bin",
            bin.display()
        ));
    }
    let tck = 100.0; // USER_HZ on Linux
    let mut rows = Vec::new();
    for &n in &args.counts {
        println!("\n== N = {n} (load {})", loadavg());
        let dir = tempfile::Builder::new()
            .prefix("soku-bench-mem")
            .tempdir()
            .unwrap_or_else(|e| fail(&format!("temp dir: {e}")));
        let db = dir.path().join("soku.db");
        let url = format!("sqlite://{}", db.display());
        let started = Instant::now();
        let inserted = {
            let store = soku_store::open(&url)
                .await
                .unwrap_or_else(|e| fail(&format!("open: {e}")));
            store
                .create_user(USER, None, SystemClock.now())
                .await
                .unwrap_or_else(|e| fail(&format!("create_user: {e}")));
            let k = fill(
                &store,
                n,
                args.per_submission,
                args.insert_tasks,
                Duration::from_secs(args.max_insert_secs),
            )
            .await;
            drop(store);
            k
        };
        let insert_secs = started.elapsed().as_secs_f64();
        // Let the pool's connections close (and SQLite checkpoint the WAL).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let db_bytes: u64 = ["", "-wal", "-shm"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "inserted {inserted} targets in {insert_secs:.1} s; database {:.1} MiB",
            db_bytes as f64 / 1048576.0
        );

        let port = free_port();
        let mut child = tokio::process::Command::new(&bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                &url,
            ])
            .env("SOKU_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("spawn {}: {e}", bin.display())));
        let pid = child.id().unwrap_or_else(|| fail("no pid"));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let t0 = Instant::now();
        let mut ready = false;
        while t0.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = child.try_wait() {
                fail(&format!("soku serve exited: {status}"));
            }
            let answer = client
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !ready {
            let _ = child.kill().await;
            fail("soku serve did not become ready within 60 s");
        }
        let ready_ms = t0.elapsed().as_millis();
        let c0 = cpu_ticks(pid);
        tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
        let c1 = cpu_ticks(pid);
        let (rss, hwm) = memory(pid);
        let load = loadavg();
        let _ = child.kill().await;
        let _ = child.wait().await;
        let idle_cpu_pct = 100.0 * (c1 - c0) as f64 / tck / args.idle_secs as f64;
        println!(
            "ready in {ready_ms} ms; after {} s idle: VmRSS {:.1} MiB, VmHWM {:.1} MiB, idle CPU {idle_cpu_pct:.1} % of one core (load {load})",
            args.idle_secs,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        rows.push(Row {
            asked: n,
            targets: inserted,
            insert_secs,
            db_mib: db_bytes as f64 / 1048576.0,
            ready_ms,
            rss_kib: rss,
            hwm_kib: hwm,
            idle_cpu_pct,
            load,
        });
    }
    println!();
    println!(
        "{:>10} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9}  load avg",
        "asked", "targets", "insert s", "db MiB", "ready ms", "VmRSS MiB", "VmHWM MiB", "idle CPU",
    );
    for r in &rows {
        println!(
            "{:>10} {:>10} {:>9.1} {:>9.1} {:>9} {:>10.1} {:>10.1} {:>8.1}%  {}",
            r.asked,
            r.targets,
            r.insert_secs,
            r.db_mib,
            r.ready_ms,
            r.rss_kib as f64 / 1024.0,
            r.hwm_kib as f64 / 1024.0,
            r.idle_cpu_pct,
            r.load
        );
    }
}
