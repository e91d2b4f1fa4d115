//! Promotion and demotion by capability and need (DESIGN.md section 6), sans-IO.
//!
//! Two halves, one per side of a promotion:
//!
//! - [`Nominator`], run by a home supernode over its own clients: a client that offered itself
//!   (`client online --promotable`), proved reachable by a dial-back from another socket, and
//!   has been online at least `min_session` is a candidate. The home nominates one (the largest
//!   declared capacity, then the longest online) only when the overlay needs capacity:
//!   utilization at or above `high_water_permille`, or fewer supernodes than one per
//!   `clients_per_supernode` clients. One nomination at a time per home, then `cooldown` for the
//!   new member's capacity to show in the gossip; a nominee that is not a member within
//!   `join_deadline` counts as a failed promotion, and a node is not nominated again for
//!   `renominate_after` after any nomination (failed or later demoted): the back-off.
//! - [`Demotion`], run by a promoted supernode over itself: it steps down when it has served at
//!   least `min_in_role`, utilization is below `low_water_permille`, and the rest of the overlay
//!   would stay below the high-water mark without it, all of this held for a dwell time that
//!   the driver draws at random (so that several promoted nodes do not step down at once on
//!   the same gossip). Operator supernodes and megas never run it.
//!
//! The gap between the two marks, the minimum time in a role, the dwell and the back-off are
//! the hysteresis that keeps nodes from flapping. Time is an input; nothing here reads a clock.

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_proto::NodeId;

use crate::time::Time;

/// Tuning of promotion and demotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromotionConfig {
    /// Utilization (per mille) at or above which homes nominate.
    pub high_water_permille: u32,
    /// Utilization (per mille) below which promoted nodes step down.
    pub low_water_permille: u32,
    /// Homes also nominate while there are fewer supernodes than one per this many clients
    /// (0: only utilization counts).
    pub clients_per_supernode: u32,
    /// How long a client must have been online to be nominated.
    pub min_session: Duration,
    /// How long a promoted node serves before it may step down.
    pub min_in_role: Duration,
    /// Pause after a nomination before the same home nominates again.
    pub cooldown: Duration,
    /// How long a nominee has to show up in the membership.
    pub join_deadline: Duration,
    /// How long before a node nominated once may be nominated again.
    pub renominate_after: Duration,
}

impl Default for PromotionConfig {
    /// Nominate at 80% utilization, step down below 40%; a client online for a minute; a
    /// promoted node serves at least 5 minutes; one nomination per home per 10 s; 30 s to
    /// join; 10 minutes before the same node is nominated again.
    fn default() -> Self {
        Self {
            high_water_permille: 800,
            low_water_permille: 400,
            clients_per_supernode: 0,
            min_session: Duration::from_secs(60),
            min_in_role: Duration::from_secs(300),
            cooldown: Duration::from_secs(10),
            join_deadline: Duration::from_secs(30),
            renominate_after: Duration::from_secs(600),
        }
    }
}

/// Candidates one home tracks at most: a home has at most a few thousand clients, and only
/// those that offered themselves are tracked; the bound keeps a flood of offers from growing
/// the map (the oldest offer is forgotten first).
pub const MAX_CANDIDATES: usize = 4096;

/// Nominations remembered for the back-off at most (the oldest is forgotten first).
pub const MAX_NOMINATED: usize = 4096;

/// The overlay as the gossip shows it: live serving members (this node included), their
/// capacity and their clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OverlayLoad {
    /// Live serving supernodes (standby megas excluded).
    pub supernodes: u64,
    /// Their summed capacity.
    pub capacity: u64,
    /// Their clients.
    pub clients: u64,
}

impl OverlayLoad {
    /// The overlay as `membership`'s gossip shows it: the live members that serve (standby
    /// megas excluded) with their capacity and gossiped clients, and this supernode itself as
    /// `own` (its capacity and clients) when it admits clients. What the daemon and the
    /// simulator both feed the [`Nominator`] and [`Demotion`].
    pub fn of(membership: &crate::membership::Membership, own: Option<(u64, u64)>) -> Self {
        let mut load = membership
            .live()
            .filter(|m| m.role != crate::membership::MemberRole::Standby)
            .fold(Self::default(), |load, m| Self {
                supernodes: load.supernodes + 1,
                capacity: load.capacity + u64::from(m.capacity),
                clients: load.clients + u64::from(membership.load_of(&m.node).unwrap_or(0)),
            });
        if let Some((capacity, clients)) = own {
            load.supernodes += 1;
            load.capacity += capacity;
            load.clients += clients;
        }
        load
    }

