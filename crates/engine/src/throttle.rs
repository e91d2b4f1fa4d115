//! Throttling of attempts that can fail (logins): a growing lockout per key after repeated
//! failures, and a token bucket per key on the attempt rate.
//!
//! Written here rather than taken from `governor` because it must be sans-IO (time is an input,
//! so a lockout test takes microseconds and the simulator can drive it) and because governor has
//! no notion of a lockout that grows with consecutive failures.
//!
//! Keys are whatever the caller throttles on: an account name, a source address, a pair of
//! both. The table is bounded ([`ThrottleConfig::max_keys`]); when it is full of live entries,
//! a new key evicts the entry that matters least (an unlocked one idle longest, else the lockout
//! that ends soonest) rather than being refused: a full table must not lock everyone out, and
//! since lockouts are keyed per (account, address) by the auth-server, flushing one takes as
//! many addresses as the table has entries.

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
}

impl Throttled {
    /// How long to wait.
    pub fn retry_after(&self) -> Duration {
        match *self {
            Self::LockedOut { retry_after } | Self::TooFast { retry_after } => retry_after,
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
    evicted: u64,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// An empty table.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            entries: HashMap::new(),
            evicted: 0,
        }
    }

    /// Entries evicted so far because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
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
        let entry = self.entry(now, key);
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
        let entry = self.entry(now, key);
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

    /// Failures of `key` beyond the free ones that are still remembered at `now` (0 for an
    /// unknown key): how hard someone is guessing, for callers that slow down rather than lock.
    pub fn excess_failures(&self, now: Time, key: &K) -> u32 {
        self.entries.get(key).map_or(0, |entry| {
            if now.since(entry.last_failure) >= self.config.forget_after {
                0
            } else {
                entry.failures.saturating_sub(self.config.free_failures)
            }
        })
    }

    /// The entry of `key`, made if missing (evicting one if the table is full).
    fn entry(&mut self, now: Time, key: &K) -> &mut Entry {
        if !self.entries.contains_key(key) && self.entries.len() >= self.config.max_keys {
            self.prune(now);
            if self.entries.len() >= self.config.max_keys {
                self.evict_one(now);
            }
        }
        let config = self.config;
        self.entries.entry(key.clone()).or_insert_with(|| Entry {
            failures: 0,
            last_failure: now,
            locked_until: Time::ZERO,
            attempts: TokenBucket::new(now, config.attempts_per_sec, config.burst),
        })
    }

    /// Drops the entry that matters least: an unlocked one whose last failure is oldest, else
    /// the one whose lockout ends soonest. A linear scan, only when the table is full.
    fn evict_one(&mut self, now: Time) {
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, entry)| {
                let locked = entry.locked_until > now;
                (locked, entry.locked_until, entry.last_failure)
            })
            .map(|(key, _)| key.clone());
        if let Some(victim) = victim {
            self.entries.remove(&victim);
            self.evicted += 1;
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
    fn a_full_table_evicts_an_unlocked_entry_before_any_lockout_and_never_refuses_a_new_key() {
        let mut throttle = Throttle::new(config());
        // "locked" is locked out; the others have one failure each, "a" the oldest.
        for (t, key) in [(1, "a"), (2, "b"), (3, "c")] {
            throttle.attempt(at(t), &key).unwrap();
            throttle.failed(at(t), &key);
        }
        for _ in 0..4 {
            throttle.attempt(at(3), &"locked").unwrap();
            throttle.failed(at(3), &"locked");
        }
        assert!(throttle.attempt(at(3), &"e").is_ok(), "a new key is served");
        assert_eq!(throttle.len(), 4);
        assert_eq!(throttle.evicted(), 1);
        assert_eq!(
            throttle.excess_failures(at(3), &"a"),
            0,
            "the oldest unlocked one went"
        );
        assert!(
            throttle.attempt(at(3), &"locked").is_err(),
            "the lockout was kept"
        );
        // A table of lockouts only gives up the one that ends soonest.
        let mut full = Throttle::new(config());
        for (t, key) in [(0, "w"), (1, "x"), (2, "y"), (3, "z")] {
            for _ in 0..4 {
                full.attempt(at(t), &key).unwrap();
                full.failed(at(t), &key);
            }
        }
        assert!(full.attempt(at(3), &"new").is_ok());
        assert!(full.attempt(at(3), &"w").is_ok(), "w's lockout ended first");
    }

    #[test]
    fn excess_failures_count_past_the_free_ones_and_are_forgotten() {
        let mut throttle = Throttle::new(config());
        for _ in 0..5 {
            throttle.failed(at(0), &"guessed");
        }
        assert_eq!(throttle.excess_failures(at(0), &"guessed"), 2);
        assert_eq!(throttle.excess_failures(at(0), &"unknown"), 0);
        assert_eq!(throttle.excess_failures(at(100), &"guessed"), 0);
    }
}
