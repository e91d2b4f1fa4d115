//! The invariants checked while the simulation runs, and the figures it reports.

use switchboard_engine::placement::Ring;
use switchboard_engine::Time;

use crate::client::{Client, ClientState};
use crate::cores::on_every_core;
use crate::world::{Supernode, World};

/// Supernodes whose gossiped loads are compared with the truth at every check: enough for a
/// mean, few enough that the comparison stays linear in the supernodes.
const LOAD_OBSERVERS: usize = 50;

/// What [`World::coverage`] found among a run of clients.
#[derive(Debug, Default)]
struct Coverage {
    online: usize,
    found: usize,
    /// The first client online long enough whose record some owner lacks: (client, home,
    /// owner).
    missing: Option<(usize, usize, usize)>,
    longest: std::time::Duration,
    violations: Vec<String>,
}

/// What a check last saw of one client on one supernode (its record in the supernode's index as
/// an owner, or its lease in its home's directory): the answer stands while the supernode is
/// the same life and the count of changes of what was asked is the same. Most checks then look
/// nothing up: every check asked every owner of every online client, a hash of the user name
/// and three cache misses each, and that was a sixth of a 100,000-client run's samples.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    /// The supernode's [`Supernode::life`]; 0 when nothing was seen.
    life: u64,
    /// The count of changes then.
    changes: u64,
    /// The count of removals then, where what was asked counts them (a yes stands until they
    /// move, whatever was added since).
    removals: u64,
    held: bool,
}

/// `seen`'s answer if `sn` is the life it saw with `changes` as it saw them (or, for a yes,
/// with `removals` as it saw them, when what was asked counts them), else `look`'s, which
/// `seen` then remembers.
fn remembered(
    sn: &Supernode,
    changes: u64,
    removals: Option<u64>,
    seen: Option<&mut Seen>,
    look: impl Fn() -> bool,
) -> bool {
    match seen {
        Some(seen)
            if seen.life == sn.life
                && (seen.changes == changes || (seen.held && removals == Some(seen.removals))) =>
        {
            seen.held
        }
        Some(seen) => {
            let held = look();
            *seen = Seen {
                life: sn.life,
                changes,
                removals: removals.unwrap_or(0),
                held,
            };
            held
        }
        None => look(),
    }
}

/// Whether `sn`'s index holds `client`'s record, remembered in `seen` until the index changes
/// ([`switchboard_engine::overlay::Overlay::index_changes`]), or, if it held it, until a record
/// leaves the index ([`switchboard_engine::overlay::Overlay::index_removals`]): while clients
/// arrive an owner's index changes between any two checks, and looking every client's owners up
/// again each time was a tenth of the arrival's samples.
fn index_holds(sn: &Supernode, client: &Client, seen: Option<&mut Seen>) -> bool {
    let changes = sn.overlay.index_changes();
    let removals = sn.overlay.index_removals();
    remembered(sn, changes, Some(removals), seen, || {
        sn.overlay.holds(&client.user, &client.node)
    })
}

/// Whether `client` holds a lease in `sn`'s directory, remembered in `seen` until its leases
/// change ([`switchboard_engine::directory::Directory::lease_changes`]).
fn leased(sn: &Supernode, client: &Client, seen: &mut Seen) -> bool {
    let changes = sn.directory.lease_changes();
    remembered(sn, changes, None, Some(seen), || {
        sn.directory.is_registered(&client.node)
    })
}

/// How many of `clients` each thread of a check takes, at least `fewest`
/// ([`crate::SimConfig::clients_per_check_thread`]). The checks read the whole world every half
/// simulated second (a fifth of a 100,000-client run on one core) and write only their own
/// clients' entries, so they split into contiguous runs without locks and, merged in order,
/// give what one thread gives.
fn clients_per_thread(clients: usize, fewest: usize) -> usize {
    let threads = crate::cores::count().min(clients / fewest.max(1)).max(1);
    clients.div_ceil(threads).max(1)
}

