//! What the engine tells operators (issue 21): publish outcomes, attempts and retries, the
//! lag from a target's due time to its platform call, token refreshes, and the queue as the
//! database holds it. Rendered in the Prometheus text format by the server's `/metrics`.
//!
//! Every label comes from a bounded set: the platform and the key mode are enums; an error
//! code is kept only when it looks like one (lowercase letters, digits and `_`, at most
//! `MAX_CODE_LEN` characters) and only the first `MAX_CODES` distinct codes get their own
//! series; anything else is counted as `other`. No user, post or account id is ever a label.

use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::posts::TargetStatus;
use soku_core::queue::{QueueStats, TargetOutcome};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// The lag histogram's upper bounds, in seconds.
pub const LAG_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];
/// The longest error code kept as a label.
pub const MAX_CODE_LEN: usize = 40;
/// Distinct error codes with their own series; more are counted as `other`.
pub const MAX_CODES: usize = 64;

/// A platform and a key mode (`KeyMode::as_str`, as `KeyMode` has no order).
type Key = (Platform, &'static str);

#[derive(Default)]
struct Histogram {
    buckets: [u64; LAG_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    attempts: BTreeMap<Key, u64>,
    published: BTreeMap<Key, u64>,
    failed: BTreeMap<(Key, String), u64>,
    unknown: BTreeMap<(Key, String), u64>,
    retries: BTreeMap<(Key, String), u64>,
    lag: BTreeMap<Key, Histogram>,
    refreshes: BTreeMap<(Platform, &'static str), u64>,
    codes: BTreeSet<String>,
}

/// The engine's counters, shared by the engine, the token refresher and `/metrics`.
#[derive(Default)]
pub struct EngineMetrics {
    inner: Mutex<Counters>,
}

impl EngineMetrics {
    fn with<R>(&self, f: impl FnOnce(&mut Counters) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// An attempt ended with `outcome` (one call per claimed target).
    pub fn outcome(&self, platform: Platform, mode: KeyMode, outcome: &TargetOutcome) {
        let key = (platform, mode.as_str());
        self.with(|c| {
            *c.attempts.entry(key).or_default() += 1;
            let (map, code) = match outcome {
                TargetOutcome::Published { .. } => {
                    *c.published.entry(key).or_default() += 1;
                    return;
                }
                TargetOutcome::Retry { error, .. } => (&mut c.retries, &error.code),
                TargetOutcome::Failed(error) => (&mut c.failed, &error.code),
                TargetOutcome::Unknown(error) => (&mut c.unknown, &error.code),
            };
            let code = bounded_code(&mut c.codes, code);
            *map.entry((key, code)).or_default() += 1;
        })
    }

    /// The platform is about to be called for a target that was due `lag` ago.
    pub fn lag(&self, platform: Platform, mode: KeyMode, lag: Duration) {
        let secs = lag.as_secs_f64();
        self.with(|c| {
            let h = c.lag.entry((platform, mode.as_str())).or_default();
            for (i, bound) in LAG_BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        })
    }

    /// A token refresh asked the platform: `result` is `refreshed`, `needs_reconnect` (the
    /// platform refused) or `unavailable` (it could not be asked, or the tokens not saved).
    pub fn refresh(&self, platform: Platform, result: &'static str) {
        self.with(|c| *c.refreshes.entry((platform, result)).or_default() += 1)
    }

    /// Counters, for tests: published targets of the platform and mode.
    pub fn published(&self, platform: Platform, mode: KeyMode) -> u64 {
        self.with(|c| {
            c.published
                .get(&(platform, mode.as_str()))
                .copied()
                .unwrap_or(0)
        })
    }

    /// The engine's counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        self.with(|c| {
            header(
                out,
                "soku_publish_attempts_total",
                "counter",
                "Attempts at a target that came to an outcome (published, retry, failed, unknown).",
            );
            for ((p, m), n) in &c.attempts {
                row(out, "soku_publish_attempts_total", *p, m, None, *n);
            }
            header(
                out,
                "soku_targets_published_total",
                "counter",
                "Targets published.",
            );
            for ((p, m), n) in &c.published {
                row(out, "soku_targets_published_total", *p, m, None, *n);
            }
            for (name, help, map) in [
                (
                    "soku_targets_failed_total",
                    "Targets that ended failed, by error code.",
                    &c.failed,
                ),
                (
                    "soku_targets_unknown_total",
                    "Targets that ended unknown (may have been published; never retried), by error code.",
                    &c.unknown,
                ),
                (
                    "soku_publish_retries_total",
                    "Attempts that failed retryably and were scheduled again, by error code.",
                    &c.retries,
                ),
            ] {
                header(out, name, "counter", help);
                for (((p, m), code), n) in map {
                    row(out, name, *p, m, Some(code), *n);
                }
            }

            let name = "soku_publish_lag_seconds";
            header(
                out,
                name,
                "histogram",
                "Time from a target's due time (scheduled time, acceptance, or retry time) to its platform call.",
            );
            for ((p, m), h) in &c.lag {
                let labels = format!("platform=\"{}\",mode=\"{m}\"", p.as_str());
                for (i, bound) in LAG_BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                        h.buckets[i]
                    );
                }
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
            }

            let name = "soku_token_refreshes_total";
            header(
                out,
                name,
                "counter",
                "Token refreshes that asked the platform, by result: refreshed, needs_reconnect (refused), unavailable (failed; tried again later).",
            );
            for ((p, result), n) in &c.refreshes {
                let _ = writeln!(
                    out,
                    "{name}{{platform=\"{}\",result=\"{result}\"}} {n}",
                    p.as_str()
                );
            }
        });
        render_media_imports(out);
    }
}

