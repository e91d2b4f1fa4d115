//! The relay is no open proxy (issue #14's acceptance): a hostile client, written here with the
//! client library, asks a real supernode for relays and sprays its relay port, and gets only
//! what the design allows: a relay to nobody but a device homed there that joins, nothing
//! forwarded from an address that did not bind with the token, a few sessions per device,
//! and every session gone with the caller's or the callee's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use common::{metric_at, online, wait_until, Network, Running};
use switchboard_client::profile::Profile;
use switchboard_client::query;
use switchboard_client::session::{self, Context, Session};
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::relay::bind_datagram;
use switchboard_proto::wire_error::{LimitKind, WireError};
use switchboard_proto::{NodeId, PeerAddr, SecretKey, Username};
use switchboard_tests::Daemon;

/// A datagram that is not QUIC (first byte without the fixed bit): bob's endpoint drops it
/// without a word, so what the relay counts is only what the hostile client sent.
const JUNK: [u8; 1_000] = [0; 1_000];

/// A supernode, bob online there, and alice logged in (not online).
struct World {
    _net: Network,
    sn1: Daemon,
    alice: PathBuf,
    bob_online: Running,
}

impl World {
    fn start() -> Self {
        let net = Network::new(&["alice", "bob"], &["sn1"]);
        let sn1 = net.supernode("sn1", &[]);
        let alice = net.login("alice");
        let bob = net.login("bob");
        let mut bob_online = online(&bob);
        bob_online.expect("online via", Duration::from_secs(15));
        Self {
            _net: net,
            sn1,
            alice,
            bob_online,
        }
    }

    /// Alice looks bob up and opens a session at the home his record names: (that home, bob's
    /// device, the session).
    async fn alice_at_bobs_home(&self) -> (PeerAddr, NodeId, Session) {
        let context = Context::load(Profile::new(&self.alice), None).unwrap();
        let devices = query::lookup(&context, &Username::new("bob").unwrap())
            .await
            .unwrap();
        let body = devices[0].1.body_unverified().clone();
        let home = body.home.expect("bob's record names his home");
        let session = session::open_to(&context, home).await.unwrap();
        (home, body.ticket.body_unverified().node, session)
    }
}

#[test]
fn a_hostile_client_gets_a_relay_only_to_a_device_that_joins_and_only_from_its_bound_address() {
    let world = World::start();
    let page = world.sn1.metrics_addr().unwrap();
    let counter = |name: &'static str| move || metric_at(page, name).unwrap_or(0);
    // Waits (off the runtime's threads) until `name` satisfies `check`.
    let settles = |name: &'static str, check: fn(u64) -> bool| {
        let read = counter(name);
        async move {
            tokio::task::spawn_blocking(move || {
                wait_until(Duration::from_secs(5), || check(read()))
            })
            .await
            .unwrap()
        }
    };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (home, bob_node, mut session) = world.alice_at_bobs_home().await;

        // A device that is not homed here (or does not exist): no relay, no punch.
        let stranger = SecretKey::from_seed([9; 32]).node_id();
        for ask in [
            ClientMessage::Relay { node: stranger },
            ClientMessage::Punch { node: stranger },
        ] {
            let answer = session.ask(&ask).await.unwrap();
            assert_eq!(
                answer,
                SupernodeMessage::Error(WireError::NotFound),
                "{ask:?}"
            );
        }

        // Bob is: the relay opens once his client has joined it.
        let SupernodeMessage::RelayOpened { port, token } = session
            .ask(&ClientMessage::Relay { node: bob_node })
            .await
            .unwrap()
        else {
            panic!("no relay to bob");
        };
        let relay = SocketAddr::new(home.addr.ip(), port);

        // Sprayed from an address that did not bind, with no token or a wrong one: dropped.
        let stranger_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger_socket
            .send_to(&bind_datagram(&[0xAA; 16]), relay)
            .unwrap();
        for _ in 0..20 {
            stranger_socket.send_to(&JUNK, relay).unwrap();
        }
        assert!(
            settles("switchboard_supernode_relay_dropped_unbound_total", |n| n
                >= 20)
            .await,
            "unbound datagrams were not counted as dropped"
        );
        assert!(settles("switchboard_supernode_relay_bytes_total", |n| n == 0).await);

        // Bound with the token, the same datagrams go to bob (and only to him).
        let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
        caller.send_to(&bind_datagram(&token), relay).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..10 {
            caller.send_to(&JUNK, relay).unwrap();
        }
        assert!(
            settles("switchboard_supernode_relay_bytes_total", |n| n == 10_000).await,
            "not the 10,000 bytes sent from the bound address were forwarded"
        );
        // The stranger, still spraying, gets nothing through.
        for _ in 0..20 {
            stranger_socket.send_to(&JUNK, relay).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(settles("switchboard_supernode_relay_bytes_total", |n| n == 10_000).await);

        // A device takes part in at most 4 relay sessions at once.
        for _ in 0..3 {
            let answer = session
                .ask(&ClientMessage::Relay { node: bob_node })
                .await
                .unwrap();
            assert!(
                matches!(answer, SupernodeMessage::RelayOpened { .. }),
                "{answer:?}"
            );
        }
        let answer = session
            .ask(&ClientMessage::Relay { node: bob_node })
            .await
            .unwrap();
        assert_eq!(
            answer,
            SupernodeMessage::Error(WireError::LimitExceeded {
                kind: LimitKind::Relays,
                max: 4
            })
        );
        assert!(settles("switchboard_supernode_relay_sessions", |n| n == 4).await);

        // The relay sessions end with the caller's session.
        session.goodbye().await;
    });
    let sessions = counter("switchboard_supernode_relay_sessions");
    assert!(
        wait_until(Duration::from_secs(5), || sessions() == 0),
        "{} relay sessions outlived the caller's session",
        sessions()
    );
}

#[test]
fn a_relay_session_ends_when_the_callee_goes() {
    let mut world = World::start();
    let page = world.sn1.metrics_addr().unwrap();
    let sessions = move || metric_at(page, "switchboard_supernode_relay_sessions").unwrap_or(0);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (_, bob_node, mut session) = world.alice_at_bobs_home().await;
        let answer = session
            .ask(&ClientMessage::Relay { node: bob_node })
            .await
            .unwrap();
        assert!(
            matches!(answer, SupernodeMessage::RelayOpened { .. }),
            "{answer:?}"
        );
        assert_eq!(
            tokio::task::spawn_blocking(sessions).await.unwrap(),
            1,
            "the relay is not open"
        );

        // Bob's device dies (SIGKILL: no goodbye); his home notices the silent session and the
        // relay goes with it, while alice's session stays open.
        world.bob_online.kill9();
        let gone = tokio::task::spawn_blocking(move || {
            wait_until(Duration::from_secs(10), || sessions() == 0)
        })
        .await
        .unwrap();
        assert!(gone, "the relay outlived the callee's session");
        assert!(
            session.ask(&ClientMessage::Refresh).await.is_ok(),
            "alice's own session should not have ended"
        );
        session.goodbye().await;
    });
}
