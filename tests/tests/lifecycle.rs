//! Tickets and roles over time, on real processes: a supernode and a client refresh their
//! short tickets while they serve and stay online; a supernode starts on its stored ticket while
//! the auth-server is down, but not on an expired one; a client with an empty host cache says
//! what to do instead of retrying forever; a watch moves to another supernode when its own
//! dies; mega-supernodes serve clients, standby ones send them elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use switchboard_client::profile::Profile;
use switchboard_tests::Binary;

/// Tickets this short enter their last quarter 9 s after they are issued.
const SHORT_TICKETS: &str = "ticket_lifetime_secs = 12\n";

fn ticket_expiry(profile: &Path) -> u64 {
    Profile::new(profile)
        .ticket()
        .unwrap()
        .body_unverified()
        .expires_at
        .0
}

fn fast_announcements(network: &Network) -> String {
    let path = network.path("fast.toml");
    std::fs::write(
        &path,
        "announce_interval_secs = 1\nrevocation_poll_secs = 1\nmax_lease_secs = 3\n",
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs `supernode ARGS`, which must exit by itself within 30 s (a supernode that starts
/// instead is killed, and the test fails on its exit code); returns its exit code and stderr.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = Binary::Supernode
        .command(args)
        .unwrap()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let code = match switchboard_tests::wait_child(&mut child, Duration::from_secs(30)) {
        Some(status) => status.code(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    };
    (code, reader.join().unwrap())
}

#[test]
fn a_supernode_refreshes_its_short_ticket_while_it_serves() {
    let network = Network::with(&[("alice", "user"), ("sn1", "supernode")], SHORT_TICKETS);
    let config = fast_announcements(&network);
    let _sn1 = network.supernode("sn1", &["--config", &config]);
    let first = ticket_expiry(&network.path("sn1"));
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(40), || ticket_expiry(
            &network.path("sn1")
        ) > first),
        "the supernode's ticket was not refreshed in its last quarter"
    );
    println!(
        "supernode ticket refreshed {:?} after start",
        started.elapsed()
    );
    // It still serves, with the new ticket presented to new clients.
    let alice = network.login("alice");
    let mut alice_online = online(&alice);
    alice_online.expect("online via", Duration::from_secs(15));
}

#[test]
fn an_online_client_refreshes_its_short_ticket_and_stays_online() {
    let network = Network::with(
        &[("alice", "user"), ("bob", "user"), ("sn1", "supernode")],
        SHORT_TICKETS,
    );
    let config = fast_announcements(&network);
    let _sn1 = network.supernode("sn1", &["--config", &config]);
    let alice = network.login("alice");
    let first = ticket_expiry(&alice);
    let mut alice_online = online(&alice);
    alice_online.expect("online via", Duration::from_secs(15));
    let online_at = Instant::now();
    alice_online.expect_new("ticket refreshed", Duration::from_secs(30));
    println!("refreshed {:?} into the session", online_at.elapsed());
    alice_online.expect_new("online via", Duration::from_secs(15));
    assert!(ticket_expiry(&alice) > first);
    let bob = network.login("bob");
    let (ok, _, stderr) = client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "alice is online after her refresh: {stderr}");
}

/// Starts sn1 once (so it stores a ticket), stops it and the auth-server, and returns the
/// network, sn1's listening address and alice's profile (logged in while the auth-server ran).
fn auth_down_after_a_first_run() -> (Network, std::net::SocketAddr, std::path::PathBuf) {
    let mut network = Network::new(&["alice"], &["sn1"]);
    let sn1 = network.supernode("sn1", &[]);
    let addr = sn1.addr();
    let alice = network.login("alice");
    sn1.kill9();
    network.kill_auth();
    (network, addr, alice)
}

#[test]
fn a_supernode_starts_on_its_stored_ticket_while_the_auth_server_is_down() {
    let (network, addr, alice) = auth_down_after_a_first_run();
    let addr = addr.to_string();
    let args = network.supernode_args("sn1", &["--listen", &addr]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _sn1 = Binary::Supernode.spawn_daemon(&args, READY).unwrap();
    let mut alice_online = online(&alice);
    alice_online.expect(&format!("at {addr}"), Duration::from_secs(15));
}

#[test]
fn a_supernode_refuses_to_start_on_an_expired_stored_ticket_while_the_auth_server_is_down() {
    use switchboard_proto::{Role, Ticket, TicketBody, UnixTime, Username};
    let (network, addr, _) = auth_down_after_a_first_run();
    let profile = Profile::new(&network.path("sn1"));
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    let now = switchboard_net::now_unix().0;
    let expired = Ticket::issue(
        &auth_key,
        TicketBody {
            user: Username::new("sn1").unwrap(),
            node: profile.node_key().unwrap().node_id(),
            role: Role::Supernode,
            issued_at: UnixTime(now - 7_200),
            expires_at: UnixTime(now - 3_600),
            serial: 9,
        },
    )
    .unwrap();
    profile.save_ticket(&expired).unwrap();
    let addr = addr.to_string();
    let args = network.supernode_args("sn1", &["--listen", &addr]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, stderr) = run_to_exit(&args);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("stored ticket expired"), "{stderr}");
}

