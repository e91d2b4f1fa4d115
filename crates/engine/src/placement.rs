//! Where a user's records live: the `R` supernodes that win a rendezvous (highest random
//! weight) hash of (username, node id) over the live members (DESIGN.md section 5).
//!
//! Rendezvous hashing needs no ring and no coordination: every supernode that knows the same
//! membership computes the same owners, and a membership change moves only the users whose
//! owner set contained the node that left (or now contains the one that joined), about `R/N`
//! of them, instead of reshuffling everything.
//!
//! The score is SHA-256 over a domain string, the username and the node id, so that every
//! build on every platform agrees (std's `DefaultHasher` promises no stability across Rust
//! versions, and a disagreement would split the directory).

use sha2::{Digest, Sha256};
use switchboard_proto::{NodeId, Username};

/// Owners per user by default: a record survives the loss of any two of its owners at once
/// (the design target is a third of the supernodes dying together; with 3 owners chosen
/// independently, a user loses all of them with probability about (1/3)^3 = 4%, and the home
/// supernode re-publishes them within a membership round).
pub const DEFAULT_REPLICAS: usize = 3;

const DOMAIN: &[u8] = b"switchboard/owner/v1\0";

/// The rendezvous score of `node` for `user`.
pub fn score(user: &Username, node: &NodeId) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(user.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(node.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0u8; 8]));
    u64::from_be_bytes(first)
}

/// The (at most) `replicas` members with the highest scores for `user`, best first. Ties (a
/// 2^-64 event) are broken by node id, so the answer is a function of the member set alone.
pub fn owners<'a>(
    user: &Username,
    members: impl IntoIterator<Item = &'a NodeId>,
    replicas: usize,
) -> Vec<NodeId> {
    let mut best: Vec<(u64, NodeId)> = Vec::with_capacity(replicas + 1);
    for node in members {
        let entry = (score(user, node), *node);
        let position = best.partition_point(|held| *held > entry);
        if position < replicas {
            best.insert(position, entry);
            best.truncate(replicas);
        }
    }
    best.into_iter().map(|(_, node)| node).collect()
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
