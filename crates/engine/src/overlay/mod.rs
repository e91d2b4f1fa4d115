//! The overlay: supernodes joined into one directory (DESIGN.md section 5).
//!
//! An [`Overlay`] is one supernode's part of it, sans-IO:
//!
//! - **membership** ([`Membership`], SWIM by foca with local health): who is live;
//! - **publishing** (the home's side): the records of this supernode's own clients go to their
//!   `R` owners (rendezvous placement over the live members, megas included), are re-published
//!   whenever a membership change gives a record a new owner, and are withdrawn when the client
//!   unregisters;
//! - **the index** (the owner's side): records published here are held as leases and expire by
//!   themselves; subscribers hear when a user comes online or goes offline;
//! - **lookups**: ask every owner in parallel, take the first answer that holds records (the
//!   driver verifies every record before the overlay sees it, so no supernode's word is
//!   trusted), give up after `lookup_timeout`;
//! - **watches**: a user watched by this supernode's clients is subscribed at its owners, and
//!   re-subscribed at new owners when one dies.
//!
//! Inputs are `handle_*`/plain calls with `now`; outputs are [`OverlayOutput`]s taken with
//! [`Overlay::poll_output`]. Messages to one owner are batched for `publish_flush`.

mod index;
mod presence;
mod rebalance;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_proto::bounded::BoundedVec;
use switchboard_proto::limits::{MAX_PUBLISH_BATCH, MAX_WITHDRAW_BATCH};
use switchboard_proto::member::MemberError;
use switchboard_proto::messages::{OverlayMessage, PresenceEvent, RecordKey};
use switchboard_proto::{NodeId, Record, Ticket, TrustAnchor, Username};

use crate::membership::{
    MemberEvent, MemberInfo, MemberRole, Membership, MembershipConfig, MembershipConfigError,
    PacketKind, Signer,
};
use crate::placement::{Ring, DEFAULT_REPLICAS};
use crate::time::Time;
use index::{OwnerIndex, Stored};

/// Tuning of an [`Overlay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayConfig {
    /// Owners per user (`R`).
    pub replicas: usize,
    /// The membership protocol's timing.
    pub membership: MembershipConfig,
    /// How long a lookup waits for its owners before it reports what it has.
    pub lookup_timeout: Duration,
    /// Lookups in flight at once; more are refused (a supernode answers its client `Busy`).
    /// 4,096 is far above what one supernode's clients ask in a `lookup_timeout`.
    pub max_pending_lookups: usize,
    /// Records held as an owner; beyond it publications are refused (the publisher's other
    /// owners still hold them). With R = 3 and even spread, 3x a supernode's share.
    pub max_index_records: usize,
    /// Presence subscriptions held as an owner, over all users and subscribers.
    pub max_subscriptions: usize,
    /// Publications and withdrawals to one owner are gathered this long into one message.
    pub publish_flush: Duration,
    /// The longest lease an owner grants a published record, whatever it asks.
    pub max_lease: Duration,
    /// Outputs queued for the driver before new sends are dropped and counted (the driver
    /// drains after every call; only a wedged driver reaches it).
    pub max_outputs: usize,
}

impl Default for OverlayConfig {
    fn default() -> Self {
        Self {
            replicas: DEFAULT_REPLICAS,
            membership: MembershipConfig::default(),
            lookup_timeout: Duration::from_millis(1500),
            max_pending_lookups: 4096,
            max_index_records: 1_000_000,
            max_subscriptions: 1_000_000,
            publish_flush: Duration::from_millis(50),
            max_lease: Duration::from_secs(120),
            max_outputs: 262_144,
        }
    }
}

/// Names one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// A lookup could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many lookups in flight ({0})")]
pub struct LookupsFull(pub usize);

