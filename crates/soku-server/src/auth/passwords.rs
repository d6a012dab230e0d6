//! Passwords of the built-in identity provider: argon2id hashes (PHC strings), and a throttle
//! on failed sign-ins.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At least this many characters.
pub const MIN_LENGTH: usize = 10;

/// The argon2id PHC string of `password` (the crate's defaults: 19 MiB, 2 passes, 1 lane, the
/// parameters OWASP recommends). Slow on purpose: call it off the async threads.
pub fn hash(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!("a password has at least {MIN_LENGTH} characters"));
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `phc`. Slow on purpose: call it off the async threads.
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash nobody's password matches, verified when the email is unknown so that an unknown
/// address costs the same time as a wrong password.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&soku_core::keys::random_id("", 32)).expect("hashing works"))
}

/// Failed sign-ins counted per email and per client address over a window; past the limit,
/// sign-ins for that email or from that address wait for the window to end, right password or
/// not. `attempt` counts an attempt as failed before its password is checked, so that attempts
/// made at once cannot all pass the check before any failure is counted: the limit is exact
/// under concurrency (it also bounds the `session.sign_in_failed` events a user's email can
/// cause: at most `limit` per window, per process).
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when one of `keys` is locked out.
    pub fn locked(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.locked_in(&map, keys, now)
    }

    fn locked_in(
        &self,
        map: &HashMap<String, (u32, Instant)>,
        keys: &[String],
        now: Instant,
    ) -> Option<Duration> {
        keys.iter()
            .filter_map(|k| map.get(k).map(|v| (self.limit_for(k), v)))
            .filter(|(limit, (n, since))| *n >= *limit && now.duration_since(*since) < self.window)
            .map(|(_, (_, since))| self.window - now.duration_since(*since))
            .max()
    }

    /// One address may sit in front of many people (a proxy, an office): it gets ten times the
    /// failures one email gets.
    fn limit_for(&self, key: &str) -> u32 {
        if key.starts_with("ip:") {
            self.limit * 10
        } else {
            self.limit
        }
    }

    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.count(&mut map, keys, now);
    }

    fn count(&self, map: &mut HashMap<String, (u32, Instant)>, keys: &[String], now: Instant) {
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        for k in keys {
            let entry = map.entry(k.clone()).or_insert((0, now));
            if now.duration_since(entry.1) >= self.window {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// Begins an attempt: `Err(wait)` when one of `keys` is locked out; otherwise the attempt
    /// is counted as failed at once, in the same step as the check (`succeeded` takes it
    /// back).
    pub fn attempt(&self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = self.locked_in(&map, keys, now) {
            return Err(wait);
        }
        self.count(&mut map, keys, now);
        Ok(())
    }

    /// An attempt of `attempt` succeeded: the first key's (the email's) failures are forgotten
    /// and the attempt is no longer counted against the others (the address).
    pub fn succeeded(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some((email, others)) = keys.split_first() else {
            return;
        };
        map.remove(email);
        for k in others {
            if let Some(entry) = map.get_mut(k) {
                entry.0 = entry.0.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse batterz"));
        assert!(!verify("not a hash", "x"));
        assert!(hash("short").is_err());
        assert!(!verify(decoy(), ""));
    }

    #[test]
    fn the_throttle_locks_after_the_limit_until_the_window_ends() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let keys = vec!["email:a@b.c".to_string(), "ip:1.2.3.4".to_string()];
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.locked(&keys, t0).is_none());
            t.failed(&keys, t0);
        }
        assert!(t.locked(&keys, t0).is_some());
        assert!(
            t.locked(&["ip:1.2.3.4".to_string()], t0).is_none(),
            "an address has a larger allowance"
        );
        for _ in 0..27 {
            t.failed(&["ip:1.2.3.4".to_string()], t0);
        }
        assert!(t.locked(&["ip:1.2.3.4".to_string()], t0).is_some());
        assert!(t.locked(&keys, t0 + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn attempts_are_counted_before_they_are_judged() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let keys = vec!["email:a@b.c".to_string(), "ip:1.2.3.4".to_string()];
        let t0 = Instant::now();
        // Three attempts in flight at once: the fourth is refused before any is judged.
        for _ in 0..3 {
            assert!(t.attempt(&keys, t0).is_ok());
        }
        assert!(t.attempt(&keys, t0).is_err());
        // One of them succeeds: the email is free again and the address is not charged for it.
        t.succeeded(&keys);
        assert!(t.attempt(&keys, t0).is_ok());
        let map = t.failures.lock().unwrap();
        assert_eq!(map["email:a@b.c"].0, 1);
        assert_eq!(map["ip:1.2.3.4"].0, 3);
    }
}
