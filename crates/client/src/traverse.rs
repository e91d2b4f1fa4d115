//! Reaching a peer behind a NAT (README, "Behind NAT"): a direct dial, else a hole
//! punched with the help of the peer's home supernode, else a relay through that home.
//!
//! Whichever path is taken, the QUIC connection is end to end between the two clients, with the
//! same TLS and ticket checks as on a LAN: the peer must be the very device whose signed record
//! named it. A punch or a relay only changes where the packets go.
//!
//! Why the steps are ordered as they are, with Linux NATs (netfilter `MASQUERADE`) in mind:
//!
//! 1. **Direct** dials the peer's own interface addresses, never its reflexive one (and the
//!    punch of step 2 runs at the same time: neither waits for the other's deadline). A packet
//!    that reaches a NAT before that NAT's own client has sent towards its source leaves an
//!    entry behind (conntrack tracks the refused packet), and the client's later packets to
//!    that source then clash with it and get another port: dialing a reflexive address too
//!    early spoils the punch that follows.
//! 2. **Punched**: the caller asks the callee's home, which tells the callee (on its session)
//!    to send [`PUNCH_DATAGRAMS`] towards the caller's reflexive address with at most
//!    [`PUNCH_HOPS`] router hops: enough to leave through its own NAT and open the mapping,
//!    too few to reach the caller's NAT and leave an entry there. After [`PUNCH_HEAD_START`]
//!    the caller dials the callee's reflexive address; its first packet opens its own mapping
//!    and finds the callee's open.
//! 3. **Relayed via NODE**: when the callee's NAT gives each destination its own port (a
//!    "symmetric" NAT), the reflexive address seen by its home is useless to anyone else; the
//!    home relays instead (the supernode's relay, ciphertext only). Each side sends
//!    a bind datagram from its QUIC socket (which opens its NAT towards the relay port), then
//!    the caller dials the relay port as if it were the peer.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_net::config::Role as TransportRole;
use switchboard_net::{
    client_config, transport_config, Dialer, Identity, PeerConnection, PeerPolicy, RawSocket,
    Resumption,
};
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::relay::{bind_datagram, PUNCH_DATAGRAM};
use switchboard_proto::version::ALPN_DIRECT;
use switchboard_proto::{NodeId, RecordBody, Role};

use crate::session::{self, Context, Session};

/// How long the direct dials (all of the peer's interface addresses at once) may take before a
/// punch is tried: a handshake on a LAN takes a millisecond, and one lost flight costs quinn's
/// first probe timeout, about 1 s.
pub const DIRECT_DEADLINE: Duration = Duration::from_secs(2);

/// How long the dial through a punched hole may take: the first Initial (sent after the
/// callee's punch) and quinn's retransmission about 1 s later, with a WAN round trip.
pub const PUNCH_DEADLINE: Duration = Duration::from_secs(2);

/// How long the dial through a relay may take: two lost flights (1 + 2 s).
pub const RELAY_DEADLINE: Duration = Duration::from_secs(3);

/// Punch datagrams a client sends when its home asks: one is enough, three survive a loss.
pub const PUNCH_DATAGRAMS: usize = 3;

/// Pause between two punch (or relay bind) datagrams.
pub const PUNCH_SPACING: Duration = Duration::from_millis(20);

/// Router hops a punch datagram may take (its IP TTL): out through this host's own NAT (the
/// first hop), and dropped at the next router, before it can reach the peer's NAT. A host
/// behind two NATs (carrier-grade NAT) would need 3, and then falls back to the relay.
pub const PUNCH_HOPS: u32 = 2;

/// How long the caller waits, once the callee's home has told the callee to punch, before it
/// dials: the push's one-way trip to the callee and the callee's first datagram, with room for a
/// WAN. Its own round trip to the home is added.
pub const PUNCH_HEAD_START: Duration = Duration::from_millis(200);

/// Which way a connection to a peer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// To one of the peer's own addresses.
    Direct,
    /// To its reflexive address, through a hole both sides punched.
    Punched,
    /// Through a relay at this supernode (the peer's home).
    Relayed {
        /// The relay.
        via: NodeId,
    },
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct => f.write_str("direct"),
            Self::Punched => f.write_str("punched"),
            Self::Relayed { via } => write!(f, "relayed via {}", via.short()),
        }
    }
}

