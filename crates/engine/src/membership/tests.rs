//! Membership tests: a tiny in-memory network (convergence, detection, load gossip, local
//! health against a slow observer) and properties of the decoders.

mod scenarios {
    use super::super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    fn info(i: u8) -> MemberInfo {
        let mut bytes = [0u8; 32];
        bytes[0] = i;
        MemberInfo {
            node: NodeId::from_bytes(bytes),
            addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000 + u16::from(i))),
            role: MemberRole::Supernode,
            capacity: 100,
            generation: 1,
        }
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
                        let to = usize::from(out.to.node.as_bytes()[0]);
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
                            let who = usize::from(m.node.as_bytes()[0]);
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

    fn me() -> MemberInfo {
        MemberInfo {
            node: NodeId::from_bytes([9; 32]),
            addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7710)),
            role: MemberRole::Supernode,
            capacity: 10,
            generation: 1,
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_a_refused_packet_changes_nothing(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048)
        ) {
            let mut membership =
                Membership::new(Time::ZERO, me(), MembershipConfig::default(), 3).unwrap();
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
            let mut membership =
                Membership::new(Time::ZERO, me(), MembershipConfig::default(), 3).unwrap();
            let sample: Vec<foca::Member<MemberInfo>> = (0..count)
                .map(|i| {
                    foca::Member::alive(MemberInfo {
                        node: NodeId::from_bytes([u8::try_from(i + 100).unwrap(); 32]),
                        generation: 1,
                        ..me()
                    })
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
}
