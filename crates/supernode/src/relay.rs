//! Hole-punch coordination and the ciphertext-only relay, for clients behind NATs (README,
//! "Behind NAT"). `engine`'s [`switchboard_engine::Relays`] decides (caps, who may open); this module
//! owns the sockets.
//!
//! - `Punch { node }`: the device `node`, homed here, is told to send a few datagrams towards
//!   the address the caller's session comes from (never an address the caller names), which
//!   opens its NAT for the caller's dial.
//! - `Relay { node }`: two UDP ports are opened, one per side. Each client binds its side with
//!   the token it was given over its own authenticated session (the callee through a push);
//!   from then on whatever arrives at one side from its bound address leaves the other side
//!   towards the other bound address, within the caps. The clients' end-to-end QUIC connection
//!   runs through it unchanged, TLS and ticket checks included: the relay sees ciphertext.
//!   The session ends with either client's session here, after the idle time, or when the
//!   supernode stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use switchboard_engine::{RelayConfig, RelayId, RelayRefused};
use switchboard_proto::messages::SupernodeMessage;
use switchboard_proto::relay::parse_bind;
use switchboard_proto::wire_error::{LimitKind, WireError};
use switchboard_proto::NodeId;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::config::{ConfigError, FileConfig};
use crate::server::{bump, lock, SessionHandle, Shared};

/// How long the callee has to bind its side after the offer is pushed: one round trip to it
/// and a lost datagram's resend, on a WAN.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest datagram a relay port reads: UDP's own limit, so nothing is ever cut.
const MAX_DATAGRAM: usize = 65_535;

/// How often a relay session checks whether it idled out.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Reads the relay keys of `file`.
pub(crate) fn settings(file: &FileConfig, source_name: &str) -> Result<RelayConfig, ConfigError> {
    let invalid = |key, problem: &str| ConfigError::Invalid {
        source_name: source_name.to_owned(),
        key,
        problem: problem.to_owned(),
    };
    let d = RelayConfig::default();
    let at_least_one = |value: u32, key| {
        if value == 0 {
            Err(invalid(key, "must be at least 1"))
        } else {
            Ok(value)
        }
    };
    Ok(RelayConfig {
        max_sessions: file.relay_max_sessions.unwrap_or(d.max_sessions),
        max_per_client: file
            .relay_max_per_client
            .map(|n| at_least_one(n, "relay_max_per_client"))
            .transpose()?
            .map_or(d.max_per_client, |n| n as usize),
        session_bytes_per_sec: file
            .relay_session_bytes_per_sec
            .map(|n| at_least_one(n, "relay_session_bytes_per_sec"))
            .transpose()?
            .unwrap_or(d.session_bytes_per_sec),
        total_bytes_per_sec: file
            .relay_total_bytes_per_sec
            .map(|n| at_least_one(n, "relay_total_bytes_per_sec"))
            .transpose()?
            .unwrap_or(d.total_bytes_per_sec),
        idle: file
            .relay_idle_secs
            .map(|n| at_least_one(n, "relay_idle_secs"))
            .transpose()?
            .map_or(d.idle, |n| Duration::from_secs(u64::from(n))),
    })
}

/// Counters, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    /// Hole punches coordinated.
    pub punches_total: AtomicU64,
    /// Relay sessions opened (the callee joined).
    pub sessions_total: AtomicU64,
    /// Relay requests refused (caps, shedding, callee absent or silent).
    pub refused_total: AtomicU64,
    /// Bytes forwarded.
    pub bytes_total: AtomicU64,
    /// Datagrams dropped for the caps.
    pub dropped_over_cap_total: AtomicU64,
    /// Datagrams dropped because they came from an address not bound to the port.
    pub dropped_unbound_total: AtomicU64,
    /// Sessions ended for flooding (`switchboard_engine::FLOOD_SECONDS`).
    pub floods_ended_total: AtomicU64,
}

/// The newest session of `node` here, if it has one.
fn session_of(shared: &Shared, node: &NodeId) -> Option<SessionHandle> {
    lock(&shared.sessions)
        .get(node)
        .and_then(|sessions| sessions.last())
        .cloned()
}

