//! API-key authentication with an in-process cache.
//!
//! Shape and checksum are checked before any database access. A lookup is cached for
//! `KEY_CACHE_TTL`; a revocation on this node evicts the entry at once, and other nodes sharing
//! the database see it when their entry expires, so within `KEY_CACHE_TTL` (spec: 5 seconds).
//! The key's scopes and allowed addresses come with the cached lookup: checking them costs no
//! database work.
//!
//! A well-formed key the store does not know (never issued, revoked, expired) is remembered as
//! unknown for `KEY_CACHE_TTL` too, by its hash: a client retrying such a key costs one lookup
//! per `KEY_CACHE_TTL`, not one per request. Nothing can make an unknown hash known within that
//! time but the creation of a key with that hash, and a key's hash is that of 34 random
//! characters nobody can have sent before the key was made. A valid key used from an address
//! it does not allow is answered from the cache only after one such refusal has reached the
//! store within `KEY_CACHE_TTL`, as an unknown key is: otherwise the speed of its 401 (no
//! lookup while the owner's own requests keep the key cached) would tell whoever holds it that
//! it is valid.
//!
//! Use of a key is recorded off the request path: `lastUsedAt`/`lastUsedIp` at most once a
//! minute per key and node; an address this node has not seen the key used from (an IPv6
//! address counts as its /64) is noted in the store, at most 20 a key and hour per node, and
//! the store records `api_key.used_from_new_ip` the first time the key is used from it at all;
//! a request from an address the key does not allow is refused like an unknown key and
//! recorded as `api_key.denied_ip`, at most once per key and address (an IPv6 address counting
//! as its /64 here too) every ten minutes per node.

use axum::http::HeaderMap;
use serde_json::json;
use soku_core::audit::{AuditDraft, AuditEvent, AuditKind, Origin};
use soku_core::keys::{self, KeyHash, WellFormedKey};
use soku_core::model::KeyGrant;
use soku_core::{Clock, Store};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a key lookup is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);
/// Above this many entries the cache drops its stale entries (and everything if that is not
/// enough), so that a flood of distinct valid keys cannot grow it without bound. The same bound
/// applies to the unknown keys remembered (a flood of distinct made-up keys).
const KEY_CACHE_MAX: usize = 100_000;
const TOUCH_INTERVAL_MS: i64 = 60_000;
/// The addresses per key the store remembers for `api_key.used_from_new_ip`, and this node
/// remembers to avoid asking the store again.
pub const ADDRESSES_PER_KEY: usize = 100;
/// A refused address is recorded at most this often per key and address on one node.
const DENIED_EVENT_INTERVAL: Duration = Duration::from_secs(600);
/// At most this many addresses new to this node are noted in the store per key and hour: a
/// key used in turn from more addresses than the lists keep (a fleet, IPv6 privacy addresses,
/// a leaked key) costs a bounded number of transactions and events, not one per request.
const ADDRESS_NOTES_PER_HOUR: u32 = 20;
const NOTE_WINDOW: Duration = Duration::from_secs(3600);

pub const API_KEY_HEADER: &str = "soku-api-key";

/// Why a key was refused; for metrics. Clients see one identical 401 (or the 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFailure {
    Missing,
    WrongHeader,
    Malformed,
    Unknown,
    /// A valid key used from an address it does not allow.
    AddressNotAllowed,
    /// The store did not answer the lookup: 503.
    Unavailable,
}

impl KeyFailure {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "key_missing",
            Self::WrongHeader => "key_wrong_header",
            Self::Malformed => "key_malformed",
            // `/metrics` is public: a label of its own would tell whoever holds a key that it is
            // valid from some other address (spec 4.1: the 401 reveals nothing). The refusal is
            // logged and recorded as the key's `api_key.denied_ip` event instead.
            Self::Unknown | Self::AddressNotAllowed => "key_unknown_or_revoked",
            Self::Unavailable => "store_unavailable",
        }
    }
}

struct CacheEntry {
    grant: Arc<KeyGrant>,
    fetched: Instant,
    /// False once evicted (revoked, rotated or changed on this node): looked up again on the
    /// next request, with its `usage` kept.
    valid: bool,
    usage: Arc<Usage>,
}

