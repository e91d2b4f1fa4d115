//! What one supernode handles alone: a packet delivered to it and its own timer. These are most
//! of a large run's events (at 1,000 supernodes and 100,000 clients, membership packets and
//! timers were over half of the time in a profile), and those queued for one millisecond do not
//! depend on each other: each touches only its own supernode's engine, and what it sends or
//! schedules is queued for a later round (a message takes at least a millisecond to arrive in
//! the simulated network, so mostly for a later millisecond: rounds stay few and full). So the
//! simulator runs a millisecond in rounds (see [`World::run_until`]): first every
//! supernode-local event queued for it, each supernode's in queue order, the supernodes spread
//! over the cores; then every other event (clients, faults, checks), one by one, in queue
//! order; then again, for what those queued for the same millisecond, until none is left.
//!
//! What a local event does to the rest of the world (the messages it sends with their random
//! delay and loss, a lookup's result, its supernode's next timer) is taken from its engine on
//! the core that ran it and applied afterwards, on the event thread, in queue order: the random
//! source and the queue see exactly what they would see if the events ran one by one, so a
//! seed's run is the same on any number of cores (a test runs both and compares the traces).

use std::collections::BTreeMap;

use rayon::iter::{IntoParallelIterator, IntoParallelRefIterator, ParallelIterator};
use switchboard_engine::overlay::OverlayOutput;
use switchboard_engine::{Time, VerifiedRecords};
use switchboard_proto::messages::OverlayMessage;
use switchboard_proto::{NodeId, Record, UnixTime};

use crate::client::Client;
use crate::config::SimConfig;
use crate::world::{Event, Supernode, World};

/// What a local event left to apply to the rest of the world, in the order it happened.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    outputs: Vec<OverlayOutput>,
    /// The supernode's timer, if it must be queued again earlier than it is.
    wake: Option<Time>,
}

/// Takes what `node`'s engine produced at `now`, and moves its timer earlier if its engine now
/// wants to run earlier.
pub(crate) fn drain(node: &mut Supernode, now: Time) -> Drained {
    let mut outputs = Vec::new();
    while let Some(output) = node.overlay.poll_output() {
        // Membership changes and presence events are the daemon's to log and forward; nothing
        // in the simulated world reads them (see `apply`), so they are not kept.
        if !matches!(
            output,
            OverlayOutput::Member(_) | OverlayOutput::Presence(_)
        ) {
            outputs.push(output);
        }
    }
    let next = [node.overlay.next_timeout(), node.directory.next_timeout()]
        .into_iter()
        .flatten()
        .min()
        .map(|next| next.max(now));
    let wake = next.filter(|next| node.wake.is_none_or(|at| *next < at));
    if wake.is_some() {
        node.wake = wake;
    }
    Drained { outputs, wake }
}

/// The supernode a local event happens at, if `event` is one.
pub(crate) fn local_to(event: &Event) -> Option<usize> {
    match event {
        Event::Packet { to, .. } => Some(*to),
        Event::Wake(sn) => Some(*sn),
        _ => None,
    }
}

/// What a local event needs from outside its supernode, read before the round's events run
/// (none of it changes during the local part of a round: only faults bring a node up or down
/// or cut a link).
#[derive(Debug, Clone, Copy)]
struct Sender {
    /// Whether the packet is delivered at all.
    delivered: bool,
    node: NodeId,
}

/// The same for every local event of a round.
struct Round<'w> {
    now: Time,
    unix: UnixTime,
    verified: &'w VerifiedRecords,
}

/// Runs one local event at `node`; nothing drained when it did nothing (a packet to a stopped
/// node or across a cut, a timer already moved).
fn run(node: &mut Supernode, event: Event, sender: Option<Sender>, round: &Round<'_>) -> Drained {
    let now = round.now;
    match event {
        Event::Packet { message, .. } => {
            let Some(sender) = sender.filter(|s| s.delivered) else {
                return Drained::default();
            };
            deliver(node, sender.node, *message, round);
        }
        Event::Wake(_) => {
            if !node.up || node.wake.is_none_or(|at| at > now) {
                return Drained::default();
            }
            node.wake = None;
            node.overlay.handle_timeout(now);
            node.directory.handle_timeout(now);
            while node.directory.poll_notice().is_some() {}
        }
        _ => return Drained::default(),
    }
    drain(node, now)
}