#[test]
fn a_client_with_an_empty_host_cache_says_to_log_in_again_instead_of_retrying_forever() {
    let network = Network::new(&["alice"], &["sn1"]);
    let _sn1 = network.supernode("sn1", &[]);
    let alice = network.login("alice");
    Profile::new(&alice).save_hosts(Vec::new()).unwrap();
    let mut alice_online = online(&alice);
    let status = alice_online
        .wait_exit(Duration::from_secs(15))
        .expect("client online gives up at once");
    assert_eq!(status.code(), Some(1));
    assert!(alice_online.seen_contains("run `client login` again"));
    let (ok, _, stderr) = client(&["lookup", "bob", "--profile", alice.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("host cache is empty"), "{stderr}");
}

#[test]
fn a_watch_moves_to_another_supernode_when_its_own_dies_and_keeps_reporting() {
    let network = Network::new(&["alice", "bob"], &["sn1", "sn2"]);
    let config = fast_announcements(&network);
    let sn1 = network.supernode("sn1", &["--config", &config]);
    let sn2 = network.supernode("sn2", &["--config", &config]);
    wait_for_overlay(&[&sn1, &sn2], 2);
    let alice = network.login("alice");
    let bob = network.login("bob");
    let mut watch = Running::start(&["watch", "alice", "--profile", bob.to_str().unwrap()]);
    let line = watch.expect("watching 1 users via", Duration::from_secs(15));
    let mut alice_online = online(&alice);
    alice_online.expect("online via", Duration::from_secs(15));
    watch.expect("alice online", Duration::from_secs(15));

    // Kill the watch's supernode: it re-watches on the other.
    let sn1_node = Profile::new(&network.path("sn1"))
        .node_key()
        .unwrap()
        .node_id()
        .short();
    let (dead, survivor) = if line.contains(&sn1_node) {
        (sn1, sn2)
    } else {
        (sn2, sn1)
    };
    let killed = Instant::now();
    dead.kill9();
    watch.expect_new("watching 1 users via", Duration::from_secs(20));
    println!("watch moved {:?} after the kill", killed.elapsed());
    // Alice is online through the survivor (she may have had to move too).
    assert!(wait_until(Duration::from_secs(20), || {
        client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]).0
    }));

    // Presence still reaches the moved watch: offline, then online again.
    alice_online.kill9();
    watch.expect_new("alice offline", Duration::from_secs(20));
    let mut alice_again = online(&alice);
    alice_again.expect(&format!("at {}", survivor.addr()), Duration::from_secs(15));
    watch.expect_new("alice online", Duration::from_secs(20));
}

#[test]
fn a_mega_supernode_serves_clients_and_a_standby_one_sends_them_elsewhere() {
    let network = Network::with(
        &[
            ("alice", "user"),
            ("bob", "user"),
            ("sn1", "supernode"),
            ("mega1", "mega"),
            ("standby1", "mega"),
        ],
        "",
    );
    let config = fast_announcements(&network);
    let sn1 = network.supernode("sn1", &["--config", &config]);
    let mega = network.supernode("mega1", &["--config", &config, "--mega"]);
    let standby = network.supernode("standby1", &["--config", &config, "--mega", "--standby"]);
    wait_for_overlay(&[&sn1, &mega, &standby], 3);

    // Alice knows only the mega-supernode: it serves her.
    let alice = network.login("alice");
    let profile = Profile::new(&alice);
    let only = |addr: std::net::SocketAddr| {
        let hosts: Vec<_> = profile
            .hosts()
            .unwrap()
            .into_iter()
            .filter(|h| h.addr == addr)
            .collect();
        assert_eq!(hosts.len(), 1, "the bootstrap list names {addr}");
        profile.save_hosts(hosts).unwrap();
    };
    // The bootstrap list hands out no standby mega-supernode.
    assert!(!profile
        .hosts()
        .unwrap()
        .iter()
        .any(|h| h.addr == standby.addr()));
    only(mega.addr());
    let mut alice_online = online(&alice);
    alice_online.expect(&format!("at {}", mega.addr()), Duration::from_secs(15));

    // Bob knows only the standby one (say an operator gave him its address): it answers Busy,
    // naming live alternatives, and he is served by one of them.
    let bob = network.login("bob");
    let bob_profile = Profile::new(&bob);
    let standby_node = Profile::new(&network.path("standby1"))
        .node_key()
        .unwrap()
        .node_id()
        .to_string();
    bob_profile
        .save_hosts(vec![switchboard_client::profile::Host {
            node: standby_node,
            addr: standby.addr(),
            mode: "mega".to_owned(),
            load_permille: 0,
            last_success: None,
            last_failure: None,
        }])
        .unwrap();
    let mut bob_online = online(&bob);
    let line = bob_online.expect("online via", Duration::from_secs(30));
    assert!(!line.contains(&standby.addr().to_string()), "{line}");
    assert!(metric(&standby, "switchboard_supernode_busy_total").unwrap_or(0) >= 1);
    assert_eq!(
        metric(&standby, "switchboard_supernode_clients_connected"),
        Some(0)
    );
    let (ok, _, stderr) = client(&["lookup", "alice", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "{stderr}");
}

#[test]
fn a_supernode_account_cannot_serve_as_a_mega_supernode() {
    let network = Network::new(&[], &["sn1"]);
    let args = network.supernode_args("sn1", &["--mega"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, stderr) = run_to_exit(&args);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("may not serve as a mega-supernode"),
        "{stderr}"
    );
}

#[test]
fn a_user_account_cannot_run_a_supernode() {
    let network = Network::new(&["mallory"], &[]);
    let args = network.supernode_args("mallory", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, stderr) = run_to_exit(&args);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("account mallory has role user, which may not serve as a supernode"),
        "{stderr}"
    );
}

