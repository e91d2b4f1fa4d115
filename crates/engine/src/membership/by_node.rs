//! A view's tables keyed by member, sorted by node id: its live set and its load table.
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

use super::MemberInfo;
use crate::placement::NamesNode;

/// Entries by node id; see the module doc.
#[derive(Debug)]
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
    fn position(&self, node: &NodeId) -> Result<usize, usize> {
        let prefix = super::node_prefix(node);
        let mut at = self.prefixes.partition_point(|held| *held < prefix);
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
                self.prefixes
                    .insert(at, super::node_prefix(value.node_id()));
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

    #[test]
    fn node_ids_that_share_their_first_eight_bytes_are_told_apart_by_the_rest() {
        let base = member(1, 1);
        let with_last = |last: u8| {
            let mut bytes = [5u8; 32];
            bytes[31] = last;
            MemberInfo::from(super::super::Statement {
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
