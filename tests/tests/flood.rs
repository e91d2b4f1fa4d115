//! Half-open handshake floods against the real auth-server and supernode (issue #10, point 1):
//! real QUIC Initials (a valid ClientHello with our ALPN) from a new source port each, never
//! continued. Each server must go on answering real clients: a `client login` and a
//! `client lookup` during the flood succeed within a second of their time before it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{client, metric, online, Network};
use switchboard_net::config::Role;
use switchboard_net::{client_config, transport_config, Identity, PeerPolicy, Resumption};
use switchboard_proto::keys::SecretKey;
use switchboard_proto::version::{ALPN_AUTH, ALPN_DIRECTORY};
use switchboard_tests::Daemon;

/// The floods run one at a time: each measures its servers' CPU and its clients' latency, which
/// a second flood on the same two cores would distort.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long each flood lasts, as the issue states it.
const FLOOD: Duration = Duration::from_secs(10);

/// Sends `count` half-open Initials to `target`, evenly spread over `over`, each from a socket
/// of its own (so from `count` source ports), and returns how many were sent.
fn flood(
    target: SocketAddr,
    alpn: &'static [u8],
    count: usize,
    over: Duration,
) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let identity = Identity::new(SecretKey::from_seed(rand::random()), None);
        let config = client_config(
            &identity,
            PeerPolicy::AnyKey,
            &[alpn],
            transport_config(Role::Dialer),
            Resumption::Disabled,
        )
        .unwrap();
        let mut endpoint = quinn_proto::Endpoint::new(
            Arc::new(quinn_proto::EndpointConfig::default()),
            None,
            false,
            None,
        );
        let start = Instant::now();
        let mut sent = 0;
        let mut buf = Vec::with_capacity(1500);
        for i in 0..count {
            let due = start + over.mul_f64(i as f64 / count as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let now = Instant::now();
            let Ok((_, mut connection)) =
                endpoint.connect(now, config.clone(), target, "switchboard")
            else {
                continue;
            };
            buf.clear();
            if let Some(transmit) = connection.poll_transmit(now, 1, &mut buf) {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                if socket.send_to(&buf[..transmit.size], target).is_ok() {
                    sent += 1;
                }
            }
            // The connection and its socket are dropped: the handshake is never continued.
        }
        sent
    })
}

/// CPU time (user + system) a process has used, from `/proc/PID/stat` (clock ticks of 10 ms,
/// Linux's USER_HZ).
fn cpu(daemon: &Daemon) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", daemon.pid())).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from the state field (3rd) here.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// `client login` for `user` into a fresh profile; its duration.
fn timed_login(network: &Network, user: &str, profile: &str) -> Duration {
    let started = Instant::now();
    network.login_at(user, profile);
    started.elapsed()
}

/// `client lookup bob` from `profile`; its duration.
fn timed_lookup(profile: &std::path::Path) -> Duration {
    let started = Instant::now();
    let (ok, stdout, stderr) = client(&["lookup", "bob", "--profile", profile.to_str().unwrap()]);
    let took = started.elapsed();
    assert!(ok, "lookup failed: {stderr}");
    assert!(stdout.contains("127.0.0.1"), "bob's endpoint: {stdout}");
    took
}

fn half_open_flood_leaves_both_doors_open(count: usize) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let network = Network::new(&["alice", "bob"], &["sn1"]);
    let sn1 = network.supernode("sn1", &[]);
    let bob = network.login("bob");
    let mut bob_online = online(&bob);
    bob_online.expect("online via", Duration::from_secs(15));
    let alice = network.login("alice");

    let login_before = timed_login(&network, "alice", "alice-before");
    let lookup_before = timed_lookup(&alice);
    let (auth_cpu, sn_cpu) = (cpu(&network.auth), cpu(&sn1));

    let floods = [
        flood(network.auth.addr(), ALPN_AUTH, count, FLOOD),
        flood(sn1.addr(), ALPN_DIRECTORY, count, FLOOD),
    ];
    // Six seconds in, the old listener's 256 permits were all held by the flood (a permit
    // was held for 10 s, and 600 Initials over 10 s are 360 by now).
    std::thread::sleep(Duration::from_secs(6));
    let login_during = timed_login(&network, "alice", "alice-during");
    let lookup_during = timed_lookup(&alice);
    let sent: Vec<usize> = floods.into_iter().map(|f| f.join().unwrap()).collect();
    let (auth_cpu, sn_cpu) = (cpu(&network.auth) - auth_cpu, cpu(&sn1) - sn_cpu);

    let auth_retried = metric(&network.auth, "switchboard_auth_handshakes_retried_total");
    let sn_retried = metric(&sn1, "switchboard_supernode_handshakes_retried_total");
    println!(
        "{count} half-open Initials over {FLOOD:?} to each server (sent {sent:?}): \
         login {login_before:?} before, {login_during:?} during; \
         lookup {lookup_before:?} before, {lookup_during:?} during; \
         CPU for the flood: auth-server {auth_cpu:?}, supernode {sn_cpu:?}; \
         Retries sent: auth-server {auth_retried:?}, supernode {sn_retried:?}"
    );
    assert!(
        sent.iter().all(|&s| s == count),
        "every Initial sent: {sent:?}"
    );
    let allowance = Duration::from_secs(1);
    assert!(
        login_during <= login_before + allowance,
        "login took {login_during:?} during the flood, {login_before:?} before"
    );
    assert!(
        lookup_during <= lookup_before + allowance,
        "lookup took {lookup_during:?} during the flood, {lookup_before:?} before"
    );
    // The gate did the work, and says so where an operator looks.
    assert!(auth_retried.unwrap_or(0) > 0, "auth-server sent no Retry");
    assert!(sn_retried.unwrap_or(0) > 0, "supernode sent no Retry");
    bob_online.kill9();
}

#[test]
fn six_hundred_half_open_initials_in_ten_seconds_leave_login_and_lookup_working() {
    half_open_flood_leaves_both_doors_open(600);
}

#[test]
fn five_thousand_half_open_initials_in_ten_seconds_leave_login_and_lookup_working() {
    half_open_flood_leaves_both_doors_open(5_000);
}