/// What the overlay asks of its driver, or tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayOutput {
    /// Deliver `message` to the member `to` at `addr`.
    Send {
        /// The member.
        to: NodeId,
        /// Its overlay address.
        addr: SocketAddr,
        /// What to send.
        message: OverlayMessage,
    },
    /// A lookup finished: the records found (empty: nobody online by that name, or no owner
    /// answered in time).
    LookupDone {
        /// Which lookup.
        id: LookupId,
        /// Whom it looked for.
        user: Username,
        /// What was found.
        records: Vec<Record>,
    },
    /// A user watched by this supernode's clients changed presence: tell its local watchers.
    Presence(PresenceEvent),
    /// The membership changed.
    Member(MemberEvent),
}

#[derive(Debug, Clone)]
struct Homed {
    record: Record,
    owners: Vec<NodeId>,
    expires: Time,
}

#[derive(Debug, Clone, Default)]
struct Watched {
    watchers: usize,
    owners: Vec<NodeId>,
    online: Option<bool>,
}

#[derive(Debug, Clone)]
struct PendingLookup {
    user: Username,
    waiting: Vec<NodeId>,
    asked: Vec<NodeId>,
    deadline: Time,
}

/// A membership change, for [`Overlay::rebalance`].
#[derive(Debug, Clone, Copy)]
enum Change {
    Joined(NodeId),
    Left(NodeId),
}

#[derive(Debug, Default)]
struct Batch {
    publish: Vec<Record>,
    withdraw: Vec<RecordKey>,
}

/// Counters a driver exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverlayStats {
    /// Overlay messages handed to the driver (membership packets included).
    pub messages_sent: u64,
    /// Records re-published because a membership change gave them a new owner.
    pub republished: u64,
    /// Records this supernode held as an owner and handed to the member that owns them in its
    /// place when it left.
    pub handed_off: u64,
    /// Records refused: older or replayed publications, a full index, and records of another
    /// user in a lookup answer.
    pub refused_records: u64,
    /// Presence reports dropped because their sender is no owner of the user.
    pub refused_presence: u64,
    /// Lookups answered with records.
    pub lookups_found: u64,
    /// Lookups that found nothing.
    pub lookups_empty: u64,
    /// Outputs dropped because the driver did not drain them.
    pub dropped_outputs: u64,
}

/// One supernode's part of the overlay; see the module doc.
#[derive(Debug)]
pub struct Overlay {
    config: OverlayConfig,
    me: NodeId,
    membership: Membership,
    ring: Ring<MemberInfo>,
    index: OwnerIndex,
    // Ordered maps wherever iteration produces outputs: the simulator replays a seed exactly
    // only if the same inputs give the same outputs in the same order.
    homed: BTreeMap<RecordKey, Homed>,
    homed_expiries: BTreeSet<(Time, RecordKey)>,
    watched: BTreeMap<Username, Watched>,
    lookups: BTreeMap<LookupId, PendingLookup>,
    next_lookup: u64,
    batches: BTreeMap<NodeId, Batch>,
    next_flush: Option<Time>,
    outputs: VecDeque<OverlayOutput>,
    stats: OverlayStats,
}

impl Overlay {
    /// A supernode alone in its overlay until it joins, whose statements `signer` signs and
    /// whose peers must carry tickets of `anchor`; `seed` drives its random choices.
    pub fn new(
        now: Time,
        me: MemberInfo,
        signer: Signer,
        anchor: TrustAnchor,
        config: OverlayConfig,
        seed: u64,
    ) -> Result<Self, MembershipConfigError> {
        let node = me.node;
        let standby = me.role == MemberRole::Standby;
        let membership = Membership::new(now, me, signer, anchor, config.membership.clone(), seed)?;
        let mut ring = Ring::new();
        // A standby mega owns no records until it steps in.
        if !standby {
            ring.insert(membership.me().clone());
        }
        Ok(Self {
            config,
            me: node,
            membership,
            ring,
            index: OwnerIndex::default(),
            homed: BTreeMap::new(),
            homed_expiries: BTreeSet::new(),
            watched: BTreeMap::new(),
            lookups: BTreeMap::new(),
            next_lookup: 0,
            batches: BTreeMap::new(),
            next_flush: None,
            outputs: VecDeque::new(),
            stats: OverlayStats::default(),
        })
    }

