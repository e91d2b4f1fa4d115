use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use switchboard_proto::UnixTime;

use super::*;

const NOW: UnixTime = UnixTime(1_800_000_000);

fn rng(seed: u64) -> SmallRng {
    println!("seed {seed}");
    SmallRng::seed_from_u64(seed)
}

fn normal(host: u32, load: u16) -> HostEntry<u32> {
    HostEntry::new(host, false, load)
}

fn cache(entries: Vec<HostEntry<u32>>) -> HostCache<u32> {
    HostCache::new(entries, MAX_HOSTS)
}

#[test]
fn the_alternatives_a_busy_supernode_names_are_dialled_next_at_once_before_the_rest() {
    let mut rng = rng(1);
    let mut pass = Pass::new(vec![1, 2, 3]);
    assert_eq!(pass.next_dial(), Some(1));
    pass.busy(Duration::from_secs(2), [10, 11, 2], &mut rng);
    // No wait in between: the next dials are the named ones (2 was queued already: it moves
    // up), all before 3.
    let mut next = Vec::new();
    for _ in 0..3 {
        next.extend(pass.next_dial());
        pass.failed();
    }
    let mut sorted = next.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![2, 10, 11], "{next:?}");
    assert_eq!(pass.next_dial(), Some(3));
    pass.failed();
    assert_eq!(pass.next_dial(), None);
    assert_eq!(
        pass.end(),
        Some(PassEnd::NoneAdmitted {
            tried: 5,
            retry_after: Some(Duration::from_secs(2))
        })
    );
}

#[test]
fn the_clients_a_busy_supernode_turns_away_do_not_all_take_its_first_alternative() {
    let mut rng = rng(2);
    let mut firsts = [0u32; 4];
    for _ in 0..400 {
        let mut pass = Pass::new(vec![1]);
        let _ = pass.next_dial();
        pass.busy(Duration::ZERO, [20, 21, 22, 23], &mut rng);
        if let Some(first) = pass.next_dial() {
            if let Some(count) = firsts.get_mut((first - 20) as usize) {
                *count += 1;
            }
        }
    }
    println!("first alternative taken: {firsts:?}");
    assert!(firsts.iter().all(|&c| c > 60), "{firsts:?}");
}

#[test]
fn after_three_busy_answers_a_pass_tries_the_megas_next_but_not_after_dead_ones() {
    let mut rng = rng(9);
    let order = vec![1, 2, 3, 4, 5, 6, 90, 91];
    // Dead supernodes (dials that fail) do not bring the megas forward.
    let mut pass = Pass::new(order.clone()).with_megas(vec![90, 91]);
    for expected in [1, 2, 3, 4] {
        assert_eq!(pass.next_dial(), Some(expected));
        pass.failed();
    }
    assert_eq!(pass.next_dial(), Some(5));
    // Full ones do: after the third Busy the megas are next, before the alternatives named.
    let mut pass = Pass::new(order).with_megas(vec![90, 91]);
    for _ in 0..2 {
        let _ = pass.next_dial();
        pass.busy(Duration::from_millis(100), [], &mut rng);
    }
    assert_eq!(pass.next_dial(), Some(3), "two refusals: not yet");
    pass.busy(Duration::from_millis(100), [40, 41], &mut rng);
    assert_eq!(pass.next_dial(), Some(90));
    pass.failed();
    assert_eq!(pass.next_dial(), Some(91));
    pass.failed();
    let next = pass.next_dial();
    assert!(matches!(next, Some(40 | 41)), "{next:?}");
}

#[test]
fn the_megas_of_a_cache_least_loaded_first() {
    let hosts = cache(vec![
        normal(1, 0),
        HostEntry::new(8, true, 700),
        HostEntry::new(9, true, 100),
    ]);
    assert_eq!(hosts.megas(), vec![9, 8]);
}

#[test]
fn a_redirect_puts_its_targets_first() {
    let mut rng = rng(6);
    let mut pass = Pass::redirected([7, 8], vec![1, 7, 2], &mut rng);
    let mut first_two = vec![pass.next_dial(), pass.next_dial()];
    first_two.sort_unstable();
    assert_eq!(first_two, vec![Some(7), Some(8)]);
    pass.failed();
    pass.failed();
    assert_eq!(pass.next_dial(), Some(1));
    pass.failed();
    assert_eq!(pass.next_dial(), Some(2));
}

