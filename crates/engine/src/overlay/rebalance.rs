//! What a membership change does to the overlay: records and watches move to their new
//! owners, a restarted owner is refilled, and lookups waiting on a dead owner ask its
//! replacement.

use switchboard_proto::messages::{OverlayMessage, RecordKey};
use switchboard_proto::{NodeId, Record, Username};

use super::{Change, Overlay};
use crate::placement;
use crate::time::Time;

impl Overlay {
    /// Re-places the homed records and watched users a membership change affects: publishes
    /// to (subscribes at) the new owners. Former owners are not told to withdraw: their copy
    /// ends with its lease, and while membership flaps during convergence an owner can be
    /// dropped and taken back within one batch (a withdraw overtaking the publish that
    /// followed it lost records in the simulator at 1,000 supernodes).
    /// Only the users whose owners contained the departed member, or whom the newcomer
    /// outscores, are placed again (about R/N of them): O(R) per user otherwise.
    pub(super) fn rebalance(&mut self, now: Time, change: Change) {
        let replicas = self.config.replicas;
        let ring = &self.ring;
        let affected = |user: &Username, owners: &[NodeId]| match change {
            Change::Left(gone) => owners.contains(&gone),
            Change::Joined(newcomer) => {
                ring.would_displace(placement::user_key(user), owners, &newcomer, replicas)
            }
        };
        let moves: Vec<(RecordKey, Vec<NodeId>, Vec<NodeId>)> = self
            .homed
            .iter()
            .filter(|(key, homed)| affected(&key.user, &homed.owners))
            .filter_map(|(key, homed)| {
                let owners = ring.owners(&key.user, replicas);
                (owners != homed.owners).then(|| (key.clone(), homed.owners.clone(), owners))
            })
            .collect();
        let resubscribe: Vec<(Username, Vec<NodeId>)> = self
            .watched
            .iter()
            .filter(|(user, watched)| affected(user, &watched.owners))
            .filter_map(|(user, watched)| {
                let owners = ring.owners(user, replicas);
                (owners != watched.owners).then(|| (user.clone(), owners))
            })
            .collect();
        for (key, old, new) in moves {
            let Some(homed) = self.homed.get_mut(&key) else {
                continue;
            };
            homed.owners.clone_from(&new);
            let record = homed.record.clone();
            for owner in new.iter().filter(|o| !old.contains(o)) {
                self.stats.republished += 1;
                self.queue_publish(now, *owner, record.clone());
            }
        }
        for (user, owners) in resubscribe {
            let Some(watched) = self.watched.get_mut(&user) else {
                continue;
            };
            let fresh: Vec<NodeId> = owners
                .iter()
                .filter(|o| !watched.owners.contains(o))
                .copied()
                .collect();
            watched.owners = owners;
            for owner in fresh {
                self.subscribe_at(owner, user.clone());
            }
        }
    }

    /// Before this member leaves: every record it holds as an owner goes to the member that
    /// owns it in its place (the next in the user's ranking), so that a user whose owners all
    /// leave at once (three promoted supernodes stepping down together) stays findable while
    /// its home, or its client's new home, publishes to the new owners. Without it a lookup
    /// found nothing from the moment the others dropped the leavers until then.
    ///
    /// The copy's home at the new owner is this member; once this member is gone from its
    /// view, the real home's next publication of the same record takes the copy over
    /// (`OwnerIndex::store`), and a record that names its home can be withdrawn by it
    /// meanwhile.
    pub(super) fn hand_off(&mut self, now: Time) {
        let replicas = self.config.replicas;
        let mut moves: Vec<(Username, NodeId, Record)> = Vec::new();
        for (user, records) in self.index.users() {
            let ranked = self.ring.owners(user, replicas + 1);
            if !ranked.iter().take(replicas).any(|owner| *owner == self.me) {
                continue;
            }
            // With no more than `replicas` members, every other one owns it already.
            let Some(successor) = ranked.get(replicas) else {
                continue;
            };
            moves.extend(records.map(|record| (user.clone(), *successor, record.clone())));
        }
        // The index is a hash map; the outputs must come in the same order for the same
        // inputs (the simulator replays a seed).
        let device = |record: &Record| record.body_unverified().ticket.body_unverified().node;
        moves.sort_by(|a, b| (&a.0, a.1, device(&a.2)).cmp(&(&b.0, b.1, device(&b.2))));
        for (_, successor, record) in moves {
            self.stats.handed_off += 1;
            self.queue_publish(now, successor, record);
        }
    }

    /// Publishes again to `owner` every homed record it owns, and subscribes again there.
    pub(super) fn refill(&mut self, now: Time, owner: NodeId) {
        let records: Vec<Record> = self
            .homed
            .values()
            .filter(|h| h.owners.contains(&owner))
            .map(|h| h.record.clone())
            .collect();
        for record in records {
            self.stats.republished += 1;
            self.queue_publish(now, owner, record);
        }
        let users: Vec<Username> = self
            .watched
            .iter()
            .filter(|(_, w)| w.owners.contains(&owner))
            .map(|(user, _)| user.clone())
            .collect();
        for user in users {
            self.subscribe_at(owner, user);
        }
    }

    /// A member died: lookups waiting on it ask the owners that replace it.
    pub(super) fn owner_gone(&mut self, now: Time, gone: NodeId) {
        let replicas = self.config.replicas;
        let mut asks: Vec<(NodeId, Username)> = Vec::new();
        let mut done = Vec::new();
        for (id, pending) in &mut self.lookups {
            if !pending.waiting.contains(&gone) {
                continue;
            }
            pending.waiting.retain(|w| *w != gone);
            for owner in self.ring.owners(&pending.user, replicas) {
                if owner != self.me && !pending.asked.contains(&owner) {
                    pending.asked.push(owner);
                    pending.waiting.push(owner);
                    asks.push((owner, pending.user.clone()));
                }
            }
            if pending.waiting.is_empty() {
                done.push(*id);
            }
            pending.deadline = pending.deadline.max(now);
        }
        for (owner, user) in asks {
            self.send(owner, OverlayMessage::Lookup { user });
        }
        for id in done {
            if let Some(pending) = self.lookups.remove(&id) {
                let local = self.index.lookup(&pending.user);
                self.finish_lookup(id, pending.user, local);
            }
        }
    }
}
