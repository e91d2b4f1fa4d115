//! Admission control for a supernode (DESIGN.md section 6): it never exits under load, it says
//! `Busy` instead.
//!
//! Three gates, cheapest first:
//! 1. **handshakes**: a token bucket on new connections. An empty bucket means refusing the
//!    QUIC handshake outright (a few µs) because even answering `Busy` would cost a full
//!    handshake (~0.7 ms here, BENCHMARKS.md);
//! 2. **capacity**: at most `capacity` clients in session; the next one is answered `Busy`
//!    with a jittered `retry_after` and alternatives;
//! 3. **requests**: one token bucket for all requests, with priorities: a refresh of an
//!    admitted client may take the last token, a lookup leaves `refresh_reserve` tokens, a new
//!    registration leaves `refresh_reserve + lookup_reserve`.

use std::time::Duration;

use rand_core::RngCore;

use crate::rate::TokenBucket;
use crate::time::Time;

/// Tuning of [`Admission`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Most clients in session at once.
    pub capacity: usize,
    /// New handshakes per second, on average.
    pub handshakes_per_sec: u32,
    /// New handshakes in a burst.
    pub handshake_burst: u32,
    /// Requests per second, on average, over all clients.
    pub requests_per_sec: u32,
    /// Requests in a burst.
    pub request_burst: u32,
    /// Tokens only refreshes may take.
    pub refresh_reserve: u32,
    /// Further tokens only refreshes and lookups may take.
    pub lookup_reserve: u32,
    /// Base of the `retry_after` a full supernode answers; the actual value is uniform in
    /// `[base, 2 x base)` so that refused clients come back spread out.
    pub busy_retry: Duration,
    /// Refuse beyond the limits above (true), or only count (false). `false` exists only for
    /// `testbed outage --naive`, which shows what admission control prevents; a supernode run
    /// so takes every client and request until it falls over. Never switch it off in a
    /// deployment.
    pub enforce: bool,
}

impl Default for AdmissionConfig {
    /// 10,000 clients (about 370 MB of QUIC state, DESIGN.md section 10); 1,000 handshakes/s
    /// with a burst of 2,000 (the measured full-handshake cost is 0.7-0.9 ms of one core, so
    /// this keeps handshakes under one core); 50,000 requests/s (a small request costs ~20 µs,
    /// so one core); reserves of 10% and 10%; busy retry 2-4 s.
    fn default() -> Self {
        Self {
            capacity: 10_000,
            handshakes_per_sec: 1_000,
            handshake_burst: 2_000,
            requests_per_sec: 50_000,
            request_burst: 50_000,
            refresh_reserve: 5_000,
            lookup_reserve: 5_000,
            busy_retry: Duration::from_secs(2),
            enforce: true,
        }
    }
}

/// What kind of request, for priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// A refresh of an admitted client's lease: highest priority.
    Refresh,
    /// A lookup (or watch): middle.
    Lookup,
    /// A new registration: lowest.
    Register,
}

/// Why admission said no, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Refuse the handshake outright.
    #[error("handshake rate exceeded")]
    Handshake,
    /// Answer `Busy`: full.
    #[error("at capacity, retry after {0:?}")]
    Full(Duration),
    /// Answer `Busy`: over the request budget.
    #[error("over the request budget, retry after {0:?}")]
    Overloaded(Duration),
}

/// Admission state; see the module doc.
#[derive(Debug, Clone)]
pub struct Admission {
    config: AdmissionConfig,
    clients: usize,
    handshakes: TokenBucket,
    requests: TokenBucket,
    /// Requests admitted and refused as over the budget so far (for shedding).
    admitted: u64,
    refused: u64,
}

impl Admission {
    /// Fresh state at `now`.
    pub fn new(now: Time, config: AdmissionConfig) -> Self {
        Self {
            config,
            clients: 0,
            handshakes: TokenBucket::new(now, config.handshakes_per_sec, config.handshake_burst),
            requests: TokenBucket::new(now, config.requests_per_sec, config.request_burst),
            admitted: 0,
            refused: 0,
        }
    }

    /// Clients in session now.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// Load as a share of capacity, per mille.
    pub fn load_permille(&self) -> u16 {
        let load = self.clients.saturating_mul(1000) / self.config.capacity.max(1);
        u16::try_from(load.min(1000)).unwrap_or(1000)
    }

    /// A new connection is knocking: may its handshake proceed?
    pub fn handshake(&mut self, now: Time) -> Result<(), Refused> {
        if !self.config.enforce {
            return Ok(());
        }
        self.handshakes.take(now).map_err(|_| Refused::Handshake)
    }

