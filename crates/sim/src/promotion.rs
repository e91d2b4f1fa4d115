//! Promotion and demotion in the simulator, driven by `engine`'s [`Nominator`] and
//! [`Demotion`] as `crates/supernode/src/promotion.rs` drives them: homes take offers from
//! their promotable clients, dial them back (a client behind a NAT is never reached), and
//! nominate when the overlay runs hot; a nominee gets a `promoted` ticket and joins the overlay
//! as a new supernode with its own node key while its client registration carries on; a
//! promoted supernode steps down when `Demotion` says so (a drain with `Redirect { Demoted }`)
//! and leaves. Clients that leave for good are here too.

use std::ops::RangeInclusive;
use std::time::Duration;

use rand::{Rng, RngCore};
use switchboard_engine::membership::{MemberInfo, MemberRole, Signer};
use switchboard_engine::promotion::{Poll, MAX_CANDIDATES};
use switchboard_engine::{Demotion, Time};
use switchboard_proto::messages::RedirectReason;
use switchboard_proto::{Role, Ticket, TicketBody, UnixTime};

use crate::client::ClientState;
use crate::roles::Kind;
use crate::world::{fresh_supernode, sim_addr, Event, World};

/// Dial-backs one home runs at once: the daemon's `MAX_DIAL_BACKS`.
const MAX_DIAL_BACKS: usize = 8;

/// Candidates waiting for a dial-back slot at one home: the nominator tracks at most
/// `MAX_CANDIDATES` candidates, so no more can ever wait.
pub(crate) const MAX_QUEUED_DIAL_BACKS: usize = MAX_CANDIDATES;

/// How long a dial-back that reaches nobody takes to fail: the daemon's `DIAL_BACK_TIMEOUT`.
const DIAL_BACK_TIMEOUT: Duration = Duration::from_secs(3);

/// The dwell a promoted supernode draws before it steps down: the daemon's
/// `DEMOTION_DWELL_MS`.
const DEMOTION_DWELL_MS: RangeInclusive<u64> = 2_000..=8_000;

/// How long a promoted ticket lasts (as the simulated supernodes' tickets).
const TICKET_LIFETIME_SECS: u64 = 23 * 3600;

impl World {
    /// Whether `sn` nominates now: it runs a nominator (operators and megas, never a promoted
    /// supernode), it is up, and it admits clients (an active mega, not a standby one).
    fn nominates(&self, sn: usize) -> bool {
        let s = &self.sns[sn];
        s.up && s.serving && !s.draining && s.roles.nominator.is_some()
    }

    /// A promotable client just registered at `sn`: it offers itself (once per session, as
    /// `client online --promotable` does), unless it serves already.
    pub(crate) fn offer_promotion(&mut self, client: usize, sn: usize) {
        let c = &self.clients[client];
        let Some(promotable) = c.promotable else {
            return;
        };
        if c.hosting.is_some_and(|h| self.sns[h].up) || !self.nominates(sn) {
            return;
        }
        let ClientState::Online { since, .. } = c.state else {
            return;
        };
        let node = c.node;
        let now = self.now;
        if let Some(nominator) = self.sns[sn].roles.nominator.as_mut() {
            if nominator
                .offer(now, node, promotable.capacity, since)
                .is_ok()
            {
                self.figures.offers += 1;
            }
        }
    }

