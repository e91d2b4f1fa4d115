//! Switchboard's wire contract: the messages every node speaks, the identities they name, the
//! signed tickets and records they carry, the codec that frames them, every protocol limit and
//! the error codes a peer can be told.
//!
//! This crate owns the *meaning* of bytes on the wire and nothing else. It must never do IO:
//! no sockets, no files, no clock (callers pass `now` as [`UnixTime`]), no random source
//! (callers pass seeds), no tokio, no quinn. Everything that decodes input validates it on the
//! way in and returns an error instead of panicking, whatever the bytes.
//!
//! The map:
//! - [`ids`] holds [`NodeId`], [`AuthKey`], [`Username`], [`Role`], [`UnixTime`], [`PeerAddr`];
//! - [`keys`] holds [`SecretKey`] and domain-separated signatures;
//! - [`ticket`] and [`record`] are the two signed objects;
//! - [`relay`] has the two datagrams a client sends outside QUIC (hole punch, relay bind);
//! - [`messages`] has one enum per direction;
//! - [`version`] has `Hello`, negotiation and the ALPNs;
//! - [`wire_error`] has [`WireError`], what a peer is told;
//! - [`codec`] frames messages;
//! - [`limits`] names every hard limit, with its reason;
//! - [`bounded`] has collections whose limit is part of their type.

pub mod bounded;
pub mod codec;
pub mod ids;
pub mod keys;
pub mod limits;
pub mod member;
pub mod messages;
pub mod nomination;
pub mod record;
pub mod relay;
pub mod ticket;
pub mod version;
pub mod wire_error;

pub use bounded::{BoundedBytes, BoundedString, BoundedVec, TooLong};
pub use codec::{
    decode_frame, decode_payload, decode_single_frame, encode_frame, EncodeError, FrameError,
    InvalidFrame,
};
pub use ids::{AuthKey, NodeId, PeerAddr, Role, Signature, UnixTime, Username};
pub use keys::{SecretKey, TrustAnchor};
pub use nomination::{Nomination, NominationBody, NominationError};
pub use record::{Record, RecordBody, RecordError};
pub use ticket::{Ticket, TicketBody, TicketError};
pub use version::{Hello, SoftwareVersion, VersionRange, Welcome, PROTOCOL_VERSION};
pub use wire_error::{UnauthorizedReason, WireError};
