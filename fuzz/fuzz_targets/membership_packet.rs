//! The membership decoders (foca's SWIM packets with our signed identities and load reports,
//! and the anti-entropy sync) on arbitrary bytes: an error or a change of view, never a panic;
//! and since arbitrary bytes carry no valid member statement, never a new member.

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use switchboard_engine::membership::{testkit, MemberRole, Membership, MembershipConfig};
use switchboard_engine::Time;

fuzz_target!(|data: &[u8]| {
    let me = testkit::member(
        7,
        SocketAddr::from(([127, 0, 0, 1], 7710)),
        MemberRole::Supernode,
        100,
    );
    let Ok(mut membership) = Membership::new(
        Time::ZERO,
        me,
        testkit::signer(7),
        testkit::anchor(),
        MembershipConfig::default(),
        1,
    ) else {
        return;
    };
    let _ = membership.handle_packet(Time(1), data);
    let _ = membership.handle_sync(Time(2), testkit::signer(8).key.node_id(), data);
    assert_eq!(membership.live_count(), 1, "bytes without a valid statement added a member");
    membership.handle_timeout(Time(10_000));
    while membership.poll_send().is_some() {}
    while membership.poll_event().is_some() {}
});
