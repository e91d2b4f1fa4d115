//! The simulated world: supernodes running the real `engine` overlay, directory and admission,
//! clients with their failover logic, a network with delay, loss and partitions, and one event
//! queue on a virtual clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rayon::iter::{IntoParallelRefMutIterator, ParallelIterator};
use sha2::{Digest, Sha256};
use switchboard_engine::membership::{MemberInfo, MemberRole, Signer, VerifiedCache};
use switchboard_engine::overlay::{LookupId, Overlay, OverlayConfig};
use switchboard_engine::{
    Admission, AdmissionConfig, BackoffConfig, Directory, DirectoryConfig, Failover, Time,
    VerifiedRecords,
};
use switchboard_proto::messages::OverlayMessage;
use switchboard_proto::{
    NodeId, Record, Role, SecretKey, Ticket, TicketBody, TrustAnchor, UnixTime, Username,
};

use crate::client::Client;
use crate::config::{Fault, SimConfig};
use crate::report::Figures;
use crate::roles::{Kind, RoleState};

/// The wall-clock time the virtual clock's zero stands for (records and tickets carry it).
pub(crate) const UNIX_BASE: u64 = 1_900_000_000;

pub(crate) struct Supernode {
    pub(crate) info: MemberInfo,
    /// Its node key and ticket: a restart signs its next generation with them.
    pub(crate) signer: Signer,
    pub(crate) up: bool,
    /// Which life of this slot, unique in the process: a restart's index and directory start
    /// counting their changes again, so a check's remembered answer names the life it came
    /// from.
    pub(crate) life: u64,
    pub(crate) slow: Duration,
    pub(crate) draining: bool,
    pub(crate) overlay: Overlay,
    pub(crate) directory: Directory,
    pub(crate) admission: Admission,
    pub(crate) sessions: BTreeSet<usize>,
    pub(crate) wake: Option<Time>,
    /// Operator supernode, mega, or a client's promoted role.
    pub(crate) kind: Kind,
    /// Whether it admits clients now (a standby mega does not until it activates).
    pub(crate) serving: bool,
    /// The role policies it runs (`engine`'s standby, nomination and demotion).
    pub(crate) roles: RoleState,
}

/// What the queue holds.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Packet {
        from: usize,
        to: usize,
        /// Boxed: the queue moves its events as it rebalances, and a message inline made every
        /// event as large as the largest message (a profile put `memmove` at 8%).
        message: Box<OverlayMessage>,
    },
    Wake(usize),
    Attempt {
        client: usize,
        epoch: u64,
    },
    Arrive {
        client: usize,
        sn: usize,
        epoch: u64,
    },
    Reply {
        client: usize,
        sn: usize,
        epoch: u64,
        reply: Reply,
    },
    DialTimeout {
        client: usize,
        sn: usize,
        epoch: u64,
    },
    /// A dial unanswered for the stagger delay: race the next one beside it.
    Stagger {
        client: usize,
        epoch: u64,
    },
    Refresh {
        client: usize,
        epoch: u64,
    },
    RefreshArrive {
        client: usize,
        sn: usize,
        epoch: u64,
    },
    HomeLost {
        client: usize,
        epoch: u64,
    },
    Redirected {
        client: usize,
        sn: usize,
        targets: Vec<usize>,
        reason: switchboard_proto::messages::RedirectReason,
    },
    DrainDone(usize),
    Fault(Fault),
    Check,
    /// The role policies' timer (the daemon's 250 ms tick), when roles vary in this run.
    Tick,
    /// A home's dial-back to a promotable client ended.
    DialBackDone {
        sn: usize,
        generation: u64,
        client: usize,
        reached: bool,
    },
    /// A nominated client has its promoted ticket and starts the supernode role.
    Promote {
        client: usize,
        seeds: Vec<usize>,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Registered,
    Busy {
        retry_after: Duration,
        alternatives: Vec<usize>,
    },
}

