//! Who is in the overlay: SWIM failure detection by `foca`, wrapped with Lifeguard's local
//! health multiplier, and a gossiped load figure per member (DESIGN.md section 5).
//!
//! `foca` does the protocol (probe, indirect probe through `k` others, suspicion with
//! incarnation numbers, refutation, piggybacked dissemination, periodic gossip and announces
//! that heal partitions). It is sans-IO like this crate: it asks to send bytes and to be woken
//! after a delay. This wrapper turns those requests into a timer queue on the engine's
//! [`Time`] and an outbox, and adds what foca lacks:
//!
//! - **Local health (Lifeguard, Dadgar et al. 2018)**: a score in `0..=max_local_health`
//!   that rises when this member's own probes go unanswered (it had to ask others to probe
//!   for it) or when it had to refute a suspicion about itself, and falls with every timely
//!   ack. Every probe, indirect-probe and suspicion timer is stretched by `1 + score`, so an
//!   overloaded or slow observer waits longer before it suspects or evicts anyone: its
//!   slowness is far more often the cause of a missing ack than the peer's death.
//! - **Load gossip**: role and capacity travel in the identity ([`MemberInfo`]); the load,
//!   which changes, travels as a foca custom broadcast that a newer report invalidates when it
//!   moved by a step, and in the anti-entropy samples otherwise ([`load`]; this member's own in
//!   `reporting`).
//! - **Every observer times a suspicion**: foca starts the suspect-to-down timer only on the
//!   member whose probe failed, and relies on its `Down` broadcast reaching everyone; a lost
//!   broadcast left a dead member "suspect" for a whole probe round (70 s among 70 members in
//!   the simulator). Like memberlist, every member that learns of a suspicion here starts its
//!   own timer, so a dead member is down everywhere `suspect_to_down_after` after the news.
//! - **Anti-entropy**: every `sync_period` a member sends a random live member a sample of its
//!   view, every member's state and incarnation (memberlist's push-pull, which foca lacks),
//!   applied by SWIM's rules and answered with a sample of the receiver's view (once per
//!   sender and period). At 1,000 members a simultaneous mass join otherwise left a few
//!   members unaware of a few others for minutes (a probe round is N periods long).
//! - **Seeds**: while it knows no live member, a member re-announces itself to its seeds every
//!   `seed_retry`, so that start-up order does not matter.
//!
//! Identities are signed statements ([`verify`]): nothing a peer says about another member is
//! believed unless that member signed it with a ticket of role `supernode` or `mega`. A member
//! declared down (a partition, a long pause) signs its next generation and rejoins at once; the
//! newer generation wins over the old one.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::num::NonZeroU8;
use std::sync::Arc;

use foca::{AccumulatingRuntime, Config as FocaConfig, Foca, Message, OwnedNotification, Timer};
use rand10::rngs::SmallRng;
use rand10::SeedableRng;
use switchboard_proto::member::{LoadReport, MemberError};
use switchboard_proto::{NodeId, Ticket, TrustAnchor};

use crate::time::Time;

mod codec;
mod config;
mod info;
mod load;
mod reporting;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testkit;
pub mod verify;

use crate::by_node::LiveSet;
use codec::VerifyingCodec;
pub use config::{MembershipConfig, MembershipConfigError};
use info::SwimId;
pub use info::{MemberInfo, Signer, Statement};
use load::{LoadTable, Loads};
pub use verify::VerifiedCache;
use verify::{SharedVerifier, Verifier};

pub use switchboard_proto::member::MemberRole;

/// A change in the live membership, for the overlay above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member is live (new, or back after it was declared down).
    Up(MemberInfo),
    /// A live member's newer generation replaced the one held (a restart or a rejoin noticed
    /// late, a mega's role change): what it held as an owner may be gone.
    Renewed(MemberInfo),
    /// A member was declared down or left.
    Down(MemberInfo),
}

/// The first 8 bytes of a node id, for [`Membership::view_digest`].
pub fn node_prefix(node: &NodeId) -> u64 {
    node_word(node, 0)
}

/// The `index`th 8 bytes of a node id, read big-endian (zero past its end).
pub(crate) fn node_word(node: &NodeId, index: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(part) = node.as_bytes().get(index * 8..index * 8 + 8) {
        word.copy_from_slice(part);
    }
    u64::from_be_bytes(word)
}

