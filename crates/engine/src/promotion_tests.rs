#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use switchboard_proto::SecretKey;

fn node(seed: u8) -> NodeId {
    SecretKey::from_seed([seed; 32]).node_id()
}

fn secs(s: u64) -> Time {
    Time(s * 1000)
}

fn config() -> PromotionConfig {
    PromotionConfig {
        high_water_permille: 800,
        low_water_permille: 400,
        clients_per_supernode: 0,
        min_session: Duration::from_secs(5),
        min_in_role: Duration::from_secs(20),
        cooldown: Duration::from_secs(3),
        join_deadline: Duration::from_secs(10),
        renominate_after: Duration::from_secs(60),
    }
}

fn load(supernodes: u64, capacity: u64, clients: u64) -> OverlayLoad {
    OverlayLoad {
        supernodes,
        capacity,
        clients,
    }
}

/// A nominator with `node(seed)` offered at 0 and reachable.
fn with_reachable(seeds: &[u8]) -> Nominator {
    let mut n = Nominator::new(config());
    for &seed in seeds {
        n.offer(secs(0), node(seed), 20, secs(0)).unwrap();
    }
    for due in n.poll_dial_backs() {
        n.dial_back_done(&due, true);
    }
    n
}

#[test]
fn a_reachable_long_enough_client_is_nominated_only_when_the_overlay_is_hot() {
    let mut n = with_reachable(&[1]);
    let cool = load(2, 40, 20);
    let hot = load(2, 40, 40);
    assert_eq!(
        n.poll(secs(10), &cool).nominate,
        None,
        "50% is below high water"
    );
    assert_eq!(n.poll(secs(10), &hot).nominate, Some((node(1), 20)));
}

#[test]
fn a_client_online_for_less_than_the_minimum_session_waits() {
    let mut n = with_reachable(&[1]);
    let hot = load(2, 40, 40);
    assert_eq!(n.poll(secs(4), &hot).nominate, None);
    assert_eq!(n.poll(secs(5), &hot).nominate, Some((node(1), 20)));
}

#[test]
fn an_unreachable_or_unchecked_client_is_never_nominated() {
    let mut n = Nominator::new(config());
    n.offer(secs(0), node(1), 20, secs(0)).unwrap();
    n.offer(secs(0), node(2), 20, secs(0)).unwrap();
    let hot = load(2, 40, 40);
    assert_eq!(
        n.poll(secs(30), &hot).nominate,
        None,
        "nobody dialed back yet"
    );
    let mut due = n.poll_dial_backs();
    due.sort();
    assert_eq!(due.len(), 2);
    assert!(n.poll_dial_backs().is_empty(), "a dial-back starts once");
    n.dial_back_done(&node(1), false);
    assert_eq!(n.reach(&node(1)), Some(Reach::Unreachable));
    assert_eq!(
        n.poll(secs(30), &hot).nominate,
        None,
        "node 2 still checking"
    );
    n.dial_back_done(&node(2), true);
    assert_eq!(n.poll(secs(30), &hot).nominate, Some((node(2), 20)));
}

#[test]
fn one_nomination_at_a_time_then_cooldown_then_the_next() {
    let mut n = with_reachable(&[1, 2]);
    let hot = load(2, 40, 40);
    let first = n.poll(secs(10), &hot).nominate.unwrap().0;
    assert_eq!(n.poll(secs(11), &hot).nominate, None, "pending");
    n.joined(&first);
    assert_eq!(n.poll(secs(12), &hot).nominate, None, "cooldown");
    let second = n.poll(secs(13), &hot).nominate.unwrap().0;
    assert_ne!(first, second);
}

#[test]
fn a_nominee_that_never_joins_fails_and_backs_off() {
    let mut n = with_reachable(&[1]);
    let hot = load(2, 40, 40);
    assert_eq!(n.poll(secs(10), &hot).nominate, Some((node(1), 20)));
    assert_eq!(n.poll(secs(19), &hot), Poll::default());
    let poll = n.poll(secs(20), &hot);
    assert_eq!(poll.failed, Some(node(1)));
    assert_eq!(poll.nominate, None);
    // It offers itself again at once: refused until the back-off ends.
    assert_eq!(
        n.offer(secs(21), node(1), 20, secs(0)),
        Err(OfferRefused::BackingOff)
    );
    assert!(n.offer(secs(70), node(1), 20, secs(0)).is_ok());
}