impl World {
    /// Checks what must hold after every step; a violation is recorded with the time.
    pub(crate) fn check_invariants(&mut self) {
        let now = self.now.0;
        for (index, sn) in self.sns.iter().enumerate() {
            if !sn.up {
                continue;
            }
            let capacity = usize::try_from(sn.info.capacity).unwrap_or(usize::MAX);
            if sn.sessions.len() > capacity || sn.admission.clients() > capacity {
                self.violations.push(format!(
                    "t={now} supernode {index} holds {} clients, capacity {capacity}",
                    sn.sessions.len()
                ));
            }
        }
        let per_thread =
            clients_per_thread(self.clients.len(), self.config.clients_per_check_thread);
        let mut seen = std::mem::take(&mut self.lease_seen);
        seen.resize(self.clients.len(), Seen::default());
        let runs: Vec<_> = self
            .clients
            .chunks(per_thread)
            .zip(seen.chunks_mut(per_thread))
            .enumerate()
            .collect();
        let world = &*self;
        let found = on_every_core(runs, |(run, (clients, seen))| {
            world.client_violations(run * per_thread, clients, seen)
        });
        self.lease_seen = seen;
        self.violations.extend(found.into_iter().flatten());
    }

    /// The invariants of the clients from `first` on, `clients`, whose homes' leases the
    /// checks last saw as `seen`.
    fn client_violations(
        &self,
        first: usize,
        clients: &[Client],
        seen: &mut [Seen],
    ) -> Vec<String> {
        let now = self.now.0;
        let mut violations = Vec::new();
        for ((index, client), seen) in (first..).zip(clients).zip(seen) {
            match client.state {
                ClientState::Online { home, .. } => {
                    let sn = &self.sns[home];
                    let at_home = sn.up && sn.sessions.contains(&index);
                    // While the home is dead and the client has not noticed yet, it has no
                    // home; that window is the keep-alive's and is allowed.
                    if sn.up && (!at_home || !leased(sn, client, seen)) {
                        violations.push(format!(
                            "t={now} online client {index} is not registered at its home {home}"
                        ));
                    }
                    let elsewhere: Vec<usize> = client
                        .sessions
                        .iter()
                        .copied()
                        .filter(|s| *s != home && self.sns[*s].up)
                        .collect();
                    if !elsewhere.is_empty() {
                        violations.push(format!(
                            "t={now} online client {index} has a home {home} and sessions at {elsewhere:?}"
                        ));
                    }
                }
                ClientState::Handoff { old, dials } => {
                    // No live lease is lost in a handoff: the old home keeps it until the new
                    // one holds it.
                    let held = |s: usize| {
                        self.sns[s].up && self.sns[s].directory.is_registered(&client.node)
                    };
                    if self.sns[old].up && !held(old) && !dials.all().any(held) {
                        violations.push(format!(
                            "t={now} client {index} lost its lease while moving from {old} to {dials:?}"
                        ));
                    }
                }
                ClientState::Offline | ClientState::Trying { .. } | ClientState::Gone => {}
            }
        }
        violations
    }

    /// Every client's owners (as supernode indices) among the live supernodes that own records
    /// (standby megas do not), recomputed only when that set changed.
    fn refresh_owner_cache(&mut self) {
        let up: Vec<bool> = (0..self.sns.len()).map(|s| self.owns_records(s)).collect();
        if self.owner_cache.0 == up && self.owner_cache.1.len() == self.clients.len() {
            return;
        }
        let mut ring = Ring::new();
        for (sn, _) in up.iter().enumerate().filter(|(_, owns)| **owns) {
            ring.insert(self.sns[sn].info.node);
        }
        let owners = self
            .clients
            .iter()
            .map(|c| {
                ring.owners(&c.user, self.config.replicas)
                    .iter()
                    .filter_map(|node| self.by_node.get(node).copied())
                    .collect()
            })
            .collect();
        self.owner_cache = (up, owners);
        self.held_seen = vec![Seen::default(); self.clients.len() * self.owner_stride()];
    }

    /// [`Self::held_seen`]'s entries per client: a client has at most `replicas` owners.
    fn owner_stride(&self) -> usize {
        self.config.replicas.max(1)
    }

