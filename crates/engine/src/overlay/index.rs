//! The owner's side of the one-hop index: records other supernodes published here, held as
//! leases, and the supernodes subscribed to their users' presence.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use switchboard_proto::limits::MAX_RECORDS_PER_USER;
use switchboard_proto::messages::PresenceEvent;
use switchboard_proto::{NodeId, Record, Username};

use crate::time::Time;

#[derive(Debug, Clone)]
struct Held {
    node: NodeId,
    record: Record,
    home: NodeId,
    expires: Time,
}

/// Records held as an owner; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct OwnerIndex {
    users: HashMap<Username, Vec<Held>>,
    expiries: BTreeSet<(Time, Username, NodeId)>,
    subscribers: HashMap<Username, BTreeSet<NodeId>>,
    subscriptions: usize,
    /// Bumped whenever the pairs of user and device held here change (a device stored,
    /// withdrawn or expired), not when a held record is refreshed: what [`Self::holds`]
    /// answers for any pair can only have changed if this has.
    changes: u64,
    /// Bumped whenever a pair of user and device leaves (withdrawn or expired): a pair
    /// [`Self::holds`] answered yes for is held until this moves, since storing only adds.
    removals: u64,
}

/// What storing a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Stored; the user had no device here before.
    FirstDevice,
    /// Stored (new device or newer record).
    Updated,
    /// Refused: an older record, or the index or the user is full.
    Refused,
}

impl OwnerIndex {
    pub(crate) fn records(&self) -> usize {
        self.expiries.len()
    }

    pub(crate) fn subscriptions(&self) -> usize {
        self.subscriptions
    }

    /// How many times the pairs of user and device held here changed; see the field.
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// How many times a pair of user and device left; see the field.
    pub(crate) fn removals(&self) -> u64 {
        self.removals
    }

    /// Stores a verified record published by `home` for `lease`. `home_here` tells whether a
    /// supernode is still a member of the overlay (or this one).
    pub(crate) fn store(
        &mut self,
        now: Time,
        home: NodeId,
        record: Record,
        lease: Duration,
        max_records: usize,
        home_here: impl Fn(&NodeId) -> bool,
    ) -> Stored {
        let user = record.user_unverified().clone();
        let node = record.body_unverified().ticket.body_unverified().node;
        let seq = record.body_unverified().seq;
        let expires = now + lease;
        // Room for one device: nearly every user has one, and a first push would make room for
        // four (Rust's smallest growth for small elements), three unused records a replica:
        // 560 of the 750 bytes each record took in the simulator.
        let held = self
            .users
            .entry(user.clone())
            .or_insert_with(|| Vec::with_capacity(1));
        let first = held.is_empty();
        if let Some(existing) = held.iter_mut().find(|h| h.node == node) {
            let held_seq = existing.record.body_unverified().seq;
            // An older record is stale; the same record from another supernode is a replay
            // (any supernode that saw it can send it again), which must not make the replayer
            // the home whose withdrawal would then hide the user. A device that moves signs a
            // new record (a higher sequence) at its new home. Unless the home that published
            // it is gone: then the copy was handed over by an owner that left (or its home
            // died, and it lapses anyway), and the next publication of it is its home's.
            if held_seq > seq
                || (held_seq == seq && existing.home != home && home_here(&existing.home))
            {
                return Stored::Refused;
            }
            self.expiries
                .remove(&(existing.expires, user.clone(), node));
            existing.record = record;
            existing.home = home;
            existing.expires = expires;
            self.expiries.insert((expires, user, node));
            return Stored::Updated;
        }
        if held.len() >= MAX_RECORDS_PER_USER || self.expiries.len() >= max_records {
            if held.is_empty() {
                self.users.remove(&user);
            }
            return Stored::Refused;
        }
        held.push(Held {
            node,
            record,
            home,
            expires,
        });
        self.expiries.insert((expires, user, node));
        self.changes += 1;
        if first {
            Stored::FirstDevice
        } else {
            Stored::Updated
        }
    }

