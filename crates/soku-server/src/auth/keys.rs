//! API-key authentication with an in-process cache.
//!
//! Shape and checksum are checked before any database access. A lookup is cached for
//! `KEY_CACHE_TTL`; a revocation on this node evicts the entry at once, and other nodes sharing
//! the database see it when their entry expires, so within `KEY_CACHE_TTL` (spec: 5 seconds).
//! Use of a key is recorded at most once a minute per key and node, off the request path.

use axum::http::HeaderMap;
use soku_core::keys::{self, KeyHash, WellFormedKey};
use soku_core::model::{KeyGrant, Subscription};
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

/// Why a key was refused; for metrics. Clients see one identical 401 (or the 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFailure {
    Missing,
    WrongHeader,
    Malformed,
    Unknown,
    Subscription,
    Unavailable,
}

impl KeyFailure {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "key_missing",
            Self::WrongHeader => "key_wrong_header",
            Self::Malformed => "key_malformed",
            Self::Unknown => "key_unknown_or_revoked",
            Self::Subscription => "subscription_inactive",
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

/// What `KeyAuthenticator::authenticate_cached` found.
pub enum KeyCheck {
    /// The answer, from the header alone or from the cache.
    Done(Result<Arc<KeyGrant>, KeyFailure>),
    /// A well-formed key that the cache does not hold (or holds stale): the store must be
    /// asked, with `KeyAuthenticator::look_up`.
    Lookup(KeyLookup),
}

/// A well-formed key to look up in the store (its hash is computed once).
pub struct KeyLookup {
    key: WellFormedKey,
    /// The stale cache entry's record of this node's last use of the key, kept across the
    /// refresh so that use is still recorded at most once a minute.
    previous_touch: Option<Arc<AtomicI64>>,
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

    /// Authenticates a request by its `soku-api-key` header and applies the subscription gate.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<KeyGrant>, KeyFailure> {
        let grant = self.authenticate_grant(headers).await?;
        self.gate(grant)
    }

    /// The key's grant if the key is valid (known, active, not expired), before the
    /// subscription gate: rate limiting counts a lapsed subscriber's requests against them.
    pub async fn authenticate_grant(
        &self,
        headers: &HeaderMap,
    ) -> Result<Arc<KeyGrant>, KeyFailure> {
        match self.authenticate_cached(headers) {
            KeyCheck::Done(outcome) => outcome,
            KeyCheck::Lookup(lookup) => self.look_up(lookup).await,
        }
    }

    /// `authenticate_grant` as far as it goes without waiting: the answer when the header or
    /// the cache gives it (a key missing, in the wrong header, malformed, or cached), else the
    /// store lookup left to do. The rate-limit step uses it to count a cached key's request
    /// without building a future.
    pub fn authenticate_cached(&self, headers: &HeaderMap) -> KeyCheck {
        let candidate = match headers.get(API_KEY_HEADER) {
            Some(v) => match v.to_str() {
                Ok(v) => v,
                Err(_) => return KeyCheck::Done(Err(KeyFailure::Malformed)),
            },
            None if headers.contains_key("authorization") || headers.contains_key("x-api-key") => {
                return KeyCheck::Done(Err(KeyFailure::WrongHeader));
            }
            None => return KeyCheck::Done(Err(KeyFailure::Missing)),
        };
        let Some(key) = keys::parse(candidate.trim()) else {
            return KeyCheck::Done(Err(KeyFailure::Malformed));
        };
        let previous_touch = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            match cache.get(&key.hash) {
                Some(e) if e.fetched.elapsed() < KEY_CACHE_TTL => {
                    let grant = e.grant.clone();
                    let touch = e.last_touch.clone();
                    drop(cache);
                    self.maybe_touch(&grant, &touch);
                    return KeyCheck::Done(self.unexpired(grant));
                }
                Some(e) => Some(e.last_touch.clone()),
                None => None,
            }
        };
        KeyCheck::Lookup(KeyLookup {
            key,
            previous_touch,
        })
    }

    /// The store lookup that `authenticate_cached` left to do; its answer is cached.
    pub async fn look_up(&self, lookup: KeyLookup) -> Result<Arc<KeyGrant>, KeyFailure> {
        let grant = self.fetch(lookup).await?;
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

    /// The subscription gate (spec 3.2).
    pub fn gate(&self, grant: Arc<KeyGrant>) -> Result<Arc<KeyGrant>, KeyFailure> {
        if Subscription::grants_access(grant.subscription.as_ref(), self.clock.now()) {
            Ok(grant)
        } else {
            Err(KeyFailure::Subscription)
        }
    }

    async fn fetch(&self, lookup: KeyLookup) -> Result<Arc<KeyGrant>, KeyFailure> {
        let KeyLookup {
            key,
            previous_touch,
        } = lookup;
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
            if let Err(e) = store.touch_api_key(&id, now).await {
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
