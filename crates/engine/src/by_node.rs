//! Tables keyed by member, sorted by node id: a membership view's live set and load table, and
//! the placement ring's members.
//!
//! A statement is one shared allocation however many views hold it ([`MemberInfo`]), and so is
//! a verified load report, so a view's entries need only point at them: the live sets are
//! 16 bytes a member (the pointer and the first 8 bytes of the node id), where a `BTreeMap`
//! keyed by node id took about 60 and a `HashMap` 40 to 80 (its buckets are half empty after
//! each doubling); the load table 40 where its `HashMap` took 79 (heaptrack, 1,000 supernodes).
//! The prefixes lie in an array of their own, searched first; the whole id is read through the
//! entry only among equal prefixes (a search that read every probed node id through its
//! pointer made a simulated run 5% slower than the `HashMap`). Joins and departures move the
//! tails of the arrays: rare next to lookups.

use std::cmp::Ordering;

use switchboard_proto::NodeId;

use crate::membership::{node_prefix, MemberInfo};
use crate::placement::NamesNode;

/// Entries by node id; see the module doc.
#[derive(Debug, Clone)]
pub(crate) struct ByNode<V> {
    /// The first 8 bytes of each entry's node id, read big-endian, in node-id order (ordering
    /// by prefix, then by the whole id, is ordering by id).
    prefixes: Vec<u64>,
    /// The entries, in the same order.
    values: Vec<V>,
}

/// The live members of a view.
pub(crate) type LiveSet = ByNode<MemberInfo>;

