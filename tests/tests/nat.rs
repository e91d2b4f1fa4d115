//! Clients behind home routers (issue #14, point 5): two NATs with masquerading, a "public"
//! segment with the auth-server and two supernodes, and a core router between them. Each test
//! builds its own namespaces (deleted on drop) and runs the real binaries in them:
//!
//! ```text
//!  auth 10.251.30.10  sn1 10.251.30.11  sn2 10.251.30.12      (public segment, bridge in core)
//!                          |
//!                 core 10.251.30.1 ---- 10.251.31.1 -- routerA 10.251.31.2 (MASQUERADE)
//!                          |                                |  10.251.41.1
//!                          |                             alice 10.251.41.2
//!                          +----------- 10.251.32.1 -- routerB 10.251.32.2 (MASQUERADE,
//!                                                           |  10.251.42.1   maybe --random-fully)
//!                                                          bob 10.251.42.2
//! ```
//!
//! carol (10.251.30.20, on the public segment, no NAT) is online only in the timing bench.
//!
//! The core routes only the public subnets: nothing reaches a client's private address, so a
//! message between alice and bob goes direct never, punched when both NATs keep one mapping per
//! socket, relayed when bob's NAT gives each destination its own port (`--random-fully`).
//!
//! Needs root, `ip`, `iptables`, `curl` and `tcpdump` (CI installs what is missing). Without
//! root and `ip` it fails, unless `SWITCHBOARD_SKIP_ROOT_TESTS=1` says to skip it on purpose.
//! The four tests take a lock: each runs five daemons, and the machine has two cores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{ip, metric_on, run_in, wait_until, HostedNetwork, Running};
use switchboard_tests::{Binary, Daemon};

const READY: Duration = Duration::from_secs(30);

/// One NAT test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// How bob's router maps his sockets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mapping {
    /// One public port per socket, whatever the destination (Linux `MASQUERADE`, which keeps
    /// the source port when it can): a hole can be punched.
    PerSocket,
    /// A new random port per destination (`MASQUERADE --random-fully`): the port a supernode
    /// sees is useless to anyone else.
    PerDestination,
}

/// The namespaces, named `sbn<pid><tag><host>`.
struct Nat {
    prefix: String,
}

const HOSTS: [&str; 9] = [
    "core", "auth", "sn1", "sn2", "routera", "routerb", "alice", "bob", "carol",
];

