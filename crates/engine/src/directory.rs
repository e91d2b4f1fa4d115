//! The directory a supernode keeps: registrations as leases, lookups by username, and watches
//! with presence events (DESIGN.md section 5).
//!
//! Soft state: a registration lives for its lease unless refreshed; nothing needs to be told
//! when a device vanishes. Inputs are `handle_*`-style calls with `now`; outputs are return
//! values and presence notices taken with [`Directory::poll_notice`]. Call
//! [`Directory::handle_timeout`] at [`Directory::next_timeout`] (or any time after) to expire
//! leases.
//!
//! Records arrive verified: the driver checks signatures and tickets (it holds the trust
//! anchor and the wall clock); the directory checks only what is its business: a device
//! registers itself, a user has at most [`MAX_RECORDS_PER_USER`] devices, a watcher watches
//! at most [`MAX_WATCHES_PER_CLIENT`] users.
//!
//! Cost: every operation is O(1) or O(devices of one user) in the number of registrations
//! (hash maps, and a BTreeMap for expiries), unlike a directory that scans (DESIGN.md
//! section 10: libp2p rendezvous' discover grows 15x from 1k to 100k registrations).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use switchboard_proto::limits::{MAX_RECORDS_PER_USER, MAX_WATCHES_PER_CLIENT};
use switchboard_proto::messages::PresenceEvent;
use switchboard_proto::{NodeId, Record, Username};

use crate::time::Time;

/// Tuning of a [`Directory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// The longest lease granted, whatever the record asks.
    pub max_lease: Duration,
    /// Presence notices kept for the driver before the oldest are dropped (presence is the
    /// first thing to shed under load, DESIGN.md section 6).
    pub max_pending_notices: usize,
}

impl Default for DirectoryConfig {
    /// Leases of at most 2 minutes: a killed device disappears from lookups within that, and a
    /// refresh every 40 s is negligible traffic. 65,536 pending notices: a burst of a thousand
    /// users going offline with 64 watchers each.
    fn default() -> Self {
        Self {
            max_lease: Duration::from_secs(120),
            max_pending_notices: 65_536,
        }
    }
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// A device may register only itself.
    #[error("record names device {record} but the connection is {client}")]
    NotYourRecord {
        /// The record's device.
        record: NodeId,
        /// The registering connection.
        client: NodeId,
    },
    /// The user has too many devices online.
    #[error("user has {MAX_RECORDS_PER_USER} devices online already")]
    TooManyDevices,
    /// An older record than the one held.
    #[error("record sequence {offered} is older than {held}")]
    Stale {
        /// The sequence offered.
        offered: u64,
        /// The sequence held.
        held: u64,
    },
}

/// A watch list would exceed [`MAX_WATCHES_PER_CLIENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a client may watch at most {MAX_WATCHES_PER_CLIENT} users")]
pub struct TooManyWatches;

/// A presence change for one watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceNotice {
    /// Who should be told.
    pub watcher: NodeId,
    /// What changed.
    pub event: PresenceEvent,
}

#[derive(Debug, Clone)]
struct Lease {
    record: Record,
    user: Username,
    expires: Time,
}

/// The directory; see the module doc.
#[derive(Debug)]
pub struct Directory {
    config: DirectoryConfig,
    leases: HashMap<NodeId, Lease>,
    devices: HashMap<Username, Vec<NodeId>>,
    expiries: BTreeSet<(Time, NodeId)>,
    watchers: HashMap<Username, HashSet<NodeId>>,
    watching: HashMap<NodeId, HashSet<Username>>,
    notices: VecDeque<PresenceNotice>,
    dropped_notices: u64,
    /// Bumped whenever the clients holding a lease change (a first registration, an
    /// unregistration, an expiry), not on a refresh or a re-registration: what
    /// [`Self::is_registered`] answers for any client can only have changed if this has.
    lease_changes: u64,
}

impl Directory {
    /// An empty directory.
    pub fn new(config: DirectoryConfig) -> Self {
        Self {
            config,
            leases: HashMap::new(),
            devices: HashMap::new(),
            expiries: BTreeSet::new(),
            watchers: HashMap::new(),
            watching: HashMap::new(),
            notices: VecDeque::new(),
            dropped_notices: 0,
            lease_changes: 0,
        }
    }

