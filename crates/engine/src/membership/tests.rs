//! Membership tests: a tiny in-memory network (convergence, detection, load gossip, local
//! health against a slow observer) and properties of the decoders.

mod scenarios {
    use super::super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    fn info(i: u8) -> MemberInfo {
        testkit::member(
            i + 1,
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000 + u16::from(i))),
            MemberRole::Supernode,
            100,
        )
    }

    /// Which test member `node` is (node keys are made from their index + 1).
    fn index_of(node: &NodeId) -> usize {
        thread_local! {
            static NODES: Vec<NodeId> =
                (1..=32u8).map(|i| testkit::signer(i).key.node_id()).collect();
        }
        NODES.with(|nodes| nodes.iter().position(|n| n == node).unwrap_or(usize::MAX))
    }

    /// A packet on its way: from, to, which kind, the bytes.
    type Packet = (usize, usize, PacketKind, Vec<u8>);

    /// A tiny in-memory network: packets arrive `delay` later (`slow` gets `slow_delay`
    /// on everything it receives), crashed members drop everything.
    struct Net {
        members: Vec<Membership>,
        crashed: Vec<bool>,
        in_flight: BTreeMap<(Time, u64), Packet>,
        seq: u64,
        slow: Option<(usize, Duration)>,
        downs_of_healthy: u64,
        /// Packets each member sent.
        sent: Vec<u64>,
        now: Time,
    }

    impl Net {
        fn new(n: u8, lifeguard: bool) -> Self {
            let mut members: Vec<Membership> = (0..n)
                .map(|i| {
                    Membership::new(
                        Time::ZERO,
                        info(i),
                        testkit::signer(i + 1),
                        testkit::anchor(),
                        MembershipConfig::default(),
                        u64::from(i),
                    )
                    .unwrap()
                })
                .collect();
            if !lifeguard {
                members
                    .iter_mut()
                    .for_each(Membership::disable_local_health);
            }
            for m in members.iter_mut().skip(1) {
                m.join(Time::ZERO, info(0).node, info(0).addr);
            }
            Self {
                crashed: vec![false; members.len()],
                members,
                in_flight: BTreeMap::new(),
                seq: 0,
                slow: None,
                downs_of_healthy: 0,
                sent: vec![0; usize::from(n)],
                now: Time::ZERO,
            }
        }

        /// `n` members that start as a formed overlay ([`Membership::restore`]), no seed.
        fn formed(n: u8) -> Self {
            let mut net = Self::new(n, true);
            let infos: Vec<MemberInfo> = (0..n).map(info).collect();
            for (i, m) in net.members.iter_mut().enumerate() {
                *m = Membership::new(
                    Time::ZERO,
                    info(u8::try_from(i).unwrap()),
                    testkit::signer(u8::try_from(i).unwrap() + 1),
                    testkit::anchor(),
                    MembershipConfig::default(),
                    u64::try_from(i).unwrap(),
                )
                .unwrap();
                m.restore(Time::ZERO, infos.iter().cloned());
            }
            net
        }

        fn run_until(&mut self, end: Time) {
            let mut now = self.now;
            loop {
                for i in 0..self.members.len() {
                    if self.crashed[i] {
                        continue;
                    }
                    while let Some(out) = self.members[i].poll_send() {
                        let to = index_of(&out.to.node);
                        let delay = match self.slow {
                            Some((slow, d)) if slow == to => d,
                            _ => Duration::from_millis(5),
                        };
                        self.seq += 1;
                        self.sent[i] += 1;
                        self.in_flight
                            .insert((now + delay, self.seq), (i, to, out.kind, out.payload));
                    }
                    while let Some(event) = self.members[i].poll_event() {
                        if let MemberEvent::Down(m) = event {
                            let who = index_of(&m.node);
                            // The slow member itself really is unresponsive; the others are
                            // the healthy ones.
                            if !self.crashed[who] && self.slow.is_none_or(|(slow, _)| slow != who) {
                                self.downs_of_healthy += 1;
                            }
                        }
                    }
                }
                let next_packet = self.in_flight.keys().next().map(|k| k.0);
                let next_timer = (0..self.members.len())
                    .filter(|i| !self.crashed[*i])
                    .filter_map(|i| self.members[i].next_timeout())
                    .min();
                let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
                    return;
                };
                if next > end {
                    self.now = end;
                    return;
                }
                now = next;
                self.now = now;
                while let Some(entry) = self.in_flight.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let (from, to, kind, payload) = entry.remove();
                    if !self.crashed[to] {
                        let _ = match kind {
                            PacketKind::Swim => self.members[to].handle_packet(now, &payload),
                            PacketKind::Sync => {
                                let from = self.members[from].me().node;
                                self.members[to].handle_sync(now, from, &payload)
                            }
                        };
                    }
                }
                for i in 0..self.members.len() {
                    if !self.crashed[i] && self.members[i].next_timeout().is_some_and(|t| t <= now)
                    {
                        self.members[i].handle_timeout(now);
                    }
                }
            }
        }
    }

    #[test]
    fn five_members_converge_and_agree_that_a_crashed_one_is_down_within_seconds() {
        let mut net = Net::new(5, true);
        net.run_until(Time(5_000));
        assert!(
            net.members.iter().all(|m| m.live_count() == 5),
            "joined through one seed"
        );
        net.crashed[3] = true;
        net.run_until(Time(5_000 + 8_000));
        for (i, m) in net.members.iter().enumerate() {
            if i != 3 {
                assert_eq!(m.live_count(), 4, "member {i} still counts the crashed one");
                assert!(!m.is_live(&info(3).node));
                let digest = m
                    .live()
                    .map(|l| l.node)
                    .chain(std::iter::once(m.me().node))
                    .fold(0, |acc, node| acc ^ node_prefix(&node));
                assert_eq!(m.view_digest(), digest, "kept in step with the view");
            }
        }
        assert_eq!(net.downs_of_healthy, 0);
    }

    #[test]
    fn a_member_that_leaves_is_out_of_every_view_before_a_probe_could_find_it_gone_and_stays_out() {
        let mut net = Net::new(5, true);
        net.run_until(Time(5_000));
        assert!(net.members.iter().all(|m| m.live_count() == 5));
        net.members[3].leave(Time(5_000));
        // Still running (a draining daemon): what it does next must not bring it back.
        net.members[3].report_load(Time(5_000), 90);
        net.members[3]
            .change_role(Time(5_000), MemberRole::Mega)
            .unwrap();
        net.members[3].join(Time(5_000), info(0).node, info(0).addr);
        net.run_until(Time(5_000));
        let sent_leaving = net.sent[3];
        // A crash takes a probe period, the probe's timeouts and `suspect_to_down_after` (3 s)
        // to be declared; a leave is spread by gossip.
        net.run_until(Time(5_000 + 2_000));
        for (i, m) in net.members.iter().enumerate() {
            if i != 3 {
                assert!(
                    !m.is_live(&info(3).node),
                    "member {i} still counts the leaver"
                );
            }
        }
        net.run_until(Time(5_000 + 30_000));
        for (i, m) in net.members.iter().enumerate() {
            if i != 3 {
                assert_eq!(m.live_count(), 4, "member {i} took the leaver back");
            }
        }
        // Nothing after its goodbye: no syncs, load reports or announcements.
        assert_eq!(net.sent[3], sent_leaving);
    }

    #[test]
    fn members_restored_as_a_formed_overlay_are_live_at_once_gossip_none_of_it_and_detect_a_crash()
    {
        let mut net = Net::formed(5);
        for m in &net.members {
            assert_eq!(m.live_count(), 5);
            assert_eq!(m.stats().updates_backlog, 0, "nothing to tell: all know it");
        }
        net.run_until(Time(5_000));
        assert!(net.members.iter().all(|m| m.stats().updates_backlog == 0));
        assert!(net.members.iter().all(|m| m.live_count() == 5));
        net.crashed[3] = true;
        net.run_until(Time(5_000 + 8_000));
        for (i, m) in net.members.iter().enumerate() {
            if i != 3 {
                assert!(!m.is_live(&info(3).node), "member {i}");
            }
        }
        assert_eq!(net.downs_of_healthy, 0);
    }

    #[test]
    fn a_joining_member_gossips_its_load_and_one_handed_a_formed_overlay_does_not() {
        let joined = Net::new(3, true);
        // Members 1 and 2 joined through member 0; member 0 joined nobody.
        let backlogs: Vec<u64> = joined
            .members
            .iter()
            .map(|m| m.stats().loads_backlog)
            .collect();
        assert_eq!(backlogs, vec![0, 1, 1]);
        let formed = Net::formed(3);
        assert!(formed.members.iter().all(|m| m.stats().loads_backlog == 0));
        // Its load still travels, in its syncs.
        let mut formed = formed;
        formed.run_until(Time(12_000));
        for m in &formed.members {
            for other in 0..3u8 {
                assert_eq!(m.load_of(&info(other).node), Some(0), "member {other}");
            }
        }
    }

    #[test]
    fn a_restored_statement_that_does_not_verify_is_left_out_and_counted() {
        let mut m = Net::new(1, true).members.remove(0);
        let honest = info(1);
        let stolen = MemberInfo::from(Statement {
            proof: info(2).proof.clone(),
            ..info(3).to_statement()
        });
        m.restore(Time::ZERO, [honest.clone(), stolen.clone()]);
        assert!(m.is_live(&honest.node));
        assert!(!m.is_live(&stolen.node));
        assert_eq!(m.stats().statements_refused, 1);
    }

    #[test]
    fn loads_are_gossiped_to_every_member() {
        let mut net = Net::new(4, true);
        net.run_until(Time(3_000));
        net.members[2].report_load(Time(3_000), 77);
        net.run_until(Time(6_000));
        for m in &net.members {
            assert_eq!(m.load_of(&info(2).node), Some(77));
        }
    }

    /// Runs `net` to `end` in steps of `step`, calling `each` after every step.
    fn run_sampling(net: &mut Net, end: Time, step: Duration, mut each: impl FnMut(&Net)) {
        let mut at = net.now;
        while at < end {
            at = (at + step).min(end);
            net.run_until(at);
            each(net);
        }
    }

    #[test]
    fn a_load_that_holds_still_is_gossiped_once_and_then_leaves_every_backlog_for_good() {
        let mut net = Net::new(4, true);
        net.run_until(Time(20_000));
        let sent_before: u64 = net.members.iter().map(|m| m.stats().packets_sent).sum();
        let mut backlog_seen = 0;
        run_sampling(&mut net, Time(140_000), Duration::from_millis(100), |net| {
            backlog_seen += net
                .members
                .iter()
                .map(|m| m.stats().loads_backlog)
                .sum::<u64>();
        });
        assert_eq!(
            backlog_seen, 0,
            "no load report gossiped again in two minutes"
        );
        assert!(
            net.members.iter().all(|m| m.load_seq == 1),
            "never re-signed"
        );
        let sent: u64 = net
            .members
            .iter()
            .map(|m| m.stats().packets_sent)
            .sum::<u64>()
            - sent_before;
        // A probe and its ack each second, a sync every five and its answer, an announce every
        // ten: about 2.5 packets a second per member once nothing is gossiped (15 more while
        // anything is).
        let per_member_per_sec = sent as f64 / 4.0 / 120.0;
        assert!(
            per_member_per_sec < 3.0,
            "{per_member_per_sec:.2} packets a second per member"
        );
    }

    #[test]
    fn a_load_change_below_a_step_is_not_gossiped_but_reaches_every_member_in_the_syncs() {
        let mut net = Net::new(4, true);
        net.run_until(Time(10_000));
        // Capacity 100, a step of 10 clients: 9 is below it.
        net.members[2].report_load(Time(10_000), 9);
        net.run_until(Time(11_000));
        assert_eq!(net.members[2].stats().loads_backlog, 0, "not gossiped");
        let seen: Vec<Option<u32>> = net
            .members
            .iter()
            .map(|m| m.load_of(&info(2).node))
            .collect();
        assert_eq!(seen, [Some(0), Some(0), Some(9), Some(0)]);
        net.run_until(Time(60_000));
        for (i, m) in net.members.iter().enumerate() {
            assert_eq!(m.load_of(&info(2).node), Some(9), "member {i}");
        }
        assert!(net.members.iter().any(|m| m.stats().loads_synced > 0));
    }

    #[test]
    fn a_load_rising_steadily_across_syncs_is_gossiped_at_every_step() {
        let mut net = Net::new(4, true);
        net.run_until(Time(10_000));
        // One more client every 500 ms for 30 s (a step of 10 every 5 s, the sync period): the
        // others never fall a step and a second behind.
        for i in 1..=60u32 {
            let at = Time(10_000 + u64::from(i) * 500);
            net.run_until(at);
            net.members[1].report_load(at, i);
            if i % 10 == 5 {
                net.run_until(at + Duration::from_millis(1_000));
                for (j, m) in net.members.iter().enumerate() {
                    let known = m.load_of(&info(1).node).unwrap_or(0);
                    assert!(known + 10 + 2 >= i, "member {j} knows {known} at {i}");
                }
            }
        }
    }

    #[test]
    fn a_load_step_is_gossiped_once_per_minimum_interval_and_a_held_back_one_goes_when_due() {
        let mut net = Net::new(4, true);
        net.run_until(Time(10_000));
        net.members[1].report_load(Time(10_000), 20);
        net.run_until(Time(11_000));
        assert!(net
            .members
            .iter()
            .all(|m| m.load_of(&info(1).node) == Some(20)));
        // Another step 1 s later waits for the 5 s minimum interval, then goes by gossip.
        net.members[1].report_load(Time(11_000), 40);
        net.run_until(Time(14_900));
        assert!(net
            .members
            .iter()
            .any(|m| m.load_of(&info(1).node) == Some(20)));
        net.run_until(Time(16_000));
        assert!(net
            .members
            .iter()
            .all(|m| m.load_of(&info(1).node) == Some(40)));
        assert_eq!(net.members[1].load_seq, 3);
    }

    #[test]
    fn a_load_report_forged_for_another_member_is_refused_and_counted_everywhere() {
        let mut net = Net::new(4, true);
        net.run_until(Time(6_000));
        net.members[2].report_load(Time(6_000), 50);
        net.run_until(Time(9_000));
        // Member 3 gossips a report for member 2 with the highest sequence (it would freeze
        // 2's load for good), signed with its own key, and one for a node that is no member.
        let attacker = testkit::signer(4);
        for node in [info(2).node, testkit::signer(30).key.node_id()] {
            let forged = testkit::forged_load(&attacker.key, node, u64::MAX, 9_999);
            net.members[3].inject_broadcast(&forged);
        }
        net.run_until(Time(12_000));
        net.members[2].report_load(Time(12_000), 70);
        net.run_until(Time(15_000));
        for (i, m) in net.members.iter().enumerate().take(3) {
            assert_eq!(m.load_of(&info(2).node), Some(70), "member {i}");
            assert_eq!(m.load_of(&testkit::signer(30).key.node_id()), None);
        }
        let refused: u64 = net.members.iter().map(|m| m.stats().loads_refused).sum();
        assert!(refused > 0, "the forged report was refused and counted");
    }

    #[test]
    fn a_slow_observer_evicts_fewer_healthy_members_with_local_health_than_without() {
        // Member 0 receives everything 3.5 s late (a stalled, overloaded observer): its probes
        // time out and its suspicions expire before the refutations reach it, although
        // everyone is healthy.
        let run = |lifeguard: bool| {
            let mut net = Net::new(6, lifeguard);
            net.run_until(Time(3_000));
            net.slow = Some((0, Duration::from_millis(3_500)));
            net.run_until(Time(63_000));
            (net.downs_of_healthy, net.members[0].local_health())
        };
        let (with, health) = run(true);
        let (without, _) = run(false);
        println!("healthy members declared down: {with} with local health (score {health}), {without} without");
        assert!(without > 0, "the scenario must provoke false suspicions");
        assert!(with < without, "{with} with vs {without} without");
    }
}

