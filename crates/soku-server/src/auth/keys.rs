//! API-key authentication with an in-process cache.
//!
//! Shape and checksum are checked before any database access. A lookup is cached for
//! `KEY_CACHE_TTL`; a revocation on this node evicts the entry at once, and other nodes sharing
//! the database see it when their entry expires, so within `KEY_CACHE_TTL` (spec: 5 seconds).
//! Use of a key is recorded at most once a minute per key and node, off the request path.

use axum::http::HeaderMap;
use soku_core::keys::{self, KeyHash, WellFormedKey};
use soku_core::model::KeyGrant;
use soku_core::{Clock, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a key lookup is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);
/// Above this many entries the cache drops its stale entries (and everything if that is not
/// enough), so that a flood of distinct valid keys cannot grow it without bound.
const KEY_CACHE_MAX: usize = 100_000;
const TOUCH_INTERVAL_MS: i64 = 60_000;

pub const API_KEY_HEADER: &str = "soku-api-key";

/// Why a key was refused; for metrics. Clients see one identical 401 (or the 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFailure {
    Missing,
    WrongHeader,
    Malformed,
    Unknown,
    /// The store did not answer the lookup: 503.
    Unavailable,
}

impl KeyFailure {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "key_missing",
            Self::WrongHeader => "key_wrong_header",
            Self::Malformed => "key_malformed",
            Self::Unknown => "key_unknown_or_revoked",
            Self::Unavailable => "store_unavailable",
        }
    }
}

struct CacheEntry {
    grant: Arc<KeyGrant>,
    fetched: Instant,
    /// Milliseconds since the Unix epoch of this node's last recorded use; 0 for never.
    last_touch: Arc<AtomicI64>,
}

pub struct KeyAuthenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: RwLock<HashMap<KeyHash, CacheEntry>>,
}

impl KeyAuthenticator {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The grant of the request's `soku-api-key`, if the key is valid (well formed, known,
    /// active, not expired): from the cache when it holds the key, else from the store (and
    /// then cached). The subscription gate is not applied here (`auth::gate`): a lapsed
    /// subscriber's requests are still counted against them.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<KeyGrant>, KeyFailure> {
        let candidate = match headers.get(API_KEY_HEADER) {
            Some(v) => v.to_str().map_err(|_| KeyFailure::Malformed)?,
            None if headers.contains_key("authorization") || headers.contains_key("x-api-key") => {
                return Err(KeyFailure::WrongHeader);
            }
            None => return Err(KeyFailure::Missing),
        };
        let key = keys::parse(candidate.trim()).ok_or(KeyFailure::Malformed)?;
        let previous_touch = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            match cache.get(&key.hash) {
                Some(e) if e.fetched.elapsed() < KEY_CACHE_TTL => {
                    let grant = e.grant.clone();
                    let touch = e.last_touch.clone();
                    drop(cache);
                    self.maybe_touch(&grant, &touch);
                    return self.unexpired(grant);
                }
                Some(e) => Some(e.last_touch.clone()),
                None => None,
            }
        };
        let grant = self.fetch(key, previous_touch).await?;
        self.unexpired(grant)
    }

    /// A key past its expiry is refused like an unknown one: a cached grant may predate the
    /// expiry (the store leaves expired keys out of its lookups itself).
    fn unexpired(&self, grant: Arc<KeyGrant>) -> Result<Arc<KeyGrant>, KeyFailure> {
        if grant.key.expires_at.is_some_and(|t| t <= self.clock.now()) {
            return Err(KeyFailure::Unknown);
        }
        Ok(grant)
    }

    /// Looks a well-formed key up in the store and caches the answer. `previous_touch`: a
    /// stale cache entry's record of this node's last use of the key, kept across the refresh
    /// so that use is still recorded at most once a minute.
    async fn fetch(
        &self,
        key: WellFormedKey,
        previous_touch: Option<Arc<AtomicI64>>,
    ) -> Result<Arc<KeyGrant>, KeyFailure> {
        let found = self
            .store
            .find_key_grant(&key.hash, self.clock.now())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "API key lookup failed");
                KeyFailure::Unavailable
            })?;
        let Some(grant) = found else {
            self.cache
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key.hash);
            return Err(KeyFailure::Unknown);
        };
        if grant.key.mode != key.mode {
            // A stored key whose prefix disagrees with its record cannot come from us.
            return Err(KeyFailure::Unknown);
        }
        let grant = Arc::new(grant);
        let touch = previous_touch.unwrap_or_default();
        {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= KEY_CACHE_MAX {
                cache.retain(|_, e| e.fetched.elapsed() < KEY_CACHE_TTL);
                if cache.len() >= KEY_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(
                key.hash,
                CacheEntry {
                    grant: grant.clone(),
                    fetched: Instant::now(),
                    last_touch: touch.clone(),
                },
            );
        }
        self.maybe_touch(&grant, &touch);
        Ok(grant)
    }

    /// Records `lastUsedAt` in the background, at most once a minute per key on this node.
    fn maybe_touch(&self, grant: &KeyGrant, last_touch: &AtomicI64) {
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let last = last_touch.load(Ordering::Relaxed);
        if now_ms - last < TOUCH_INTERVAL_MS
            || last_touch
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.store.clone();
        let id = grant.key.id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(&id, now, None).await {
                tracing::warn!(key_id = %id, error = %e, "could not record API key use");
            }
        });
    }

    /// Forgets every cached lookup of this key id (after a revocation on this node).
    pub fn evict(&self, key_id: &str) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.grant.key.id != key_id);
    }
}
