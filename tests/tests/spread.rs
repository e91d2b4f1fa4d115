//! Spread, not herd (issue #11, point 0): clients that log in together, with the same host
//! cache and the same load hints, spread over the supernodes instead of all taking the first
//! entry; and the orphans of two killed supernodes spread over the survivors the same way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{metric, online, wait_for_overlay, wait_until, Network, Running};
use switchboard_tests::Daemon;

const CLIENTS: usize = 60;

fn homes(supernodes: &[&Daemon]) -> Vec<u64> {
    supernodes
        .iter()
        .map(|s| metric(s, "switchboard_supernode_clients_connected").unwrap_or(0))
        .collect()
}

#[test]
fn sixty_clients_spread_over_six_supernodes_and_the_orphans_of_two_over_the_four_left() {
    let users: Vec<String> = (0..CLIENTS).map(|i| format!("u{i:02}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let network = Network::new(&names, &["sn1", "sn2", "sn3", "sn4", "sn5", "sn6"]);
    let sn1 = network.supernode("sn1", &[]);
    let seed = sn1.addr().to_string();
    let others: Vec<Daemon> = ["sn2", "sn3", "sn4", "sn5", "sn6"]
        .iter()
        .map(|name| network.supernode(name, &["--seed", &seed]))
        .collect();
    let mut all: Vec<&Daemon> = vec![&sn1];
    all.extend(others.iter());
    wait_for_overlay(&all, 6);

    let profiles: Vec<_> = names.iter().map(|u| network.login(u)).collect();
    let mut sessions: Vec<Running> = profiles.iter().map(|p| online(p)).collect();
    for session in &mut sessions {
        session.expect("online via", Duration::from_secs(30));
    }
    assert!(
        wait_until(Duration::from_secs(10), || homes(&all).iter().sum::<u64>()
            == CLIENTS as u64),
        "{:?}",
        homes(&all)
    );
    let before = homes(&all);
    println!("60 clients over 6 supernodes: {before:?}");
    let fair = CLIENTS as u64 / 6;
    assert!(
        before.iter().all(|&n| n <= 2 * fair),
        "a supernode holds more than twice its fair share ({fair}): {before:?}"
    );

    // Kill two (not the seed): their clients re-home over the four left.
    let mut others = others;
    let sn6 = others.pop().unwrap();
    let sn5 = others.pop().unwrap();
    sn5.kill9();
    sn6.kill9();
    let mut survivors: Vec<&Daemon> = vec![&sn1];
    survivors.extend(others.iter());
    assert!(
        wait_until(Duration::from_secs(30), || homes(&survivors)
            .iter()
            .sum::<u64>()
            == CLIENTS as u64),
        "not every client re-homed: {:?}",
        homes(&survivors)
    );
    let after = homes(&survivors);
    println!("after killing 2: {after:?}");
    let fair = CLIENTS as u64 / 4;
    assert!(
        after.iter().all(|&n| n <= 2 * fair),
        "a survivor holds more than twice its fair share ({fair}): {after:?}"
    );
}
