//! Reachability decides promotion (issue #11, point 2), with hosts of their own: a promotable
//! client behind a NAT is never promoted, one with a reachable address is.
//!
//! Network namespaces made by this test (deleted on drop):
//!
//! ```text
//!   this host (root namespace): auth-server and sn1 on 10.251.1.1
//!     |-- 10.251.1.0/24 --- router namespace (10.251.1.2, masquerading)
//!     |                        `-- 10.251.3.0/24 --- home namespace: natted client 10.251.3.2
//!     `-- 10.251.2.0/24 --- open namespace: reachable client 10.251.2.2
//! ```
//!
//! The root namespace gets an `unreachable` route for the home LAN, so a dial-back to the
//! natted client's private address fails here instead of leaving the machine.
//!
//! Needs root and `ip` (as CI on this machine kind has). Without them it fails, unless
//! `SWITCHBOARD_SKIP_ROOT_TESTS=1` says to skip it on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{metric, wait_for_overlay, wait_until, Network, Running};

/// Runs `ip ARGS` (or another command), panicking with its output on failure.
fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three namespaces and their links; removed on drop.
struct Topology {
    router: String,
    home: String,
    open: String,
}

impl Topology {
    fn new() -> Self {
        // The machine's own networks must not overlap ours (this test once used 192.0.2.0/24,
        // which a machine of this kind has on its eth0).
        let routes = Command::new("ip").args(["-4", "route"]).output().unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout);
        assert!(
            !routes.contains("10.251."),
            "10.251.0.0/16 is in use on this machine; this test needs it: {routes}"
        );
        let id = std::process::id();
        let t = Self {
            router: format!("sbr{id}"),
            home: format!("sbh{id}"),
            open: format!("sbo{id}"),
        };
        let (r, h, o) = (t.router.as_str(), t.home.as_str(), t.open.as_str());
        let (r0, r1) = (format!("{r}a"), format!("{r}b"));
        let (h0, h1) = (format!("{h}a"), format!("{h}b"));
        let (o0, o1) = (format!("{o}a"), format!("{o}b"));
        for ns in [r, h, o] {
            sh("ip", &["netns", "add", ns]);
            sh("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        // This host <-> the router's public side.
        sh(
            "ip",
            &["link", "add", &r0, "type", "veth", "peer", "name", &r1],
        );
        sh("ip", &["link", "set", &r1, "netns", r]);
        sh("ip", &["addr", "add", "10.251.1.1/24", "dev", &r0]);
        sh("ip", &["link", "set", &r0, "up"]);
        sh("ip", &["-n", r, "addr", "add", "10.251.1.2/24", "dev", &r1]);
        sh("ip", &["-n", r, "link", "set", &r1, "up"]);
        // The router's LAN <-> the home host, masqueraded on the way out.
        sh(
            "ip",
            &[
                "-n", r, "link", "add", &h0, "type", "veth", "peer", "name", &h1,
            ],
        );
        sh("ip", &["-n", r, "link", "set", &h1, "netns", h]);
        sh("ip", &["-n", r, "addr", "add", "10.251.3.1/24", "dev", &h0]);
        sh("ip", &["-n", r, "link", "set", &h0, "up"]);
        sh("ip", &["-n", h, "addr", "add", "10.251.3.2/24", "dev", &h1]);
        sh("ip", &["-n", h, "link", "set", &h1, "up"]);
        sh(
            "ip",
            &["-n", h, "route", "add", "default", "via", "10.251.3.1"],
        );
        sh(
            "ip",
            &["netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        );
        sh(
            "ip",
            &[
                "netns",
                "exec",
                r,
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                &r1,
                "-j",
                "MASQUERADE",
            ],
        );
        // This host <-> the open host, on a public address of its own.
        sh(
            "ip",
            &["link", "add", &o0, "type", "veth", "peer", "name", &o1],
        );
        sh("ip", &["link", "set", &o1, "netns", o]);
        sh("ip", &["addr", "add", "10.251.2.1/24", "dev", &o0]);
        sh("ip", &["link", "set", &o0, "up"]);
        sh("ip", &["-n", o, "addr", "add", "10.251.2.2/24", "dev", &o1]);
        sh("ip", &["-n", o, "link", "set", &o1, "up"]);
        sh(
            "ip",
            &["-n", o, "route", "add", "default", "via", "10.251.2.1"],
        );
        // A private LAN is not routable from here: fail fast, send nothing out.
        sh("ip", &["route", "add", "unreachable", "10.251.3.0/24"]);
        t
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", "unreachable", "10.251.3.0/24"])
            .output();
        // Our ends of the links first (deleting a namespace frees its links lazily).
        for link in [format!("{}a", self.router), format!("{}a", self.open)] {
            let _ = Command::new("ip").args(["link", "del", &link]).output();
        }
        for ns in [&self.home, &self.router, &self.open] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn promotable_in(netns: &str, profile: &std::path::Path, ip: &str) -> Running {
    let listen = format!("{ip}:0");
    Running::start_in(
        netns,
        &[
            "online",
            "--profile",
            profile.to_str().unwrap(),
            "--listen",
            &listen,
            "--promotable",
            "--capacity",
            "20",
            "--serve",
            &listen,
        ],
    )
}

#[test]
fn a_promotable_client_behind_a_nat_is_never_promoted_and_a_reachable_one_is() {
    if !common::netns_or_skip() {
        return;
    }
    let topology = Topology::new();
    let network = Network::with_on(
        &[
            ("sn1", "supernode"),
            ("natted", "user"),
            ("plain", "user"),
            ("open", "user"),
        ],
        "",
        "10.251.1.1:0",
    );
    let config = network.path("home.toml");
    std::fs::write(
        &config,
        "promote_min_session_secs = 1\npromote_cooldown_secs = 1\n",
    )
    .unwrap();
    let sn1 = network.supernode(
        "sn1",
        &[
            "--listen",
            "10.251.1.1:0",
            "--capacity",
            "2",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    wait_for_overlay(&[&sn1], 1);
    let [natted, plain, open] = ["natted", "plain", "open"].map(|u| network.login(u));

    // The overlay is full (2 of 2): hot. The natted client offers itself; the dial-back to the
    // address it offers (its private one) fails, and it is never nominated.
    let mut behind_nat = promotable_in(&topology.home, &natted, "10.251.3.2");
    behind_nat.expect("online via", Duration::from_secs(30));
    behind_nat.expect(
        "offered as a supernode at 10.251.3.2:",
        Duration::from_secs(10),
    );
    let mut filler = Running::start_in(
        &topology.open,
        &[
            "online",
            "--profile",
            plain.to_str().unwrap(),
            "--listen",
            "10.251.2.2:0",
        ],
    );
    filler.expect("online via", Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(15), || metric(
            &sn1,
            "switchboard_supernode_dial_backs_failed_total"
        )
        .is_some_and(|n| n >= 1)),
        "the dial-back to the natted client was not seen failing"
    );
    // Hot for longer than the minimum session and the cooldown, several times over.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        metric(&sn1, "switchboard_supernode_nominations_total"),
        Some(0)
    );
    assert!(!behind_nat.seen_contains("promoted"));

    // A reachable promotable client takes the filler's place: it is dialed back on its public
    // address, nominated and promoted.
    filler.kill9();
    let mut reachable = promotable_in(&topology.open, &open, "10.251.2.2");
    reachable.expect("online via", Duration::from_secs(30));
    reachable.expect(
        "promoted: serving as a supernode at 10.251.2.2:",
        Duration::from_secs(30),
    );
    assert!(metric(&sn1, "switchboard_supernode_dial_backs_ok_total").unwrap() >= 1);
    assert_eq!(
        metric(&sn1, "switchboard_supernode_nominations_total"),
        Some(1)
    );
    // It joins the overlay from its own host.
    wait_for_overlay(&[&sn1], 2);
    assert!(!behind_nat.seen_contains("promoted"));
}