#[test]
fn a_supernode_warns_about_a_password_file_that_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let network = Network::new(&[], &["sn1"]);
    let password = network.path("pw");
    // The auth-server is unreachable and there is no stored ticket: it stops after the check.
    let args_for = |mode: u32| {
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(mode)).unwrap();
        let args = network.supernode_args("sn1", &[]);
        let mut args: Vec<String> = args;
        let at = args.iter().position(|a| a == "--auth").unwrap();
        args[at + 1] = "127.0.0.1:9".to_owned();
        args
    };
    let open = args_for(0o644);
    let (status, stderr) = run_to_exit(&open.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("is readable by others (mode 644)"),
        "{stderr}"
    );
    let private = args_for(0o600);
    let (status, stderr) = run_to_exit(&private.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(status, Some(1), "{stderr}");
    assert!(!stderr.contains("readable by others"), "{stderr}");
}

#[test]
fn a_session_whose_ticket_expired_is_closed_once_the_skew_allowance_is_over() {
    use switchboard_client::session::{self, Context};
    use switchboard_proto::limits::CLOCK_SKEW_SECS;
    let network = Network::new(&["alice"], &["sn1"]);
    let _sn1 = network.supernode("sn1", &[]);
    let alice = network.login("alice");
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    // Expired, and accepted for about 3 s more under the clock-skew allowance: a client that
    // failed to refresh its ticket.
    let expires = switchboard_net::now_unix().0 + 3 - CLOCK_SKEW_SECS;
    let stale = minted_profile(&network, &alice, "alice", &auth_key, expires - 3_600, 3_600);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (reason, after) = runtime.block_on(async {
        let context = Context::load(Profile::new(&stale), None).unwrap();
        let session = session::open(&context, None).await.unwrap();
        let opened = Instant::now();
        let closed = tokio::time::timeout(
            Duration::from_secs(20),
            session.connection.connection.closed(),
        )
        .await
        .expect("the supernode closes the session");
        (closed.to_string(), opened.elapsed())
    });
    println!("closed {after:?} after opening: {reason}");
    assert!(reason.contains("ticket expired"), "{reason}");
}

#[test]
fn an_overlay_peer_whose_ticket_expired_is_disconnected_once_the_skew_allowance_is_over() {
    use switchboard_net::config::Role as TransportRole;
    use switchboard_net::{client_config, transport_config, Dialer, Identity, PeerPolicy};
    use switchboard_proto::limits::CLOCK_SKEW_SECS;
    use switchboard_proto::{Role, SecretKey, Ticket, TicketBody, UnixTime, Username};
    let network = Network::new(&[], &["sn1"]);
    let sn1 = network.supernode("sn1", &[]);
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    // A supernode account's device whose ticket expired and is accepted about 3 s more under
    // the clock-skew allowance: a peer that failed to refresh.
    let key = SecretKey::from_seed([7; 32]);
    let expires = switchboard_net::now_unix().0 + 3 - CLOCK_SKEW_SECS;
    let ticket = Ticket::issue(
        &auth_key,
        TicketBody {
            user: Username::new("stale").unwrap(),
            node: key.node_id(),
            role: Role::Supernode,
            issued_at: UnixTime(expires - 3_600),
            expires_at: UnixTime(expires),
            serial: 77,
        },
    )
    .unwrap();
    let anchor = network
        .pubkey
        .parse::<switchboard_proto::AuthKey>()
        .unwrap();
    let anchor = switchboard_proto::TrustAnchor::new(anchor).unwrap();
    let policy = PeerPolicy::supernode(anchor);
    let config = client_config(
        &Identity::new(key, Some(ticket)),
        policy.clone(),
        &[switchboard_proto::version::ALPN_DIRECTORY],
        transport_config(TransportRole::Overlay),
        switchboard_net::Resumption::Disabled,
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (reason, after) = runtime.block_on(async {
        let dialer = Dialer::bind("127.0.0.1:0".parse().unwrap(), config, policy).unwrap();
        let peer = dialer
            .connect(sn1.addr(), Duration::from_secs(30))
            .await
            .unwrap();
        let opened = Instant::now();
        let closed = tokio::time::timeout(Duration::from_secs(20), peer.connection.closed())
            .await
            .expect("the supernode drops the stale peer");
        (closed.to_string(), opened.elapsed())
    });
    println!("closed {after:?} after opening: {reason}");
    assert!(reason.contains("ticket expired"), "{reason}");
}
