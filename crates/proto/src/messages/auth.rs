//! Messages to and from the auth-server.
//!
//! The node key a ticket is issued for is never named in a message: it is the key of the TLS
//! client certificate the requester presented, so a ticket can only be obtained for a key its
//! requester holds.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::bounded::{BoundedString, BoundedVec};
use crate::ids::{AuthKey, NodeId, PeerAddr, UnixTime, Username};
use crate::limits::{MAX_BOOTSTRAP, MAX_PASSWORD_LEN, MAX_REVOCATIONS_PAGE};
use crate::nomination::Nomination;
use crate::ticket::Ticket;
use crate::version::{Hello, Welcome};
use crate::wire_error::WireError;

/// A password in transit. Its `Debug` is redacted so that it never reaches a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Password(BoundedString<MAX_PASSWORD_LEN>);

impl Password {
    /// Wraps a password; `None` if it is longer than [`MAX_PASSWORD_LEN`] bytes.
    pub fn new(text: &str) -> Option<Self> {
        BoundedString::try_from(text).ok().map(Self)
    }

    /// The password text, for hashing.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// How a supernode serves, as it announces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceMode {
    /// An ordinary (or promoted) supernode.
    Normal,
    /// A mega-supernode serving clients.
    Mega,
    /// A mega-supernode on warm standby (in the overlay, serving no clients).
    MegaStandby,
}

/// One supernode in the bootstrap list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapEntry {
    /// Who and where.
    pub peer: PeerAddr,
    /// How it serves.
    pub mode: ServiceMode,
    /// Its load as a share of capacity, in per mille (0..=1000), when it last announced.
    pub load_permille: u16,
}

/// One entry of the revocation list. The list only grows: an entry is never withdrawn (an
/// account enabled again gets new tickets, issued after its revocation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Revocation {
    /// Every ticket of `user` issued at or before `before` (a disabled account; its refreshed
    /// tickets were refused, so none is newer).
    Account {
        /// The account.
        user: Username,
        /// Tickets issued at or before this time are revoked.
        before: UnixTime,
    },
    /// Every ticket for this node key (one device, `auth-server revoke --node KEY`).
    Node(NodeId),
    /// One ticket serial; a refreshed ticket keeps its predecessor's serial, so it inherits the
    /// revocation.
    Serial(u64),
}

/// A page of the revocation list: entries in the order they were added, after a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationPage {
    /// Entries added after the cursor asked for, oldest first.
    pub entries: BoundedVec<Revocation, MAX_REVOCATIONS_PAGE>,
    /// The cursor of the last entry here (or of the list's end, if none): ask again with it.
    /// Lower than the cursor asked for means the list was reset (a new database): fetch it
    /// again from 0.
    pub next_cursor: u64,
    /// Whether the list ends here.
    pub complete: bool,
}

/// What a node asks the auth-server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthRequest {
    /// Opens the session.
    Hello(Hello),
    /// Checks the password and issues a ticket for the TLS key of this connection.
    Login {
        /// The account.
        user: Username,
        /// Its password.
        password: Password,
    },
    /// Creates a `user` account (only if the server allows open sign-up), then logs in.
    Signup {
        /// The new account.
        user: Username,
        /// Its password.
        password: Password,
    },
    /// Issues a fresh ticket for a still-valid one, without the password, while the account
    /// is enabled. The connection's TLS key must be the ticket's.
    RefreshTicket {
        /// The current ticket.
        ticket: Ticket,
    },
    /// A supernode announces (and, periodically, re-announces) itself for the bootstrap list.
    Announce {
        /// Where clients reach it.
        addr: SocketAddr,
        /// How it serves.
        mode: ServiceMode,
        /// Its client capacity.
        capacity: u32,
        /// Clients connected now.
        clients: u32,
    },
    /// Fetches the revocation list's entries after `cursor` (0: from the start).
    FetchRevocations {
        /// Where to resume.
        cursor: u64,
    },
    /// A client exchanges its home's nomination for a `promoted` ticket for this connection's
    /// TLS key, which must be the nominee's.
    Nominated {
        /// The nomination, signed by the client's home supernode.
        nomination: Nomination,
    },
    /// A promoted node reports that it stepped down (demoted): its promoted tickets are
    /// revoked and it counts no more against the limit of promoted nodes. The connection's
    /// TLS key must be the ticket's.
    StepDown {
        /// Its promoted ticket.
        ticket: Ticket,
    },
}

/// What the auth-server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthResponse {
    /// Accepts the `Hello`.
    Welcome(Welcome),
    /// Login or sign-up succeeded.
    LoggedIn {
        /// The ticket.
        ticket: Ticket,
        /// The key that signed it (the client pins it in its profile).
        auth_key: AuthKey,
        /// Supernodes and mega-supernodes known alive now.
        bootstrap: BoundedVec<BootstrapEntry, MAX_BOOTSTRAP>,
    },
    /// A fresh ticket.
    TicketRefreshed {
        /// The ticket.
        ticket: Ticket,
    },
    /// The announcement was recorded; announce again before `expires_at`.
    Announced {
        /// When the entry drops out of the bootstrap list without a new announcement.
        expires_at: UnixTime,
        /// The other supernodes known alive now: where a supernode sends clients it cannot
        /// take (`Busy`) or is leaving (`Redirect`).
        peers: BoundedVec<BootstrapEntry, MAX_BOOTSTRAP>,
    },
    /// A page of revocations.
    Revocations(RevocationPage),
    /// The nomination was accepted: serve with this `promoted` ticket.
    Promoted {
        /// The ticket.
        ticket: Ticket,
    },
    /// The step-down was recorded.
    SteppedDown,
    /// The request failed.
    Error(WireError),
}
