//! Property tests of the wire contract: every message of every direction survives the codec
//! unchanged, and no byte string, however hostile, makes a decoder panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod strategies;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use strategies::*;
use switchboard_proto::codec::{decode_frame, encode_frame, FrameError};
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::*;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(message: &T) {
    let frame = encode_frame(message).expect("a bounded message always fits a frame");
    assert!(frame.len() <= MAX_FRAME_LEN + 4);
    let (back, used) = decode_frame::<T>(&frame).unwrap();
    assert_eq!(&back, message);
    assert_eq!(used, frame.len());
    // Two frames back to back decode one at a time.
    let mut two = frame.clone();
    two.extend_from_slice(&frame);
    let (first, used) = decode_frame::<T>(&two).unwrap();
    assert_eq!(&first, message);
    assert_eq!(decode_frame::<T>(&two[used..]).unwrap().0, back);
}

/// Decoding must end in a value or an error, never a panic; a value must re-encode to a frame
/// that decodes to the same value (decode -> encode -> decode agrees).
fn decode_is_total<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    match decode_frame::<T>(bytes) {
        Ok((value, used)) => {
            assert!(used <= bytes.len());
            let again = encode_frame(&value).unwrap();
            assert_eq!(decode_frame::<T>(&again).unwrap().0, value);
        }
        Err(FrameError::Incomplete { needed }) => assert!(needed > 0),
        Err(FrameError::Invalid(_)) => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_messages_round_trip(m in client_message()) { round_trip(&m); }

    #[test]
    fn supernode_messages_round_trip(m in supernode_message()) { round_trip(&m); }

    #[test]
    fn overlay_messages_round_trip(m in overlay_message()) { round_trip(&m); }

    #[test]
    fn auth_requests_round_trip(m in auth_request()) { round_trip(&m); }

    #[test]
    fn auth_responses_round_trip(m in auth_response()) { round_trip(&m); }

    #[test]
    fn direct_messages_round_trip(m in direct_message()) { round_trip(&m); }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_is_total::<ClientMessage>(&bytes);
        decode_is_total::<SupernodeMessage>(&bytes);
        decode_is_total::<OverlayMessage>(&bytes);
        decode_is_total::<AuthRequest>(&bytes);
        decode_is_total::<AuthResponse>(&bytes);
        decode_is_total::<DirectMessage>(&bytes);
    }

    /// Random bytes rarely get past the first tag; mutating a valid frame reaches deep into
    /// the decoder (records, tickets, bounded collections).
    #[test]
    fn decoding_mutated_frames_never_panics(
        m in supernode_message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut frame = encode_frame(&m).unwrap();
        for (at, byte) in flips {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        decode_is_total::<SupernodeMessage>(&frame);
        decode_is_total::<ClientMessage>(&frame);
        decode_is_total::<OverlayMessage>(&frame);
        decode_is_total::<AuthResponse>(&frame);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// A relay reads bind datagrams from any address: any bytes give a token or nothing, and
    /// only a bind datagram gives a token, its own.
    #[test]
    fn relay_bind_parsing_is_total_and_exact(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        token in any::<[u8; 16]>(),
    ) {
        use switchboard_proto::relay::{bind_datagram, parse_bind, RELAY_BIND_MAGIC};
        if let Some(found) = parse_bind(&bytes) {
            prop_assert!(bytes.starts_with(&RELAY_BIND_MAGIC));
            prop_assert_eq!(bind_datagram(&found).to_vec(), bytes);
        }
        prop_assert_eq!(parse_bind(&bind_datagram(&token)), Some(token));
    }
}
