//! The handshake gate in front of every [`crate::Listener`]: what an unvalidated address may
//! cost the server, how many handshakes one source may hold, and the counters an operator reads.
//!
//! A QUIC Initial costs its sender one packet and its receiver a TLS key exchange and a
//! connection slot until the handshake times out; its source address may be spoofed. So:
//!
//! - below [`HandshakeGate::retry_above`] handshakes in flight, an Initial is served at once
//!   (no extra round trip while the server is quiet);
//! - above it, an Initial from an address that has not proved it receives our packets is
//!   answered with a stateless QUIC Retry (RFC 9000 section 8.1; quinn's `Incoming::retry`):
//!   no permit, no crypto, no state. Only a sender that reads the Retry at that address comes
//!   back, with a token;
//! - a validated address may hold at most [`HandshakeGate::per_source`] handshakes at once
//!   (IPv6 counted per /64, the block one subscriber gets), so one real host cannot take every
//!   permit either. Unvalidated handshakes are not counted per source: their source may be the
//!   victim's address, spoofed to lock it out.
//!
//! Measured in `BENCHMARKS.md` ("Handshake gate"): a Retry costs one round trip and a few
//! microseconds of server CPU, which is why it is not used while the server is quiet.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Default cap on handshakes in progress at once on one listener.
///
/// At ~250 µs of CPU each, 256 handshakes are ~64 ms of work for one core: enough to keep a
/// core busy through a burst, small enough that a storm beyond it is refused in microseconds
/// rather than queued into timeouts. Operators may change it.
pub const DEFAULT_MAX_CONCURRENT_HANDSHAKES: usize = 256;

/// Default number of handshakes in flight above which unvalidated addresses get a Retry.
///
/// A quarter of the permits: a quiet server answers at once, and a flood of spoofed Initials
/// can hold at most this many permits (for one handshake deadline each), leaving the other
/// three quarters for senders that proved their address.
pub const DEFAULT_RETRY_ABOVE: usize = 64;

/// Default cap on handshakes one validated source (an IPv4 address, an IPv6 /64) holds at once.
///
/// A household or an office behind one NAT reconnects together when its supernode dies; 32
/// concurrent handshakes let 32 of them through per round trip, and the rest retry after their
/// back-off. One hostile host cannot hold more than an eighth of the default permits.
pub const DEFAULT_PER_SOURCE: usize = 32;

/// The limits of a listener's handshake gate; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeGate {
    /// Handshakes in progress at once (at least 1).
    pub max_in_flight: usize,
    /// In-flight handshakes above which an unvalidated address is sent a Retry; 0 validates
    /// every address.
    pub retry_above: usize,
    /// Handshakes one validated source may hold at once (at least 1).
    pub per_source: usize,
}

impl Default for HandshakeGate {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_CONCURRENT_HANDSHAKES,
            retry_above: DEFAULT_RETRY_ABOVE,
            per_source: DEFAULT_PER_SOURCE,
        }
    }
}

impl HandshakeGate {
    /// The default gate with `max_in_flight` permits (the other limits scaled down if needed).
    pub fn with_max_in_flight(max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            max_in_flight,
            retry_above: DEFAULT_RETRY_ABOVE.min(max_in_flight),
            per_source: DEFAULT_PER_SOURCE.min(max_in_flight),
        }
    }
}

/// What the gate did, for `/metrics`.
#[derive(Debug, Default)]
pub struct GateStats {
    /// Initials answered with a Retry (address validation).
    pub retried: AtomicU64,
    /// Attempts refused because every permit was taken.
    pub refused_full: AtomicU64,
    /// Attempts refused because their source held its share of permits.
    pub refused_per_source: AtomicU64,
    /// Attempts refused for an address validation token that did not check out.
    pub refused_unvalidated: AtomicU64,
}

impl GateStats {
    /// Every refusal, whatever the reason.
    pub fn refused(&self) -> u64 {
        self.refused_full.load(Ordering::Relaxed)
            + self.refused_per_source.load(Ordering::Relaxed)
            + self.refused_unvalidated.load(Ordering::Relaxed)
    }

    /// Retries sent.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }
}

/// The key a source is counted under: an IPv4 address, or the /64 of an IPv6 one (an
/// IPv4-mapped IPv6 address counts as its IPv4 address). One subscriber usually gets a whole
/// /64, so counting per /128 would give one host 2^64 keys.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// In-flight handshakes per validated source. Holds at most one entry per held permit, so it
/// is bounded by [`HandshakeGate::max_in_flight`].
#[derive(Debug, Default)]
pub(crate) struct SourceSlots {
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl SourceSlots {
    /// Takes a slot for `ip` unless it already holds `cap`.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<SourceSlot> {
        let key = source_key(ip);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            slots: Arc::clone(self),
            key,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One handshake's slot of its source; released on drop.
#[derive(Debug)]
pub(crate) struct SourceSlot {
    slots: Arc<SourceSlots>,
    key: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_sources_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_source_holds_at_most_its_cap_and_a_released_slot_is_reusable() {
        let slots = Arc::new(SourceSlots::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| slots.take(ip, 3).unwrap()).collect();
        assert!(slots.take(ip, 3).is_none(), "a fourth slot beyond the cap");
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(
            slots.take(other, 3).is_some(),
            "another source is unaffected"
        );
        drop(held);
        assert_eq!(slots.len(), 0, "released slots leave no entry behind");
        assert!(slots.take(ip, 3).is_some());
    }
}
