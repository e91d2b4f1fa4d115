//! Roles that change while the simulation runs: standby megas stepping in and back, driven by
//! `engine`'s [`StandbyPolicy`] exactly as `crates/supernode/src/standby.rs` drives it, and
//! the flapping invariant over every role change (promotion and demotion are in
//! `promotion.rs`).

use std::collections::VecDeque;
use std::time::Duration;

use rand::Rng;
use switchboard_engine::membership::MemberRole;
use switchboard_engine::standby::{StandbyDecision, StandbyPolicy};
use switchboard_engine::{Demotion, Nominator, OverlayLoad, Time};
use switchboard_proto::messages::RedirectReason;
use switchboard_proto::NodeId;

use crate::config::SimConfig;
use crate::world::{Event, World};

/// The role policies' period: the daemon's timer (`supernode::server::TICK`).
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// Clients redirected together when a mega hands its clients back, and the longest pause
/// between two batches: the daemon's `REDIRECT_BATCH` and `REDIRECT_JITTER_MS`.
const REDIRECT_BATCH: usize = 100;
const REDIRECT_JITTER_MS: u64 = 100;

/// What a simulated supernode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Operator-run (`supernode serve`): nominates, never demoted.
    Operator,
    /// Operator-run mega on warm standby (`--mega --standby`): nominates while active, never
    /// demoted.
    Mega,
    /// A promoted client's supernode role.
    Promoted {
        /// The client hosting it.
        client: usize,
    },
}

/// The `engine` role policies one supernode runs.
#[derive(Debug)]
pub(crate) struct RoleState {
    /// A standby mega's policy.
    pub(crate) standby: Option<StandbyPolicy>,
    /// A home's nominator (operator supernodes and megas when promotion is on).
    pub(crate) nominator: Option<Nominator>,
    /// A promoted supernode's demotion policy and the dwell it drew.
    pub(crate) demotion: Option<(Demotion, Duration)>,
    /// Dial-backs in flight (at most `promotion::MAX_DIAL_BACKS`).
    pub(crate) dial_backs_running: usize,
    /// Candidates the nominator marked for a dial-back, waiting for a free slot; at most
    /// `promotion::MAX_QUEUED_DIAL_BACKS`.
    pub(crate) dial_back_queue: VecDeque<NodeId>,
}

impl RoleState {
    pub(crate) fn new(config: &SimConfig, kind: Kind, role: MemberRole) -> Self {
        let standby = (role == MemberRole::Standby).then(|| StandbyPolicy::new(config.standby));
        let nominator = match kind {
            Kind::Operator | Kind::Mega => {
                config.promotion.as_ref().map(|p| Nominator::new(p.policy))
            }
            Kind::Promoted { .. } => None,
        };
        Self {
            standby,
            nominator,
            demotion: None,
            dial_backs_running: 0,
            dial_back_queue: VecDeque::new(),
        }
    }
}

impl World {
    /// One round of every role policy, in supernode order (deterministic).
    pub(crate) fn role_tick(&mut self) {
        let now = self.now;
        for sn in 0..self.sns.len() {
            if !self.sns[sn].up {
                continue;
            }
            if self.sns[sn].roles.standby.is_some() {
                self.standby_tick(sn, now);
            }
            self.promotion_tick(sn, now);
        }
    }

    /// `supernode::standby::tick`: the serving capacity and clients of the other members, as
    /// the membership gossips them, into `engine`'s policy.
    fn standby_tick(&mut self, sn: usize, now: Time) {
        let (capacity, clients) = self.sns[sn].overlay.membership().serving();
        let Some(policy) = self.sns[sn].roles.standby.as_mut() else {
            return;
        };
        match policy.observe(now, capacity, clients) {
            Some(StandbyDecision::Activate(_)) => {
                self.sns[sn].serving = true;
                if self.sns[sn]
                    .overlay
                    .change_role(now, MemberRole::Mega)
                    .is_err()
                {
                    self.violations.push(format!(
                        "t={} mega {sn} could not sign its statement for the mega role",
                        now.0
                    ));
                }
                self.figures.mega_activations += 1;
                if let Some(crash) = self.figures.crash_at {
                    self.figures
                        .mega_active_after
                        .get_or_insert(now.since(crash));
                }
                self.role_changed(sn);
            }
            Some(StandbyDecision::Return) => {
                self.sns[sn].serving = false;
                if self.sns[sn]
                    .overlay
                    .change_role(now, MemberRole::Standby)
                    .is_err()
                {
                    self.violations.push(format!(
                        "t={} mega {sn} could not sign its statement for the standby role",
                        now.0
                    ));
                }
                self.figures.mega_returns += 1;
                self.role_changed(sn);
                self.hand_back(sn);
            }
            None => {}
        }
    }

