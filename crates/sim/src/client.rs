//! Simulated clients: the real client's failover behaviour (host cache, capped full-jitter
//! backoff from `engine`, `Busy` alternatives, keep-alive detection, lease refreshes) over the
//! simulated network.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use switchboard_engine::{Backoff, Time};
use switchboard_proto::bounded::BoundedVec;
use switchboard_proto::{
    NodeId, Record, RecordBody, Role, SecretKey, Ticket, TicketBody, UnixTime, Username,
};

use crate::config::SimConfig;
use crate::world::{client_backoff, Event, Reply, World, UNIX_BASE};

/// Most supernodes a client remembers (the real client's host cache holds 200).
const HOST_CACHE_LIMIT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientState {
    /// Not connected; an attempt is scheduled.
    Offline,
    /// Waiting for `sn` to answer a registration.
    Trying { sn: usize },
    /// Registered at `home` since `since`.
    Online { home: usize, since: Time },
    /// Told by `old` to move; registering at `sn` while `old` keeps the lease.
    Handoff { old: usize, sn: usize },
    /// Went offline for good (`Fault::Leave`).
    Gone,
}

/// A client started with `client online --promotable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Promotable {
    /// The capacity it declares.
    pub(crate) capacity: u32,
    /// Behind a NAT: a dial-back from another socket never reaches it.
    pub(crate) behind_nat: bool,
}

pub(crate) struct Client {
    pub(crate) user: Username,
    pub(crate) node: NodeId,
    pub(crate) key: SecretKey,
    ticket: Ticket,
    pub(crate) record: Record,
    seq: u64,
    pub(crate) state: ClientState,
    cache: Vec<usize>,
    tried: Vec<usize>,
    backoff: Backoff,
    /// Bumped at every change of attempt, so that stale timers and replies are ignored.
    pub(crate) epoch: u64,
    /// Supernodes holding a session of this client (the invariant: exactly its home).
    pub(crate) sessions: BTreeSet<usize>,
    /// Set if it offers itself for promotion.
    pub(crate) promotable: Option<Promotable>,
    /// The supernode slot of its promoted role, once it has been promoted (a later promotion
    /// restarts the same slot under the next generation).
    pub(crate) hosting: Option<usize>,
}

impl Client {
    pub(crate) fn new(
        config: &SimConfig,
        index: usize,
        auth: &SecretKey,
        rng: &mut SmallRng,
    ) -> anyhow::Result<Self> {
        let key = SecretKey::from_seed(rng.gen());
        let node = key.node_id();
        let user = Username::new(&format!("user{index}"))?;
        let ticket = Ticket::issue(
            auth,
            TicketBody {
                user: user.clone(),
                node,
                role: Role::User,
                issued_at: UnixTime(UNIX_BASE),
                expires_at: UnixTime(UNIX_BASE + 23 * 3600),
                serial: u64::try_from(index).unwrap_or(u64::MAX),
            },
        )?;
        let mut cache: Vec<usize> = (0..config.supernodes).collect();
        cache.shuffle(rng);
        cache.truncate(config.host_cache.max(1));
        // The megas of the bootstrap list come last (the real client orders them after the
        // supernodes it knows).
        cache.extend(config.supernodes..config.supernodes + config.standby_megas);
        let promotable = config
            .promotion
            .as_ref()
            .filter(|p| index < p.promotable)
            .map(|p| Promotable {
                capacity: p.capacity,
                behind_nat: index < p.behind_nat,
            });
        let record = sign(&key, &ticket, 1, UnixTime(UNIX_BASE), config)?;
        Ok(Self {
            user,
            node,
            key,
            ticket,
            record,
            seq: 1,
            state: ClientState::Offline,
            cache,
            tried: Vec::new(),
            backoff: client_backoff(),
            epoch: 0,
            sessions: BTreeSet::new(),
            promotable,
            hosting: None,
        })
    }

    /// Since when the client has been online at one home with a live lease, if it is.
    pub(crate) fn settled_since(&self) -> Option<Time> {
        match self.state {
            ClientState::Online { since, .. } => Some(since),
            _ => None,
        }
    }

    fn remember(&mut self, sn: usize, front: bool) {
        self.cache.retain(|s| *s != sn);
        if front {
            self.cache.insert(0, sn);
        } else {
            self.cache.push(sn);
        }
        self.cache.truncate(HOST_CACHE_LIMIT);
    }

