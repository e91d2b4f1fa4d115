//! The membership decoders (foca's SWIM packets with our identities and load reports, and the
//! anti-entropy sync) on arbitrary bytes: an error or a change of view, never a panic.

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use switchboard_engine::membership::{MemberInfo, MemberRole, Membership, MembershipConfig};
use switchboard_engine::Time;
use switchboard_proto::NodeId;

fuzz_target!(|data: &[u8]| {
    let me = MemberInfo {
        node: NodeId::from_bytes([7; 32]),
        addr: SocketAddr::from(([127, 0, 0, 1], 7710)),
        role: MemberRole::Supernode,
        capacity: 100,
        generation: 1,
    };
    let Ok(mut membership) = Membership::new(Time::ZERO, me, MembershipConfig::default(), 1) else {
        return;
    };
    let _ = membership.handle_packet(Time(1), data);
    let _ = membership.handle_sync(Time(2), data);
    membership.handle_timeout(Time(10_000));
    while membership.poll_send().is_some() {}
    while membership.poll_event().is_some() {}
});