    /// Whether every live supernode sees exactly the live supernodes (and, when roles vary,
    /// exactly those of them that own records: a member's latest role has reached everyone).
    fn converged(&self) -> bool {
        use switchboard_engine::membership::{node_prefix, MemberRole};
        if self.partition.is_some() {
            return false;
        }
        let live: Vec<usize> = (0..self.sns.len()).filter(|s| self.sns[*s].up).collect();
        let truth = live
            .iter()
            .fold(0, |acc, s| acc ^ node_prefix(&self.sns[*s].info.node));
        let same_members = live.iter().all(|s| {
            let membership = self.sns[*s].overlay.membership();
            membership.live_count() == live.len() && membership.view_digest() == truth
        });
        if !same_members || !self.config.roles_vary() {
            return same_members;
        }
        let owners = live
            .iter()
            .filter(|s| self.owns_records(**s))
            .fold(0, |acc, s| acc ^ node_prefix(&self.sns[*s].info.node));
        live.iter().all(|s| {
            let membership = self.sns[*s].overlay.membership();
            let me = membership.me();
            let mine = if me.role == MemberRole::Standby {
                0
            } else {
                node_prefix(&me.node)
            };
            let seen = membership
                .live()
                .filter(|m| m.role != MemberRole::Standby)
                .fold(mine, |acc, m| acc ^ node_prefix(&m.node));
            seen == owners
        })
    }

    /// Online clients, and how many of them a lookup would find: some live owner (by the real
    /// membership) holds their record. Tracks how long each online client stays unfindable:
    /// with `unfindable_bound` set, longer than that outside a partition is a violation.
    ///
    /// With `replicas_settle`, also checks the replicas in the same pass (one index lookup per
    /// client and owner serves both; the checks were a third of a small run's time): once the
    /// membership has converged for `settle` (a few membership rounds), every client online
    /// for `settle` has its record on all `R` of its owners: the home re-published what a
    /// membership change moved, nothing waits for a lease refresh.
    fn coverage(&mut self, replicas_settle: Option<std::time::Duration>) -> (usize, usize) {
        self.refresh_owner_cache();
        let now = self.now;
        let check_replicas = replicas_settle.is_some_and(|settle| {
            self.converged_since
                .is_some_and(|converged| now.since(converged) >= settle)
        });
        let settle = replicas_settle.unwrap_or_default();
        let stride = self.owner_stride();
        if self.held_seen.len() != self.unfindable_since.len() * stride {
            // Runs of the two are zipped below: a short one would leave clients unchecked.
            self.held_seen = vec![Seen::default(); self.unfindable_since.len() * stride];
        }
        let mut unfindable = std::mem::take(&mut self.unfindable_since);
        let mut seen = std::mem::take(&mut self.held_seen);
        let world = &*self;
        let per_thread = clients_per_thread(unfindable.len(), self.config.clients_per_check_thread);
        let runs: Vec<_> = unfindable
            .chunks_mut(per_thread)
            .zip(seen.chunks_mut(per_thread * stride))
            .enumerate()
            .collect();
        let chunks = on_every_core(runs, |(run, (since, seen))| {
            world.coverage_of(run * per_thread, since, seen, check_replicas, settle)
        });
        self.unfindable_since = unfindable;
        self.held_seen = seen;
        let (mut online, mut found, mut missing) = (0, 0, None);
        for chunk in chunks {
            online += chunk.online;
            found += chunk.found;
            missing = missing.or(chunk.missing);
            self.figures.longest_unfindable = self.figures.longest_unfindable.max(chunk.longest);
            self.violations.extend(chunk.violations);
        }
        if let Some((index, home, owner)) = missing {
            self.report_missing_replica(index, home, owner);
        }
        (online, found)
    }

    /// [`Self::coverage`] of the clients from `first` on, whose unfindable times are
    /// `unfindable` and what the checks saw on their owners `seen`.
    fn coverage_of(
        &self,
        first: usize,
        unfindable: &mut [Option<Time>],
        seen: &mut [Seen],
        check_replicas: bool,
        settle: std::time::Duration,
    ) -> Coverage {
        let now = self.now;
        let mut out = Coverage::default();
        let clients = self.clients.iter().enumerate().skip(first);
        let seen = seen.chunks_mut(self.owner_stride());
        for (((index, client), unfindable_since), seen) in
            clients.zip(unfindable.iter_mut()).zip(seen)
        {
            let ClientState::Online { home, since } = client.state else {
                *unfindable_since = None;
                continue;
            };
            if !self.sns[home].up {
                *unfindable_since = None;
                continue;
            }
            out.online += 1;
            let owners = &self.owner_cache.1[index];
            let mut held = false;
            let mut lacking = None;
            for (slot, &owner) in owners.iter().enumerate() {
                let sn = &self.sns[owner];
                if sn.up && index_holds(sn, client, seen.get_mut(slot)) {
                    held = true;
                } else if lacking.is_none() {
                    lacking = Some(owner);
                }
            }
            let home_moving = self.sns[home].draining || !self.sns[home].serving;
            if check_replicas && out.missing.is_none() && !home_moving && now.since(since) >= settle
            {
                out.missing = lacking.map(|owner| (index, home, owner));
            }
            if held {
                out.found += 1;
            }
            if held || self.partition.is_some() {
                *unfindable_since = None;
                continue;
            }
            let unfindable_for = now.since(*unfindable_since.get_or_insert(now));
            out.longest = out.longest.max(unfindable_for);
            if let Some(bound) = self.config.unfindable_bound {
                if unfindable_for > bound {
                    out.violations.push(format!(
                        "t={} online client {index} (home {home}) has been unfindable for {} ms, more than {} ms",
                        now.0,
                        unfindable_for.as_millis(),
                        bound.as_millis()
                    ));
                    *unfindable_since = None;
                }
            }
        }
        out
    }