    /// A fresh record when the held one is past half its lifetime (the real client re-signs
    /// every third of its lease).
    fn refresh_record(&mut self, now: UnixTime, config: &SimConfig) {
        let issued = self.record.body_unverified().issued_at;
        let ttl = u64::from(self.record.body_unverified().ttl_secs);
        if now.since(issued) * 2 < ttl {
            return;
        }
        self.resign(now, config);
    }

    /// A new record with the next sequence number: the real client signs one for every
    /// registration, so that a former home's late copy (lower sequence) never replaces it at
    /// the owners, and the former home's withdrawal does not remove it.
    fn resign(&mut self, now: UnixTime, config: &SimConfig) {
        self.seq += 1;
        if let Ok(record) = sign(&self.key, &self.ticket, self.seq, now, config) {
            self.record = record;
        }
    }
}

fn sign(
    key: &SecretKey,
    ticket: &Ticket,
    seq: u64,
    issued_at: UnixTime,
    config: &SimConfig,
) -> anyhow::Result<Record> {
    let ttl = u32::try_from(config.lease.as_secs().saturating_mul(3))
        .unwrap_or(600)
        .min(600);
    Ok(Record::sign(
        key,
        RecordBody {
            ticket: ticket.clone(),
            endpoints: BoundedVec::truncating(Vec::new()),
            reflexive: None,
            home: None,
            seq,
            issued_at,
            ttl_secs: ttl,
        },
    )?)
}

impl World {
    fn next_epoch(&mut self, client: usize) -> u64 {
        self.clients[client].epoch += 1;
        self.clients[client].epoch
    }

    pub(crate) fn client_attempt(&mut self, client: usize, epoch: u64) {
        if self.clients[client].epoch != epoch {
            return;
        }
        if !matches!(self.clients[client].state, ClientState::Offline) {
            return;
        }
        let candidate = {
            let c = &self.clients[client];
            c.cache.iter().copied().find(|s| !c.tried.contains(s))
        };
        let Some(sn) = candidate else {
            // Everyone known was tried: back off, then go round again.
            self.clients[client].tried.clear();
            self.retry_later(client, None);
            return;
        };
        self.clients[client].tried.push(sn);
        let unix = self.unix_now();
        let config = self.config.clone();
        self.clients[client].resign(unix, &config);
        let epoch = self.next_epoch(client);
        self.clients[client].state = ClientState::Trying { sn };
        let at = self.now + self.delay();
        self.schedule(at, Event::Arrive { client, sn, epoch });
        let timeout = self.now + self.config.connect_timeout;
        self.schedule(timeout, Event::AttemptTimeout { client, epoch });
    }

    fn retry_later(&mut self, client: usize, retry_after: Option<Duration>) {
        let delay = {
            let (c, rng) = self.split_client_rng(client);
            c.backoff
                .failed(rng, retry_after)
                .unwrap_or(Duration::from_secs(30))
        };
        let epoch = self.next_epoch(client);
        self.clients[client].state = ClientState::Offline;
        let at = self.now + delay;
        self.schedule(at, Event::Attempt { client, epoch });
    }

    pub(crate) fn client_timeout(&mut self, client: usize, epoch: u64) {
        if self.clients[client].epoch != epoch {
            return;
        }
        match self.clients[client].state {
            ClientState::Trying { sn } => {
                // Gave up: the connection is closed, whatever the supernode did with it.
                self.close_session(client, sn, true);
                self.clients[client].state = ClientState::Offline;
                let epoch = self.next_epoch(client);
                let at = self.now + Duration::from_millis(1);
                self.schedule(at, Event::Attempt { client, epoch });
            }
            ClientState::Handoff { old, sn } => {
                self.close_session(client, sn, true);
                self.handoff_next(client, old);
            }
            _ => {}
        }
    }

