//! Switchboard's only IO: QUIC endpoints (quinn), TLS with node keys and tickets (rustls with
//! ring, a custom verifier), frames on streams, and request/answer exchanges with deadlines.
//!
//! This crate owns sockets, the clock and tokio for everything above `proto` and `engine`; it
//! decides nothing about the directory. It must never panic on what a peer sends: certificates,
//! tickets and frames are parsed with `proto`'s total decoders and refused with an error that
//! names the reason.
//!
//! The flow of a connection:
//! 1. [`config::server_config`] / [`config::client_config`] build quinn configs from an
//!    [`Identity`] (node key + ticket, presented as a self-signed certificate with the ticket in
//!    an extension) and a [`PeerPolicy`] (what the other side must present);
//! 2. [`Listener::accept`] hands out [`Handshake`]s behind the handshake [`gate`];
//!    [`Handshake::complete`] or [`Dialer::connect`] yields a [`PeerConnection`] whose
//!    [`PeerIdentity`] was checked by the TLS verifier;
//! 3. [`framed::request`] / [`framed::read_request`] + [`framed::respond`] exchange frames.

pub mod config;
pub mod config_file;
pub mod endpoint;
pub mod framed;
pub mod gate;
pub mod identity;
pub mod interfaces;
pub mod keyfile;
pub mod metrics;
pub mod raw;
pub mod shutdown;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;

pub use config::{client_config, server_config, transport_config, Resumption, TlsConfigError};
pub use endpoint::{
    identify, now_unix, peer_certificate, CloseCode, Dialer, Handshake, HandshakeError, Listener,
    PeerConnection, HANDSHAKE_TIMEOUT,
};
pub use framed::{StreamError, REQUEST_TIMEOUT};
pub use gate::{GateStats, HandshakeGate, DEFAULT_MAX_CONCURRENT_HANDSHAKES};
pub use identity::{Identity, IdentityError, PeerCertificate};
pub use raw::RawSocket;
pub use verify::{PeerAuthError, PeerIdentity, PeerPolicy};
