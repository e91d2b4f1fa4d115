//! The switch behind `testbed outage --naive` is a real configuration switch of the real
//! supernode: with `admission_control = false` it admits clients past its capacity and never
//! answers `Busy` (and says at start-up that this is no production setting); with the default
//! it keeps to its capacity.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

mod common;

use common::*;
use switchboard_tests::Daemon;

/// Opens 12 sessions of minted devices at `sn`; returns how many were admitted.
fn admitted(network: &Network, filler: &std::path::Path, sn: &Daemon, tag: &str) -> usize {
    use switchboard_client::profile::Profile;
    use switchboard_client::session::{self, Context};
    let auth_key = switchboard_net::keyfile::load(&network.path("auth").join("auth.key")).unwrap();
    let now = switchboard_net::now_unix().0;
    let profiles: Vec<_> = (0..12)
        .map(|i| {
            minted_profile(
                network,
                filler,
                &format!("{tag}{i:02}"),
                &auth_key,
                now - 60,
                3_600,
            )
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut open = Vec::new();
        for dir in profiles {
            let context = Context::load(Profile::new(&dir), None).unwrap();
            if let Ok(session) = session::open(&context, None).await {
                assert_eq!(session.host.addr, sn.addr());
                open.push(session);
            }
        }
        // Held open until counted.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let count = open.len();
        assert_eq!(
            metric(sn, "switchboard_supernode_clients_connected"),
            Some(count as u64)
        );
        count
    })
}

#[test]
fn with_admission_control_off_a_supernode_admits_past_its_capacity_and_never_says_busy() {
    let network = Network::new(&["filler"], &["sn1"]);
    let config = network.path("naive.toml");
    std::fs::write(&config, "admission_control = false\n").unwrap();
    let sn = network.supernode(
        "sn1",
        &["--capacity", "4", "--config", config.to_str().unwrap()],
    );
    let filler = network.login("filler");
    assert_eq!(admitted(&network, &filler, &sn, "n"), 12);
    assert_eq!(metric(&sn, "switchboard_supernode_busy_total"), Some(0));
    assert_eq!(
        metric(&sn, "switchboard_supernode_capacity"),
        Some(4),
        "the capacity is still reported: its load shows 300%"
    );
}

#[test]
fn with_the_default_the_same_supernode_keeps_to_its_capacity() {
    let network = Network::new(&["filler"], &["sn1"]);
    let sn = network.supernode("sn1", &["--capacity", "4"]);
    let filler = network.login("filler");
    assert_eq!(admitted(&network, &filler, &sn, "d"), 4);
    assert_eq!(metric(&sn, "switchboard_supernode_busy_total"), Some(8));
}