    fn busy_retry(&self, rng: &mut impl RngCore) -> Duration {
        let base = u64::try_from(self.config.busy_retry.as_millis()).unwrap_or(u64::MAX);
        let jitter = if base == 0 { 0 } else { rng.next_u64() % base };
        Duration::from_millis(base.saturating_add(jitter))
    }

    /// A client says hello: takes a session slot, or `Full` with a jittered retry time.
    pub fn open_session(&mut self, rng: &mut impl RngCore) -> Result<(), Refused> {
        if self.config.enforce && self.clients >= self.config.capacity {
            return Err(Refused::Full(self.busy_retry(rng)));
        }
        self.clients += 1;
        Ok(())
    }

    /// A session ended (the connection closed).
    pub fn close_session(&mut self) {
        self.clients = self.clients.saturating_sub(1);
    }

    /// A request of `class` arrives at `now`.
    pub fn request(&mut self, now: Time, class: RequestClass) -> Result<(), Refused> {
        let reserve = match class {
            RequestClass::Refresh => 0,
            RequestClass::Lookup => self.config.refresh_reserve,
            RequestClass::Register => self
                .config
                .refresh_reserve
                .saturating_add(self.config.lookup_reserve),
        };
        let taken = if self.config.enforce {
            self.requests.take_keeping(now, reserve)
        } else {
            Ok(())
        };
        if taken.is_ok() {
            self.admitted = self.admitted.saturating_add(1);
        } else {
            self.refused = self.refused.saturating_add(1);
        }
        taken.map_err(Refused::Overloaded)
    }

    /// Requests admitted and refused as over the budget since the start (running totals).
    pub fn request_totals(&self) -> (u64, u64) {
        (self.admitted, self.refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);

    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(977);
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for byte in dest {
                *byte = self.next_u64() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    #[test]
    fn sessions_beyond_capacity_are_refused_with_a_jittered_retry() {
        let mut rng = Counter(0);
        let mut admission = Admission::new(
            Time(0),
            AdmissionConfig {
                capacity: 2,
                ..AdmissionConfig::default()
            },
        );
        admission.open_session(&mut rng).unwrap();
        admission.open_session(&mut rng).unwrap();
        let Err(Refused::Full(retry)) = admission.open_session(&mut rng) else {
            panic!("the third session must be refused");
        };
        assert!(retry >= Duration::from_secs(2) && retry < Duration::from_secs(4));
        assert_eq!(admission.load_permille(), 1000);
        admission.close_session();
        assert!(admission.open_session(&mut rng).is_ok());
    }

    #[test]
    fn refreshes_outrank_lookups_which_outrank_registrations() {
        let mut admission = Admission::new(
            Time(0),
            AdmissionConfig {
                requests_per_sec: 1,
                request_burst: 4,
                refresh_reserve: 1,
                lookup_reserve: 1,
                ..AdmissionConfig::default()
            },
        );
        let now = Time(0);
        assert!(admission.request(now, RequestClass::Register).is_ok()); // 3 left
        assert!(admission.request(now, RequestClass::Register).is_ok()); // 2 left
        assert!(admission.request(now, RequestClass::Register).is_err());
        assert!(admission.request(now, RequestClass::Lookup).is_ok()); // 1 left
        assert!(admission.request(now, RequestClass::Lookup).is_err());
        assert!(admission.request(now, RequestClass::Refresh).is_ok()); // 0 left
        assert!(admission.request(now, RequestClass::Refresh).is_err());
    }

    #[test]
    fn handshakes_beyond_the_rate_are_refused_outright() {
        let mut admission = Admission::new(
            Time(0),
            AdmissionConfig {
                handshakes_per_sec: 10,
                handshake_burst: 2,
                ..AdmissionConfig::default()
            },
        );
        assert!(admission.handshake(Time(0)).is_ok());
        assert!(admission.handshake(Time(0)).is_ok());
        assert_eq!(admission.handshake(Time(0)), Err(Refused::Handshake));
        assert!(admission.handshake(Time(100)).is_ok());
    }

    #[test]
    fn without_enforcement_everything_is_admitted_and_counted() {
        let mut rng = Counter(0);
        let mut admission = Admission::new(
            Time(0),
            AdmissionConfig {
                capacity: 2,
                handshakes_per_sec: 1,
                handshake_burst: 1,
                requests_per_sec: 1,
                request_burst: 1,
                enforce: false,
                ..AdmissionConfig::default()
            },
        );
        for _ in 0..10 {
            assert!(admission.handshake(Time(0)).is_ok());
            assert!(admission.open_session(&mut rng).is_ok());
            assert!(admission.request(Time(0), RequestClass::Register).is_ok());
        }
        assert_eq!(admission.clients(), 10);
        assert_eq!(admission.load_permille(), 1000);
        assert_eq!(admission.request_totals(), (10, 0));
    }
}