/// A message from the member `from` arrives at `node`.
fn deliver(node: &mut Supernode, from: NodeId, message: OverlayMessage, round: &Round<'_>) {
    let now = round.now;
    let verified = |records: Vec<Record>| -> Vec<Record> {
        records
            .into_iter()
            .filter(|r| round.verified.verify(r, round.unix).is_ok())
            .collect()
    };
    let overlay = &mut node.overlay;
    match message {
        OverlayMessage::Membership(payload) => {
            let _ = overlay.handle_membership(now, payload.as_slice());
        }
        OverlayMessage::MembershipSync(payload) => {
            let _ = overlay.handle_membership_sync(now, from, payload.as_slice());
        }
        OverlayMessage::Publish { records } => {
            overlay.handle_publish(now, from, verified(records.into_inner()));
        }
        OverlayMessage::Withdraw { keys } => overlay.handle_withdraw(from, keys.into_inner()),
        OverlayMessage::Lookup { user } => overlay.handle_lookup_request(from, user),
        OverlayMessage::LookupResult { user, records } => {
            overlay.handle_lookup_result(from, &user, verified(records.into_inner()));
        }
        OverlayMessage::Subscribe { users } => overlay.handle_subscribe(from, users.into_inner()),
        OverlayMessage::Unsubscribe { users } => {
            overlay.handle_unsubscribe(from, users.into_inner());
        }
        OverlayMessage::Presence(event) => overlay.handle_presence(from, event),
        _ => {}
    }
}

impl World {
    /// Runs the local events of the millisecond `self.now` (in queue order): on several cores
    /// when there are enough of them, their effects on the rest of the world applied in queue
    /// order; stops at the first invariant violation.
    ///
    /// `later` are the round's other events, run after these on the event thread: the records
    /// its clients' registrations will carry are signed and verified meanwhile on the other
    /// cores (see [`prepare`]).
    pub(crate) fn run_local(&mut self, events: Vec<Event>, later: &[Event]) -> Result<(), String> {
        // Only where another core can do it: on one thread each is signed and verified at its
        // registration, as it would be here.
        let registering = if self.in_pool() {
            registering(later)
        } else {
            Vec::new()
        };
        let unix = self.unix_now();
        let lease = self.config.lease;
        if !self.spread(events.len()) {
            if registering.len() >= 2 {
                let signed = prepare(&self.clients, &registering, lease, &self.verified, unix);
                self.hold_signed(signed);
            }
            for event in events {
                self.run_one_local(event);
                if self.config.check_each_event {
                    self.check_invariants();
                }
                if let Some(first) = self.violations.first() {
                    return Err(first.clone());
                }
            }
            return Ok(());
        }
        let senders: Vec<Option<Sender>> = events.iter().map(|e| self.sender(e)).collect();
        let targets: Vec<usize> = events.iter().filter_map(local_to).collect();
        let lines: Vec<String> = events.iter().map(crate::world::trace_line).collect();
        let round = Round {
            now: self.now,
            unix,
            verified: &self.verified,
        };
        let clients = &self.clients;
        let (drained, signed) = rayon::join(
            || run_on_cores(&mut self.sns, events, &senders, &round),
            || prepare(clients, &registering, lease, round.verified, unix),
        );
        self.hold_signed(signed);
        self.rounds_shared += 1;
        for ((line, sn), drained) in lines.iter().zip(targets).zip(drained) {
            self.events += 1;
            self.record_line(line);
            self.apply(sn, drained);
            if let Some(first) = self.violations.first() {
                return Err(first.clone());
            }
        }
        Ok(())
    }

    /// Runs one local event here, now (counted and traced), and applies what it did.
    fn run_one_local(&mut self, event: Event) {
        self.events += 1;
        self.record_line(&crate::world::trace_line(&event));
        self.handle_local(event);
    }

    /// Runs one local event here, now, and applies what it did.
    pub(crate) fn handle_local(&mut self, event: Event) {
        let Some(sn) = local_to(&event) else { return };
        let sender = self.sender(&event);
        let round = Round {
            now: self.now,
            unix: self.unix_now(),
            verified: &self.verified,
        };
        let drained = run(&mut self.sns[sn], event, sender, &round);
        self.apply(sn, drained);
    }

