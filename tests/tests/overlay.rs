//! The overlay on real processes: five supernodes form one directory; twenty clients spread
//! over them find each other; two supernodes are killed with SIGKILL and the directory heals
//! by itself (about 6 s with default settings; the test allows 30 s and prints what it took).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const SUPERNODES: [&str; 5] = ["sn1", "sn2", "sn3", "sn4", "sn5"];
const CLIENTS: usize = 20;

/// How long re-homing and the membership may take after the kills before the test fails: 3x
/// the default timers' worst case (about 10 s), for a loaded 2-core machine. The figures
/// themselves (about 5-6 s) are printed and kept in BENCHMARKS.md.
const SETTLE: Duration = Duration::from_secs(30);

/// Puts the `first`-th host of the profile's host cache first (the login wrote the bootstrap
/// list; rotating it spreads the clients over the supernodes as different networks would).
fn rotate_hosts(profile: &Path, first: usize) {
    let profile = switchboard_client::profile::Profile::new(profile);
    let mut hosts = profile.hosts().unwrap();
    assert_eq!(hosts.len(), SUPERNODES.len(), "bootstrap list: {hosts:?}");
    let shift = first % hosts.len();
    hosts.rotate_left(shift);
    // Clients try the supernode that served them last first (the others in a random order):
    // mark the chosen one so.
    if let Some(home) = hosts.first_mut() {
        home.last_success = Some(switchboard_net::now_unix().0);
    }
    profile.save_hosts(hosts).unwrap();
}

/// Every client looks every other up, eight at a time (from eight different profiles: one
/// device holds at most four sessions); returns the failures.
fn all_lookups(users: &[String], profiles: &[PathBuf]) -> Vec<String> {
    let n = users.len();
    let pairs: Vec<(usize, usize)> = (1..n)
        .flat_map(|offset| (0..n).map(move |i| (i, (i + offset) % n)))
        .collect();
    let pairs = Arc::new(Mutex::new(pairs));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let pairs = Arc::clone(&pairs);
            let failures = Arc::clone(&failures);
            let users = users.to_vec();
            let profiles = profiles.to_vec();
            std::thread::spawn(move || loop {
                let Some((i, j)) = pairs.lock().unwrap().pop() else {
                    return;
                };
                let profile = profiles[i].to_str().unwrap().to_owned();
                let (ok, _, stderr) = client(&["lookup", &users[j], "--profile", &profile]);
                if !ok {
                    failures.lock().unwrap().push(format!(
                        "{} -> {}: {}",
                        users[i],
                        users[j],
                        stderr.trim()
                    ));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    failures
}

#[test]
fn five_supernodes_form_one_directory_and_heal_after_two_are_killed() {
    let users: Vec<String> = (0..CLIENTS).map(|i| format!("u{i:02}")).collect();
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let network = Network::new(&user_refs, &SUPERNODES);
    let first = network.supernode("sn1", &[]);
    let seed = first.addr().to_string();
    let mut supernodes = vec![first];
    for name in &SUPERNODES[1..] {
        supernodes.push(network.supernode(name, &["--seed", &seed]));
    }
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || {
            supernodes
                .iter()
                .all(|s| metric(s, "switchboard_overlay_members_live") == Some(5))
        }),
        "the five supernodes did not see each other"
    );
    println!(
        "membership of 5 converged {:?} after the last start",
        started.elapsed()
    );

    let profiles: Vec<PathBuf> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let profile = network.login(user);
            rotate_hosts(&profile, i);
            profile
        })
        .collect();
    let mut onlines: Vec<Running> = profiles.iter().map(|p| online(p)).collect();
    let mut homes: Vec<String> = onlines
        .iter_mut()
        .map(|o| o.expect("online via", Duration::from_secs(20)))
        .collect();
    let spread = SUPERNODES
        .iter()
        .zip(&supernodes)
        .filter(|(_, s)| {
            homes
                .iter()
                .any(|h| h.contains(&format!("at {}", s.addr())))
        })
        .count();
    assert_eq!(
        spread, 5,
        "clients spread over all five supernodes: {homes:?}"
    );

    // Records reach their owners a network round trip after "online": wait for all of them.
    wait_for_index(&supernodes, (CLIENTS * 3) as u64);
    let looking = Instant::now();
    let failures = all_lookups(&users, &profiles);
    assert!(failures.is_empty(), "lookups failed: {failures:#?}");
    println!(
        "{} lookups across supernodes succeeded in {:?}",
        CLIENTS * (CLIENTS - 1),
        looking.elapsed()
    );

    // SIGKILL two supernodes at once.
    let killed: Vec<String> = supernodes[3..]
        .iter()
        .map(|s| format!("at {}", s.addr()))
        .collect();
    let orphans: Vec<usize> = (0..CLIENTS)
        .filter(|i| killed.iter().any(|k| homes[*i].contains(k.as_str())))
        .collect();
    for daemon in supernodes.drain(3..) {
        daemon.kill9();
    }
    let kill = Instant::now();
    // Generous bounds for a loaded machine; the times measured are printed (BENCHMARKS.md
    // keeps the figures).
    for i in &orphans {
        let left = SETTLE.saturating_sub(kill.elapsed());
        homes[*i] = onlines[*i].expect_new("online via", left);
        assert!(
            !killed.iter().any(|k| homes[*i].contains(k.as_str())),
            "{} re-homed on a dead supernode: {}",
            users[*i],
            homes[*i]
        );
    }
    let rehomed = kill.elapsed();
    let left = SETTLE.saturating_sub(kill.elapsed());
    assert!(
        wait_until(left, || {
            supernodes
                .iter()
                .all(|s| metric(s, "switchboard_overlay_members_live") == Some(3))
        }),
        "membership did not converge to 3 within {SETTLE:?}: {:?}",
        supernodes
            .iter()
            .map(|s| metric(s, "switchboard_overlay_members_live"))
            .collect::<Vec<_>>()
    );
    let converged = kill.elapsed();
    println!(
        "after SIGKILL of 2: {} clients re-homed in {rehomed:?}, membership 3 everywhere in {converged:?}",
        orphans.len()
    );

    // Every lookup succeeds again: sweeps are repeated until one is clean.
    let mut failures = all_lookups(&users, &profiles);
    let mut sweeps = 1;
    while !failures.is_empty() && kill.elapsed() < SETTLE * 2 {
        failures = all_lookups(&users, &profiles);
        sweeps += 1;
    }
    assert!(
        failures.is_empty(),
        "lookups failed after the kills: {failures:#?}"
    );
    println!(
        "all lookups succeeded again {:?} after the kill ({sweeps} sweeps from {converged:?} on)",
        kill.elapsed()
    );
    for s in &supernodes {
        assert!(metric(s, "switchboard_overlay_records_refused_total") == Some(0));
    }
}
