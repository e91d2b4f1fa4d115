//! Every direction's decoder on arbitrary bytes: it must return a message or an error, never
//! panic, and a decoded message must re-encode to a frame that decodes to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use switchboard_proto::codec::{decode_frame, decode_single_frame, encode_frame};
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::{
    AuthRequest, AuthResponse, ClientMessage, DirectMessage, OverlayMessage, SupernodeMessage,
};

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok((message, used)) = decode_frame::<T>(data) {
        assert!(used <= data.len());
        let frame = encode_frame(&message).expect("a decoded message re-encodes");
        let (again, _) = decode_frame::<T>(&frame).expect("a re-encoded frame decodes");
        assert_eq!(again, message, "decode -> encode -> decode disagrees");
    }
    let _ = decode_single_frame::<T>(data, MAX_FRAME_LEN);
}

fuzz_target!(|data: &[u8]| {
    check::<ClientMessage>(data);
    check::<SupernodeMessage>(data);
    check::<OverlayMessage>(data);
    check::<AuthRequest>(data);
    check::<AuthResponse>(data);
    check::<DirectMessage>(data);
});
