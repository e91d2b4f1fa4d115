//! A client's session logic, sans IO: which supernode to try next, what a `Busy` or a
//! `Redirect` changes, how long to wait after a loss, when to refresh. The `client` binary and
//! the simulator drive the same code, so that a simulated failover figure is the real
//! client's figure.
//!
//! - [`HostCache`]: the supernodes known, their load hints, and when each last served or
//!   failed this client; [`HostCache::order`] is the order one attempt tries them in.
//! - [`Pass`]: one attempt to open a session, over that order. The alternatives a `Busy`
//!   supernode names are tried next, at once and in this same pass (they are the ones with
//!   room; a back-off first would send every client it turned away back to the full ones).
//!   After [`MEGAS_AFTER_REFUSALS`] refusals the megas come next.
//!   A dial that has not answered after [`STAGGER`] gets a second one raced beside it
//!   (happy eyeballs, RFC 8305), so a dead supernode first in the cache costs a quarter
//!   second, not a dial timeout.
//! - [`Failover`]: between passes and after a loss: the back-off, and the supernode to try
//!   last.

mod hosts;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

use rand_core::RngCore;

use crate::backoff::{Backoff, BackoffConfig};

pub use hosts::{HostCache, HostEntry, FAILURE_MEMORY_SECS, MAX_HOSTS, UNKNOWN_LOAD};

/// Supernodes one pass tries at most: the host cache's (at most [`MAX_HOSTS`]) and the
/// alternatives `Busy` answers name. A bound on how long one attempt takes before the client
/// backs off.
pub const MAX_TRIES_PER_PASS: usize = 32;

/// How long a dial may go unanswered before the next candidate is dialled beside it: RFC
/// 8305's recommended connection attempt delay. Above a handshake's time on any path a
/// directory serves (a QUIC handshake is one round trip), far below a dial timeout.
pub const STAGGER: Duration = Duration::from_millis(250);

/// Dials one pass keeps in flight at most: the one that is slow and the one raced beside it.
/// More would load supernodes with handshakes that are dropped as soon as one answers.
pub const MAX_DIALS_IN_FLIGHT: usize = 2;

/// `Busy` (or `LimitExceeded`) answers in one pass after which the megas it holds are tried
/// next: DESIGN.md section 6's "when no supernode admits them after a few tries they go to
/// the megas". Counting refusals, not failed dials: a dead supernode says nothing about load,
/// and a 30% crash leaves dead entries in every orphan's cache. Three: when every ordinary
/// supernode is full each `Busy` names five more full ones, and without this a pass spent its
/// 32 tries on them before reaching a mega (13 s to re-home 99% in the simulator's standby-tier
/// run).
pub const MEGAS_AFTER_REFUSALS: usize = 3;

/// How a pass ended without a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassEnd {
    /// No supernode admitted the client: `tried` of them, the longest `retry_after` any
    /// `Busy` asked for.
    NoneAdmitted {
        /// Supernodes dialled.
        tried: usize,
        /// The longest `retry_after` named.
        retry_after: Option<Duration>,
    },
    /// Every supernode that answered refused this account's further sessions
    /// (`LimitExceeded`) and none was busy.
    Limited,
}

/// One attempt to open a session: the candidates in order, the ones already dialled, and
/// what the refusals said.
#[derive(Debug, Clone)]
pub struct Pass<H> {
    queue: VecDeque<H>,
    seen: Vec<H>,
    tried: usize,
    in_flight: usize,
    retry_after: Option<Duration>,
    limited: bool,
    megas: Vec<H>,
    refusals: usize,
}

impl<H: Clone + PartialEq> Pass<H> {
    /// A pass over `order` (from [`HostCache::order`]).
    pub fn new(order: Vec<H>) -> Self {
        let seen = order.clone();
        Self {
            queue: order.into(),
            seen,
            tried: 0,
            in_flight: 0,
            retry_after: None,
            limited: false,
            megas: Vec::new(),
            refusals: 0,
        }
    }

    /// The same pass, knowing which of its hosts are megas ([`HostCache::megas`]): after
    /// [`MEGAS_AFTER_REFUSALS`] refusals the megas not yet dialled are tried next.
    pub fn with_megas(mut self, megas: Vec<H>) -> Self {
        self.megas = megas;
        self
    }

    /// One more `Busy` or `LimitExceeded`: at the [`MEGAS_AFTER_REFUSALS`]th the megas still
    /// queued move to the front, in their order.
    fn refused(&mut self) {
        self.refusals += 1;
        if self.refusals != MEGAS_AFTER_REFUSALS {
            return;
        }
        let mut front = Vec::new();
        for mega in &self.megas {
            if let Some(at) = self.queue.iter().position(|h| h == mega) {
                self.queue.remove(at);
                front.push(mega.clone());
            }
        }
        for mega in front.into_iter().rev() {
            self.queue.push_front(mega);
        }
    }

    /// The next supernode to dial, if the pass has one left and room for another dial in
    /// flight. Counts it as dialled.
    pub fn next_dial(&mut self) -> Option<H> {
        if !self.can_dial() {
            return None;
        }
        let host = self.queue.pop_front()?;
        self.tried += 1;
        self.in_flight += 1;
        Some(host)
    }