    /// Clients per capacity, in per mille (1000 when there is no capacity at all).
    pub fn utilization_permille(&self) -> u64 {
        permille(self.clients, self.capacity)
    }
}

fn permille(clients: u64, capacity: u64) -> u64 {
    clients
        .saturating_mul(1000)
        .checked_div(capacity)
        .unwrap_or(1000)
}

/// Where a candidate's dial-back stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Not checked yet: the driver should dial back.
    Unchecked,
    /// A dial-back is running.
    Checking,
    /// The dial-back reached it.
    Reachable,
    /// The dial-back failed: never nominated (until it offers again from a new session).
    Unreachable,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    capacity: u32,
    online_since: Time,
    offered_at: Time,
    reach: Reach,
}

/// Why an offer was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OfferRefused {
    /// A capacity of zero serves nobody.
    #[error("a promotable client must declare a capacity above 0")]
    NoCapacity,
    /// Nominated recently; back off.
    #[error("nominated recently; not again before the back-off ends")]
    BackingOff,
}

/// A home supernode's half: which of its clients to nominate, and when. See the module doc.
///
/// Its maps are ordered by node id, so that which dial-backs start first and which offer is
/// forgotten first on a tie depend on nothing but the inputs (the simulator replays a seed).
#[derive(Debug, Clone)]
pub struct Nominator {
    config: PromotionConfig,
    candidates: BTreeMap<NodeId, Candidate>,
    /// When each node was last nominated (for the back-off and the join deadline).
    nominated: BTreeMap<NodeId, Time>,
    /// The nomination waiting to show up in the membership.
    pending: Option<(NodeId, Time)>,
    last_nomination: Option<Time>,
}

impl Nominator {
    /// A nominator with no candidates.
    pub fn new(config: PromotionConfig) -> Self {
        Self {
            config,
            candidates: BTreeMap::new(),
            nominated: BTreeMap::new(),
            pending: None,
            last_nomination: None,
        }
    }

    /// The tuning.
    pub fn config(&self) -> &PromotionConfig {
        &self.config
    }

    /// A client of this home offers itself at `now`, online since `online_since`, with
    /// `capacity`. A new offer replaces the node's earlier one and asks for a new dial-back.
    pub fn offer(
        &mut self,
        now: Time,
        node: NodeId,
        capacity: u32,
        online_since: Time,
    ) -> Result<(), OfferRefused> {
        if capacity == 0 {
            return Err(OfferRefused::NoCapacity);
        }
        if self.backing_off(now, &node) {
            return Err(OfferRefused::BackingOff);
        }
        if !self.candidates.contains_key(&node) && self.candidates.len() >= MAX_CANDIDATES {
            let oldest = self
                .candidates
                .iter()
                .min_by_key(|(_, c)| c.offered_at)
                .map(|(node, _)| *node);
            if let Some(oldest) = oldest {
                self.candidates.remove(&oldest);
            }
        }
        self.candidates.insert(
            node,
            Candidate {
                capacity,
                online_since,
                offered_at: now,
                reach: Reach::Unchecked,
            },
        );
        Ok(())
    }

    fn backing_off(&self, now: Time, node: &NodeId) -> bool {
        self.nominated
            .get(node)
            .is_some_and(|at| now.since(*at) < self.config.renominate_after)
    }

    /// Candidates whose dial-back should start now; each is marked as being checked.
    pub fn poll_dial_backs(&mut self) -> Vec<NodeId> {
        self.poll_dial_backs_up_to(usize::MAX)
    }

    /// At most `limit` candidates whose dial-back should start now (the driver bounds the
    /// dial-backs running at once); each is marked as being checked.
    pub fn poll_dial_backs_up_to(&mut self, limit: usize) -> Vec<NodeId> {
        let mut due = Vec::new();
        for (node, candidate) in &mut self.candidates {
            if due.len() >= limit {
                break;
            }
            if candidate.reach == Reach::Unchecked {
                candidate.reach = Reach::Checking;
                due.push(*node);
            }
        }
        due
    }

    /// The dial-back to `node` ended.
    pub fn dial_back_done(&mut self, node: &NodeId, reached: bool) {
        if let Some(candidate) = self.candidates.get_mut(node) {
            candidate.reach = if reached {
                Reach::Reachable
            } else {
                Reach::Unreachable
            };
        }
    }

