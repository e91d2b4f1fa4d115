//! A mega-supernode on warm standby steps in by itself when the supernode layer loses capacity,
//! and back once the overlay is healthy again (issue #11, point 5), on real processes: 6
//! supernodes, a standby mega and 100 clients; 3 supernodes SIGKILLed at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::{client, metric, online, wait_for_overlay, wait_until, Network, Running};
use switchboard_tests::Daemon;

/// As the issue asks: 6 supernodes, a standby mega and 100 clients.
const USERS: usize = 100;

fn connected(supernodes: &[&Daemon]) -> u64 {
    supernodes
        .iter()
        .map(|s| metric(s, "switchboard_supernode_clients_connected").unwrap_or(0))
        .sum()
}

#[test]
fn a_standby_mega_steps_in_when_three_of_six_supernodes_die_and_back_when_they_return() {
    let users: Vec<String> = (0..USERS).map(|i| format!("u{i:02}")).collect();
    let mut accounts: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), "user")).collect();
    accounts.extend([
        ("sn1", "supernode"),
        ("sn2", "supernode"),
        ("sn3", "supernode"),
        ("sn4", "supernode"),
        ("sn5", "supernode"),
        ("sn6", "supernode"),
        ("mega1", "mega"),
    ]);
    let network = Network::with(&accounts, "");
    let mega_config = network.path("mega.toml");
    std::fs::write(&mega_config, "standby_healthy_secs = 3\n").unwrap();
    let sn1 = network.supernode("sn1", &[]);
    let seed = sn1.addr().to_string();
    let sn2 = network.supernode("sn2", &["--seed", &seed]);
    let sn3 = network.supernode("sn3", &["--seed", &seed]);
    let sn4 = network.supernode("sn4", &["--seed", &seed]);
    let sn5 = network.supernode("sn5", &["--seed", &seed]);
    let sn6 = network.supernode("sn6", &["--seed", &seed]);
    let mega = network.supernode(
        "mega1",
        &[
            "--mega",
            "--standby",
            "--seed",
            &seed,
            "--config",
            mega_config.to_str().unwrap(),
        ],
    );
    wait_for_overlay(&[&sn1, &sn2, &sn3, &sn4, &sn5, &sn6, &mega], 7);
    assert_eq!(metric(&mega, "switchboard_supernode_mega_active"), Some(0));

    let profiles: Vec<_> = users.iter().map(|u| network.login(u)).collect();
    let mut sessions: Vec<Running> = profiles.iter().map(|p| online(p)).collect();
    for session in &mut sessions {
        session.expect("online via", Duration::from_secs(30));
    }
    assert_eq!(
        metric(&mega, "switchboard_supernode_clients_connected"),
        Some(0)
    );

    // Half the capacity dies at once: no command, the mega steps in.
    let killed = Instant::now();
    sn4.kill9();
    sn5.kill9();
    sn6.kill9();
    assert!(
        wait_until(Duration::from_secs(20), || metric(
            &mega,
            "switchboard_supernode_mega_active"
        ) == Some(1)),
        "the standby mega did not step in"
    );
    let activated = killed.elapsed();
    assert!(
        wait_until(Duration::from_secs(15), || connected(&[
            &sn1, &sn2, &sn3, &mega
        ]) == USERS as u64),
        "not every client re-homed: {}",
        connected(&[&sn1, &sn2, &sn3, &mega])
    );
    println!(
        "mega active {activated:?} after the kill; every client re-homed after {:?}",
        killed.elapsed()
    );
    // Lookups succeed: a sample of users, from a client on each survivor's side.
    for (i, user) in users.iter().enumerate().step_by(7) {
        let from = &profiles[(i + 1) % USERS];
        let (ok, _, stderr) = client(&["lookup", user, "--profile", from.to_str().unwrap()]);
        assert!(ok, "{user}: {stderr}");
    }

    // The lost supernodes come back: after 3 s of health the mega hands its clients back.
    let sn4 = network.supernode("sn4", &["--seed", &seed]);
    let sn5 = network.supernode("sn5", &["--seed", &seed]);
    let sn6 = network.supernode("sn6", &["--seed", &seed]);
    assert!(
        wait_until(Duration::from_secs(40), || metric(
            &mega,
            "switchboard_supernode_mega_active"
        ) == Some(0)),
        "the mega did not return to standby"
    );
    assert_eq!(
        metric(&mega, "switchboard_supernode_mega_activations_total"),
        Some(1)
    );
    assert_eq!(
        metric(&mega, "switchboard_supernode_mega_returns_total"),
        Some(1)
    );
    assert!(
        wait_until(Duration::from_secs(15), || connected(&[
            &sn1, &sn2, &sn3, &sn4, &sn5, &sn6
        ]) == USERS as u64),
        "clients handed back: {} on the supernodes, {:?} on the mega",
        connected(&[&sn1, &sn2, &sn3, &sn4, &sn5, &sn6]),
        metric(&mega, "switchboard_supernode_clients_connected")
    );
    println!("mega back on standby {:?} after the kill", killed.elapsed());
}