    pub(crate) fn client_reply(&mut self, client: usize, sn: usize, epoch: u64, reply: Reply) {
        if self.clients[client].epoch != epoch {
            // The client gave up on this attempt already and closed the connection.
            if matches!(reply, Reply::Registered) {
                self.close_session(client, sn, true);
            }
            return;
        }
        match (reply, self.clients[client].state) {
            (Reply::Registered, ClientState::Trying { sn: trying }) if trying == sn => {
                self.become_online(client, sn);
            }
            (Reply::Registered, ClientState::Handoff { old, sn: trying }) if trying == sn => {
                // Registered at the new home: now the old one may let go.
                self.close_session(client, old, true);
                self.become_online(client, sn);
            }
            (
                Reply::Busy {
                    retry_after,
                    alternatives,
                },
                ClientState::Trying { .. },
            ) => {
                for alternative in alternatives.into_iter().rev() {
                    if !self.clients[client].tried.contains(&alternative) {
                        self.clients[client].remember(alternative, true);
                    }
                }
                let next = {
                    let c = &self.clients[client];
                    c.cache.iter().any(|s| !c.tried.contains(s))
                };
                if next {
                    self.clients[client].state = ClientState::Offline;
                    let epoch = self.next_epoch(client);
                    let at = self.now + Duration::from_millis(1);
                    self.schedule(at, Event::Attempt { client, epoch });
                } else {
                    self.clients[client].tried.clear();
                    self.retry_later(client, Some(retry_after));
                }
            }
            (Reply::Busy { alternatives, .. }, ClientState::Handoff { old, .. }) => {
                for alternative in alternatives.into_iter().rev() {
                    self.clients[client].remember(alternative, true);
                }
                self.handoff_next(client, old);
            }
            _ => {}
        }
    }

    fn become_online(&mut self, client: usize, sn: usize) {
        let epoch = self.next_epoch(client);
        let now = self.now;
        let c = &mut self.clients[client];
        c.state = ClientState::Online {
            home: sn,
            since: now,
        };
        c.tried.clear();
        c.backoff.succeeded();
        c.remember(sn, true);
        let at = now + self.config.lease / 3;
        self.schedule(at, Event::Refresh { client, epoch });
        self.figures.registrations += 1;
        self.offer_promotion(client, sn);
    }

    pub(crate) fn client_refresh(&mut self, client: usize, epoch: u64) {
        if self.clients[client].epoch != epoch {
            return;
        }
        let ClientState::Online { home, .. } = self.clients[client].state else {
            return;
        };
        let unix = self.unix_now();
        let config = self.config.clone();
        self.clients[client].refresh_record(unix, &config);
        let at = self.now + self.delay();
        self.schedule(
            at,
            Event::RefreshArrive {
                client,
                sn: home,
                epoch,
            },
        );
        let next = self.now + self.config.lease / 3;
        self.schedule(next, Event::Refresh { client, epoch });
    }

    pub(crate) fn client_home_lost(&mut self, client: usize, epoch: u64) {
        if self.clients[client].epoch != epoch {
            return;
        }
        let ClientState::Online { home, .. } = self.clients[client].state else {
            return;
        };
        self.clients[client].sessions.remove(&home);
        self.clients[client].tried = vec![home];
        self.clients[client].state = ClientState::Offline;
        self.retry_later(client, None);
    }

    pub(crate) fn client_redirected(&mut self, client: usize, old: usize, targets: Vec<usize>) {
        let ClientState::Online { home, .. } = self.clients[client].state else {
            return;
        };
        if home != old || !self.sns[old].up {
            return;
        }
        for target in targets.into_iter().rev() {
            if target != old {
                self.clients[client].remember(target, true);
            }
        }
        self.clients[client].tried = vec![old];
        self.handoff_next(client, old);
    }

    /// Tries the next candidate while `old` keeps the lease; if none is left, stays with the
    /// old home until it goes away (then the keep-alive failover takes over).
    fn handoff_next(&mut self, client: usize, old: usize) {
        let candidate = {
            let c = &self.clients[client];
            c.cache.iter().copied().find(|s| !c.tried.contains(s))
        };
        let epoch = self.next_epoch(client);
        let Some(sn) = candidate else {
            // Nowhere to go: stay; when the old home stops, the keep-alive failover moves us.
            let now = self.now;
            self.clients[client].state = ClientState::Online {
                home: old,
                since: now,
            };
            return;
        };
        self.clients[client].tried.push(sn);
        let unix = self.unix_now();
        let config = self.config.clone();
        self.clients[client].resign(unix, &config);
        self.clients[client].state = ClientState::Handoff { old, sn };
        let at = self.now + self.delay();
        self.schedule(at, Event::Arrive { client, sn, epoch });
        let timeout = self.now + self.config.connect_timeout;
        self.schedule(timeout, Event::AttemptTimeout { client, epoch });
    }
}
