//! Error codes on the wire, apart from Rust errors (DESIGN.md section 9).
//!
//! A [`WireError`] is what a peer is *told*; the Rust error that caused it stays local (and is
//! logged once, where it is handled). Each code carries what the receiver needs to act on it:
//! when to retry and where, which version to upgrade to, why it is unauthorized.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bounded::{BoundedString, BoundedVec};
use crate::ids::PeerAddr;
use crate::limits::{MAX_ALTERNATIVES, MAX_ERROR_DETAIL_LEN};
use crate::version::SoftwareVersion;

/// Free text attached to an error, for humans.
pub type ErrorDetail = BoundedString<MAX_ERROR_DETAIL_LEN>;

/// Other supernodes to try.
pub type Alternatives = BoundedVec<PeerAddr, MAX_ALTERNATIVES>;

/// Why a request was not authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnauthorizedReason {
    /// The ticket is past its expiry.
    TicketExpired,
    /// The ticket is not signed by this network's auth-server.
    TicketForged,
    /// The ticket names another key than the connection's.
    KeyMismatch,
    /// The ticket or its account was revoked.
    Revoked,
    /// The ticket's role may not do this (e.g. a user ticket serving as a mega-supernode).
    RoleNotAllowed,
    /// The request needs a ticket and none was presented.
    NoTicket,
}

impl fmt::Display for UnauthorizedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TicketExpired => "ticket expired",
            Self::TicketForged => "ticket not signed by this network's auth-server",
            Self::KeyMismatch => "ticket names another node key",
            Self::Revoked => "ticket revoked",
            Self::RoleNotAllowed => "role not allowed to do this",
            Self::NoTicket => "no ticket presented",
        })
    }
}

/// Which limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitKind {
    /// Watched users per client.
    Watches,
    /// Devices (records) per user.
    Devices,
    /// Requests in flight on one connection.
    InFlight,
    /// Sessions of one user at one supernode (devices times sessions per device).
    Sessions,
    /// Promotions: nominations by one supernode per hour, or promoted nodes network-wide.
    Promotions,
    /// Relay sessions one device takes part in at one supernode.
    Relays,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    /// Over capacity: retry after the given time, preferably at one of the alternatives.
    #[error("busy, retry after {retry_after_ms} ms ({} alternatives)", alternatives.len())]
    Busy {
        /// How long to wait before retrying here.
        retry_after_ms: u32,
        /// Less-loaded supernodes (including active megas) to try instead.
        alternatives: Alternatives,
    },
    /// Go elsewhere (this node is draining, or is not the right one).
    #[error("redirected to {} other supernodes", targets.len())]
    Redirect {
        /// Where to go.
        targets: Alternatives,
    },
    /// The ticket does not allow this.
    #[error("unauthorized: {reason}; run `client login` again")]
    Unauthorized {
        /// Why.
        reason: UnauthorizedReason,
    },
    /// This software version is refused by the network.
    #[error("software version refused; upgrade to {minimum} or later")]
    VersionRejected {
        /// The oldest acceptable version.
        minimum: SoftwareVersion,
    },
    /// No common protocol version.
    #[error("no common protocol version (peer speaks {min}..={max})")]
    ProtocolUnsupported {
        /// The answering side's oldest version.
        min: u16,
        /// Its newest.
        max: u16,
    },
    /// Nothing known under that name.
    #[error("not found")]
    NotFound,
    /// The request could not be decoded or broke the protocol; the connection is closed.
    #[error("malformed request: {detail}")]
    Malformed {
        /// What was wrong.
        detail: ErrorDetail,
    },
    /// Wrong username or password, or unknown user: deliberately one answer for both.
    #[error("wrong username or password")]
    BadCredentials,
    /// The account is disabled.
    #[error("account disabled")]
    AccountDisabled,
    /// Too many attempts: wait before trying again.
    #[error("too many attempts, retry in {retry_after_ms} ms")]
    Throttled {
        /// How long to wait.
        retry_after_ms: u32,
    },
    /// A per-client limit was hit.
    #[error("limit exceeded: {kind:?} (max {max})")]
    LimitExceeded {
        /// Which limit.
        kind: LimitKind,
        /// Its value.
        max: u32,
    },
    /// The request is valid but not here or not now (wrong role, wrong state, feature off).
    #[error("not supported here: {detail}")]
    Unsupported {
        /// What was refused.
        detail: ErrorDetail,
    },
    /// The answering side failed; the request may be retried.
    #[error("internal error on the peer")]
    Internal,
}

impl WireError {
    /// A `Malformed` answer whose detail is cut to fit.
    pub fn malformed(detail: &str) -> Self {
        Self::Malformed {
            detail: ErrorDetail::truncating(detail),
        }
    }

    /// An `Unsupported` answer whose detail is cut to fit.
    pub fn unsupported(detail: &str) -> Self {
        Self::Unsupported {
            detail: ErrorDetail::truncating(detail),
        }
    }
}