    /// `supernode::standby::hand_back`: every client redirected to the other supernodes in
    /// batches, each followed by a jittered pause; each keeps its lease here until it is
    /// registered elsewhere.
    fn hand_back(&mut self, sn: usize) {
        let targets = self.alternatives(sn);
        let clients: Vec<usize> = self.sns[sn].sessions.iter().copied().collect();
        let mut at = self.now;
        for batch in clients.chunks(REDIRECT_BATCH) {
            for &client in batch {
                let targets = targets.clone();
                self.schedule(
                    at,
                    Event::Redirected {
                        client,
                        sn,
                        targets,
                        reason: RedirectReason::StandingDown,
                    },
                );
            }
            at = at + Duration::from_millis(self.rng.gen_range(0..=REDIRECT_JITTER_MS));
        }
    }

    /// A supernode's role changed (it stepped in, back, was promoted or demoted): the truth of
    /// who owns records changed, and the flapping invariant counts it.
    pub(crate) fn role_changed(&mut self, sn: usize) {
        let now = self.now;
        self.drain_outputs(sn);
        self.topology_epoch += 1;
        self.converged_since = None;
        self.figures.role_changes += 1;
        let node = self.sns[sn].info.node;
        let limit = self.config.role_changes;
        let changes = self.role_changes.entry(node).or_default();
        while changes
            .front()
            .is_some_and(|at| now.since(*at) >= limit.window)
        {
            changes.pop_front();
        }
        changes.push_back(now);
        if changes.len() > limit.max {
            let first = changes.front().copied().unwrap_or(now);
            self.violations.push(format!(
                "t={} supernode {sn} changed role {} times within {} s (since t={}), more than the {} allowed",
                now.0,
                changes.len(),
                now.since(first).as_secs(),
                first.0,
                limit.max
            ));
            changes.pop_front();
        }
        let changes = changes.len();
        self.figures.max_role_changes = self.figures.max_role_changes.max(changes);
    }

    /// `supernode::promotion::overlay_load`: the live members that serve (standbys excluded)
    /// as the gossip shows them, and this supernode itself if it admits clients.
    pub(crate) fn overlay_load(&self, sn: usize) -> OverlayLoad {
        let s = &self.sns[sn];
        let own = s
            .serving
            .then(|| (s.admission.capacity() as u64, s.admission.clients() as u64));
        OverlayLoad::of(s.overlay.membership(), own)
    }

    /// Whether this supernode's own statement says it owns records (not on standby).
    pub(crate) fn owns_records(&self, sn: usize) -> bool {
        let s = &self.sns[sn];
        s.up && s.overlay.membership().me().role != MemberRole::Standby
    }

    /// Active megas and live promoted supernodes now, and the clients the megas hold.
    pub(crate) fn role_counts(&self) -> (usize, usize, usize) {
        let mut megas = 0;
        let mut promoted = 0;
        let mut on_megas = 0;
        for s in self.sns.iter().filter(|s| s.up) {
            match s.kind {
                Kind::Mega if s.serving => {
                    megas += 1;
                    on_megas += s.sessions.len();
                }
                Kind::Mega => on_megas += s.sessions.len(),
                Kind::Promoted { .. } => promoted += 1,
                Kind::Operator => {}
            }
        }
        (megas, promoted, on_megas)
    }
}
