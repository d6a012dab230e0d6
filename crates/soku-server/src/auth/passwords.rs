//! Passwords of the built-in identity provider: argon2id hashes (PHC strings), a throttle on
//! failed sign-ins, and a bound on the password checks running at once.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// At least this many characters.
pub const MIN_LENGTH: usize = 10;

/// How long a sign-in waits for a turn to check its password before it is answered 503: under
/// a flood of sign-ins the checks queue here instead of each taking 19 MiB and a blocking
/// thread at once.
const CHECK_WAIT: Duration = Duration::from_secs(5);

/// The password checks (argon2id, 19 MiB and tens of milliseconds of CPU each) that may run at
/// once: one per CPU. Anyone may try to sign in, so without a bound a flood of attempts from
/// many addresses (each within its own throttle) would run hundreds of checks side by side,
/// gigabytes of memory, on the blocking threads that file and DNS work also need.
pub struct Checks {
    turns: tokio::sync::Semaphore,
    wait: Duration,
}

impl Checks {
    /// One check per CPU at once, a wait of `CHECK_WAIT` for a turn.
    pub fn new() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with(cpus, CHECK_WAIT)
    }

    pub fn with(at_once: usize, wait: Duration) -> Self {
        Self {
            turns: tokio::sync::Semaphore::new(at_once),
            wait,
        }
    }

    /// A turn to check a password, held until the permit is dropped; `None` when none came
    /// within the wait.
    pub async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(self.wait, self.turns.acquire())
            .await
            .ok()?
            .ok()
    }
}

impl Default for Checks {
    fn default() -> Self {
        Self::new()
    }
}

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
/// cause: at most `limit` per window, per process). Its keys are short (`login::throttle_keys`),
/// and entries past their window are dropped as the map grows: it holds about twice the keys
/// of one window's attempts at most (or `PRUNE_AT`), and those the bound on password checks
/// (`Checks`) limits.
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    /// Entries left by the last sweep (changed under `failures`' lock).
    swept: AtomicUsize,
}

/// The throttle's map is swept of entries past their window from this size on.
const PRUNE_AT: usize = 10_000;

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
            swept: AtomicUsize::new(0),
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
        // Amortised: past `PRUNE_AT`, the map is swept whenever it has doubled since the last
        // sweep, so a map full of live entries is not swept on every attempt.
        if map.len() >= PRUNE_AT.max(2 * self.swept.load(Ordering::Relaxed)) {
            let window = self.window;
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
            self.swept.store(map.len(), Ordering::Relaxed);
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

    #[test]
    fn the_throttle_sweeps_ended_windows_as_it_grows() {
        let window = Duration::from_secs(60);
        let t = Throttle::new(3, window);
        let t0 = Instant::now();
        let locked = vec!["email:locked".to_string()];
        for _ in 0..3 {
            t.failed(&locked, t0 + window / 2);
        }
        for i in 0..PRUNE_AT - 1 {
            t.failed(&[format!("email:{i}")], t0);
        }
        // The next attempt after the window sweeps the ended entries and keeps the live one.
        let later = t0 + window + Duration::from_secs(1);
        t.failed(&["email:new".to_string()], later);
        let len = t.failures.lock().unwrap().len();
        assert_eq!(len, 2, "the ended windows are gone");
        assert!(
            t.locked(&locked, later).is_some(),
            "a live lockout survives the sweep"
        );
        // Live entries are not swept on every attempt: the next sweep waits for the map to
        // reach `PRUNE_AT` again (twice what the last sweep left is less).
        for i in 0..PRUNE_AT - 3 {
            t.failed(&[format!("email:live{i}")], later);
        }
        assert_eq!(t.failures.lock().unwrap().len(), PRUNE_AT - 1);
    }

    #[tokio::test]
    async fn password_checks_take_turns_and_give_up_after_the_wait() {
        let checks = Checks::with(2, Duration::from_millis(50));
        let first = checks.turn().await.expect("a turn");
        let second = checks.turn().await.expect("a second turn");
        let started = std::time::Instant::now();
        assert!(checks.turn().await.is_none(), "no third check at once");
        assert!(started.elapsed() >= Duration::from_millis(50));
        // A turn given back within the wait goes to whoever waits.
        let give_back = async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(first);
        };
        let (turn, ()) = tokio::join!(checks.turn(), give_back);
        assert!(turn.is_some());
        drop(second);
    }
}
