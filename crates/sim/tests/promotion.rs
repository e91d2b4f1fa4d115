//! Promotion and demotion at work in the simulator: homes run `engine`'s `Nominator` over
//! their promotable clients, promoted supernodes run `engine`'s `Demotion`, and the flapping,
//! capacity and findability invariants are checked after every event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use switchboard_engine::{PromotionConfig, Time};
use switchboard_sim::{Fault, PromotionSim, RoleChangeLimit, SimConfig, World};

const PROMOTABLE: usize = 40;
const BEHIND_NAT: usize = 5;
const CLIENTS: usize = 150;
const LEAVE_AT: u64 = 70_000;

/// Three supernodes of capacity 30 (90 seats) for 150 clients: the overlay is hot from the
/// start. The first 40 clients are promotable (capacity 30 each), the first 5 of them behind a
/// NAT. At 70 s the 110 other clients leave: the 40 left fit the three operators at 44%, below
/// the high-water mark, so the promoted supernodes are surplus.
fn hot_overlay(seed: u64) -> SimConfig {
    let mut config = SimConfig::sweep(seed);
    config.supernodes = 3;
    config.capacity = 30;
    config.clients = CLIENTS;
    config.host_cache = 3;
    config.faults = vec![(
        Time(LEAVE_AT),
        Fault::Leave((PROMOTABLE..CLIENTS).collect()),
    )];
    config.end = Time(140_000);
    config.promotion = Some(PromotionSim {
        policy: PromotionConfig {
            min_session: Duration::from_secs(5),
            min_in_role: Duration::from_secs(40),
            cooldown: Duration::from_secs(3),
            join_deadline: Duration::from_secs(10),
            ..PromotionConfig::default()
        },
        promotable: PROMOTABLE,
        behind_nat: BEHIND_NAT,
        capacity: 30,
    });
    // A promoted node is promoted once and demoted once in this run: a third change within
    // the run is flapping.
    config.role_changes = RoleChangeLimit {
        max: 2,
        window: Duration::from_secs(600),
    };
    config.unfindable_bound = Some(Duration::from_secs(10));
    config
}

#[test]
fn given_a_hot_overlay_when_promotable_clients_offer_then_homes_promote_until_everyone_is_admitted_and_demote_without_flapping_when_clients_leave(
) {
    for seed in seeds() {
        promotes_then_demotes(seed);
    }
}

/// `SIM_SEED=N` replays one seed; otherwise `SIM_SEEDS=N` seeds (3 by default) run.
fn seeds() -> Vec<u64> {
    switchboard_sim::seeds_from_env().unwrap_or_else(|e| panic!("{e}"))
}

fn promotes_then_demotes(seed: u64) {
    println!("SIM_SEED={seed}");
    let mut world = World::new(hot_overlay(seed)).unwrap();

    // Everyone admitted before the clients leave, on promoted capacity.
    let mut admitted_at = None;
    for second in 1..LEAVE_AT / 1000 {
        world.run_until(Time(second * 1000)).unwrap();
        if admitted_at.is_none() && world.online_count() == (CLIENTS, CLIENTS) {
            admitted_at = Some(second);
        }
    }
    let promoted = world.promoted_live();
    let figures = world.figures().clone();
    println!(
        "all {CLIENTS} clients admitted at t={admitted_at:?} s; {promoted} promoted supernodes; \
         offers {}, dial-backs ok {} failed {}, nominations {}, promotions {} (joined {}, failed {})",
        figures.offers,
        figures.dial_backs_ok,
        figures.dial_backs_failed,
        figures.nominations,
        figures.promotions,
        figures.promotions_joined,
        figures.promotions_failed
    );
    assert!(
        admitted_at.is_some(),
        "not every client was admitted by 70 s"
    );
    assert_eq!(world.online_count(), (CLIENTS, CLIENTS));
    // 150 clients need at least 60 more seats than the operators' 90: two promotions at least.
    assert!(promoted >= 2, "only {promoted} promoted supernodes");
    assert!(
        figures.dial_backs_failed >= 1,
        "the clients behind a NAT were dialled back and not reached"
    );

    // The clients leave; every promoted supernode steps down, once.
    world.run().unwrap();
    world.finish().unwrap();
    let figures = world.figures();
    println!(
        "after the clients left: {} promoted live, {} demotions, {} redirects with Demoted; \
         most role changes of one node {}; longest unfindable {:?}",
        world.promoted_live(),
        figures.demotions,
        figures.redirects_demoted,
        figures.max_role_changes,
        figures.longest_unfindable
    );
    assert_eq!(
        world.promoted_live(),
        0,
        "surplus promoted supernodes stayed"
    );
    assert_eq!(figures.demotions, figures.promotions);
    assert!(figures.redirects_demoted > 0);
    assert!(
        world.role_change_counts().iter().all(|n| *n == 2),
        "every promoted node was promoted once and demoted once: {:?}",
        world.role_change_counts()
    );
    assert_eq!(world.online_count(), (PROMOTABLE, PROMOTABLE));
}

#[test]
fn the_same_seed_replays_the_same_promotions_and_demotions() {
    let seed = 3;
    println!("SIM_SEED={seed}");
    let digest = || {
        let mut world = World::new(hot_overlay(seed)).unwrap();
        world.run().unwrap();
        (
            world.trace_digest(),
            world.events(),
            world.figures().promotions,
        )
    };
    let first = digest();
    assert!(first.2 > 0, "the run promoted someone");
    assert_eq!(first, digest());
}