impl crate::dispatch::Engine {
    /// The platform is about to be called for `claimed`: its lag since it was due.
    pub(crate) fn record_lag(&self, claimed: &soku_core::queue::ClaimedTarget) {
        let lag = (self.clock.now() - claimed.target.due_at)
            .to_std()
            .unwrap_or_default();
        self.metrics.lag(claimed.target.platform, claimed.mode, lag);
    }
}

/// Media fetched by URL for the connectors that upload it (`soku_platforms::imports`).
fn render_media_imports(out: &mut String) {
    let (imported, bytes, failed) = soku_platforms::imports::MEDIA_IMPORTS.snapshot();
    let name = "soku_media_imports_total";
    header(
        out,
        name,
        "counter",
        "Media fetched by URL for an upload, by result: imported, or the fetch's error code.",
    );
    let _ = writeln!(out, "{name}{{result=\"imported\"}} {imported}");
    for (code, n) in failed {
        let _ = writeln!(out, "{name}{{result=\"{code}\"}} {n}");
    }
    let name = "soku_media_imported_bytes_total";
    header(out, name, "counter", "Bytes of media imported.");
    let _ = writeln!(out, "{name} {bytes}");
}

/// The queue's gauges, from `PostStore::queue_stats` read at `now` (`None`: the database did
/// not answer; `soku_queue_stats_ok` says so and the gauges are left out).
pub fn render_queue(
    out: &mut String,
    stats: Option<&QueueStats>,
    now: chrono::DateTime<chrono::Utc>,
) {
    header(
        out,
        "soku_queue_stats_ok",
        "gauge",
        "1 when the queue gauges below were read from the database, 0 when it did not answer.",
    );
    let _ = writeln!(out, "soku_queue_stats_ok {}", u8::from(stats.is_some()));
    let Some(stats) = stats else { return };
    let name = "soku_queue_targets";
    header(
        out,
        name,
        "gauge",
        "Open targets by status: scheduled (waiting for their time), queued (due, or waiting for a retry), publishing (held by a worker).",
    );
    for t in &stats.targets {
        let _ = writeln!(
            out,
            "{name}{{platform=\"{}\",mode=\"{}\",status=\"{}\"}} {}",
            t.platform.as_str(),
            t.mode.as_str(),
            status_label(t.status),
            t.count
        );
    }
    // Due and oldest age per platform and mode, whatever the status.
    let mut due: BTreeMap<Key, (i64, Option<chrono::DateTime<chrono::Utc>>)> = BTreeMap::new();
    for t in &stats.targets {
        let e = due.entry((t.platform, t.mode.as_str())).or_default();
        e.0 += t.due;
        e.1 = match (e.1, t.oldest_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    header(
        out,
        "soku_queue_due_targets",
        "gauge",
        "Targets that are due (or whose worker's lease ran out) and that no worker holds.",
    );
    for ((p, m), (n, _)) in &due {
        row(out, "soku_queue_due_targets", *p, m, None, *n as u64);
    }
    header(
        out,
        "soku_queue_oldest_due_age_seconds",
        "gauge",
        "How long the oldest due, unclaimed target has waited; 0 when none waits.",
    );
    for ((p, m), (_, oldest)) in &due {
        let age = oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "soku_queue_oldest_due_age_seconds{{platform=\"{}\",mode=\"{m}\"}} {age}",
            p.as_str()
        );
    }
    let name = "soku_accounts_needing_reconnect";
    header(
        out,
        name,
        "gauge",
        "Connected accounts whose tokens were refused and could not be refreshed.",
    );
    for (p, n) in &stats.accounts_needing_reconnect {
        let _ = writeln!(out, "{name}{{platform=\"{}\"}} {n}", p.as_str());
    }
}

fn status_label(status: TargetStatus) -> &'static str {
    match status {
        TargetStatus::Scheduled => "scheduled",
        TargetStatus::Queued => "queued",
        TargetStatus::Publishing => "publishing",
        _ => "other",
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn row(out: &mut String, name: &str, p: Platform, m: &str, code: Option<&str>, n: u64) {
    let code = code.map(|c| format!(",code=\"{c}\"")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{name}{{platform=\"{}\",mode=\"{m}\"{code}}} {n}",
        p.as_str()
    );
}

/// The code as a label, or `other`: see the module's documentation.
fn bounded_code(seen: &mut BTreeSet<String>, code: &str) -> String {
    let well_formed = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return "other".into();
    }
    if seen.contains(code) {
        return code.to_owned();
    }
    if seen.len() >= MAX_CODES {
        return "other".into();
    }
    seen.insert(code.to_owned());
    code.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use soku_core::queue::{QueueCount, TargetError};

    fn failed(code: &str) -> TargetOutcome {
        TargetOutcome::Failed(TargetError {
            code: code.into(),
            message: "m".into(),
            platform_error: None,
        })
    }

    #[test]
    fn counts_outcomes_with_bounded_codes() {
        let m = EngineMetrics::default();
        let published = TargetOutcome::Published {
            post_id: "p".into(),
            url: None,
        };
        m.outcome(Platform::X, KeyMode::Test, &published);
        m.outcome(Platform::X, KeyMode::Test, &failed("rate_limited"));
        m.outcome(
            Platform::X,
            KeyMode::Test,
            &failed("Some \"platform\" text {}"),
        );
        for i in 0..(MAX_CODES + 10) {
            m.outcome(Platform::Bluesky, KeyMode::Live, &failed(&format!("c{i}")));
        }
        m.lag(Platform::X, KeyMode::Test, Duration::from_millis(300));
        m.refresh(Platform::Threads, "needs_reconnect");
        let mut text = String::new();
        m.render(&mut text);
        assert!(text.contains("soku_publish_attempts_total{platform=\"x\",mode=\"test\"} 3"));
        assert!(text.contains("soku_targets_published_total{platform=\"x\",mode=\"test\"} 1"));
        assert!(text.contains(
            "soku_targets_failed_total{platform=\"x\",mode=\"test\",code=\"rate_limited\"} 1"
        ));
        assert!(
            text.contains(
                "soku_targets_failed_total{platform=\"x\",mode=\"test\",code=\"other\"} 1"
            )
        );
        assert!(text.contains(
            "soku_targets_failed_total{platform=\"bluesky\",mode=\"live\",code=\"other\"} 11"
        ));
        let failed_series = text
            .lines()
            .filter(|l| l.starts_with("soku_targets_failed_total{"))
            .count();
        assert!(failed_series <= MAX_CODES + 2, "{failed_series}");
        assert!(text.contains(
            "soku_publish_lag_seconds_bucket{platform=\"x\",mode=\"test\",le=\"0.25\"} 0"
        ));
        assert!(text.contains(
            "soku_publish_lag_seconds_bucket{platform=\"x\",mode=\"test\",le=\"0.5\"} 1"
        ));
        assert!(text.contains("soku_publish_lag_seconds_count{platform=\"x\",mode=\"test\"} 1"));
        assert!(text.contains(
            "soku_token_refreshes_total{platform=\"threads\",result=\"needs_reconnect\"} 1"
        ));
    }

    #[test]
    fn renders_the_queue() {
        let now = chrono::Utc::now();
        let stats = QueueStats {
            targets: vec![
                QueueCount {
                    platform: Platform::X,
                    mode: KeyMode::Test,
                    status: TargetStatus::Queued,
                    count: 3,
                    due: 2,
                    oldest_due: Some(now - chrono::Duration::seconds(90)),
                },
                QueueCount {
                    platform: Platform::X,
                    mode: KeyMode::Test,
                    status: TargetStatus::Scheduled,
                    count: 4,
                    due: 0,
                    oldest_due: None,
                },
            ],
            accounts_needing_reconnect: vec![(Platform::Linkedin, 2)],
        };
        let mut text = String::new();
        render_queue(&mut text, Some(&stats), now);
        assert!(text.contains("soku_queue_stats_ok 1"));
        assert!(
            text.contains(
                "soku_queue_targets{platform=\"x\",mode=\"test\",status=\"scheduled\"} 4"
            )
        );
        assert!(text.contains("soku_queue_due_targets{platform=\"x\",mode=\"test\"} 2"));
        assert!(
            text.contains("soku_queue_oldest_due_age_seconds{platform=\"x\",mode=\"test\"} 90")
        );
        assert!(text.contains("soku_accounts_needing_reconnect{platform=\"linkedin\"} 2"));
        let mut text = String::new();
        render_queue(&mut text, None, now);
        assert_eq!(text.lines().last(), Some("soku_queue_stats_ok 0"));
    }
}