/// Answers `Punch { node: callee }` from `caller`, whose session comes from `seen`.
pub fn punch(
    shared: &Shared,
    caller: NodeId,
    seen: SocketAddr,
    callee: NodeId,
) -> SupernodeMessage {
    let Some(session) = session_of(shared, &callee) else {
        return SupernodeMessage::Error(WireError::NotFound);
    };
    let told = session.push.try_send(SupernodeMessage::PunchTowards {
        peer: seen,
        node: caller,
    });
    if told.is_err() {
        // Its push queue is full: it is not keeping up, and a punch is best effort.
        return SupernodeMessage::Error(WireError::Busy {
            retry_after_ms: 500,
            alternatives: switchboard_proto::BoundedVec::truncating(std::iter::empty()),
        });
    }
    bump(&shared.relay_metrics.punches_total);
    tracing::debug!(callee = %callee.short(), %seen, "punch coordinated");
    SupernodeMessage::PunchRequested
}

/// Answers `Relay { node: callee }` from `caller` (on `connection`): opens the session, offers
/// it to the callee and answers once the callee has joined.
pub async fn open(
    shared: &Arc<Shared>,
    caller: NodeId,
    connection: quinn::Connection,
    callee: NodeId,
) -> SupernodeMessage {
    let refused = |error: WireError| {
        bump(&shared.relay_metrics.refused_total);
        SupernodeMessage::Error(error)
    };
    let Some(session) = session_of(shared, &callee) else {
        return refused(WireError::NotFound);
    };
    // The guard ends with this statement: the refusals below lock again.
    let opened = lock(&shared.relays).open(shared.now(), caller, callee);
    let id = match opened {
        Ok(id) => id,
        Err(RelayRefused::ClientLimit) => {
            let max = shared.config.relay.max_per_client;
            return refused(WireError::LimitExceeded {
                kind: LimitKind::Relays,
                max: u32::try_from(max).unwrap_or(u32::MAX),
            });
        }
        Err(e @ (RelayRefused::Full | RelayRefused::Shedding)) => {
            tracing::debug!("relay refused: {e}");
            return refused(WireError::Busy {
                retry_after_ms: 1_000,
                alternatives: switchboard_proto::BoundedVec::truncating(std::iter::empty()),
            });
        }
        Err(e) => return refused(WireError::unsupported(&e.to_string())),
    };
    let ip = shared.config.listen.ip();
    let sockets = match (
        UdpSocket::bind(SocketAddr::new(ip, 0)).await,
        UdpSocket::bind(SocketAddr::new(ip, 0)).await,
    ) {
        (Ok(a), Ok(b)) => [a, b],
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("relay ports: {e}");
            lock(&shared.relays).close(id);
            return refused(WireError::Internal);
        }
    };
    let ports = sockets
        .each_ref()
        .map(|s| s.local_addr().map_or(0, |a| a.port()));
    let mut tokens = [[0u8; 16]; 2];
    for token in &mut tokens {
        rand::thread_rng().fill_bytes(token);
    }
    let [caller_port, callee_port] = ports;
    let [caller_token, callee_token] = tokens;
    let (joined_tx, joined) = oneshot::channel();
    let sides = Sides {
        sockets,
        tokens,
        connections: [connection, session.connection.clone()],
    };
    tokio::spawn(forward(Arc::clone(shared), id, sides, joined_tx));
    let offer = SupernodeMessage::RelayOffer {
        port: callee_port,
        token: callee_token,
        node: caller,
    };
    if session.push.try_send(offer).is_err()
        || tokio::time::timeout(JOIN_TIMEOUT, joined).await.is_err()
    {
        // The forwarder ends by itself when the caller's session does, or when it idles out;
        // a session nobody joined is idle from the start.
        tracing::debug!(callee = %callee.short(), "the callee did not join the relay");
        return refused(WireError::NotFound);
    }
    bump(&shared.relay_metrics.sessions_total);
    tracing::debug!(callee = %callee.short(), caller_port, callee_port, "relay open");
    SupernodeMessage::RelayOpened {
        port: caller_port,
        token: caller_token,
    }
}

/// The two sides of a relay session: index 0 the caller's, 1 the callee's.
struct Sides {
    sockets: [UdpSocket; 2],
    tokens: [[u8; 16]; 2],
    connections: [quinn::Connection; 2],
}