    /// The violation of a replica missing on `owner` for client `index` homed on `home`.
    fn report_missing_replica(&mut self, index: usize, home: usize, owner: usize) {
        let Some(client) = self.clients.get(index) else {
            return;
        };
        let name = |node: &switchboard_proto::NodeId| {
            self.by_node.get(node).copied().unwrap_or(usize::MAX)
        };
        let home_view: Vec<usize> = self.sns[home]
            .overlay
            .owners_of(&client.user)
            .iter()
            .map(name)
            .collect();
        let truth = &self.owner_cache.1[index];
        let since = self
            .converged_since
            .map_or(0, |converged| self.now.since(converged).as_millis());
        self.violations.push(format!(
            "t={} owner {owner} lacks the record of client {index} (home {home}, whose view names owners {home_view:?}; truth {truth:?}; home homes {} records) although the membership converged {since} ms ago",
            self.now.0,
            self.sns[home].overlay.homed_records(),
        ));
    }

    /// How far the loads gossiped to the first [`LOAD_OBSERVERS`] live supernodes are from the
    /// truth: the summed absolute difference, in clients, between what each of them believes
    /// every other live supernode holds and what that one holds (nothing known counts as 0),
    /// the number of pairs, and how many of them knew nothing.
    fn load_error(&self) -> (u64, u64, u64) {
        let truth: Vec<(usize, switchboard_proto::NodeId, u64)> = self
            .sns
            .iter()
            .enumerate()
            .filter(|(_, s)| s.up)
            .map(|(i, s)| (i, s.overlay.membership().me().node, s.sessions.len() as u64))
            .collect();
        let mut error = (0, 0, 0);
        for &(observer, _, _) in truth.iter().take(LOAD_OBSERVERS) {
            let view = self.sns[observer].overlay.membership();
            for &(other, node, clients) in &truth {
                if other != observer {
                    let believed = view.load_of(&node);
                    error.0 += u64::from(believed.unwrap_or(0)).abs_diff(clients);
                    error.1 += 1;
                    error.2 += u64::from(believed.is_none());
                }
            }
        }
        error
    }

    /// Runs every `check_every`: convergence, figures, end-to-end lookups, and the invariants
    /// when they are not checked after every event.
    pub(crate) fn periodic_check(&mut self) {
        let converged = self.converged();
        if converged {
            self.converged_since.get_or_insert(self.now);
        } else {
            self.converged_since = None;
        }
        let (online, found) = self.coverage(Some(std::time::Duration::from_secs(3)));
        let total = self.present().max(1);
        let (megas_active, promoted, on_megas) = self.role_counts();
        let backlogs = self
            .sns
            .iter()
            .filter(|s| s.up)
            .map(|s| s.overlay.membership().stats())
            .fold((0, 0), |(updates, loads), stats| {
                (updates + stats.updates_backlog, loads + stats.loads_backlog)
            });
        let sample = crate::report::Sample {
            backlogs,
            load_error: self.load_error(),
            megas_active,
            promoted,
            on_megas,
            at: self.now,
            online,
            covered: found,
            converged,
            live: self.sns.iter().filter(|s| s.up).count(),
            messages: self.figures.messages,
            lookups: self.figures.lookups,
            lookups_found: self.figures.lookups_found,
        };
        self.figures.samples.push(sample);
        if let Some(crash) = self.figures.crash_at {
            if self.now >= crash {
                if self.figures.rehomed_99.is_none() && online * 100 >= total * 99 {
                    self.figures.rehomed_99 = Some(self.now.since(crash));
                }
                if self.figures.converged.is_none() && converged {
                    self.figures.converged = Some(self.now.since(crash));
                }
                if self.figures.lookups_999.is_none() && online > 0 && found * 1000 >= online * 999
                {
                    self.figures.lookups_999 = Some(self.now.since(crash));
                }
            }
        }
        let per_check = u64::from(self.config.lookups_per_sec)
            * u64::try_from(self.config.check_every.as_millis()).unwrap_or(0)
            / 1000;
        self.issue_lookups(u32::try_from(per_check).unwrap_or(u32::MAX));
        if !self.config.check_each_event {
            self.check_invariants();
        }
    }