/// A lookup issued to check the index end to end.
#[derive(Debug, Clone)]
struct Probe {
    client: usize,
    node: NodeId,
    /// Whether the membership had converged (and stayed so) with the user settled online, so
    /// that the lookup must succeed.
    must_succeed: bool,
    epoch: u64,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("seed", &self.config.seed)
            .field("now", &self.now)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// Digests the members' shared verification cache holds before it is emptied: 10,000
/// supernodes' statements and several rounds of their load reports (about 230 MB at most: the
/// table, and each load report kept once for every view to share).
pub(crate) const SHARED_VERIFICATIONS: usize = 1 << 20;

/// The whole simulation; see the module doc.
pub struct World {
    pub(crate) config: SimConfig,
    pub(crate) now: Time,
    pub(crate) rng: SmallRng,
    queue: BTreeMap<(Time, u64), Event>,
    seq: u64,
    pub(crate) sns: Vec<Supernode>,
    pub(crate) clients: Vec<Client>,
    pub(crate) by_node: BTreeMap<NodeId, usize>,
    pub(crate) anchor: TrustAnchor,
    /// Every supernode's record checks, shared: a record reaching several owners, or a
    /// refresh carrying a ticket checked before, is one pure function of the same bytes.
    pub(crate) verified: VerifiedRecords,
    pub(crate) partition: Option<Vec<bool>>,
    /// Bumped whenever the real membership changes (crash, restart, partition, heal, drain).
    pub(crate) topology_epoch: u64,
    /// Since when every live supernode has seen exactly the live set, if it has.
    pub(crate) converged_since: Option<Time>,
    probes: BTreeMap<(usize, LookupId), Probe>,
    trace: Sha256,
    pub(crate) trace_lines: Vec<String>,
    pub(crate) events: u64,
    pub(crate) violations: Vec<String>,
    pub(crate) figures: Figures,
    /// Which supernodes own records (up, not on standby), and every client's owners among
    /// them (see `check.rs`).
    pub(crate) owner_cache: (Vec<bool>, Vec<Vec<usize>>),
    /// The auth-server's key: promoted tickets are issued during the run.
    pub(crate) auth: SecretKey,
    /// Recent role changes per node, for the flapping invariant; one entry per supernode
    /// identity (operators, megas, promoted clients), each at most `role_changes.max + 1`
    /// long (see `roles.rs`).
    pub(crate) role_changes: BTreeMap<NodeId, std::collections::VecDeque<Time>>,
    /// Promotable clients by node key (a nomination names the node).
    pub(crate) client_by_node: BTreeMap<NodeId, usize>,
    /// Since when each client has been online and unfindable, if it is (see `check.rs`).
    pub(crate) unfindable_since: Vec<Option<Time>>,
    /// What the checks last saw on each client's owners, `owner_stride` entries a client in
    /// the order of `owner_cache` (see `check.rs`).
    pub(crate) held_seen: Vec<crate::check::Seen>,
    /// What the checks last saw of each client's lease at its home (see `check.rs`).
    pub(crate) lease_seen: Vec<crate::check::Seen>,
    /// The threads that run a millisecond's local events (see `local.rs`), if more than one.
    pub(crate) pool: Option<rayon::ThreadPool>,
    /// Rounds whose local events ran on more than one thread.
    pub(crate) rounds_shared: u64,
}

impl World {
    /// Builds the network of `config`; nothing has happened yet.
    pub fn new(mut config: SimConfig) -> anyhow::Result<Self> {
        // Every simulated member verifies what the others already verified (the same bytes
        // under the same key): one cache for all of them.
        config
            .membership
            .shared_verification
            .get_or_insert_with(|| VerifiedCache::new(SHARED_VERIFICATIONS));
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let auth = SecretKey::from_seed(rng.gen());
        let anchor = auth.trust_anchor();
        let mut sns = Vec::with_capacity(config.supernodes);
        let mut by_node = BTreeMap::new();
        // Operator supernodes, then the standby megas (operator-run, with mega tickets).
        for index in 0..config.supernodes + config.standby_megas {
            let (user, role, member_role, capacity, kind) = if index < config.supernodes {
                let user = format!("sn{index}");
                let role = (Role::Supernode, MemberRole::Supernode);
                (user, role.0, role.1, config.capacity, Kind::Operator)
            } else {
                let user = format!("mega{}", index - config.supernodes);
                let role = (Role::Mega, MemberRole::Standby);
                (user, role.0, role.1, config.mega_capacity, Kind::Mega)
            };
            let key = SecretKey::from_seed(rng.gen());
            let ticket = Ticket::issue(
                &auth,
                TicketBody {
                    user: Username::new(&user)?,
                    node: key.node_id(),
                    role,
                    issued_at: UnixTime(UNIX_BASE),
                    expires_at: UnixTime(UNIX_BASE + 23 * 3600),
                    serial: u64::try_from(index).unwrap_or(u64::MAX),
                },
            )?;
            let signer = Signer { key, ticket };
            by_node.insert(signer.key.node_id(), index);
            let info = MemberInfo::signed(&signer, sim_addr(index), member_role, capacity, 1)?;
            let seed = rng.next_u64();
            sns.push(fresh_supernode(&config, info, signer, &anchor, seed, kind)?);
        }
        let verified = VerifiedRecords::new(anchor.clone(), MAX_VERIFIED_RECORDS);
        let clients = crate::client::sign_clients(&config, &auth, &mut rng, &verified)?;
        let client_by_node = clients
            .iter()
            .enumerate()
            .filter(|(_, client)| client.promotable.is_some())
            .map(|(index, client)| (client.node, index))
            .collect();
        let unfindable_since = vec![None; clients.len()];
        let mut world = Self {
            now: Time::ZERO,
            rng,
            queue: BTreeMap::new(),
            seq: 0,
            sns,
            clients,
            by_node,
            verified,
            anchor,
            partition: None,
            topology_epoch: 0,
            converged_since: None,
            probes: BTreeMap::new(),
            trace: Sha256::new(),
            trace_lines: Vec::new(),
            events: 0,
            violations: Vec::new(),
            figures: Figures::default(),
            owner_cache: (Vec::new(), Vec::new()),
            auth,
            role_changes: BTreeMap::new(),
            client_by_node,
            unfindable_since,
            held_seen: Vec::new(),
            lease_seen: Vec::new(),
            pool: crate::local::pool(&config),
            rounds_shared: 0,
            config,
        };
        world.start();
        Ok(world)
    }

