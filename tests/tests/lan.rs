//! Clients on hosts of their own on one LAN segment, started as the README shows them
//! (`client online --listen 0.0.0.0:4433`): each publishes an address the other host can dial
//! (its LAN address, never `127.0.0.1`), and `client send` between the two hosts delivers
//! (issue #13, point 5; issue #14, point 0).
//!
//! Network namespaces made by this test (deleted on drop), one Ethernet segment:
//!
//! ```text
//!   bridge namespace: br0
//!     |-- this host (root namespace) 10.251.6.1: auth-server, sn1
//!     |-- host A namespace 10.251.6.2: alice's `client online --listen 0.0.0.0:4433`
//!     `-- host B namespace 10.251.6.3: bob's `client online`, `lookup`, `send`
//! ```
//!
//! Needs root and `ip` (as CI on this machine kind has). Without them it fails, unless
//! `SWITCHBOARD_SKIP_ROOT_TESTS=1` says to skip it on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{wait_for_overlay, Network, Running};
use switchboard_tests::Binary;

/// Runs `ip ARGS`, panicking with its output on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bridge in a namespace of its own, this host on it, and two hosts (namespaces) on it.
struct Lan {
    bridge: String,
    hosts: [String; 2],
    root_link: String,
}

impl Lan {
    fn available() -> bool {
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .is_ok_and(|o| o.status.success())
            && Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    fn new() -> Self {
        let routes = Command::new("ip").args(["-4", "route"]).output().unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout);
        assert!(
            !routes.contains("10.251.6."),
            "10.251.6.0/24 is in use on this machine; this test needs it: {routes}"
        );
        let id = std::process::id();
        let lan = Self {
            bridge: format!("sbl{id}"),
            hosts: [format!("sba{id}"), format!("sbb{id}")],
            root_link: format!("sbl{id}r"),
        };
        let br = lan.bridge.as_str();
        ip(&["netns", "add", br]);
        ip(&["-n", br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", br, "link", "set", "br0", "up"]);
        // This host's port on the segment.
        let (r0, r1) = (lan.root_link.clone(), format!("{br}s"));
        ip(&["link", "add", &r0, "type", "veth", "peer", "name", &r1]);
        ip(&["link", "set", &r1, "netns", br]);
        ip(&["-n", br, "link", "set", &r1, "master", "br0", "up"]);
        ip(&["addr", "add", "10.251.6.1/24", "dev", &r0]);
        ip(&["link", "set", &r0, "up"]);
        for (i, host) in lan.hosts.iter().enumerate() {
            let (h0, h1) = (format!("{host}a"), format!("{host}b"));
            ip(&["netns", "add", host]);
            ip(&["-n", host, "link", "set", "lo", "up"]);
            ip(&[
                "-n", host, "link", "add", &h0, "type", "veth", "peer", "name", &h1,
            ]);
            ip(&["-n", host, "link", "set", &h1, "netns", br]);
            ip(&["-n", br, "link", "set", &h1, "master", "br0", "up"]);
            let addr = format!("10.251.6.{}/24", i + 2);
            ip(&["-n", host, "addr", "add", &addr, "dev", &h0]);
            ip(&["-n", host, "link", "set", &h0, "up"]);
        }
        lan
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.root_link])
            .output();
        for ns in self.hosts.iter().chain([&self.bridge]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A one-shot `client ARGS` run on host `netns`: (success, stdout, stderr).
fn client_in(netns: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(Binary::Client.path().unwrap())
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn clients_listening_on_all_interfaces_publish_their_lan_address_and_talk_across_hosts() {
    if !Lan::available() {
        let skip = std::env::var("SWITCHBOARD_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1");
        assert!(
            skip,
            "this test needs root and `ip` to make network namespaces; \
             set SWITCHBOARD_SKIP_ROOT_TESTS=1 to skip it knowingly"
        );
        println!("skipped (SWITCHBOARD_SKIP_ROOT_TESTS=1): needs root and ip netns");
        return;
    }
    let lan = Lan::new();
    let network = Network::with_on(
        &[("sn1", "supernode"), ("alice", "user"), ("bob", "user")],
        "",
        "10.251.6.1:0",
    );
    let sn1 = network.supernode("sn1", &["--listen", "10.251.6.1:0"]);
    wait_for_overlay(&[&sn1], 1);
    let [alice, bob] = ["alice", "bob"].map(|u| network.login(u));
    let online = |host: &str, profile: &std::path::Path| {
        Running::start_in(
            host,
            &[
                "online",
                "--profile",
                profile.to_str().unwrap(),
                "--listen",
                "0.0.0.0:4433",
            ],
        )
    };
    let mut alice_online = online(&lan.hosts[0], &alice);
    alice_online.expect("online via", Duration::from_secs(30));
    let mut bob_online = online(&lan.hosts[1], &bob);
    bob_online.expect("online via", Duration::from_secs(30));

    // Bob's host sees alice at her LAN address, and only addresses another host can dial.
    let (ok, stdout, stderr) = client_in(
        &lan.hosts[1],
        &["lookup", "alice", "--profile", bob.to_str().unwrap()],
    );
    assert!(ok, "{stderr}");
    println!("lookup: {stdout}");
    assert!(stdout.contains("10.251.6.2:4433"), "{stdout}");
    assert!(
        !stdout.contains("127.0.0.1"),
        "a loopback endpoint: {stdout}"
    );

    // And reaches her directly, across the segment.
    let (ok, stdout, stderr) = client_in(
        &lan.hosts[1],
        &[
            "send",
            "alice",
            "hello across the LAN",
            "--profile",
            bob.to_str().unwrap(),
        ],
    );
    assert!(ok, "send failed: {stderr}");
    assert!(stdout.contains("delivered to alice"), "{stdout}");
    alice_online.expect("from bob: hello across the LAN", Duration::from_secs(10));
}