    /// Live registrations.
    pub fn registrations(&self) -> usize {
        self.leases.len()
    }

    /// Presence notices dropped because the driver did not take them in time.
    pub fn dropped_notices(&self) -> u64 {
        self.dropped_notices
    }

    /// Whether `client` holds a live lease.
    pub fn is_registered(&self, client: &NodeId) -> bool {
        self.leases.contains_key(client)
    }

    /// How many times the clients holding a lease changed (a refresh or a re-registration is
    /// no change): [`Self::is_registered`] can only answer otherwise for any client once this
    /// moved, so a caller that polls it (the simulator's checks) can keep its answers until
    /// then.
    pub fn lease_changes(&self) -> u64 {
        self.lease_changes
    }

    /// Registers (or replaces) `client`'s verified record; returns the lease granted.
    pub fn register(
        &mut self,
        now: Time,
        client: NodeId,
        record: Record,
    ) -> Result<Duration, RegisterError> {
        let body = record.body_unverified();
        let ticket = body.ticket.body_unverified();
        if ticket.node != client {
            return Err(RegisterError::NotYourRecord {
                record: ticket.node,
                client,
            });
        }
        let user = ticket.user.clone();
        let lease = Duration::from_secs(u64::from(body.ttl_secs)).min(self.config.max_lease);
        let offered = body.seq;
        if let Some(held) = self.leases.get(&client) {
            let held_seq = held.record.body_unverified().seq;
            if offered < held_seq {
                return Err(RegisterError::Stale {
                    offered,
                    held: held_seq,
                });
            }
        } else if self.devices.get(&user).map_or(0, Vec::len) >= MAX_RECORDS_PER_USER {
            return Err(RegisterError::TooManyDevices);
        }
        let was_online = self.is_online(&user);
        if let Some(old) = self.leases.remove(&client) {
            self.expiries.remove(&(old.expires, client));
            self.forget_device(&old.user, &client);
        } else {
            self.lease_changes += 1;
        }
        let expires = now + lease;
        self.expiries.insert((expires, client));
        // Room for one device, as most users have (a first push makes room for four).
        self.devices
            .entry(user.clone())
            .or_insert_with(|| Vec::with_capacity(1))
            .push(client);
        self.leases.insert(
            client,
            Lease {
                record,
                user: user.clone(),
                expires,
            },
        );
        if !was_online {
            self.notify(&user, true);
        }
        Ok(lease)
    }

    /// Extends `client`'s lease by its TTL; `None` if it holds none (it must register again).
    pub fn refresh(&mut self, now: Time, client: &NodeId) -> Option<Duration> {
        let lease = self.leases.get_mut(client)?;
        let ttl = Duration::from_secs(u64::from(lease.record.body_unverified().ttl_secs))
            .min(self.config.max_lease);
        self.expiries.remove(&(lease.expires, *client));
        lease.expires = now + ttl;
        self.expiries.insert((lease.expires, *client));
        Some(ttl)
    }

    /// Ends `client`'s lease now.
    pub fn unregister(&mut self, client: &NodeId) {
        if let Some(lease) = self.leases.remove(client) {
            self.lease_changes += 1;
            self.expiries.remove(&(lease.expires, *client));
            self.forget_device(&lease.user, client);
            if !self.is_online(&lease.user) {
                self.notify(&lease.user, false);
            }
        }
    }

    fn forget_device(&mut self, user: &Username, client: &NodeId) {
        if let Some(devices) = self.devices.get_mut(user) {
            devices.retain(|d| d != client);
            if devices.is_empty() {
                self.devices.remove(user);
            }
        }
    }

    /// The record `client` registered, if its lease is live.
    pub fn record_of(&self, client: &NodeId) -> Option<&Record> {
        self.leases.get(client).map(|lease| &lease.record)
    }

    /// The local clients watching `user`, ordered.
    pub fn watchers_of(&self, user: &Username) -> Vec<NodeId> {
        let mut watchers: Vec<NodeId> = self
            .watchers
            .get(user)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        watchers.sort_unstable();
        watchers
    }

