//! Capped full-jitter backoff with a retry budget.
//!
//! After the n-th consecutive failure the next attempt waits `rand(0, min(cap, base * 2^n))`
//! (AWS's "full jitter"): the exponential part spreads retries out as failures persist, and the
//! jitter decorrelates clients that failed at the same instant (a supernode dying takes all its
//! clients down together; without jitter they would all come back together). A server's
//! `Busy { retry_after }` raises the floor of the next delay. The budget caps how many attempts
//! one episode may make before the caller changes strategy (DESIGN.md section 6: go to the
//! megas of the bootstrap list).
//!
//! No clock and no RNG of its own: the caller passes the RNG and acts on the returned delay.

use std::time::Duration;

use rand_core::RngCore;

/// The most a server's `retry_after` may raise a delay. Any server, a hostile one included,
/// may answer `Busy`; without a ceiling `retry_after_ms = u32::MAX` would park a client for 49
/// days. A minute is twice the backoff's own cap: long enough for an overloaded supernode to
/// shed its load, short enough that a lying one costs a client at most a minute per answer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Tuning of a [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The first window: after one failure, the delay is uniform in `[0, base)`.
    pub base: Duration,
    /// The largest window. Bounds how long a client can stay away after a long outage.
    pub cap: Duration,
    /// Attempts allowed in one episode (reset by [`Backoff::succeeded`]); `None` for no limit.
    pub budget: Option<u32>,
    /// Draw the delay uniformly from the window (true), or wait the whole window (false).
    /// `false` exists only for `testbed outage --naive`, which shows what the jitter prevents:
    /// clients that failed together retrying together. Never switch it off in a deployment.
    pub jitter: bool,
}

impl Default for BackoffConfig {
    /// `base` 250 ms: the first retry lands in a quarter second, so a single lost supernode
    /// costs a client well under a second. `cap` 30 s: after a long outage clients come back
    /// spread over half a minute, which turns Skype's 2010 restart storm (100x normal load)
    /// into a bounded, flat arrival rate. `budget` 8 attempts: about 1 + 2 + ... + 30 s of
    /// trying before falling back to the megas.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            budget: Some(8),
            jitter: true,
        }
    }
}

/// The retry budget of this episode is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("gave up after {attempts} attempts")]
pub struct BackoffError {
    /// Attempts made in the episode.
    pub attempts: u32,
}

/// The retry state of one episode of failures.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    /// A fresh episode.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            failures: 0,
        }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The window `min(cap, base * 2^(failures-1))` the next delay is drawn from.
    fn window(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(31);
        let factor = 1u32 << doublings;
        self.config
            .base
            .checked_mul(factor)
            .map_or(self.config.cap, |w| w.min(self.config.cap))
    }

    /// Records a failure and returns how long to wait before the next attempt, at least
    /// `retry_after` when the server named one (believed up to [`MAX_RETRY_AFTER`]); or an
    /// error when the budget is spent.
    pub fn failed(
        &mut self,
        rng: &mut impl RngCore,
        retry_after: Option<Duration>,
    ) -> Result<Duration, BackoffError> {
        self.failures = self.failures.saturating_add(1);
        if let Some(budget) = self.config.budget {
            if self.failures > budget {
                return Err(BackoffError {
                    attempts: self.failures - 1,
                });
            }
        }
        let window = self.window();
        let window_nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if window_nanos == 0 {
            Duration::ZERO
        } else if !self.config.jitter {
            window
        } else {
            Duration::from_nanos(rng.next_u64() % window_nanos)
        };
        Ok(jitter.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER)))
    }

    /// Ends the episode: the next failure starts from `base` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn a_busy_asking_for_49_days_is_believed_for_a_minute_at_most() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut backoff = Backoff::new(BackoffConfig::default());
        let forever = std::time::Duration::from_millis(u64::from(u32::MAX));
        let delay = backoff.failed(&mut rng, Some(forever)).unwrap();
        assert_eq!(delay, MAX_RETRY_AFTER);
        // An honest retry_after below the ceiling is honoured as it is.
        let honest = std::time::Duration::from_secs(5);
        assert!(backoff.failed(&mut rng, Some(honest)).unwrap() >= honest);
    }

    fn config() -> BackoffConfig {
        BackoffConfig {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            budget: Some(10),
            jitter: true,
        }
    }

    #[test]
    fn without_jitter_clients_that_failed_together_retry_together() {
        let naive = BackoffConfig {
            jitter: false,
            ..config()
        };
        let mut rng = SmallRng::seed_from_u64(3);
        let delays: Vec<Duration> = (0..50)
            .map(|_| Backoff::new(naive).failed(&mut rng, None).unwrap())
            .collect();
        assert!(delays.iter().all(|d| *d == Duration::from_millis(100)));
        let mut jittered = Backoff::new(config());
        let first = jittered.failed(&mut rng, None).unwrap();
        jittered.succeeded();
        let spread = (0..50).any(|_| {
            let d = jittered.failed(&mut rng, None).unwrap();
            jittered.succeeded();
            d != first
        });
        assert!(spread, "the default draws delays apart");
    }

    #[test]
    fn the_window_doubles_until_the_cap() {
        let mut backoff = Backoff::new(config());
        let mut windows = Vec::new();
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..7 {
            backoff.failed(&mut rng, None).unwrap();
            windows.push(backoff.window().as_millis());
        }
        assert_eq!(windows, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn the_budget_ends_the_episode_and_success_resets_it() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut backoff = Backoff::new(BackoffConfig {
            budget: Some(3),
            ..config()
        });
        for _ in 0..3 {
            assert!(backoff.failed(&mut rng, None).is_ok());
        }
        assert_eq!(
            backoff.failed(&mut rng, None),
            Err(BackoffError { attempts: 3 })
        );
        backoff.succeeded();
        assert!(backoff.failed(&mut rng, None).is_ok());
    }

    #[test]
    fn a_servers_retry_after_is_a_floor() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut backoff = Backoff::new(config());
        let delay = backoff
            .failed(&mut rng, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(delay >= Duration::from_secs(5));
    }

    #[test]
    fn clients_failing_together_spread_out() {
        // 1,000 clients lose their supernode at the same instant: their first retries must
        // not land together. With full jitter over 100 ms, no 10 ms slot holds more than a
        // few percent of them.
        let seed = 4;
        println!("seed {seed}");
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut slots = [0u32; 10];
        for _ in 0..1_000 {
            let mut backoff = Backoff::new(config());
            let delay = backoff.failed(&mut rng, None).unwrap();
            let slot = usize::try_from(delay.as_millis() / 10).unwrap();
            slots[slot] += 1;
        }
        assert!(slots.iter().all(|&n| (50..=150).contains(&n)), "{slots:?}");
    }

    proptest! {
        #[test]
        fn delays_stay_within_the_window(seed in any::<u64>(), failures in 1u32..40) {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut backoff = Backoff::new(BackoffConfig { budget: None, ..config() });
            for _ in 0..failures {
                let delay = backoff.failed(&mut rng, None).unwrap();
                prop_assert!(delay < backoff.window().max(Duration::from_nanos(1)));
                prop_assert!(delay <= config().cap);
            }
        }
    }
}
