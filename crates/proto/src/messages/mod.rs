//! The messages, one enum per direction (DESIGN.md section 4).
//!
//! | connection | dialer sends | listener sends |
//! | --- | --- | --- |
//! | client -> supernode (`switchboard/1`) | [`ClientMessage`] | [`SupernodeMessage`] |
//! | supernode <-> supernode (`switchboard/1`) | [`OverlayMessage`] | [`OverlayMessage`] |
//! | anyone -> auth-server (`switchboard-auth/1`) | [`AuthRequest`] | [`AuthResponse`] |
//! | client -> client (`switchboard-direct/1`) | [`DirectMessage`] | [`DirectMessage`] |
//!
//! Identity never travels in these messages: it comes from the TLS handshake, where the peer's
//! certificate carries its ticket (see `switchboard-net`). Every collection is a bounded type,
//! so a decoded message is already within the limits of [`crate::limits`].

mod auth;
mod client;
mod direct;
mod overlay;

pub use auth::{
    AuthRequest, AuthResponse, BootstrapEntry, Password, Revocation, RevocationPage, ServiceMode,
};
pub use client::{ClientMessage, PresenceEvent, RedirectReason, SupernodeMessage, WatchList};
pub use direct::{DirectMessage, Text};
pub use overlay::{MembershipPayload, MembershipSyncPayload, OverlayMessage, RecordKey};