/// Why a membership packet was not taken.
#[derive(Debug, thiserror::Error)]
#[error("membership packet refused: {0}")]
pub struct PacketError(String);

/// What kind of membership packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// A SWIM packet (foca's), small, loss-tolerant.
    Swim,
    /// An anti-entropy sample of the live set ([`Membership::handle_sync`]).
    Sync,
}

/// What the membership asks the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// To whom.
    pub to: MemberInfo,
    /// Which kind.
    pub kind: PacketKind,
    /// The opaque packet.
    pub payload: Vec<u8>,
}

/// Most members in one sync sample: ~310 bytes each (a signed statement with its ticket, an
/// incarnation and a state), within [`switchboard_proto::limits::MAX_MEMBERSHIP_SYNC`]. A sample
/// is a random window of the view, so successive ones cover a larger overlay.
pub const MAX_SYNC_MEMBERS: usize = 150;

/// Counters a driver exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipStats {
    /// Packets handed to the driver.
    pub packets_sent: u64,
    /// Packets taken in.
    pub packets_received: u64,
    /// Packets refused (malformed, too big, from ourselves, from a down member).
    pub packets_refused: u64,
    /// Members declared down, as seen here.
    pub downs: u64,
    /// Times this member had to refute a suspicion about itself.
    pub refutations: u64,
    /// Member statements refused (forged, unsigned, a ticket that may not serve).
    pub statements_refused: u64,
    /// Load reports refused (not signed by their member).
    pub loads_refused: u64,
    /// Member updates waiting to be piggybacked (foca's backlog; a gauge). Near zero in a
    /// stable overlay.
    pub updates_backlog: u64,
    /// Load reports waiting to be piggybacked (a gauge): at most one per member and at most
    /// [`MembershipConfig::load_backlog_limit`]. Near zero while loads hold still.
    pub loads_backlog: u64,
    /// Load reports first learned from an anti-entropy sample rather than from gossip.
    pub loads_synced: u64,
}

type Swim = Foca<SwimId, VerifyingCodec, SmallRng, Loads>;

/// Most unanswered probes remembered while waiting to see whether a late answer arrives (one
/// probe is in flight per period, so a handful is plenty).
const REMEMBERED_PROBE_FAILURES: usize = 16;