    fn start(&mut self) {
        let seed = self.sns.first().map(|s| (s.info.node, s.info.addr));
        let everyone: Vec<MemberInfo> = self.sns.iter().map(|s| s.info.clone()).collect();
        let now = self.now;
        if self.config.formed {
            // Each view restored and drained on its own, on every core (a thousand views of a
            // thousand members were 5% of a 100,000-client run; draining touches only its
            // view), then what each produced applied in order.
            let restore = |node: &mut Supernode| {
                node.overlay.restore(now, everyone.iter().cloned());
                crate::local::drain(node, now)
            };
            let drained: Vec<crate::local::Drained> = match &self.pool {
                Some(pool) => pool.install(|| self.sns.par_iter_mut().map(restore).collect()),
                None => self.sns.iter_mut().map(restore).collect(),
            };
            for (sn, drained) in drained.into_iter().enumerate() {
                self.apply(sn, drained);
            }
        } else if let Some((seed, addr)) = seed {
            for sn in 0..self.sns.len() {
                // Through the first one (and retry until it answers).
                self.sns[sn].overlay.join(now, seed, addr);
                self.drain_outputs(sn);
            }
        }
        let arrival = u64::try_from(self.config.arrival.as_millis()).unwrap_or(0);
        for client in 0..self.clients.len() {
            let at = Time(self.rng.gen_range(0..arrival.max(1)));
            let epoch = self.clients[client].epoch;
            self.schedule(at, Event::Attempt { client, epoch });
        }
        for (at, fault) in self.config.faults.clone() {
            self.schedule(at, Event::Fault(fault));
        }
        self.schedule(Time::ZERO, Event::Check);
        if self.config.roles_vary() {
            self.schedule(Time::ZERO, Event::Tick);
        }
    }

    /// Runs until the end of the scenario; stops at the first invariant violation.
    pub fn run(&mut self) -> Result<(), String> {
        let end = self.config.end;
        self.run_until(end)
    }

