//! A real partition between supernode processes: the kernel drops every UDP packet between the
//! listening ports of {sn1, sn2} and {sn3, sn4} (an nftables table of this test's own, on
//! loopback); each side declares the other down and goes on; once the rule is deleted the
//! overlay heals by itself and every client, online throughout, is found again.
//!
//! Needs root and `nft` (as CI on this machine kind has). Without them it fails, unless
//! `SWITCHBOARD_SKIP_ROOT_TESTS=1` says to skip it on purpose. The simulator's partition test
//! covers the same ground in-process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use switchboard_tests::Daemon;

const SUPERNODES: [&str; 4] = ["sn1", "sn2", "sn3", "sn4"];

fn members(supernodes: &[Daemon]) -> Vec<Option<u64>> {
    supernodes
        .iter()
        .map(|s| metric(s, "switchboard_overlay_members_live"))
        .collect()
}

/// An nftables table dropping UDP between two sets of loopback ports; deleted on drop.
struct Cut {
    table: String,
}

impl Cut {
    fn available() -> bool {
        Command::new("nft")
            .args(["list", "tables"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn new(a: &[u16], b: &[u16]) -> Self {
        let table = format!("switchboard_partition_{}", std::process::id());
        let set = |ports: &[u16]| {
            format!(
                "{{ {} }}",
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let script = format!(
            "table inet {table} {{\n chain out {{\n type filter hook output priority 0; policy accept;\n \
             udp sport {a} udp dport {b} drop\n udp sport {b} udp dport {a} drop\n }}\n}}\n",
            a = set(a),
            b = set(b)
        );
        let path = std::env::temp_dir().join(format!("{table}.nft"));
        std::fs::write(&path, script).unwrap();
        let status = Command::new("nft").arg("-f").arg(&path).status().unwrap();
        assert!(status.success(), "nft refused the partition rules");
        Self { table }
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .status();
    }
}

fn lookups(users: &[String], profiles: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for (i, profile) in profiles.iter().enumerate() {
        for (j, user) in users.iter().enumerate() {
            if i == j {
                continue;
            }
            let (ok, _, stderr) = client(&["lookup", user, "--profile", profile.to_str().unwrap()]);
            if !ok {
                failures.push(format!("{} -> {user}: {}", users[i], stderr.trim()));
            }
        }
    }
    failures
}

#[test]
fn a_real_partition_between_supernodes_heals_by_itself_and_loses_no_record() {
    if !Cut::available() {
        let skip = std::env::var("SWITCHBOARD_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1");
        assert!(
            skip,
            "this test needs root and nft to cut loopback traffic between processes; \
             set SWITCHBOARD_SKIP_ROOT_TESTS=1 to skip it knowingly"
        );
        println!("skipped (SWITCHBOARD_SKIP_ROOT_TESTS=1): needs root and nft");
        return;
    }
    let users: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let network = Network::new(&user_refs, &SUPERNODES);
    let first = network.supernode("sn1", &[]);
    let seed = first.addr().to_string();
    let mut supernodes = vec![first];
    for name in &SUPERNODES[1..] {
        supernodes.push(network.supernode(name, &["--seed", &seed]));
    }
    assert!(
        wait_until(Duration::from_secs(30), || members(&supernodes)
            .iter()
            .all(|m| *m == Some(4))),
        "no overlay of 4: {:?}",
        members(&supernodes)
    );
    let profiles: Vec<PathBuf> = users.iter().map(|u| network.login(u)).collect();
    let mut onlines: Vec<Running> = profiles.iter().map(|p| online(p)).collect();
    for o in &mut onlines {
        o.expect("online via", Duration::from_secs(20));
    }
    // Every record on its 3 owners (8 users x 3) before anyone looks.
    wait_for_index(&supernodes, 8 * 3);
    let failures = lookups(&users, &profiles);
    assert!(failures.is_empty(), "before the partition: {failures:#?}");

    let ports: Vec<u16> = supernodes.iter().map(|s| s.addr().port()).collect();
    let cut = Cut::new(&ports[..2], &ports[2..]);
    let split = Instant::now();
    assert!(
        wait_until(Duration::from_secs(20), || members(&supernodes)
            .iter()
            .all(|m| *m == Some(2))),
        "the sides did not see each other down: {:?}",
        members(&supernodes)
    );
    println!(
        "each side saw the other down {:?} after the cut",
        split.elapsed()
    );
    // The partition lasts a while (the scenario, not a wait for anything).
    std::thread::sleep(Duration::from_secs(3));

    drop(cut);
    let healed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || members(&supernodes)
            .iter()
            .all(|m| *m == Some(4))),
        "the overlay did not heal: {:?}",
        members(&supernodes)
    );
    println!(
        "overlay of 4 again {:?} after the link returned",
        healed.elapsed()
    );
    // The homes re-publish to the owners the merged membership names: every lookup succeeds
    // again (retried until then; the time it took is reported).
    let mut failures = lookups(&users, &profiles);
    while !failures.is_empty() && healed.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        failures = lookups(&users, &profiles);
    }
    assert!(failures.is_empty(), "after the heal: {failures:#?}");
    println!(
        "all {} lookups succeed {:?} after the link returned",
        users.len() * (users.len() - 1),
        healed.elapsed()
    );
    for o in &mut onlines {
        assert!(
            !o.seen_contains("lost "),
            "a client lost its home during the partition"
        );
    }
}
