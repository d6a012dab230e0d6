//! Prometheus metrics: requests by route template and status, a latency histogram per route
//! template, authentication failures by reason, rate-limit refusals by limit and tier, and
//! failed checks of the shared rate-limit backend. Routes are labelled by their template
//! (`/v1/api-keys/{id}`), never by the raw path.
//!
//! `/metrics` adds the publishing engine's counters (`soku_engine::metrics`) and the queue's
//! gauges, read from the database at most once per `QUEUE_STATS_TTL` however often it is
//! scraped (every process reports the whole queue: aggregate those gauges with `max`, not `sum`).

use soku_core::Store;
use soku_core::queue::QueueStats;
use soku_engine::metrics::EngineMetrics;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct RouteStats {
    by_status: HashMap<(&'static str, u16), u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// How long one reading of the queue's gauges is served to scrapes.
pub const QUEUE_STATS_TTL: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Metrics {
    routes: Mutex<HashMap<String, RouteStats>>,
    auth_failures: Mutex<HashMap<&'static str, u64>>,
    rate_limited: Mutex<HashMap<(&'static str, &'static str), u64>>,
    rate_limit_backend_errors: AtomicU64,
    /// The last reading of the queue and when it was taken; one reader at a time.
    queue: tokio::sync::Mutex<Option<(Instant, Option<QueueStats>)>>,
    /// `QUEUE_STATS_TTL` unless set (tests read the queue on every scrape).
    queue_ttl_ms: Mutex<Option<u64>>,
}

impl Metrics {
    pub fn record_request(
        &self,
        route: &str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let secs = elapsed.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = match routes.get_mut(route) {
            Some(s) => s,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *stats.by_status.entry((method, status)).or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                stats.buckets[i] += 1;
            }
        }
        stats.count += 1;
        stats.sum += secs;
    }

    pub fn record_auth_failure(&self, reason: &'static str) {
        *self
            .auth_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub fn auth_failures(&self, reason: &str) -> u64 {
        self.auth_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(reason)
            .copied()
            .unwrap_or(0)
    }

    /// A 429: which limit (`tier` or `endpoint`) and the caller's tier.
    pub fn record_rate_limited(&self, limit: &'static str, tier: &'static str) {
        *self
            .rate_limited
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((limit, tier))
            .or_default() += 1;
    }

    /// A check the rate-limit backend (Redis) did not answer in time.
    pub fn record_rate_limit_backend_error(&self) {
        self.rate_limit_backend_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limit_backend_errors(&self) -> u64 {
        self.rate_limit_backend_errors.load(Ordering::Relaxed)
    }

    /// How long a reading of the queue is kept (default `QUEUE_STATS_TTL`).
    pub fn set_queue_stats_ttl(&self, ttl: Duration) {
        *self.queue_ttl_ms.lock().unwrap_or_else(|p| p.into_inner()) = Some(ttl.as_millis() as u64);
    }

    /// Everything `/metrics` serves: these counters, the engine's, and the queue's gauges
    /// (from the database, or from a reading younger than the TTL).
    pub async fn render_all(
        &self,
        engine: &EngineMetrics,
        store: &dyn Store,
        now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let mut out = self.render();
        engine.render(&mut out);
        let ttl = self
            .queue_ttl_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(QUEUE_STATS_TTL, Duration::from_millis);
        let mut cached = self.queue.lock().await;
        let fresh = cached.as_ref().is_some_and(|(at, _)| at.elapsed() < ttl);
        if !fresh {
            let stats = match store.queue_stats(now).await {
                Ok(stats) => Some(stats),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the queue for /metrics failed");
                    None
                }
            };
            *cached = Some((Instant::now(), stats));
        }
        let stats = cached.as_ref().and_then(|(_, s)| s.as_ref());
        soku_engine::metrics::render_queue(&mut out, stats, now);
        out
    }

    /// The Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();

        out.push_str(
            "# HELP soku_http_requests_total HTTP requests by route template, method and status.\n",
        );
        out.push_str("# TYPE soku_http_requests_total counter\n");
        for name in &names {
            let mut rows: Vec<_> = routes[*name].by_status.iter().collect();
            rows.sort();
            for ((method, status), n) in rows {
                let _ = writeln!(
                    out,
                    "soku_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    escape(name)
                );
            }
        }

        out.push_str("# HELP soku_http_request_duration_seconds Time to answer a request, by route template.\n");
        out.push_str("# TYPE soku_http_request_duration_seconds histogram\n");
        for name in &names {
            let s = &routes[*name];
            let route = escape(name);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "soku_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "soku_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "soku_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "soku_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                s.count
            );
        }
        drop(routes);

        out.push_str("# HELP soku_auth_failures_total Refused authentications by reason.\n");
        out.push_str("# TYPE soku_auth_failures_total counter\n");
        let failures = self.auth_failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<_> = failures.iter().collect();
        rows.sort();
        for (reason, n) in rows {
            let _ = writeln!(out, "soku_auth_failures_total{{reason=\"{reason}\"}} {n}");
        }
        drop(failures);

        out.push_str(
            "# HELP soku_rate_limited_total Requests refused with 429, by the limit hit (tier or endpoint) and the caller's tier.\n",
        );
        out.push_str("# TYPE soku_rate_limited_total counter\n");
        let limited = self.rate_limited.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<_> = limited.iter().collect();
        rows.sort();
        for ((limit, tier), n) in rows {
            let _ = writeln!(
                out,
                "soku_rate_limited_total{{limit=\"{limit}\",tier=\"{tier}\"}} {n}"
            );
        }
        drop(limited);

        out.push_str("# HELP soku_rate_limit_backend_errors_total Rate-limit checks the shared backend (Redis) failed to answer; SOKU_RATE_LIMIT_ON_ERROR decided those requests.\n");
        out.push_str("# TYPE soku_rate_limit_backend_errors_total counter\n");
        let _ = writeln!(
            out,
            "soku_rate_limit_backend_errors_total {}",
            self.rate_limit_backend_errors()
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.record_request("/v1/me", "GET", 200, Duration::from_millis(2));
        m.record_request("/v1/me", "GET", 401, Duration::from_millis(20));
        m.record_auth_failure("unknown_key");
        m.record_rate_limited("endpoint", "premium");
        m.record_rate_limited("endpoint", "premium");
        m.record_rate_limit_backend_error();
        let text = m.render();
        assert!(text.contains("soku_rate_limited_total{limit=\"endpoint\",tier=\"premium\"} 2"));
        assert!(text.contains("soku_rate_limit_backend_errors_total 1"));
        assert!(text.contains(
            "soku_http_requests_total{route=\"/v1/me\",method=\"GET\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "soku_http_requests_total{route=\"/v1/me\",method=\"GET\",status=\"401\"} 1"
        ));
        assert!(text.contains(
            "soku_http_request_duration_seconds_bucket{route=\"/v1/me\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "soku_http_request_duration_seconds_bucket{route=\"/v1/me\",le=\"0.025\"} 2"
        ));
        assert!(text.contains("soku_http_request_duration_seconds_count{route=\"/v1/me\"} 2"));
        assert!(text.contains("soku_auth_failures_total{reason=\"unknown_key\"} 1"));
    }
}
