//! The overlay on a tiny in-memory network: records found through their owners from any
//! supernode, watches that survive the death of every owner of the watched user, and users
//! that stay findable while three of five members leave at once.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use switchboard_proto::bounded::BoundedVec;
use switchboard_proto::messages::{OverlayMessage, PresenceEvent, RecordKey};
use switchboard_proto::{
    NodeId, Record, RecordBody, Role, SecretKey, Ticket, TicketBody, UnixTime, Username,
};

use super::{LookupId, Overlay, OverlayConfig, OverlayOutput};
use crate::membership::{testkit, MemberInfo, MemberRole};
use crate::time::Time;

fn info(i: usize) -> MemberInfo {
    testkit::member(
        u8::try_from(i + 1).unwrap(),
        SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            4000 + u16::try_from(i).unwrap(),
        )),
        MemberRole::Supernode,
        100,
    )
}

/// `user`'s record with its own device key (`device` seeds it) at sequence `seq`, naming
/// supernode `home` as its home.
fn device_record(user: &str, device: u8, seq: u64, home: Option<usize>) -> Record {
    let auth = SecretKey::from_seed([1; 32]);
    let device = SecretKey::from_seed([device; 32]);
    let ticket = Ticket::issue(
        &auth,
        TicketBody {
            user: Username::new(user).unwrap(),
            node: device.node_id(),
            role: Role::User,
            issued_at: UnixTime(1_000),
            expires_at: UnixTime(2_000),
            serial: 1,
        },
    )
    .unwrap();
    Record::sign(
        &device,
        RecordBody {
            ticket,
            endpoints: BoundedVec::truncating(Vec::new()),
            reflexive: None,
            home: home.map(|i| switchboard_proto::PeerAddr {
                node: info(i).node,
                addr: info(i).addr,
            }),
            seq,
            issued_at: UnixTime(1_000),
            ttl_secs: 120,
        },
    )
    .unwrap()
}

fn record(user: &str) -> Record {
    device_record(user, 2, 1, None)
}

struct Net {
    overlays: Vec<Overlay>,
    down: Vec<bool>,
    queue: BTreeMap<(Time, u64), (usize, usize, OverlayMessage)>,
    seq: u64,
    now: Time,
    presence: Vec<Vec<PresenceEvent>>,
    found: BTreeMap<(usize, LookupId), Vec<Record>>,
}

impl Net {
    fn new(n: usize) -> Self {
        let mut overlays: Vec<Overlay> = (0..n)
            .map(|i| {
                Overlay::new(
                    Time::ZERO,
                    info(i),
                    // Mega tickets, so that a test may make one a (standby) mega.
                    testkit::signer_from(
                        &testkit::auth_key(),
                        u8::try_from(i + 1).unwrap(),
                        Role::Mega,
                    ),
                    testkit::anchor(),
                    OverlayConfig::default(),
                    i as u64,
                )
                .unwrap()
            })
            .collect();
        for overlay in overlays.iter_mut().skip(1) {
            overlay.join(Time::ZERO, info(0).node, info(0).addr);
        }
        Self {
            down: vec![false; n],
            overlays,
            queue: BTreeMap::new(),
            seq: 0,
            now: Time::ZERO,
            presence: vec![Vec::new(); n],
            found: BTreeMap::new(),
        }
    }

    fn index_of(node: &NodeId) -> usize {
        thread_local! {
            static NODES: Vec<NodeId> = (1..=64u8).map(|i| testkit::signer(i).key.node_id()).collect();
        }
        NODES.with(|nodes| nodes.iter().position(|n| n == node).unwrap_or(usize::MAX))
    }

    fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        loop {
            for i in 0..self.overlays.len() {
                if self.down[i] {
                    continue;
                }
                while let Some(output) = self.overlays[i].poll_output() {
                    match output {
                        OverlayOutput::Send { to, message, .. } => {
                            self.seq += 1;
                            let at = self.now + Duration::from_millis(5);
                            self.queue
                                .insert((at, self.seq), (i, Self::index_of(&to), message));
                        }
                        OverlayOutput::LookupDone { id, records, .. } => {
                            self.found.insert((i, id), records);
                        }
                        OverlayOutput::Presence(event) => self.presence[i].push(event),
                        OverlayOutput::Member(_) => {}
                    }
                }
            }
            let packet = self.queue.keys().next().map(|k| k.0);
            let timer = (0..self.overlays.len())
                .filter(|i| !self.down[*i])
                .filter_map(|i| self.overlays[i].next_timeout())
                .min();
            let Some(next) = [packet, timer].into_iter().flatten().min() else {
                self.now = end;
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let (from, to, message) = entry.remove();
                if self.down[to] || self.down[from] {
                    continue;
                }
                let from = info(from).node;
                let overlay = &mut self.overlays[to];
                match message {
                    OverlayMessage::Membership(p) => {
                        let _ = overlay.handle_membership(now, p.as_slice());
                    }
                    OverlayMessage::MembershipSync(p) => {
                        let _ = overlay.handle_membership_sync(now, from, p.as_slice());
                    }
                    OverlayMessage::Publish { records } => {
                        overlay.handle_publish(now, from, records.into_inner());
                    }
                    OverlayMessage::Withdraw { keys } => {
                        overlay.handle_withdraw(from, keys.into_inner())
                    }
                    OverlayMessage::Lookup { user } => overlay.handle_lookup_request(from, user),
                    OverlayMessage::LookupResult { user, records } => {
                        overlay.handle_lookup_result(from, &user, records.into_inner());
                    }
                    OverlayMessage::Subscribe { users } => {
                        overlay.handle_subscribe(from, users.into_inner());
                    }
                    OverlayMessage::Unsubscribe { users } => {
                        overlay.handle_unsubscribe(from, users.into_inner());
                    }
                    OverlayMessage::Presence(event) => overlay.handle_presence(from, event),
                    _ => {}
                }
            }
            for i in 0..self.overlays.len() {
                if !self.down[i] && self.overlays[i].next_timeout().is_some_and(|t| t <= now) {
                    self.overlays[i].handle_timeout(now);
                }
            }
        }
    }
}

#[test]
fn a_record_published_at_its_home_is_found_from_every_supernode_through_its_owners() {
    let mut net = Net::new(7);
    net.run_for(Duration::from_secs(5));
    let alice = record("alice");
    let now = net.now;
    net.overlays[2].publish(now, alice.clone(), Duration::from_secs(120));
    net.run_for(Duration::from_millis(200));
    let owners = net.overlays[0].owners_of(&Username::new("alice").unwrap());
    assert_eq!(owners.len(), 3);
    for owner in &owners {
        assert!(net.overlays[Net::index_of(owner)].holds(
            &Username::new("alice").unwrap(),
            &alice.body_unverified().ticket.body_unverified().node
        ));
    }
    let mut ids = Vec::new();
    for asker in 0..7 {
        let now = net.now;
        ids.push((
            asker,
            net.overlays[asker]
                .lookup(now, Username::new("alice").unwrap())
                .unwrap(),
        ));
    }
    net.run_for(Duration::from_millis(200));
    for key in ids {
        assert_eq!(
            net.found.get(&key),
            Some(&vec![alice.clone()]),
            "lookup from {}",
            key.0
        );
    }
}

#[test]
fn a_watch_survives_the_death_of_every_owner_of_the_watched_user() {
    let mut net = Net::new(9);
    net.run_for(Duration::from_secs(5));
    let user = Username::new("alice").unwrap();
    let alice = record("alice");
    let owners: Vec<usize> = net.overlays[0]
        .owners_of(&user)
        .iter()
        .map(Net::index_of)
        .collect();
    // The watcher and the home are supernodes that do not own alice.
    let mut others = (0..9).filter(|i| !owners.contains(i));
    let (watcher, home) = (others.next().unwrap(), others.next().unwrap());
    net.overlays[watcher].watch(&user);
    let now = net.now;
    net.overlays[home].publish(now, alice.clone(), Duration::from_secs(120));
    net.run_for(Duration::from_millis(500));
    assert_eq!(net.presence[watcher].last().map(|e| e.online), Some(true));

    // Every owner dies at once; the membership declares them down and the home re-publishes
    // to the new owners, where the watcher subscribes again.
    for owner in &owners {
        net.down[*owner] = true;
    }
    net.run_for(Duration::from_secs(15));
    let new_owners: Vec<usize> = net.overlays[watcher]
        .owners_of(&user)
        .iter()
        .map(Net::index_of)
        .collect();
    assert!(
        new_owners.iter().all(|o| !owners.contains(o)),
        "{new_owners:?}"
    );

    // Alice leaves: only the new owners can tell the watcher.
    let now = net.now;
    let key = RecordKey {
        user: user.clone(),
        node: alice.body_unverified().ticket.body_unverified().node,
    };
    net.overlays[home].unpublish(now, &key);
    net.run_for(Duration::from_millis(500));
    assert_eq!(
        net.presence[watcher].last().map(|e| e.online),
        Some(false),
        "{:?}",
        net.presence[watcher]
    );
}

// Hostile supernodes: each test below plays one overlay peer that lies, with messages it could
// really send (it holds a valid supernode ticket, so the driver accepts its frames).

/// A supernode of `net` that is neither in `avoid` nor an owner of `user`.
fn bystander(net: &Net, user: &Username, avoid: &[usize]) -> usize {
    let owners: Vec<usize> = net.overlays[0]
        .owners_of(user)
        .iter()
        .map(Net::index_of)
        .collect();
    (0..net.overlays.len())
        .find(|i| !owners.contains(i) && !avoid.contains(i))
        .unwrap()
}