    /// Changes this supernode's member role (a standby mega stepping in, or back): it owns
    /// records from then on, or no longer.
    pub fn change_role(&mut self, now: Time, role: MemberRole) -> Result<(), MemberError> {
        let result = self.membership.change_role(now, role);
        if result.is_ok() {
            let me = self.me;
            if role == MemberRole::Standby {
                if self.ring.remove(&me) {
                    self.rebalance(now, Change::Left(me));
                }
            } else if self.ring.insert(self.membership.me().clone()) {
                self.rebalance(now, Change::Joined(me));
            }
        }
        self.pump(now);
        result
    }

    /// Takes this supernode's refreshed ticket: its member statement is signed again with it
    /// under the next generation.
    pub fn renew_ticket(&mut self, now: Time, ticket: Ticket) -> Result<(), MemberError> {
        let result = self.membership.renew(now, ticket);
        self.pump(now);
        result
    }

    /// The membership (read-only; its changes reach the overlay through [`Overlay::pump`]).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Counters.
    pub fn stats(&self) -> OverlayStats {
        self.stats
    }

    /// Presence subscriptions held here as an owner.
    pub fn subscriptions(&self) -> usize {
        self.index.subscriptions()
    }

    /// Records held here as an owner.
    pub fn index_records(&self) -> usize {
        self.index.records()
    }

    /// Records of this supernode's own clients that it publishes.
    pub fn homed_records(&self) -> usize {
        self.homed.len()
    }

    /// Whether this owner holds a record of `user`'s device `node`.
    pub fn holds(&self, user: &Username, node: &NodeId) -> bool {
        self.index.holds(user, node)
    }

    /// How many times the pairs of user and device this owner holds changed (stored,
    /// withdrawn, expired; a refresh is no change): [`Self::holds`] can only answer otherwise
    /// for any pair once this moved, so a caller that polls it (the simulator's checks) can
    /// keep its answers until then.
    pub fn index_changes(&self) -> u64 {
        self.index.changes()
    }

    /// How many times a pair of user and device left this supernode's index as an owner
    /// (withdrawn, expired): a pair [`Self::holds`] answered yes for is held until this moves,
    /// since storing only adds. The simulator's checks, polled while a hundred thousand
    /// clients register, keep a yes until then rather than until any change.
    pub fn index_removals(&self) -> u64 {
        self.index.removals()
    }

    /// `user`'s owners in this supernode's view.
    pub fn owners_of(&self, user: &Username) -> Vec<NodeId> {
        self.ring.owners(user, self.config.replicas)
    }

    /// Joins the overlay through `seed` (see [`Membership::join`]).
    pub fn join(&mut self, now: Time, seed: NodeId, addr: SocketAddr) {
        self.membership.join(now, seed, addr);
        self.pump(now);
    }

    /// Takes `members` as the formed overlay (see [`Membership::restore`]).
    pub fn restore(&mut self, now: Time, members: impl IntoIterator<Item = MemberInfo>) {
        self.membership.restore(now, members);
        self.pump(now);
    }

    /// Reports this supernode's client count for gossip.
    pub fn report_load(&mut self, now: Time, clients: u32) {
        self.membership.report_load(now, clients);
        self.pump(now);
    }

    /// Leaves gracefully: hands the records it holds as an owner to the members that own them
    /// once it is gone, then tells the membership. Call [`Overlay::poll_output`] until empty,
    /// then stop driving.
    ///
    /// Homed records are *not* withdrawn: their clients are being redirected, and each new
    /// home publishes a newer record that replaces the old one at the owners. Withdrawing them
    /// first showed every moved client offline to its watchers for a moment (a flicker); a
    /// client that never comes back is dropped when its lease ends, as after a crash.
    pub fn leave(&mut self, now: Time) {
        self.hand_off(now);
        self.flush();
        self.membership.leave(now);
        self.pump(now);
    }

