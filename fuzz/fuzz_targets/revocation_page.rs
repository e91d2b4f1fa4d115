//! A revocation page from arbitrary bytes, applied to a supernode's revocation list: decoding
//! returns a page or an error, never panics; applying any page (a cursor that goes back, an
//! account revoked twice, a huge page) never panics, and the cursor only moves forward unless
//! the list was reset.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_engine::{Applied, RevocationList};
use switchboard_proto::codec::decode_single_frame;
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::RevocationPage;

fuzz_target!(|data: &[u8]| {
    let mut list = RevocationList::new();
    // Two pages from the one input: the second applied on top of the first.
    let (first, second) = data.split_at(data.len() / 2);
    for part in [first, second] {
        if let Ok(page) = decode_single_frame::<RevocationPage>(part, MAX_FRAME_LEN) {
            let before = list.cursor();
            match list.apply(&page) {
                Applied::Reset => assert_eq!(list.cursor(), 0),
                Applied::Taken { .. } => assert!(list.cursor() >= before),
                Applied::Overflow => {}
            }
        }
    }
});
