//! Supernodes and clients on real processes: register, look up, send directly, watch, fail
//! over, refused versions and garbage frames.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use common::*;
use switchboard_tests::{http_get, Binary, Daemon};

#[test]
fn alice_and_bob_find_each_other_talk_directly_and_watch_presence() {
    let network = Network::new(&["alice", "bob"], &["sn1"]);
    let _sn1 = network.supernode("sn1", &["--config", &write_lease_config(&network, 3)]);
    let alice = network.login("alice");
    let bob = network.login("bob");
    let mut alice_online = online(&alice);
    alice_online.expect("online via", Duration::from_secs(15));

    let (ok, stdout, stderr) = client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let endpoint = stdout.split_whitespace().nth(1).unwrap().to_owned();
    let endpoint: SocketAddr = endpoint.parse().unwrap();
    assert_eq!(endpoint.ip().to_string(), "127.0.0.1");
    let (ok, json, _) = client(&[
        "lookup",
        "alice",
        "--profile",
        bob.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok);
    assert!(json.contains(&format!("\"{endpoint}\"")), "{json}");

    let (ok, stdout, stderr) = client(&["send", "alice", "hi", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("delivered to alice"));
    alice_online.expect("from bob: hi", Duration::from_secs(5));

    // A one-shot command from alice's own profile (same device key) leaves her online.
    let _ = client(&["lookup", "bob", "--profile", alice.to_str().unwrap()]);
    let (ok, _, stderr) = client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "alice must still be online: {stderr}");

    let mut watch = Running::start(&["watch", "alice", "--profile", bob.to_str().unwrap()]);
    watch.expect("alice online", Duration::from_secs(10));
    let killed = Instant::now();
    alice_online.kill9();
    watch.expect("alice offline", Duration::from_secs(10));
    println!(
        "offline seen {:?} after the kill (lease 3 s)",
        killed.elapsed()
    );

    let (ok, _, stderr) = client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("alice is not online"), "{stderr}");
}

/// How `client online` names the supernode it is online via: `at ADDR`.
fn short(daemon: &Daemon) -> String {
    format!("at {}", daemon.addr())
}