    /// Whether `events` local events are spread over the cores: inside the simulator's pool
    /// (see [`pool`]), with at least [`crate::SimConfig::local_events_per_thread`] events for
    /// each of two threads, and not when the invariants are checked after every event.
    fn spread(&self, events: usize) -> bool {
        let per_thread = self.config.local_events_per_thread.max(1);
        !self.config.check_each_event && self.in_pool() && events / per_thread >= 2
    }

    /// Whether this thread is one of the simulator's pool (see [`pool`]).
    fn in_pool(&self) -> bool {
        rayon::current_thread_index().is_some() && rayon::current_num_threads() > 1
    }

    /// The records that registrations among `later` (a client's first, or its refresh) carry.
    /// Holds the records [`prepare`] signed.
    fn hold_signed(&mut self, signed: Vec<(usize, Record)>) {
        for (client, record) in signed {
            if let Some(client) = self.clients.get_mut(client) {
                client.hold_signed(record);
            }
        }
    }

    /// Who sent a packet, and whether it arrives (read on the event thread, for every core).
    fn sender(&self, event: &Event) -> Option<Sender> {
        let Event::Packet { from, to, message } = event else {
            return None;
        };
        let membership = matches!(
            **message,
            OverlayMessage::Membership(_) | OverlayMessage::MembershipSync(_)
        );
        let delivered =
            self.sns[*to].up && (self.sns[*from].up || !membership) && !self.cut(*from, *to);
        Some(Sender {
            delivered,
            node: self.sns[*from].info.node,
        })
    }

    /// Takes everything a supernode's engine produced and schedules it.
    pub(crate) fn drain_outputs(&mut self, sn: usize) {
        let now = self.now;
        let drained = drain(&mut self.sns[sn], now);
        self.apply(sn, drained);
    }

    /// Applies what `sn` produced: its messages leave with a random delay (membership packets
    /// may be lost), its finished lookups are scored, its timer is queued.
    pub(crate) fn apply(&mut self, sn: usize, drained: Drained) {
        for output in drained.outputs {
            match output {
                OverlayOutput::Send { to, message, .. } => {
                    let Some(&target) = self.by_node.get(&to) else {
                        continue;
                    };
                    self.figures.messages += 1;
                    let lossy = matches!(message, OverlayMessage::Membership(_));
                    if lossy && rand::Rng::gen_bool(&mut self.rng, self.config.loss) {
                        continue;
                    }
                    let at = self.now + self.delay() + self.sns[target].slow;
                    self.schedule(
                        at,
                        Event::Packet {
                            from: sn,
                            to: target,
                            message: Box::new(message),
                        },
                    );
                }
                OverlayOutput::LookupDone { id, records, .. } => self.lookup_done(sn, id, &records),
                OverlayOutput::Presence(_) | OverlayOutput::Member(_) => {}
            }
        }
        if let Some(next) = drained.wake {
            self.schedule(next, Event::Wake(sn));
        }
    }
}

/// Runs `events` (local, in queue order) on the pool's threads: one task per supernode, its
/// events in order, the tasks shared out by rayon's work stealing (a packet full of load
/// reports costs many times an acknowledgement, so a fixed deal of the supernodes left one
/// thread waiting for the other); what each event did, in the order of `events`.
fn run_on_cores(
    sns: &mut [Supernode],
    events: Vec<Event>,
    senders: &[Option<Sender>],
    round: &Round<'_>,
) -> Vec<Drained> {
    let count = events.len();
    let mut by_node: BTreeMap<usize, Vec<(usize, Event)>> = BTreeMap::new();
    for (index, event) in events.into_iter().enumerate() {
        if let Some(sn) = local_to(&event) {
            by_node.entry(sn).or_default().push((index, event));
        }
    }
    let mut by_node = by_node.into_iter().peekable();
    let mut tasks: Vec<(&mut Supernode, Vec<(usize, Event)>)> = Vec::new();
    for (sn, node) in sns.iter_mut().enumerate() {
        let Some((next, _)) = by_node.peek() else {
            break;
        };
        if *next == sn {
            if let Some((_, events)) = by_node.next() {
                tasks.push((node, events));
            }
        }
    }
    let done: Vec<Vec<(usize, Drained)>> = tasks
        .into_par_iter()
        .map(|(node, events)| {
            events
                .into_iter()
                .map(|(index, event)| {
                    let sender = senders.get(index).copied().flatten();
                    (index, run(node, event, sender, round))
                })
                .collect()
        })
        .collect();
    let mut results: Vec<Option<Drained>> = (0..count).map(|_| None).collect();
    for (index, drained) in done.into_iter().flatten() {
        results[index] = Some(drained);
    }
    results.into_iter().map(Option::unwrap_or_default).collect()
}

