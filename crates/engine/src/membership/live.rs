//! The live members' statements of one view, sorted by node id.
//!
//! A statement is one shared allocation however many views hold it ([`MemberInfo`]), so a view's
//! set of them need only be pointers: a sorted `Vec` of 16 bytes a member (the pointer and the
//! first 8 bytes of the node id), where a `BTreeMap` keyed by node id took about 60 and a
//! `HashMap` 40 to 80 (its buckets are half empty after each doubling). A lookup is a binary
//! search over the prefixes, which lie side by side, and one read through the pointer found
//! (a search that read every probed node id through its pointer made a simulated run 5% slower
//! than the `HashMap`). Joins and departures move the tail of the vector: rare next to lookups.

use switchboard_proto::NodeId;

use super::MemberInfo;

/// Live members by node id; see the module doc.
#[derive(Debug, Default)]
pub(crate) struct LiveSet {
    /// Sorted by node id: the prefix is its first 8 bytes read big-endian, so ordering by
    /// prefix, then by the whole id, is ordering by id.
    members: Vec<(u64, MemberInfo)>,
}

impl LiveSet {
    fn position(&self, node: &NodeId) -> Result<usize, usize> {
        let prefix = super::node_prefix(node);
        self.members.binary_search_by(|(held_prefix, held)| {
            held_prefix.cmp(&prefix).then_with(|| held.node.cmp(node))
        })
    }

    /// The statement held of `node`.
    pub(crate) fn get(&self, node: &NodeId) -> Option<&MemberInfo> {
        self.position(node)
            .ok()
            .and_then(|at| self.members.get(at))
            .map(|(_, held)| held)
    }

    /// Whether `node` is here.
    pub(crate) fn contains(&self, node: &NodeId) -> bool {
        self.position(node).is_ok()
    }

    /// Holds `info` for its node, in place of what was held (returned).
    pub(crate) fn insert(&mut self, info: MemberInfo) -> Option<MemberInfo> {
        match self.position(&info.node) {
            Ok(at) => self
                .members
                .get_mut(at)
                .map(|(_, held)| std::mem::replace(held, info)),
            Err(at) => {
                self.members
                    .insert(at, (super::node_prefix(&info.node), info));
                None
            }
        }
    }

    /// Drops `node`; what was held.
    pub(crate) fn remove(&mut self, node: &NodeId) -> Option<MemberInfo> {
        self.position(node).ok().map(|at| self.members.remove(at).1)
    }

    /// How many.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The `index`th by node id.
    pub(crate) fn nth(&self, index: usize) -> Option<&MemberInfo> {
        self.members.get(index).map(|(_, held)| held)
    }

    /// All, by node id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &MemberInfo> {
        self.members.iter().map(|(_, held)| held)
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