    /// Removes `user`'s device `node` if `from` is the home that published it, or the home the
    /// device named in the record it signed (a copy handed over by an owner that left names
    /// that owner as its publisher); true when the user has no device left here.
    pub(crate) fn withdraw(&mut self, from: &NodeId, user: &Username, node: &NodeId) -> bool {
        let Some(held) = self.users.get_mut(user) else {
            return false;
        };
        let named = |h: &Held| {
            h.record
                .body_unverified()
                .home
                .is_some_and(|home| home.node == *from)
        };
        let Some(position) = held
            .iter()
            .position(|h| h.node == *node && (h.home == *from || named(h)))
        else {
            return false;
        };
        let removed = held.swap_remove(position);
        self.changes += 1;
        self.removals += 1;
        self.expiries
            .remove(&(removed.expires, user.clone(), *node));
        if held.is_empty() {
            self.users.remove(user);
            return true;
        }
        false
    }

    /// Every user held here, with their records.
    pub(crate) fn users(&self) -> impl Iterator<Item = (&Username, impl Iterator<Item = &Record>)> {
        self.users
            .iter()
            .map(|(user, held)| (user, held.iter().map(|h| &h.record)))
    }

    /// `user`'s records held here.
    pub(crate) fn lookup(&self, user: &Username) -> Vec<Record> {
        self.users
            .get(user)
            .map(|held| held.iter().map(|h| h.record.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether this index holds `user`'s device `node`.
    pub(crate) fn holds(&self, user: &Username, node: &NodeId) -> bool {
        self.users
            .get(user)
            .is_some_and(|held| held.iter().any(|h| h.node == *node))
    }

    /// Whether `user` has a device here.
    pub(crate) fn is_online(&self, user: &Username) -> bool {
        self.users.contains_key(user)
    }

    pub(crate) fn next_expiry(&self) -> Option<Time> {
        self.expiries.first().map(|(at, _, _)| *at)
    }

    /// Drops leases that ended by `now`; returns the users left with no device.
    pub(crate) fn expire(&mut self, now: Time) -> Vec<Username> {
        let mut gone = Vec::new();
        while let Some(first) = self.expiries.first() {
            if first.0 > now {
                break;
            }
            let Some((_, user, node)) = self.expiries.pop_first() else {
                break;
            };
            if let Some(held) = self.users.get_mut(&user) {
                let before = held.len();
                held.retain(|h| h.node != node);
                if held.len() != before {
                    self.changes += 1;
                    self.removals += 1;
                }
                if held.is_empty() {
                    self.users.remove(&user);
                    gone.push(user);
                }
            }
        }
        gone
    }

    /// `from` wants presence changes of `user`; false when the table is full.
    pub(crate) fn subscribe(&mut self, from: NodeId, user: Username, max: usize) -> bool {
        if self.subscriptions >= max {
            return false;
        }
        if self.subscribers.entry(user).or_default().insert(from) {
            self.subscriptions += 1;
        }
        true
    }

    pub(crate) fn unsubscribe(&mut self, from: &NodeId, user: &Username) {
        if let Some(set) = self.subscribers.get_mut(user) {
            if set.remove(from) {
                self.subscriptions -= 1;
            }
            if set.is_empty() {
                self.subscribers.remove(user);
            }
        }
    }

    /// Forgets every subscription of a departed supernode.
    pub(crate) fn forget_subscriber(&mut self, gone: &NodeId) {
        let mut removed = 0;
        self.subscribers.retain(|_, set| {
            if set.remove(gone) {
                removed += 1;
            }
            !set.is_empty()
        });
        self.subscriptions -= removed;
    }

    /// Who should hear that `user` came online or went offline.
    pub(crate) fn subscribers_of(&self, user: &Username) -> Vec<NodeId> {
        self.subscribers
            .get(user)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The presence of `user` as this owner sees it.
    pub(crate) fn presence(&self, user: &Username) -> PresenceEvent {
        PresenceEvent {
            user: user.clone(),
            online: self.is_online(user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::{
        BoundedVec, RecordBody, Role, SecretKey, Ticket, TicketBody, UnixTime,
    };

    fn record(device: u8, seq: u64) -> Record {
        homed_record(device, seq, None)
    }

    /// A record of alice's `device` at `seq`, naming `home` as its home when given.
    fn homed_record(device: u8, seq: u64, home: Option<NodeId>) -> Record {
        let auth = SecretKey::from_seed([200; 32]);
        let key = SecretKey::from_seed([device; 32]);
        let ticket = Ticket::issue(
            &auth,
            TicketBody {
                user: Username::new("alice").unwrap(),
                node: key.node_id(),
                role: Role::User,
                issued_at: UnixTime(1),
                expires_at: UnixTime(2),
                serial: u64::from(device),
            },
        )
        .unwrap();
        let body = RecordBody {
            ticket,
            endpoints: BoundedVec::truncating(Vec::new()),
            reflexive: None,
            home: home.map(|node| switchboard_proto::PeerAddr {
                node,
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], 4000)),
            }),
            seq,
            issued_at: UnixTime(1),
            ttl_secs: 120,
        };
        Record::sign(&key, body).unwrap()
    }

    #[test]
    fn the_change_count_moves_with_every_pair_stored_withdrawn_or_expired_and_not_with_a_refresh() {
        let mut index = OwnerIndex::default();
        let home = SecretKey::from_seed([9; 32]).node_id();
        let alice = Username::new("alice").unwrap();
        let lease = Duration::from_secs(10);
        let (first, second) = (record(1, 1), record(2, 1));
        let node = |r: &Record| r.body_unverified().ticket.body_unverified().node;
        let mut seen = (index.changes(), index.removals());
        // Whether the changes moved, and whether the removals did.
        let mut moved = |index: &OwnerIndex| {
            let now = (index.changes(), index.removals());
            let moved = (now.0 != seen.0, now.1 != seen.1);
            seen = now;
            moved
        };

        index.store(Time(0), home, first.clone(), lease, 100, |_| true);
        assert_eq!(moved(&index), (true, false), "a first device");
        index.store(Time(0), home, second.clone(), lease, 100, |_| true);
        assert_eq!(
            moved(&index),
            (true, false),
            "a second device of the same user"
        );
        index.store(Time(1_000), home, record(1, 2), lease, 100, |_| true);
        assert_eq!(
            moved(&index),
            (false, false),
            "a refreshed record: the same pairs"
        );
        let none_left = index.withdraw(&home, &alice, &node(&first));
        assert!(!none_left, "alice still has her second device");
        assert_eq!(moved(&index), (true, true), "a device withdrawn");
        index.withdraw(&home, &alice, &node(&first));
        assert_eq!(moved(&index), (false, false), "nothing left to withdraw");
        assert!(index.holds(&alice, &node(&second)));
        assert_eq!(index.expire(Time(10_000)), vec![alice.clone()]);
        assert_eq!(moved(&index), (true, true), "a lease ended");
        assert!(!index.holds(&alice, &node(&second)));
        index.expire(Time(20_000));
        assert_eq!(moved(&index), (false, false), "nothing left to expire");
    }

    #[test]
    fn a_copy_handed_over_by_an_owner_that_left_is_taken_over_by_its_home_and_withdrawn_by_it() {
        let node_of = |seed: u8| SecretKey::from_seed([seed; 32]).node_id();
        let (home, leaver, mallory) = (node_of(9), node_of(10), node_of(11));
        let alice = Username::new("alice").unwrap();
        let lease = Duration::from_secs(10);
        let copy = homed_record(1, 1, Some(home));
        let device = copy.body_unverified().ticket.body_unverified().node;

        // While the owner that handed it over is still a member, its copy is its own: the
        // same record from anyone else is a replay.
        let mut index = OwnerIndex::default();
        index.store(Time(0), leaver, copy.clone(), lease, 100, |_| true);
        assert_eq!(
            index.store(Time(1), mallory, copy.clone(), lease, 100, |_| true),
            Stored::Refused
        );
        // Once it is gone, the home's next publication of it takes it over (and its lease).
        let gone = |node: &NodeId| *node != leaver;
        assert_eq!(
            index.store(Time(5_000), home, copy.clone(), lease, 100, gone),
            Stored::Updated
        );
        assert_eq!(index.expire(Time(10_000)), Vec::<Username>::new());
        assert!(index.holds(&alice, &device), "the lease was extended");
        assert!(index.withdraw(&home, &alice, &device));

        // The home the record names may withdraw the copy before that; nobody else may.
        let mut index = OwnerIndex::default();
        index.store(Time(0), leaver, copy.clone(), lease, 100, |_| true);
        assert!(!index.withdraw(&mallory, &alice, &device));
        assert!(index.holds(&alice, &device));
        assert!(index.withdraw(&home, &alice, &device));
        assert!(!index.holds(&alice, &device));

        // A newer record of the device at another home is not the old home's to withdraw.
        let mut index = OwnerIndex::default();
        let moved = homed_record(1, 2, Some(mallory));
        index.store(Time(0), mallory, moved, lease, 100, |_| true);
        assert!(!index.withdraw(&home, &alice, &device));
        assert!(index.holds(&alice, &device));
    }
}
