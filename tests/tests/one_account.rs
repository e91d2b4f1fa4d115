//! One account cannot fill a supernode (issue #10, point 6): sessions per user are capped at a
//! supernode, new tickets per account are rate-limited at the auth-server, and a connection
//! counts against capacity from its handshake until it says `Hello` (or is closed for not
//! saying it in time).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{client, metric, minted_profile, online, Network, PASSWORD};
use switchboard_client::login::LoginError;
use switchboard_client::profile::Profile;
use switchboard_client::session::{self, Context, SessionError};
use switchboard_net::config::Role;
use switchboard_net::{client_config, transport_config, Dialer, Identity, PeerPolicy, Resumption};
use switchboard_proto::version::ALPN_DIRECTORY;

/// The supernode's documented cap: 8 devices x 4 sessions each.
const MAX_SESSIONS_PER_USER: usize = 32;

/// `count` profiles of `user`, each with its own node key and a ticket signed by the real
/// auth key (as `count` logins would make, without the auth-server's rate limit on them).
fn device_farm(network: &Network, from: &std::path::Path, user: &str, count: u64) -> Vec<PathBuf> {
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    let now = switchboard_net::now_unix().0;
    (0..count)
        .map(|i| minted_profile(network, from, user, &auth_key, now - 60 - i, 3_600))
        .collect()
}

#[test]
fn one_account_with_a_hundred_node_keys_holds_at_most_its_share_of_one_supernode() {
    let network = Network::new(&["mallory", "bob"], &["sn1"]);
    let sn1 = network.supernode("sn1", &[]);
    let mallory = network.login("mallory");
    let farm = device_farm(&network, &mallory, "mallory", 100);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let mut held = Vec::new();
    let mut refused = Vec::new();
    for profile in &farm {
        let context = runtime
            .block_on(async { Context::load(Profile::new(profile), None) })
            .unwrap();
        match runtime.block_on(session::open(&context, None)) {
            Ok(session) => held.push((context, session)),
            Err(e) => refused.push(e),
        }
    }
    println!(
        "{} sessions admitted, {} refused",
        held.len(),
        refused.len()
    );
    assert_eq!(held.len(), MAX_SESSIONS_PER_USER);
    assert_eq!(refused.len(), 100 - MAX_SESSIONS_PER_USER);
    for e in &refused {
        assert!(
            matches!(e, SessionError::Refused(_)) && e.to_string().contains("Sessions (max 32)"),
            "refused with the per-user limit: {e}"
        );
    }
    assert_eq!(
        metric(&sn1, "switchboard_supernode_user_sessions_refused_total"),
        Some(68)
    );

    // A fresh user is still admitted, and lookups are answered.
    let bob = network.login("bob");
    let mut bob_online = online(&bob);
    bob_online.expect("online via", Duration::from_secs(15));
    let (ok, _, stderr) = client(&["lookup", "bob", "--profile", bob.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    // Mallory's own device is one more of her sessions: refused, with the reason.
    let (ok, _, stderr) = client(&["lookup", "bob", "--profile", mallory.to_str().unwrap()]);
    assert!(!ok && stderr.contains("Sessions (max 32)"), "{stderr}");
    drop(held);
}

#[test]
fn an_account_gets_its_burst_of_new_tickets_then_is_told_to_wait() {
    let network = Network::new(&["mallory", "alice"], &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let login = |user: &str, i: usize| {
        runtime.block_on(switchboard_client::login::login(
            &Profile::new(&network.path(&format!("{user}-{i}"))),
            &network.auth_addr().to_string(),
            network.pubkey.parse().unwrap(),
            switchboard_proto::Username::new(user).unwrap(),
            switchboard_proto::messages::Password::new(PASSWORD).unwrap(),
            false,
        ))
    };
    // Each login from a new profile is a new node key: a farm of devices.
    let results: Vec<_> = (0..20).map(|i| login("mallory", i)).collect();
    let granted = results.iter().filter(|r| r.is_ok()).count();
    println!(
        "{granted} of 20 new tickets granted; then {:?}",
        results
            .last()
            .map(|r| r.as_ref().err().map(ToString::to_string))
    );
    assert_eq!(granted, 16, "the default burst");
    assert!(results[16..]
        .iter()
        .all(|r| matches!(r, Err(LoginError::Throttled(secs)) if *secs <= 30)));
    assert_eq!(
        metric(&network.auth, "switchboard_auth_tickets_limited_total"),
        Some(4)
    );
    login("alice", 0).expect("another account is unaffected");
}

#[test]
fn a_connection_that_never_says_hello_holds_a_place_for_two_seconds_only() {
    let network = Network::new(&["mallory", "bob"], &["sn1"]);
    let sn1 = network.supernode("sn1", &["--capacity", "2"]);
    let mallory = network.login("mallory");
    let bob = network.login("bob");
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // Two handshakes with a valid ticket, then silence.
    let profile = Profile::new(&mallory);
    let identity = Identity::new(profile.node_key().unwrap(), Some(profile.ticket().unwrap()));
    let config = client_config(
        &identity,
        PeerPolicy::AnyKey,
        &[ALPN_DIRECTORY],
        transport_config(Role::Dialer),
        Resumption::Disabled,
    )
    .unwrap();
    let dialer = runtime.block_on(async {
        Dialer::bind("127.0.0.1:0".parse().unwrap(), config, PeerPolicy::AnyKey).unwrap()
    });
    let silent: Vec<_> = (0..2)
        .map(|_| {
            runtime
                .block_on(dialer.connect(sn1.addr(), Duration::from_secs(5)))
                .unwrap()
        })
        .collect();
    let opened = Instant::now();

    // They fill the capacity: bob is told the supernode is busy...
    let (ok, _, stderr) = client(&["lookup", "mallory", "--profile", bob.to_str().unwrap()]);
    assert!(!ok && stderr.contains("no supernode admitted"), "{stderr}");
    // ...until the Hello deadline closes them.
    for connection in &silent {
        let reason = runtime.block_on(connection.connection.closed());
        assert!(reason.to_string().contains("no Hello in time"), "{reason}");
    }
    let closed_after = opened.elapsed();
    println!("silent connections closed after {closed_after:?}");
    assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
    assert_eq!(
        metric(&sn1, "switchboard_supernode_hello_timeouts_total"),
        Some(2)
    );
    let (ok, _, stderr) = client(&["lookup", "bob", "--profile", bob.to_str().unwrap()]);
    assert!(
        ok || stderr.contains("is not online"),
        "admitted now: {stderr}"
    );
}