    /// What must hold once the faults are over and the run has settled: one membership, every
    /// client online at a live home, every online client's record at a live owner.
    pub(crate) fn check_end_state(&mut self) {
        let now = self.now.0;
        if !self.converged() {
            self.violations.push(format!(
                "t={now} the membership did not converge by the end"
            ));
        }
        let (online, found) = self.coverage(None);
        let present = self.present();
        if online != present {
            self.violations.push(format!(
                "t={now} only {online} of {present} clients are online at the end"
            ));
        }
        if found != online {
            self.violations.push(format!(
                "t={now} {} online clients cannot be found at the end",
                online - found
            ));
        }
    }

    /// How many answers the checks remember, and the first client and owner (or home), if any,
    /// for which the check would now answer otherwise than a lookup.
    #[cfg(test)]
    fn remembered_answers(&self) -> (usize, Option<String>) {
        let stride = self.owner_stride();
        let mut remembered = 0;
        for (index, owners) in self.owner_cache.1.iter().enumerate() {
            let client = &self.clients[index];
            for (slot, &owner) in owners.iter().enumerate() {
                let (sn, seen) = (&self.sns[owner], self.held_seen[index * stride + slot]);
                if seen.life != 0 {
                    remembered += 1;
                }
                let mut copy = seen;
                let checked = index_holds(sn, client, Some(&mut copy));
                if checked != sn.overlay.holds(&client.user, &client.node) {
                    let wrong = format!("client {index} on owner {owner}: remembered {seen:?}");
                    return (remembered, Some(wrong));
                }
            }
        }
        for ((index, client), seen) in self.clients.iter().enumerate().zip(&self.lease_seen) {
            let ClientState::Online { home, .. } = client.state else {
                continue;
            };
            let sn = &self.sns[home];
            if seen.life != 0 {
                remembered += 1;
            }
            let mut copy = *seen;
            if leased(sn, client, &mut copy) != sn.directory.is_registered(&client.node) {
                let wrong = format!("client {index}'s lease at {home}: remembered {seen:?}");
                return (remembered, Some(wrong));
            }
        }
        (remembered, None)
    }