    /// Runs the events up to `end`, a millisecond at a time in rounds (see `local.rs`): the
    /// local events queued for it, then the others, until none is queued for it.
    pub fn run_until(&mut self, end: Time) -> Result<(), String> {
        match self.pool.take() {
            Some(pool) => {
                let result = pool.install(|| self.run_rounds(end));
                self.pool = Some(pool);
                result
            }
            None => self.run_rounds(end),
        }
    }

    fn run_rounds(&mut self, end: Time) -> Result<(), String> {
        while let Some((&(at, _), _)) = self.queue.first_key_value() {
            if at > end {
                break;
            }
            self.now = at;
            let round = match at.0.checked_add(1) {
                Some(next) => {
                    let later = self.queue.split_off(&(Time(next), 0));
                    std::mem::replace(&mut self.queue, later)
                }
                None => std::mem::take(&mut self.queue),
            };
            let (local, other): (Vec<Event>, Vec<Event>) = round
                .into_values()
                .partition(|event| crate::local::local_to(event).is_some());
            self.run_local(local, &other)?;
            for event in other {
                self.events += 1;
                self.record_line(&trace_line(&event));
                self.handle(event);
                if self.config.check_each_event {
                    self.check_invariants();
                }
                if let Some(first) = self.violations.first() {
                    return Err(first.clone());
                }
            }
        }
        self.now = end;
        Ok(())
    }

    /// Checks the end state (see `check_end_state`).
    pub fn finish(&mut self) -> Result<(), String> {
        self.check_end_state();
        self.violations.first().cloned().map_or(Ok(()), Err)
    }