#[test]
fn a_replayed_publication_does_not_make_its_sender_the_home_so_its_withdrawal_hides_nobody() {
    let mut net = Net::new(7);
    net.run_for(Duration::from_secs(5));
    let user = Username::new("alice").unwrap();
    let alice = record("alice");
    let device = alice.body_unverified().ticket.body_unverified().node;
    let home = bystander(&net, &user, &[]);
    let now = net.now;
    net.overlays[home].publish(now, alice.clone(), Duration::from_secs(120));
    net.run_for(Duration::from_millis(200));
    let owner = Net::index_of(&net.overlays[0].owners_of(&user)[0]);
    assert!(net.overlays[owner].holds(&user, &device));

    // Mallory's supernode saw the record (in a lookup answer) and plays it back, then
    // withdraws it, hoping to hide alice.
    let mallory = bystander(&net, &user, &[home]);
    let key = RecordKey {
        user: user.clone(),
        node: device,
    };
    let refused = net.overlays[owner].stats().refused_records;
    let now = net.now;
    net.overlays[owner].handle_withdraw(info(mallory).node, vec![key.clone()]);
    net.overlays[owner].handle_publish(now, info(mallory).node, vec![alice.clone()]);
    net.overlays[owner].handle_withdraw(info(mallory).node, vec![key]);
    assert!(
        net.overlays[owner].holds(&user, &device),
        "a replay and a withdrawal from a supernode that is not the home removed the record"
    );
    assert_eq!(net.overlays[owner].stats().refused_records, refused + 1);

    // The real home still refreshes it, and lookups still find it.
    let asker = bystander(&net, &user, &[home, mallory]);
    let now = net.now;
    let id = net.overlays[asker].lookup(now, user).unwrap();
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.found.get(&(asker, id)), Some(&vec![alice]));
}

#[test]
fn a_lookup_answer_carrying_another_users_record_does_not_answer_the_lookup() {
    let mut net = Net::new(7);
    net.run_for(Duration::from_secs(5));
    let user = Username::new("alice").unwrap();
    let asker = bystander(&net, &user, &[]);
    let now = net.now;
    let id = net.overlays[asker].lookup(now, user.clone()).unwrap();
    // An owner that turned hostile answers first, with a verified record of mallory's.
    let hostile_owner = net.overlays[asker].owners_of(&user)[0];
    net.overlays[asker].handle_lookup_result(hostile_owner, &user, vec![record("mallory")]);
    assert!(net.overlays[asker].stats().refused_records >= 1);
    net.run_for(Duration::from_millis(200));
    // Alice is online nowhere: the honest owners' empty answers are the result.
    assert_eq!(net.found.get(&(asker, id)), Some(&Vec::new()));
}

#[test]
fn presence_from_a_supernode_that_owns_no_record_of_the_user_is_dropped() {
    let mut net = Net::new(7);
    net.run_for(Duration::from_secs(5));
    let user = Username::new("alice").unwrap();
    let watcher = bystander(&net, &user, &[]);
    net.overlays[watcher].watch(&user);
    net.run_for(Duration::from_millis(200));
    assert_eq!(
        net.presence[watcher].last().map(|e| e.online),
        Some(false),
        "the owners report alice offline"
    );
    // Mallory's supernode, no owner of alice, says she came online.
    let mallory = bystander(&net, &user, &[watcher]);
    net.overlays[watcher].handle_presence(
        info(mallory).node,
        PresenceEvent {
            user: user.clone(),
            online: true,
        },
    );
    net.run_for(Duration::from_millis(200));
    assert!(
        net.presence[watcher].iter().all(|e| !e.online),
        "{:?}",
        net.presence[watcher]
    );
    assert_eq!(net.overlays[watcher].stats().refused_presence, 1);
}

#[test]
fn a_standby_mega_owns_no_user_until_it_steps_in_and_none_after_it_steps_back() {
    let mut net = Net::new(4);
    net.run_for(Duration::from_secs(5));
    let mega = info(3).node;
    let users: Vec<Username> = (0..200)
        .map(|i| Username::new(&format!("user{i}")).unwrap())
        .collect();
    let owned_by_mega = |net: &Net| {
        users
            .iter()
            .filter(|u| net.overlays[0].owners_of(u).contains(&mega))
            .count()
    };
    assert!(owned_by_mega(&net) > 0, "as a normal member it owns some");
    let now = net.now;
    net.overlays[3]
        .change_role(now, MemberRole::Standby)
        .unwrap();
    net.run_for(Duration::from_secs(5));
    assert_eq!(owned_by_mega(&net), 0, "standing by, it owns none");
    let now = net.now;
    net.overlays[3].change_role(now, MemberRole::Mega).unwrap();
    net.run_for(Duration::from_secs(5));
    assert!(
        owned_by_mega(&net) > 0,
        "stepped in, it owns its share again"
    );
}

