//! Revocation reaches everything (issue #10, point 4): a disabled supernode account leaves
//! every survivor's membership within one revocation poll, whether or not it cooperates; an
//! honest one redirects its clients and stops; a revoked user is refused by every supernode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::{client, metric, online, wait_for_overlay, wait_until, Network};
use switchboard_tests::{Binary, Daemon};

/// Every second: the test waits for one poll.
const FAST_POLL: &str = "revocation_poll_secs = 1\nannounce_interval_secs = 1\n";

fn write(network: &Network, name: &str, text: &str) -> String {
    let path = network.path(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn disable(network: &Network, name: &str) {
    let out = Binary::AuthServer
        .run(&[
            "user",
            "disable",
            name,
            "--data-dir",
            network.path("auth").to_str().unwrap(),
        ])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn node_of(network: &Network, name: &str) -> String {
    switchboard_client::profile::Profile::new(&network.path(name))
        .node_key()
        .unwrap()
        .node_id()
        .short()
}

#[test]
fn a_disabled_supernode_account_redirects_its_clients_stops_and_leaves_the_overlay() {
    let network = Network::new(&["alice", "bob", "mallory"], &["sn1", "sn2", "sn3"]);
    let fast = write(&network, "fast.toml", FAST_POLL);
    // sn3 first, so that alice (who logs in now) is homed on it.
    let mut sn3 = network.supernode("sn3", &["--config", &fast]);
    let alice = network.login("alice");
    let mut alice_online = online(&alice);
    let first = alice_online.expect("online via", Duration::from_secs(15));
    assert!(first.contains(&node_of(&network, "sn3")), "{first}");
    let seed = sn3.addr().to_string();
    let sn1 = network.supernode("sn1", &["--config", &fast, "--seed", &seed]);
    let sn2 = network.supernode("sn2", &["--config", &fast, "--seed", &seed]);
    wait_for_overlay(&[&sn1, &sn2, &sn3], 3);
    let bob = network.login("bob");
    let mallory = network.login("mallory");

    let disabled = Instant::now();
    disable(&network, "sn3");
    // sn3 polls, finds its own ticket revoked, redirects alice and stops with the reason.
    let moved = alice_online.expect_new("online via", Duration::from_secs(20));
    let moved_after = disabled.elapsed();
    assert!(!moved.contains(&node_of(&network, "sn3")), "{moved}");
    let status = sn3.wait_exit(Duration::from_secs(20)).expect("sn3 stops");
    assert!(!status.success(), "stopped with an error: {status}");
    assert!(
        metric(&network.auth, "switchboard_auth_revoked_callers_total").is_some_and(|n| n > 0),
        "its announcements and polls were refused"
    );
    assert!(
        wait_until(Duration::from_secs(20), || [&sn1, &sn2]
            .iter()
            .all(|s| metric(s, "switchboard_overlay_members_live") == Some(2))),
        "survivors still count sn3"
    );
    println!(
        "alice re-homed {moved_after:?} and the overlay shrank to 2 {:?} after the disable",
        disabled.elapsed()
    );
    let found = wait_until(Duration::from_secs(15), || {
        client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]).0
    });
    assert!(found, "alice is found at her new home");

    // A revoked user is refused by every supernode, not just the one she was on: once each
    // has read the revocation (each polls every second here; one that has not yet may still
    // take her for that second).
    let read = |s: &&Daemon| metric(s, "switchboard_supernode_revocations_read").unwrap_or(0);
    let before = [&sn1, &sn2].iter().map(read).max().unwrap_or(0);
    disable(&network, "mallory");
    assert!(
        wait_until(Duration::from_secs(10), || [&sn1, &sn2]
            .iter()
            .all(|s| read(s) > before)),
        "the survivors read mallory's revocation"
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (ok, _, stderr) =
                client(&["lookup", "bob", "--profile", mallory.to_str().unwrap()]);
            !ok && stderr.contains("revoked")
        }),
        "mallory refused"
    );
    let mut mallory_online = online(&mallory);
    assert!(
        mallory_online
            .wait_exit(Duration::from_secs(30))
            .is_some_and(|s| !s.success()),
        "mallory's client online cannot register anywhere"
    );
    assert!(!mallory_online.seen_contains("online via"));
}

#[test]
fn survivors_drop_a_revoked_supernode_that_ignores_its_revocation() {
    let network = Network::new(&["bob"], &["sn1", "sn2", "sn3"]);
    let fast = write(&network, "fast.toml", FAST_POLL);
    // sn3 stands for a hostile node: it talks to the auth-server once an hour, so it never
    // learns (an honest one stops at its next announcement or poll; see the test above).
    let deaf = write(
        &network,
        "deaf.toml",
        "revocation_poll_secs = 3600\nannounce_interval_secs = 3600\n",
    );
    let mut sn3 = network.supernode("sn3", &["--config", &deaf]);
    let seed = sn3.addr().to_string();
    let sn1 = network.supernode("sn1", &["--config", &fast, "--seed", &seed]);
    let sn2 = network.supernode("sn2", &["--config", &fast, "--seed", &seed]);
    wait_for_overlay(&[&sn1, &sn2, &sn3], 3);

    let disabled = Instant::now();
    disable(&network, "sn3");
    assert!(
        wait_until(Duration::from_secs(20), || [&sn1, &sn2]
            .iter()
            .all(|s| metric(s, "switchboard_overlay_members_live") == Some(2))),
        "survivors still count sn3: {:?}",
        [&sn1, &sn2].map(|s| metric(s, "switchboard_overlay_members_live"))
    );
    println!(
        "survivors dropped the revoked sn3 {:?} after the disable",
        disabled.elapsed()
    );
    assert!(sn3.is_running(), "sn3 never learned and still runs");
    // And the survivors still serve: bob goes online and is found.
    let bob = network.login("bob");
    let mut bob_online = online(&bob);
    let line = bob_online.expect("online via", Duration::from_secs(15));
    assert!(!line.contains(&node_of(&network, "sn3")), "{line}");
}