/// The clients whose registrations `events` are, each once, in index order.
fn registering(events: &[Event]) -> Vec<usize> {
    let mut clients: Vec<usize> = events
        .iter()
        .filter_map(|event| match event {
            Event::Arrive { client, .. } | Event::RefreshArrive { client, .. } => Some(*client),
            _ => None,
        })
        .collect();
    clients.sort_unstable();
    clients.dedup();
    clients
}

/// Signs the records `registering` wait to have signed, and verifies each client's latest
/// record into the shared cache, on the pool's threads, so that the registrations that carry
/// them, run afterwards on the event thread, find them signed and verified: a client's
/// signature of its fresh record and its home's check of it were the largest costs left on
/// the event thread alone (a millisecond rarely holds two registrations, so they are done
/// beside the round's local events). Nothing else changes: the registration verifies again,
/// and a record that failed here fails there (a failure is not remembered). The records
/// signed, to hold.
fn prepare(
    clients: &[Client],
    registering: &[usize],
    lease: std::time::Duration,
    verified: &VerifiedRecords,
    unix: UnixTime,
) -> Vec<(usize, Record)> {
    registering
        .par_iter()
        .filter_map(|&index| {
            let client = clients.get(index)?;
            let signed = client.sign_unsigned(lease);
            if let Some(record) = signed.as_ref().or(client.held_record()) {
                let _ = verified.verify(record, unix);
            }
            signed.map(|record| (index, record))
        })
        .collect()
}

/// The threads that run the local events, the event thread among them (it runs the whole
/// simulation inside the pool, so that a round's first share runs on it and only the others
/// wait for a thread to pick them up); `None` when one thread does everything.
pub(crate) fn pool(config: &SimConfig) -> Option<rayon::ThreadPool> {
    let threads = crate::cores::count();
    if config.check_each_event || config.local_events_per_thread == usize::MAX || threads <= 1 {
        return None;
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sim-local-{i}"))
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use crate::{SimConfig, World};

    /// What a run of `config` did, its local events on every core from `per_thread` a thread,
    /// and in how many rounds more than one thread ran.
    fn run(mut config: SimConfig, per_thread: usize) -> (String, u64) {
        config.local_events_per_thread = per_thread;
        let mut world = World::new(config).unwrap();
        let outcome = world.run();
        let run = format!(
            "{outcome:?} {} {:?} {:?} {:?}",
            world.events(),
            world.trace_digest(),
            world.figures(),
            world.violations
        );
        (run, world.rounds_shared)
    }

    /// `config` run on one thread and on every core, from one local event a thread.
    fn same_on_every_core(config: &SimConfig) {
        if crate::cores::count() < 2 {
            println!("one core here: nothing runs on two");
            return;
        }
        let (alone, none_shared) = run(config.clone(), usize::MAX);
        assert!(alone.starts_with("Ok"), "{alone}");
        assert_eq!(none_shared, 0);
        let (spread, shared) = run(config.clone(), 1);
        println!("{shared} rounds on several threads");
        assert!(shared > 1_000, "{shared} rounds on several threads");
        assert_eq!(spread, alone);
    }

    #[test]
    fn the_fault_sweeps_world_spread_over_the_cores_runs_as_on_one_thread() {
        let seed = 4;
        println!("seed {seed}");
        // A partition, crashes, a restart, a drain, a slow node, message loss, the supernodes
        // joining at the start; checked every half second.
        let mut config = SimConfig::sweep(seed);
        config.check_each_event = false;
        same_on_every_core(&config);
    }

    #[test]
    fn a_scale_run_spread_over_the_cores_runs_as_on_one_thread() {
        let seed = 6;
        println!("seed {seed}");
        // A formed overlay (its views restored on every core), a mass arrival, a crash.
        let timing = crate::ScaleTiming {
            arrival: std::time::Duration::from_secs(5),
            crash_at: std::time::Duration::from_secs(10),
            after: std::time::Duration::from_secs(10),
        };
        same_on_every_core(&SimConfig::scale(seed, 20, 2_000, 0.3, timing));
    }
}
