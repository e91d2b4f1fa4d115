//! The relay's bind-datagram parser on arbitrary bytes (every datagram that reaches a relay
//! port goes through it): it must never panic, and a token it finds must re-encode to the
//! same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_proto::relay::{bind_datagram, parse_bind};

fuzz_target!(|data: &[u8]| {
    if let Some(token) = parse_bind(data) {
        assert_eq!(&bind_datagram(&token)[..], data);
    }
});
