//! Throttling of attempts that can fail (logins): a growing lockout per key after repeated
//! failures, and a token bucket per key on the attempt rate.
//!
//! Written here rather than taken from `governor` because it must be sans-IO (time is an input,
//! so a lockout test takes microseconds and the simulator can drive it) and because governor has
//! no notion of a lockout that grows with consecutive failures.
//!
//! Keys are whatever the caller throttles on: an account name, a source address. The table is
//! bounded ([`ThrottleConfig::max_keys`]); when it is full of live entries, a new key is
//! treated as locked (fail closed), so spraying keys cannot flush other keys' lockouts.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use crate::rate::TokenBucket;
use crate::time::Time;

/// Tuning of a [`Throttle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures allowed before the first lockout (typos happen).
    pub free_failures: u32,
    /// The first lockout; each further failure doubles it.
    pub base_lockout: Duration,
    /// The longest lockout.
    pub max_lockout: Duration,
    /// A key with no failure for this long starts afresh.
    pub forget_after: Duration,
    /// Attempts per second allowed per key, on average.
    pub attempts_per_sec: u32,
    /// Attempts allowed in a burst per key.
    pub burst: u32,
    /// Most keys tracked at once.
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    /// 5 free failures, then 1 s doubling to 15 min: an online guesser gets about a hundred
    /// guesses a day per account instead of millions. 10 attempts/s with a burst of 20 per key:
    /// far above a human, far below a script. 100,000 keys: about 10 MB at most.
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
            attempts_per_sec: 10,
            burst: 20,
            max_keys: 100_000,
        }
    }
}

/// Why an attempt may not go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Throttled {
    /// Too many failures: locked until the lockout ends.
    #[error("locked out, retry in {retry_after:?}")]
    LockedOut {
        /// Time until the lockout ends.
        retry_after: Duration,
    },
    /// Attempts arrive faster than allowed.
    #[error("too fast, retry in {retry_after:?}")]
    TooFast {
        /// Time until one more attempt is allowed.
        retry_after: Duration,
    },
    /// The table is full of live entries; new keys wait.
    #[error("throttle table full, retry in {retry_after:?}")]
    Full {
        /// Suggested wait.
        retry_after: Duration,
    },
}

