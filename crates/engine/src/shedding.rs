//! What an overloaded supernode gives up first, and when it moves clients away (DESIGN.md
//! section 6: "feature shedding" and "graceful handoff"), sans-IO.
//!
//! The signal is admission's own: requests refused as over the request budget
//! ([`crate::Refused::Overloaded`]). Registrations are the first class refused (they leave the
//! largest reserve), so any refusal means the supernode is at its budget:
//!
//! - **shedding** starts at the first refusal within `window` and ends once a whole `window`
//!   passed without one: while shedding, presence fan-out is batched and delayed (the driver
//!   coalesces events per user and delivers them every `presence_delay`); registrations,
//!   refreshes and lookups keep their budget;
//! - **handoff**: when refusals stayed at or above `handoff_permille` of the requests for
//!   `handoff_after` without a break, the driver redirects `handoff_share_permille` of its
//!   clients (jittered batches, to less loaded supernodes and active megas), then waits
//!   `handoff_after` again before another round, so that one overload moves a share of clients
//!   at a time rather than all of them.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Time;

/// Tuning of [`LoadShed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShedConfig {
    /// How far back refusals count.
    pub window: Duration,
    /// How long presence events wait while shedding.
    pub presence_delay: Duration,
    /// Share of requests refused (per mille) that counts as sustained overload.
    pub handoff_permille: u32,
    /// How long the overload must last before a handoff round, and between rounds.
    pub handoff_after: Duration,
    /// Share of clients (per mille) redirected per round.
    pub handoff_share_permille: u32,
}

impl Default for ShedConfig {
    /// A 2 s window; presence delayed 2 s while shedding; a tenth of the requests refused for
    /// 10 s moves a tenth of the clients.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(2),
            presence_delay: Duration::from_secs(2),
            handoff_permille: 100,
            handoff_after: Duration::from_secs(10),
            handoff_share_permille: 100,
        }
    }
}

/// Samples kept at most: one per driver tick (250 ms) over a window of seconds.
const MAX_SAMPLES: usize = 1024;

/// The state; see the module doc.
#[derive(Debug, Clone)]
pub struct LoadShed {
    config: ShedConfig,
    /// (time, admitted so far, refused so far), oldest first.
    samples: VecDeque<(Time, u64, u64)>,
    last_refusal: Option<Time>,
    /// Since when refusals have stayed at or above the handoff mark.
    overloaded_since: Option<Time>,
    last_handoff: Option<Time>,
}

impl LoadShed {
    /// Calm at the start.
    pub fn new(config: ShedConfig) -> Self {
        Self {
            config,
            samples: VecDeque::new(),
            last_refusal: None,
            overloaded_since: None,
            last_handoff: None,
        }
    }

    /// The tuning.
    pub fn config(&self) -> &ShedConfig {
        &self.config
    }

    /// Takes admission's running totals of admitted and refused requests at `now`.
    pub fn observe(&mut self, now: Time, admitted: u64, refused: u64) {
        if let Some(&(_, _, before)) = self.samples.back() {
            if refused > before {
                self.last_refusal = Some(now);
            }
        }
        while self
            .samples
            .front()
            .is_some_and(|(at, _, _)| now.since(*at) > self.config.window)
        {
            self.samples.pop_front();
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now, admitted, refused));
        let share = self.refused_permille();
        if share >= u64::from(self.config.handoff_permille) && share > 0 {
            self.overloaded_since.get_or_insert(now);
        } else {
            self.overloaded_since = None;
        }
    }

    /// Requests refused over the window, per mille of all requests in it.
    pub fn refused_permille(&self) -> u64 {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return 0;
        };
        let admitted = last.1.saturating_sub(first.1);
        let refused = last.2.saturating_sub(first.2);
        refused
            .saturating_mul(1000)
            .checked_div(admitted.saturating_add(refused))
            .unwrap_or(0)
    }

    /// Whether presence fan-out is batched and delayed now.
    pub fn shedding(&self, now: Time) -> bool {
        self.last_refusal
            .is_some_and(|at| now.since(at) <= self.config.window)
    }

    /// How many of `clients` to redirect now (0: none).
    pub fn poll_handoff(&mut self, now: Time, clients: usize) -> usize {
        let Some(since) = self.overloaded_since else {
            return 0;
        };
        let after = self.config.handoff_after;
        if now.since(since) < after || self.last_handoff.is_some_and(|at| now.since(at) < after) {
            return 0;
        }
        self.last_handoff = Some(now);
        let share = usize::try_from(self.config.handoff_share_permille).unwrap_or(usize::MAX);
        (clients.saturating_mul(share) / 1000).max(usize::from(clients > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(ms: u64) -> Time {
        Time(ms)
    }

    #[test]
    fn one_refusal_sheds_presence_for_a_window() {
        let mut shed = LoadShed::new(ShedConfig::default());
        shed.observe(secs(0), 100, 0);
        shed.observe(secs(250), 200, 0);
        assert!(!shed.shedding(secs(250)));
        shed.observe(secs(500), 290, 1);
        assert!(shed.shedding(secs(500)));
        assert!(shed.shedding(secs(2_500)));
        shed.observe(secs(2_750), 900, 1);
        assert!(
            !shed.shedding(secs(2_750)),
            "a whole window without a refusal"
        );
    }

    #[test]
    fn sustained_overload_hands_off_a_share_of_clients_per_round() {
        let mut shed = LoadShed::new(ShedConfig::default());
        let (mut admitted, mut refused) = (0, 0);
        let mut rounds = Vec::new();
        for tick in 0..=124 {
            let now = secs(tick * 250);
            admitted += 80;
            refused += 20; // 20% refused: above the 10% mark
            shed.observe(now, admitted, refused);
            let n = shed.poll_handoff(now, 500);
            if n > 0 {
                rounds.push((now.0, n));
            }
        }
        // The overload shows at the second sample (250 ms); the first round 10 s after that,
        // then every 10 s; 50 clients each.
        assert_eq!(
            rounds,
            vec![(10_250, 50), (20_250, 50), (30_250, 50)],
            "{rounds:?}"
        );
    }

    #[test]
    fn a_short_burst_or_a_light_overload_moves_nobody() {
        let mut shed = LoadShed::new(ShedConfig::default());
        let (mut admitted, mut refused) = (0, 0);
        for tick in 0..=200 {
            let now = secs(tick * 250);
            admitted += 98;
            refused += 2; // 2%: shedding, no handoff
            shed.observe(now, admitted, refused);
            assert_eq!(shed.poll_handoff(now, 500), 0);
            assert!(tick == 0 || shed.shedding(now));
        }
        let mut shed = LoadShed::new(ShedConfig::default());
        let (mut admitted, mut refused) = (0, 0);
        for tick in 0..=200 {
            let now = secs(tick * 250);
            admitted += 50;
            // Heavy for 5 s out of every 10 s: never sustained long enough.
            if (tick / 20) % 2 == 0 {
                refused += 50;
            }
            shed.observe(now, admitted, refused);
            assert_eq!(shed.poll_handoff(now, 500), 0, "at {tick}");
        }
    }

    #[test]
    fn a_lone_client_is_handed_off_too() {
        let mut shed = LoadShed::new(ShedConfig {
            handoff_after: Duration::from_secs(1),
            ..ShedConfig::default()
        });
        shed.observe(secs(0), 0, 0);
        shed.observe(secs(500), 10, 10);
        shed.observe(secs(1_500), 20, 20);
        assert_eq!(shed.poll_handoff(secs(1_500), 3), 1);
    }
}