    /// `supernode::promotion::tick`: a demotion to decide on a promoted supernode; on a home,
    /// a nominee that joined, dial-backs to start, a nomination to send.
    pub(crate) fn promotion_tick(&mut self, sn: usize, now: Time) {
        if self.sns[sn].roles.demotion.is_some() {
            self.demotion_tick(sn, now);
            return;
        }
        if !self.nominates(sn) {
            return;
        }
        let load = self.overlay_load(sn);
        let s = &mut self.sns[sn];
        let Some(nominator) = s.roles.nominator.as_mut() else {
            return;
        };
        if let Some(pending) = nominator.pending() {
            if s.overlay.membership().is_live(&pending) {
                nominator.joined(&pending);
                self.figures.promotions_joined += 1;
            }
        }
        // The nominator keeps its candidates in a hash map: sort what it hands out so that
        // the seed alone decides the order.
        let mut due = nominator.poll_dial_backs();
        due.sort();
        for node in due {
            if s.roles.dial_back_queue.len() < MAX_QUEUED_DIAL_BACKS {
                s.roles.dial_back_queue.push_back(node);
            } else {
                nominator.dial_back_done(&node, false);
            }
        }
        let Poll { nominate, failed } = nominator.poll(now, &load);
        if failed.is_some() {
            self.figures.promotions_failed += 1;
        }
        self.start_dial_backs(sn);
        if let Some((node, _capacity)) = nominate {
            let Some(&client) = self.client_by_node.get(&node) else {
                return;
            };
            // The nomination rides the client's session here; gone with it, nothing happens
            // (the nominator counts a failed promotion at the join deadline).
            if !self.clients[client].sessions.contains(&sn) {
                return;
            }
            if self.clients[client]
                .promotable
                .is_some_and(|p| p.behind_nat)
            {
                self.violations.push(format!(
                    "t={} supernode {sn} nominated client {client}, which is behind a NAT",
                    now.0
                ));
            }
            self.figures.nominations += 1;
            let mut seeds = vec![sn];
            seeds.extend(self.alternatives(sn));
            // The push to the client, then its round trip to the auth-server for the ticket.
            let at = now + self.delay() + self.delay() + self.delay();
            self.schedule(at, Event::Promote { client, seeds });
        }
    }

    /// Starts queued dial-backs while fewer than [`MAX_DIAL_BACKS`] run. A client behind a NAT
    /// (or gone) never answers: the dial-back fails at its timeout.
    fn start_dial_backs(&mut self, sn: usize) {
        while self.sns[sn].roles.dial_backs_running < MAX_DIAL_BACKS {
            let Some(node) = self.sns[sn].roles.dial_back_queue.pop_front() else {
                return;
            };
            let Some(&client) = self.client_by_node.get(&node) else {
                continue;
            };
            let c = &self.clients[client];
            let reached =
                c.state != ClientState::Gone && c.promotable.is_some_and(|p| !p.behind_nat);
            let at = if reached {
                self.now + self.delay() + self.delay()
            } else {
                self.now + DIAL_BACK_TIMEOUT
            };
            self.sns[sn].roles.dial_backs_running += 1;
            let generation = self.sns[sn].info.generation;
            self.schedule(
                at,
                Event::DialBackDone {
                    sn,
                    generation,
                    client,
                    reached,
                },
            );
        }
    }

    pub(crate) fn dial_back_done(
        &mut self,
        sn: usize,
        generation: u64,
        client: usize,
        reached: bool,
    ) {
        let s = &mut self.sns[sn];
        if !s.up || s.info.generation != generation {
            return;
        }
        s.roles.dial_backs_running = s.roles.dial_backs_running.saturating_sub(1);
        let node = self.clients[client].node;
        if let Some(nominator) = s.roles.nominator.as_mut() {
            nominator.dial_back_done(&node, reached);
        }
        if reached {
            self.figures.dial_backs_ok += 1;
        } else {
            self.figures.dial_backs_failed += 1;
        }
        self.start_dial_backs(sn);
    }