fn sh(netns: &str, command: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "sh", "-c", command])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{netns}: {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Nat {
    fn new(tag: &str, bob: Mapping) -> Self {
        let nat = Self {
            prefix: format!("sbn{}{tag}", std::process::id()),
        };
        for host in HOSTS {
            ip(&["netns", "add", &nat.ns(host)]);
            ip(&["-n", &nat.ns(host), "link", "set", "lo", "up"]);
        }
        let core = nat.ns("core");
        sh(
            &core,
            "ip link add br0 type bridge && ip addr add 10.251.30.1/24 dev br0 && \
             ip link set br0 up && sysctl -qw net.ipv4.ip_forward=1",
        );
        for (i, (host, addr)) in [
            ("auth", "10.251.30.10"),
            ("sn1", "10.251.30.11"),
            ("sn2", "10.251.30.12"),
            ("carol", "10.251.30.20"),
        ]
        .iter()
        .enumerate()
        {
            let port = format!("p{i}");
            nat.wire(host, "eth0", &format!("{addr}/24"), "core", &port, None);
            sh(
                &core,
                &format!("ip link set {port} master br0 && ip link set {port} up"),
            );
            sh(&nat.ns(host), "ip route add default via 10.251.30.1");
        }
        for (router, wan, core_side, lan, home) in [
            ("routera", "31", "ra", "41", "alice"),
            ("routerb", "32", "rb", "42", "bob"),
        ] {
            nat.wire(
                router,
                "wan",
                &format!("10.251.{wan}.2/24"),
                "core",
                core_side,
                Some(&format!("10.251.{wan}.1/24")),
            );
            nat.wire(
                router,
                "lan",
                &format!("10.251.{lan}.1/24"),
                home,
                "eth0",
                Some(&format!("10.251.{lan}.2/24")),
            );
            let random = if router == "routerb" && bob == Mapping::PerDestination {
                " --random-fully"
            } else {
                ""
            };
            sh(
                &nat.ns(router),
                &format!(
                    "sysctl -qw net.ipv4.ip_forward=1 && \
                     sysctl -qw net.ipv4.conf.all.promote_secondaries=1 && \
                     sysctl -qw net.ipv4.conf.wan.promote_secondaries=1 && \
                     ip route add default via 10.251.{wan}.1 && \
                     iptables -t nat -A POSTROUTING -o wan -j MASQUERADE{random}"
                ),
            );
            sh(
                &nat.ns(home),
                &format!("ip route add default via 10.251.{lan}.1"),
            );
        }
        nat
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// A veth from `a` (named `a_if`, address `a_addr`) to `b` (named `b_if`, address
    /// `b_addr` if any), both up.
    fn wire(&self, a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: Option<&str>) {
        let (na, nb) = (self.ns(a), self.ns(b));
        ip(&[
            "-n", &na, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &nb,
        ]);
        ip(&["-n", &na, "addr", "add", a_addr, "dev", a_if]);
        ip(&["-n", &na, "link", "set", a_if, "up"]);
        if let Some(b_addr) = b_addr {
            ip(&["-n", &nb, "addr", "add", b_addr, "dev", b_if]);
        }
        ip(&["-n", &nb, "link", "set", b_if, "up"]);
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        for host in HOSTS {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(host)])
                .output();
        }
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The network running: the auth-server, two supernodes, alice and bob online behind their
/// routers.
struct World {
    nat: Nat,
    dir: tempfile::TempDir,
    pubkey: String,
    supernodes: Vec<(Daemon, &'static str)>,
    alice: Option<Running>,
    bob: Option<Running>,
    _auth: Daemon,
}

impl World {
    fn start(tag: &str, bob: Mapping) -> Self {
        let nat = Nat::new(tag, bob);
        let dir = tempfile::tempdir().unwrap();
        let auth_data = dir.path().join("auth");
        let secret = dir.path().join("sn.password");
        std::fs::write(&secret, "a-service-password\n").unwrap();
        let auth_host = nat.ns("auth");
        let (ok, pubkey, stderr) = run_in(
            &auth_host,
            Binary::AuthServer,
            &["init", "--data-dir", text(&auth_data)],
            "",
        );
        assert!(ok, "{stderr}");
        let pubkey = pubkey.trim().to_owned();
        let add = |name: &str, role: &str, stdin: &str| {
            let mut args = vec!["user", "add", name, "--role", role];
            args.extend(["--data-dir", text(&auth_data)]);
            if stdin.is_empty() {
                args.extend(["--password-file", text(&secret)]);
            }
            let (ok, _, stderr) = run_in(&auth_host, Binary::AuthServer, &args, stdin);
            assert!(ok, "{stderr}");
        };
        add("sn1", "supernode", "");
        add("sn2", "supernode", "");
        add("alice", "user", "alice-password\n");
        add("bob", "user", "bob-password\n");
        add("carol", "user", "carol-password\n");
        let auth = Binary::AuthServer
            .spawn_daemon_in(
                &auth_host,
                &[
                    "serve",
                    "--data-dir",
                    text(&auth_data),
                    "--listen",
                    "0.0.0.0:7700",
                ],
                READY,
            )
            .unwrap();
        let mut supernodes = Vec::new();
        let hosted = HostedNetwork {
            auth: "10.251.30.10:7700",
            pubkey: &pubkey,
            secret: &secret,
            dir: dir.path(),
        };
        for (name, addr, extra) in [
            ("sn1", "10.251.30.11:7710", &[][..]),
            (
                "sn2",
                "10.251.30.12:7710",
                &["--seed", "10.251.30.11:7710"][..],
            ),
        ] {
            supernodes.push((hosted.supernode(&nat.ns(name), name, addr, extra), addr));
        }
        assert!(
            wait_until(Duration::from_secs(30), || {
                metric_on(&nat.ns("sn1"), 9710, "switchboard_overlay_members_live") == Some(2)
            }),
            "the two supernodes did not find each other"
        );
        let mut world = Self {
            nat,
            dir,
            pubkey,
            supernodes,
            alice: None,
            bob: None,
            _auth: auth,
        };
        world.alice = Some(world.online("alice"));
        world.bob = Some(world.online("bob"));
        world
    }

    /// Logs `name` in on its host and starts `client online` there, listening on all
    /// interfaces; waits until it is registered (behind a NAT, with its reflexive address).
    fn online(&self, name: &str) -> Running {
        let hosted = HostedNetwork {
            auth: "10.251.30.10:7700",
            pubkey: &self.pubkey,
            secret: &self.dir.path().join("sn.password"),
            dir: self.dir.path(),
        };
        let mut running = hosted.online(&self.nat.ns(name), name, &self.profile(name));
        if name != "carol" {
            running.expect("reflexive address", Duration::from_secs(30));
        }
        running.expect("online via", Duration::from_secs(30));
        running
    }

    fn alice(&mut self) -> &mut Running {
        self.alice.as_mut().unwrap()
    }

    fn bob(&mut self) -> &mut Running {
        self.bob.as_mut().unwrap()
    }

    fn profile(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `client ARGS --profile P` on `name`'s host.
    fn client(&self, name: &str, args: &[&str]) -> (bool, String, String) {
        let profile = self.profile(name);
        let mut all = args.to_vec();
        all.extend(["--profile", text(&profile)]);
        run_in(&self.nat.ns(name), Binary::Client, &all, "")
    }

    /// `from` sends `message` to `to` with `--json`: the path taken and how long it took.
    fn send(
        &self,
        from: &str,
        to: &str,
        message: &str,
    ) -> Result<(serde_json::Value, Duration), String> {
        let started = Instant::now();
        let (ok, stdout, stderr) = self.client(from, &["send", to, message, "--json"]);
        let took = started.elapsed();
        if !ok {
            return Err(stderr);
        }
        Ok((serde_json::from_str(stdout.trim()).unwrap(), took))
    }

    /// The supernode a client's `online` said last it is homed on.
    fn home_of(running: &mut Running) -> &'static str {
        let lines = running.seen_lines();
        let line = lines
            .iter()
            .rev()
            .find(|l| l.contains("online via"))
            .expect("online");
        if line.contains("10.251.30.11") {
            "sn1"
        } else {
            "sn2"
        }
    }
}

#[test]
fn two_clients_behind_nats_that_keep_a_port_per_socket_talk_through_a_punched_hole() {
    if !common::netns_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut world = World::start("p", Mapping::PerSocket);

    // Bob sees alice's router's address marked as reflexive, beside her private one.
    let (ok, stdout, stderr) = world.client("bob", &["lookup", "alice"]);
    assert!(ok, "{stderr}");
    println!("lookup: {stdout}");
    assert!(stdout.contains("10.251.41.2:4433"), "{stdout}");
    assert!(stdout.contains("10.251.31.2:4433 (reflexive)"), "{stdout}");

    let (sent, took) = world
        .send("bob", "alice", "hello through two NATs")
        .unwrap();
    println!("bob -> alice: {sent} in {took:?}");
    assert_eq!(sent["path"], "punched", "{sent}");
    world
        .alice()
        .expect("from bob: hello through two NATs", Duration::from_secs(10));
}

#[test]
fn a_client_behind_a_nat_with_a_port_per_destination_is_reached_through_a_relay_that_sees_only_ciphertext(
) {
    if !common::netns_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut world = World::start("r", Mapping::PerDestination);
    let home = World::home_of(world.bob());

    // Every packet to and from bob's home is captured while alice messages him.
    let pcap = world.dir.path().join("relay.pcap");
    let mut capture = Command::new("ip")
        .args(["netns", "exec", &world.nat.ns(home)])
        .args([
            "tcpdump",
            "-i",
            "any",
            "-U",
            "-s",
            "0",
            "-w",
            text(&pcap),
            "udp",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || pcap.exists()),
        "tcpdump did not start"
    );
    std::thread::sleep(Duration::from_millis(500));
    let secret = "plaintext-marker-5e1f9c-only-for-bob";
    let (sent, took) = world.send("alice", "bob", secret).unwrap();
    println!("alice -> bob: {sent} in {took:?}");
    world
        .bob()
        .expect(&format!("from alice: {secret}"), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    let _ = capture.wait();

    assert_eq!(sent["path"], "relayed", "{sent}");
    let relayed = metric_on(
        &world.nat.ns(home),
        9710,
        "switchboard_supernode_relay_bytes_total",
    )
    .unwrap_or(0);
    let captured = std::fs::read(&pcap).unwrap();
    println!(
        "relay {home} forwarded {relayed} bytes; the capture holds {} bytes",
        captured.len()
    );
    assert!(relayed > 1_000, "the relay forwarded {relayed} bytes");
    assert!(
        captured.len() as u64 > relayed,
        "the capture missed the relayed packets"
    );
    assert!(
        !captured
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "the plaintext crossed the relay"
    );
}

#[test]
fn a_nat_rebinding_is_noticed_and_re_registered_within_one_refresh() {
    if !common::netns_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut world = World::start("b", Mapping::PerSocket);
    let lookup = |world: &World| world.client("bob", &["lookup", "alice"]).1;
    assert!(lookup(&world).contains("10.251.31.2:4433 (reflexive)"));

    // Alice's router gets a new public address and loses the old one: its masquerading
    // mappings go with it, and her packets leave from the new address.
    let router = world.nat.ns("routera");
    sh(
        &router,
        "ip addr add 10.251.31.3/24 dev wan && ip addr del 10.251.31.2/24 dev wan && \
         (ip route show default | grep -q . || ip route add default via 10.251.31.1)",
    );
    let rebound = Instant::now();
    world
        .alice()
        .expect_new("reflexive address changed", Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(10), || lookup(&world)
            .contains("10.251.31.3:4433 (reflexive)")),
        "bob still finds {}",
        lookup(&world)
    );
    let took = rebound.elapsed();
    println!("the new reflexive address was published {took:?} after the rebinding");
    // One refresh is a third of the 60 s lease.
    assert!(took <= Duration::from_secs(25), "{took:?}");

    let (sent, _) = world.send("bob", "alice", "after the rebinding").unwrap();
    assert_eq!(sent["path"], "punched", "{sent}");
    world
        .alice()
        .expect("from bob: after the rebinding", Duration::from_secs(10));
}

#[test]
fn when_the_relay_is_killed_the_next_send_finds_another_path() {
    if !common::netns_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut world = World::start("k", Mapping::PerDestination);
    let first_home = World::home_of(world.bob());
    let (first, _) = world.send("alice", "bob", "first, relayed").unwrap();
    assert_eq!(first["path"], "relayed", "{first}");
    world
        .bob()
        .expect("from alice: first, relayed", Duration::from_secs(10));

    let index = usize::from(first_home == "sn2");
    let (relay, _) = world.supernodes.remove(index);
    let killed = Instant::now();
    relay.kill9();
    world
        .bob()
        .expect_new("online via", Duration::from_secs(20));
    let mut last = Err(String::new());
    assert!(
        wait_until(Duration::from_secs(30), || {
            last = world.send("alice", "bob", "second, after the relay died");
            last.is_ok()
        }),
        "no path after the relay died: {last:?}"
    );
    let (sent, _) = last.unwrap();
    println!(
        "delivered {sent} {:?} after the relay died",
        killed.elapsed()
    );
    assert_eq!(sent["path"], "relayed", "{sent}");
    assert_ne!(World::home_of(world.bob()), first_home);
    assert_ne!(sent["via"], first["via"], "relayed by the dead supernode?");
    world.bob().expect(
        "from alice: second, after the relay died",
        Duration::from_secs(10),
    );
}

/// Sends `count` messages `from` -> `to` and prints each time and the median: the time from
/// `client send` starting (a new process: its lookup, then the path) to the message delivered.
fn time_sends(world: &World, from: &str, to: &str, path: &str, count: usize) -> Duration {
    let mut times = Vec::new();
    for i in 0..count {
        let (sent, took) = world.send(from, to, &format!("timed {i}")).unwrap();
        assert_eq!(sent["path"], path, "{sent}");
        times.push(took);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("{from} -> {to} {path}: median {median:?} of {times:?}");
    median
}

/// The time to a first delivered message on each path (BENCHMARKS.md, "Behind NAT"):
/// `cargo test --release -p switchboard-tests --test nat -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: run it with --ignored --release"]
fn bench_time_to_first_message_on_each_path() {
    if !common::netns_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let world = World::start("t", Mapping::PerSocket);
    let _carol = world.online("carol");
    time_sends(&world, "bob", "carol", "direct", 7);
    time_sends(&world, "bob", "alice", "punched", 7);
    drop(world);
    let world = World::start("u", Mapping::PerDestination);
    time_sends(&world, "alice", "bob", "relayed", 7);
}