fn write_lease_config(network: &Network, lease: u64) -> String {
    let path = network.path(&format!("lease-{lease}.toml"));
    std::fs::write(&path, format!("max_lease_secs = {lease}\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

/// How long a re-homing may take before a test fails: 3x the default timers' worst case
/// (about 3 s of idle timeout plus backoff), for a loaded 2-core machine. The time measured is
/// printed, and BENCHMARKS.md keeps the figures.
const REHOME_BOUND: Duration = Duration::from_secs(15);

#[test]
fn when_alices_supernode_is_killed_she_is_registered_on_the_other() {
    let network = Network::new(&["alice", "bob"], &["sn1", "sn2"]);
    let sn1 = network.supernode("sn1", &[]);
    let sn2 = network.supernode("sn2", &[]);
    let alice = network.login("alice");
    let bob = network.login("bob");
    let hosts = std::fs::read_to_string(alice.join("hosts.toml")).unwrap();
    for daemon in [&sn1, &sn2] {
        assert!(hosts.contains(&daemon.addr().to_string()), "{hosts}");
    }
    let mut alice_online = online(&alice);
    let line = alice_online.expect("online via", Duration::from_secs(15));
    let (home, other) = if line.contains(&format!("at {}", sn1.addr())) {
        (sn1, sn2)
    } else {
        (sn2, sn1)
    };
    let killed = Instant::now();
    println!(
        "kill at {}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            % 100_000
    );
    home.kill9();
    alice_online.expect(&short(&other), REHOME_BOUND);
    println!("re-homed after {:?}", killed.elapsed());
    // Bob, whose cache names both, finds her on the survivor.
    let (ok, _, stderr) = client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let hosts = std::fs::read_to_string(alice.join("hosts.toml")).unwrap();
    assert!(hosts.contains(&other.addr().to_string()));
}

#[test]
fn a_refused_software_version_gets_version_rejected_and_is_counted() {
    let network = Network::new(&["alice", "bob"], &["sn1"]);
    let config = network.path("refuse.toml");
    std::fs::write(
        &config,
        format!("refuse_versions = [\"{}\"]\n", env!("CARGO_PKG_VERSION")),
    )
    .unwrap();
    let mut refusing = network.supernode("sn1", &["--config", config.to_str().unwrap()]);
    let alice = network.login("alice");
    let (ok, _, stderr) = client(&["lookup", "bob", "--profile", alice.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("software version refused; upgrade to"),
        "{stderr}"
    );
    assert_eq!(
        metric(&refusing, "switchboard_supernode_version_rejected_total"),
        Some(1)
    );
    assert!(refusing.is_running());
}

#[test]
fn garbage_datagrams_and_malformed_frames_close_one_connection_and_the_supernode_keeps_serving() {
    let network = Network::new(&["alice", "bob"], &["sn1"]);
    let mut sn1 = network.supernode("sn1", &[]);
    let alice = network.login("alice");
    let bob = network.login("bob");

    // Garbage: datagrams of every length and shape, and malformed frames after a valid
    // handshake.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..500u32 {
        let datagram: Vec<u8> = (0..(i % 1200 + 1)).map(|j| (j * 31 + i) as u8).collect();
        socket.send_to(&datagram, sn1.addr()).unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use switchboard_client::profile::Profile;
        let context =
            switchboard_client::session::Context::load(Profile::new(&alice), None).unwrap();
        let host = Profile::new(&alice).hosts().unwrap()[0].peer().unwrap();
        let connection = context
            .dialer
            .connect_to(host.node, host.addr, Duration::from_secs(30))
            .await
            .unwrap();
        let (mut send, _recv) = connection.connection.open_bi().await.unwrap();
        send.write_all(&[0, 0, 0, 2, 0xff, 0xff]).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), connection.connection.closed())
            .await
            .expect("closed for the malformed frame");
        let reason = closed.to_string();
        println!("closed: {reason}");
        assert!(reason.contains("malformed"), "{reason}");
    });
    assert_eq!(
        metric(&sn1, "switchboard_supernode_malformed_total"),
        Some(1)
    );

    // Keeps serving: alice registers and bob finds her and reaches her, through this supernode.
    assert!(sn1.is_running());
    let mut alice_online = online(&alice);
    alice_online.expect(&short(&sn1), Duration::from_secs(15));
    let (ok, _, stderr) = client(&["send", "alice", "hi", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    alice_online.expect("from bob: hi", Duration::from_secs(10));
    // SIGTERM: exits 0.
    sn1.signal("TERM").unwrap();
    let status = sn1.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success(), "{status}");
}

#[test]
fn expired_forged_and_revoked_tickets_get_clear_errors_and_the_supernode_keeps_serving() {
    let network = Network::new(&["alice", "bob", "mallory"], &["sn1"]);
    let config = network.path("poll.toml");
    std::fs::write(
        &config,
        "revocation_poll_secs = 1\nannounce_interval_secs = 1\n",
    )
    .unwrap();
    let mut sn1 = network.supernode("sn1", &["--config", config.to_str().unwrap()]);
    let alice = network.login("alice");
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    let now = switchboard_net::now_unix().0;

    let expired = minted_profile(&network, &alice, "alice", &auth_key, now - 7_200, 3_600);
    let (ok, _, stderr) = client(&["lookup", "bob", "--profile", expired.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("ticket expired"), "{stderr}");
    assert!(stderr.contains("client login"), "{stderr}");

    let forger = switchboard_proto::SecretKey::from_seed([66; 32]);
    let forged = minted_profile(&network, &alice, "alice", &forger, now - 60, 3_600);
    let (ok, _, stderr) = client(&["lookup", "bob", "--profile", forged.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("not signed by the trusted auth-server"),
        "{stderr}"
    );

    // Before the revocation mallory is served: online, and her lookups work.
    let bob = network.login("bob");
    let mut bob_online = online(&bob);
    bob_online.expect("online via", Duration::from_secs(15));
    let mallory = network.login("mallory");
    let (ok, _, stderr) = client(&["lookup", "bob", "--profile", mallory.to_str().unwrap()]);
    assert!(
        ok,
        "mallory's session must work before the revocation: {stderr}"
    );
    let mut mallory_online = online(&mallory);
    mallory_online.expect("online via", Duration::from_secs(15));
    let disabled = Instant::now();
    let disable = Binary::AuthServer
        .run(&[
            "user",
            "disable",
            "mallory",
            "--data-dir",
            network.path("auth").to_str().unwrap(),
        ])
        .unwrap();
    assert!(disable.status.success());
    // Her running session is closed at the supernode's next poll (every second here), and
    // `client online` gives up with the reason instead of failing over.
    mallory_online.expect("ticket revoked", Duration::from_secs(15));
    println!(
        "mallory's session closed {:?} after the disable",
        disabled.elapsed()
    );
    assert!(
        mallory_online
            .wait_exit(Duration::from_secs(15))
            .is_some_and(|s| !s.success()),
        "client online must exit with an error once its ticket is revoked"
    );
    let refused = wait_until(Duration::from_secs(10), || {
        let (_, _, stderr) = client(&["lookup", "alice", "--profile", mallory.to_str().unwrap()]);
        stderr.contains("ticket revoked")
    });
    assert!(
        refused,
        "the revoked ticket is refused once the supernode polled the list"
    );

    // The supernode still serves everyone else.
    assert!(sn1.is_running());
    let mut alice_online = online(&alice);
    alice_online.expect("online via", Duration::from_secs(15));
    let (ok, _, stderr) = client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        !bob_online.seen_contains("lost "),
        "bob's session survived the revocation of another user"
    );
}

#[test]
fn a_supernode_at_capacity_admits_exactly_its_capacity_and_the_rest_go_elsewhere() {
    use switchboard_client::profile::Profile;
    use switchboard_client::session::{self, Context, SessionError};
    let network = Network::new(&["filler"], &["sn1", "sn2"]);
    let small = network.supernode("sn1", &["--capacity", "50"]);
    let large = network.supernode("sn2", &["--capacity", "1000"]);
    let filler = network.login("filler");
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    let now = switchboard_net::now_unix().0;
    let rss_before = rss_kib(small.pid());

    // 200 clients, each preferring the small supernode (it served them before).
    let small_node = Profile::new(&network.path("sn1"))
        .node_key()
        .unwrap()
        .node_id()
        .to_string();
    let profiles: Vec<PathBuf> = (0..200)
        .map(|i| {
            let dir = minted_profile(
                &network,
                &filler,
                &format!("c{i:03}"),
                &auth_key,
                now - 60,
                3_600,
            );
            let profile = Profile::new(&dir);
            let mut hosts = profile.hosts().unwrap();
            for host in &mut hosts {
                if host.node == small_node {
                    host.last_success = Some(now);
                }
            }
            profile.save_hosts(hosts).unwrap();
            dir
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let homes = runtime.block_on(async {
        let mut tasks = Vec::new();
        for dir in profiles {
            tasks.push(tokio::spawn(async move {
                let mut context = Context::load(Profile::new(&dir), None).unwrap();
                // 200 handshakes at once on a loaded 2-core machine: a 3 s dial timeout or a
                // 5 s wait for the answer to Hello would send some to the large supernode
                // without a Busy (seen in CI: 140 Busy), and the counts would drift; so would
                // a second dial raced beside one slower than the stagger.
                context.dial_timeout = Duration::from_secs(60);
                context.hello_timeout = Duration::from_secs(60);
                context.stagger = Duration::from_secs(60);
                let opened: Result<session::Session, SessionError> =
                    session::open(&context, None).await;
                let session = opened.unwrap();
                (session.host.addr, session)
            }));
        }
        let mut homes = Vec::new();
        for task in tasks {
            homes.push(task.await.unwrap());
        }
        homes
    });
    let on_small = homes
        .iter()
        .filter(|(addr, _)| *addr == small.addr())
        .count();
    let on_large = homes
        .iter()
        .filter(|(addr, _)| *addr == large.addr())
        .count();
    println!("{on_small} on the small supernode, {on_large} on the large one");
    assert_eq!(on_small, 50, "exactly its capacity");
    assert_eq!(on_large, 150, "the rest were told Busy and went elsewhere");
    let metrics = http_get(small.metrics_addr().unwrap(), "/metrics").unwrap();
    assert!(
        metrics.contains("switchboard_supernode_clients_connected 50\n"),
        "{metrics}"
    );
    // Each of the 150 was turned away by the small supernode: told `Busy` after `Hello`,
    // refused at the handshake gate (200 handshakes at once from one address are more than one
    // source's share), or, on a loaded machine, given up on by the client during a slow
    // handshake (its 1.5 s session idle timeout) and counted by the server as a failed
    // handshake or a missing `Hello` once its own deadlines pass (5 s and 2 s). An Initial
    // that never reached the server is not seen at all: CI and a local run saw up to 22 of 150
    // uncounted (cause not pinned down yet: suspected Initials or post-Retry Initials dropped
    // by a full UDP receive buffer, 200 arriving at once), so the count must reach 100, and
    // never exceed the 150 by more than a few.
    let turned_away = || {
        [
            "switchboard_supernode_busy_total",
            "switchboard_supernode_handshakes_refused_total",
            "switchboard_supernode_handshakes_failed_total",
            "switchboard_supernode_hello_timeouts_total",
        ]
        .map(|name| common::metric(&small, name).unwrap_or(0))
    };
    let settled = wait_until(Duration::from_secs(8), || {
        turned_away().iter().sum::<u64>() >= 150
    });
    let [busy, refused, failed, silent] = turned_away();
    println!(
        "turned away: {busy} busy, {refused} refused at the gate, {failed} failed handshakes, \
         {silent} without Hello"
    );
    let counted = busy + refused + failed + silent;
    println!(
        "settled at 150: {settled}; retried {:?}",
        common::metric(&small, "switchboard_supernode_handshakes_retried_total")
    );
    assert!(
        (100..=160).contains(&counted),
        "{busy} + {refused} + {failed} + {silent} for 150 clients turned away: {metrics}"
    );
    let rss_after = rss_kib(small.pid());
    let per_client = rss_after.saturating_sub(rss_before) / 50;
    println!("small supernode RSS {rss_before} KiB -> {rss_after} KiB, {per_client} KiB per admitted client");
    // An idle QUIC connection costs about 37 KB and our state under 10 KB (BENCHMARKS.md
    // measures it); about 5x that per client leaves room for allocator slack and the 150 refused
    // handshakes, and still catches a per-client leak or an unbounded buffer.
    assert!(
        per_client <= MAX_RSS_PER_CLIENT_KIB,
        "{per_client} KiB per client (bound {MAX_RSS_PER_CLIENT_KIB} KiB)"
    );
    drop(homes);
    let mut small = small;
    assert!(small.is_running(), "it never exits");
}

/// Resident memory one admitted client may add to a supernode in the capacity test.
const MAX_RSS_PER_CLIENT_KIB: u64 = 256;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn an_online_client_refreshes_its_ticket_in_its_last_quarter() {
    let network = Network::new(&["alice"], &["sn1"]);
    let _sn1 = network.supernode("sn1", &[]);
    let fresh = network.login("alice");
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    let now = switchboard_net::now_unix().0;
    // A real ticket with 10 minutes left of its hour.
    let old = minted_profile(&network, &fresh, "alice", &auth_key, now - 3_000, 3_600);
    let before = switchboard_client::profile::Profile::new(&old)
        .ticket()
        .unwrap();
    let mut online = online(&old);
    online.expect("ticket refreshed", Duration::from_secs(15));
    online.expect("online via", Duration::from_secs(15));
    let after = switchboard_client::profile::Profile::new(&old)
        .ticket()
        .unwrap();
    assert!(after.body_unverified().expires_at > before.body_unverified().expires_at);
}

#[test]
fn sigterm_redirects_clients_to_another_supernode_and_exits_zero() {
    let network = Network::new(&["alice"], &["sn1", "sn2"]);
    // Announcing every second, each supernode learns the other from the auth-server's answer.
    let config = network.path("announce.toml");
    std::fs::write(&config, "announce_interval_secs = 1\n").unwrap();
    let sn1 = network.supernode("sn1", &["--config", config.to_str().unwrap()]);
    let sn2 = network.supernode("sn2", &["--config", config.to_str().unwrap()]);
    let alice = network.login("alice");
    let mut alice_online = online(&alice);
    let line = alice_online.expect("online via", Duration::from_secs(15));
    let (mut home, other) = if line.contains(&short(&sn1)) {
        (sn1, sn2)
    } else {
        (sn2, sn1)
    };
    // The supernodes learn each other from their announcements (and join one overlay), and
    // alice records her home in her host cache: wait for both.
    wait_for_overlay(&[&home, &other], 2);
    let profile = switchboard_client::profile::Profile::new(&alice);
    assert!(
        wait_until(Duration::from_secs(10), || profile
            .hosts()
            .unwrap()
            .iter()
            .any(|h| h.addr == home.addr() && h.last_success.is_some())),
        "alice did not record her home"
    );
    // Alice forgets the other supernode: only the redirect can tell her where to go.
    let only_home: Vec<_> = profile
        .hosts()
        .unwrap()
        .into_iter()
        .filter(|h| h.addr == home.addr())
        .collect();
    profile.save_hosts(only_home).unwrap();
    let started = Instant::now();
    home.signal("TERM").unwrap();
    alice_online.expect("redirected by", Duration::from_secs(10));
    alice_online.expect(&short(&other), Duration::from_secs(10));
    // Make before break: the old session was closed only after the new home held her
    // registration.
    let home_id = line.split_whitespace().nth(2).unwrap();
    alice_online.expect(&format!("moved from {home_id}"), Duration::from_secs(10));
    println!("moved after {:?}", started.elapsed());
    let status = home
        .wait_exit(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn sigterm_refuses_new_connections_redirects_every_client_and_exits_within_the_drain_deadline() {
    use switchboard_client::profile::Profile;
    use switchboard_client::session::{self, Context};
    use switchboard_proto::messages::SupernodeMessage;
    const CLIENTS: usize = 250;
    let network = Network::new(&["filler"], &["sn1", "sn2"]);
    let config = network.path("drain.toml");
    std::fs::write(
        &config,
        "announce_interval_secs = 1\ndrain_deadline_secs = 5\n",
    )
    .unwrap();
    let mut sn1 = network.supernode("sn1", &["--config", config.to_str().unwrap()]);
    let sn2 = network.supernode("sn2", &["--config", config.to_str().unwrap()]);
    wait_for_overlay(&[&sn1, &sn2], 2);
    let filler = network.login("filler");
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    let now = switchboard_net::now_unix().0;
    // Every client knows only sn1; a latecomer tries to join during the drain.
    let only_sn1 = |dir: &Path| {
        let profile = Profile::new(dir);
        let hosts: Vec<_> = profile
            .hosts()
            .unwrap()
            .into_iter()
            .filter(|h| h.addr == sn1.addr())
            .collect();
        profile.save_hosts(hosts).unwrap();
    };
    let profiles: Vec<PathBuf> = (0..=CLIENTS)
        .map(|i| {
            let dir = minted_profile(
                &network,
                &filler,
                &format!("d{i:03}"),
                &auth_key,
                now - 60,
                3_600,
            );
            only_sn1(&dir);
            dir
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (redirected, first_redirect, latecomer, elapsed, status) = runtime.block_on(async {
        let (tx, mut redirects) = tokio::sync::mpsc::channel(CLIENTS);
        let mut sessions = Vec::new();
        for dir in &profiles[..CLIENTS] {
            let mut context = Context::load(Profile::new(dir), None).unwrap();
            context.dial_timeout = Duration::from_secs(30);
            context.hello_timeout = Duration::from_secs(30);
            let session = session::open(&context, None).await.unwrap();
            let (push_tx, mut pushes) = tokio::sync::mpsc::channel(8);
            tokio::spawn(switchboard_client::online::read_pushes(
                session.connection.connection.clone(),
                push_tx,
            ));
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(push) = pushes.recv().await {
                    if matches!(push, SupernodeMessage::Redirect { .. }) {
                        let _ = tx.send(Instant::now()).await;
                        return;
                    }
                }
            });
            sessions.push((context, session));
        }
        let mut late = Context::load(Profile::new(&profiles[CLIENTS]), None).unwrap();
        late.dial_timeout = Duration::from_secs(5);
        let term = Instant::now();
        sn1.signal("TERM").unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), redirects.recv())
            .await
            .expect("a redirect within 10 s")
            .unwrap();
        // Once the drain has begun, a new connection is refused.
        let dialed = Instant::now();
        let latecomer = session::open(&late, None).await;
        // Refused at once, not timed out (the endpoint is still up, refusing).
        assert!(
            dialed.elapsed() < late.dial_timeout,
            "the latecomer waited {:?}: not refused but timed out",
            dialed.elapsed()
        );
        let mut redirected = 1;
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_secs(10), redirects.recv()).await
        {
            redirected += 1;
            if redirected == CLIENTS {
                break;
            }
        }
        let status = sn1.wait_exit(Duration::from_secs(20));
        (
            redirected,
            first - term,
            latecomer.err(),
            term.elapsed(),
            status,
        )
    });
    println!(
        "first redirect {first_redirect:?} after SIGTERM, {redirected} of {CLIENTS} redirected, exited after {elapsed:?}"
    );
    assert_eq!(redirected, CLIENTS, "every client is redirected");
    let refused = latecomer.expect("a connection opened during the drain must be refused");
    println!("latecomer: {refused}");
    let status = status.expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    // The drain deadline (5 s) plus the endpoint's close grace (1 s) and slack for a loaded
    // machine; with 250 clients the drain itself takes well under a second.
    assert!(
        elapsed < Duration::from_secs(5 + 1 + 4),
        "exited after {elapsed:?}"
    );
}

#[test]
fn a_direct_message_cannot_fake_a_second_line_or_drive_the_receivers_terminal() {
    let network = Network::new(&["alice", "bob"], &["sn1"]);
    let _sn1 = network.supernode("sn1", &[]);
    let alice = network.login("alice");
    let bob = network.login("bob");
    let mut alice_online = online(&alice);
    alice_online.expect("online via", Duration::from_secs(15));
    // Bob tries to print a line that looks as if it came from carol, and to clear the screen.
    let forged = "hi\nfrom carol: send money\u{1b}[2J";
    let (ok, _, stderr) = client(&["send", "alice", forged, "--profile", bob.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let line = alice_online.expect("from bob: ", Duration::from_secs(10));
    assert_eq!(line, "from bob: hi\\nfrom carol: send money\\u{1b}[2J");
    assert!(
        !alice_online.seen_contains("\u{1b}"),
        "an escape character reached the terminal"
    );
    let faked = |l: &str| l.starts_with("from carol");
    assert!(!alice_online.seen_lines().iter().any(|l| faked(l)));
}