    /// The nominee has its `promoted` ticket: its supernode role starts with its own node key
    /// and joins through the seeds (its home first). Its client registration carries on.
    pub(crate) fn start_promoted(&mut self, client: usize, seeds: &[usize]) {
        let c = &self.clients[client];
        let Some(promotable) = c.promotable else {
            return;
        };
        let home_kept = seeds.first().is_some_and(|home| c.sessions.contains(home));
        if c.state == ClientState::Gone || !home_kept || c.hosting.is_some_and(|h| self.sns[h].up) {
            return;
        }
        let now = self.now;
        if promotable.behind_nat {
            self.violations.push(format!(
                "t={} client {client}, behind a NAT, was promoted",
                now.0
            ));
        }
        let Some(policy) = self.config.promotion.as_ref().map(|p| p.policy) else {
            return;
        };
        let issued = self.unix_now();
        let Ok(ticket) = Ticket::issue(
            &self.auth,
            TicketBody {
                user: c.user.clone(),
                node: c.node,
                role: Role::Promoted,
                issued_at: issued,
                expires_at: UnixTime(issued.0 + TICKET_LIFETIME_SECS),
                serial: (1 << 32) + u64::try_from(client).unwrap_or(0),
            },
        ) else {
            return;
        };
        let signer = Signer {
            key: c.key.clone(),
            ticket,
        };
        let node = c.node;
        let (index, generation) = match c.hosting {
            Some(h) => {
                let old = &self.sns[h];
                let last = old
                    .info
                    .generation
                    .max(old.overlay.membership().me().generation);
                (h, last + 1)
            }
            None => (self.sns.len(), 1),
        };
        let Ok(info) = MemberInfo::signed(
            &signer,
            sim_addr(index),
            MemberRole::Supernode,
            promotable.capacity,
            generation,
        ) else {
            return;
        };
        let seed = self.rng.next_u64();
        let Ok(mut fresh) = fresh_supernode(
            &self.config,
            info,
            signer,
            &self.anchor,
            seed,
            Kind::Promoted { client },
        ) else {
            return;
        };
        let dwell = Duration::from_millis(self.rng.gen_range(DEMOTION_DWELL_MS));
        fresh.roles.demotion = Some((Demotion::new(policy, now), dwell));
        if index == self.sns.len() {
            self.sns.push(fresh);
        } else {
            self.sns[index] = fresh;
        }
        self.by_node.insert(node, index);
        self.clients[client].hosting = Some(index);
        let seeds: Vec<_> = seeds
            .iter()
            .filter(|s| **s != index && self.sns[**s].up)
            .take(3)
            .map(|s| (self.sns[*s].info.node, self.sns[*s].info.addr))
            .collect();
        for (seed, addr) in seeds {
            self.sns[index].overlay.join(now, seed, addr);
        }
        self.figures.promotions += 1;
        self.role_changed(index);
    }

    /// A promoted supernode asks `engine`'s `Demotion` whether to step down; if so it drains
    /// with `Redirect { Demoted }` and leaves. Operator supernodes and megas have no
    /// `Demotion`.
    fn demotion_tick(&mut self, sn: usize, now: Time) {
        if self.sns[sn].draining {
            return;
        }
        let load = self.overlay_load(sn);
        let mine = self.sns[sn].admission.capacity() as u64;
        let Some((demotion, dwell)) = self.sns[sn].roles.demotion.as_mut() else {
            return;
        };
        if demotion.observe(now, &load, mine, *dwell) {
            self.figures.demotions += 1;
            self.role_changed(sn);
            self.drain_with(sn, RedirectReason::Demoted);
        }
    }

    /// These clients go offline for good: their sessions close (the leases end), and a
    /// supernode role one of them hosts drains.
    pub(crate) fn leave(&mut self, list: &[usize]) {
        for &client in list {
            let Some(c) = self.clients.get(client) else {
                continue;
            };
            if c.state == ClientState::Gone {
                continue;
            }
            let sessions: Vec<usize> = c.sessions.iter().copied().collect();
            for sn in sessions {
                self.close_session(client, sn, true);
            }
            if let ClientState::Trying(dials) | ClientState::Handoff { dials, .. } =
                self.clients[client].state
            {
                for sn in dials.all() {
                    self.close_session(client, sn, true);
                }
            }
            self.clients[client].state = ClientState::Gone;
            self.clients[client].epoch += 1;
            self.unfindable_since[client] = None;
            if let Some(h) = self.clients[client].hosting {
                if self.sns[h].up && !self.sns[h].draining {
                    self.role_changed(h);
                    self.drain_with(h, RedirectReason::Draining);
                }
            }
        }
    }

    /// Live promoted supernodes, for the tests.
    pub fn promoted_live(&self) -> usize {
        self.role_counts().1
    }

    /// Active megas, for the tests.
    pub fn megas_active(&self) -> usize {
        self.role_counts().0
    }

    /// Clients online now (at a live home), and clients that have not left.
    pub fn online_count(&self) -> (usize, usize) {
        let mut online = 0;
        let mut present = 0;
        for c in &self.clients {
            match c.state {
                ClientState::Gone => continue,
                ClientState::Online { home, .. } if self.sns[home].up => online += 1,
                _ => {}
            }
            present += 1;
        }
        (online, present)
    }

    /// Role changes per node so far, in the order of node keys (for the tests: each promoted
    /// node changed role how often).
    pub fn role_change_counts(&self) -> Vec<usize> {
        self.role_changes.values().map(|c| c.len()).collect()
    }
}
