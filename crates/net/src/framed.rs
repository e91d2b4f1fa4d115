//! Frames on QUIC streams, and request/answer exchanges with deadlines.
//!
//! Two shapes:
//! - **one exchange per stream** ([`request`] on the dialing side, [`read_request`] and
//!   [`respond`] on the answering side): the dialer opens a bidirectional stream, writes one
//!   frame and finishes; the other side answers one frame and finishes. No request ids, no
//!   head-of-line blocking between requests, and QUIC's stream limit bounds the requests in
//!   flight per connection;
//! - **long-lived streams** ([`write_frame`], [`read_frame`]): a sequence of frames, for pushes.
//!
//! Every read checks the frame cap before allocating; a frame that breaks the codec is
//! [`StreamError::Invalid`], which the caller answers by closing the connection with
//! `Malformed` (DESIGN.md section 9).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use switchboard_proto::codec::{self, EncodeError, FrameError, InvalidFrame};
use switchboard_proto::limits::{FRAME_HEADER_LEN, MAX_FRAME_LEN};

/// Default deadline of one request/answer exchange. A supernode answers from memory in
/// microseconds and an overlay lookup takes one round trip; 5 s covers a congested path and
/// still lets a client fail over long before a human gives up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The deadline passed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The stream ended where a frame was expected.
    #[error("stream ended before a whole frame arrived")]
    Truncated,
    /// The bytes are not a valid frame: close the connection with `Malformed`.
    #[error("malformed frame: {0}")]
    Invalid(#[from] InvalidFrame),
    /// Our own message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Reading failed (stream reset, connection lost).
    #[error("read: {0}")]
    Read(#[from] quinn::ReadError),
    /// Writing failed (stream stopped, connection lost).
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// The connection is gone.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The stream was already finished or reset.
    #[error("stream: {0}")]
    Closed(#[from] quinn::ClosedStream),
}

impl StreamError {
    /// Whether the peer broke the protocol (as opposed to the path or the clock failing).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Invalid(_))
    }
}

impl From<FrameError> for StreamError {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::Incomplete { .. } => Self::Truncated,
            FrameError::Invalid(invalid) => Self::Invalid(invalid),
        }
    }
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    message: &T,
) -> Result<(), StreamError> {
    let frame = codec::encode_frame(message)?;
    send.write_all(&frame).await?;
    Ok(())
}

/// Reads the next frame of a long-lived stream; `Ok(None)` if the stream ended cleanly between
/// frames. The length is checked against `max` before the payload buffer is allocated.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    max: usize,
) -> Result<Option<T>, StreamError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(StreamError::Truncated),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(e.into()),
    }
    let len = codec::frame_len(header, max)?;
    let mut payload = vec![0u8; len];
    match recv.read_exact(&mut payload).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(StreamError::Truncated),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(e.into()),
    }
    Ok(Some(codec::decode_payload(&payload)?))
}

/// Reads a stream that carries exactly one frame and then ends: the whole stream is read with a
/// cap of one maximal frame, and bytes after the frame are an error.
async fn read_single<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    max: usize,
) -> Result<T, StreamError> {
    let bytes = match recv.read_to_end(FRAME_HEADER_LEN + max).await {
        Ok(bytes) => bytes,
        Err(quinn::ReadToEndError::TooLong) => {
            return Err(InvalidFrame::TooLarge {
                len: FRAME_HEADER_LEN + max + 1,
                max,
            }
            .into())
        }
        Err(quinn::ReadToEndError::Read(e)) => return Err(e.into()),
    };
    Ok(codec::decode_single_frame(&bytes, max)?)
}

/// Sends `request` on a new bidirectional stream of `connection` and returns the answer, all
/// within `timeout`.
pub async fn request<Req: Serialize, Resp: DeserializeOwned>(
    connection: &quinn::Connection,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, StreamError> {
    let exchange = async {
        let (mut send, mut recv) = connection.open_bi().await?;
        write_frame(&mut send, request).await?;
        send.finish()?;
        read_single(&mut recv, MAX_FRAME_LEN).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| StreamError::Timeout(timeout))?
}

/// Reads the one request on a stream the peer opened, within `timeout`.
pub async fn read_request<Req: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    timeout: Duration,
) -> Result<Req, StreamError> {
    tokio::time::timeout(timeout, read_single(recv, MAX_FRAME_LEN))
        .await
        .map_err(|_| StreamError::Timeout(timeout))?
}

/// Writes the one answer on a request stream and finishes it.
pub async fn respond<Resp: Serialize>(
    send: &mut quinn::SendStream,
    answer: &Resp,
) -> Result<(), StreamError> {
    write_frame(send, answer).await?;
    send.finish()?;
    Ok(())
}