    /// The users `client` watches, ordered.
    pub fn watched_by(&self, client: &NodeId) -> Vec<Username> {
        let mut users: Vec<Username> = self
            .watching
            .get(client)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        users.sort_unstable();
        users
    }

    /// Whether any device of `user` holds a lease.
    pub fn is_online(&self, user: &Username) -> bool {
        self.devices.get(user).is_some_and(|d| !d.is_empty())
    }

    /// The records of `user`'s online devices.
    pub fn lookup(&self, user: &Username) -> Vec<Record> {
        self.devices
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|device| self.leases.get(device))
            .map(|lease| lease.record.clone())
            .collect()
    }

    /// The records of `user`'s devices whose leases are live at `now`, even if
    /// [`Self::handle_timeout`] has not run since one ended.
    pub fn lookup_at(&self, now: Time, user: &Username) -> Vec<Record> {
        self.devices
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|device| self.leases.get(device))
            .filter(|lease| lease.expires > now)
            .map(|lease| lease.record.clone())
            .collect()
    }

    /// Adds `users` to `watcher`'s watch list; returns how many it watches now. The current
    /// presence of each newly watched user that is online is queued as a notice.
    pub fn watch(&mut self, watcher: NodeId, users: &[Username]) -> Result<usize, TooManyWatches> {
        let current = self.watching.get(&watcher).map_or(0, HashSet::len);
        let new: Vec<&Username> = users
            .iter()
            .filter(|u| {
                !self
                    .watching
                    .get(&watcher)
                    .is_some_and(|set| set.contains(*u))
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if current + new.len() > MAX_WATCHES_PER_CLIENT {
            return Err(TooManyWatches);
        }
        for user in new {
            self.watching
                .entry(watcher)
                .or_default()
                .insert(user.clone());
            self.watchers
                .entry(user.clone())
                .or_default()
                .insert(watcher);
            if self.is_online(user) {
                self.push_notice(PresenceNotice {
                    watcher,
                    event: PresenceEvent {
                        user: user.clone(),
                        online: true,
                    },
                });
            }
        }
        Ok(self.watching.get(&watcher).map_or(0, HashSet::len))
    }

    /// Removes `users` from `watcher`'s watch list; returns how many it watches now.
    pub fn unwatch(&mut self, watcher: &NodeId, users: &[Username]) -> usize {
        for user in users {
            if let Some(set) = self.watching.get_mut(watcher) {
                set.remove(user);
            }
            if let Some(set) = self.watchers.get_mut(user) {
                set.remove(watcher);
                if set.is_empty() {
                    self.watchers.remove(user);
                }
            }
        }
        let left = self.watching.get(watcher).map_or(0, HashSet::len);
        if left == 0 {
            self.watching.remove(watcher);
        }
        left
    }

    /// The connection of `client` ended: its watches end with it. Its lease stays until it
    /// expires (soft state) unless it unregistered.
    pub fn disconnected(&mut self, client: &NodeId) {
        let users: Vec<Username> = self
            .watching
            .get(client)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        self.unwatch(client, &users);
    }

    /// When [`Self::handle_timeout`] next has work.
    pub fn next_timeout(&self) -> Option<Time> {
        self.expiries.first().map(|(time, _)| *time)
    }

    /// Expires the leases due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some(&(expires, client)) = self.expiries.first() {
            if expires > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(lease) = self.leases.remove(&client) {
                self.lease_changes += 1;
                self.forget_device(&lease.user, &client);
                if !self.is_online(&lease.user) {
                    self.notify(&lease.user, false);
                }
            }
        }
    }

    /// The next presence notice for the driver to deliver.
    pub fn poll_notice(&mut self) -> Option<PresenceNotice> {
        self.notices.pop_front()
    }

    fn notify(&mut self, user: &Username, online: bool) {
        let watchers: Vec<NodeId> = self
            .watchers
            .get(user)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        for watcher in watchers {
            self.push_notice(PresenceNotice {
                watcher,
                event: PresenceEvent {
                    user: user.clone(),
                    online,
                },
            });
        }
    }

    fn push_notice(&mut self, notice: PresenceNotice) {
        if self.notices.len() >= self.config.max_pending_notices {
            self.notices.pop_front();
            self.dropped_notices += 1;
        }
        self.notices.push_back(notice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::{
        BoundedVec, RecordBody, Role, SecretKey, Ticket, TicketBody, UnixTime,
    };

    fn record(seed: u8, user: &str, seq: u64, ttl: u32) -> (NodeId, Record) {
        let auth = SecretKey::from_seed([200; 32]);
        let key = SecretKey::from_seed([seed; 32]);
        let ticket = Ticket::issue(
            &auth,
            TicketBody {
                user: Username::new(user).unwrap(),
                node: key.node_id(),
                role: Role::User,
                issued_at: UnixTime(1),
                expires_at: UnixTime(2),
                serial: u64::from(seed),
            },
        )
        .unwrap();
        let record = Record::sign(
            &key,
            RecordBody {
                ticket,
                endpoints: BoundedVec::try_from(vec!["127.0.0.1:9".parse().unwrap()]).unwrap(),
                reflexive: None,
                home: None,
                seq,
                issued_at: UnixTime(1),
                ttl_secs: ttl,
            },
        )
        .unwrap();
        (key.node_id(), record)
    }

    fn name(n: &str) -> Username {
        Username::new(n).unwrap()
    }

    fn at(secs: u64) -> Time {
        Time(secs * 1000)
    }

    fn notices(directory: &mut Directory) -> Vec<(NodeId, String, bool)> {
        std::iter::from_fn(|| directory.poll_notice())
            .map(|n| (n.watcher, n.event.user.to_string(), n.event.online))
            .collect()
    }

    #[test]
    fn given_a_registration_when_its_lease_runs_out_then_lookups_stop_finding_it() {
        let mut directory = Directory::new(DirectoryConfig::default());
        let (alice, record) = record(1, "alice", 1, 30);
        assert_eq!(
            directory.register(at(0), alice, record).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(directory.lookup(&name("alice")).len(), 1);
        assert_eq!(directory.next_timeout(), Some(at(30)));
        directory.handle_timeout(at(29));
        assert_eq!(directory.lookup(&name("alice")).len(), 1);
        directory.handle_timeout(at(30));
        assert!(directory.lookup(&name("alice")).is_empty());
        assert_eq!(directory.registrations(), 0);
    }

    #[test]
    fn the_lease_count_moves_when_a_client_gains_or_loses_its_lease_and_not_on_a_refresh() {
        let mut directory = Directory::new(DirectoryConfig::default());
        let (alice, first) = record(1, "alice", 1, 30);
        let (bob, bobs) = record(2, "bob", 1, 30);
        let (_, again) = record(1, "alice", 2, 30);
        let mut seen = directory.lease_changes();
        let mut moved = |directory: &Directory| {
            let moved = directory.lease_changes() != seen;
            seen = directory.lease_changes();
            moved
        };
        directory.register(at(0), alice, first).unwrap();
        assert!(moved(&directory), "a first registration");
        directory.register(at(0), bob, bobs).unwrap();
        assert!(moved(&directory), "another client");
        directory.register(at(10), alice, again).unwrap();
        directory.refresh(at(20), &alice).unwrap();
        assert!(
            !moved(&directory),
            "a re-registration and a refresh: the same clients"
        );
        directory.unregister(&bob);
        assert!(moved(&directory), "unregistered");
        directory.unregister(&bob);
        assert!(!moved(&directory), "nothing left to unregister");
        directory.handle_timeout(at(50));
        assert!(moved(&directory), "a lease ran out");
        assert!(!directory.is_registered(&alice));
        directory.handle_timeout(at(60));
        assert!(!moved(&directory), "nothing left to expire");
    }

    #[test]
    fn a_refresh_extends_the_lease() {
        let mut directory = Directory::new(DirectoryConfig::default());
        let (alice, record) = record(1, "alice", 1, 30);
        directory.register(at(0), alice, record).unwrap();
        assert_eq!(
            directory.refresh(at(20), &alice),
            Some(Duration::from_secs(30))
        );
        directory.handle_timeout(at(40));
        assert!(directory.is_registered(&alice));
        directory.handle_timeout(at(50));
        assert!(!directory.is_registered(&alice));
        assert_eq!(directory.refresh(at(51), &alice), None);
    }

    #[test]
    fn a_device_registers_only_itself_and_at_most_one_lease_per_key() {
        let mut directory = Directory::new(DirectoryConfig::default());
        let (alice, record_a) = record(1, "alice", 1, 30);
        let (bob, _) = record(2, "bob", 1, 30);
        assert!(matches!(
            directory.register(at(0), bob, record_a.clone()),
            Err(RegisterError::NotYourRecord { .. })
        ));
        directory.register(at(0), alice, record_a).unwrap();
        let (_, newer) = record(1, "alice", 2, 30);
        directory.register(at(1), alice, newer).unwrap();
        assert_eq!(directory.registrations(), 1);
        assert_eq!(directory.lookup(&name("alice")).len(), 1);
        let (_, older) = record(1, "alice", 1, 30);
        assert!(matches!(
            directory.register(at(2), alice, older),
            Err(RegisterError::Stale { .. })
        ));
    }

    #[test]
    fn a_user_has_at_most_the_device_limit() {
        let mut directory = Directory::new(DirectoryConfig::default());
        for seed in 0..MAX_RECORDS_PER_USER {
            let (device, r) = record(10 + seed as u8, "carol", 1, 30);
            directory.register(at(0), device, r).unwrap();
        }
        let (extra, r) = record(99, "carol", 1, 30);
        assert_eq!(
            directory.register(at(0), extra, r),
            Err(RegisterError::TooManyDevices)
        );
    }

    #[test]
    fn watchers_hear_online_and_offline_once_per_transition() {
        let mut directory = Directory::new(DirectoryConfig::default());
        let (watcher, _) = record(50, "watcher", 1, 30);
        directory.watch(watcher, &[name("alice")]).unwrap();
        let (phone, r1) = record(1, "alice", 1, 30);
        let (laptop, r2) = record(2, "alice", 1, 60);
        directory.register(at(0), phone, r1).unwrap();
        directory.register(at(0), laptop, r2).unwrap();
        assert_eq!(
            notices(&mut directory),
            vec![(watcher, "alice".into(), true)]
        );
        directory.unregister(&phone);
        assert!(
            notices(&mut directory).is_empty(),
            "the laptop is still online"
        );
        directory.handle_timeout(at(60));
        assert_eq!(
            notices(&mut directory),
            vec![(watcher, "alice".into(), false)]
        );
    }

    #[test]
    fn watching_an_online_user_reports_it_at_once_and_watches_are_bounded() {
        let mut directory = Directory::new(DirectoryConfig::default());
        let (alice, r) = record(1, "alice", 1, 30);
        directory.register(at(0), alice, r).unwrap();
        let (watcher, _) = record(50, "watcher", 1, 30);
        assert_eq!(
            directory.watch(watcher, &[name("alice"), name("alice")]),
            Ok(1)
        );
        assert_eq!(
            notices(&mut directory),
            vec![(watcher, "alice".into(), true)]
        );
        let many: Vec<Username> = (0..MAX_WATCHES_PER_CLIENT)
            .map(|i| name(&format!("u{i}")))
            .collect();
        assert_eq!(directory.watch(watcher, &many), Err(TooManyWatches));
        directory.disconnected(&watcher);
        directory.unregister(&alice);
        assert!(
            notices(&mut directory).is_empty(),
            "a gone watcher hears nothing"
        );
    }

    #[test]
    fn pending_notices_are_bounded_dropping_the_oldest() {
        let mut directory = Directory::new(DirectoryConfig {
            max_pending_notices: 2,
            ..DirectoryConfig::default()
        });
        let (watcher, _) = record(50, "watcher", 1, 30);
        let users: Vec<Username> = (0..3).map(|i| name(&format!("u{i}"))).collect();
        directory.watch(watcher, &users).unwrap();
        for (i, user) in users.iter().enumerate() {
            let (device, r) = record(i as u8, user.as_str(), 1, 30);
            directory.register(at(0), device, r).unwrap();
        }
        assert_eq!(notices(&mut directory).len(), 2);
        assert_eq!(directory.dropped_notices(), 1);
    }
}