impl Throttled {
    /// How long to wait.
    pub fn retry_after(&self) -> Duration {
        match *self {
            Self::LockedOut { retry_after }
            | Self::TooFast { retry_after }
            | Self::Full { retry_after } => retry_after,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Time,
    locked_until: Time,
    attempts: TokenBucket,
}

/// Per-key lockouts and attempt rates; see the module doc.
#[derive(Debug, Clone)]
pub struct Throttle<K> {
    config: ThrottleConfig,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// An empty table.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            entries: HashMap::new(),
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Asks to make an attempt for `key` at `now`; consumes one attempt token when allowed.
    pub fn attempt(&mut self, now: Time, key: &K) -> Result<(), Throttled> {
        if !self.entries.contains_key(key) {
            if self.entries.len() >= self.config.max_keys {
                self.prune(now);
            }
            if self.entries.len() >= self.config.max_keys {
                return Err(Throttled::Full {
                    retry_after: self.config.base_lockout,
                });
            }
            self.entries.insert(
                key.clone(),
                Entry {
                    failures: 0,
                    last_failure: now,
                    locked_until: Time::ZERO,
                    attempts: TokenBucket::new(
                        now,
                        self.config.attempts_per_sec,
                        self.config.burst,
                    ),
                },
            );
        }
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        if entry.locked_until > now {
            return Err(Throttled::LockedOut {
                retry_after: entry.locked_until - now,
            });
        }
        entry
            .attempts
            .take(now)
            .map_err(|retry_after| Throttled::TooFast { retry_after })
    }

    /// Records a failed attempt for `key`; past the free failures, locks the key for a time
    /// that doubles with each further failure.
    pub fn failed(&mut self, now: Time, key: &K) {
        let config = self.config;
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if now.since(entry.last_failure) >= config.forget_after {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures > config.free_failures {
            let doublings = (entry.failures - config.free_failures - 1).min(30);
            let lockout = config
                .base_lockout
                .checked_mul(1 << doublings)
                .map_or(config.max_lockout, |l| l.min(config.max_lockout));
            entry.locked_until = now + lockout;
        }
    }

    /// Records a success for `key`: its failures are forgotten.
    pub fn succeeded(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drops entries that are neither locked nor remembered any more.
    pub fn prune(&mut self, now: Time) {
        let config = self.config;
        self.entries.retain(|_, entry| {
            let locked = entry.locked_until > now;
            let remembered =
                entry.failures > 0 && now.since(entry.last_failure) < config.forget_after;
            locked || remembered || !entry.attempts.is_full(now)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            free_failures: 3,
            base_lockout: Duration::from_secs(1),
            max_lockout: Duration::from_secs(8),
            forget_after: Duration::from_secs(100),
            attempts_per_sec: 1000,
            burst: 1000,
            max_keys: 4,
        }
    }

    fn at(secs: u64) -> Time {
        Time(secs * 1000)
    }

    #[test]
    fn given_repeated_failures_then_the_lockout_starts_after_the_free_ones_and_doubles() {
        let mut throttle = Throttle::new(config());
        let key = "alice";
        for _ in 0..3 {
            throttle.attempt(at(0), &key).unwrap();
            throttle.failed(at(0), &key);
        }
        throttle.attempt(at(0), &key).unwrap();
        throttle.failed(at(0), &key); // 4th failure: locked 1 s
        assert_eq!(
            throttle.attempt(at(0), &key),
            Err(Throttled::LockedOut {
                retry_after: Duration::from_secs(1)
            })
        );
        throttle.attempt(at(1), &key).unwrap();
        throttle.failed(at(1), &key); // 5th: 2 s
        assert!(throttle.attempt(at(2), &key).is_err());
        throttle.attempt(at(3), &key).unwrap();
        throttle.failed(at(3), &key); // 6th: 4 s
        throttle.attempt(at(7), &key).unwrap();
        throttle.failed(at(7), &key); // 7th: 8 s (the cap)
        throttle.attempt(at(15), &key).unwrap();
        throttle.failed(at(15), &key); // 8th: still 8 s
        assert_eq!(
            throttle.attempt(at(15), &key).unwrap_err().retry_after(),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let mut throttle = Throttle::new(config());
        for _ in 0..3 {
            throttle.attempt(at(0), &"bob").unwrap();
            throttle.failed(at(0), &"bob");
        }
        throttle.succeeded(&"bob");
        throttle.attempt(at(0), &"bob").unwrap();
        throttle.failed(at(0), &"bob");
        assert!(throttle.attempt(at(0), &"bob").is_ok());
    }

    #[test]
    fn failures_long_ago_are_forgotten() {
        let mut throttle = Throttle::new(config());
        for _ in 0..3 {
            throttle.attempt(at(0), &"carol").unwrap();
            throttle.failed(at(0), &"carol");
        }
        throttle.attempt(at(200), &"carol").unwrap();
        throttle.failed(at(200), &"carol");
        assert!(throttle.attempt(at(200), &"carol").is_ok());
    }

    #[test]
    fn the_attempt_rate_is_a_token_bucket() {
        let mut throttle = Throttle::new(ThrottleConfig {
            attempts_per_sec: 2,
            burst: 3,
            ..config()
        });
        for _ in 0..3 {
            throttle.attempt(Time(0), &"dave").unwrap();
        }
        assert_eq!(
            throttle.attempt(Time(0), &"dave"),
            Err(Throttled::TooFast {
                retry_after: Duration::from_millis(500)
            })
        );
        assert!(throttle.attempt(Time(500), &"dave").is_ok());
        assert!(throttle.attempt(Time(500), &"dave").is_err());
    }

    #[test]
    fn a_full_table_refuses_new_keys_instead_of_forgetting_lockouts() {
        let mut throttle = Throttle::new(config());
        for key in ["a", "b", "c", "d"] {
            throttle.attempt(at(0), &key).unwrap();
            throttle.failed(at(0), &key);
        }
        assert!(matches!(
            throttle.attempt(at(0), &"e"),
            Err(Throttled::Full { .. })
        ));
        assert_eq!(throttle.len(), 4);
        // Once the old entries are forgotten, room is made.
        assert!(throttle.attempt(at(500), &"e").is_ok());
    }
}
