//! Who may serve (issue #11, point 1), against the real auth-server: a promoted ticket is
//! issued only for the nominee's own key, on a fresh nomination signed by an operator
//! supernode that is not revoked, within the per-nominator and network-wide limits; a step-down
//! ends the promotion and its refreshes; `promoted` is never an account's role.
//!
//! The nominations are made by this test process with a supernode account's key and ticket
//! (what a hostile supernode account could do), and presented over real QUIC.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;

use common::{metric, Network, PASSWORD};
use switchboard_account::login::{refresh_ticket, LoginError};
use switchboard_account::profile::Profile;
use switchboard_account::promotion::{redeem, step_down};
use switchboard_proto::wire_error::{LimitKind, UnauthorizedReason, WireError};
use switchboard_proto::{Nomination, NominationBody, Role, UnixTime, Username};
use switchboard_tests::Binary;

/// A nomination of `nominee`'s device by the supernode whose profile is `home`, issued at
/// `issued` (default: now).
fn nominate(home: &Path, nominee: &Path, user: &str, issued: Option<UnixTime>) -> Nomination {
    let home = Profile::new(home);
    let key = home.node_key().unwrap();
    let body = NominationBody {
        nominee: Profile::new(nominee).node_key().unwrap().node_id(),
        user: Username::new(user).unwrap(),
        nominator: key.node_id(),
        addr: "127.0.0.1:4433".parse().unwrap(),
        capacity: 20,
        issued_at: issued.unwrap_or_else(switchboard_net::now_unix),
    };
    Nomination::sign(&key, home.ticket().unwrap(), body).unwrap()
}

