//! When a mega-supernode on warm standby steps in, and when it steps back (DESIGN.md section 6):
//! the decision Skype's operators took by hand on 22-23 December 2010, taken here from what the
//! membership gossips, without a command.
//!
//! A standby mega watches the serving capacity of the other live members (the sum of their
//! capacities, standbys excluded) and their utilization (gossiped clients over that capacity):
//!
//! - it **activates** when the capacity fell by more than `drop_permille` of its highest value
//!   within the last `window` (a third of the supernodes dying at once), or when utilization
//!   reaches `critical_permille` (the survivors are filling up);
//! - once active, it **returns** to standby after the overlay has been healthy for `healthy_for`
//!   without a break: capacity back within `drop_permille` of what it was before the loss, and
//!   utilization below `calm_permille`. Being active at least `healthy_for` is the hysteresis
//!   that keeps it from flapping.
//!
//! Sans-IO: the driver calls [`StandbyPolicy::observe`] with the time and the figures.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Time;

/// Tuning of a [`StandbyPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandbyConfig {
    /// A capacity drop of more than this share (per mille) of the window's highest activates.
    pub drop_permille: u32,
    /// How far back the highest capacity is remembered.
    pub window: Duration,
    /// Utilization (per mille) at which the standby activates whatever the capacity.
    pub critical_permille: u32,
    /// Utilization (per mille) below which the overlay counts as calm again.
    pub calm_permille: u32,
    /// How long the overlay must be healthy before an active standby returns.
    pub healthy_for: Duration,
}

impl Default for StandbyConfig {
    /// A quarter of the capacity lost within 30 s, or 90% utilization, activates; 60 s of
    /// health below 70% utilization returns. The gap between 90% and 70% and the minute of
    /// health are the hysteresis.
    fn default() -> Self {
        Self {
            drop_permille: 250,
            window: Duration::from_secs(30),
            critical_permille: 900,
            calm_permille: 700,
            healthy_for: Duration::from_secs(60),
        }
    }
}

/// Most capacity samples remembered: one per driver tick (250 ms) over a window of minutes.
const MAX_SAMPLES: usize = 4096;

/// Why a standby activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The serving capacity dropped from `from` to `to` within the window.
    CapacityDrop {
        /// The window's highest capacity.
        from: u64,
        /// The capacity now.
        to: u64,
    },
    /// Utilization reached this many per mille.
    Utilization(u64),
}

/// What the driver should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandbyDecision {
    /// Start serving clients and owning records.
    Activate(Activation),
    /// Hand the clients back (jittered redirects) and stand by again.
    Return,
}

/// The policy of one standby mega; see the module doc.
#[derive(Debug, Clone)]
pub struct StandbyPolicy {
    config: StandbyConfig,
    samples: VecDeque<(Time, u64)>,
    /// While active: the capacity to recover (the window's highest at activation).
    active: Option<u64>,
    healthy_since: Option<Time>,
}

impl StandbyPolicy {
    /// A policy on standby.
    pub fn new(config: StandbyConfig) -> Self {
        Self {
            config,
            samples: VecDeque::new(),
            active: None,
            healthy_since: None,
        }
    }

    /// Whether the standby is active now.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Takes the serving capacity of the other live members and their clients at `now`; says
    /// what to do, if anything.
    pub fn observe(&mut self, now: Time, capacity: u64, clients: u64) -> Option<StandbyDecision> {
        let window = self.config.window;
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.since(*at) > window)
        {
            self.samples.pop_front();
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now, capacity));
        let highest = self
            .samples
            .iter()
            .map(|(_, c)| *c)
            .max()
            .unwrap_or(capacity);
        let utilization = clients.saturating_mul(1000) / capacity.max(1);
        let dropped = |from: u64| {
            capacity.saturating_mul(1000)
                < from.saturating_mul(u64::from(1000 - self.config.drop_permille.min(1000)))
        };
        match self.active {
            None => {
                let activation = if dropped(highest) {
                    Activation::CapacityDrop {
                        from: highest,
                        to: capacity,
                    }
                } else if utilization >= u64::from(self.config.critical_permille) {
                    Activation::Utilization(utilization)
                } else {
                    return None;
                };
                self.active = Some(highest);
                self.healthy_since = None;
                Some(StandbyDecision::Activate(activation))
            }
            Some(before) => {
                let healthy =
                    !dropped(before) && utilization < u64::from(self.config.calm_permille);
                if !healthy {
                    self.healthy_since = None;
                    return None;
                }
                let since = *self.healthy_since.get_or_insert(now);
                if now.since(since) < self.config.healthy_for {
                    return None;
                }
                self.active = None;
                self.healthy_since = None;
                // What was lost is the new normal to compare with.
                self.samples.clear();
                self.samples.push_back((now, capacity));
                Some(StandbyDecision::Return)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Time {
        Time(secs * 1000)
    }

    fn config() -> StandbyConfig {
        StandbyConfig {
            healthy_for: Duration::from_secs(10),
            ..StandbyConfig::default()
        }
    }

    #[test]
    fn losing_a_third_of_the_capacity_at_once_activates_and_a_healthy_overlay_sends_it_back() {
        let mut policy = StandbyPolicy::new(config());
        for t in 0..10 {
            assert_eq!(policy.observe(at(t), 6_000, 1_000), None);
        }
        assert_eq!(
            policy.observe(at(10), 4_000, 1_000),
            Some(StandbyDecision::Activate(Activation::CapacityDrop {
                from: 6_000,
                to: 4_000
            }))
        );
        // Still short of capacity: stays active.
        for t in 11..40 {
            assert_eq!(policy.observe(at(t), 4_000, 1_000), None);
        }
        // The lost supernodes are back: healthy for 10 s, then it returns.
        for t in 40..50 {
            assert_eq!(policy.observe(at(t), 6_000, 1_000), None, "t = {t}");
        }
        assert_eq!(
            policy.observe(at(50), 6_000, 1_000),
            Some(StandbyDecision::Return)
        );
        assert!(!policy.is_active());
        assert_eq!(policy.observe(at(51), 6_000, 1_000), None);
    }

    #[test]
    fn a_slow_decline_outside_the_window_does_not_activate_but_critical_utilization_does() {
        let mut policy = StandbyPolicy::new(config());
        // 6,000 down to 3,000 over ten minutes: never a quarter within 30 s.
        for t in 0..=600 {
            let capacity = 6_000 - 5 * t;
            assert_eq!(policy.observe(at(t), capacity, 100), None, "t = {t}");
        }
        assert_eq!(
            policy.observe(at(601), 3_000, 2_700),
            Some(StandbyDecision::Activate(Activation::Utilization(900)))
        );
    }

    #[test]
    fn a_break_in_health_restarts_the_wait_so_it_does_not_flap() {
        let mut policy = StandbyPolicy::new(config());
        policy.observe(at(0), 1_000, 0);
        assert!(policy.observe(at(1), 500, 0).is_some());
        for t in 2..8 {
            assert_eq!(policy.observe(at(t), 1_000, 0), None);
        }
        // Busy for a moment: the 10 s start again.
        assert_eq!(policy.observe(at(8), 1_000, 800), None);
        for t in 9..18 {
            assert_eq!(policy.observe(at(t), 1_000, 0), None, "t = {t}");
        }
        assert_eq!(
            policy.observe(at(19), 1_000, 0),
            Some(StandbyDecision::Return)
        );
    }
}
