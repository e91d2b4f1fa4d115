//! Injected faults: crashes, restarts, partitions, slow nodes and graceful drains.

use std::time::Duration;

use rand::{Rng, RngCore};
use switchboard_proto::messages::RedirectReason;
use switchboard_proto::NodeId;

use crate::client::ClientState;
use crate::config::Fault;
use crate::roles::Kind;
use crate::world::{fresh_supernode, Event, World};
use switchboard_engine::membership::{MemberInfo, MemberRole};

impl World {
    pub(crate) fn inject(&mut self, fault: Fault) {
        self.topology_epoch += 1;
        self.converged_since = None;
        match fault {
            Fault::Crash(list) => {
                for sn in list {
                    self.crash(sn);
                }
                self.figures.crash_at.get_or_insert(self.now);
            }
            Fault::Restart(list) => {
                for sn in list {
                    self.restart(sn);
                }
            }
            Fault::Partition(side) => {
                let mut sides = vec![false; self.sns.len()];
                for sn in side {
                    if let Some(slot) = sides.get_mut(sn) {
                        *slot = true;
                    }
                }
                self.partition = Some(sides);
            }
            Fault::Heal => self.partition = None,
            Fault::Slow(sn, extra) => {
                if let Some(s) = self.sns.get_mut(sn) {
                    s.slow = extra;
                }
            }
            Fault::Drain(sn) => self.drain_with(sn, RedirectReason::Draining),
            Fault::Leave(list) => self.leave(&list),
        }
    }

    pub(crate) fn crash(&mut self, sn: usize) {
        if !self.sns[sn].up {
            return;
        }
        self.sns[sn].up = false;
        self.sns[sn].wake = None;
        let clients: Vec<usize> = std::mem::take(&mut self.sns[sn].sessions)
            .into_iter()
            .collect();
        for client in clients {
            self.clients[client].sessions.remove(&sn);
            if let ClientState::Online { home, .. } = self.clients[client].state {
                if home == sn {
                    let epoch = self.clients[client].epoch;
                    let jitter = Duration::from_millis(self.rng.gen_range(0..500));
                    let at = self.now + self.config.detect + jitter;
                    self.schedule(at, Event::HomeLost { client, epoch });
                }
            }
        }
    }

    pub(crate) fn restart(&mut self, sn: usize) {
        if self.sns[sn].up {
            return;
        }
        let old = &self.sns[sn];
        // A promoted role starts again only through a new nomination.
        let role = match old.kind {
            Kind::Operator => old.info.role,
            Kind::Mega => MemberRole::Standby,
            Kind::Promoted { .. } => return,
        };
        let signer = old.signer.clone();
        // Stepping in or back signed later generations than the one it started with.
        let last = old
            .info
            .generation
            .max(old.overlay.membership().me().generation);
        let Ok(info) =
            MemberInfo::signed(&signer, old.info.addr, role, old.info.capacity, last + 1)
        else {
            return;
        };
        let seed = self.rng.next_u64();
        let kind = old.kind;
        let Ok(fresh) = fresh_supernode(&self.config, info, signer, &self.anchor, seed, kind)
        else {
            return;
        };
        self.sns[sn] = fresh;
        let seeds: Vec<(NodeId, std::net::SocketAddr)> = (0..self.sns.len())
            .filter(|s| *s != sn && self.sns[*s].up)
            .take(3)
            .map(|s| (self.sns[s].info.node, self.sns[s].info.addr))
            .collect();
        let now = self.now;
        for (seed, addr) in seeds {
            self.sns[sn].overlay.join(now, seed, addr);
        }
        self.drain_outputs(sn);
    }

    /// SIGTERM (or a demotion, with `Demoted`): redirect every client in jittered batches to
    /// live alternatives, keep their leases until they are registered elsewhere, then leave the
    /// overlay.
    pub(crate) fn drain_with(&mut self, sn: usize, reason: RedirectReason) {
        if !self.sns[sn].up {
            return;
        }
        self.sns[sn].draining = true;
        let targets = self.alternatives(sn);
        let clients: Vec<usize> = self.sns[sn].sessions.iter().copied().collect();
        for client in clients {
            let jitter = Duration::from_millis(self.rng.gen_range(0..2_000));
            let at = self.now + jitter;
            self.schedule(
                at,
                Event::Redirected {
                    client,
                    sn,
                    targets: targets.clone(),
                    reason,
                },
            );
        }
        let at = self.now + Duration::from_secs(8);
        self.schedule(at, Event::DrainDone(sn));
    }

    pub(crate) fn finish_drain(&mut self, sn: usize) {
        if !self.sns[sn].up {
            return;
        }
        let now = self.now;
        self.sns[sn].overlay.leave(now);
        self.drain_outputs(sn);
        self.topology_epoch += 1;
        self.converged_since = None;
        self.crash(sn);
    }
}