    /// Publishes a client's verified record to its owners: at registration, and at every
    /// refresh of its lease (which is what extends the owners' leases). The home forgets the
    /// record when `lease` passes without another publication, as the owners do.
    pub fn publish(&mut self, now: Time, record: Record, lease: Duration) {
        let user = record.user_unverified().clone();
        let node = record.body_unverified().ticket.body_unverified().node;
        let owners = self.ring.owners(&user, self.config.replicas);
        let key = RecordKey { user, node };
        // A new registration goes out at once (someone may look the user up right after
        // "online"); refreshes are batched.
        let fresh = !self.homed.contains_key(&key);
        for owner in &owners {
            self.queue_publish(now, *owner, record.clone());
            if fresh {
                self.flush_one(*owner);
            }
        }
        let expires = now + lease.min(self.config.max_lease);
        if let Some(old) = self.homed.insert(
            key.clone(),
            Homed {
                record,
                owners,
                expires,
            },
        ) {
            self.homed_expiries.remove(&(old.expires, key.clone()));
        }
        self.homed_expiries.insert((expires, key));
    }

    /// A client of this supernode unregistered: withdraws its record.
    pub fn unpublish(&mut self, now: Time, key: &RecordKey) {
        if let Some(homed) = self.homed.remove(key) {
            self.homed_expiries.remove(&(homed.expires, key.clone()));
            for owner in homed.owners {
                self.queue_withdraw(now, owner, key.clone());
            }
        }
    }

    /// Starts a lookup of `user`; its answer comes as [`OverlayOutput::LookupDone`].
    pub fn lookup(&mut self, now: Time, user: Username) -> Result<LookupId, LookupsFull> {
        if self.lookups.len() >= self.config.max_pending_lookups {
            return Err(LookupsFull(self.config.max_pending_lookups));
        }
        self.next_lookup += 1;
        let id = LookupId(self.next_lookup);
        let owners = self.ring.owners(&user, self.config.replicas);
        let local = self.index.lookup(&user);
        if !local.is_empty() {
            self.finish_lookup(id, user, local);
            return Ok(id);
        }
        let remote: Vec<NodeId> = owners.into_iter().filter(|o| *o != self.me).collect();
        if remote.is_empty() {
            self.finish_lookup(id, user, Vec::new());
            return Ok(id);
        }
        for owner in &remote {
            self.send(*owner, OverlayMessage::Lookup { user: user.clone() });
        }
        self.lookups.insert(
            id,
            PendingLookup {
                user,
                waiting: remote.clone(),
                asked: remote,
                deadline: now + self.config.lookup_timeout,
            },
        );
        Ok(id)
    }

    /// A membership packet from `from`.
    pub fn handle_membership(
        &mut self,
        now: Time,
        payload: &[u8],
    ) -> Result<(), crate::membership::PacketError> {
        let result = self.membership.handle_packet(now, payload);
        self.pump(now);
        result
    }

    /// A membership sync sample from the member `from` (as the transport authenticated it; it
    /// is answered with a sample of this view).
    pub fn handle_membership_sync(
        &mut self,
        now: Time,
        from: NodeId,
        payload: &[u8],
    ) -> Result<(), crate::membership::PacketError> {
        let result = self.membership.handle_sync(now, from, payload);
        self.pump(now);
        result
    }

    /// Records published here by `from`, each already verified by the driver.
    pub fn handle_publish(&mut self, now: Time, from: NodeId, records: Vec<Record>) {
        for record in records {
            let lease = Duration::from_secs(u64::from(record.body_unverified().ttl_secs))
                .min(self.config.max_lease);
            let user = record.user_unverified().clone();
            let membership = &self.membership;
            let me = self.me;
            let home_here = |home: &NodeId| *home == me || membership.is_live(home);
            match self.index.store(
                now,
                from,
                record,
                lease,
                self.config.max_index_records,
                home_here,
            ) {
                Stored::FirstDevice => self.presence_changed(&user),
                Stored::Updated => {}
                Stored::Refused => self.stats.refused_records += 1,
            }
        }
    }

    /// `from` withdraws records it published (or that name it as their home).
    pub fn handle_withdraw(&mut self, from: NodeId, keys: Vec<RecordKey>) {
        for key in keys {
            if self.index.withdraw(&from, &key.user, &key.node) {
                self.presence_changed(&key.user);
            }
        }
    }

