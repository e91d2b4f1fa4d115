//! Where a user's records live: the `R` supernodes that win a rendezvous (highest random
//! weight) hash of (username, node id) over the live members (DESIGN.md section 5).
//!
//! Rendezvous hashing needs no ring and no coordination: every supernode that knows the same
//! membership computes the same owners, and a membership change moves only the users whose
//! owner set contained the node that left (or now contains the one that joined), about `R/N`
//! of them, instead of reshuffling everything.
//!
//! The score mixes a SHA-256 key of the username with a SHA-256 key of the node id, so that
//! every build on every platform agrees (std's `DefaultHasher` promises no stability across
//! Rust versions, and a disagreement would split the directory).

use sha2::{Digest, Sha256};
use switchboard_proto::{NodeId, Username};

use crate::by_node::ByNode;

/// Owners per user by default: a record survives the loss of any two of its owners at once
/// (the design target is a third of the supernodes dying together; with 3 owners chosen
/// independently, a user loses all of them with probability about (1/3)^3 = 4%, and the home
/// supernode re-publishes them within a membership round).
pub const DEFAULT_REPLICAS: usize = 3;

const DOMAIN: &[u8] = b"switchboard/owner/v1\0";

/// The first 8 bytes of SHA-256 over the domain, a kind tag and `bytes`.
fn digest64(kind: u8, bytes: &[u8]) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update([kind]);
    hasher.update(bytes);
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0u8; 8]));
    u64::from_be_bytes(first)
}

/// A user's placement key: SHA-256 of its name, computed once per placement question.
pub fn user_key(user: &Username) -> u64 {
    digest64(b'u', user.as_str().as_bytes())
}

/// A member's placement key: SHA-256 of its node id, computed once per member (a [`Ring`]
/// caches it).
pub fn member_key(node: &NodeId) -> u64 {
    digest64(b'n', node.as_bytes())
}

/// The rendezvous score of a member for a user: SplitMix64's finalizer over the two keys.
/// Hashing both keys with SHA-256 once and mixing them per pair costs ~2 ns per member instead
/// of a SHA-256 per (user, member) pair, which is what lets a supernode place a user among a
/// thousand members in microseconds; the result is plain integer arithmetic, the same on every
/// build and platform.
pub fn mix(user_key: u64, member_key: u64) -> u64 {
    let mut z = user_key ^ member_key;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The rendezvous score of `node` for `user`.
pub fn score(user: &Username, node: &NodeId) -> u64 {
    mix(user_key(user), member_key(node))
}

/// The (at most) `replicas` members with the highest scores for `user`, best first. Ties (a
/// 2^-64 event) are broken by node id, so the answer is a function of the member set alone.
pub fn owners<'a>(
    user: &Username,
    members: impl IntoIterator<Item = &'a NodeId>,
    replicas: usize,
) -> Vec<NodeId> {
    let key = user_key(user);
    top(
        key,
        members.into_iter().map(|node| (member_key(node), *node)),
        replicas,
    )
}

fn top(
    user_key: u64,
    members: impl Iterator<Item = (u64, NodeId)>,
    replicas: usize,
) -> Vec<NodeId> {
    let mut best: Vec<(u64, NodeId)> = Vec::with_capacity(replicas + 1);
    for (member_key, node) in members {
        let entry = (mix(user_key, member_key), node);
        let position = best.partition_point(|held| *held > entry);
        if position < replicas {
            best.insert(position, entry);
            best.truncate(replicas);
        }
    }
    best.into_iter().map(|(_, node)| node).collect()
}

/// Something that names a member's node id: what a [`Ring`] holds of a member, and what the
/// membership's tables by node hold. A bare [`NodeId`], or a pointer to a statement shared by
/// every view (the overlay's rings hold [`crate::membership::MemberInfo`]s: 8 bytes a member,
/// where a node id is 32 and the simulator holds a ring per supernode of every supernode).
pub trait NamesNode {
    /// The member's node id.
    fn node_id(&self) -> &NodeId;
}

impl NamesNode for NodeId {
    fn node_id(&self) -> &NodeId {
        self
    }
}

/// The live members with their placement keys cached, for placing many users.
///
/// Kept as arrays in node-id order rather than a map: placing a user scores every member
/// (rendezvous hashing is O(N) per user), and a contiguous array of keys is scanned several
/// times faster than a tree's nodes (a profile of the 1,000-supernode simulation put
/// [`Ring::owners`] at 4.5% of the run). Members change rarely next to how often users are
/// placed, so an O(N) insertion is the cheap side.
#[derive(Debug, Clone)]
pub struct Ring<M = NodeId> {
    /// Searched by the first 8 bytes of their node ids before the whole: telling whether a
    /// newcomer outscores a record's owners looks each owner up, for every record a supernode
    /// homes and every join, and a halving search that read each probed id through its member
    /// was 8% of a simulated mass join (`Ring::would_displace`).
    members: ByNode<M>,
    /// `members`' placement keys, in the same order.
    keys: Vec<u64>,
}

impl<M> Default for Ring<M> {
    fn default() -> Self {
        Self {
            members: ByNode::default(),
            keys: Vec::new(),
        }
    }
}

