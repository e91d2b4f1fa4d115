//! Injected faults: crashes, restarts, partitions, slow nodes and graceful drains.

use std::time::Duration;

use rand::{Rng, RngCore};
use switchboard_proto::NodeId;

use crate::client::ClientState;
use crate::config::Fault;
use crate::world::{fresh_supernode, Event, World};
use switchboard_engine::membership::MemberInfo;

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
            Fault::Drain(sn) => self.drain(sn),
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
        let signer = old.signer.clone();
        let Ok(info) = MemberInfo::signed(
            &signer,
            old.info.addr,
            old.info.role,
            old.info.capacity,
            old.info.generation + 1,
        ) else {
            return;
        };
        let seed = self.rng.next_u64();
        let Ok(fresh) = fresh_supernode(&self.config, info, signer, &self.anchor, seed) else {
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

    /// SIGTERM: redirect every client in jittered batches to live alternatives, keep their
    /// leases until they are registered elsewhere, then leave the overlay.
    pub(crate) fn drain(&mut self, sn: usize) {
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