    /// `from` asks for `user`'s records.
    pub fn handle_lookup_request(&mut self, from: NodeId, user: Username) {
        let records = self.index.lookup(&user);
        self.send(
            from,
            OverlayMessage::LookupResult {
                user,
                records: bounded(records),
            },
        );
    }

    /// An owner answered; `records` are those of its answer that the driver verified. Only
    /// records of `user` count: a verified record of someone else is no answer to this lookup.
    pub fn handle_lookup_result(
        &mut self,
        from: NodeId,
        user: &Username,
        mut records: Vec<Record>,
    ) {
        let before = records.len();
        records.retain(|record| record.user_unverified() == user);
        if records.len() < before {
            self.stats.refused_records += (before - records.len()) as u64;
        }
        let mut done = Vec::new();
        for (id, pending) in &mut self.lookups {
            if pending.user != *user || !pending.waiting.contains(&from) {
                continue;
            }
            pending.waiting.retain(|w| *w != from);
            if !records.is_empty() || pending.waiting.is_empty() {
                done.push(*id);
            }
        }
        for id in done {
            if let Some(pending) = self.lookups.remove(&id) {
                self.finish_lookup(id, pending.user, records.clone());
            }
        }
    }

    /// When [`Overlay::handle_timeout`] wants to run next.
    pub fn next_timeout(&self) -> Option<Time> {
        let lookups = self.lookups.values().map(|p| p.deadline).min();
        [
            self.membership.next_timeout(),
            self.index.next_expiry(),
            self.homed_expiries.first().map(|(at, _)| *at),
            lookups,
            self.next_flush,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.membership.handle_timeout(now);
        self.pump(now);
        for user in self.index.expire(now) {
            self.presence_changed(&user);
        }
        while self
            .homed_expiries
            .first()
            .is_some_and(|(at, _)| *at <= now)
        {
            if let Some((_, key)) = self.homed_expiries.pop_first() {
                self.homed.remove(&key);
            }
        }
        let expired: Vec<LookupId> = self
            .lookups
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(pending) = self.lookups.remove(&id) {
                self.finish_lookup(id, pending.user, Vec::new());
            }
        }
        if self.next_flush.is_some_and(|at| at <= now) {
            self.flush();
        }
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<OverlayOutput> {
        crate::queue::pop_front_shrinking(&mut self.outputs)
    }

    /// Moves membership packets and events into the overlay's outputs and reacts to changes.
    fn pump(&mut self, now: Time) {
        while let Some(out) = self.membership.poll_send() {
            let message = match out.kind {
                PacketKind::Swim => match out.payload.try_into() {
                    Ok(payload) => OverlayMessage::Membership(payload),
                    Err(_) => continue,
                },
                PacketKind::Sync => match out.payload.try_into() {
                    Ok(payload) => OverlayMessage::MembershipSync(payload),
                    Err(_) => continue,
                },
            };
            self.push(OverlayOutput::Send {
                to: out.to.node,
                addr: out.to.addr,
                message,
            });
        }
        while let Some(event) = self.membership.poll_event() {
            match &event {
                MemberEvent::Up(member) | MemberEvent::Renewed(member) => {
                    let renewed = matches!(event, MemberEvent::Renewed(_));
                    if member.role == MemberRole::Standby {
                        // A standby mega (or one that stepped back) owns nothing: its users
                        // move to the next owners.
                        if self.ring.remove(&member.node) {
                            self.owner_gone(now, member.node);
                            self.rebalance(now, Change::Left(member.node));
                        }
                    } else if self.ring.insert(member.clone()) {
                        self.rebalance(now, Change::Joined(member.node));
                    } else if renewed {
                        // Restarted (or rejoined after being declared down) before anyone
                        // noticed: what it held as an owner may be gone.
                        self.refill(now, member.node);
                    }
                }
                MemberEvent::Down(member) => {
                    if self.ring.remove(&member.node) {
                        self.index.forget_subscriber(&member.node);
                        self.batches.remove(&member.node);
                        self.owner_gone(now, member.node);
                        self.rebalance(now, Change::Left(member.node));
                    }
                }
            }
            self.push(OverlayOutput::Member(event));
        }
    }

    fn finish_lookup(&mut self, id: LookupId, user: Username, records: Vec<Record>) {
        if records.is_empty() {
            self.stats.lookups_empty += 1;
        } else {
            self.stats.lookups_found += 1;
        }
        self.push(OverlayOutput::LookupDone { id, user, records });
    }

    fn queue_publish(&mut self, now: Time, owner: NodeId, record: Record) {
        if owner == self.me {
            self.handle_publish(now, self.me, vec![record]);
            return;
        }
        let batch = self.batches.entry(owner).or_default();
        // The last intent per record wins within a batch: a publish cancels a pending
        // withdrawal of the same device, and replaces an older pending copy.
        let node = record.body_unverified().ticket.body_unverified().node;
        let user = record.user_unverified().clone();
        batch.withdraw.retain(|k| k.node != node || k.user != user);
        batch.publish.retain(|r| {
            r.body_unverified().ticket.body_unverified().node != node
                || r.user_unverified() != &user
        });
        batch.publish.push(record);
        let full = batch.publish.len() >= MAX_PUBLISH_BATCH;
        self.schedule_flush(now, owner, full);
    }

    fn queue_withdraw(&mut self, now: Time, owner: NodeId, key: RecordKey) {
        if owner == self.me {
            self.handle_withdraw(self.me, vec![key]);
            return;
        }
        let batch = self.batches.entry(owner).or_default();
        batch.publish.retain(|r| {
            r.body_unverified().ticket.body_unverified().node != key.node
                || r.user_unverified() != &key.user
        });
        batch.withdraw.retain(|k| *k != key);
        batch.withdraw.push(key);
        let full = batch.withdraw.len() >= MAX_WITHDRAW_BATCH;
        self.schedule_flush(now, owner, full);
    }

    fn schedule_flush(&mut self, now: Time, owner: NodeId, full: bool) {
        if full {
            self.flush_one(owner);
        } else if self.next_flush.is_none() {
            self.next_flush = Some(now + self.config.publish_flush);
        }
    }

    fn flush(&mut self) {
        self.next_flush = None;
        let owners: Vec<NodeId> = self.batches.keys().copied().collect();
        for owner in owners {
            self.flush_one(owner);
        }
    }

    fn flush_one(&mut self, owner: NodeId) {
        let Some(batch) = self.batches.remove(&owner) else {
            return;
        };
        for chunk in batch.publish.chunks(MAX_PUBLISH_BATCH) {
            self.send(
                owner,
                OverlayMessage::Publish {
                    records: bounded(chunk.to_vec()),
                },
            );
        }
        for chunk in batch.withdraw.chunks(MAX_WITHDRAW_BATCH) {
            self.send(
                owner,
                OverlayMessage::Withdraw {
                    keys: bounded(chunk.to_vec()),
                },
            );
        }
    }

    fn send(&mut self, to: NodeId, message: OverlayMessage) {
        let Some(addr) = self.membership.member(&to).map(|m| m.addr) else {
            return;
        };
        self.stats.messages_sent += 1;
        self.push(OverlayOutput::Send { to, addr, message });
    }

    fn push(&mut self, output: OverlayOutput) {
        if self.outputs.len() >= self.config.max_outputs {
            self.stats.dropped_outputs += 1;
            return;
        }
        if matches!(
            output,
            OverlayOutput::Send {
                message: OverlayMessage::Membership(_) | OverlayMessage::MembershipSync(_),
                ..
            }
        ) {
            self.stats.messages_sent += 1;
        }
        self.outputs.push_back(output);
    }
}

/// Builds a bounded vector from one the overlay sized itself (chunks of at most the bound, or
/// a user's records, at most [`switchboard_proto::limits::MAX_RECORDS_PER_USER`]); anything
/// beyond the bound is cut rather than sent.
fn bounded<T, const N: usize>(items: Vec<T>) -> BoundedVec<T, N> {
    BoundedVec::truncating(items)
}
