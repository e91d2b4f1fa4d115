//! A hostile overlay member (issue #10, point 2): an account of role `supernode`, with a
//! valid ticket, connects to the real supernodes and sends what the issue saw work against
//! them: a membership sync naming sn2 at a dead address with the highest generation, twenty
//! made-up node ids, and a load report for sn2 with the highest sequence. Nothing of it may
//! change a view, an owner or a lookup; the refusals are counted.
//!
//! The attacker is this test process (a test-only tool built from `switchboard-engine`'s
//! `testing` encoders), never a mode of a release binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client, metric, online, wait_for_index, wait_for_overlay, wait_until, Network};
use switchboard_client::profile::Profile;
use switchboard_engine::membership::{testkit, MemberInfo, MemberRole, Signer, Statement};
use switchboard_net::config::Role as TransportRole;
use switchboard_net::framed::{read_frame, write_frame};
use switchboard_net::{
    client_config, server_config, transport_config, Dialer, HandshakeGate, Identity, Listener,
    PeerConnection, PeerPolicy, Resumption,
};
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::OverlayMessage;
use switchboard_proto::version::ALPN_DIRECTORY;
use switchboard_proto::{AuthKey, NodeId, TrustAnchor};

const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5"];

async fn send(connection: &PeerConnection, message: &OverlayMessage) {
    let mut stream = connection.connection.open_uni().await.unwrap();
    write_frame(&mut stream, message).await.unwrap();
    stream.finish().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.stopped()).await;
}

fn node_of(network: &Network, name: &str) -> NodeId {
    Profile::new(&network.path(name))
        .node_key()
        .unwrap()
        .node_id()
}

/// The attack, from a process holding `evil`'s supernode ticket.
async fn attack(network: &Network, sn1: SocketAddr, sn2: SocketAddr, sn3: SocketAddr) {
    let profile = Profile::new(&network.path("profile-evil"));
    let signer = Signer {
        key: profile.node_key().unwrap(),
        ticket: profile.ticket().unwrap(),
    };
    let anchor = TrustAnchor::new(network.pubkey.parse::<AuthKey>().unwrap()).unwrap();
    let identity = Identity::new(signer.key.clone(), Some(signer.ticket.clone()));
    let policy = PeerPolicy::overlay_peer(anchor);
    let listener = Listener::bind(
        "127.0.0.1:0".parse().unwrap(),
        server_config(
            &identity,
            policy.clone(),
            &[ALPN_DIRECTORY],
            transport_config(TransportRole::Overlay),
        )
        .unwrap(),
        policy.clone(),
        HandshakeGate::default(),
    )
    .unwrap();
    let dialer = Dialer::on_endpoint(
        listener.endpoint().clone(),
        client_config(
            &identity,
            policy.clone(),
            &[ALPN_DIRECTORY],
            transport_config(TransportRole::Overlay),
            Resumption::Disabled,
        )
        .unwrap(),
        policy,
    );
    let me = MemberInfo::signed(
        &signer,
        listener.local_addr().unwrap(),
        MemberRole::Supernode,
        10,
        1,
    )
    .unwrap();

    // sn2 "moved" to a dead address with a generation it can never beat, and twenty made-up
    // members, each with a key of its own: all carrying the attacker's proof.
    let sn2_node = node_of(network, "sn2");
    let mut forged = vec![MemberInfo::from(Statement {
        node: sn2_node,
        addr: "127.0.0.1:9".parse().unwrap(),
        generation: u64::MAX,
        ..me.to_statement()
    })];
    for i in 0..20u8 {
        let fresh = testkit::member(
            100 + i,
            "127.0.0.1:9".parse().unwrap(),
            MemberRole::Supernode,
            1_000_000,
        );
        forged.push(MemberInfo::from(Statement {
            proof: me.proof.clone(),
            ..fresh.to_statement()
        }));
    }
    let sample = testkit::sync_sample(forged);
    for target in [sn1, sn3] {
        let connection = dialer
            .connect(target, Duration::from_secs(5))
            .await
            .unwrap();
        for _ in 0..3 {
            send(
                &connection,
                &OverlayMessage::MembershipSync(sample.clone().try_into().unwrap()),
            )
            .await;
        }
    }

    // The forged load needs a SWIM packet addressed to sn1 exactly as it knows itself: announce
    // to it, read its identity from its answer, then gossip the report.
    let to_sn1 = dialer.connect(sn1, Duration::from_secs(5)).await.unwrap();
    let placeholder = MemberInfo::from(Statement {
        node: node_of(network, "sn1"),
        ..me.to_statement()
    });
    let announce = testkit::swim_packet(me.clone(), placeholder, foca::Message::Announce, &[]);
    send(
        &to_sn1,
        &OverlayMessage::Membership(announce.try_into().unwrap()),
    )
    .await;
    // sn1 answers on the connection it already has to us, or on one it dials to our
    // listener; others (told about us by sn1) may probe us too: wait for sn1's own identity.
    let sn1_node = node_of(network, "sn1");
    let from_sn1 = |connection: quinn::Connection| async move {
        while let Ok(mut stream) = connection.accept_uni().await {
            if let Ok(Some(OverlayMessage::Membership(packet))) =
                read_frame::<OverlayMessage>(&mut stream, MAX_FRAME_LEN).await
            {
                if let Some(sender) = testkit::swim_sender(packet.as_slice()) {
                    if sender.node == sn1_node {
                        return Some(sender);
                    }
                }
            }
        }
        None
    };
    let on_listener = async {
        loop {
            let handshake = listener.accept().await.unwrap();
            let Ok(connection) = handshake.complete(Duration::from_secs(5)).await else {
                continue;
            };
            if connection.peer.node == sn1_node {
                if let Some(sender) = from_sn1(connection.connection).await {
                    return sender;
                }
            }
        }
    };
    let sn1_identity = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            Some(sender) = from_sn1(to_sn1.connection.clone()) => sender,
            sender = on_listener => sender,
        }
    })
    .await
    .expect("sn1 answered the announce");
    let load = testkit::forged_load(&signer.key, sn2_node, u64::MAX, 9_999);
    let gossip = testkit::swim_packet(me, sn1_identity, foca::Message::Gossip, &[load]);
    send(
        &to_sn1,
        &OverlayMessage::Membership(gossip.try_into().unwrap()),
    )
    .await;
    let _ = sn2;
}

