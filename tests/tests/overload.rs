//! Feature shedding and handoff under overload (issue #11, points 6 and 8), on real processes:
//! a supernode with a small request budget is flooded with lookups over one session. Presence
//! fan-out slows first (held and batched, shown in `/metrics`), its clients' registrations stay
//! up, and after the overload lasts it hands a share of its clients to the less loaded
//! supernode with `Redirect { Overloaded }`, without them dropping out of lookups.
//!
//! The flood comes from this test process (a real client session from the `client` library),
//! bounded in count and time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::{client, metric, online, wait_for_overlay, wait_until, Network, Running};
use switchboard_client::profile::Profile;
use switchboard_client::session::{self, Context};
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::wire_error::WireError;
use switchboard_proto::Username;

const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5"];

/// Most lookups the flood sends, and for how long at most.
const FLOOD_MAX: usize = 200_000;
const FLOOD_FOR: Duration = Duration::from_secs(14);

#[test]
fn an_overloaded_supernode_slows_presence_first_then_hands_clients_off() {
    let mut accounts: Vec<(&str, &str)> = USERS.iter().map(|u| (*u, "user")).collect();
    accounts.extend([
        ("sn1", "supernode"),
        ("sn2", "supernode"),
        ("watcher", "user"),
        ("flooder", "user"),
    ]);
    let network = Network::with(&accounts, "");
    let config = network.path("small.toml");
    std::fs::write(
        &config,
        "requests_per_sec = 40\nshed_presence_delay_ms = 1500\n\
         overload_handoff_secs = 4\noverload_handoff_share_permille = 500\n",
    )
    .unwrap();
    let sn1 = network.supernode("sn1", &["--config", config.to_str().unwrap()]);
    // Everyone logs in while only sn1 is known, so that all are homed there.
    let profiles: Vec<_> = USERS.iter().map(|u| network.login(u)).collect();
    let watcher = network.login("watcher");
    let flooder = network.login("flooder");
    let mut sessions: Vec<Running> = profiles.iter().map(|p| online(p)).collect();
    for session in &mut sessions {
        session.expect("online via", Duration::from_secs(30));
    }
    let mut watch = Running::start(&["watch", "u5", "--profile", watcher.to_str().unwrap()]);
    watch.expect("u5 online", Duration::from_secs(10));
    let seed = sn1.addr().to_string();
    let sn2 = network.supernode("sn2", &["--seed", &seed]);
    wait_for_overlay(&[&sn1, &sn2], 2);
    assert_eq!(
        metric(&sn2, "switchboard_supernode_clients_connected"),
        Some(0)
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let context = Context::load(Profile::new(&flooder), None).unwrap();
    let mut flood = runtime.block_on(session::open(&context, None)).unwrap();
    let started = Instant::now();
    let (mut answered, mut busy, mut sent) = (0usize, 0usize, 0usize);
    let mut offline_at = None;
    let mut shedding_seen = false;
    while sent < FLOOD_MAX && started.elapsed() < FLOOD_FOR {
        let lookup = ClientMessage::Lookup {
            user: Username::new("u0").unwrap(),
        };
        sent += 1;
        match runtime.block_on(flood.ask(&lookup)) {
            Ok(SupernodeMessage::LookupResult { .. }) => answered += 1,
            Ok(SupernodeMessage::Error(WireError::Busy { .. })) => busy += 1,
            Ok(other) => panic!("unexpected answer {other:?}"),
            Err(e) => panic!("the flood's session broke: {e}"),
        }
        // Once the overload shows, u5 leaves: its watcher's presence is held and batched.
        if offline_at.is_none()
            && sent % 200 == 0
            && metric(&sn1, "switchboard_supernode_shedding") == Some(1)
        {
            shedding_seen = true;
            sessions[5].kill9();
            offline_at = Some(Instant::now());
        }
        if sent % 2000 == 0 {
            println!(
                "{:?}: shedding {:?} deferred {:?} held {:?} handoffs {:?} refused {:?}",
                started.elapsed(),
                metric(&sn1, "switchboard_supernode_shedding"),
                metric(&sn1, "switchboard_supernode_presence_deferred_total"),
                metric(&sn1, "switchboard_supernode_presence_held"),
                metric(&sn1, "switchboard_supernode_overload_handoffs_total"),
                metric(&sn1, "switchboard_supernode_requests_refused_permille"),
            );
        }
        if sent % 500 == 0
            && metric(&sn1, "switchboard_supernode_overload_handoffs_total") >= Some(1)
            && offline_at.is_some_and(|at| at.elapsed() > Duration::from_secs(5))
        {
            break;
        }
    }
    println!(
        "flood: {sent} lookups in {:?}, {answered} answered, {busy} busy",
        started.elapsed()
    );
    assert!(shedding_seen, "sn1 never reported shedding");
    assert!(busy > answered, "the flood did overload sn1");
    assert!(metric(&sn1, "switchboard_supernode_presence_deferred_total").unwrap() >= 1);
    // The watcher learns of it, late but surely.
    let line = watch.expect("u5 offline", Duration::from_secs(15));
    println!(
        "{line:?} {:?} after u5 left",
        offline_at.map(|at| at.elapsed())
    );
    // A share of the clients moved to the less loaded sn2.
    assert!(metric(&sn1, "switchboard_supernode_overload_handoffs_total").unwrap() >= 1);
    assert!(
        wait_until(Duration::from_secs(15), || metric(
            &sn2,
            "switchboard_supernode_clients_connected"
        )
        .is_some_and(|n| n >= 1)),
        "nobody moved to sn2"
    );
    // Nobody dropped: the clients that stayed kept their registrations, the moved ones
    // re-registered, and all of them are found.
    drop(flood);
    for (i, session) in sessions.iter_mut().enumerate().take(5) {
        assert!(
            !session.seen_contains("lost "),
            "u{i} lost its session: {:?}",
            session.seen_lines()
        );
    }
    for user in &USERS[..5] {
        assert!(
            wait_until(Duration::from_secs(10), || client(&[
                "lookup",
                user,
                "--profile",
                watcher.to_str().unwrap()
            ])
            .0),
            "{user} is not found after the handoff"
        );
    }
}
