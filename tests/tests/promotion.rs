//! Capacity that follows the need (issue #11, points 1 to 4 and the first acceptance point),
//! on real processes: 2 supernodes of capacity 20 and 60 promotable clients. The homes
//! nominate clients while the overlay runs hot, the auth-server issues promoted tickets, the
//! promoted clients serve in their own processes until everyone is admitted, and no more; when
//! 40 clients leave, the promoted supernodes step down and their clients re-home; lookups of
//! online users keep succeeding throughout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{client, metric, wait_for_overlay, wait_until, Network, Running};
use switchboard_tests::Daemon;

const USERS: usize = 60;
const CAPACITY: &str = "20";

fn promotable(profile: &Path, serve_config: &Path) -> Running {
    Running::start(&[
        "online",
        "--profile",
        profile.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--promotable",
        "--capacity",
        CAPACITY,
        "--serve",
        "127.0.0.1:0",
        "--serve-config",
        serve_config.to_str().unwrap(),
    ])
}

fn connected(supernodes: &[&Daemon]) -> u64 {
    supernodes
        .iter()
        .map(|s| metric(s, "switchboard_supernode_clients_connected").unwrap_or(0))
        .sum()
}

/// Looks each of `users` up from `from`; returns those not found.
fn unfindable(from: &Path, users: &[&str]) -> Vec<String> {
    users
        .iter()
        .filter(|user| {
            let (ok, out, err) = client(&["lookup", user, "--profile", from.to_str().unwrap()]);
            let found = ok && out.contains("127.0.0.1");
            if !found {
                println!("lookup of {user} failed: {out} {err}");
            }
            !found
        })
        .map(|u| (*u).to_owned())
        .collect()
}

#[test]
fn promotions_admit_everyone_and_no_more_and_demotions_follow_when_clients_leave() {
    let users: Vec<String> = (0..USERS).map(|i| format!("p{i:02}")).collect();
    let mut accounts: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), "user")).collect();
    accounts.extend([
        ("sn1", "supernode"),
        ("sn2", "supernode"),
        ("watcher", "user"),
    ]);
    let network = Network::with(&accounts, "");
    // Short timers so that the test takes a minute, not an hour; the marks are the defaults
    // (nominate at 80%, step down below 40%).
    let home_config = network.path("home.toml");
    std::fs::write(
        &home_config,
        "promote_min_session_secs = 1\npromote_cooldown_secs = 3\npromote_join_deadline_secs = 20\n",
    )
    .unwrap();
    let role_config = network.path("promoted.toml");
    std::fs::write(&role_config, "promote_min_in_role_secs = 10\n").unwrap();
    let home = [
        "--capacity",
        CAPACITY,
        "--config",
        home_config.to_str().unwrap(),
    ];
    let sn1 = network.supernode("sn1", &home);
    let seed = sn1.addr().to_string();
    let mut with_seed = home.to_vec();
    with_seed.extend(["--seed", &seed]);
    let sn2 = network.supernode("sn2", &with_seed);
    wait_for_overlay(&[&sn1, &sn2], 2);

    let profiles: Vec<PathBuf> = users.iter().map(|u| network.login(u)).collect();
    let watcher = network.login("watcher");
    let started = Instant::now();
    let mut sessions: Vec<Running> = profiles
        .iter()
        .map(|p| promotable(p, &role_config))
        .collect();
    for session in &mut sessions {
        session.expect("online via", Duration::from_secs(120));
    }
    println!("all {USERS} online after {:?}", started.elapsed());
    let promoted_now = |sessions: &mut Vec<Running>| -> Vec<usize> {
        (0..USERS)
            .filter(|&i| sessions[i].seen_contains("promoted: serving as a supernode"))
            .collect()
    };
    // Promotions go on while utilization is at or above 80%: 60 clients need 80 places, the
    // 40 of the operators' and 2 promoted supernodes of 20 (75%).
    assert!(
        wait_until(Duration::from_secs(60), || {
            let places = 40 + 20 * promoted_now(&mut sessions).len();
            USERS * 1000 / places < 800
        }),
        "promotions stopped at {:?}",
        promoted_now(&mut sessions)
    );
    // And no more: nothing new for longer than a cooldown and a join.
    std::thread::sleep(Duration::from_secs(8));
    let promoted = promoted_now(&mut sessions);
    println!("promoted after {:?}: {promoted:?}", started.elapsed());
    // Both homes may nominate on the same figures once: at most one more than needed.
    assert!(
        (2..=3).contains(&promoted.len()),
        "promoted {} clients",
        promoted.len()
    );
    assert_eq!(
        metric(&network.auth, "switchboard_auth_promotions_total"),
        Some(promoted.len() as u64)
    );
    let nominations = metric(&sn1, "switchboard_supernode_nominations_total").unwrap()
        + metric(&sn2, "switchboard_supernode_nominations_total").unwrap();
    assert_eq!(nominations, promoted.len() as u64);
    assert!(
        metric(&sn1, "switchboard_supernode_dial_backs_ok_total").unwrap()
            + metric(&sn2, "switchboard_supernode_dial_backs_ok_total").unwrap()
            >= promoted.len() as u64
    );
    // The promoted supernodes announced themselves: logins now hand them out.
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            &network.auth,
            "switchboard_auth_supernodes_announced"
        )
        .is_some_and(|n| n >= 2 + promoted.len() as u64)),
        "the promoted supernodes are not in the bootstrap list"
    );
    let all: Vec<&str> = users.iter().map(String::as_str).collect();
    assert_eq!(unfindable(&watcher, &all), Vec::<String>::new());

    // 40 of the clients that were not promoted leave.
    let leaving: Vec<usize> = (0..USERS)
        .filter(|i| !promoted.contains(i))
        .take(40)
        .collect();
    let staying: Vec<&str> = (0..USERS)
        .filter(|i| !leaving.contains(i))
        .map(|i| users[i].as_str())
        .collect();
    for &i in &leaving {
        sessions[i].kill9();
    }
    let left = Instant::now();
    // Lookups of the users still online keep succeeding while the promoted supernodes step
    // down and their clients move.
    let mut failures = Vec::new();
    let mut rounds = 0;
    let demoted = loop {
        failures.extend(unfindable(&watcher, &staying));
        rounds += 1;
        let demoted = promoted
            .iter()
            .filter(|&&i| sessions[i].seen_contains("demoted:"))
            .count();
        if demoted == promoted.len() || left.elapsed() > Duration::from_secs(90) {
            break demoted;
        }
    };
    println!(
        "{demoted} demoted after {:?}, {rounds} lookup rounds",
        left.elapsed()
    );
    assert_eq!(
        demoted,
        promoted.len(),
        "every promoted supernode steps down"
    );
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "lookups failed during the handoff"
    );
    assert!(
        wait_until(Duration::from_secs(20), || connected(&[&sn1, &sn2])
            == staying.len() as u64),
        "the {} remaining clients are back on the operator supernodes ({} are)",
        staying.len(),
        connected(&[&sn1, &sn2])
    );
    assert_eq!(
        metric(&network.auth, "switchboard_auth_step_downs_total"),
        Some(promoted.len() as u64)
    );
    assert_eq!(unfindable(&watcher, &staying), Vec::<String>::new());
}
