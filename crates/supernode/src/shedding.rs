//! Feature shedding and handoff under overload (DESIGN.md section 6), driven on the daemon:
//! `engine`'s [`LoadShed`] reads admission's refusals; this module delays presence and moves
//! clients.
//!
//! - While shedding, presence events for local watchers are coalesced per user (only the
//!   latest state matters to a watcher) and delivered every `shed_presence_delay_ms`, in one
//!   batch: the fan-out is the first thing to slow down; lookups and registrations keep their
//!   budget.
//! - Under sustained overload, a share of the clients gets `Redirect { Overloaded }` in
//!   jittered batches, towards the less loaded members and active megas. A moved client's
//!   record is not withdrawn when its session here ends: its new home publishes a newer one,
//!   and the lease is the safety net if it never arrives.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use switchboard_engine::{LoadShed, ShedConfig, Time};
use switchboard_proto::messages::{PresenceEvent, RedirectReason, SupernodeMessage};
use switchboard_proto::{NodeId, Username};

use crate::config::{ConfigError, FileConfig};
use crate::server::{bump, lock, redirect_plan, SessionHandle, Shared};

/// Users whose presence changes wait at once while shedding: one entry per watched user that
/// changed (coalesced), so at most the users this supernode's clients watch; beyond it events
/// are delivered at once rather than held (the bound is on memory, not on correctness).
pub const MAX_DEFERRED_PRESENCE: usize = 10_000;

/// Clients remembered as moved away at once (their records are left to their new homes): at
/// most the clients a supernode serves.
pub const MAX_MOVING: usize = 100_000;

/// Reads the shedding keys of `file`.
pub(crate) fn settings(file: &FileConfig, source_name: &str) -> Result<ShedConfig, ConfigError> {
    let invalid = |key, problem: &str| ConfigError::Invalid {
        source_name: source_name.to_owned(),
        key,
        problem: problem.to_owned(),
    };
    let d = ShedConfig::default();
    let presence_delay = file
        .shed_presence_delay_ms
        .map_or(d.presence_delay, Duration::from_millis);
    if presence_delay.is_zero() {
        return Err(invalid("shed_presence_delay_ms", "must be at least 1"));
    }
    let handoff_permille = file.overload_handoff_permille.unwrap_or(d.handoff_permille);
    if !(1..=1000).contains(&handoff_permille) {
        return Err(invalid(
            "overload_handoff_permille",
            "must be between 1 and 1000",
        ));
    }
    let handoff_after = file
        .overload_handoff_secs
        .map_or(d.handoff_after, Duration::from_secs);
    if handoff_after.is_zero() {
        return Err(invalid("overload_handoff_secs", "must be at least 1"));
    }
    let share = file
        .overload_handoff_share_permille
        .unwrap_or(d.handoff_share_permille);
    if !(1..=1000).contains(&share) {
        return Err(invalid(
            "overload_handoff_share_permille",
            "must be between 1 and 1000",
        ));
    }
    Ok(ShedConfig {
        window: d.window,
        presence_delay,
        handoff_permille,
        handoff_after,
        handoff_share_permille: share,
    })
}

/// The daemon's shedding state.
#[derive(Debug)]
pub struct Shedding {
    policy: LoadShed,
    deferred: BTreeMap<Username, PresenceEvent>,
    last_flush: Time,
    /// Clients redirected away whose sessions may not have ended yet.
    moving: HashSet<NodeId>,
}

impl Shedding {
    /// Calm.
    pub fn new(config: ShedConfig) -> Self {
        Self {
            policy: LoadShed::new(config),
            deferred: BTreeMap::new(),
            last_flush: Time::ZERO,
            moving: HashSet::new(),
        }
    }
}

/// Counters, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct ShedMetrics {
    /// Presence events held back while shedding.
    pub presence_deferred_total: AtomicU64,
    /// Held events replaced by a later one for the same user before delivery.
    pub presence_coalesced_total: AtomicU64,
    /// Handoff rounds under overload.
    pub overload_handoffs_total: AtomicU64,
    /// Clients redirected by them.
    pub overload_redirects_total: AtomicU64,
}

/// Delivers `event` to the local watchers now, or holds it while shedding.
pub fn presence(shared: &Shared, event: PresenceEvent) {
    let now = shared.now();
    {
        let mut state = lock(&shared.shedding);
        if state.policy.shedding(now) && state.deferred.len() < MAX_DEFERRED_PRESENCE {
            bump(&shared.shed_metrics.presence_deferred_total);
            if state.deferred.insert(event.user.clone(), event).is_some() {
                bump(&shared.shed_metrics.presence_coalesced_total);
            }
            return;
        }
    }
    deliver(shared, &[event]);
}

