//! The codec: postcard 1.x payloads in length-prefixed frames.
//!
//! A frame is a big-endian `u32` payload length followed by that many bytes of postcard.
//! Postcard's format is frozen for 1.x and documented (the postcard specification), so the
//! wire does not change under us with a dependency bump. This module is the only place that
//! names postcard: swapping the codec means changing this file.
//!
//! Reading follows mini-redis' `check`-then-`parse`:
//! 1. [`frame_len`] reads the header and refuses a length over the cap *before* anything is
//!    allocated for the payload;
//! 2. [`decode_frame`] on a buffer says [`FrameError::Incomplete`] ("need more bytes") apart
//!    from [`FrameError::Invalid`] ("garbage: close the connection");
//! 3. a payload must decode to exactly one message: trailing bytes are an error.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::limits::{FRAME_HEADER_LEN, MAX_FRAME_LEN};

/// Why bytes are not a valid frame. Any of these closes the connection with `Malformed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFrame {
    /// The header announces more than the cap.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced payload length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A zero-length payload (no message encodes to nothing).
    #[error("empty frame")]
    Empty,
    /// The payload is not a valid message.
    #[error("undecodable payload: {0}")]
    Payload(String),
    /// The payload holds a message followed by extra bytes.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
}

/// The outcome of trying to decode a frame from a buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The buffer holds the start of a frame; read more bytes (at least `needed` more).
    #[error("incomplete frame, {needed} more bytes needed")]
    Incomplete {
        /// Bytes still missing for the frame (at least).
        needed: usize,
    },
    /// The bytes can never become a valid frame.
    #[error(transparent)]
    Invalid(#[from] InvalidFrame),
}

/// A message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Encoded, it exceeds the frame cap (a bug in the sender: bounded types should prevent it).
    #[error("message of {len} bytes exceeds the {max}-byte frame limit")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The serializer failed.
    #[error("cannot encode message: {0}")]
    Serialize(String),
}

/// Encodes `message` as one frame (header and payload), checking the cap `max`.
pub fn encode_frame_with_limit<T: Serialize>(
    message: &T,
    max: usize,
) -> Result<Vec<u8>, EncodeError> {
    let mut frame = vec![0u8; FRAME_HEADER_LEN];
    frame =
        postcard::to_extend(message, frame).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    let len = frame.len() - FRAME_HEADER_LEN;
    let header = u32::try_from(len)
        .ok()
        .filter(|_| len <= max)
        .ok_or(EncodeError::TooLarge { len, max })?;
    if let Some(slot) = frame.get_mut(..FRAME_HEADER_LEN) {
        slot.copy_from_slice(&header.to_be_bytes());
    }
    Ok(frame)
}

/// Encodes `message` as one frame under [`MAX_FRAME_LEN`].
pub fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, EncodeError> {
    encode_frame_with_limit(message, MAX_FRAME_LEN)
}

/// Reads a frame header and checks the announced payload length against `max`.
pub fn frame_len(header: [u8; FRAME_HEADER_LEN], max: usize) -> Result<usize, InvalidFrame> {
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > max {
        return Err(InvalidFrame::TooLarge { len, max });
    }
    if len == 0 {
        return Err(InvalidFrame::Empty);
    }
    Ok(len)
}

/// Decodes a payload (without header) that must hold exactly one message.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, InvalidFrame> {
    if payload.is_empty() {
        return Err(InvalidFrame::Empty);
    }
    let (message, rest) =
        postcard::take_from_bytes(payload).map_err(|e| InvalidFrame::Payload(e.to_string()))?;
    if !rest.is_empty() {
        return Err(InvalidFrame::TrailingBytes { extra: rest.len() });
    }
    Ok(message)
}

