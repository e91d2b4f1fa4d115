//! Simulated clients: the real client's session logic, the engine's
//! [`switchboard_engine::session`] (host-cache order, happy-eyeballs passes, `Busy` and
//! `Redirect` alternatives, failover back-off, refresh period), driven over the simulated
//! network instead of sockets.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use switchboard_engine::session::{
    refresh_period, Failover, HostCache, HostEntry, Pass, PassEnd, STAGGER, UNKNOWN_LOAD,
};
use switchboard_engine::{Time, VerifiedRecords};
use switchboard_proto::bounded::BoundedVec;
use switchboard_proto::{
    NodeId, Record, RecordBody, Role, SecretKey, Ticket, TicketBody, UnixTime, Username,
};

use crate::config::SimConfig;
use crate::world::{client_backoff, Event, Reply, World, UNIX_BASE};

/// The dials of one pass in flight: the first, and the one raced beside it after
/// [`STAGGER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dials {
    pub(crate) sn: usize,
    pub(crate) second: Option<usize>,
}

impl Dials {
    pub(crate) fn contains(self, sn: usize) -> bool {
        self.sn == sn || self.second == Some(sn)
    }

    /// Both supernodes dialled.
    pub(crate) fn all(self) -> impl Iterator<Item = usize> {
        std::iter::once(self.sn).chain(self.second)
    }

    fn with(dials: Option<Self>, sn: usize) -> Self {
        match dials {
            Some(d) => Self {
                sn: d.sn,
                second: Some(sn),
            },
            None => Self { sn, second: None },
        }
    }

    /// The dials left once `sn` answered.
    fn without(self, sn: usize) -> Option<Self> {
        match (self.sn == sn, self.second) {
            (true, Some(other)) => Some(Self {
                sn: other,
                second: None,
            }),
            (true, None) => None,
            (false, Some(s)) if s == sn => Some(Self {
                sn: self.sn,
                second: None,
            }),
            _ => Some(self),
        }
    }
}

