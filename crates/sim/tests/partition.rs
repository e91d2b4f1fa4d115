//! A partition splits the supernodes in two; each side declares the other down and goes on
//! serving its own clients; when the link returns the overlay heals by itself (foca's
//! announcements to down members, identities renewed) and no record of a client that stayed
//! online is lost. This is the in-process equivalent of cutting a link between two network
//! namespaces: the simulator drops every message across the cut, both ways.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_engine::Time;
use switchboard_sim::{Fault, SimConfig, World};

#[test]
fn a_partition_heals_without_manual_action_and_loses_no_record() {
    let seed = 11;
    println!("SIM_SEED={seed}");
    let mut config = SimConfig::sweep(seed);
    config.supernodes = 10;
    config.clients = 120;
    config.loss = 0.0;
    config.faults = vec![
        (Time(15_000), Fault::Partition(vec![0, 1, 2, 3, 4])),
        (Time(35_000), Fault::Heal),
    ];
    config.end = Time(70_000);
    let mut world = World::new(config).unwrap();

    world.run_until(Time(14_000)).unwrap();
    assert_eq!(
        world.view_sizes(),
        BTreeMap::from([(10, 10)]),
        "one overlay before"
    );

    world.run_until(Time(34_000)).unwrap();
    assert_eq!(
        world.view_sizes(),
        BTreeMap::from([(5, 10)]),
        "each side sees only itself during the partition"
    );
    assert_eq!(
        world.stale_views().len(),
        50,
        "each view misses the other side's five"
    );

    let mut healed = None;
    for second in 36..70 {
        world.run_until(Time(second * 1000)).unwrap();
        if world.view_sizes() == BTreeMap::from([(10, 10)]) {
            healed = Some(Duration::from_secs(second - 35));
            break;
        }
    }
    let healed = healed.expect("the overlay healed");
    assert_eq!(world.stale_views(), Vec::<String>::new());
    println!("healed {healed:?} after the link returned");
    assert!(healed <= Duration::from_secs(15), "healed in {healed:?}");

    world.run_until(Time(70_000)).unwrap();
    // Every client online at a live home, every record on a live owner.
    world.finish().unwrap();
}