/// Decodes the first frame in `buf` under the cap `max`; returns the message and the number of
/// bytes it used. Bytes after the frame are left for the next call.
pub fn decode_frame_with_limit<T: DeserializeOwned>(
    buf: &[u8],
    max: usize,
) -> Result<(T, usize), FrameError> {
    let header: [u8; FRAME_HEADER_LEN] = match buf.get(..FRAME_HEADER_LEN) {
        Some(bytes) => bytes.try_into().map_err(|_| FrameError::Incomplete {
            needed: FRAME_HEADER_LEN,
        })?,
        None => {
            return Err(FrameError::Incomplete {
                needed: FRAME_HEADER_LEN.saturating_sub(buf.len()),
            })
        }
    };
    let len = frame_len(header, max)?;
    let end = FRAME_HEADER_LEN + len;
    let payload = buf
        .get(FRAME_HEADER_LEN..end)
        .ok_or_else(|| FrameError::Incomplete {
            needed: end.saturating_sub(buf.len()),
        })?;
    Ok((decode_payload(payload)?, end))
}

/// Decodes the first frame in `buf` under [`MAX_FRAME_LEN`].
pub fn decode_frame<T: DeserializeOwned>(buf: &[u8]) -> Result<(T, usize), FrameError> {
    decode_frame_with_limit(buf, MAX_FRAME_LEN)
}

/// Decodes a buffer that must hold exactly one whole frame and nothing else (a stream that
/// carries one request or one answer).
pub fn decode_single_frame<T: DeserializeOwned>(buf: &[u8], max: usize) -> Result<T, FrameError> {
    let (message, used) = decode_frame_with_limit(buf, max)?;
    if used != buf.len() {
        return Err(InvalidFrame::TrailingBytes {
            extra: buf.len().saturating_sub(used),
        }
        .into());
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::ClientMessage;

    #[test]
    fn a_frame_round_trips_and_reports_its_length() {
        let frame = encode_frame(&ClientMessage::Refresh).unwrap();
        let (message, used) = decode_frame::<ClientMessage>(&frame).unwrap();
        assert_eq!(message, ClientMessage::Refresh);
        assert_eq!(used, frame.len());
    }

    #[test]
    fn a_partial_frame_is_incomplete_not_invalid() {
        let frame = encode_frame(&ClientMessage::Goodbye).unwrap();
        for cut in 0..frame.len() {
            let result = decode_frame::<ClientMessage>(&frame[..cut]);
            // Before the header is whole, only the header's missing bytes are known.
            let expected = if cut < FRAME_HEADER_LEN {
                FRAME_HEADER_LEN - cut
            } else {
                frame.len() - cut
            };
            assert!(
                matches!(result, Err(FrameError::Incomplete { needed }) if needed == expected),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn an_oversized_header_is_refused_before_the_payload_arrives() {
        let header = u32::try_from(MAX_FRAME_LEN + 1).unwrap().to_be_bytes();
        assert_eq!(
            decode_frame::<ClientMessage>(&header),
            Err(FrameError::Invalid(InvalidFrame::TooLarge {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            }))
        );
    }

    #[test]
    fn trailing_bytes_inside_a_frame_are_an_error() {
        let mut payload = postcard::to_allocvec(&ClientMessage::Refresh).unwrap();
        payload.push(0);
        let mut frame = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        assert_eq!(
            decode_frame::<ClientMessage>(&frame),
            Err(FrameError::Invalid(InvalidFrame::TrailingBytes {
                extra: 1
            }))
        );
    }

    #[test]
    fn bytes_after_a_single_frame_are_an_error() {
        let mut frame = encode_frame(&ClientMessage::Refresh).unwrap();
        frame.push(9);
        assert!(matches!(
            decode_single_frame::<ClientMessage>(&frame, MAX_FRAME_LEN),
            Err(FrameError::Invalid(InvalidFrame::TrailingBytes {
                extra: 1
            }))
        ));
    }

    #[test]
    fn an_empty_frame_is_invalid() {
        assert_eq!(
            decode_frame::<ClientMessage>(&[0, 0, 0, 0]),
            Err(FrameError::Invalid(InvalidFrame::Empty))
        );
    }

    #[test]
    fn encoding_refuses_a_message_over_the_cap() {
        let result = encode_frame_with_limit(&ClientMessage::Refresh, 0);
        assert_eq!(result, Err(EncodeError::TooLarge { len: 1, max: 0 }));
    }
}