/// What this node knows of a key's use, kept across refreshes of its cache entry.
#[derive(Default)]
struct Usage {
    /// Milliseconds since the Unix epoch of this node's last recorded use; 0 for never.
    last_touch: AtomicI64,
    /// Addresses this node has noted the key used from (at most `ADDRESSES_PER_KEY`).
    seen: RwLock<Vec<IpAddr>>,
    /// When this node last recorded a refused address, per address (IPv6: per /64).
    denied: Mutex<HashMap<IpAddr, Instant>>,
    /// Notes of new addresses sent to the store in the current hour: (window start, count).
    notes: Mutex<(Option<Instant>, u32)>,
    /// When a request from an address the key does not allow last reached the store.
    refused_lookup: Mutex<Option<Instant>>,
}

impl Usage {
    /// Whether another address may be noted in the store this hour.
    fn may_note(&self) -> bool {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if notes.0.is_none_or(|start| start.elapsed() >= NOTE_WINDOW) {
            *notes = (Some(Instant::now()), 0);
        }
        notes.1 += 1;
        notes.1 <= ADDRESS_NOTES_PER_HOUR
    }

    /// Whether a refused address may be answered from the cache: a refusal reached the store
    /// within `KEY_CACHE_TTL`, as an unknown key's lookup would have.
    fn refused_lately(&self) -> bool {
        self.refused_lookup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < KEY_CACHE_TTL)
    }

    fn refused_now(&self) {
        *self
            .refused_lookup
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
}

/// What counts as one address for `api_key.used_from_new_ip`: an IPv4 address, or an IPv6
/// address's /64 (one network hands its hosts many addresses, some changing daily).
fn address_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

/// How an address is written in the store and events: IPv6 as its /64.
fn address_text(address: IpAddr) -> String {
    match address {
        IpAddr::V6(_) => format!("{address}/64"),
        v4 => v4.to_string(),
    }
}

pub struct KeyAuthenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: RwLock<HashMap<KeyHash, CacheEntry>>,
    /// Well-formed keys the store did not know, by hash, and when it said so.
    unknown: RwLock<HashMap<KeyHash, Instant>>,
    /// Bumped by every eviction: a lookup that overlapped one is not cached, since what it
    /// read may predate the revocation that caused it.
    evictions: std::sync::atomic::AtomicU64,
}