/// One member's view of the overlay; see the module doc.
pub struct Membership {
    config: MembershipConfig,
    foca: Swim,
    signer: Signer,
    verifier: SharedVerifier,
    rejoin_pending: bool,
    /// This member left the overlay ([`Membership::leave`]): for good, so that foca's
    /// `Defunct` after its leave is not taken for being declared down (which rejoins under the
    /// next generation), and nothing it sends after tells the others it is still here.
    left: bool,
    runtime: AccumulatingRuntime<SwimId>,
    loads: LoadTable,
    me: MemberInfo,
    seeds: BTreeMap<NodeId, SocketAddr>,
    /// The live members other than this one (each a pointer to the one copy the verifier
    /// holds).
    live: LiveSet,
    /// XOR of [`node_prefix`] over `live`'s keys, kept as it changes: a driver (the simulator,
    /// twice a simulated second for each of its thousand members) compares views in O(1).
    live_digest: u64,
    timers: BTreeMap<(Time, u64), Timer<SwimId>>,
    timer_seq: u64,
    next_seed_retry: Time,
    outbox: VecDeque<Outgoing>,
    events: VecDeque<MemberEvent>,
    health: u32,
    own_incarnation: foca::Incarnation,
    unanswered_probes: VecDeque<foca::ProbeNumber>,
    load_seq: u64,
    /// The client count last gossiped: a step is measured from it (not from `own_report`'s,
    /// which every sync moves, or a steady arrival would never make a step between two syncs).
    gossiped_clients: u32,
    /// This member's latest signed load report, which its syncs carry.
    own_report: Option<LoadReport>,
    /// When a report of a step's change, held back by `load_report_min_interval`, is due.
    deferred_load_report: Option<Time>,
    last_gossiped_load: Time,
    current_clients: u32,
    lifeguard: bool,
    timer_token: foca::TimerToken,
    foca_config: FocaConfig,
    timed_suspicions: BTreeMap<NodeId, foca::Incarnation>,
    next_suspicion_scan: Time,
    next_sync: Time,
    sync_rng: u64,
    /// When this member last sent a sync to each member, within the last `sync_period`: a
    /// sync is answered with one unless one went to its sender that recently, so that an
    /// exchange is both ways once (memberlist's push-pull) and a flood of syncs from one
    /// member gets at most one answer a period. At most one entry per member that sent or was
    /// sent a sync in the last period; older ones are dropped at every sync timer.
    synced_with: std::collections::HashMap<NodeId, Time>,
    stats: MembershipStats,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("me", &self.me)
            .field("live", &self.live.len())
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// A member that knows only itself, whose statements `signer` signs and whose peers'
    /// statements must carry tickets of `anchor`; `seed` drives its random choices.
    pub fn new(
        now: Time,
        mut me: MemberInfo,
        signer: Signer,
        anchor: TrustAnchor,
        config: MembershipConfig,
        seed: u64,
    ) -> Result<Self, MembershipConfigError> {
        let foca_config = config.foca()?;
        let sync_period = config.sync_period;
        let verifier: SharedVerifier = Arc::new(std::sync::Mutex::new(Verifier::new(
            anchor,
            config.shared_verification.clone(),
        )));
        {
            let mut check = verify::lock(&verifier);
            check
                .check(&mut me)
                .map_err(MembershipConfigError::Identity)?;
            check.statements_refused = 0;
            check.set_live(me.clone());
        }
        let loads = Loads::new(
            Arc::clone(&verifier),
            config.load_backlog_limit,
            config.load_report_min_interval / 2,
        );
        let table = Arc::clone(&loads.table);
        let foca = Foca::with_custom_broadcast(
            SwimId::from(me.clone()),
            foca_config.clone(),
            SmallRng::seed_from_u64(seed),
            VerifyingCodec::new(Arc::clone(&verifier)),
            loads,
        );
        let membership = Self {
            next_seed_retry: now,
            own_report: None,
            deferred_load_report: None,
            last_gossiped_load: now,
            current_clients: 0,
            config,
            foca,
            signer,
            verifier,
            rejoin_pending: false,
            left: false,
            runtime: AccumulatingRuntime::new(),
            loads: table,
            me,
            seeds: BTreeMap::new(),
            live: LiveSet::default(),
            live_digest: 0,
            timers: BTreeMap::new(),
            timer_seq: 0,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            health: 0,
            own_incarnation: 0,
            unanswered_probes: VecDeque::new(),
            load_seq: 0,
            gossiped_clients: 0,
            lifeguard: true,
            timer_token: 0,
            foca_config,
            timed_suspicions: BTreeMap::new(),
            next_suspicion_scan: now,
            next_sync: now + sync_period,
            sync_rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            synced_with: std::collections::HashMap::new(),
            stats: MembershipStats::default(),
        };
        Ok(membership)
    }

    /// Turns the local-health multiplier off (plain SWIM), to measure what it buys. Test-only:
    /// a daemon always runs with it.
    #[cfg(test)]
    pub(crate) fn disable_local_health(&mut self) {
        self.lifeguard = false;
        self.health = 0;
    }

    /// Puts raw bytes into this member's gossip as if they were one of its load reports: the
    /// hostile peer of the tests forges reports with it. Never in a daemon build.
    #[cfg(any(test, feature = "testing"))]
    pub fn inject_broadcast(&mut self, bytes: &[u8]) {
        let _ = self.foca.add_broadcast(bytes);
    }

    /// This member's identity (its generation changes if it had to rejoin).
    pub fn me(&self) -> &MemberInfo {
        &self.me
    }

    /// Live members other than this one, ordered by node id.
    pub fn live(&self) -> impl Iterator<Item = &MemberInfo> {
        self.live.iter()
    }

    /// Number of live members, this one included.
    pub fn live_count(&self) -> usize {
        self.live.len() + 1
    }

    /// A digest of the live set (this member included): equal sets give equal digests, so a
    /// driver can compare views in O(1). XOR of the first 8 bytes of each node id.
    pub fn view_digest(&self) -> u64 {
        self.live_digest ^ node_prefix(&self.me.node)
    }

