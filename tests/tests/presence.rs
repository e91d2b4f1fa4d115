//! Presence follows the session (issue #11, point 7): a device whose last session ends is
//! shown offline, and stops being returned by lookups, within seconds, not at the end of its
//! lease; a device moved by `Redirect` is never shown offline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{client, online, wait_for_overlay, Network, Running};
use switchboard_client::profile::Profile;
use switchboard_tests::Daemon;

/// Keeps only `home` and `spares` in the host cache of `profile`, `home` as the last one that
/// served it, so that its sessions go there first.
fn pin(profile: &Path, home: &Daemon, spares: &[&Daemon]) {
    let profile = Profile::new(profile);
    let hosts: Vec<_> = profile
        .hosts()
        .unwrap()
        .into_iter()
        .filter(|h| h.addr == home.addr() || spares.iter().any(|s| s.addr() == h.addr))
        .map(|mut h| {
            if h.addr == home.addr() {
                h.last_success = Some(switchboard_net::now_unix().0);
            }
            h
        })
        .collect();
    assert_eq!(hosts.len(), 1 + spares.len(), "{hosts:?}");
    profile.save_hosts(hosts).unwrap();
}

#[test]
fn a_killed_client_is_offline_to_a_watcher_on_another_supernode_within_five_seconds() {
    let network = Network::new(&["alice", "bob"], &["sn1", "sn2"]);
    let sn1 = network.supernode("sn1", &[]);
    let seed = sn1.addr().to_string();
    let sn2 = network.supernode("sn2", &["--seed", &seed]);
    wait_for_overlay(&[&sn1, &sn2], 2);
    let alice = network.login("alice");
    pin(&alice, &sn1, &[]);
    let bob = network.login("bob");
    pin(&bob, &sn2, &[]);
    let mut alice_online = online(&alice);
    alice_online.expect("online via", Duration::from_secs(15));
    let mut watch = Running::start(&["watch", "alice", "--profile", bob.to_str().unwrap()]);
    watch.expect("alice online", Duration::from_secs(10));

    // The default lease is 60 s: only the end of the session can make this quick.
    let killed = Instant::now();
    alice_online.kill9();
    watch.expect("alice offline", Duration::from_secs(10));
    let offline_after = killed.elapsed();
    let (ok, _, stderr) = client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]);
    let lookup_after = killed.elapsed();
    println!("offline shown {offline_after:?} after the kill; lookup refused at {lookup_after:?}");
    assert!(offline_after < Duration::from_secs(5), "{offline_after:?}");
    assert!(!ok && stderr.contains("alice is not online"), "{stderr}");
}

#[test]
fn a_client_moved_by_redirect_is_never_shown_offline() {
    let network = Network::new(&["alice", "bob"], &["sn1", "sn2", "sn3"]);
    let sn1 = network.supernode("sn1", &[]);
    let seed = sn1.addr().to_string();
    let sn2 = network.supernode("sn2", &["--seed", &seed]);
    let sn3 = network.supernode("sn3", &["--seed", &seed]);
    wait_for_overlay(&[&sn1, &sn2, &sn3], 3);
    let alice = network.login("alice");
    pin(&alice, &sn1, &[&sn3]);
    let bob = network.login("bob");
    pin(&bob, &sn2, &[]);
    let mut alice_online = online(&alice);
    let first = alice_online.expect("online via", Duration::from_secs(15));
    assert!(first.contains(&sn1.addr().to_string()), "{first}");
    let home = &sn1;
    let mut watch = Running::start(&["watch", "alice", "--profile", bob.to_str().unwrap()]);
    watch.expect("alice online", Duration::from_secs(10));
    home.signal("TERM").unwrap();
    alice_online.expect_new("online via", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !watch.seen_contains("alice offline"),
        "the watcher saw a flicker: {:?}",
        watch.seen_lines()
    );
}