fn refused(result: Result<impl std::fmt::Debug, LoginError>) -> WireError {
    match result {
        Err(LoginError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn promoted_tickets_are_issued_only_on_valid_nominations_within_the_limits() {
    let network = Network::with(
        &[
            ("sn1", "supernode"),
            ("alice", "user"),
            ("bob", "user"),
            ("carol", "user"),
            ("dave", "user"),
        ],
        "max_promoted = 2\nnominations_per_hour = 3\n",
    );
    let sn1 = network.login("sn1");
    let [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(|u| network.login(u));
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // Alice's other device, and bob, present the nomination of alice's first device: the
    // auth-server issues for the caller's own key only.
    let for_alice = nominate(&sn1, &alice, "alice", None);
    let laptop = network.login_at("alice", "second-alice");
    for caller in [&laptop, &bob] {
        assert_eq!(
            refused(runtime.block_on(redeem(&Profile::new(caller), for_alice.clone()))),
            WireError::Unauthorized {
                reason: UnauthorizedReason::KeyMismatch
            }
        );
    }
    // A nomination from an hour ago is stale.
    let old = UnixTime(switchboard_net::now_unix().0 - 3_600);
    assert_eq!(
        refused(runtime.block_on(redeem(
            &Profile::new(&alice),
            nominate(&sn1, &alice, "alice", Some(old))
        ))),
        WireError::Unauthorized {
            reason: UnauthorizedReason::TicketExpired
        }
    );
    // A nomination naming another account than the caller's ticket.
    assert_eq!(
        refused(runtime.block_on(redeem(
            &Profile::new(&alice),
            nominate(&sn1, &alice, "bob", None)
        ))),
        WireError::Unauthorized {
            reason: UnauthorizedReason::KeyMismatch
        }
    );

    // The real thing: a promoted ticket for alice's own key, and a promoted profile.
    let (promoted, ticket) = runtime
        .block_on(redeem(&Profile::new(&alice), for_alice))
        .unwrap();
    let body = ticket.body_unverified();
    assert_eq!(body.role, Role::Promoted);
    assert_eq!(body.user.as_str(), "alice");
    assert_eq!(
        body.node,
        Profile::new(&alice).node_key().unwrap().node_id()
    );
    assert_eq!(
        promoted.node_key().unwrap().node_id(),
        body.node,
        "the promoted profile serves with the client's own key"
    );
    // Its refresh keeps the promoted role while the promotion is active.
    let refreshed = runtime.block_on(refresh_ticket(&promoted)).unwrap();
    assert_eq!(refreshed.body_unverified().role, Role::Promoted);
    assert_eq!(refreshed.body_unverified().serial, body.serial);

    // Two promoted at most in all: bob is, carol is not.
    runtime
        .block_on(redeem(
            &Profile::new(&bob),
            nominate(&sn1, &bob, "bob", None),
        ))
        .unwrap();
    assert_eq!(
        refused(runtime.block_on(redeem(
            &Profile::new(&carol),
            nominate(&sn1, &carol, "carol", None)
        ))),
        WireError::LimitExceeded {
            kind: LimitKind::Promotions,
            max: 2
        }
    );
    // Alice steps down: her promoted ticket is revoked and refreshes are refused; carol's
    // nomination now fits.
    runtime.block_on(step_down(&promoted)).unwrap();
    assert!(
        promoted.ticket().is_err(),
        "the promoted ticket is forgotten"
    );
    let after = Profile::new(&promoted.dir().join("..").join("promoted-copy"));
    after.create().unwrap();
    after.save_node_key(&promoted.node_key().unwrap()).unwrap();
    after.save_settings(&promoted.settings().unwrap()).unwrap();
    after.save_ticket(&refreshed).unwrap();
    assert_eq!(
        refused(runtime.block_on(refresh_ticket(&after))),
        WireError::Unauthorized {
            reason: UnauthorizedReason::Revoked
        }
    );
    runtime
        .block_on(redeem(
            &Profile::new(&carol),
            nominate(&sn1, &carol, "carol", None),
        ))
        .unwrap();
    // Three nominations an hour from one supernode: dave's is the fourth.
    assert_eq!(
        refused(runtime.block_on(redeem(
            &Profile::new(&dave),
            nominate(&sn1, &dave, "dave", None)
        ))),
        WireError::LimitExceeded {
            kind: LimitKind::Promotions,
            max: 3
        }
    );
    assert_eq!(
        metric(&network.auth, "switchboard_auth_promotions_total"),
        Some(3)
    );
    assert_eq!(
        metric(&network.auth, "switchboard_auth_step_downs_total"),
        Some(1)
    );
    assert!(metric(&network.auth, "switchboard_auth_nominations_refused_total").unwrap() >= 5);
}

#[test]
fn a_revoked_supernode_nominates_nobody() {
    let network = Network::with(&[("sn1", "supernode"), ("alice", "user")], "");
    let sn1 = network.login("sn1");
    let alice = network.login("alice");
    let node = Profile::new(&sn1).node_key().unwrap().node_id().to_string();
    let out = Binary::AuthServer
        .run(&[
            "revoke",
            "--node",
            &node,
            "--data-dir",
            network.path("auth").to_str().unwrap(),
        ])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        refused(runtime.block_on(redeem(
            &Profile::new(&alice),
            nominate(&sn1, &alice, "alice", None)
        ))),
        WireError::Unauthorized {
            reason: UnauthorizedReason::Revoked
        }
    );
}

#[test]
fn promoted_is_never_an_accounts_role() {
    let network = Network::with(&[], "");
    let out = Binary::AuthServer
        .run_with_stdin(
            &[
                "user",
                "add",
                "eve",
                "--role",
                "promoted",
                "--data-dir",
                network.path("auth").to_str().unwrap(),
            ],
            &format!("{PASSWORD}\n"),
        )
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a ticket's role, never an account's"),
        "{stderr}"
    );
}

#[test]
fn a_client_with_a_user_ticket_is_refused_as_a_supernode_at_the_tls_layer() {
    let network = Network::with(
        &[("sn1", "supernode"), ("mallory", "user"), ("bob", "user")],
        "",
    );
    let _sn1 = network.supernode("sn1", &[]);
    let mallory = network.login("mallory");
    let bob = network.login("bob");
    // Mallory runs a promotable client: its responder speaks the directory's ALPN with her
    // user ticket, the closest a user's client comes to a supernode. Bob's host cache names
    // only that address, as if she were one (a planted bootstrap entry, a forged alternative).
    let mut rogue = common::Running::start(&[
        "online",
        "--profile",
        mallory.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--promotable",
        "--serve",
        "127.0.0.1:0",
    ]);
    let line = rogue.expect(
        "offered as a supernode at ",
        std::time::Duration::from_secs(30),
    );
    let addr: std::net::SocketAddr = line
        .trim_start_matches("offered as a supernode at ")
        .trim()
        .parse()
        .unwrap();
    Profile::new(&bob)
        .save_hosts(vec![switchboard_account::profile::Host {
            node: Profile::new(&mallory)
                .node_key()
                .unwrap()
                .node_id()
                .to_string(),
            addr,
            mode: "normal".to_owned(),
            load_permille: 0,
            last_success: None,
            last_failure: None,
        }])
        .unwrap();
    let out = Binary::Client
        .command(&["lookup", "sn1", "--profile", bob.to_str().unwrap()])
        .unwrap()
        .env("RUST_LOG", "switchboard_client=debug")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a lookup through a user's client succeeded"
    );
    // Refused by bob's verifier in the handshake, for the role.
    assert!(err.contains("role user is not allowed here"), "{err}");
    assert!(err.contains("no supernode admitted this client"), "{err}");
}