#[test]
fn a_pass_races_a_second_dial_but_never_a_third_and_ends_only_when_both_answered() {
    let mut pass = Pass::new(vec![1, 2, 3]);
    assert_eq!(pass.next_dial(), Some(1));
    assert_eq!(
        pass.next_dial(),
        Some(2),
        "the dial raced beside a slow one"
    );
    assert_eq!(pass.next_dial(), None, "two in flight at most");
    pass.failed();
    assert_eq!(pass.next_dial(), Some(3));
    pass.failed();
    assert_eq!(pass.end(), None, "one dial still in flight");
    pass.failed();
    assert_eq!(
        pass.end(),
        Some(PassEnd::NoneAdmitted {
            tried: 3,
            retry_after: None
        })
    );
}

#[test]
fn a_pass_stops_after_its_bound_of_tries() {
    let mut rng = rng(3);
    let mut pass = Pass::new((0..10).collect());
    let mut dialled = 0;
    let mut named = 100;
    while let Some(_host) = pass.next_dial() {
        dialled += 1;
        // Each busy supernode names two more: without the bound this never ends.
        pass.busy(Duration::ZERO, [named, named + 1], &mut rng);
        named += 2;
    }
    assert_eq!(dialled, MAX_TRIES_PER_PASS);
    assert!(pass.end().is_some());
}

#[test]
fn a_pass_where_every_answer_was_limit_exceeded_says_so() {
    let mut pass = Pass::new(vec![1, 2]);
    let _ = pass.next_dial();
    pass.limited();
    let _ = pass.next_dial();
    pass.failed();
    assert_eq!(pass.end(), Some(PassEnd::Limited));
}

#[test]
fn a_supernode_that_failed_goes_behind_the_others_and_the_megas_until_it_serves_again() {
    let mut rng = rng(4);
    let mut hosts = cache(vec![
        normal(1, 0).with_history(Some(UnixTime(NOW.0 - 60)), None),
        normal(2, 500),
        normal(3, 500),
        HostEntry::new(9, true, 0),
    ]);
    assert_eq!(hosts.order(None, None, NOW, &mut rng).first(), Some(&1));
    hosts.failed(&1, NOW);
    for seed in 0..20 {
        let order = hosts.order(None, None, UnixTime(NOW.0 + 5), &mut self::rng(seed));
        assert_eq!(order.last(), Some(&1), "{order:?}");
        assert_eq!(
            order.get(2),
            Some(&9),
            "the mega before the suspect: {order:?}"
        );
    }
    // Forgotten after the failure memory: it is the last home again.
    let later = UnixTime(NOW.0 + FAILURE_MEMORY_SECS + 1);
    assert_eq!(hosts.order(None, None, later, &mut rng).first(), Some(&1));
    // Or as soon as it serves again.
    hosts.succeeded(&1, UnixTime(NOW.0 + 6));
    let order = hosts.order(None, None, UnixTime(NOW.0 + 7), &mut rng);
    assert_eq!(order.first(), Some(&1), "{order:?}");
}

#[test]
fn the_running_sessions_home_comes_first_and_the_lost_one_last() {
    let mut rng = rng(5);
    let hosts = cache(vec![
        normal(1, 0).with_history(Some(UnixTime(NOW.0 - 10)), None),
        normal(2, 900),
        HostEntry::new(3, true, 0),
        normal(4, 100),
    ]);
    let order = hosts.order(Some(&1), Some(&2), NOW, &mut rng);
    assert_eq!(order, vec![2, 4, 3, 1]);
}

#[test]
fn fresh_clients_with_the_same_host_cache_spread_over_it() {
    let hosts = cache((1..=6).map(|h| normal(h, 0)).collect());
    let mut rng = rng(7);
    let mut counts = [0u32; 6];
    for _ in 0..600 {
        if let Some(&first) = hosts.order(None, None, NOW, &mut rng).first() {
            if let Some(count) = counts.get_mut((first - 1) as usize) {
                *count += 1;
            }
        }
    }
    println!("first choices of 600 clients: {counts:?}");
    assert!(counts.iter().all(|&c| c > 50 && c < 200), "{counts:?}");
}

