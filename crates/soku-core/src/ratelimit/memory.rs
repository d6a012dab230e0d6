//! The in-process backend: buckets in sharded maps, GCRA from `super`.

use super::*;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

pub(super) const SHARDS: usize = 64;
/// A shard drops its idle (full) buckets at most this often.
const SWEEP_EVERY_US: i64 = 60_000_000;

#[derive(Default)]
struct Bucket {
    tat: i64,
    /// (endpoint index, TAT) of the endpoint limits this subject has used.
    endpoints: Vec<(usize, i64)>,
}

impl Bucket {
    fn endpoint_tat(&self, index: usize) -> i64 {
        self.endpoints
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(0, |(_, t)| *t)
    }

    fn set_endpoint_tat(&mut self, index: usize, tat: i64) {
        match self.endpoints.iter_mut().find(|(i, _)| *i == index) {
            Some(slot) => slot.1 = tat,
            None => self.endpoints.push((index, tat)),
        }
    }

    /// True when every limit of this subject is full again: forgetting it changes nothing.
    fn idle(&self, now: i64) -> bool {
        self.tat <= now && self.endpoints.iter().all(|(_, t)| *t <= now)
    }
}

#[derive(Default)]
struct Shard {
    /// Users' buckets, by the limiter's hash of the user id (see `MemoryLimiter::users`).
    users: HashTable<(Box<str>, Bucket)>,
    /// Addresses' buckets, behind SipHash: clients choose their addresses (a whole IPv6 /64
    /// each, if they like), so this map is the one a flood of crafted keys could aim at.
    ips: HashMap<IpAddr, Bucket>,
    next_sweep: i64,
}

/// Buckets in this process's memory, in shards each behind its own lock: a check is one hash,
/// one lock, one lookup. Idle buckets are dropped by a sweep that each shard runs at most once
/// a minute, so memory follows the number of recently active subjects.
pub struct MemoryLimiter {
    shards: Box<[Mutex<Shard>]>,
    /// Hashes user ids, once per check for both the shard and the slot in it: foldhash with
    /// this process's random seed. User ids are given by the server (or its identity
    /// provider), not by the client, so a fast hash is safe here; addresses are not.
    users: DefaultHashBuilder,
    clock: Arc<dyn Clock>,
}

impl MemoryLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            users: DefaultHashBuilder::default(),
            clock,
        }
    }

    /// The shard of a hash: bits that the tables inside use for neither the slot (the low
    /// bits) nor the tag (the top seven).
    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        self.shards[(hash >> 40) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The shard of an address: a cheap spread (FNV-1a) is enough, because a crafted address
    /// can at worst crowd one shard; the map inside keeps SipHash against floods.
    fn ip_hash(ip: IpAddr) -> u64 {
        let fnv = |bytes: &[u8]| {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        let h = match ip {
            IpAddr::V4(a) => fnv(&a.octets()),
            IpAddr::V6(a) => fnv(&a.octets()),
        };
        h ^ (h << 32)
    }

    /// The decision for `check`, made at `now` (µs). Public so that tests can drive it.
    pub fn check_at(&self, check: &Check<'_>, now: i64) -> Decision {
        match check.subject {
            Subject::User(id) => {
                let hash = self.users.hash_one(id);
                let mut shard = self.shard(hash);
                shard.sweep(now);
                // One lookup when the bucket exists (the common case).
                if let Some((_, bucket)) = shard.users.find_mut(hash, |(k, _)| **k == *id) {
                    return apply(bucket, check, now);
                }
                let entry =
                    shard
                        .users
                        .insert_unique(hash, (id.into(), Bucket::default()), |(k, _)| {
                            self.users.hash_one(&**k)
                        });
                apply(&mut entry.into_mut().1, check, now)
            }
            Subject::Ip(ip) => {
                let mut shard = self.shard(Self::ip_hash(ip));
                shard.sweep(now);
                apply(shard.ips.entry(ip).or_default(), check, now)
            }
        }
    }

    /// Forgets every bucket: every subject's budget is full again.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.users.clear();
            shard.ips.clear();
        }
    }

    /// Buckets held (for tests of the sweep).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.users.len() + s.ips.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shard {
    /// Drops the idle buckets, at most once a minute.
    fn sweep(&mut self, now: i64) {
        if now >= self.next_sweep {
            self.users.retain(|(_, b)| !b.idle(now));
            self.ips.retain(|_, b| !b.idle(now));
            self.next_sweep = now + SWEEP_EVERY_US;
        }
    }
}

/// `decide` on one subject's buckets, charging them when the request is admitted.
fn apply(bucket: &mut Bucket, check: &Check<'_>, now: i64) -> Decision {
    let endpoint = check
        .endpoint
        .map(|(i, e)| (bucket.endpoint_tat(i), e.quota()));
    let (decision, (tier_tat, endpoint_tat)) = decide(now, bucket.tat, check.quota, endpoint);
    bucket.tat = tier_tat;
    if let (Some((i, _)), Some((stored, _)), Some(t)) = (check.endpoint, endpoint, endpoint_tat)
        && t != stored
    {
        bucket.set_endpoint_tat(i, t);
    }
    decision
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn check(&self, check: &Check<'_>) -> Result<Decision, LimiterError> {
        Ok(self.check_at(check, now_us(self.clock.as_ref())))
    }

    fn check_now(&self, check: &Check<'_>) -> Option<Decision> {
        Some(self.check_at(check, now_us(self.clock.as_ref())))
    }
}
