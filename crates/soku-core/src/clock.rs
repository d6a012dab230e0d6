//! Time as a dependency, so that rules about expiry can be tested without waiting.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Whole microseconds since the Unix epoch: `now().timestamp_micros()`, which a clock may
    /// give without building a calendar date (the rate limiter reads it on every request).
    fn now_micros(&self) -> i64 {
        self.now().timestamp_micros()
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn now_micros(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => since.as_micros() as i64,
            // A wall clock set before 1970: let chrono do the arithmetic.
            Err(_) => self.now().timestamp_micros(),
        }
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }
    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap() += by;
    }
    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_micros_agree_with_its_dates() {
        let before = SystemClock.now().timestamp_micros();
        let micros = SystemClock.now_micros();
        let after = SystemClock.now().timestamp_micros();
        assert!(
            before <= micros && micros <= after,
            "{before} {micros} {after}"
        );
        let manual = ManualClock::new(chrono::TimeZone::timestamp_micros(&Utc, 1_234_567).unwrap());
        assert_eq!(manual.now_micros(), 1_234_567);
    }
}
