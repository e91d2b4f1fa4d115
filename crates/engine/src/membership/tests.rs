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

    /// A tiny in-memory network: packets arrive `delay` later (`slow` gets `slow_delay`
    /// on everything it receives), crashed members drop everything.
    struct Net {
        members: Vec<Membership>,
        crashed: Vec<bool>,
        in_flight: BTreeMap<(Time, u64), (usize, Vec<u8>)>,
        seq: u64,
        slow: Option<(usize, Duration)>,
        downs_of_healthy: u64,
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
                now: Time::ZERO,
            }
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
                        self.in_flight
                            .insert((now + delay, self.seq), (to, out.payload));
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
                    let (to, payload) = entry.remove();
                    if !self.crashed[to] {
                        let _ = self.members[to].handle_packet(now, &payload);
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
            }
        }
        assert_eq!(net.downs_of_healthy, 0);
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

    /// A member alone: its own first report never leaves its backlog.
    fn lone(load_backlog_limit: usize) -> Membership {
        let config = MembershipConfig {
            load_backlog_limit,
            ..MembershipConfig::default()
        };
        Membership::new(
            Time::ZERO,
            info(0),
            testkit::signer(1),
            testkit::anchor(),
            config,
            7,
        )
        .unwrap()
    }

    /// Runs `m` alone until `until`, timer by timer.
    fn run_alone(m: &mut Membership, until: Time) {
        while let Some(at) = m.next_timeout().filter(|at| *at <= until) {
            m.handle_timeout(at);
            while m.poll_send().is_some() {}
        }
    }

    #[test]
    fn a_member_whose_load_backlog_is_half_full_postpones_a_periodic_report_of_an_unchanged_load() {
        let mut saturated = lone(1);
        let mut free = lone(4);
        assert_eq!((saturated.load_seq, free.load_seq), (1, 1));
        assert_eq!(saturated.stats().loads_backlog, 1, "its own report, unsent");
        run_alone(&mut saturated, Time(95_000));
        run_alone(&mut free, Time(95_000));
        assert_eq!(free.load_seq, 4, "refreshed at 30, 60 and 90 s");
        assert_eq!(saturated.load_seq, 1, "no periodic report while saturated");
        assert!(saturated.stats().load_refreshes_postponed >= 3);
        assert!(saturated
            .next_timeout()
            .is_some_and(|at| at <= Time(100_000)));
        // A load figure handed in after the deadline, unchanged, does not get round the rule.
        saturated.report_load(Time(100_000), 0);
        assert_eq!(saturated.load_seq, 1, "unchanged, still saturated");
        // Four periods after the last report, the unchanged figure goes all the same.
        run_alone(&mut saturated, Time(119_000));
        assert_eq!(saturated.load_seq, 1);
        run_alone(&mut saturated, Time(126_000));
        assert_eq!(saturated.load_seq, 2, "repeated at 120 s");
        // A step of the load is news the others need: it goes whatever the backlog.
        saturated.report_load(Time(131_000), 50);
        assert_eq!(saturated.load_seq, 3);
        // A change too small for a step waits for the period, then goes, saturated or not.
        saturated.report_load(Time(132_000), 51);
        assert_eq!(saturated.load_seq, 3);
        run_alone(&mut saturated, Time(162_000));
        assert_eq!(saturated.load_seq, 4);
        assert_eq!(saturated.load_of(&info(0).node), Some(51));
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
            if membership.handle_sync(Time(2), &bytes).is_err() {
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
            let payload = postcard::to_stdvec(&sample).unwrap();
            membership.handle_sync(Time(1), &payload).unwrap();
            prop_assert_eq!(membership.live_count(), count + 1);
            // The first one dies; a sample that knows it brings the news.
            let dead = foca::Member::new(sample[0].id().clone(), 0, foca::State::Down);
            membership.handle_sync(Time(2), &postcard::to_stdvec(&vec![dead]).unwrap()).unwrap();
            prop_assert_eq!(membership.live_count(), count);
            // A stale sample naming it alive changes nothing.
            membership.handle_sync(Time(3), &payload).unwrap();
            prop_assert_eq!(membership.live_count(), count);
        }
    }

    #[test]
    fn forged_sync_entries_change_nothing_and_are_counted() {
        let mut membership = membership();
        let honest = testkit::member(10, addr(8010), MemberRole::Supernode, 10);
        let sample = vec![foca::Member::alive(honest.clone())];
        membership
            .handle_sync(Time(1), &postcard::to_stdvec(&sample).unwrap())
            .unwrap();
        assert_eq!(membership.live_count(), 2);

        // Member 10 moved to a dead address with a generation it could never beat, its proof
        // kept: the signature no longer matches.
        let moved = MemberInfo {
            addr: addr(1),
            generation: u64::MAX,
            ..honest.clone()
        };
        // Twenty made-up node ids, each with a key of its own but the attacker's ticket.
        let attacker = testkit::member(11, addr(8011), MemberRole::Supernode, 10);
        let made_up = (0..20u8).map(|i| {
            let fresh = testkit::member(
                40 + i,
                addr(9000 + u16::from(i)),
                MemberRole::Supernode,
                10_000,
            );
            MemberInfo {
                proof: attacker.proof.clone(),
                ..fresh
            }
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
        membership.handle_sync(Time(2), &forged).unwrap();
        assert_eq!(membership.live_count(), 2, "no made-up member got in");
        assert_eq!(
            membership.member(&honest.node),
            Some(&honest),
            "member 10 unmoved"
        );
        assert_eq!(membership.stats().statements_refused, 22);
    }
}