    /// Clients that have not left for good.
    fn present(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| c.state != ClientState::Gone)
            .count()
    }

    /// The simulated time now.
    pub fn now(&self) -> Time {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::messages::RecordKey;

    use super::{index_holds, Seen};
    use crate::client::ClientState;
    use crate::config::SimConfig;
    use crate::world::World;
    use switchboard_engine::Time;

    /// A fault-free, loss-free sweep world (seed 7) run to 22 s: settled for long, checked many
    /// times over, and just after the first online client's lease refresh (which re-publishes
    /// its record everywhere and so would mend a hole made now). With that client and its home.
    fn settled_with_an_online_client() -> (World, usize, usize) {
        let seed = 7;
        println!("seed {seed}");
        let mut config = SimConfig::sweep(seed);
        config.faults.clear();
        config.loss = 0.0;
        config.check_each_event = false;
        let mut world = World::new(config).unwrap();
        world.run_until(Time(22_000)).unwrap();
        let (client, home) = world
            .clients
            .iter()
            .enumerate()
            .find_map(|(index, c)| match c.state {
                ClientState::Online { home, .. } => Some((index, home)),
                _ => None,
            })
            .expect("a client online");
        (world, client, home)
    }

    /// Runs `world` to its next check and asserts that it reports `violation`.
    fn reported_at_the_next_check(mut world: World, violation: &str) {
        let next = world.now() + world.config.check_every;
        let error = world
            .run_until(next)
            .expect_err("the violation is reported");
        assert!(error.contains(violation), "{error}");
    }

    #[test]
    fn a_replica_lost_after_the_membership_settled_is_reported_at_the_next_check() {
        let (mut world, client, home) = settled_with_an_online_client();
        let owner = *world.owner_cache.1[client].first().unwrap();
        // One owner loses the record, as if the home's publish never came; the others hold it,
        // so the client stays findable and only the replica check sees the hole.
        let (user, node) = (
            world.clients[client].user.clone(),
            world.clients[client].node,
        );
        let from = world.sns[home].info.node;
        world.sns[owner]
            .overlay
            .handle_withdraw(from, vec![RecordKey { user, node }]);
        let violation = format!("owner {owner} lacks the record of client {client}");
        reported_at_the_next_check(world, &violation);
    }

    #[test]
    fn a_lease_lost_at_the_home_of_an_online_client_is_reported_at_the_next_check() {
        // The checks have remembered every lease as held many times over.
        let (mut world, client, home) = settled_with_an_online_client();
        let node = world.clients[client].node;
        world.sns[home].directory.unregister(&node);
        let violation = format!("online client {client} is not registered at its home {home}");
        reported_at_the_next_check(world, &violation);
    }

    /// A small scale run (20 supernodes, 2,000 clients, a crash of 30% at 10 s) with the
    /// checks' pass over the clients split from `per_thread` clients a thread: its figures,
    /// unfindable times and violations.
    fn checked(seed: u64, per_thread: usize, bound: Option<std::time::Duration>) -> String {
        use std::time::Duration;
        let timing = crate::ScaleTiming {
            arrival: Duration::from_secs(5),
            crash_at: Duration::from_secs(10),
            after: Duration::from_secs(10),
        };
        let mut config = SimConfig::scale(seed, 20, 2_000, 0.3, timing);
        config.clients_per_check_thread = per_thread;
        config.unfindable_bound = bound;
        let mut world = World::new(config).unwrap();
        let outcome = world.run();
        format!(
            "{outcome:?} {:?} {:?} {:?}",
            world.figures(),
            world.unfindable_since,
            world.violations
        )
    }

    #[test]
    fn an_answer_the_checks_remember_is_what_the_supernode_answers_until_what_it_holds_changes() {
        let seed = 3;
        println!("seed {seed}");
        // Every kind of fault: a partition, crashes, a restart (whose index counts again from
        // zero) and a drain; leases end.
        let mut world = World::new(SimConfig::sweep(seed)).unwrap();
        let (mut remembered, mut checks) = (0, 0);
        while world.now() < world.config.end {
            let next = world.now() + world.config.check_every;
            world.run_until(next).unwrap();
            let (now_remembered, wrong) = world.remembered_answers();
            assert_eq!(wrong, None, "at {:?}", world.now());
            remembered += now_remembered;
            checks += 1;
        }
        assert!(
            remembered > checks * 100,
            "{remembered} answers over {checks} checks"
        );
    }

    #[test]
    fn an_answer_remembered_from_another_life_of_the_owner_is_looked_up_again() {
        let world = World::new(SimConfig::sweep(1)).unwrap();
        let (sn, client) = (&world.sns[0], &world.clients[0]);
        let changes = sn.overlay.index_changes();
        let mut same_life = Seen {
            life: sn.life,
            changes,
            removals: sn.overlay.index_removals(),
            held: true,
        };
        assert!(
            index_holds(sn, client, Some(&mut same_life)),
            "remembered, not looked up (nothing is held before the run)"
        );
        let mut other_life = Seen {
            life: sn.life + 1,
            ..same_life
        };
        assert!(!index_holds(sn, client, Some(&mut other_life)));
        assert_eq!((other_life.life, other_life.held), (sn.life, false));
    }

    #[test]
    fn the_checks_split_across_threads_find_what_one_thread_finds() {
        let seed = 5;
        println!("seed {seed}");
        let whole = checked(seed, usize::MAX, None);
        assert!(whole.starts_with("Ok"), "{whole}");
        assert_eq!(checked(seed, 1, None), whole);
        // A bound the crash's orphans exceed: the violations of one check, in client order.
        let bound = Some(std::time::Duration::from_millis(400));
        let violated = checked(seed, usize::MAX, bound);
        assert!(violated.contains("unfindable for"), "{violated}");
        assert_eq!(checked(seed, 1, bound), violated);
    }
}