    /// A handoff's pass: the supernodes a `Redirect` named first (in a random order, so that
    /// the clients one supernode sheds do not all take the same one), then `order`.
    pub fn redirected(
        targets: impl IntoIterator<Item = H>,
        order: Vec<H>,
        rng: &mut impl RngCore,
    ) -> Self {
        let mut pass = Self::new(order);
        pass.put_first(targets, rng);
        pass
    }

    /// Puts `hosts` not yet in the pass at its front, shuffled.
    fn put_first(&mut self, hosts: impl IntoIterator<Item = H>, rng: &mut impl RngCore) {
        let mut fresh: Vec<H> = Vec::new();
        for host in hosts {
            if let Some(at) = self.queue.iter().position(|h| *h == host) {
                // Named and queued: it moves to the front.
                self.queue.remove(at);
                fresh.push(host);
            } else if !self.seen.contains(&host) {
                self.seen.push(host.clone());
                fresh.push(host);
            }
        }
        // Fisher-Yates, drawing from the caller's RNG.
        for i in (1..fresh.len()).rev() {
            let j = usize::try_from(rng.next_u64() % (i as u64 + 1)).unwrap_or(0);
            fresh.swap(i, j);
        }
        for host in fresh.into_iter().rev() {
            self.queue.push_front(host);
        }
    }

    /// True when a dial could start now: a candidate is left, within the bound of tries, and
    /// fewer than [`MAX_DIALS_IN_FLIGHT`] are unanswered.
    pub fn can_dial(&self) -> bool {
        !self.queue.is_empty()
            && self.tried < MAX_TRIES_PER_PASS
            && self.in_flight < MAX_DIALS_IN_FLIGHT
    }

    /// Dials still unanswered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Supernodes dialled so far.
    pub fn tried(&self) -> usize {
        self.tried
    }

    /// A dial answered with anything but a session (or timed out).
    fn answered(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The dial to a supernode failed (unreachable, timed out, or an answer that made no
    /// sense).
    pub fn failed(&mut self) {
        self.answered();
    }

    /// A supernode answered `Busy`: its wait raises the pass's `retry_after`, and the
    /// alternatives it names (not yet in this pass) are the next to dial, in a random order so
    /// that the clients it turned away do not all take its first.
    pub fn busy(
        &mut self,
        retry_after: Duration,
        alternatives: impl IntoIterator<Item = H>,
        rng: &mut impl RngCore,
    ) {
        self.answered();
        self.retry_after = Some(self.retry_after.map_or(retry_after, |r| r.max(retry_after)));
        self.put_first(alternatives, rng);
        self.refused();
    }

    /// A supernode refused this account's further sessions; another may still admit it.
    pub fn limited(&mut self) {
        self.answered();
        self.limited = true;
        self.refused();
    }

    /// Nothing is in flight and nothing is left to dial: how the pass ended.
    pub fn end(&self) -> Option<PassEnd> {
        if self.in_flight > 0 || (!self.queue.is_empty() && self.tried < MAX_TRIES_PER_PASS) {
            return None;
        }
        Some(if self.limited && self.retry_after.is_none() {
            PassEnd::Limited
        } else {
            PassEnd::NoneAdmitted {
                tried: self.tried,
                retry_after: self.retry_after,
            }
        })
    }
}

/// What happens between sessions: the back-off and the supernode to try last.
#[derive(Debug, Clone)]
pub struct Failover<H> {
    backoff: Backoff,
    avoid: Option<H>,
}

/// The wait after the back-off's budget is spent (the online loop has none; a caller that
/// sets one waits its cap).
const SPENT: Duration = Duration::from_secs(30);

impl<H: Clone> Failover<H> {
    /// A client's failover with `backoff` (the online loop's has no budget: it retries for
    /// as long as it runs).
    pub fn new(backoff: BackoffConfig) -> Self {
        Self {
            backoff: Backoff::new(backoff),
            avoid: None,
        }
    }

    /// The supernode the next pass tries last (the one just lost or that redirected us).
    pub fn avoid(&self) -> Option<&H> {
        self.avoid.as_ref()
    }

    /// A session opened: the back-off starts over.
    pub fn opened(&mut self) {
        self.backoff.succeeded();
    }

    /// The session with `home` broke (keep-alive, reset, a stream error), or it told us to
    /// move: wait the returned delay, then a pass that tries `home` last.
    pub fn lost(&mut self, home: H, rng: &mut impl RngCore) -> Duration {
        self.avoid = Some(home);
        self.backoff.failed(rng, None).unwrap_or(SPENT)
    }

    /// A pass ended without a session: wait the returned delay (at least the longest
    /// `retry_after`), then a pass over the whole cache again.
    pub fn none_admitted(
        &mut self,
        retry_after: Option<Duration>,
        rng: &mut impl RngCore,
    ) -> Duration {
        self.avoid = None;
        self.backoff.failed(rng, retry_after).unwrap_or(SPENT)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }
}

/// How often a registration is refreshed under a lease of `lease`: every third, so that two
/// refreshes can be lost before the lease ends (and the record stays fresh for verifiers).
pub fn refresh_period(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_secs(1))
}
