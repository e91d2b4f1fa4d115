//! Client <-> supernode messages.
//!
//! Requests ride their own bidirectional stream (one request frame, one answer frame); pushes
//! from the supernode (presence, redirect, promotion) ride a stream the supernode opens. Which of
//! the two framings is cheaper is measured in `BENCHMARKS.md`.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::bounded::BoundedVec;
use crate::ids::{NodeId, PeerAddr, Username};
use crate::limits::{MAX_ALTERNATIVES, MAX_RECORDS_PER_USER, MAX_WATCH_BATCH};
use crate::nomination::Nomination;
use crate::record::Record;
use crate::version::{Hello, Welcome};
use crate::wire_error::WireError;

/// A batch of watched usernames.
pub type WatchList = BoundedVec<Username, MAX_WATCH_BATCH>;

/// What a client sends to its supernode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Opens the session; answered with `Welcome` or an error.
    Hello(Hello),
    /// Publishes (or replaces) this device's record; opens a lease of the record's TTL.
    Register {
        /// The signed record (boxed: it is ten times the size of every other variant).
        record: Box<Record>,
    },
    /// Extends this device's lease by its TTL.
    Refresh,
    /// Ends this device's lease now.
    Unregister,
    /// Asks for the records of a user's online devices.
    Lookup {
        /// Whom to find.
        user: Username,
    },
    /// Subscribes to presence changes of these users.
    Watch {
        /// Whom to watch.
        users: WatchList,
    },
    /// Cancels watches.
    Unwatch {
        /// Whom to stop watching.
        users: WatchList,
    },
    /// Offers this client as a supernode: it will accept a dial-back at `addr`.
    OfferPromotion {
        /// The address it listens on for the dial-back and, once promoted, for clients.
        addr: std::net::SocketAddr,
        /// How many clients it could serve.
        capacity: u32,
        /// Seconds it has been online.
        uptime_secs: u64,
    },
    /// Answers a `DialBack` probe that arrived on another connection.
    DialBackEcho {
        /// The probe's nonce.
        nonce: [u8; 16],
    },
    /// Asks this supernode to coordinate a hole punch towards `node`, a device homed here: that
    /// device is told to send a few packets towards the address this session comes from (the
    /// caller's reflexive address, as this supernode sees it, never one the caller names).
    Punch {
        /// The device to reach.
        node: NodeId,
    },
    /// Asks this supernode to relay an end-to-end connection to `node`, a device homed here
    /// that accepts it. The relay forwards the two clients' QUIC packets and can read none of
    /// them.
    Relay {
        /// The device to reach.
        node: NodeId,
    },
    /// The client is leaving; no answer.
    Goodbye,
}

/// Why a supernode sends its client elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectReason {
    /// The supernode is shutting down.
    Draining,
    /// The supernode is over its capacity or load budget.
    Overloaded,
    /// The supernode is being demoted back to a client.
    Demoted,
    /// A standby mega is returning to standby.
    StandingDown,
}

/// A presence change of a watched user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    /// Whose presence changed.
    pub user: Username,
    /// Whether any of the user's devices is online now.
    pub online: bool,
}

/// What a supernode sends to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SupernodeMessage {
    /// Accepts the `Hello`.
    Welcome(Welcome),
    /// The registration is live.
    Registered {
        /// Lease length granted, in seconds (may be shorter than asked).
        lease_secs: u32,
        /// The supernode now holding the lease (the client's home).
        home: NodeId,
        /// Where the supernode sees this session come from: the client's reflexive address
        /// (what STUN reports), which the client publishes when it is none of its own.
        observed: SocketAddr,
    },
    /// The lease was extended.
    Refreshed {
        /// Lease length granted, in seconds.
        lease_secs: u32,
    },
    /// The lease is gone.
    Unregistered,
    /// The records of a user's online devices (empty: offline or unknown).
    LookupResult {
        /// Whom they describe.
        user: Username,
        /// Signed records; the receiver verifies each.
        records: BoundedVec<Record, MAX_RECORDS_PER_USER>,
    },
    /// The watch list changed; `watching` users are watched now.
    WatchAck {
        /// How many users this client watches now.
        watching: u32,
    },
    /// Pushed: a watched user came online or went offline.
    Presence(PresenceEvent),
    /// Pushed: go to one of these supernodes.
    Redirect {
        /// Why.
        reason: RedirectReason,
        /// Where to go.
        targets: BoundedVec<PeerAddr, MAX_ALTERNATIVES>,
    },
    /// Sent on a fresh connection from another socket to the address a client offered, to prove
    /// it is reachable (a dial-back on the same path proves nothing).
    DialBack {
        /// Echo this on the client's existing connection.
        nonce: [u8; 16],
    },
    /// Pushed: become a supernode and join the overlay through these members. The client
    /// takes the nomination to the auth-server for a `promoted` ticket first.
    Promote {
        /// Members to join through.
        seeds: BoundedVec<PeerAddr, MAX_ALTERNATIVES>,
        /// The home's signed nomination (boxed: it carries a ticket, and this enum is
        /// passed around by value).
        nomination: Box<Nomination>,
    },
    /// Pushed: stop being a supernode (hand clients off, leave the overlay).
    Demote,
    /// The `OfferPromotion` is recorded; a dial-back to the offered address follows.
    OfferTaken,
    /// The `Punch` is under way: the device was told to open its side towards this session's
    /// address; dial its reflexive address now.
    PunchRequested,
    /// The `Relay` is open and the device has joined it: send the bind datagram carrying
    /// `token` ([`crate::relay::bind_datagram`]) to this supernode's address at `port`, then dial
    /// the device there.
    RelayOpened {
        /// The relay's port for this client, on the address it reached this supernode at.
        port: u16,
        /// Binds this client's address to the port.
        token: [u8; 16],
    },
    /// Pushed: `node` is about to dial this client's reflexive address from `peer`; send a few
    /// packets towards `peer` so that this side's NAT lets its packets in.
    PunchTowards {
        /// The caller's reflexive address, as the supernode saw it.
        peer: SocketAddr,
        /// The caller.
        node: NodeId,
    },
    /// Pushed: `node` asked for a relay to this client; join it by sending the bind datagram
    /// carrying `token` to the supernode's address at `port`, from the socket it accepts
    /// direct connections on.
    RelayOffer {
        /// The relay's port for this client.
        port: u16,
        /// Binds this client's address to the port.
        token: [u8; 16],
        /// The caller.
        node: NodeId,
    },
    /// A request failed.
    Error(WireError),
    /// The supernode is closing this connection; no answer.
    Goodbye,
}
