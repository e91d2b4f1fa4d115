//! The membership's tuning, and its translation into foca's configuration.

use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

use foca::{Config as FocaConfig, PeriodicParams};
use switchboard_proto::limits::MAX_MEMBERSHIP_PAYLOAD;

/// Tuning of the membership protocol. The defaults detect a dead supernode on a LAN in about
/// five seconds: it is probed within a second or two, suspected after `probe_period`, and
/// declared down `suspect_to_down_after` later unless it refutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipConfig {
    /// How often a member probes another.
    pub probe_period: Duration,
    /// How long a direct probe may take before others are asked to probe indirectly; a high
    /// quantile of the round-trip time.
    pub probe_rtt: Duration,
    /// How many others probe indirectly (SWIM's `k`).
    pub indirect_probes: usize,
    /// How long a suspect has to refute before it is declared down.
    pub suspect_to_down_after: Duration,
    /// How many times each update is piggybacked, at least; the membership raises it to
    /// memberlist's `4 * ceil(log10(n + 1))` as the overlay grows (16 at 1,000 members), or a
    /// join would not reach every member of a large overlay (seen in the simulator: 1% of
    /// members never heard of some joins at 1,000 with a fixed 10).
    pub max_transmissions: u8,
    /// How often updates are also gossiped outside the probe cycle, and to how many.
    pub gossip_period: Duration,
    /// Members per periodic gossip.
    pub gossip_fanout: usize,
    /// How often a member asks a random member for its view (finds members faster).
    pub announce_period: Duration,
    /// How often a member announces itself to members it believes down; this is what heals a
    /// partition without an operator.
    pub announce_down_period: Duration,
    /// How long a down identity is remembered.
    pub remove_down_after: Duration,
    /// While no member is known, how often the seeds are announced to again.
    pub seed_retry: Duration,
    /// How often a sample of the live set goes to one random member (anti-entropy).
    pub sync_period: Duration,
    /// The ceiling of the local health score (Lifeguard's `S`): timers stretch at most
    /// `1 + max_local_health` times.
    pub max_local_health: u32,
    /// The largest membership packet, produced and accepted; fits [`MAX_MEMBERSHIP_PAYLOAD`].
    pub max_packet: usize,
    /// A load report is gossiped when the load moved by at least this many permille of the
    /// capacity since the last report; a smaller change, and the repetition a member that
    /// joined later needs, ride the anti-entropy samples (every `sync_period`).
    pub load_report_step_permille: u32,
    /// The shortest time between two load reports: a thousand members each reporting every
    /// few clients would fill every packet with load news during a mass arrival.
    pub load_report_min_interval: Duration,
    /// The load reports a member keeps to pass on: a report leaves the backlog once this many
    /// newer ones have arrived (the freshest go first, so it has had its turn). Each report is
    /// piggybacked `max_transmissions` times by every member, so the reports a network can
    /// spread per second are bounded by its packets, not its members: when loads were also
    /// gossiped every 30 s unchanged, at 1,000 members that asked for about three times what
    /// the packets carry, the backlog held 997 reports per member, and foca went through all
    /// of them for every packet sent (40% of a simulated run). A mass arrival (every member's
    /// load moving by steps at once) still can; the limit bounds that. 64: since the
    /// anti-entropy samples carry every member's latest report, a longer backlog only costs
    /// foca's per-packet work; at 1,000 members and 100,000 clients 64 instead of 256 made the
    /// simulated run 9-12% shorter with the loads as close to the truth (9.45 clients off at
    /// steady state, 30.6 after the crash); 32 was no shorter than 64 and 16 further off
    /// (BENCHMARKS.md). In a small overlay it seldom binds: a newer report of a member replaces
    /// its older one, so a backlog holds at most one report per member.
    pub load_backlog_limit: usize,
    /// Where this member remembers the statements and load reports it verified. `None` (the
    /// default, and a daemon's): a cache of its own. The simulator gives all its members one
    /// ([`super::VerifiedCache`]): verification is a pure function of the bytes and the trust
    /// anchor, and its thousands of members would otherwise repeat each other's.
    pub shared_verification: Option<super::VerifiedCache>,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            probe_period: Duration::from_millis(1000),
            probe_rtt: Duration::from_millis(400),
            indirect_probes: 3,
            suspect_to_down_after: Duration::from_secs(3),
            max_transmissions: 10,
            gossip_period: Duration::from_millis(200),
            gossip_fanout: 3,
            announce_period: Duration::from_secs(10),
            announce_down_period: Duration::from_secs(3),
            remove_down_after: Duration::from_secs(3600),
            seed_retry: Duration::from_secs(2),
            sync_period: Duration::from_secs(5),
            max_local_health: 8,
            // Identities carry their ticket and signature (~300 bytes each): a packet holds the
            // sender, the target and about ten updates.
            max_packet: MAX_MEMBERSHIP_PAYLOAD,
            load_report_step_permille: 100,
            load_report_min_interval: Duration::from_secs(5),
            load_backlog_limit: 64,
            shared_verification: None,
        }
    }
}

/// The membership configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipConfigError {
    /// foca needs `probe_rtt < probe_period` and non-zero periods and counts.
    #[error("invalid membership timing: {0}")]
    Invalid(&'static str),
    /// This member's own statement does not verify (its ticket may not serve, or names
    /// another key).
    #[error("this member's statement: {0}")]
    Identity(switchboard_proto::member::MemberError),
}

impl MembershipConfig {
    pub(super) fn foca(&self) -> Result<FocaConfig, MembershipConfigError> {
        if self.probe_rtt.is_zero() || self.probe_rtt >= self.probe_period {
            return Err(MembershipConfigError::Invalid(
                "probe_rtt must be above zero and below probe_period",
            ));
        }
        if self.max_packet > MAX_MEMBERSHIP_PAYLOAD || self.max_packet < 512 {
            return Err(MembershipConfigError::Invalid(
                "max_packet must be between 512 and the protocol's membership payload limit",
            ));
        }
        let nonzero =
            |n: usize, what| NonZeroUsize::new(n).ok_or(MembershipConfigError::Invalid(what));
        let mut config = FocaConfig::new_lan(std::num::NonZeroU32::MIN);
        config.probe_period = self.probe_period;
        config.probe_rtt = self.probe_rtt;
        config.num_indirect_probes = nonzero(self.indirect_probes, "indirect_probes is zero")?;
        config.max_transmissions = NonZeroU8::new(self.max_transmissions)
            .ok_or(MembershipConfigError::Invalid("max_transmissions is zero"))?;
        if self.suspect_to_down_after.is_zero() {
            return Err(MembershipConfigError::Invalid(
                "suspect_to_down_after is zero",
            ));
        }
        config.suspect_to_down_after = self.suspect_to_down_after;
        config.remove_down_after = Some(self.remove_down_after);
        config.max_packet_size = nonzero(self.max_packet, "max_packet is zero")?;
        config.notify_down_members = true;
        config.periodic_gossip = Some(PeriodicParams {
            frequency: self.gossip_period,
            num_members: nonzero(self.gossip_fanout, "gossip_fanout is zero")?,
        });
        config.periodic_announce = Some(PeriodicParams {
            frequency: self.announce_period,
            num_members: nonzero(1, "")?,
        });
        config.periodic_announce_to_down_members = Some(PeriodicParams {
            frequency: self.announce_down_period,
            num_members: nonzero(2, "")?,
        });
        Ok(config)
    }
}