    /// Whether `node` is live in this view (this member counts as live).
    pub fn is_live(&self, node: &NodeId) -> bool {
        *node == self.me.node || self.live.contains(node)
    }

    /// A live member's identity, this one included.
    pub fn member(&self, node: &NodeId) -> Option<&MemberInfo> {
        if *node == self.me.node {
            return Some(&self.me);
        }
        self.live.get(node)
    }

    /// The latest client count of `node` known here, if a report arrived (this member's own
    /// is the one it was last told).
    pub fn load_of(&self, node: &NodeId) -> Option<u32> {
        if *node == self.me.node {
            return Some(self.current_clients);
        }
        load::clients(&verify::lock(&self.verifier), node)
    }

    /// What foca itself believes of `node` (diagnostics): its state and incarnation.
    pub fn swim_state(&self, node: &NodeId) -> Option<String> {
        self.foca
            .iter_membership_state()
            .find(|m| m.id().node == *node)
            .map(|m| {
                format!(
                    "{:?} inc {} gen {}",
                    m.state(),
                    m.incarnation(),
                    m.id().generation
                )
            })
    }

    /// The live members that admit clients (standby megas excluded), least loaded first, with
    /// their gossiped load in permille of their capacity: what `Busy` and `Redirect` offer.
    pub fn least_loaded(&self) -> Vec<(u64, &MemberInfo)> {
        let mut members: Vec<(u64, &MemberInfo)> = self
            .live()
            .filter(|m| m.role != MemberRole::Standby)
            .map(|m| {
                let load = self.load_of(&m.node).unwrap_or(0);
                (u64::from(load) * 1000 / u64::from(m.capacity.max(1)), m)
            })
            .collect();
        members.sort_by_key(|(permille, m)| (*permille, m.node));
        members
    }

    /// The local health score (0 is healthy).
    pub fn local_health(&self) -> u32 {
        self.health
    }

    /// Counters.
    pub fn stats(&self) -> MembershipStats {
        let verifier = verify::lock(&self.verifier);
        MembershipStats {
            statements_refused: verifier.statements_refused,
            loads_refused: verifier.loads_refused,
            updates_backlog: self.foca.updates_backlog() as u64,
            loads_backlog: self.foca.custom_broadcast_backlog() as u64,
            ..self.stats
        }
    }

    /// The serving capacity of the other live ordinary supernodes (operators' and promoted
    /// ones) and the clients they last reported: what a standby mega watches. Megas are left
    /// out, active or not: they are the reserve, never the baseline (counting an active peer
    /// made a mega that returned first see its peer's return as a loss of capacity, step in
    /// again and wait for capacity that could not come back; found by the simulator).
    pub fn serving(&self) -> (u64, u64) {
        self.live
            .iter()
            .filter(|m| m.role == MemberRole::Supernode)
            .fold((0, 0), |(capacity, clients), m| {
                (
                    capacity + u64::from(m.capacity),
                    clients + u64::from(self.load_of(&m.node).unwrap_or(0)),
                )
            })
    }

    /// Changes this member's role (a standby mega stepping in, or back): its statement is
    /// signed anew under the next generation.
    pub fn change_role(&mut self, now: Time, role: MemberRole) -> Result<(), MemberError> {
        self.change_generation(now, role)
    }

    /// Takes a refreshed ticket: this member's statement is signed again with it, under the
    /// next generation, and spread (the old one stays valid for those who hold it).
    pub fn renew(&mut self, now: Time, ticket: Ticket) -> Result<(), MemberError> {
        self.signer.ticket = ticket;
        self.change_generation(now, self.me.role)
    }

    /// Signs this member's statement anew, in `role`, under the next generation and hands it
    /// to foca.
    fn change_generation(&mut self, now: Time, role: MemberRole) -> Result<(), MemberError> {
        if self.left {
            return Ok(());
        }
        let next = MemberInfo::signed(
            &self.signer,
            self.me.addr,
            role,
            self.me.capacity,
            self.me.generation.saturating_add(1),
        )?;
        let result = self
            .foca
            .change_identity(SwimId::from(next.clone()), &mut self.runtime);
        if result.is_ok() {
            verify::lock(&self.verifier).set_live(next.clone());
            self.me = next;
            self.own_incarnation = 0;
        }
        self.absorb(now, result.err());
        Ok(())
    }

