//! What a simulation run is made of: its size, its network and its faults.

use std::time::Duration;

use switchboard_engine::membership::MembershipConfig;
use switchboard_engine::standby::StandbyConfig;
use switchboard_engine::{PromotionConfig, Time};

/// A simulated network.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Drives every random choice: the same seed replays the same run.
    pub seed: u64,
    /// Supernodes at the start.
    pub supernodes: usize,
    /// Clients that come online during `arrival`.
    pub clients: usize,
    /// Clients each supernode admits.
    pub capacity: u32,
    /// Owners per user.
    pub replicas: usize,
    /// Clients arrive spread over this window from the start.
    pub arrival: Duration,
    /// One-way delay of a message, drawn uniformly from this range (milliseconds).
    pub delay_ms: (u64, u64),
    /// Probability that a membership packet is lost (they ride unreliable datagrams; the
    /// index messages ride QUIC streams and are lost only with their connection).
    pub loss: f64,
    /// Lease a home grants its clients.
    pub lease: Duration,
    /// How long a client takes to notice that its home went silent (keep-alive).
    pub detect: Duration,
    /// How long a client waits for a supernode to answer a registration.
    pub connect_timeout: Duration,
    /// Supernodes each client knows at the start (its host cache).
    pub host_cache: usize,
    /// Lookups of random online users issued per simulated second, to check the index end to
    /// end.
    pub lookups_per_sec: u32,
    /// Check the invariants after every event (small runs) instead of at every `check_every`.
    pub check_each_event: bool,
    /// How often the invariants and the figures are checked.
    pub check_every: Duration,
    /// The membership protocol's timing.
    pub membership: MembershipConfig,
    /// Keep a human-readable trace line per event (small runs; the digest is always kept).
    pub keep_trace: bool,
    /// Faults to inject.
    pub faults: Vec<(Time, Fault)>,
    /// The run ends here.
    pub end: Time,
    /// Mega-supernodes on warm standby (indices `supernodes..supernodes + standby_megas`):
    /// members of the overlay with the `Standby` role, admitting no clients and owning no
    /// records until `engine`'s `StandbyPolicy` activates them. Every client knows them, last
    /// in its host cache (the bootstrap list names them).
    pub standby_megas: usize,
    /// Clients each mega admits once active.
    pub mega_capacity: u32,
    /// The standby megas' policy tuning.
    pub standby: StandbyConfig,
    /// Promotion of clients and demotion of promoted supernodes; `None`: no client offers.
    pub promotion: Option<PromotionSim>,
    /// The flapping bound: no node changes role more often than this.
    pub role_changes: RoleChangeLimit,
    /// If set, no online client (at a live home, outside a partition) stays unfindable (no live
    /// owner holds its record) for longer than this, converged membership or not.
    pub unfindable_bound: Option<Duration>,
    /// The supernodes start as a formed overlay, each knowing every other from the start
    /// (`Overlay::restore`), as in a network that has run for a while; otherwise they all join
    /// through the first one at once, a mass join (the sweep does that; at 1,000 supernodes it
    /// was over half of a scale run's wall time, foca spreading 1,000 joins 16 times each).
    pub formed: bool,
    /// Fewest clients per thread for the checks to split their pass over the clients across
    /// the cores (below it a thread's start costs more than it saves; the fault sweep's
    /// worlds have a few hundred clients). The results are the same whatever the split.
    pub clients_per_check_thread: usize,
    /// Fewest supernode-local events (packets and timers) of one millisecond per thread for
    /// them to be spread over the cores (below it a thread's start costs more than their work;
    /// at 1,000 supernodes and 100,000 clients a millisecond has about 40 of them during the
    /// arrival). The results are the same whatever the split; `usize::MAX` keeps them on the
    /// event thread.
    pub local_events_per_thread: usize,
}

/// The default [`SimConfig::local_events_per_thread`].
pub const LOCAL_EVENTS_PER_THREAD: usize = 8;

/// The default [`SimConfig::clients_per_check_thread`].
pub const CLIENTS_PER_CHECK_THREAD: usize = 16_384;

/// Promotable clients and the policy the homes and promoted supernodes run.
#[derive(Debug, Clone)]
pub struct PromotionSim {
    /// `engine`'s tuning, shared by every home's `Nominator` and every `Demotion`.
    pub policy: PromotionConfig,
    /// The first `promotable` clients run `client online --promotable`.
    pub promotable: usize,
    /// Of those, the first `behind_nat` are behind a NAT: the home's dial-back from another
    /// socket never reaches them, so they must never be nominated.
    pub behind_nat: usize,
    /// The capacity a promotable client declares (and serves with once promoted).
    pub capacity: u32,
}

/// At most `max` role changes of one node (standby to mega and back, client to promoted
/// supernode and back) within any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChangeLimit {
    /// Changes allowed within the window.
    pub max: usize,
    /// The sliding window.
    pub window: Duration,
}

impl Default for RoleChangeLimit {
    /// Four changes in ten minutes. With `engine`'s defaults an honest cycle is two changes
    /// (promoted then demoted; activated then returned) and cannot repeat quickly: a promoted
    /// node serves at least `min_in_role` (5 min) and its home does not nominate it again for
    /// `renominate_after` (10 min); an active mega stays at least `healthy_for` (1 min) after
    /// the overlay recovered. Four allows two genuine incidents in a window; a fifth change is
    /// a node oscillating on the same signal, which the hysteresis exists to prevent.
    fn default() -> Self {
        Self {
            max: 4,
            window: Duration::from_secs(600),
        }
    }
}