mod properties {
    use super::super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
    }

    fn me() -> MemberInfo {
        testkit::member(9, addr(7710), MemberRole::Supernode, 10)
    }

    fn membership() -> Membership {
        Membership::new(
            Time::ZERO,
            me(),
            testkit::signer(9),
            testkit::anchor(),
            MembershipConfig::default(),
            3,
        )
        .unwrap()
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_a_refused_packet_changes_nothing(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048)
        ) {
            let mut membership = membership();
            if membership.handle_packet(Time(1), &bytes).is_err() {
                prop_assert_eq!(membership.live_count(), 1);
            }
            if membership.handle_sync(Time(2), peer(), &bytes).is_err() {
                prop_assert!(membership.live_count() <= 2);
            }
            membership.handle_timeout(Time(5_000));
        }

        #[test]
        fn a_sync_sample_teaches_every_member_it_names_and_cannot_resurrect_the_dead(
            count in 1usize..40
        ) {
            let mut membership = membership();
            let sample: Vec<foca::Member<MemberInfo>> = (0..count)
                .map(|i| {
                    let seed = u8::try_from(i + 100).unwrap();
                    foca::Member::alive(testkit::member(
                        seed,
                        addr(8000 + u16::from(seed)),
                        MemberRole::Supernode,
                        10,
                    ))
                })
                .collect();
            let payload = testkit::sync_payload(sample.clone(), Vec::new());
            membership.handle_sync(Time(1), peer(), &payload).unwrap();
            prop_assert_eq!(membership.live_count(), count + 1);
            // The first one dies; a sample that knows it brings the news.
            let dead = foca::Member::new(sample[0].id().clone(), 0, foca::State::Down);
            membership.handle_sync(Time(2), peer(), &testkit::sync_payload(vec![dead], Vec::new())).unwrap();
            prop_assert_eq!(membership.live_count(), count);
            // A stale sample naming it alive changes nothing.
            membership.handle_sync(Time(3), peer(), &payload).unwrap();
            prop_assert_eq!(membership.live_count(), count);
        }
    }

    /// A peer that sent a sync whose answer the test does not look at.
    fn peer() -> NodeId {
        testkit::signer(99).key.node_id()
    }

    /// The syncs `membership` sends now: to whom, and the sample's first member.
    fn syncs_sent(membership: &mut Membership) -> Vec<(NodeId, NodeId)> {
        std::iter::from_fn(|| membership.poll_send())
            .filter(|out| out.kind == PacketKind::Sync)
            .map(|out| {
                let sample: super::super::sync::SyncSample =
                    postcard::from_bytes(&out.payload).unwrap();
                (out.to.node, sample.members[0].id().node)
            })
            .collect()
    }

    #[test]
    fn a_sync_is_answered_to_the_peer_that_sent_it_once_a_period() {
        let mut membership = membership();
        let period = MembershipConfig::default().sync_period;
        let me = membership.me().node;
        let sender = testkit::member(10, addr(8010), MemberRole::Supernode, 10);
        let other = testkit::member(11, addr(8011), MemberRole::Supernode, 10);
        let both = testkit::sync_payload(
            vec![
                foca::Member::alive(sender.clone()),
                foca::Member::alive(other.clone()),
            ],
            Vec::new(),
        );
        membership.handle_sync(Time(1), sender.node, &both).unwrap();
        assert_eq!(syncs_sent(&mut membership), vec![(sender.node, me)]);
        // Within the period: neither the sender's next sync nor its answer to ours.
        membership.handle_sync(Time(2), sender.node, &both).unwrap();
        assert_eq!(syncs_sent(&mut membership), Vec::new());
        // Another peer's sync is answered all the same, to that peer, whoever its sample
        // names first.
        membership.handle_sync(Time(3), other.node, &both).unwrap();
        assert_eq!(syncs_sent(&mut membership), vec![(other.node, me)]);
        // A period later the sender is answered again.
        let later = Time(1) + period;
        membership.handle_sync(later, sender.node, &both).unwrap();
        assert_eq!(syncs_sent(&mut membership), vec![(sender.node, me)]);
        // A peer that is not a live member here is not answered.
        let stranger = testkit::member(12, addr(8012), MemberRole::Supernode, 10);
        membership
            .handle_sync(later + period, stranger.node, &both)
            .unwrap();
        assert_eq!(syncs_sent(&mut membership), Vec::new());
    }

    #[test]
    fn forged_sync_entries_change_nothing_and_are_counted() {
        let mut membership = membership();
        let honest = testkit::member(10, addr(8010), MemberRole::Supernode, 10);
        membership
            .handle_sync(Time(1), peer(), &testkit::sync_sample(vec![honest.clone()]))
            .unwrap();
        assert_eq!(membership.live_count(), 2);

        // Member 10 moved to a dead address with a generation it could never beat, its proof
        // kept: the signature no longer matches.
        let moved = MemberInfo::from(Statement {
            addr: addr(1),
            generation: u64::MAX,
            ..honest.to_statement()
        });
        // Twenty made-up node ids, each with a key of its own but the attacker's ticket.
        let attacker = testkit::member(11, addr(8011), MemberRole::Supernode, 10);
        let made_up = (0..20u8).map(|i| {
            let fresh = testkit::member(
                40 + i,
                addr(9000 + u16::from(i)),
                MemberRole::Supernode,
                10_000,
            );
            MemberInfo::from(Statement {
                proof: attacker.proof.clone(),
                ..fresh.to_statement()
            })
        });
        // A node whose ticket another auth-server signed.
        let foreign = {
            let forger = switchboard_proto::SecretKey::from_seed([77; 32]);
            let signer = testkit::signer_from(&forger, 12, switchboard_proto::Role::Supernode);
            MemberInfo::signed(&signer, addr(8012), MemberRole::Supernode, 10, 1).unwrap()
        };
        let forged = testkit::sync_sample(
            std::iter::once(moved)
                .chain(made_up)
                .chain(std::iter::once(foreign))
                .collect(),
        );
        membership.handle_sync(Time(2), peer(), &forged).unwrap();
        assert_eq!(membership.live_count(), 2, "no made-up member got in");
        assert_eq!(
            membership.member(&honest.node),
            Some(&honest),
            "member 10 unmoved"
        );
        assert_eq!(membership.stats().statements_refused, 22);
    }

    fn load(seed: u8, seq: u64, clients: u32) -> switchboard_proto::member::LoadReport {
        let key = testkit::signer(seed).key;
        let body = switchboard_proto::member::LoadBody {
            node: key.node_id(),
            seq,
            clients,
        };
        switchboard_proto::member::LoadReport::sign(&key, body).unwrap()
    }

    #[test]
    fn a_sync_teaches_the_loads_of_the_members_it_names_and_refuses_forged_or_stale_ones() {
        let mut membership = membership();
        let named = testkit::member(10, addr(8010), MemberRole::Supernode, 10);
        let other = testkit::member(11, addr(8011), MemberRole::Supernode, 10);
        // Member 11's report, 11 not yet live here: about no live member, not taken.
        let early = testkit::sync_payload(
            vec![foca::Member::alive(named.clone())],
            vec![load(10, 3, 7), load(11, 1, 5)],
        );
        membership.handle_sync(Time(1), peer(), &early).unwrap();
        assert_eq!(membership.load_of(&named.node), Some(7));
        assert_eq!(membership.load_of(&other.node), None);
        assert_eq!(membership.stats().loads_synced, 1);

        // Member 11 signs a report claiming to be member 10's; and a stale one of 10's.
        let forged: switchboard_proto::member::LoadReport = postcard::from_bytes(
            &testkit::forged_load(&testkit::signer(11).key, named.node, 9, 0),
        )
        .unwrap();
        let bad = testkit::sync_payload(
            vec![foca::Member::alive(other.clone())],
            vec![forged, load(10, 2, 1), load(11, 1, 5)],
        );
        membership.handle_sync(Time(2), peer(), &bad).unwrap();
        assert_eq!(
            membership.load_of(&named.node),
            Some(7),
            "neither forged nor stale taken"
        );
        assert_eq!(
            membership.load_of(&other.node),
            Some(5),
            "learned with its member"
        );
        assert_eq!(membership.stats().loads_refused, 1);
        assert_eq!(membership.stats().loads_synced, 2);
    }

    #[test]
    fn when_foca_renames_one_node_to_another_the_old_one_leaves_the_view_and_the_new_one_joins() {
        // Two node ids alike in their first 16 bytes are one address to foca (see `SwimId`),
        // which then replaces one by the other; no such pair can be made for a test, so the
        // notification is handed in as foca would give it.
        let mut membership = membership();
        let old = testkit::member(4, addr(7704), MemberRole::Supernode, 10);
        let new = testkit::member(5, addr(7705), MemberRole::Supernode, 10);
        membership.restore(Time(1), [old.clone()]);
        while membership.poll_event().is_some() {}
        assert!(membership.is_live(&old.node));
        membership.notice(foca::OwnedNotification::Rename(
            SwimId::from(old.clone()),
            SwimId::from(new.clone()),
        ));
        assert!(!membership.is_live(&old.node), "the old one is gone");
        assert!(membership.is_live(&new.node), "the new one is live");
        let events: Vec<MemberEvent> = std::iter::from_fn(|| membership.poll_event()).collect();
        assert!(
            matches!(events.as_slice(), [MemberEvent::Down(d), MemberEvent::Up(u)]
            if *d == old && *u == new)
        );
    }

    #[test]
    fn a_full_sync_sample_with_every_load_fits_the_protocols_limit() {
        let mut membership = membership();
        let members: Vec<MemberInfo> = (0..MAX_SYNC_MEMBERS)
            .map(|i| {
                let seed = u8::try_from(i + 20).unwrap();
                // The longest username a ticket may carry.
                let signer = testkit::signer_named(seed, &"u".repeat(32));
                MemberInfo::signed(
                    &signer,
                    addr(9000 + u16::from(seed)),
                    MemberRole::Supernode,
                    u32::MAX,
                    u64::MAX,
                )
                .unwrap()
            })
            .collect();
        let loads = (0..MAX_SYNC_MEMBERS)
            .map(|i| load(u8::try_from(i + 20).unwrap(), u64::MAX, u32::MAX))
            .collect();
        let payload = testkit::sync_payload(
            members
                .into_iter()
                .map(|m| foca::Member::new(m, u16::MAX, foca::State::Suspect))
                .collect(),
            loads,
        );
        assert!(
            payload.len() <= switchboard_proto::limits::MAX_MEMBERSHIP_SYNC,
            "{} bytes",
            payload.len()
        );
        membership.handle_sync(Time(1), peer(), &payload).unwrap();
    }
}