/// Most supernodes a client remembers: the real client's bound.
const HOST_CACHE_LIMIT: usize = switchboard_engine::session::MAX_HOSTS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientState {
    /// Not connected; an attempt is scheduled.
    Offline,
    /// Waiting for the supernodes dialled to answer a registration.
    Trying(Dials),
    /// Registered at `home` since `since`.
    Online { home: usize, since: Time },
    /// Told by `old` to move; registering elsewhere while `old` keeps the lease.
    Handoff { old: usize, dials: Dials },
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

/// A client's share of the run's randomness: its key's seed and the supernodes its host cache
/// starts with.
pub(crate) struct Draw {
    key_seed: [u8; 32],
    known: Vec<usize>,
}

pub(crate) struct Client {
    pub(crate) user: Username,
    pub(crate) node: NodeId,
    pub(crate) key: SecretKey,
    ticket: Ticket,
    /// The record of its latest registration: none before its first dial (every registration
    /// signs a fresh one, so a record signed at set-up would never be registered), nor while
    /// the next one waits to be signed.
    record: Option<Record>,
    /// When the next record (sequence number `seq`) was issued, until it is signed. It is
    /// signed when first needed ([`Client::signed_record`]), mostly beside the local events of
    /// the round its registration arrives in, on another core (`World::run_local`): a
    /// millisecond rarely holds two dials, so signing them where they are made left each
    /// signature (about 25 µs) on the event thread alone. An Ed25519 signature is a function
    /// of the key and the bytes, so where it is made changes nothing in the run.
    unsigned: Option<UnixTime>,
    seq: u64,
    pub(crate) state: ClientState,
    hosts: HostCache<usize>,
    pass: Option<Pass<usize>>,
    failover: Failover<usize>,
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
    /// What the next client draws from the run's random stream. The clients draw in index
    /// order, before any is signed, so that a seed replays the same run however the signing
    /// is spread over threads.
    pub(crate) fn draw(config: &SimConfig, rng: &mut SmallRng) -> Draw {
        let key_seed: [u8; 32] = rng.gen();
        let mut known: Vec<usize> = (0..config.supernodes).collect();
        known.shuffle(rng);
        known.truncate(config.host_cache.max(1));
        Draw { key_seed, known }
    }

    /// Client `index` of what it drew: its key and ticket signed (no randomness: the setup
    /// signs clients on every core).
    pub(crate) fn new(
        config: &SimConfig,
        index: usize,
        auth: &SecretKey,
        draw: &Draw,
    ) -> anyhow::Result<Self> {
        let key = SecretKey::from_seed(draw.key_seed);
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
        let mut entries: Vec<HostEntry<usize>> = draw
            .known
            .iter()
            .map(|&sn| HostEntry::new(sn, false, UNKNOWN_LOAD))
            .collect();
        // The megas of the bootstrap list, marked as such: the order tries them after the
        // ordinary supernodes.
        entries.extend(
            (config.supernodes..config.supernodes + config.standby_megas)
                .map(|sn| HostEntry::new(sn, true, 0)),
        );
        let promotable = config
            .promotion
            .as_ref()
            .filter(|p| index < p.promotable)
            .map(|p| Promotable {
                capacity: p.capacity,
                behind_nat: index < p.behind_nat,
            });
        Ok(Self {
            user,
            node,
            key,
            ticket,
            record: None,
            unsigned: None,
            seq: 1,
            state: ClientState::Offline,
            hosts: HostCache::new(entries, HOST_CACHE_LIMIT),
            pass: None,
            failover: client_backoff(),
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

    /// A fresh record when the held one is past half its lifetime (the real client re-signs
    /// every third of its lease).
    fn refresh_record(&mut self, now: UnixTime, lease: Duration) {
        let issued = match (self.unsigned, &self.record) {
            (Some(issued), _) => Some(issued),
            (None, Some(record)) => Some(record.body_unverified().issued_at),
            (None, None) => None,
        };
        if issued.is_some_and(|issued| now.since(issued) * 2 < u64::from(record_ttl(lease))) {
            return;
        }
        self.resign(now);
    }

    /// A new record with the next sequence number: the real client signs one for every
    /// registration, so that a former home's late copy (lower sequence) never replaces it at
    /// the owners, and the former home's withdrawal does not remove it. Signed when first
    /// needed.
    fn resign(&mut self, now: UnixTime) {
        self.seq += 1;
        self.record = None;
        self.unsigned = Some(now);
    }

    /// The record to register: the latest, signed now if it was not yet.
    pub(crate) fn signed_record(&mut self, lease: Duration) -> Option<Record> {
        if self.unsigned.is_some() {
            self.record = self.sign_unsigned(lease);
            self.unsigned = None;
        }
        self.record.clone()
    }

    /// The latest record signed, if it waits to be; this client unchanged (what another core
    /// does, the event thread then holding the result with [`Client::hold_signed`]).
    pub(crate) fn sign_unsigned(&self, lease: Duration) -> Option<Record> {
        let issued = self.unsigned?;
        sign(&self.key, &self.ticket, self.seq, issued, lease).ok()
    }

    /// The latest record, if it is signed.
    pub(crate) fn held_record(&self) -> Option<&Record> {
        self.record.as_ref()
    }

    /// Holds `record`, the latest record as [`Client::sign_unsigned`] signed it.
    pub(crate) fn hold_signed(&mut self, record: Record) {
        self.record = Some(record);
        self.unsigned = None;
    }
}

/// A record's lifetime: three leases, at most ten minutes.
fn record_ttl(lease: Duration) -> u32 {
    u32::try_from(lease.as_secs().saturating_mul(3))
        .unwrap_or(600)
        .min(600)
}

/// Clients signed per batch: each batch is drawn, then signed on every core, then appended, so
/// that the set-up never holds more than a batch twice (signing a million clients in one go
/// held them twice over, 0.9 GB more at the peak).
const SIGNING_BATCH: usize = 4096;

/// The run's clients, signed on every core: two Ed25519 operations each (the key, the ticket;
/// a first record signed here was never registered, since every registration signs its own,
/// and was a third of the set-up). Their randomness is drawn from `rng` in index order and
/// each thread signs a contiguous run of a batch, so the result is the same whatever the core
/// count.
///
/// Each thread also verifies the tickets it had signed into `verified`, the supernodes' shared
/// record checks: the Ed25519 verification the first supernode to see each ticket (in the
/// client's first registration) would do on the simulation's one thread, done on every core
/// instead. Only the signature is remembered: the supernodes still check each ticket's
/// validity when it arrives, and each registration's record (signed for it) is verified then.
pub(crate) fn sign_clients(
    config: &SimConfig,
    auth: &SecretKey,
    rng: &mut SmallRng,
    verified: &VerifiedRecords,
) -> anyhow::Result<Vec<Client>> {
    let threads = crate::cores::count();
    sign_clients_on(config, auth, rng, threads, SIGNING_BATCH, Some(verified))
}

/// [`sign_clients`] on `threads` threads, `batch` clients at a time.
fn sign_clients_on(
    config: &SimConfig,
    auth: &SecretKey,
    rng: &mut SmallRng,
    threads: usize,
    batch: usize,
    verified: Option<&VerifiedRecords>,
) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(config.clients);
    while clients.len() < config.clients {
        let first = clients.len();
        let draws: Vec<Draw> = (0..batch.max(1).min(config.clients - first))
            .map(|_| Client::draw(config, rng))
            .collect();
        let per_thread = draws.len().div_ceil(threads.max(1)).max(1);
        let runs: Vec<_> = draws.chunks(per_thread).enumerate().collect();
        let signed = crate::cores::on_every_core(runs, |(run, draws)| {
            let start = first + run * per_thread;
            draws
                .iter()
                .enumerate()
                .map(|(offset, draw)| {
                    let client = Client::new(config, start + offset, auth, draw)?;
                    if let Some(verified) = verified {
                        let ticket = &client.ticket;
                        let issued = ticket.body_unverified().issued_at;
                        verified.verify_ticket(ticket, issued)?;
                    }
                    Ok(client)
                })
                .collect::<anyhow::Result<Vec<Client>>>()
        });
        for chunk in signed {
            clients.extend(chunk?);
        }
    }
    Ok(clients)
}

fn sign(
    key: &SecretKey,
    ticket: &Ticket,
    seq: u64,
    issued_at: UnixTime,
    lease: Duration,
) -> anyhow::Result<Record> {
    let ttl = record_ttl(lease);
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

    /// Starts a pass over the host cache (the real client's `session::open`).
    pub(crate) fn client_attempt(&mut self, client: usize, epoch: u64) {
        if self.clients[client].epoch != epoch {
            return;
        }
        if !matches!(self.clients[client].state, ClientState::Offline) {
            return;
        }
        let unix = self.unix_now();
        let pass = {
            let (c, rng) = self.split_client_rng(client);
            Pass::new(c.hosts.order(c.failover.avoid(), None, unix, rng))
                .with_megas(c.hosts.megas())
        };
        self.clients[client].pass = Some(pass);
        self.next_epoch(client);
        self.dial_next(client);
    }

    /// The supernodes dialled and not yet answered, in either kind of pass.
    fn dials(&self, client: usize) -> Option<Dials> {
        match self.clients[client].state {
            ClientState::Trying(dials) | ClientState::Handoff { dials, .. } => Some(dials),
            _ => None,
        }
    }

    /// Replaces the dials in flight, in whichever kind of pass the client is.
    fn set_dials(&mut self, client: usize, dials: Dials) {
        let c = &mut self.clients[client];
        c.state = match c.state {
            ClientState::Handoff { old, .. } => ClientState::Handoff { old, dials },
            _ => ClientState::Trying(dials),
        };
    }

    /// A dial of the pass answered (or timed out) without a session: `left` are those still
    /// in flight; the pass dials its next or ends.
    fn answered(&mut self, client: usize, left: Option<Dials>) {
        if let Some(dials) = left {
            self.set_dials(client, dials);
        }
        self.dial_next(client);
    }

    /// Sends the registration of a freshly signed record to `sn`, with its dial timeout and
    /// the stagger timer.
    fn start_dial(&mut self, client: usize, sn: usize) {
        let unix = self.unix_now();
        self.clients[client].resign(unix);
        let epoch = self.clients[client].epoch;
        let at = self.now + self.delay();
        self.schedule(at, Event::Arrive { client, sn, epoch });
        let timeout = self.now + self.config.connect_timeout;
        self.schedule(timeout, Event::DialTimeout { client, sn, epoch });
        let stagger = self.now + STAGGER;
        self.schedule(stagger, Event::Stagger { client, epoch });
    }

    /// Starts the pass's next dial if it has one and room for it; when the pass has nothing
    /// left in flight or to dial, it ended without a session.
    fn dial_next(&mut self, client: usize) {
        let (next, in_flight) = match self.clients[client].pass.as_mut() {
            Some(pass) => (pass.next_dial(), pass.in_flight()),
            None => return,
        };
        if let Some(sn) = next {
            let dials = match self.dials(client) {
                Some(current) if in_flight > 1 => Dials::with(Some(current), sn),
                _ => Dials { sn, second: None },
            };
            self.set_dials(client, dials);
            self.start_dial(client, sn);
            return;
        }
        let ended = match self.clients[client].pass.as_ref() {
            Some(pass) if pass.in_flight() == 0 => pass.end(),
            _ => None,
        };
        let Some(end) = ended else { return };
        self.clients[client].pass = None;
        if let ClientState::Handoff { old, .. } = self.clients[client].state {
            self.stay_with(client, old);
            return;
        }
        let retry_after = match end {
            PassEnd::NoneAdmitted { retry_after, .. } => retry_after,
            PassEnd::Limited => None,
        };
        let delay = {
            let (c, rng) = self.split_client_rng(client);
            c.failover.none_admitted(retry_after, rng)
        };
        self.retry_in(client, delay);
    }

    /// A handoff found nowhere to go: the client stays with `old` and refreshes there (when
    /// `old` stops, the keep-alive failover moves it); if `old` is already gone, that is a
    /// loss.
    fn stay_with(&mut self, client: usize, old: usize) {
        let epoch = self.next_epoch(client);
        let now = self.now;
        self.clients[client].state = ClientState::Online {
            home: old,
            since: now,
        };
        if self.sns[old].up {
            self.schedule(now, Event::Refresh { client, epoch });
        } else {
            self.client_home_lost(client, epoch);
        }
    }

    fn retry_in(&mut self, client: usize, delay: Duration) {
        let epoch = self.next_epoch(client);
        self.clients[client].state = ClientState::Offline;
        let at = self.now + delay;
        self.schedule(at, Event::Attempt { client, epoch });
    }

    /// A dial unanswered after [`STAGGER`]: the pass races the next beside it.
    pub(crate) fn client_stagger(&mut self, client: usize, epoch: u64) {
        if self.clients[client].epoch != epoch || self.dials(client).is_none() {
            return;
        }
        if self.clients[client]
            .pass
            .as_ref()
            .is_some_and(Pass::can_dial)
        {
            self.dial_next(client);
        }
    }

    /// `sn` never answered within the dial timeout: the connection is closed, whatever the
    /// supernode did with it, and the host cache remembers the failure.
    pub(crate) fn client_timeout(&mut self, client: usize, sn: usize, epoch: u64) {
        if self.clients[client].epoch != epoch {
            return;
        }
        let Some(dials) = self.dials(client).filter(|d| d.contains(sn)) else {
            return;
        };
        self.close_session(client, sn, true);
        let unix = self.unix_now();
        let c = &mut self.clients[client];
        c.hosts.failed(&sn, unix);
        if let Some(pass) = c.pass.as_mut() {
            pass.failed();
        }
        self.answered(client, dials.without(sn));
    }

    pub(crate) fn client_reply(&mut self, client: usize, sn: usize, epoch: u64, reply: Reply) {
        let dials = self.dials(client).filter(|d| d.contains(sn));
        let Some(dials) = dials.filter(|_| self.clients[client].epoch == epoch) else {
            // The client gave up on this attempt already and closed the connection.
            if matches!(reply, Reply::Registered) {
                self.close_session(client, sn, true);
            }
            return;
        };
        match reply {
            Reply::Registered => {
                // The dial raced beside it is dropped, its connection closed.
                let raced: Vec<usize> = dials.all().filter(|s| *s != sn).collect();
                for other in &raced {
                    self.close_session(client, *other, true);
                }
                if let ClientState::Handoff { old, .. } = self.clients[client].state {
                    // Registered at the new home: now the old one may let go.
                    self.close_session(client, old, true);
                }
                self.become_online(client, sn);
                if !raced.is_empty() {
                    // A raced supernode may have published a newer record of ours: register
                    // a newer one still at the home (the real client registers after its
                    // session opens, never before).
                    self.client_refresh_now(client, sn);
                }
            }
            Reply::Busy {
                retry_after,
                alternatives,
            } => {
                let unix = self.unix_now();
                let (c, rng) = self.split_client_rng(client);
                c.hosts.add_named(alternatives.iter().copied(), unix);
                if let Some(pass) = c.pass.as_mut() {
                    pass.busy(retry_after, alternatives, rng);
                }
                self.answered(client, dials.without(sn));
            }
        }
    }

    fn become_online(&mut self, client: usize, sn: usize) {
        let epoch = self.next_epoch(client);
        let now = self.now;
        let unix = self.unix_now();
        let c = &mut self.clients[client];
        c.state = ClientState::Online {
            home: sn,
            since: now,
        };
        c.pass = None;
        c.failover.opened();
        c.hosts.succeeded(&sn, unix);
        let at = now + refresh_period(self.config.lease);
        self.schedule(at, Event::Refresh { client, epoch });
        self.figures.registrations += 1;
        self.offer_promotion(client, sn);
    }

    /// A registration of a newly signed record at `home` now, outside the refresh period.
    fn client_refresh_now(&mut self, client: usize, home: usize) {
        let unix = self.unix_now();
        self.clients[client].resign(unix);
        let epoch = self.clients[client].epoch;
        self.send_refresh(client, home, epoch);
    }

    /// The held record, registered again at `home` (it arrives after a network delay).
    fn send_refresh(&mut self, client: usize, home: usize, epoch: u64) {
        let at = self.now + self.delay();
        self.schedule(
            at,
            Event::RefreshArrive {
                client,
                sn: home,
                epoch,
            },
        );
    }

    pub(crate) fn client_refresh(&mut self, client: usize, epoch: u64) {
        if self.clients[client].epoch != epoch {
            return;
        }
        let ClientState::Online { home, .. } = self.clients[client].state else {
            return;
        };
        let unix = self.unix_now();
        let lease = self.config.lease;
        self.clients[client].refresh_record(unix, lease);
        self.send_refresh(client, home, epoch);
        let next = self.now + refresh_period(self.config.lease);
        self.schedule(next, Event::Refresh { client, epoch });
    }

    /// The keep-alive found the home gone: the real client's `Ended::Lost`.
    pub(crate) fn client_home_lost(&mut self, client: usize, epoch: u64) {
        if self.clients[client].epoch != epoch {
            return;
        }
        let ClientState::Online { home, .. } = self.clients[client].state else {
            return;
        };
        self.clients[client].sessions.remove(&home);
        let unix = self.unix_now();
        let delay = {
            let (c, rng) = self.split_client_rng(client);
            c.hosts.failed(&home, unix);
            c.failover.lost(home, rng)
        };
        self.retry_in(client, delay);
    }

    /// The home told this client to move: a pass with the named supernodes first, while the
    /// old home keeps the lease (make before break, as the real client does).
    pub(crate) fn client_redirected(&mut self, client: usize, old: usize, targets: Vec<usize>) {
        let ClientState::Online { home, .. } = self.clients[client].state else {
            return;
        };
        if home != old || !self.sns[old].up {
            return;
        }
        let unix = self.unix_now();
        let targets: Vec<usize> = targets.into_iter().filter(|t| *t != old).collect();
        let pass = {
            let (c, rng) = self.split_client_rng(client);
            c.hosts.add_named(targets.iter().copied(), unix);
            let order = c.hosts.order(Some(&old), None, unix, rng);
            // The old home is not a candidate: the client is leaving it.
            let order = order.into_iter().filter(|s| *s != old).collect();
            Pass::redirected(targets, order, rng).with_megas(c.hosts.megas())
        };
        self.clients[client].pass = Some(pass);
        self.next_epoch(client);
        match self.clients[client].pass.as_mut().and_then(Pass::next_dial) {
            Some(sn) => {
                self.clients[client].state = ClientState::Handoff {
                    old,
                    dials: Dials { sn, second: None },
                };
                self.start_dial(client, sn);
            }
            None => {
                self.clients[client].pass = None;
                self.stay_with(client, old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn clients_signed_on_several_threads_are_those_signed_in_order_on_one() {
        let seed = 11;
        println!("seed {seed}");
        let config = SimConfig::sweep(seed);
        let mut rng = SmallRng::seed_from_u64(seed);
        let auth = SecretKey::from_seed(rng.gen());
        let one =
            sign_clients_on(&config, &auth, &mut rng.clone(), 1, config.clients, None).unwrap();
        // Three threads, in batches that do not divide the clients.
        let three = sign_clients_on(&config, &auth, &mut rng, 3, 7, None).unwrap();
        assert_eq!((one.len(), three.len()), (config.clients, config.clients));
        for (index, (a, b)) in one.iter().zip(&three).enumerate() {
            assert_eq!(a.user.as_str(), format!("user{index}"));
            assert_eq!((&a.user, a.node, &a.ticket), (&b.user, b.node, &b.ticket));
            assert_eq!(a.hosts.entries(), b.hosts.entries());
        }
    }

    #[test]
    fn the_set_up_verifies_each_clients_ticket_once_for_the_supernodes() {
        let seed = 12;
        println!("seed {seed}");
        let config = SimConfig::sweep(seed);
        let mut rng = SmallRng::seed_from_u64(seed);
        let auth = SecretKey::from_seed(rng.gen());
        let verified = VerifiedRecords::new(auth.trust_anchor(), 1 << 16);
        let mut clients = sign_clients_on(&config, &auth, &mut rng, 3, 7, Some(&verified)).unwrap();
        let signed = u64::try_from(clients.len()).unwrap();
        assert_eq!(verified.signatures_checked(), signed);
        for client in &mut clients {
            assert!(client.record.is_none(), "signed at its first dial");
            let now = UnixTime(UNIX_BASE + 1);
            client.resign(now);
            assert!(client.record.is_none(), "signed when needed");
            let record = client.signed_record(config.lease).unwrap();
            assert!(client.unsigned.is_none());
            assert!(verified.verify(&record, now).is_ok());
        }
        assert_eq!(
            verified.signatures_checked(),
            2 * signed,
            "the records only: no ticket checked again"
        );
    }
}