/// Forwards between the two sides until either client's session ends or the session idles.
async fn forward(shared: Arc<Shared>, id: RelayId, sides: Sides, joined: oneshot::Sender<()>) {
    let Sides {
        sockets,
        tokens,
        connections,
    } = sides;
    let [caller_socket, callee_socket] = &sockets;
    let [caller_connection, callee_connection] = &connections;
    let mut joined = Some(joined);
    let mut bound: [Option<SocketAddr>; 2] = [None, None];
    let mut buffers = [vec![0u8; MAX_DATAGRAM], vec![0u8; MAX_DATAGRAM]];
    let mut idle = tokio::time::interval(IDLE_CHECK);
    loop {
        let [caller_buffer, callee_buffer] = &mut buffers;
        let (side, received, buffer) = tokio::select! {
            r = caller_socket.recv_from(caller_buffer) => (0, r, caller_buffer),
            r = callee_socket.recv_from(callee_buffer) => (1, r, callee_buffer),
            _ = caller_connection.closed() => break,
            _ = callee_connection.closed() => break,
            _ = idle.tick() => {
                if lock(&shared.relays).idle(shared.now(), id) {
                    break;
                }
                continue;
            }
        };
        let Ok((len, from)) = received else { continue };
        let datagram = buffer.get(..len).unwrap_or_default();
        let token = tokens.get(side).copied().unwrap_or_default();
        if parse_bind(datagram) == Some(token) {
            if let Some(slot) = bound.get_mut(side) {
                *slot = Some(from);
            }
            if side == 1 {
                if let Some(joined) = joined.take() {
                    let _ = joined.send(());
                }
            }
            continue;
        }
        let other = 1 - side;
        let (Some(Some(source)), Some(Some(to)), Some(out)) =
            (bound.get(side), bound.get(other), sockets.get(other))
        else {
            bump(&shared.relay_metrics.dropped_unbound_total);
            continue;
        };
        if *source != from {
            bump(&shared.relay_metrics.dropped_unbound_total);
            continue;
        }
        let admitted = {
            let mut relays = lock(&shared.relays);
            let admitted = relays.admit(shared.now(), id, len);
            (admitted, !admitted && relays.flooding(id))
        };
        match admitted {
            (true, _) => {}
            (false, false) => {
                bump(&shared.relay_metrics.dropped_over_cap_total);
                continue;
            }
            (false, true) => {
                bump(&shared.relay_metrics.dropped_over_cap_total);
                bump(&shared.relay_metrics.floods_ended_total);
                tracing::warn!(side, "a relay session flooded far past its cap; ended");
                break;
            }
        }
        if out.send_to(datagram, *to).await.is_ok() {
            shared
                .relay_metrics
                .bytes_total
                .fetch_add(len as u64, Ordering::Relaxed);
        }
    }
    lock(&shared.relays).close(id);
    tracing::debug!("relay closed");
}

/// Appends the relay figures to `/metrics`.
pub fn render_metrics(shared: &Shared, out: &mut String) {
    use switchboard_net::metrics::metric;
    let m = &shared.relay_metrics;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    metric(
        out,
        "switchboard_supernode_relay_sessions",
        "gauge",
        "Relay sessions open now.",
        lock(&shared.relays).active() as u64,
    );
    for (name, help, counter) in [
        (
            "switchboard_supernode_punches_total",
            "Hole punches coordinated for clients behind NATs.",
            &m.punches_total,
        ),
        (
            "switchboard_supernode_relay_sessions_total",
            "Relay sessions opened (both clients joined).",
            &m.sessions_total,
        ),
        (
            "switchboard_supernode_relay_refused_total",
            "Relay requests refused (caps, shedding, callee absent or silent).",
            &m.refused_total,
        ),
        (
            "switchboard_supernode_relay_bytes_total",
            "Bytes forwarded by the relay (QUIC ciphertext).",
            &m.bytes_total,
        ),
        (
            "switchboard_supernode_relay_dropped_over_cap_total",
            "Relayed datagrams dropped for the per-session or total byte caps.",
            &m.dropped_over_cap_total,
        ),
        (
            "switchboard_supernode_relay_floods_ended_total",
            "Relay sessions ended for sending far past their cap (8 s of it dropped, 4x what was forwarded).",
            &m.floods_ended_total,
        ),
        (
            "switchboard_supernode_relay_dropped_unbound_total",
            "Datagrams at a relay port from an address not bound to it (or before both sides bound).",
            &m.dropped_unbound_total,
        ),
    ] {
        metric(out, name, "counter", help, get(counter));
    }
}
