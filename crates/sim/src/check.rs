//! The invariants checked while the simulation runs, and the figures it reports.

use switchboard_engine::placement::Ring;
use switchboard_engine::Time;

use crate::client::ClientState;
use crate::world::World;

/// Supernodes whose gossiped loads are compared with the truth at every check: enough for a
/// mean, few enough that the comparison stays linear in the supernodes.
const LOAD_OBSERVERS: usize = 50;

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
        for (index, client) in self.clients.iter().enumerate() {
            match client.state {
                ClientState::Online { home, .. } => {
                    let sn = &self.sns[home];
                    let at_home = sn.up && sn.sessions.contains(&index);
                    // While the home is dead and the client has not noticed yet, it has no
                    // home; that window is the keep-alive's and is allowed.
                    if sn.up && (!at_home || !sn.directory.is_registered(&client.node)) {
                        self.violations.push(format!(
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
                        self.violations.push(format!(
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
                        self.violations.push(format!(
                            "t={now} client {index} lost its lease while moving from {old} to {dials:?}"
                        ));
                    }
                }
                ClientState::Offline | ClientState::Trying { .. } | ClientState::Gone => {}
            }
        }
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
        let mut online = 0;
        let mut found = 0;
        let mut missing = None;
        for (index, client) in self.clients.iter().enumerate() {
            let ClientState::Online { home, since } = client.state else {
                self.unfindable_since[index] = None;
                continue;
            };
            if !self.sns[home].up {
                self.unfindable_since[index] = None;
                continue;
            }
            online += 1;
            let owners = &self.owner_cache.1[index];
            let mut held = false;
            let mut lacking = None;
            for &owner in owners {
                if self.sns[owner].up && self.sns[owner].overlay.holds(&client.user, &client.node) {
                    held = true;
                } else if lacking.is_none() {
                    lacking = Some(owner);
                }
            }
            let home_moving = self.sns[home].draining || !self.sns[home].serving;
            if check_replicas && missing.is_none() && !home_moving && now.since(since) >= settle {
                missing = lacking.map(|owner| (index, home, owner));
            }
            if held {
                found += 1;
            }
            if held || self.partition.is_some() {
                self.unfindable_since[index] = None;
                continue;
            }
            let since = *self.unfindable_since[index].get_or_insert(now);
            let unfindable = now.since(since);
            if unfindable > self.figures.longest_unfindable {
                self.figures.longest_unfindable = unfindable;
            }
            if let Some(bound) = self.config.unfindable_bound {
                if unfindable > bound {
                    self.violations.push(format!(
                        "t={} online client {index} (home {home}) has been unfindable for {} ms, more than {} ms",
                        now.0,
                        unfindable.as_millis(),
                        bound.as_millis()
                    ));
                    self.unfindable_since[index] = None;
                }
            }
        }
        if let Some((index, home, owner)) = missing {
            self.report_missing_replica(index, home, owner);
        }
        (online, found)
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

    use crate::client::ClientState;
    use crate::config::SimConfig;
    use crate::world::World;
    use switchboard_engine::Time;

    #[test]
    fn a_replica_lost_after_the_membership_settled_is_reported_at_the_next_check() {
        let seed = 7;
        println!("seed {seed}");
        let mut config = SimConfig::sweep(seed);
        config.faults.clear();
        config.loss = 0.0;
        config.check_each_event = false;
        let mut world = World::new(config).unwrap();
        // Settled for long, and just after the chosen client's lease refresh (which re-publishes
        // its record everywhere and so would mend the hole below).
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
        let next = world.now() + world.config.check_every;
        let error = world
            .run_until(next)
            .expect_err("the lost replica is reported");
        assert!(
            error.contains(&format!(
                "owner {owner} lacks the record of client {client}"
            )),
            "{error}"
        );
    }
}
