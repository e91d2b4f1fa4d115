//! The bootstrap registry: supernodes that announced themselves recently, for the bootstrap
//! list handed out at login. Entries expire unless re-announced (soft state).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_proto::limits::MAX_BOOTSTRAP;
use switchboard_proto::messages::{BootstrapEntry, ServiceMode};
use switchboard_proto::{BoundedVec, NodeId, PeerAddr, TicketBody, UnixTime};

/// Most supernodes remembered. Far above any deployment's supernode count (Skype ran tens of
/// thousands at its peak); bounds memory against a flood of announcements from valid tickets.
pub const MAX_ANNOUNCED: usize = 100_000;

/// Bootstrap entries reserved for mega-supernodes, so that a client always learns some of the
/// operator-run fallbacks (DESIGN.md section 6: go to the megas after a few failed tries).
const MEGA_SHARE: usize = MAX_BOOTSTRAP / 4;

#[derive(Debug, Clone)]
struct Announced {
    addr: SocketAddr,
    mode: ServiceMode,
    load_permille: u16,
    expires_at: UnixTime,
    ticket: TicketBody,
}

/// What a supernode says of itself when it announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The ticket it announced with (so that its entry goes when the ticket is revoked).
    pub ticket: TicketBody,
    /// Where clients reach it.
    pub addr: SocketAddr,
    /// How it serves.
    pub mode: ServiceMode,
    /// Its client capacity.
    pub capacity: u32,
    /// Clients connected now.
    pub clients: u32,
}

/// The registry is full of live entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bootstrap registry full ({MAX_ANNOUNCED} supernodes)")]
pub struct RegistryFull;

/// Supernodes known alive.
#[derive(Debug, Default)]
pub struct Registry {
    entries: HashMap<NodeId, Announced>,
}

impl Registry {
    /// Records (or renews) an announcement; returns when it expires.
    pub fn announce(
        &mut self,
        now: UnixTime,
        node: NodeId,
        announcement: Announcement,
        ttl: Duration,
    ) -> Result<UnixTime, RegistryFull> {
        let Announcement {
            ticket,
            addr,
            mode,
            capacity,
            clients,
        } = announcement;
        if !self.entries.contains_key(&node) && self.entries.len() >= MAX_ANNOUNCED {
            self.expire(now);
            if self.entries.len() >= MAX_ANNOUNCED {
                return Err(RegistryFull);
            }
        }
        let load = u64::from(clients) * 1000 / u64::from(capacity.max(1));
        let expires_at = now.plus(ttl.as_secs());
        self.entries.insert(
            node,
            Announced {
                addr,
                mode,
                load_permille: u16::try_from(load.min(1000)).unwrap_or(1000),
                expires_at,
                ticket,
            },
        );
        Ok(expires_at)
    }