impl<V> Default for ByNode<V> {
    fn default() -> Self {
        Self {
            prefixes: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<V: NamesNode> ByNode<V> {
    /// Where `node` is (`Ok`) or would go (`Err`).
    pub(crate) fn position(&self, node: &NodeId) -> Result<usize, usize> {
        let prefix = node_prefix(node);
        let mut at = first_at_least(&self.prefixes, prefix);
        // Equal prefixes (two ids alike in their first 8 bytes) are told apart by the rest.
        while self.prefixes.get(at) == Some(&prefix) {
            match self.values.get(at).map(|held| held.node_id().cmp(node)) {
                Some(Ordering::Less) => at += 1,
                Some(Ordering::Equal) => return Ok(at),
                Some(Ordering::Greater) | None => break,
            }
        }
        Err(at)
    }

    /// The entry of `node`.
    pub(crate) fn get(&self, node: &NodeId) -> Option<&V> {
        self.position(node).ok().and_then(|at| self.values.get(at))
    }

    /// The entry of `node`, to change (not its node).
    pub(crate) fn get_mut(&mut self, node: &NodeId) -> Option<&mut V> {
        self.position(node)
            .ok()
            .and_then(|at| self.values.get_mut(at))
    }

    /// Whether `node` is here.
    pub(crate) fn contains(&self, node: &NodeId) -> bool {
        self.position(node).is_ok()
    }

    /// Holds `value` for its node, in place of what was held (returned).
    pub(crate) fn insert(&mut self, value: V) -> Option<V> {
        match self.position(value.node_id()) {
            Ok(at) => self
                .values
                .get_mut(at)
                .map(|held| std::mem::replace(held, value)),
            Err(at) => {
                self.prefixes.insert(at, node_prefix(value.node_id()));
                self.values.insert(at, value);
                None
            }
        }
    }

    /// Drops `node`'s entry; what was held.
    pub(crate) fn remove(&mut self, node: &NodeId) -> Option<V> {
        let at = self.position(node).ok()?;
        self.prefixes.remove(at);
        Some(self.values.remove(at))
    }

    /// How many.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The `index`th by node id.
    pub(crate) fn nth(&self, index: usize) -> Option<&V> {
        self.values.get(index)
    }

    /// All, by node id.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, V> {
        self.values.iter()
    }
}

/// Where `prefix` is or would go in `prefixes` (sorted): the first index whose prefix is not
/// below it.
///
/// A node id is an Ed25519 public key, so its first 8 bytes are spread evenly over `u64`: the
/// search starts where `prefix` would lie if they were evenly spaced, and gallops from there
/// to bracket it (within about `sqrt(len)` entries of the guess, a cache line or two), then
/// halves the bracket. A plain halving of the whole array went through about ten entries a
/// cache line apart for every load report received (`load::is_newer` was 12% of a simulated
/// mass arrival). Keys a hostile member bunched on purpose only make the gallop longer: never
/// more than twice a plain halving's steps.
fn first_at_least(prefixes: &[u64], prefix: u64) -> usize {
    let len = prefixes.len();
    let scaled = (u128::from(prefix) * len as u128) >> 64;
    let guess = usize::try_from(scaled)
        .unwrap_or(0)
        .min(len.saturating_sub(1));
    let below = |at: usize| prefixes.get(at).is_some_and(|held| *held < prefix);
    // Bracket [low, high): every entry before `low` is below `prefix`, none from `high` on.
    let (mut low, mut high) = if below(guess) {
        let mut step = 1;
        let mut low = guess + 1;
        while low + step <= len && below(low + step - 1) {
            low += step;
            step *= 2;
        }
        (low, (low + step).min(len))
    } else {
        let mut step = 1;
        let mut high = guess;
        while high >= step && !below(high - step) {
            high -= step;
            step *= 2;
        }
        (high.saturating_sub(step), high)
    };
    while low < high {
        let mid = low + (high - low) / 2;
        if below(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{testkit, MemberRole};

    fn member(seed: u8, generation: u64) -> MemberInfo {
        MemberInfo::signed(
            &testkit::signer(seed),
            "127.0.0.1:4000".parse().unwrap(),
            MemberRole::Supernode,
            10,
            generation,
        )
        .unwrap()
    }

    #[test]
    fn members_are_found_replaced_and_dropped_by_node_and_kept_in_node_order() {
        let mut set = LiveSet::default();
        let members: Vec<MemberInfo> = (1..=20).map(|seed| member(seed, 1)).collect();
        for m in members.iter().rev() {
            assert_eq!(set.insert(m.clone()), None);
        }
        assert_eq!(set.len(), 20);
        let nodes: Vec<NodeId> = set.iter().map(|m| m.node).collect();
        let mut sorted = nodes.clone();
        sorted.sort();
        assert_eq!(nodes, sorted);
        for m in &members {
            assert_eq!(set.get(&m.node), Some(m));
        }
        // A newer generation replaces the one held, in place.
        let renewed = member(7, 2);
        assert_eq!(set.insert(renewed.clone()), Some(members[6].clone()));
        assert_eq!(set.get(&renewed.node), Some(&renewed));
        assert_eq!(set.len(), 20);
        // Dropped: gone, the rest still found.
        assert_eq!(set.remove(&members[0].node), Some(members[0].clone()));
        assert!(!set.contains(&members[0].node));
        assert_eq!(set.remove(&members[0].node), None);
        assert!(members[1..].iter().all(|m| set.contains(&m.node)));
        assert_eq!(set.nth(18).map(|m| m.node), sorted.last().copied());
    }

    proptest::proptest! {
        #[test]
        fn the_interpolated_search_finds_what_a_plain_halving_finds(
            mut spread in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..300),
            mut bunched in proptest::collection::vec(0u64..40, 0..300),
            probe in proptest::prelude::any::<u64>(),
            pick in proptest::prelude::any::<usize>(),
        ) {
            spread.sort_unstable();
            // Bunched keys (what a hostile member's chosen ids might be) stretched to the top
            // of the range, so that the guesses are far off.
            bunched.sort_unstable();
            let bunched: Vec<u64> = bunched.iter().map(|k| u64::MAX - 40 + k).collect();
            for keys in [&spread, &bunched] {
                let mut probes = vec![probe, 0, u64::MAX, u64::MAX - 20];
                if !keys.is_empty() {
                    probes.push(keys[pick % keys.len()]);
                }
                for probe in probes {
                    let expected = keys.partition_point(|k| *k < probe);
                    proptest::prop_assert_eq!(first_at_least(keys, probe), expected);
                }
            }
        }
    }

    #[test]
    fn node_ids_that_share_their_first_eight_bytes_are_told_apart_by_the_rest() {
        let base = member(1, 1);
        let with_last = |last: u8| {
            let mut bytes = [5u8; 32];
            bytes[31] = last;
            MemberInfo::from(crate::membership::Statement {
                node: NodeId::from_bytes(bytes),
                ..base.to_statement()
            })
        };
        let mut set = LiveSet::default();
        for last in [9, 3, 7, 1] {
            set.insert(with_last(last));
        }
        set.insert(base.clone());
        assert_eq!(set.len(), 5);
        for last in [1, 3, 7, 9] {
            assert_eq!(set.get(&with_last(last).node), Some(&with_last(last)));
        }
        assert!(!set.contains(&with_last(4).node));
        assert_eq!(set.remove(&with_last(3).node), Some(with_last(3)));
        assert!(set.contains(&with_last(7).node) && !set.contains(&with_last(3).node));
        let nodes: Vec<NodeId> = set.iter().map(|m| m.node).collect();
        let mut sorted = nodes.clone();
        sorted.sort();
        assert_eq!(nodes, sorted);
    }
}