fn deliver(shared: &Shared, events: &[PresenceEvent]) {
    for event in events {
        let watchers = lock(&shared.directory).watchers_of(&event.user);
        let sessions = lock(&shared.sessions);
        for watcher in watchers {
            for session in sessions.get(&watcher).into_iter().flatten() {
                if session
                    .push
                    .try_send(SupernodeMessage::Presence(event.clone()))
                    .is_err()
                {
                    bump(&shared.metrics.presence_dropped_total);
                }
            }
        }
    }
}

/// Whether `node` was redirected away (its record is its new home's to publish); forgets it.
pub fn moved_away(shared: &Shared, node: &NodeId) -> bool {
    lock(&shared.shedding).moving.remove(node)
}

/// Remembers that `node` was redirected away.
pub fn mark_moving(shared: &Shared, node: NodeId) {
    let mut state = lock(&shared.shedding);
    if state.moving.len() < MAX_MOVING {
        state.moving.insert(node);
    }
}

/// One round: observe admission, flush held presence when due, hand clients off when the
/// overload lasts.
pub fn tick(shared: &Arc<Shared>, now: Time) {
    let (admitted, refused) = lock(&shared.admission).request_totals();
    let (due, handoff) = {
        let mut state = lock(&shared.shedding);
        state.policy.observe(now, admitted, refused);
        let delay = state.policy.config().presence_delay;
        let due = if !state.deferred.is_empty()
            && (!state.policy.shedding(now) || now.since(state.last_flush) >= delay)
        {
            state.last_flush = now;
            std::mem::take(&mut state.deferred).into_values().collect()
        } else {
            Vec::new()
        };
        let clients = lock(&shared.admission).clients();
        // The relay gives way next after presence (DESIGN.md section 6).
        lock(&shared.relays).set_shedding(state.policy.shedding(now));
        (due, state.policy.poll_handoff(now, clients))
    };
    deliver(shared, &due);
    if handoff > 0 && !shared.is_draining() {
        hand_off(shared, handoff);
    }
}

/// Redirects `count` random clients to less loaded supernodes, if there are any.
fn hand_off(shared: &Arc<Shared>, count: usize) {
    let mine = lock(&shared.admission).load_permille();
    // The other serving members, least loaded (by clients over capacity) first, active megas
    // included: members gossip their clients, not their request rates, so any of them is
    // better placed than this supernode, which refuses a share of its requests.
    let targets = shared.alternatives();
    if targets.is_empty() {
        tracing::debug!("overloaded, but no other supernode to hand clients to");
        return;
    }
    let mut sessions: Vec<SessionHandle> =
        lock(&shared.sessions).values().flatten().cloned().collect();
    sessions.shuffle(&mut rand::thread_rng());
    sessions.truncate(count);
    bump(&shared.shed_metrics.overload_handoffs_total);
    tracing::warn!(
        clients = sessions.len(),
        load_permille = mine,
        "overloaded: handing clients off to less loaded supernodes"
    );
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let plan = redirect_plan(sessions.len(), &mut rand::thread_rng());
        for (batch, pause) in plan {
            for session in sessions.get(batch).unwrap_or_default() {
                mark_moving(&shared, session.ticket.node);
                let redirect = SupernodeMessage::Redirect {
                    reason: RedirectReason::Overloaded,
                    targets: targets.clone(),
                };
                if session.push.try_send(redirect).is_ok() {
                    bump(&shared.metrics.redirects_total);
                    bump(&shared.shed_metrics.overload_redirects_total);
                }
            }
            tokio::time::sleep(pause).await;
        }
    });
}

/// Appends the shedding figures to `/metrics`.
pub fn render_metrics(shared: &Shared, out: &mut String) {
    use switchboard_net::metrics::metric;
    let m = &shared.shed_metrics;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (shedding, held, refused) = {
        let state = lock(&shared.shedding);
        (
            state.policy.shedding(shared.now()),
            state.deferred.len(),
            state.policy.refused_permille(),
        )
    };
    metric(
        out,
        "switchboard_supernode_shedding",
        "gauge",
        "1 while presence fan-out is batched and delayed (requests refused for the budget).",
        u64::from(shedding),
    );
    metric(
        out,
        "switchboard_supernode_requests_refused_permille",
        "gauge",
        "Requests refused for the request budget over the last window, per mille.",
        refused,
    );
    metric(
        out,
        "switchboard_supernode_presence_held",
        "gauge",
        "Presence events held for the next batch.",
        held as u64,
    );
    for (name, help, counter) in [
        (
            "switchboard_supernode_presence_deferred_total",
            "Presence events held back while shedding.",
            &m.presence_deferred_total,
        ),
        (
            "switchboard_supernode_presence_coalesced_total",
            "Held presence events replaced by a later one for the same user.",
            &m.presence_coalesced_total,
        ),
        (
            "switchboard_supernode_overload_handoffs_total",
            "Handoff rounds under sustained overload.",
            &m.overload_handoffs_total,
        ),
        (
            "switchboard_supernode_overload_redirects_total",
            "Clients redirected by those rounds.",
            &m.overload_redirects_total,
        ),
    ] {
        metric(out, name, "counter", help, get(counter));
    }
}