    /// Joins through `seed`: announces this member to it now and, while no member is known,
    /// every `seed_retry`. Only the seed's node id must be right (foca accepts an announce
    /// addressed to any generation of its node); the rest is learned from its answer.
    pub fn join(&mut self, now: Time, seed: NodeId, addr: SocketAddr) {
        if seed == self.me.node {
            return;
        }
        self.seeds.insert(seed, addr);
        if self.own_report.is_none() {
            // A joining member's load is news. One handed a formed overlay (`restore`) or
            // joined by others has its load travel in its syncs and its steps instead: a
            // first report of every member gossiped to every member is a burst of
            // n * n * max_transmissions receipts (at 4,000 simulated supernodes, most of their
            // first minutes), about loads that are all zero.
            self.gossip_load_report(now);
        }
        self.announce_to(now, seed, addr);
    }

    /// Takes `members` as live without gossiping them, as if this member had been in the overlay
    /// with them all along: what a driver that knows a formed overlay hands its members at
    /// start (the simulator's warm start: a crash hits an overlay that formed long before, not
    /// one still joining). foca's `apply_many` without broadcast, which it offers for restoring
    /// known state. Each statement is verified as a sync's entries are; one that does not
    /// verify is left out and counted.
    pub fn restore(&mut self, now: Time, members: impl IntoIterator<Item = MemberInfo>) {
        let mut updates: Vec<foca::Member<SwimId>> = {
            let mut verifier = verify::lock(&self.verifier);
            members
                .into_iter()
                .filter(|m| m.node != self.me.node)
                .filter_map(|m| {
                    verifier
                        .checked_member(&foca::Member::alive(SwimId::from(m)))
                        .ok()
                })
                .collect()
        };
        if updates.is_empty() {
            return;
        }
        // In node-id order, so that the live set (and the overlay's ring) grow at their ends
        // instead of moving their tails once per member.
        updates.sort_unstable_by_key(|m| m.id().node);
        let result = self
            .foca
            .apply_many(updates.into_iter(), false, &mut self.runtime);
        self.absorb(now, result.err());
        if self.runtime.backlog() == 0 {
            // Its queues took a notification per member; foca's runtime offers no way to give
            // that room back but a fresh one (see `crate::queue`).
            self.runtime = AccumulatingRuntime::new();
        }
    }

    fn announce_to(&mut self, now: Time, node: NodeId, addr: SocketAddr) {
        let placeholder = MemberInfo::from(Statement {
            node,
            addr,
            generation: 0,
            ..self.me.to_statement()
        });
        let result = self
            .foca
            .announce(SwimId::from(placeholder), &mut self.runtime);
        self.absorb(now, result.err());
    }

    /// A membership packet from the network. A bad packet is refused with an error and
    /// changes nothing.
    pub fn handle_packet(&mut self, now: Time, payload: &[u8]) -> Result<(), PacketError> {
        self.stats.packets_received += 1;
        if payload.len() > self.config.max_packet {
            self.stats.packets_refused += 1;
            return Err(PacketError(format!(
                "{} bytes, limit {}",
                payload.len(),
                self.config.max_packet
            )));
        }
        load::lock(&self.loads).now = now;
        let result = self.foca.handle_data(payload, &mut self.runtime);
        let error = result.err();
        let refused = error.as_ref().map(|e| PacketError(e.to_string()));
        if refused.is_some() {
            self.stats.packets_refused += 1;
        }
        self.absorb(now, error);
        refused.map_or(Ok(()), Err)
    }