#[test]
fn the_largest_capacity_goes_first_then_the_longest_online() {
    let mut n = Nominator::new(config());
    n.offer(secs(0), node(1), 10, secs(0)).unwrap();
    n.offer(secs(0), node(2), 30, secs(2)).unwrap();
    n.offer(secs(0), node(3), 30, secs(1)).unwrap();
    for due in n.poll_dial_backs() {
        n.dial_back_done(&due, true);
    }
    assert_eq!(
        n.poll(secs(10), &load(2, 40, 40)).nominate,
        Some((node(3), 30))
    );
}

#[test]
fn too_few_supernodes_for_the_clients_also_calls_for_promotion() {
    let mut n = Nominator::new(PromotionConfig {
        clients_per_supernode: 100,
        ..config()
    });
    n.offer(secs(0), node(1), 20, secs(0)).unwrap();
    for due in n.poll_dial_backs() {
        n.dial_back_done(&due, true);
    }
    // 30% utilization, but 300 clients on 2 supernodes against a target of 100 each.
    assert_eq!(
        n.poll(secs(10), &load(2, 1000, 300)).nominate,
        Some((node(1), 20))
    );
}

#[test]
fn a_withdrawn_client_is_no_candidate_and_offers_are_bounded() {
    let mut n = with_reachable(&[1]);
    n.withdraw(&node(1));
    assert_eq!(n.poll(secs(10), &load(2, 40, 40)).nominate, None);
    let mut n = Nominator::new(config());
    for i in 0..MAX_CANDIDATES + 10 {
        let seed = u32::try_from(i).unwrap().to_le_bytes();
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&seed);
        let id = SecretKey::from_seed(key).node_id();
        n.offer(secs(0), id, 1, secs(0)).unwrap();
    }
    assert_eq!(n.candidates(), MAX_CANDIDATES);
    assert_eq!(
        n.offer(secs(0), node(1), 0, secs(0)),
        Err(OfferRefused::NoCapacity)
    );
}

#[test]
fn a_promoted_node_steps_down_only_after_its_minimum_time_and_the_dwell() {
    let mut d = Demotion::new(config(), secs(0));
    let cold = load(3, 60, 10);
    let dwell = Duration::from_secs(2);
    assert!(
        !d.observe(secs(5), &cold, 20, dwell),
        "minimum time in role"
    );
    // The dwell started at 5 s and is over; 20 s is the minimum time in the role.
    assert!(d.observe(secs(20), &cold, 20, dwell));
    let mut d = Demotion::new(config(), secs(0));
    assert!(!d.observe(secs(19), &cold, 20, dwell));
    assert!(
        !d.observe(secs(20), &load(3, 60, 30), 20, dwell),
        "50%: not low"
    );
    assert!(!d.observe(secs(21), &cold, 20, dwell), "dwell restarts");
    assert!(d.observe(secs(23), &cold, 20, dwell));
}

#[test]
fn a_promoted_node_stays_when_the_rest_would_run_hot_without_it() {
    let mut d = Demotion::new(config(), secs(0));
    // 35% now, but 21 clients on the 20 that would remain is above high water.
    let overlay = load(2, 60, 21);
    assert!(!d.observe(secs(100), &overlay, 40, Duration::ZERO));
    assert!(!d.observe(secs(200), &overlay, 40, Duration::ZERO));
    // The last supernode never steps down.
    assert!(!d.observe(secs(300), &load(1, 20, 0), 20, Duration::ZERO));
}

#[test]
fn promotion_and_demotion_marks_do_not_flap_on_the_same_figures() {
    // Whatever the overlay, a node that would step down never leaves the overlay needing a
    // promotion on the same figures: the gap between the marks is the hysteresis.
    let n = Nominator::new(config());
    for capacity in (20..=400).step_by(20) {
        for clients in 0..=capacity {
            for mine in [10u64, 20, 50] {
                let overlay = load(3, capacity, clients);
                let mut d = Demotion::new(config(), secs(0));
                if d.observe(secs(1000), &overlay, mine, Duration::ZERO) {
                    let after = load(2, capacity - mine.min(capacity), clients);
                    assert!(
                        !n.needs_capacity(&after),
                        "capacity {capacity}, clients {clients}, mine {mine}"
                    );
                }
            }
        }
    }
}