impl<M: NamesNode + Clone> Ring<M> {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, node: &NodeId) -> Result<usize, usize> {
        self.members.position(node)
    }

    /// Adds a member; false if it was there (then `member` replaces what was held of it: a
    /// renewed statement, the same node).
    pub fn insert(&mut self, member: M) -> bool {
        if let Err(at) = self.position(member.node_id()) {
            self.keys.insert(at, member_key(member.node_id()));
        }
        self.members.insert(member).is_none()
    }

    /// Removes a member; false if it was not there.
    pub fn remove(&mut self, node: &NodeId) -> bool {
        match self.position(node) {
            Ok(at) => {
                self.members.remove(node);
                self.keys.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `node` is a member.
    pub fn contains(&self, node: &NodeId) -> bool {
        self.position(node).is_ok()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, ordered by node id.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeId> {
        self.members.iter().map(NamesNode::node_id)
    }

    /// A member's cached placement key.
    pub fn key_of(&self, node: &NodeId) -> Option<u64> {
        let at = self.position(node).ok()?;
        self.keys.get(at).copied()
    }

    /// Whether adding `newcomer` would change the owners `current` of the user with
    /// `user_key`: O(R), no full placement. `current` must be the user's owners on this ring.
    pub fn would_displace(
        &self,
        user_key: u64,
        current: &[NodeId],
        newcomer: &NodeId,
        replicas: usize,
    ) -> bool {
        if current.len() < replicas {
            return true;
        }
        let challenger = (mix(user_key, member_key(newcomer)), *newcomer);
        current.iter().any(|owner| {
            self.key_of(owner)
                .is_none_or(|key| (mix(user_key, key), *owner) < challenger)
        })
    }

    /// `user`'s owners among the members, best first (the same answer as [`owners`]).
    pub fn owners(&self, user: &Username, replicas: usize) -> Vec<NodeId> {
        let user_key = user_key(user);
        // The held entries, best first, as (score, index); a member's node id is read only
        // to break a tie of scores.
        let mut best: Vec<(u64, usize)> = Vec::with_capacity(replicas + 1);
        let node = |i: usize| self.members.nth(i).map(NamesNode::node_id);
        for (i, key) in self.keys.iter().enumerate() {
            let score = mix(user_key, *key);
            if best.len() == replicas {
                match best.last() {
                    Some(&(worst, _)) if score < worst => continue,
                    Some(&(worst, w)) if score == worst && node(i) <= node(w) => continue,
                    _ => {}
                }
            }
            let position = best.partition_point(|&(held, h)| (held, node(h)) > (score, node(i)));
            if position < replicas {
                best.insert(position, (score, i));
                best.truncate(replicas);
            }
        }
        // Exactly as many as found: a collected `filter_map` would make room for four, and a
        // home keeps each of its clients' owners.
        let mut owners = Vec::with_capacity(best.len());
        owners.extend(best.into_iter().filter_map(|(_, i)| node(i).copied()));
        owners
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn node(i: u32) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&i.to_be_bytes());
        NodeId::from_bytes(bytes)
    }

    fn user(i: u32) -> Username {
        Username::new(&format!("user{i}")).unwrap()
    }

    #[test]
    fn owners_are_distinct_best_first_and_independent_of_member_order() {
        let members: Vec<NodeId> = (0..20).map(node).collect();
        let mut reversed = members.clone();
        reversed.reverse();
        let alice = Username::new("alice").unwrap();
        let owners_a = owners(&alice, &members, 3);
        assert_eq!(owners_a, owners(&alice, &reversed, 3));
        assert_eq!(owners_a.len(), 3);
        let scores: Vec<u64> = owners_a.iter().map(|n| score(&alice, n)).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(owners(&alice, &members[..2], 3).len(), 2);
    }

    #[test]
    fn a_ring_places_users_exactly_as_the_free_function_does() {
        let mut ring = Ring::new();
        let members: Vec<NodeId> = (0..50).map(node).collect();
        for m in &members {
            assert!(ring.insert(*m));
        }
        assert!(ring.remove(&node(7)));
        let without: Vec<NodeId> = members.iter().copied().filter(|n| *n != node(7)).collect();
        for replicas in [1, 3, 5, 60] {
            for i in 0..200 {
                assert_eq!(
                    ring.owners(&user(i), replicas),
                    owners(&user(i), &without, replicas)
                );
            }
        }
    }

    #[test]
    fn load_spreads_evenly_over_members() {
        let members: Vec<NodeId> = (0..30).map(node).collect();
        let mut load: HashMap<NodeId, usize> = HashMap::new();
        let users = 30_000;
        for i in 0..users {
            for owner in owners(&user(i), &members, 3) {
                *load.entry(owner).or_default() += 1;
            }
        }
        let mean = (users * 3) as f64 / 30.0;
        for (member, count) in &load {
            let share = *count as f64 / mean;
            assert!(
                (0.9..1.1).contains(&share),
                "{member:?} holds {share:.2} of the mean"
            );
        }
    }

    proptest! {
        /// A member leaving moves only the users it owned; everyone else keeps their owners.
        #[test]
        fn a_departure_moves_only_the_users_of_the_departed(leaving in 0u32..12, users in proptest::collection::vec(0u32..100_000, 1..60)) {
            let members: Vec<NodeId> = (0..12).map(node).collect();
            let gone = node(leaving);
            let survivors: Vec<NodeId> = members.iter().copied().filter(|n| *n != gone).collect();
            for u in users {
                let before = owners(&user(u), &members, 3);
                let after = owners(&user(u), &survivors, 3);
                if before.contains(&gone) {
                    let kept: Vec<NodeId> = before.iter().copied().filter(|n| *n != gone).collect();
                    prop_assert_eq!(&after[..2], &kept[..]);
                } else {
                    prop_assert_eq!(before, after);
                }
            }
        }
    }
}
