//! The Redis backend: the buckets live in Redis, so every node shares them.
//!
//! Each check is one `EVALSHA` of one Lua script (one round trip; the script is loaded again
//! by the client when Redis answers `NOSCRIPT`, e.g. after a restart). The script reads Redis's
//! own clock (`TIME`), never a node's, reads the tier bucket and the endpoint bucket, admits the
//! request only when both admit it, and then charges both; so concurrent requests on any
//! number of nodes never get past the budget. It returns the state it read, from which
//! `soku_core::ratelimit::decide` computes the same decision and the header values.
//!
//! Keys: `<prefix>rl:{<subject>}` for the tier and `<prefix>rl:{<subject>}:<METHOD> <route>`
//! for an endpoint limit (one hash tag, so both keys sit on one cluster slot). They expire once
//! the bucket is full again, so idle subjects cost nothing.
//!
//! Every call is bounded (`DEFAULT_TIMEOUT`, or `SOKU_REDIS_TIMEOUT_MS`); the connection
//! manager reconnects by itself when Redis comes back.

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use soku_core::ratelimit::{Check, Decision, LimiterError, RateLimiter, decide};
use std::time::Duration;

/// The longest a check waits for Redis before the outage policy applies, unless configured
/// (`SOKU_REDIS_TIMEOUT_MS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// KEYS[1] tier bucket, KEYS[2] endpoint bucket (optional).
/// ARGV: tier interval (µs), tier capacity, [endpoint interval (µs), endpoint capacity].
/// Returns {admitted (1/0), now (µs, Redis clock), tier TAT read, endpoint TAT read}, each TAT
/// bounded by its quota (`Step::bounded` in soku-core), as stored.
/// Numbers stay below 2^53, so Lua's doubles are exact; values are written with %.0f because
/// Lua's default number formatting keeps only 14 digits.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function load(key)
  local v = redis.call('GET', key)
  if v then return tonumber(v) or 0 end
  return 0
end
-- A TAT more than the tolerance ahead (the clock stepped back, or the quota shrank) is cut
-- to it and stored so (Step::bounded): the bucket reads as empty and refills from now.
local function bounded(key, tat, tolerance)
  if tat > now + tolerance then
    tat = now + tolerance
    redis.call('SET', key, string.format('%.0f', tat),
      'PX', string.format('%.0f', math.floor(tolerance / 1000) + 1000))
  end
  return tat
end
local ti, tc = tonumber(ARGV[1]), tonumber(ARGV[2])
local tier_tat = bounded(KEYS[1], load(KEYS[1]), ti * tc)
local tier_new = math.max(tier_tat, now) + ti
local ok = now >= tier_new - ti * tc
local ep_tat, ep_new = 0, 0
if KEYS[2] then
  local ei, ec = tonumber(ARGV[3]), tonumber(ARGV[4])
  ep_tat = bounded(KEYS[2], load(KEYS[2]), ei * ec)
  ep_new = math.max(ep_tat, now) + ei
  ok = ok and now >= ep_new - ei * ec
end
if ok then
  redis.call('SET', KEYS[1], string.format('%.0f', tier_new),
    'PX', string.format('%.0f', math.floor((tier_new - now) / 1000) + 1000))
  if KEYS[2] then
    redis.call('SET', KEYS[2], string.format('%.0f', ep_new),
      'PX', string.format('%.0f', math.floor((ep_new - now) / 1000) + 1000))
  end
end
return {ok and 1 or 0, now, tier_tat, ep_tat}
"#;

pub struct RedisLimiter {
    conn: ConnectionManager,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
}

impl RedisLimiter {
    /// Prepares the client; the connection is made on first use (and remade after failures),
    /// so a server starts while Redis is down and applies the outage policy meanwhile.
    /// Must be called inside a tokio runtime.
    pub fn connect(url: &str, prefix: &str) -> Result<RedisLimiter, String> {
        Self::connect_with_timeout(url, prefix, DEFAULT_TIMEOUT)
    }

    /// As `connect`, with every check bounded by `timeout`.
    pub fn connect_with_timeout(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<RedisLimiter, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("SOKU_REDIS_URL is not a usable Redis URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot set up the Redis client: {e}"))?;
        Ok(RedisLimiter {
            conn,
            script: redis::Script::new(SCRIPT),
            prefix: prefix.to_owned(),
            timeout,
        })
    }
}

impl RedisLimiter {
    /// One `PING` through the same connection: the round trip a check cannot go below.
    /// (For the check-cost benchmark.)
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn check(&self, check: &Check<'_>) -> Result<Decision, LimiterError> {
        let tier_key = format!("{}rl:{{{}}}", self.prefix, check.subject.key());
        let mut invocation = self.script.key(&tier_key);
        invocation
            .arg(check.quota.interval_us())
            .arg(check.quota.capacity());
        if let Some((_, e)) = check.endpoint {
            let q = e.quota();
            invocation
                .key(format!("{tier_key}:{}", e.name))
                .arg(q.interval_us())
                .arg(q.capacity());
        }
        let mut conn = self.conn.clone();
        let answer: Vec<i64> =
            match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => return Err(LimiterError::Unavailable(e.to_string())),
                Err(_) => {
                    return Err(LimiterError::Unavailable(format!(
                        "no answer within {} ms",
                        self.timeout.as_millis()
                    )));
                }
            };
        let [admitted, now, tier_tat, endpoint_tat] = answer[..] else {
            return Err(LimiterError::Unavailable(format!(
                "unexpected script answer of {} values",
                answer.len()
            )));
        };
        let (decision, _) = decide(
            now,
            tier_tat,
            check.quota,
            check.endpoint.map(|(_, e)| (endpoint_tat, e.quota())),
        );
        if decision.allowed != (admitted == 1) {
            // Cannot happen while the script and `decide` apply the same comparison; the
            // script's word is what was charged, so it wins.
            tracing::error!("the Redis rate-limit script and decide() disagree");
            return Ok(Decision {
                allowed: admitted == 1,
                ..decision
            });
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_are_refused_at_start_without_echoing_secrets() {
        for url in [
            "rediss://:hunter2@127.0.0.1:6379",
            "http://:hunter2@127.0.0.1:6379",
            "redis://:hunter2@127.0.0.1:6379/notadb",
            "nonsense",
        ] {
            let err = RedisLimiter::connect(url, "soku:")
                .err()
                .unwrap_or_else(|| panic!("{url} accepted"));
            assert!(err.starts_with("SOKU_REDIS_URL"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        // A well-formed URL is accepted even when nothing listens there: the connection is
        // made on first use, and the outage policy applies until it works.
        assert!(RedisLimiter::connect("redis://:hunter2@127.0.0.1:1/0", "soku:").is_ok());
    }
}
