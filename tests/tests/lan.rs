//! The README's LAN guide, command for command, on hosts of their own (issue #13, point 5):
//! an auth-server, two supernodes and a standby mega on four hosts, and two clients on two
//! more, all on one Ethernet segment. Clients started as the guide shows them (`client online
//! --listen 0.0.0.0:4433`) publish their LAN address first (ahead of an interface other hosts
//! cannot reach) and never `127.0.0.1` (issue #14, point 0),
//! find and message each other across hosts, and re-home when their supernode dies.
//!
//! Network namespaces made by this test (deleted on drop): a bridge namespace and one
//! namespace per host, each on the bridge with one address of 10.251.6.0/24:
//!
//! ```text
//!   auth 10.251.6.10   sn1 10.251.6.11   sn2 10.251.6.12   mega 10.251.6.13
//!   alice 10.251.6.21  bob 10.251.6.22
//! ```
//!
//! Needs root, `ip` and `curl` (as CI on this machine kind has). Without root and `ip` it
//! fails, unless `SWITCHBOARD_SKIP_ROOT_TESTS=1` says to skip it on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ip, metric_on, run_in, wait_until, HostedNetwork};
use switchboard_tests::{Binary, Daemon};

const READY: Duration = Duration::from_secs(30);

/// The hosts: (name suffix, address).
const HOSTS: [(&str, &str); 6] = [
    ("auth", "10.251.6.10"),
    ("sn1", "10.251.6.11"),
    ("sn2", "10.251.6.12"),
    ("mega", "10.251.6.13"),
    ("alice", "10.251.6.21"),
    ("bob", "10.251.6.22"),
];

/// A bridge in a namespace of its own and one namespace per host on it.
struct Lan {
    bridge: String,
    id: u32,
}