impl KeyAuthenticator {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            cache: RwLock::new(HashMap::new()),
            unknown: RwLock::new(HashMap::new()),
            evictions: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The grant of the request's `soku-api-key`, if the key is valid (well formed, known,
    /// active, not expired) and allows the client address `ip`: from the cache when it holds
    /// the key (or holds it as unknown), else from the store (and then cached). The
    /// subscription gate and the scopes are applied separately (`auth::gate`,
    /// `auth::require_scope`): a lapsed subscriber's requests are still counted against them.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        ip: IpAddr,
    ) -> Result<Arc<KeyGrant>, KeyFailure> {
        let candidate = match headers.get(API_KEY_HEADER) {
            Some(v) => v.to_str().map_err(|_| KeyFailure::Malformed)?,
            None if headers.contains_key("authorization") || headers.contains_key("x-api-key") => {
                return Err(KeyFailure::WrongHeader);
            }
            None => return Err(KeyFailure::Missing),
        };
        let key = keys::parse(candidate.trim()).ok_or(KeyFailure::Malformed)?;
        let previous_usage = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            match cache.get(&key.hash) {
                Some(e)
                    if e.valid
                        && e.fetched.elapsed() < KEY_CACHE_TTL
                        && (e.grant.key.allows(ip) || e.usage.refused_lately()) =>
                {
                    let grant = e.grant.clone();
                    let usage = e.usage.clone();
                    drop(cache);
                    return self.admit(grant, &usage, ip, headers, false);
                }
                Some(e) => Some(e.usage.clone()),
                None => None,
            }
        };
        if self.known_unknown(&key.hash) {
            return Err(KeyFailure::Unknown);
        }
        let (grant, usage) = self.fetch(key, previous_usage).await?;
        self.admit(grant, &usage, ip, headers, true)
    }

    /// Whether the store said within `KEY_CACHE_TTL` that it does not know this key.
    fn known_unknown(&self, hash: &KeyHash) -> bool {
        self.unknown
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .is_some_and(|at| at.elapsed() < KEY_CACHE_TTL)
    }

    /// Remembers that the store does not know this key (bounded like the cache).
    fn remember_unknown(&self, hash: KeyHash) {
        let mut unknown = self.unknown.write().unwrap_or_else(|p| p.into_inner());
        if unknown.len() >= KEY_CACHE_MAX {
            unknown.retain(|_, at| at.elapsed() < KEY_CACHE_TTL);
            if unknown.len() >= KEY_CACHE_MAX {
                unknown.clear();
            }
        }
        unknown.insert(hash, Instant::now());
    }

    /// The checks of a found key: not expired, used from an allowed address; then its use is
    /// recorded. `looked_up`: the grant comes from the store for this request.
    fn admit(
        &self,
        grant: Arc<KeyGrant>,
        usage: &Usage,
        ip: IpAddr,
        headers: &HeaderMap,
        looked_up: bool,
    ) -> Result<Arc<KeyGrant>, KeyFailure> {
        let grant = self.unexpired(grant)?;
        if !grant.key.allows(ip) {
            if looked_up {
                usage.refused_now();
            }
            self.record_denied(&grant, usage, ip, headers);
            return Err(KeyFailure::AddressNotAllowed);
        }
        self.record_use(&grant, usage, ip, headers);
        Ok(grant)
    }

    /// A key past its expiry is refused like an unknown one: a cached grant may predate the
    /// expiry (the store leaves expired keys out of its lookups itself).
    fn unexpired(&self, grant: Arc<KeyGrant>) -> Result<Arc<KeyGrant>, KeyFailure> {
        if grant.key.expires_at.is_some_and(|t| t <= self.clock.now()) {
            return Err(KeyFailure::Unknown);
        }
        Ok(grant)
    }

    /// Looks a well-formed key up in the store and caches the answer. `previous_usage`: a
    /// stale cache entry's record of this node's use of the key, kept across the refresh so
    /// that use is still recorded at most once a minute and known addresses stay known.
    async fn fetch(
        &self,
        key: WellFormedKey,
        previous_usage: Option<Arc<Usage>>,
    ) -> Result<(Arc<KeyGrant>, Arc<Usage>), KeyFailure> {
        // A lookup overlapping an eviction may have read the key before its revocation: it is
        // read again (and, after three overlaps, used for this request only, uncached).
        let mut attempts = 0;
        let (found, generation) = loop {
            let generation = self.evictions.load(Ordering::Acquire);
            let found = self
                .store
                .find_key_grant(&key.hash, self.clock.now())
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "API key lookup failed");
                    KeyFailure::Unavailable
                })?;
            attempts += 1;
            if attempts == 3 || self.evictions.load(Ordering::Acquire) == generation {
                break (found, generation);
            }
        };
        let Some(grant) = found else {
            self.cache
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key.hash);
            // Safe whatever evictions overlapped the lookup: they only ever make keys unknown.
            self.remember_unknown(key.hash);
            return Err(KeyFailure::Unknown);
        };
        if grant.key.mode != key.mode {
            // A stored key whose prefix disagrees with its record cannot come from us.
            return Err(KeyFailure::Unknown);
        }
        let grant = Arc::new(grant);
        let usage = previous_usage.unwrap_or_default();
        self.unknown
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key.hash);
        {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            if self.evictions.load(Ordering::Acquire) != generation {
                // Evicted meanwhile: answer this request, cache nothing.
                return Ok((grant, usage));
            }
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
                    valid: true,
                    usage: usage.clone(),
                },
            );
        }
        Ok((grant, usage))
    }

    /// Records the use in the background: `lastUsedAt`/`lastUsedIp` at most once a minute per
    /// key on this node, and an address this node has not seen the key used from.
    fn record_use(&self, grant: &KeyGrant, usage: &Usage, ip: IpAddr, headers: &HeaderMap) {
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let last = usage.last_touch.load(Ordering::Relaxed);
        let touch = now_ms - last >= TOUCH_INTERVAL_MS
            && usage
                .last_touch
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        let address = address_of(ip);
        let seen = usage
            .seen
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&address);
        let new_address = !seen && {
            let mut seen = usage.seen.write().unwrap_or_else(|p| p.into_inner());
            if seen.contains(&address) {
                false
            } else {
                if seen.len() >= ADDRESSES_PER_KEY {
                    seen.remove(0);
                }
                seen.push(address);
                true
            }
        };
        let new_address = new_address
            && {
                let may = usage.may_note();
                if !may {
                    tracing::debug!(key_id = %grant.key.id, "new addresses of this key are not noted again this hour");
                }
                may
            };
        if !touch && !new_address {
            return;
        }
        let store = self.store.clone();
        let key_id = grant.key.id.clone();
        let user_id = grant.user.id.clone();
        let origin = origin(ip, headers);
        tokio::spawn(async move {
            let exact = ip.to_string();
            if touch && let Err(e) = store.touch_api_key(&key_id, now, Some(&exact)).await {
                tracing::warn!(key_id = %key_id, error = %e, "could not record API key use");
            }
            if new_address {
                let event = AuditDraft::new(AuditKind::KeyUsedFromNewIp, origin, json!({}));
                let noted = store
                    .note_key_address(
                        &user_id,
                        &key_id,
                        &address_text(address),
                        ADDRESSES_PER_KEY,
                        now,
                        &event,
                    )
                    .await;
                if let Err(e) = noted {
                    tracing::warn!(key_id = %key_id, error = %e, "could not note an API key's address");
                }
            }
        });
    }

    /// Records `api_key.denied_ip` in the background, at most once per key and address every
    /// `DENIED_EVENT_INTERVAL` on this node (a client retrying in a loop adds one event). An
    /// IPv6 address counts as its /64, as for `api_key.used_from_new_ip`: one host's addresses
    /// are many (privacy addresses, or anyone holding the network cycling through it). The
    /// event's `ip` is the request's exact address; `details.address` the address it stands
    /// for (`2001:db8:1:2::/64`).
    fn record_denied(&self, grant: &KeyGrant, usage: &Usage, ip: IpAddr, headers: &HeaderMap) {
        let address = address_of(ip);
        {
            let mut denied = usage.denied.lock().unwrap_or_else(|p| p.into_inner());
            if denied
                .get(&address)
                .is_some_and(|at| at.elapsed() < DENIED_EVENT_INTERVAL)
            {
                return;
            }
            if denied.len() >= ADDRESSES_PER_KEY {
                denied.retain(|_, at| at.elapsed() < DENIED_EVENT_INTERVAL);
                if denied.len() >= ADDRESSES_PER_KEY {
                    return;
                }
            }
            denied.insert(address, Instant::now());
        }
        tracing::info!(key_id = %grant.key.id, client_ip = %ip, "API key used from an address it does not allow");
        let event = AuditEvent::new(
            &grant.user.id,
            AuditKind::KeyDeniedIp,
            self.clock.now(),
            Some(&grant.key.id),
            origin(ip, headers),
            json!({ "address": address_text(address) }),
        );
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.insert_audit_event(&event).await {
                tracing::warn!(error = %e, "could not record a refused API key address");
            }
        });
    }

    /// Forgets every cached lookup of this key id (after a revocation on this node).
    pub fn evict(&self, key_id: &str) {
        self.evictions.fetch_add(1, Ordering::AcqRel);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        for entry in cache.values_mut() {
            if entry.grant.key.id == key_id {
                entry.valid = false;
            }
        }
    }
}

/// The audit origin of a request with a key.
fn origin(ip: IpAddr, headers: &HeaderMap) -> Origin {
    let agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    Origin::new(Some(ip.to_string()), agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_address_counts_as_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_of(a), address_of(b));
        assert_ne!(address_of(a), address_of(c));
        assert_eq!(address_text(address_of(a)), "2001:db8:1:2::/64");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_text(address_of(v4)), "192.0.2.7");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_of(mapped), v4);
    }

    #[test]
    fn new_addresses_are_noted_at_most_twenty_an_hour() {
        let usage = Usage::default();
        let noted = (0..25).filter(|_| usage.may_note()).count();
        assert_eq!(noted, ADDRESS_NOTES_PER_HOUR as usize);
    }
}