    /// The trace digest: equal for equal runs.
    pub fn trace_digest(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// How many live supernodes see each membership size (diagnostics).
    pub fn view_sizes(&self) -> BTreeMap<usize, usize> {
        let mut sizes = BTreeMap::new();
        for sn in self.sns.iter().filter(|s| s.up) {
            *sizes
                .entry(sn.overlay.membership().live_count())
                .or_insert(0) += 1;
        }
        sizes
    }

    /// Members some live supernode still counts although they are down (diagnostics).
    /// A view that holds as many members as are live, under the live set's digest, is taken
    /// as right without going through it (as the convergence check takes it): going through
    /// every view member by member is n^2 lookups (about 3 s after a 4,000-supernode run).
    pub fn stale_views(&self) -> Vec<String> {
        use switchboard_engine::membership::node_prefix;
        let live = self.sns.iter().filter(|s| s.up);
        let (live_count, truth) = live.fold((0, 0), |(count, digest), s| {
            (count + 1, digest ^ node_prefix(&s.info.node))
        });
        let mut out = Vec::new();
        for (index, sn) in self.sns.iter().enumerate().filter(|(_, s)| s.up) {
            let membership = sn.overlay.membership();
            if membership.live_count() == live_count && membership.view_digest() == truth {
                continue;
            }
            for member in membership.live() {
                let Some(&other) = self.by_node.get(&member.node) else {
                    continue;
                };
                if !self.sns[other].up {
                    out.push(format!(
                        "supernode {index} (health {}) counts dead {other}: {:?}",
                        membership.local_health(),
                        membership.swim_state(&member.node)
                    ));
                }
            }
            for (other, peer) in self.sns.iter().enumerate() {
                if other != index && peer.up && !membership.is_live(&peer.info.node) {
                    out.push(format!(
                        "supernode {index} misses live {other} (gen {}): {:?}",
                        peer.overlay.membership().me().generation,
                        membership.swim_state(&peer.info.node)
                    ));
                }
            }
        }
        out
    }

    /// The seed this run replays.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// Live supernodes.
    pub fn live_count(&self) -> usize {
        self.sns.iter().filter(|s| s.up).count()
    }

    /// Members declared down, summed over the live observers (diagnostics).
    pub fn downs_seen(&self) -> u64 {
        self.sns
            .iter()
            .filter(|s| s.up)
            .map(|s| s.overlay.membership().stats().downs)
            .sum()
    }

    /// Events processed.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The human-readable trace, if kept.
    pub fn trace_lines(&self) -> &[String] {
        &self.trace_lines
    }

    /// The figures gathered so far.
    pub fn figures(&self) -> &Figures {
        &self.figures
    }

    /// Adds an event's line (see [`trace_line`]) to the trace at the current time.
    pub(crate) fn record_line(&mut self, line: &str) {
        self.trace.update(self.now.0.to_be_bytes());
        self.trace.update(line.as_bytes());
        if self.config.keep_trace {
            self.trace_lines.push(format!("{} {line}", self.now.0));
        }
    }

    pub(crate) fn schedule(&mut self, at: Time, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    pub(crate) fn delay(&mut self) -> Duration {
        let (lo, hi) = self.config.delay_ms;
        Duration::from_millis(self.rng.gen_range(lo..=hi.max(lo)))
    }

    pub(crate) fn split_client_rng(&mut self, client: usize) -> (&mut Client, &mut SmallRng) {
        (&mut self.clients[client], &mut self.rng)
    }

    pub(crate) fn unix_now(&self) -> UnixTime {
        UnixTime(UNIX_BASE + self.now.0 / 1000)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Packet { .. } | Event::Wake(_) => self.handle_local(event),
            Event::Attempt { client, epoch } => self.client_attempt(client, epoch),
            Event::Arrive { client, sn, epoch } => self.arrive(client, sn, epoch),
            Event::Reply {
                client,
                sn,
                epoch,
                reply,
            } => self.client_reply(client, sn, epoch, reply),
            Event::DialTimeout { client, sn, epoch } => self.client_timeout(client, sn, epoch),
            Event::Stagger { client, epoch } => self.client_stagger(client, epoch),
            Event::Refresh { client, epoch } => self.client_refresh(client, epoch),
            Event::RefreshArrive { client, sn, epoch } => self.refresh_arrive(client, sn, epoch),
            Event::HomeLost { client, epoch } => self.client_home_lost(client, epoch),
            Event::Redirected {
                client,
                sn,
                targets,
                reason,
            } => {
                use switchboard_proto::messages::RedirectReason;
                match reason {
                    RedirectReason::Demoted => self.figures.redirects_demoted += 1,
                    RedirectReason::StandingDown => self.figures.redirects_standing_down += 1,
                    RedirectReason::Draining | RedirectReason::Overloaded => {}
                }
                self.client_redirected(client, sn, targets)
            }
            Event::DrainDone(sn) => self.finish_drain(sn),
            Event::Fault(fault) => self.inject(fault),
            Event::Check => {
                self.periodic_check();
                let next = self.now + self.config.check_every;
                self.schedule(next, Event::Check);
            }
            Event::Tick => {
                self.role_tick();
                let next = self.now + crate::roles::TICK;
                self.schedule(next, Event::Tick);
            }
            Event::DialBackDone {
                sn,
                generation,
                client,
                reached,
            } => self.dial_back_done(sn, generation, client, reached),
            Event::Promote { client, seeds } => self.start_promoted(client, &seeds),
        }
    }

    /// Whether the partition separates two supernodes.
    pub(crate) fn cut(&self, a: usize, b: usize) -> bool {
        self.partition
            .as_ref()
            .is_some_and(|side| side.get(a) != side.get(b))
    }

    pub(crate) fn lookup_done(&mut self, sn: usize, id: LookupId, records: &[Record]) {
        let Some(probe) = self.probes.remove(&(sn, id)) else {
            return;
        };
        let found = records
            .iter()
            .any(|r| r.body_unverified().ticket.body_unverified().node == probe.node);
        self.figures.lookups += 1;
        if found {
            self.figures.lookups_found += 1;
        }
        let still = probe.epoch == self.topology_epoch
            && self.clients[probe.client].settled_since().is_some();
        if probe.must_succeed && still && !found {
            self.violations.push(format!(
                "t={} lookup of online user {} from supernode {sn} failed although the membership had converged",
                self.now.0, self.clients[probe.client].user
            ));
        }
    }

    /// Issues end-to-end lookups of random online users from random live supernodes.
    pub(crate) fn issue_lookups(&mut self, count: u32) {
        let live: Vec<usize> = (0..self.sns.len()).filter(|s| self.sns[*s].up).collect();
        if live.is_empty() || self.clients.is_empty() {
            return;
        }
        let settle = Duration::from_secs(3);
        let converged = self
            .converged_since
            .is_some_and(|since| self.now.since(since) >= settle)
            && self.partition.is_none();
        for _ in 0..count {
            let client = self.rng.gen_range(0..self.clients.len());
            let Some(since) = self.clients[client].settled_since() else {
                continue;
            };
            let sn = live[self.rng.gen_range(0..live.len())];
            let user = self.clients[client].user.clone();
            let now = self.now;
            let Ok(id) = self.sns[sn].overlay.lookup(now, user) else {
                continue;
            };
            let must_succeed = converged && self.now.since(since) >= settle;
            let probe = Probe {
                client,
                node: self.clients[client].node,
                must_succeed,
                epoch: self.topology_epoch,
            };
            self.probes.insert((sn, id), probe);
            self.drain_outputs(sn);
        }
    }
}

/// The next [`Supernode::life`]; 0 is never one (a check's "never seen").
static NEXT_LIFE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub(crate) fn fresh_supernode(
    config: &SimConfig,
    info: MemberInfo,
    signer: Signer,
    anchor: &TrustAnchor,
    seed: u64,
    kind: Kind,
) -> anyhow::Result<Supernode> {
    let roles = RoleState::new(config, kind, info.role);
    let serving = info.role != MemberRole::Standby;
    let overlay_config = OverlayConfig {
        replicas: config.replicas,
        membership: config.membership.clone(),
        ..OverlayConfig::default()
    };
    let capacity = usize::try_from(info.capacity).unwrap_or(usize::MAX);
    let overlay = Overlay::new(
        Time::ZERO,
        info.clone(),
        signer.clone(),
        anchor.clone(),
        overlay_config,
        seed,
    )?;
    Ok(Supernode {
        info,
        signer,
        up: true,
        life: NEXT_LIFE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        slow: Duration::ZERO,
        draining: false,
        overlay,
        directory: Directory::new(DirectoryConfig::default()),
        admission: Admission::new(
            Time::ZERO,
            AdmissionConfig {
                capacity,
                ..AdmissionConfig::default()
            },
        ),
        sessions: BTreeSet::new(),
        wake: None,
        kind,
        serving,
        roles,
    })
}

/// Most records, and as many tickets, the simulator remembers as verified: a million clients
/// register about 1.3 million records in a scale run. Past it a set starts again (each record
/// is then verified once more), so that a long run's memory does not grow with every
/// registration; a digest is 32 bytes, where a whole record kept its body alive.
const MAX_VERIFIED_RECORDS: usize = 4_000_000;

pub(crate) fn sim_addr(index: usize) -> std::net::SocketAddr {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    let ip = std::net::Ipv4Addr::from(0x0a00_0000 | index);
    std::net::SocketAddr::from((ip, 4433))
}

/// An event's line in the trace.
pub(crate) fn trace_line(event: &Event) -> String {
    match event {
        Event::Packet { from, to, message } => format!("pkt {from}->{to} {}", kind(message)),
        Event::Wake(sn) => format!("wake {sn}"),
        other => format!("{other:?}"),
    }
}

fn kind(message: &OverlayMessage) -> &'static str {
    match message {
        OverlayMessage::Hello(_) => "hello",
        OverlayMessage::Welcome(_) => "welcome",
        OverlayMessage::Membership(_) => "swim",
        OverlayMessage::Publish { .. } => "publish",
        OverlayMessage::Withdraw { .. } => "withdraw",
        OverlayMessage::Lookup { .. } => "lookup",
        OverlayMessage::LookupResult { .. } => "result",
        OverlayMessage::Subscribe { .. } => "subscribe",
        OverlayMessage::Unsubscribe { .. } => "unsubscribe",
        OverlayMessage::Presence(_) => "presence",
        OverlayMessage::Ack => "ack",
        OverlayMessage::Error(_) => "error",
        OverlayMessage::Goodbye => "goodbye",
        OverlayMessage::MembershipSync(_) => "sync",
    }
}

/// The failover of `client online` (no retry budget: it tries for as long as it runs).
pub(crate) fn client_backoff() -> Failover<usize> {
    Failover::new(BackoffConfig {
        budget: None,
        ..BackoffConfig::default()
    })
}