impl Lan {
    fn new() -> Self {
        let id = std::process::id();
        let lan = Self {
            bridge: format!("sbl{id}"),
            id,
        };
        let br = lan.bridge.as_str();
        ip(&["netns", "add", br]);
        ip(&["-n", br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", br, "link", "set", "br0", "up"]);
        for (i, (name, addr)) in HOSTS.iter().enumerate() {
            let host = lan.host(name);
            let (h0, h1) = (format!("sbh{i}a"), format!("sbh{id}{i}"));
            ip(&["netns", "add", &host]);
            ip(&["-n", &host, "link", "set", "lo", "up"]);
            if *name == "alice" {
                // An interface other hosts cannot reach (as a container bridge or a VPN is),
                // listed before the LAN's: the LAN address must still come first.
                ip(&[
                    "-n", &host, "link", "add", "bridge9", "type", "veth", "peer", "name",
                    "bridge9p",
                ]);
                ip(&["-n", &host, "link", "set", "bridge9p", "up"]);
                ip(&[
                    "-n",
                    &host,
                    "addr",
                    "add",
                    "10.251.99.1/24",
                    "dev",
                    "bridge9",
                ]);
                ip(&["-n", &host, "link", "set", "bridge9", "up"]);
            }
            ip(&[
                "-n", &host, "link", "add", &h0, "type", "veth", "peer", "name", &h1,
            ]);
            ip(&["-n", &host, "link", "set", &h1, "netns", br]);
            ip(&["-n", br, "link", "set", &h1, "master", "br0", "up"]);
            ip(&[
                "-n",
                &host,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                &h0,
            ]);
            ip(&["-n", &host, "link", "set", &h0, "up"]);
        }
        lan
    }

    /// The namespace of host `name`.
    fn host(&self, name: &str) -> String {
        format!("sb{}{name}", self.id)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for (name, _) in HOSTS {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.host(name)])
                .output();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.bridge])
            .output();
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn the_lan_guide_runs_a_network_on_six_hosts_and_survives_a_supernode_loss() {
    if !common::netns_or_skip() {
        return;
    }
    let lan = Lan::new();
    let dir = tempfile::tempdir().unwrap();
    let auth_data = dir.path().join("auth");
    let secret = dir.path().join("sn.password");
    std::fs::write(&secret, "a-service-password\n").unwrap();

    // The auth-server's host: a key, accounts, then serve.
    let (ok, pubkey, stderr) = run_in(
        &lan.host("auth"),
        Binary::AuthServer,
        &["init", "--data-dir", text(&auth_data)],
        "",
    );
    assert!(ok, "{stderr}");
    let pubkey = pubkey.trim().to_owned();
    for (name, role) in [("sn1", "supernode"), ("sn2", "supernode"), ("mega", "mega")] {
        let args = [
            "user",
            "add",
            name,
            "--role",
            role,
            "--data-dir",
            text(&auth_data),
            "--password-file",
            text(&secret),
        ];
        let (ok, _, stderr) = run_in(&lan.host("auth"), Binary::AuthServer, &args, "");
        assert!(ok, "{stderr}");
    }
    for name in ["alice", "bob"] {
        let args = ["user", "add", name, "--data-dir", text(&auth_data)];
        let (ok, _, stderr) = run_in(
            &lan.host("auth"),
            Binary::AuthServer,
            &args,
            &format!("{name}-password\n"),
        );
        assert!(ok, "{stderr}");
    }
    let _auth: Daemon = Binary::AuthServer
        .spawn_daemon_in(
            &lan.host("auth"),
            &[
                "serve",
                "--data-dir",
                text(&auth_data),
                "--listen",
                "0.0.0.0:7700",
                "--metrics",
                "127.0.0.1:9700",
            ],
            READY,
        )
        .unwrap();

    // The supernodes' hosts: the first, then the others joining through it; a mega on standby.
    let hosted = HostedNetwork {
        auth: "10.251.6.10:7700",
        pubkey: &pubkey,
        secret: &secret,
        dir: dir.path(),
    };
    let supernode = |name: &str, addr: &str, extra: &[&str]| {
        hosted.supernode(&lan.host(name), name, &format!("{addr}:7710"), extra)
    };
    let sn1 = supernode("sn1", "10.251.6.11", &[]);
    let sn2 = supernode("sn2", "10.251.6.12", &["--seed", "10.251.6.11:7710"]);
    let _mega = supernode(
        "mega",
        "10.251.6.13",
        &["--seed", "10.251.6.11:7710", "--mega", "--standby"],
    );
    // `switchboard_overlay_members_live` rises to the number of supernodes, the mega included.
    assert!(
        wait_until(Duration::from_secs(30), || {
            metric_on(&lan.host("sn1"), 9710, "switchboard_overlay_members_live") == Some(3)
        }),
        "sn1 sees {:?} live members, not 3",
        metric_on(&lan.host("sn1"), 9710, "switchboard_overlay_members_live")
    );

    // The clients' hosts: log in, go online on all interfaces.
    let client_host = |name: &str| {
        let profile = dir.path().join(format!("profile-{name}"));
        let mut online = hosted.online(&lan.host(name), name, &profile);
        online.expect("online via", Duration::from_secs(30));
        (profile, online)
    };
    let (_alice_profile, mut alice) = client_host("alice");
    let (bob_profile, _bob) = client_host("bob");

    // Bob's host sees alice at her LAN address, never loopback, and messages her directly.
    let lookup = || {
        run_in(
            &lan.host("bob"),
            Binary::Client,
            &["lookup", "alice", "--profile", text(&bob_profile)],
            "",
        )
    };
    let (ok, stdout, stderr) = lookup();
    assert!(ok, "{stderr}");
    println!("lookup: {stdout}");
    // Her LAN address first (the one her host reaches its supernode from), then her other one.
    assert!(
        stdout.starts_with("alice 10.251.6.21:4433 10.251.99.1:4433 "),
        "{stdout}"
    );
    assert!(
        !stdout.contains("127.0.0.1"),
        "a loopback endpoint: {stdout}"
    );
    let (ok, stdout, stderr) = run_in(
        &lan.host("bob"),
        Binary::Client,
        &[
            "send",
            "alice",
            "hello across the LAN",
            "--profile",
            text(&bob_profile),
        ],
        "",
    );
    assert!(ok, "send failed: {stderr}");
    assert!(stdout.contains("delivered to alice"), "{stdout}");
    alice.expect("from bob: hello across the LAN", Duration::from_secs(10));

    // Alice's supernode dies: she notices, fails over, and bob finds her again.
    let line = alice.expect("online via", Duration::from_secs(1));
    let victim = if line.contains("10.251.6.11") {
        sn1
    } else {
        sn2
    };
    let killed = Instant::now();
    victim.kill9();
    alice.expect_new("online via", Duration::from_secs(20));
    assert!(
        wait_until(Duration::from_secs(15), || lookup().0),
        "bob did not find alice after her supernode died"
    );
    println!(
        "alice re-homed and found again {:?} after the kill",
        killed.elapsed()
    );
}