/// An end-to-end connection to a peer, and how it goes.
#[derive(Debug)]
pub struct Reached {
    /// The connection (TLS with the peer itself, whatever the path).
    pub connection: PeerConnection,
    /// The path.
    pub path: Path,
    /// The session with the relay, on a relayed path: the relay lasts as long as it does.
    pub relay: Option<Session>,
}

impl Reached {
    /// Ends the relay session, if any (the connection itself is the caller's to close).
    pub async fn release(self) {
        if let Some(relay) = self.relay {
            relay.goodbye().await;
        }
    }
}

/// Sends the punch datagrams towards `peer` from `raw`, in the background.
pub fn punch(raw: &RawSocket, peer: SocketAddr) {
    let raw = raw.clone();
    tokio::spawn(async move {
        for _ in 0..PUNCH_DATAGRAMS {
            if let Err(e) = raw.send_with_hops(peer, &PUNCH_DATAGRAM, PUNCH_HOPS) {
                tracing::debug!(%peer, "punch datagram not sent: {e}");
            }
            tokio::time::sleep(PUNCH_SPACING).await;
        }
    });
}

/// Sends the bind datagrams for `token` to `relay` from `raw` (the first one that arrives binds
/// this client's address to the relay port).
pub async fn bind_relay(raw: &RawSocket, relay: SocketAddr, token: &[u8; 16]) {
    let datagram = bind_datagram(token);
    for i in 0..PUNCH_DATAGRAMS {
        if let Err(e) = raw.send(relay, &datagram) {
            tracing::debug!(%relay, "relay bind not sent: {e}");
        }
        if i + 1 < PUNCH_DATAGRAMS {
            tokio::time::sleep(PUNCH_SPACING).await;
        }
    }
}

/// A dialer for direct connections to exactly `node`, on the context's endpoint.
fn dialer_for(context: &Context, node: NodeId) -> Result<Dialer, String> {
    let policy = PeerPolicy::Ticketed {
        auth: context.anchor.clone(),
        roles: Role::ALL.to_vec(),
        node: Some(node),
    };
    let config = client_config(
        &Identity::new(context.key.clone(), Some(context.ticket.clone())),
        policy.clone(),
        &[ALPN_DIRECT],
        transport_config(TransportRole::Dialer),
        Resumption::Enabled,
    )
    .map_err(|e| e.to_string())?;
    Ok(Dialer::on_endpoint(
        context.dialer.endpoint().clone(),
        config,
        policy,
    ))
}

