//! A token bucket on the engine's clock: `rate` tokens per second (or per minute), at most
//! `burst` saved up.
//!
//! Used for attempt rates (logins per key), new handshakes, request budgets and tickets per
//! account. Tokens are counted in 1/60,000ths so that any rate per minute refills in whole units
//! per millisecond.

use std::time::Duration;

use crate::time::Time;

/// Units one token is counted in: a rate of `n` per minute refills `n` units per millisecond.
const UNITS: u64 = 60_000;

/// A token bucket; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens per minute = units per millisecond.
    rate_per_min: u64,
    burst_units: u64,
    units: u64,
    refilled_at: Time,
}

impl TokenBucket {
    /// A full bucket refilling `rate` tokens per second up to `burst` (both at least 1).
    pub fn new(now: Time, rate: u32, burst: u32) -> Self {
        Self::per_minute(now, rate.max(1).saturating_mul(60), burst)
    }

    /// A full bucket refilling `rate` tokens per minute up to `burst` (both at least 1).
    pub fn per_minute(now: Time, rate: u32, burst: u32) -> Self {
        let burst_units = u64::from(burst.max(1)) * UNITS;
        Self {
            rate_per_min: u64::from(rate.max(1)),
            burst_units,
            units: burst_units,
            refilled_at: now,
        }
    }

    fn refill(&mut self, now: Time) {
        let elapsed_ms = now.0.saturating_sub(self.refilled_at.0);
        self.units = self
            .units
            .saturating_add(elapsed_ms.saturating_mul(self.rate_per_min))
            .min(self.burst_units);
        if now > self.refilled_at {
            self.refilled_at = now;
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Time) -> Result<(), Duration> {
        self.take_keeping(now, 0)
    }

    /// Takes one token only if `reserve` tokens remain afterwards: lower-priority work leaves
    /// room for higher-priority work. Says how long until that holds.
    pub fn take_keeping(&mut self, now: Time, reserve: u32) -> Result<(), Duration> {
        self.take_units(now, UNITS, u64::from(reserve) * UNITS)
    }

    /// Takes `n` tokens at once (a packet's bytes, for a byte rate), or says how long until
    /// they are there. More than the burst never fits.
    pub fn take_many(&mut self, now: Time, n: u32) -> Result<(), Duration> {
        self.take_units(now, u64::from(n) * UNITS, 0)
    }

    fn take_units(&mut self, now: Time, take: u64, reserve: u64) -> Result<(), Duration> {
        self.refill(now);
        let needed = take.saturating_add(reserve);
        if self.units < needed {
            let missing = needed - self.units;
            return Err(Duration::from_millis(missing.div_ceil(self.rate_per_min)));
        }
        self.units -= take;
        Ok(())
    }

    /// Whether the bucket is full at `now` (an idle key that can be forgotten).
    pub fn is_full(&mut self, now: Time) -> bool {
        self.refill(now);
        self.units >= self.burst_units
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut bucket = TokenBucket::new(Time(0), 2, 3);
        for _ in 0..3 {
            bucket.take(Time(0)).unwrap();
        }
        assert_eq!(bucket.take(Time(0)), Err(Duration::from_millis(500)));
        assert!(bucket.take(Time(500)).is_ok());
        assert!(bucket.take(Time(500)).is_err());
        assert!(bucket.is_full(Time(10_000)));
    }

    #[test]
    fn a_reserve_keeps_tokens_for_higher_priorities() {
        let mut bucket = TokenBucket::new(Time(0), 10, 4);
        assert!(bucket.take_keeping(Time(0), 2).is_ok()); // 3 left
        assert!(bucket.take_keeping(Time(0), 2).is_ok()); // 2 left
        assert!(bucket.take_keeping(Time(0), 2).is_err()); // would leave 1
        assert!(bucket.take(Time(0)).is_ok()); // the higher priority still gets one
    }

    #[test]
    fn a_byte_rate_takes_a_packet_at_a_time() {
        let mut bucket = TokenBucket::new(Time(0), 1_000, 1_500);
        assert!(bucket.take_many(Time(0), 1_200).is_ok());
        assert_eq!(
            bucket.take_many(Time(0), 1_200),
            Err(Duration::from_millis(900))
        );
        assert!(bucket.take_many(Time(900), 1_200).is_ok());
        assert!(bucket.take_many(Time(10_000), 1_501).is_err());
    }

    #[test]
    fn a_bucket_per_minute_refills_one_token_every_sixtieth_of_a_minute_per_rate() {
        let mut bucket = TokenBucket::per_minute(Time(0), 6, 2);
        bucket.take(Time(0)).unwrap();
        bucket.take(Time(0)).unwrap();
        assert_eq!(bucket.take(Time(0)), Err(Duration::from_secs(10)));
        assert!(bucket.take(Time(9_999)).is_err());
        assert!(bucket.take(Time(10_000)).is_ok());
    }
}