#[test]
fn a_supernode_account_forging_membership_and_load_changes_no_view_owner_or_lookup() {
    let accounts: Vec<(&str, &str)> = USERS
        .iter()
        .map(|u| (*u, "user"))
        .chain([
            ("sn1", "supernode"),
            ("sn2", "supernode"),
            ("sn3", "supernode"),
            ("evil", "supernode"),
        ])
        .collect();
    let network = Network::with(&accounts, "");
    let sn1 = network.supernode("sn1", &[]);
    let seed = sn1.addr().to_string();
    let sn2 = network.supernode("sn2", &["--seed", &seed]);
    let sn3 = network.supernode("sn3", &["--seed", &seed]);
    wait_for_overlay(&[&sn1, &sn2, &sn3], 3);
    let profiles: Vec<_> = USERS.iter().map(|u| network.login(u)).collect();
    let mut sessions: Vec<_> = profiles.iter().map(|p| online(p)).collect();
    for session in &mut sessions {
        session.expect("online via", Duration::from_secs(15));
    }
    network.login("evil");
    let (a1, a2, a3) = (sn1.addr(), sn2.addr(), sn3.addr());
    let sns = [sn1, sn2, sn3];
    wait_for_index(&sns, USERS.len() as u64 * 3);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(attack(&network, a1, a2, a3));

    // Right after: no made-up member got into any view (the attacker itself, which announced
    // with its own valid statement, may be there until it fails its probes).
    let mut largest = 0;
    let watched = std::time::Instant::now();
    while watched.elapsed() < Duration::from_secs(2) {
        for s in &sns {
            largest = largest.max(metric(s, "switchboard_overlay_members_live").unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(largest <= 4, "a view grew to {largest} members");

    // The attacker answers no probe after its announce: it is dropped again, and nothing it
    // said stays. Every view is the three real members, sn2 at its real address.
    assert!(
        wait_until(Duration::from_secs(30), || sns
            .iter()
            .all(|s| metric(s, "switchboard_overlay_members_live") == Some(3))),
        "views: {:?}",
        sns.iter()
            .map(|s| metric(s, "switchboard_overlay_members_live"))
            .collect::<Vec<_>>()
    );
    for (s, name) in [(&sns[0], "sn1"), (&sns[2], "sn3")] {
        let refused = metric(s, "switchboard_overlay_member_statements_refused_total").unwrap();
        println!("{name} refused {refused} member statements");
        assert!(refused >= 21, "{name} refused only {refused}");
    }
    let loads = metric(&sns[0], "switchboard_overlay_load_reports_refused_total").unwrap();
    assert!(loads >= 1, "sn1 refused the forged load report");
    // Owners: every user's record is on its three owners, as before.
    wait_for_index(&sns, USERS.len() as u64 * 3);
    // Every lookup, between every pair, from every home.
    for (i, from) in profiles.iter().enumerate() {
        for user in USERS.iter().filter(|u| **u != USERS[i]) {
            let (ok, _, stderr) = client(&["lookup", user, "--profile", from.to_str().unwrap()]);
            assert!(ok, "{} looking up {user}: {stderr}", USERS[i]);
        }
    }
}