#[test]
fn an_owner_seen_under_a_newer_generation_is_given_its_records_again() {
    let mut net = Net::new(4);
    net.run_for(Duration::from_secs(5));
    let alice = record("alice");
    let now = net.now;
    net.overlays[2].publish(now, alice, Duration::from_secs(120));
    net.run_for(Duration::from_millis(200));
    let user = Username::new("alice").unwrap();
    let owner = net.overlays[2]
        .owners_of(&user)
        .into_iter()
        .map(|node| Net::index_of(&node))
        .find(|i| *i != 2)
        .unwrap();
    // The owner restarted (its records gone) and says so under its next generation.
    let restarted = MemberInfo::signed(
        &testkit::signer_from(
            &testkit::auth_key(),
            u8::try_from(owner + 1).unwrap(),
            Role::Mega,
        ),
        info(owner).addr,
        MemberRole::Supernode,
        100,
        2,
    )
    .unwrap();
    let before = net.overlays[2].stats().republished;
    let now = net.now;
    net.overlays[2]
        .handle_membership_sync(now, restarted.node, &testkit::sync_sample(vec![restarted]))
        .unwrap();
    assert_eq!(net.overlays[2].stats().republished, before + 1);
    // A member that is merely still alive changes nothing.
    let now = net.now;
    net.overlays[2]
        .handle_membership_sync(now, info(1).node, &testkit::sync_sample(vec![info(1)]))
        .unwrap();
    assert_eq!(net.overlays[2].stats().republished, before + 1);
}

/// Five supernodes, 60 users with a device each; supernodes 2, 3 and 4 (promoted ones) step
/// down together: each leaves the overlay, drains for a moment and stops. The users are homed
/// on the two that stay, or on the three that leave (then each moves to one that stays and
/// registers a newer record there `moved_after` the leave, as a redirected client does).
/// Returns the lookups, asked ten times a second from both that stay, that found nothing.
fn lookups_missed_while_three_of_five_leave(homed_on_leavers: bool) -> Vec<String> {
    let mut net = Net::new(5);
    net.run_for(Duration::from_secs(5));
    let users: Vec<(Username, usize)> = (0..60)
        .map(|i| {
            let home = if homed_on_leavers { 2 + i % 3 } else { i % 2 };
            (Username::new(&format!("p{i:02}")).unwrap(), home)
        })
        .collect();
    let device = |i: usize| 10 + u8::try_from(i).unwrap();
    for (i, (user, home)) in users.iter().enumerate() {
        let now = net.now;
        let record = device_record(user.as_str(), device(i), 1, Some(*home));
        net.overlays[*home].publish(now, record, Duration::from_secs(120));
    }
    net.run_for(Duration::from_millis(500));
    let only_leavers = users
        .iter()
        .filter(|(u, _)| {
            net.overlays[0]
                .owners_of(u)
                .iter()
                .all(|o| Net::index_of(o) >= 2)
        })
        .count();
    println!("{only_leavers} users owned by the leavers alone");
    assert!(only_leavers > 0, "the scenario needs such users");
    let now = net.now;
    for leaver in 2..5 {
        net.overlays[leaver].leave(now);
    }
    net.run_for(Duration::from_millis(20));
    for leaver in 2..5 {
        net.down[leaver] = true;
    }
    let mut asked = Vec::new();
    for round in 0..40 {
        if homed_on_leavers && round == 5 {
            for (i, (user, _)) in users.iter().enumerate() {
                let now = net.now;
                let home = i % 2;
                let record = device_record(user.as_str(), device(i), 2, Some(home));
                net.overlays[home].publish(now, record, Duration::from_secs(120));
            }
        }
        for asker in 0..2 {
            for (user, _) in &users {
                let now = net.now;
                let id = net.overlays[asker].lookup(now, user.clone()).unwrap();
                asked.push((asker, id, user.clone()));
            }
        }
        net.run_for(Duration::from_millis(100));
    }
    net.run_for(Duration::from_secs(2));
    asked
        .iter()
        .filter(|(asker, id, _)| net.found.get(&(*asker, *id)).is_none_or(Vec::is_empty))
        .map(|(asker, _, user)| format!("{user} from {asker}"))
        .collect()
}

#[test]
fn when_three_of_five_members_leave_at_once_every_user_homed_on_the_others_stays_findable() {
    assert_eq!(
        lookups_missed_while_three_of_five_leave(false),
        Vec::<String>::new()
    );
}

#[test]
fn when_three_of_five_members_leave_at_once_their_own_users_stay_findable_until_they_moved() {
    assert_eq!(
        lookups_missed_while_three_of_five_leave(true),
        Vec::<String>::new()
    );
}
