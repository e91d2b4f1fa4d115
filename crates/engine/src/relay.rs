//! A supernode's relay bookkeeping (README, "Behind NAT"): which relay sessions
//! exist, whether another may open, and whether a relayed packet fits the caps. The supernode
//! owns the sockets and forwards the bytes; this decides.
//!
//! A relay session joins exactly two clients: the caller, who asked on its authenticated
//! session, and the callee it named, a device homed at this supernode, which joins by binding
//! its side. Nobody can point a relay at an address of their choosing, so it is no open proxy.
//! Every session is capped in bytes per second, all of them together too, and while the
//! supernode sheds load the relay is what gives way first after presence: no new session, and
//! the sessions that exist share a quarter of the total.

use std::collections::HashMap;
use std::time::Duration;

use switchboard_proto::NodeId;

use crate::rate::TokenBucket;
use crate::time::Time;

/// The relay's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Relay sessions at once (each holds two UDP ports). 0 turns relaying off.
    pub max_sessions: usize,
    /// Relay sessions one device takes part in at once, as caller or callee: a few
    /// conversations, not a fan-out.
    pub max_per_client: usize,
    /// Bytes per second one session forwards (both directions together).
    pub session_bytes_per_sec: u32,
    /// Bytes per second all sessions forward together.
    pub total_bytes_per_sec: u32,
    /// A session with no packet for this long ends.
    pub idle: Duration,
}

impl Default for RelayConfig {
    /// 256 sessions of 1 MiB/s each, 16 MiB/s in all, 4 per device, 30 s idle: a supernode
    /// is a volunteer's machine (DESIGN.md section 1), and relaying is the fallback for the
    /// few pairs that cannot punch through, for text and small files, not for video.
    fn default() -> Self {
        Self {
            max_sessions: 256,
            max_per_client: 4,
            session_bytes_per_sec: 1 << 20,
            total_bytes_per_sec: 16 << 20,
            idle: Duration::from_secs(30),
        }
    }
}

/// Why a relay session was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayRefused {
    /// This supernode does not relay.
    #[error("this supernode does not relay")]
    Disabled,
    /// It relays as many sessions as it may.
    #[error("the relay is full")]
    Full,
    /// One of the two devices takes part in as many sessions as it may.
    #[error("a device is in too many relay sessions")]
    ClientLimit,
    /// A device cannot be relayed to itself.
    #[error("a device cannot be relayed to itself")]
    SameDevice,
    /// The supernode is shedding load; relaying is what gives way first after presence.
    #[error("the supernode is shedding load")]
    Shedding,
}

/// One relay session's identifier.
pub type RelayId = u64;

#[derive(Debug)]
struct Session {
    caller: NodeId,
    callee: NodeId,
    bucket: TokenBucket,
    last_packet: Time,
    forwarded: u64,
    dropped: u64,
}

/// A session is a flood, and is ended, once it has had this many seconds' worth of its cap
/// dropped and [`FLOOD_RATIO`] times more dropped than forwarded: the cap bounds what a flood
/// sends on, but reading and dropping it still costs the relay CPU. A congestion-controlled
/// QUIC sender backs off after a few losses and never comes near either mark.
pub const FLOOD_SECONDS: u64 = 8;

/// See [`FLOOD_SECONDS`].
pub const FLOOD_RATIO: u64 = 4;

/// Burst of a byte bucket: a quarter of a second at its rate, and at least one full-size
/// datagram (64 KiB) so that no packet is too big to ever fit.
fn burst(rate: u32) -> u32 {
    (rate / 4).max(1 << 16)
}

/// The relay sessions of one supernode; see the module doc.
#[derive(Debug)]
pub struct Relays {
    config: RelayConfig,
    sessions: HashMap<RelayId, Session>,
    per_device: HashMap<NodeId, usize>,
    total: TokenBucket,
    next: RelayId,
    shedding: bool,
}