/// Dials all of `addrs` at once; the first handshake that completes wins. Otherwise says what
/// each dial met.
async fn race(
    dialer: &Dialer,
    node: NodeId,
    addrs: &[SocketAddr],
    deadline: Duration,
) -> Result<PeerConnection, Vec<String>> {
    let mut reasons = Vec::new();
    let mut dials = tokio::task::JoinSet::new();
    for addr in addrs {
        let (dialer, addr) = (dialer.clone(), *addr);
        dials.spawn(async move { (addr, dialer.connect_to(node, addr, deadline).await) });
    }
    while let Some(joined) = dials.join_next().await {
        match joined {
            Ok((_, Ok(connection))) => return Ok(connection),
            Ok((addr, Err(e))) => reasons.push(format!("{addr}: {e}")),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(reasons)
}

/// Connects to the device `node` whose verified record is `body`: directly, else through a
/// punched hole, else through its home's relay. On failure, says what each attempt met.
pub async fn reach(context: &Context, node: NodeId, body: &RecordBody) -> Result<Reached, String> {
    let dialer = dialer_for(context, node)?;
    let endpoints = body.endpoints.to_vec();
    let Some(home) = body.home else {
        // Nothing else to try: the direct dial gets the whole time.
        return match race(&dialer, node, &endpoints, crate::query::DELIVERY_TIMEOUT).await {
            Ok(connection) => Ok(Reached {
                connection,
                path: Path::Direct,
                relay: None,
            }),
            Err(reasons) => Err(reasons.join("; ")),
        };
    };
    // The direct dials (to private addresses, which cannot spoil a punch) and the punch run
    // at once: behind a NAT the first rarely works, on a LAN the second is never needed, and
    // neither should wait for the other's deadline.
    let direct = race(&dialer, node, &endpoints, DIRECT_DEADLINE);
    let punch = punch_path(context, &dialer, node, home, body.reflexive);
    tokio::pin!(direct, punch);
    let (mut direct_done, mut punch_done) = (false, false);
    let (mut reasons, mut punch_outcome) = (Vec::new(), None);
    while !(direct_done && punch_done) {
        tokio::select! {
            dialed = &mut direct, if !direct_done => {
                direct_done = true;
                match dialed {
                    Ok(connection) => {
                        return Ok(Reached { connection, path: Path::Direct, relay: None });
                    }
                    Err(failed) => reasons = failed,
                }
            }
            outcome = &mut punch, if !punch_done => {
                punch_done = true;
                if let Punch::Through(session, connection) = outcome {
                    session.goodbye().await;
                    return Ok(Reached { connection, path: Path::Punched, relay: None });
                }
                punch_outcome = Some(outcome);
            }
        }
    }
    let mut session = match punch_outcome {
        Some(Punch::Failed(session, reason)) => {
            reasons.extend(reason);
            session
        }
        Some(Punch::NoHome(reason)) => {
            reasons.push(reason);
            return Err(reasons.join("; "));
        }
        // Through returned above; the loop ends only with the punch done.
        Some(Punch::Through(..)) | None => return Err(reasons.join("; ")),
    };
    match relayed(context, &dialer, &mut session, node, home.addr).await {
        Ok(connection) => Ok(Reached {
            connection,
            path: Path::Relayed { via: home.node },
            relay: Some(session),
        }),
        Err(reason) => {
            reasons.push(format!("relay {}: {reason}", home.node.short()));
            session.goodbye().await;
            Err(reasons.join("; "))
        }
    }
}

/// How the punch step ended.
enum Punch {
    /// Through: the session with the callee's home and the connection.
    Through(Session, PeerConnection),
    /// Not through (or nothing to punch towards); the session with the home, for the relay.
    Failed(Session, Option<String>),
    /// The callee's home could not be reached.
    NoHome(String),
}

/// Opens a session with the callee's `home` and, when the callee has a `reflexive` address,
/// punches through to it.
async fn punch_path(
    context: &Context,
    dialer: &Dialer,
    node: NodeId,
    home: switchboard_proto::PeerAddr,
    reflexive: Option<SocketAddr>,
) -> Punch {
    let mut session = match session::open_to(context, home).await {
        Ok(session) => session,
        Err(e) => return Punch::NoHome(format!("home {}: {e}", home.node.short())),
    };
    let Some(reflexive) = reflexive else {
        return Punch::Failed(session, None);
    };
    match punched(dialer, &mut session, node, reflexive).await {
        Ok(connection) => Punch::Through(session, connection),
        Err(reason) => Punch::Failed(session, Some(format!("punch {reflexive}: {reason}"))),
    }
}

/// Asks the callee's home (on `session`) to have `node` punch towards us, then dials
/// `reflexive`.
async fn punched(
    dialer: &Dialer,
    session: &mut Session,
    node: NodeId,
    reflexive: SocketAddr,
) -> Result<PeerConnection, String> {
    match session
        .ask(&ClientMessage::Punch { node })
        .await
        .map_err(|e| e.to_string())?
    {
        SupernodeMessage::PunchRequested => {}
        SupernodeMessage::Error(e) => return Err(e.to_string()),
        other => return Err(format!("unexpected answer {other:?}")),
    }
    tokio::time::sleep(PUNCH_HEAD_START + session.connection.connection.rtt()).await;
    dialer
        .connect_to(node, reflexive, PUNCH_DEADLINE)
        .await
        .map_err(|e| e.to_string())
}

/// Asks the callee's home (on `session`, at `home`) for a relay to `node`, binds our side and
/// dials the relay port.
async fn relayed(
    context: &Context,
    dialer: &Dialer,
    session: &mut Session,
    node: NodeId,
    home: SocketAddr,
) -> Result<PeerConnection, String> {
    let raw = context
        .dialer
        .raw()
        .ok_or("this client's socket cannot send a relay bind")?;
    let (port, token) = match session
        .ask(&ClientMessage::Relay { node })
        .await
        .map_err(|e| e.to_string())?
    {
        SupernodeMessage::RelayOpened { port, token } => (port, token),
        SupernodeMessage::Error(e) => return Err(e.to_string()),
        other => return Err(format!("unexpected answer {other:?}")),
    };
    let relay = SocketAddr::new(home.ip(), port);
    bind_relay(raw, relay, &token).await;
    dialer
        .connect_to(node, relay, RELAY_DEADLINE)
        .await
        .map_err(|e| e.to_string())
}