    /// Drops the entries whose announcing ticket `revoked` says is revoked; returns how many.
    pub fn forget_revoked(&mut self, revoked: impl Fn(&TicketBody) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| !revoked(&entry.ticket));
        before - self.entries.len()
    }

    fn expire(&mut self, now: UnixTime) {
        self.entries.retain(|_, entry| entry.expires_at > now);
    }

    /// Live supernodes serving clients, least loaded first, with a share reserved for megas.
    /// Standby megas are left out: they serve no clients until they activate.
    pub fn bootstrap(&mut self, now: UnixTime) -> BoundedVec<BootstrapEntry, MAX_BOOTSTRAP> {
        self.expire(now);
        let mut live: Vec<BootstrapEntry> = self
            .entries
            .iter()
            .filter(|(_, e)| e.mode != ServiceMode::MegaStandby)
            .map(|(node, e)| BootstrapEntry {
                peer: PeerAddr {
                    node: *node,
                    addr: e.addr,
                },
                mode: e.mode,
                load_permille: e.load_permille,
            })
            .collect();
        live.sort_by_key(|e| (e.load_permille, e.peer.node));
        let (megas, normals): (Vec<_>, Vec<_>) =
            live.into_iter().partition(|e| e.mode == ServiceMode::Mega);
        let mega_count = megas.len().min(MEGA_SHARE);
        let normal_count = normals.len().min(MAX_BOOTSTRAP - mega_count);
        BoundedVec::truncating(
            normals
                .into_iter()
                .take(normal_count)
                .chain(megas.into_iter().take(MAX_BOOTSTRAP - normal_count)),
        )
    }

    /// Every entry not yet expired at `now`, for the status page: node, account, address,
    /// mode, load (per mille) and when it expires unless renewed; by node id.
    pub fn entries(
        &self,
        now: UnixTime,
    ) -> Vec<(NodeId, String, SocketAddr, ServiceMode, u16, UnixTime)> {
        let mut entries: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at > now)
            .map(|(node, e)| {
                (
                    *node,
                    e.ticket.user.to_string(),
                    e.addr,
                    e.mode,
                    e.load_permille,
                    e.expires_at,
                )
            })
            .collect();
        entries.sort_by_key(|e| e.0);
        entries
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is live (expired ones may linger until the next expiry pass).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeId {
        NodeId::from_bytes([n; 32])
    }

    fn ticket(user: &str) -> TicketBody {
        TicketBody {
            user: switchboard_proto::Username::new(user).unwrap(),
            node: node(0),
            role: switchboard_proto::Role::Supernode,
            issued_at: UnixTime(0),
            expires_at: UnixTime(1_000),
            serial: 1,
        }
    }

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, n], 7000))
    }

    #[test]
    fn announcements_expire_and_the_least_loaded_come_first() {
        let mut registry = Registry::default();
        let ttl = Duration::from_secs(90);
        registry
            .announce(
                UnixTime(0),
                node(1),
                Announcement {
                    ticket: ticket("sn"),
                    addr: addr(1),
                    mode: ServiceMode::Normal,
                    capacity: 100,
                    clients: 90,
                },
                ttl,
            )
            .unwrap();
        registry
            .announce(
                UnixTime(50),
                node(2),
                Announcement {
                    ticket: ticket("sn"),
                    addr: addr(2),
                    mode: ServiceMode::Normal,
                    capacity: 100,
                    clients: 10,
                },
                ttl,
            )
            .unwrap();
        registry
            .announce(
                UnixTime(50),
                node(3),
                Announcement {
                    ticket: ticket("sn"),
                    addr: addr(3),
                    mode: ServiceMode::MegaStandby,
                    capacity: 100,
                    clients: 0,
                },
                ttl,
            )
            .unwrap();
        let list = registry.bootstrap(UnixTime(60));
        let nodes: Vec<_> = list.iter().map(|e| e.peer.node).collect();
        assert_eq!(nodes, vec![node(2), node(1)]);
        let list = registry.bootstrap(UnixTime(100));
        assert_eq!(list.len(), 1, "node 1 expired at 90 s");
    }

    #[test]
    fn megas_keep_a_share_of_the_list_even_when_normals_abound() {
        let mut registry = Registry::default();
        let ttl = Duration::from_secs(90);
        for n in 0..100u8 {
            registry
                .announce(
                    UnixTime(0),
                    node(n),
                    Announcement {
                        ticket: ticket("sn"),
                        addr: addr(n),
                        mode: ServiceMode::Normal,
                        capacity: 100,
                        clients: 0,
                    },
                    ttl,
                )
                .unwrap();
        }
        registry
            .announce(
                UnixTime(0),
                node(200),
                Announcement {
                    ticket: ticket("sn"),
                    addr: addr(200),
                    mode: ServiceMode::Mega,
                    capacity: 10_000,
                    clients: 9_000,
                },
                ttl,
            )
            .unwrap();
        let list = registry.bootstrap(UnixTime(1));
        assert_eq!(list.len(), MAX_BOOTSTRAP);
        assert!(list.iter().any(|e| e.mode == ServiceMode::Mega));
    }

    #[test]
    fn an_entry_announced_with_a_revoked_ticket_is_forgotten() {
        let mut registry = Registry::default();
        for (n, user) in [(1, "sn1"), (3, "sn3")] {
            registry
                .announce(
                    UnixTime(0),
                    node(n),
                    Announcement {
                        ticket: ticket(user),
                        addr: addr(n),
                        mode: ServiceMode::Normal,
                        capacity: 100,
                        clients: 0,
                    },
                    Duration::from_secs(90),
                )
                .unwrap();
        }
        assert_eq!(registry.forget_revoked(|t| t.user.as_str() == "sn3"), 1);
        let nodes: Vec<_> = registry
            .bootstrap(UnixTime(1))
            .iter()
            .map(|e| e.peer.node)
            .collect();
        assert_eq!(nodes, vec![node(1)]);
    }
}