#[test]
fn the_orphans_of_a_dead_supernode_spread_over_the_survivors() {
    // Every orphan's cache has the dead one as its last home, marked failed, and the same
    // five survivors: none of them may take them all.
    let mut rng = rng(8);
    let mut counts = [0u32; 6];
    for _ in 0..600 {
        let mut hosts = cache(
            std::iter::once(normal(1, 0).with_history(Some(UnixTime(NOW.0 - 100)), None))
                .chain((2..=6).map(|h| normal(h, 300)))
                .collect(),
        );
        hosts.failed(&1, NOW);
        if let Some(&first) = hosts.order(Some(&1), None, NOW, &mut rng).first() {
            if let Some(count) = counts.get_mut((first - 1) as usize) {
                *count += 1;
            }
        }
    }
    println!("first choices of 600 orphans: {counts:?}");
    assert_eq!(counts.first(), Some(&0));
    assert!(
        counts.iter().skip(1).all(|&c| c > 60 && c < 200),
        "{counts:?}"
    );
}

#[test]
fn spare_capacity_draws_more_clients_than_a_loaded_supernode() {
    let hosts = cache(vec![normal(1, 900), normal(2, 100), normal(3, 500)]);
    let mut rng = rng(11);
    let mut counts = [0u32; 3];
    for _ in 0..900 {
        if let Some(&first) = hosts.order(None, None, NOW, &mut rng).first() {
            if let Some(count) = counts.get_mut((first - 1) as usize) {
                *count += 1;
            }
        }
    }
    println!("first choices by load 900/100/500: {counts:?}");
    assert!(counts[1] > counts[2] && counts[2] > counts[0], "{counts:?}");
}

#[test]
fn a_full_cache_keeps_a_named_supernode_in_place_of_a_dead_one_never_of_a_mega_or_a_home() {
    let mut entries: Vec<HostEntry<u32>> = (0..3).map(|h| normal(h, 100)).collect();
    entries.push(normal(3, 900));
    entries.push(HostEntry::new(50, true, 0));
    let mut hosts = HostCache::new(entries, 5);
    hosts.succeeded(&0, NOW);
    hosts.failed(&2, NOW);
    assert_eq!(hosts.add_named([77], NOW), 1);
    let known: Vec<u32> = hosts.entries().iter().map(|e| e.host).collect();
    assert_eq!(known, vec![0, 1, 77, 3, 50], "the suspect 2 made room");
    // No suspect left: the most loaded that never served makes room.
    assert_eq!(hosts.add_named([78], NOW), 1);
    let known: Vec<u32> = hosts.entries().iter().map(|e| e.host).collect();
    assert_eq!(known, vec![0, 1, 77, 78, 50]);
    assert_eq!(hosts.add_named([77], NOW), 0, "known already");
}

#[test]
fn a_loss_puts_the_lost_home_last_and_backs_off_and_a_pass_that_found_nobody_honours_retry_after() {
    let mut rng = rng(12);
    let mut failover: Failover<u32> = Failover::new(BackoffConfig {
        budget: None,
        ..BackoffConfig::default()
    });
    let first = failover.lost(7, &mut rng);
    assert_eq!(failover.avoid(), Some(&7));
    assert!(first < Duration::from_millis(250), "{first:?}");
    let wait = failover.none_admitted(Some(Duration::from_secs(5)), &mut rng);
    assert!(wait >= Duration::from_secs(5), "{wait:?}");
    assert_eq!(failover.avoid(), None, "the next pass tries everyone again");
    assert_eq!(failover.failures(), 2);
    failover.opened();
    assert_eq!(failover.failures(), 0);
}

#[test]
fn a_registration_is_refreshed_every_third_of_its_lease() {
    assert_eq!(
        refresh_period(Duration::from_secs(60)),
        Duration::from_secs(20)
    );
    assert_eq!(
        refresh_period(Duration::from_secs(1)),
        Duration::from_secs(1)
    );
}