    /// When [`Membership::handle_timeout`] wants to run next.
    pub fn next_timeout(&self) -> Option<Time> {
        let timer = self.timers.keys().next().map(|(at, _)| *at);
        let seeds =
            (self.live.is_empty() && !self.seeds.is_empty()).then_some(self.next_seed_retry);
        let scan = (!self.live.is_empty()).then_some(self.next_suspicion_scan);
        let sync = (!self.live.is_empty() && !self.left).then_some(self.next_sync);
        [timer, seeds, scan, sync, self.deferred_load_report]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            let result = self.foca.handle_timer(timer, &mut self.runtime);
            self.absorb(now, result.err());
        }
        if self.live.is_empty() && !self.seeds.is_empty() && now >= self.next_seed_retry {
            self.next_seed_retry = now + self.config.seed_retry;
            let seeds: Vec<(NodeId, SocketAddr)> = self
                .seeds
                .iter()
                .map(|(node, addr)| (*node, *addr))
                .collect();
            for (node, addr) in seeds {
                self.announce_to(now, node, addr);
            }
        }
        if self.deferred_load_report.is_some_and(|at| now >= at) {
            self.deferred_load_report = None;
            if self.load_moved_a_step() {
                self.gossip_load_report(now);
            }
        }
        if now >= self.next_suspicion_scan {
            self.next_suspicion_scan = now + self.config.probe_period;
            self.time_suspicions(now);
        }
        if now >= self.next_sync && !self.left {
            self.next_sync = now + self.config.sync_period;
            self.send_sync(now);
        }
    }

    /// Starts a suspect-to-down timer for every suspicion this member learned from others.
    fn time_suspicions(&mut self, now: Time) {
        let mut suspects = BTreeMap::new();
        for member in self.foca.iter_membership_state() {
            if member.state() == foca::State::Suspect {
                suspects.insert(
                    member.id().node,
                    (member.id().clone(), member.incarnation()),
                );
            }
        }
        self.timed_suspicions
            .retain(|node, _| suspects.contains_key(node));
        for (node, (id, incarnation)) in suspects {
            if self.timed_suspicions.get(&node) == Some(&incarnation) {
                continue;
            }
            self.timed_suspicions.insert(node, incarnation);
            let after = self
                .config
                .suspect_to_down_after
                .saturating_mul(1 + self.health);
            self.timer_seq += 1;
            self.timers.insert(
                (now + after, self.timer_seq),
                Timer::ChangeSuspectToDown {
                    member_id: id,
                    incarnation,
                    token: self.timer_token,
                },
            );
        }
    }

    /// Leaves the overlay gracefully and for good: tells some members, who spread it. From then
    /// on this member sends no syncs and takes no new identity (a role change or a renewed
    /// ticket changes nothing; what foca sends under the old one the others ignore), so that the others
    /// forget it now rather than when their probes find it gone: a member that came straight
    /// back under its next generation stayed the owner of its users for the seconds failure
    /// detection takes, and lookups that asked it timed out.
    pub fn leave(&mut self, now: Time) {
        self.left = true;
        let result = self.foca.leave_cluster(&mut self.runtime);
        self.absorb(now, result.err());
    }

    /// The next packet to send.
    pub fn poll_send(&mut self) -> Option<Outgoing> {
        crate::queue::pop_front_shrinking(&mut self.outbox)
    }

    /// The next membership change.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        crate::queue::pop_front_shrinking(&mut self.events)
    }

    /// Moves what foca asked for into the timer queue, the outbox and the event queue, and
    /// updates the local health score from what went in and out.
    fn absorb(&mut self, now: Time, _error: Option<foca::Error>) {
        while let Some(notification) = self.runtime.to_notify() {
            self.notice(notification);
        }
        if std::mem::take(&mut self.rejoin_pending) {
            // Declared down (a partition, a pause): rejoin at once under the next generation,
            // which wins over the old identity everywhere. After a leave, when foca says
            // `Defunct` too, `change_generation` does nothing.
            let _ = self.change_generation(now, self.me.role);
        }
        while let Some((to, payload)) = self.runtime.to_send() {
            self.stats.packets_sent += 1;
            self.outbox.push_back(Outgoing {
                to: to.into_info(),
                kind: PacketKind::Swim,
                payload: payload.to_vec(),
            });
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            if let Timer::ProbeRandomMember(token)
            | Timer::PeriodicGossip(token)
            | Timer::PeriodicAnnounce(token)
            | Timer::PeriodicAnnounceDown(token) = timer
            {
                self.timer_token = token;
            }
            let stretched = match timer {
                Timer::ProbeRandomMember(_)
                | Timer::SendIndirectProbe { .. }
                | Timer::ChangeSuspectToDown { .. } => after.saturating_mul(1 + self.health),
                _ => after,
            };
            self.timer_seq += 1;
            self.timers.insert((now + stretched, self.timer_seq), timer);
        }
    }

    /// Keeps `max_transmissions` at `4 * ceil(log10(n + 1))` for the current size.
    fn scale_transmissions(&mut self) {
        let n = self.live.len() + 1;
        let mut digits = 0u32;
        let mut rest = n;
        while rest > 0 {
            digits += 1;
            rest /= 10;
        }
        let wanted = u8::try_from(4 * digits)
            .unwrap_or(u8::MAX)
            .max(self.config.max_transmissions);
        if wanted != self.foca_config.max_transmissions.get() {
            if let Some(value) = NonZeroU8::new(wanted) {
                let mut config = self.foca_config.clone();
                config.max_transmissions = value;
                if self.foca.set_config(config.clone()).is_ok() {
                    self.foca_config = config;
                }
            }
        }
    }

    fn notice(&mut self, notification: OwnedNotification<SwimId>) {
        match notification {
            OwnedNotification::MemberUp(member) => self.member_up(member.into_info()),
            OwnedNotification::MemberDown(member) => self.member_down(member.into_info()),
            // Two nodes foca took for one (alike in their first 16 bytes; see `SwimId`): the
            // old one is gone from foca's list, so it leaves this view too.
            OwnedNotification::Rename(old, new) if old.node != new.node => {
                self.member_down(old.into_info());
                self.member_up(new.into_info());
            }
            OwnedNotification::Rename(_, new) if self.live.contains(&new.node) => {
                let new = new.into_info();
                self.live.insert(new.clone());
                verify::lock(&self.verifier).set_live(new.clone());
                self.events.push_back(MemberEvent::Renewed(new));
            }
            OwnedNotification::Defunct => self.rejoin_pending = true,
            OwnedNotification::DataSent(header) => {
                if header.src_incarnation > self.own_incarnation {
                    // We had to refute a suspicion about ourselves: others found us slow.
                    self.own_incarnation = header.src_incarnation;
                    self.stats.refutations += 1;
                    self.raise_health();
                }
                if let Message::PingReq { probe_number, .. } = header.message {
                    // Our direct probe went unanswered in time; whose fault it was shows when
                    // (if) an answer arrives.
                    if !self.unanswered_probes.contains(&probe_number) {
                        if self.unanswered_probes.len() >= REMEMBERED_PROBE_FAILURES {
                            self.unanswered_probes.pop_front();
                        }
                        self.unanswered_probes.push_back(probe_number);
                    }
                }
            }
            OwnedNotification::DataReceived(header) => {
                let (Message::Ack(probe_number) | Message::ForwardedAck { probe_number, .. }) =
                    header.message
                else {
                    return;
                };
                if let Some(at) = self
                    .unanswered_probes
                    .iter()
                    .position(|n| *n == probe_number)
                {
                    // The member was alive all along, yet its answer missed our deadline:
                    // Lifeguard's sign that we, not it, are slow.
                    self.unanswered_probes.remove(at);
                    self.raise_health();
                } else if matches!(header.message, Message::Ack(_)) {
                    self.health = self.health.saturating_sub(1);
                }
            }
            _ => {}
        }
    }

    fn member_up(&mut self, member: MemberInfo) {
        verify::lock(&self.verifier).set_live(member.clone());
        if self.live.insert(member.clone()).is_none() {
            self.live_digest ^= node_prefix(&member.node);
        }
        self.events.push_back(MemberEvent::Up(member));
        self.scale_transmissions();
    }

    /// `member` left, unless a rename already replaced this generation with a newer live one.
    fn member_down(&mut self, member: MemberInfo) {
        if self
            .live
            .get(&member.node)
            .is_none_or(|held| *held != member)
        {
            return;
        }
        if self.live.remove(&member.node).is_some() {
            self.live_digest ^= node_prefix(&member.node);
        }
        // Its load goes with it.
        verify::lock(&self.verifier).live.remove(&member.node);
        self.stats.downs += 1;
        self.events.push_back(MemberEvent::Down(member));
        self.scale_transmissions();
    }

    fn raise_health(&mut self) {
        if self.lifeguard {
            self.health = (self.health + 1).min(self.config.max_local_health);
        }
    }
}

#[cfg(test)]
mod tests;
