//! Tickets and records from arbitrary bytes, verified against a fixed trust anchor: decoding
//! and verification must end in a value or an error, never a panic, and nothing the fuzzer
//! makes up may verify (it cannot forge the auth-server's signature).

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_proto::codec::decode_payload;
use switchboard_proto::{Record, SecretKey, Ticket, UnixTime};

fuzz_target!(|data: &[u8]| {
    let auth = SecretKey::from_seed([42; 32]).trust_anchor();
    let now = UnixTime(1_800_000_000);
    if let Ok(ticket) = decode_payload::<Ticket>(data) {
        assert!(ticket.verify(&auth, now).is_err(), "a fuzzed ticket verified");
        let _ = ticket.check_time(now);
        let _ = ticket.remaining_secs(now);
    }
    if let Ok(record) = decode_payload::<Record>(data) {
        assert!(record.verify(&auth, now).is_err(), "a fuzzed record verified");
        let _ = record.user_unverified();
    }
});