/// An injected fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// These supernodes die at once (SIGKILL: no goodbye).
    Crash(Vec<usize>),
    /// These supernodes start again, empty, with a new generation.
    Restart(Vec<usize>),
    /// The supernodes split: those listed on one side, the rest on the other; nothing crosses.
    Partition(Vec<usize>),
    /// The partition ends.
    Heal,
    /// Everything this supernode receives arrives this much later (an overloaded machine).
    Slow(usize, Duration),
    /// The supernode drains gracefully (SIGTERM): redirects its clients, then leaves.
    Drain(usize),
    /// These clients go offline for good (a supernode role they host drains).
    Leave(Vec<usize>),
}

impl SimConfig {
    /// A small network with every kind of fault, for the seed sweep: 12 supernodes, 150
    /// clients, message loss, a slow node, a partition that heals, crashes, a restart and a
    /// graceful drain.
    pub fn sweep(seed: u64) -> Self {
        let ms = Time;
        Self {
            seed,
            supernodes: 12,
            clients: 150,
            capacity: 40,
            replicas: 3,
            arrival: Duration::from_secs(5),
            delay_ms: (1, 20),
            loss: 0.02,
            lease: Duration::from_secs(30),
            detect: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            host_cache: 6,
            lookups_per_sec: 40,
            check_each_event: true,
            check_every: Duration::from_millis(500),
            membership: MembershipConfig::default(),
            keep_trace: false,
            faults: vec![
                (ms(15_000), Fault::Slow(5, Duration::from_millis(600))),
                (ms(20_000), Fault::Partition(vec![0, 1, 2, 3])),
                (ms(32_000), Fault::Heal),
                (ms(50_000), Fault::Crash(vec![6, 7, 8])),
                (ms(65_000), Fault::Restart(vec![7])),
                (ms(80_000), Fault::Drain(9)),
            ],
            end: ms(110_000),
            standby_megas: 0,
            mega_capacity: MEGA_CAPACITY,
            standby: StandbyConfig::default(),
            promotion: None,
            role_changes: RoleChangeLimit::default(),
            unfindable_bound: None,
            formed: false,
            clients_per_check_thread: CLIENTS_PER_CHECK_THREAD,
            local_events_per_thread: LOCAL_EVENTS_PER_THREAD,
        }
    }

    /// The scale run: `supernodes` and `clients` reach a steady state, then `crash_fraction`
    /// of the supernodes die at once.
    pub fn scale(
        seed: u64,
        supernodes: usize,
        clients: usize,
        crash_fraction: f64,
        timing: ScaleTiming,
    ) -> Self {
        let crash_at = Time(timing.crash_at.as_millis().try_into().unwrap_or(u64::MAX));
        let crashed = ((supernodes as f64) * crash_fraction).round() as usize;
        // Spread over the index space with the seed's permutation chosen at run time; here the
        // first `crashed` of a shuffled order are named by `World::new`.
        let capacity = u32::try_from((clients * 2).div_ceil(supernodes.max(1))).unwrap_or(u32::MAX);
        Self {
            seed,
            supernodes,
            clients,
            capacity,
            replicas: 3,
            arrival: timing.arrival,
            delay_ms: (1, 30),
            loss: 0.01,
            lease: Duration::from_secs(120),
            detect: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            host_cache: 20,
            lookups_per_sec: 500,
            check_each_event: false,
            check_every: Duration::from_millis(500),
            membership: MembershipConfig::default(),
            keep_trace: false,
            faults: vec![(crash_at, Fault::Crash((0..crashed).collect()))],
            end: crash_at + timing.after,
            standby_megas: 0,
            mega_capacity: MEGA_CAPACITY,
            standby: StandbyConfig::default(),
            promotion: None,
            role_changes: RoleChangeLimit::default(),
            unfindable_bound: None,
            formed: true,
            clients_per_check_thread: CLIENTS_PER_CHECK_THREAD,
            local_events_per_thread: LOCAL_EVENTS_PER_THREAD,
        }
    }

    /// Adds a tier of `count` standby megas of `capacity` each (indices after the supernodes).
    pub fn with_standby_megas(mut self, count: usize, capacity: u32) -> Self {
        self.standby_megas = count;
        self.mega_capacity = capacity;
        self
    }

    /// Whether anything changes roles in this run (standby megas, promotion): only then does
    /// the simulator run the role policies' timer and compare roles in the convergence check.
    pub fn roles_vary(&self) -> bool {
        self.standby_megas > 0 || self.promotion.is_some()
    }
}

/// The capacity of a simulated mega unless a run says otherwise: `supernode serve --mega`'s
/// default.
pub const MEGA_CAPACITY: u32 = 50_000;

/// When things happen in the scale run.
#[derive(Debug, Clone, Copy)]
pub struct ScaleTiming {
    /// Clients arrive over this window from the start.
    pub arrival: Duration,
    /// The crash.
    pub crash_at: Duration,
    /// How long the run goes on after the crash.
    pub after: Duration,
}

impl Default for ScaleTiming {
    fn default() -> Self {
        Self {
            arrival: Duration::from_secs(40),
            crash_at: Duration::from_secs(70),
            after: Duration::from_secs(40),
        }
    }
}