    /// Where `node`'s dial-back stands, if it is a candidate.
    pub fn reach(&self, node: &NodeId) -> Option<Reach> {
        self.candidates.get(node).map(|c| c.reach)
    }

    /// `node` is no longer this home's client (its session ended): it is no candidate.
    pub fn withdraw(&mut self, node: &NodeId) {
        self.candidates.remove(node);
    }

    /// The nominee waiting to show up in the membership, if any.
    pub fn pending(&self) -> Option<NodeId> {
        self.pending.map(|(node, _)| node)
    }

    /// `node` showed up in the membership: its promotion worked.
    pub fn joined(&mut self, node: &NodeId) {
        self.candidates.remove(node);
        if self.pending.is_some_and(|(pending, _)| pending == *node) {
            self.pending = None;
        }
    }

    /// Whether the overlay needs more supernodes.
    pub fn needs_capacity(&self, overlay: &OverlayLoad) -> bool {
        let ratio = u64::from(self.config.clients_per_supernode);
        overlay.utilization_permille() >= u64::from(self.config.high_water_permille)
            || (ratio > 0 && overlay.supernodes.saturating_mul(ratio) < overlay.clients)
    }

    /// Which client to nominate at `now`, if any. A nominee that did not join by the deadline
    /// is reported as failed in the second value (it backs off like any nominee).
    pub fn poll(&mut self, now: Time, overlay: &OverlayLoad) -> Poll {
        let mut failed = None;
        if let Some((node, at)) = self.pending {
            if now.since(at) < self.config.join_deadline {
                return Poll::default();
            }
            self.pending = None;
            failed = Some(node);
        }
        if self
            .last_nomination
            .is_some_and(|at| now.since(at) < self.config.cooldown)
            || !self.needs_capacity(overlay)
        {
            return Poll {
                nominate: None,
                failed,
            };
        }
        let min_session = self.config.min_session;
        let best = self
            .candidates
            .iter()
            .filter(|(_, c)| {
                c.reach == Reach::Reachable && now.since(c.online_since) >= min_session
            })
            .filter(|(node, _)| !self.backing_off(now, node))
            .max_by_key(|(node, c)| (c.capacity, std::cmp::Reverse(c.online_since), **node))
            .map(|(node, c)| (*node, c.capacity));
        if let Some((node, capacity)) = best {
            self.candidates.remove(&node);
            if self.nominated.len() >= MAX_NOMINATED {
                let oldest = self
                    .nominated
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(n, _)| *n);
                if let Some(oldest) = oldest {
                    self.nominated.remove(&oldest);
                }
            }
            self.nominated.insert(node, now);
            self.pending = Some((node, now));
            self.last_nomination = Some(now);
            return Poll {
                nominate: Some((node, capacity)),
                failed,
            };
        }
        Poll {
            nominate: None,
            failed,
        }
    }

    /// Candidates tracked now.
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }
}

/// What [`Nominator::poll`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Poll {
    /// Nominate this client, with its declared capacity.
    pub nominate: Option<(NodeId, u32)>,
    /// This nominee did not join in time.
    pub failed: Option<NodeId>,
}

/// A promoted supernode's half: when to step down. See the module doc.
#[derive(Debug, Clone)]
pub struct Demotion {
    config: PromotionConfig,
    promoted_at: Time,
    below_since: Option<Time>,
}

impl Demotion {
    /// A node promoted at `now`.
    pub fn new(config: PromotionConfig, now: Time) -> Self {
        Self {
            config,
            promoted_at: now,
            below_since: None,
        }
    }

    /// Takes the overlay at `now` (this node included, serving `my_capacity`) and says whether
    /// to step down now; `dwell` is how long the condition must hold (the driver draws it at
    /// random within a range, so that promoted nodes do not step down in lockstep).
    pub fn observe(
        &mut self,
        now: Time,
        overlay: &OverlayLoad,
        my_capacity: u64,
        dwell: Duration,
    ) -> bool {
        let without_me = permille(
            overlay.clients,
            overlay.capacity.saturating_sub(my_capacity),
        );
        let low = overlay.utilization_permille() < u64::from(self.config.low_water_permille)
            && without_me < u64::from(self.config.high_water_permille)
            && overlay.supernodes > 1;
        if !low {
            self.below_since = None;
            return false;
        }
        let since = *self.below_since.get_or_insert(now);
        now.since(self.promoted_at) >= self.config.min_in_role && now.since(since) >= dwell
    }
}

#[cfg(test)]
#[path = "promotion_tests.rs"]
mod tests;