impl Relays {
    /// No session yet.
    pub fn new(now: Time, config: RelayConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
            per_device: HashMap::new(),
            total: TokenBucket::new(
                now,
                config.total_bytes_per_sec,
                burst(config.total_bytes_per_sec),
            ),
            next: 1,
            shedding: false,
        }
    }

    /// The limits.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Opens a session from `caller` to `callee`, or says why not.
    pub fn open(
        &mut self,
        now: Time,
        caller: NodeId,
        callee: NodeId,
    ) -> Result<RelayId, RelayRefused> {
        if self.config.max_sessions == 0 {
            return Err(RelayRefused::Disabled);
        }
        if caller == callee {
            return Err(RelayRefused::SameDevice);
        }
        if self.shedding {
            return Err(RelayRefused::Shedding);
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(RelayRefused::Full);
        }
        let busy = |node: &NodeId| self.per_device.get(node).copied().unwrap_or(0);
        if busy(&caller) >= self.config.max_per_client
            || busy(&callee) >= self.config.max_per_client
        {
            return Err(RelayRefused::ClientLimit);
        }
        for node in [caller, callee] {
            *self.per_device.entry(node).or_insert(0) += 1;
        }
        let id = self.next;
        self.next += 1;
        let rate = self.config.session_bytes_per_sec;
        self.sessions.insert(
            id,
            Session {
                caller,
                callee,
                bucket: TokenBucket::new(now, rate, burst(rate)),
                last_packet: now,
                forwarded: 0,
                dropped: 0,
            },
        );
        Ok(id)
    }

    /// Ends session `id` (either side left, it idled, or the supernode stops).
    pub fn close(&mut self, id: RelayId) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        for node in [session.caller, session.callee] {
            if let Some(count) = self.per_device.get_mut(&node) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_device.remove(&node);
                }
            }
        }
    }

    /// Whether a packet of `bytes` on session `id` may be forwarded now: it fits the
    /// session's cap and the total (which counts four times over while shedding). A packet
    /// that does not fit is dropped, and the clients' congestion control slows down.
    pub fn admit(&mut self, now: Time, id: RelayId, bytes: usize) -> bool {
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let Some(session) = self.sessions.get_mut(&id) else {
            return false;
        };
        session.last_packet = now;
        let cost = if self.shedding {
            bytes.saturating_mul(4)
        } else {
            bytes
        };
        let fits =
            session.bucket.take_many(now, bytes).is_ok() && self.total.take_many(now, cost).is_ok();
        let counter = if fits {
            &mut session.forwarded
        } else {
            &mut session.dropped
        };
        *counter = counter.saturating_add(u64::from(bytes));
        fits
    }

    /// Whether session `id` floods its relay (see [`FLOOD_SECONDS`]) and should end.
    pub fn flooding(&self, id: RelayId) -> bool {
        let floor = FLOOD_SECONDS.saturating_mul(u64::from(self.config.session_bytes_per_sec));
        self.sessions.get(&id).is_some_and(|s| {
            s.dropped > floor && s.dropped > s.forwarded.saturating_mul(FLOOD_RATIO)
        })
    }

    /// Whether session `id` has seen no packet for the idle time (or is gone).
    pub fn idle(&self, now: Time, id: RelayId) -> bool {
        self.sessions
            .get(&id)
            .is_none_or(|s| now.since(s.last_packet) >= self.config.idle)
    }

    /// Follows the supernode's load shedding.
    pub fn set_shedding(&mut self, shedding: bool) {
        self.shedding = shedding;
    }

    /// Sessions open now.
    pub fn active(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::SecretKey;

    fn node(seed: u8) -> NodeId {
        SecretKey::from_seed([seed; 32]).node_id()
    }

    fn relays(config: RelayConfig) -> Relays {
        Relays::new(Time(0), config)
    }

    #[test]
    fn a_device_takes_part_in_at_most_its_share_of_sessions_as_caller_or_callee() {
        let mut r = relays(RelayConfig {
            max_per_client: 2,
            ..RelayConfig::default()
        });
        let (a, b, c, d) = (node(1), node(2), node(3), node(4));
        let first = r.open(Time(0), a, b).unwrap();
        r.open(Time(0), c, a).unwrap();
        assert_eq!(r.open(Time(0), a, d), Err(RelayRefused::ClientLimit));
        assert_eq!(r.open(Time(0), d, a), Err(RelayRefused::ClientLimit));
        r.close(first);
        assert!(r.open(Time(0), a, d).is_ok());
    }

    #[test]
    fn the_relay_holds_at_most_its_sessions_and_none_when_off() {
        let mut r = relays(RelayConfig {
            max_sessions: 1,
            ..RelayConfig::default()
        });
        r.open(Time(0), node(1), node(2)).unwrap();
        assert_eq!(r.open(Time(0), node(3), node(4)), Err(RelayRefused::Full));
        let mut off = relays(RelayConfig {
            max_sessions: 0,
            ..RelayConfig::default()
        });
        assert_eq!(
            off.open(Time(0), node(1), node(2)),
            Err(RelayRefused::Disabled)
        );
        assert_eq!(
            r.open(Time(0), node(5), node(5)),
            Err(RelayRefused::SameDevice)
        );
    }

    #[test]
    fn a_session_forwards_its_rate_and_no_more() {
        let mut r = relays(RelayConfig {
            session_bytes_per_sec: 100_000,
            total_bytes_per_sec: 10_000_000,
            ..RelayConfig::default()
        });
        let id = r.open(Time(0), node(1), node(2)).unwrap();
        // Over 10 s of 1,200-byte packets offered without pause, what passes is the burst
        // (64 KiB) and the rate, not what was offered.
        let mut forwarded = 0u64;
        for ms in 0..10_000u64 {
            for _ in 0..10 {
                if r.admit(Time(ms), id, 1_200) {
                    forwarded += 1_200;
                }
            }
        }
        assert!(
            (1_000_000..=1_000_000 + 65_536 + 1_200).contains(&forwarded),
            "{forwarded}"
        );
        assert!(!r.admit(Time(10_000), 99, 1), "no session, no forwarding");
    }

    #[test]
    fn the_total_cap_holds_over_all_sessions_and_shrinks_while_shedding() {
        let config = RelayConfig {
            session_bytes_per_sec: 1_000_000,
            total_bytes_per_sec: 200_000,
            ..RelayConfig::default()
        };
        let offered = |r: &mut Relays, ids: &[RelayId], from: u64| {
            let mut forwarded = 0u64;
            for ms in from..from + 10_000 {
                for id in ids {
                    if r.admit(Time(ms), *id, 1_000) {
                        forwarded += 1_000;
                    }
                }
            }
            forwarded
        };
        let mut r = relays(config);
        let ids: Vec<RelayId> = (0..4)
            .map(|i| r.open(Time(0), node(i), node(i + 10)).unwrap())
            .collect();
        let calm = offered(&mut r, &ids, 0);
        assert!((2_000_000..=2_070_000).contains(&calm), "{calm}");
        r.set_shedding(true);
        assert_eq!(
            r.open(Time(10_000), node(30), node(31)),
            Err(RelayRefused::Shedding)
        );
        let shedding = offered(&mut r, &ids, 10_000);
        assert!((450_000..=570_000).contains(&shedding), "{shedding}");
    }

    #[test]
    fn a_flood_is_told_apart_from_a_sender_over_its_cap() {
        let config = RelayConfig {
            session_bytes_per_sec: 100_000,
            ..RelayConfig::default()
        };
        let mut r = relays(config);
        let (flood, paced) = (
            r.open(Time(0), node(1), node(2)).unwrap(),
            r.open(Time(0), node(3), node(4)).unwrap(),
        );
        // Twice its cap, for 20 s: half dropped, never a flood.
        for ms in 0..20_000u64 {
            if ms % 6 == 0 {
                r.admit(Time(ms), paced, 1_200);
            }
        }
        assert!(!r.flooding(paced));
        // 120 times its cap: a flood once 8 s of its cap (800 kB) were dropped, within 70 ms.
        let mut flagged_at = None;
        for ms in 0..20_000u64 {
            for _ in 0..10 {
                r.admit(Time(ms), flood, 1_200);
            }
            if r.flooding(flood) {
                flagged_at = Some(ms);
                break;
            }
        }
        let at = flagged_at.expect("the flood was never flagged");
        assert!((60..=80).contains(&at), "{at} ms");
        assert!(!r.flooding(99));
    }

    #[test]
    fn a_session_without_packets_idles_out() {
        let mut r = relays(RelayConfig::default());
        let id = r.open(Time(0), node(1), node(2)).unwrap();
        assert!(!r.idle(Time(29_999), id));
        assert!(r.admit(Time(29_999), id, 100));
        assert!(!r.idle(Time(59_998), id));
        assert!(r.idle(Time(59_999), id));
        r.close(id);
        assert!(r.idle(Time(0), id));
        assert_eq!(r.active(), 0);
    }
}
