//! Endpoints: a [`Listener`] that accepts authenticated connections behind a handshake gate,
//! and a [`Dialer`] that opens them.
//!
//! A full QUIC handshake costs about 250 µs of server CPU (DESIGN.md section 10), so a
//! registration storm is handshake-bound. The listener therefore holds a semaphore of
//! handshake permits: an attempt that finds none is refused at once (QUIC `CONNECTION_REFUSED`,
//! a few µs) instead of queueing work the server cannot do in time. In front of the permits,
//! the [`crate::gate`] validates addresses with Retry under load and caps each source.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use quinn::VarInt;
use rustls::pki_types::CertificateDer;
use switchboard_proto::{NodeId, UnixTime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::gate::{GateStats, HandshakeGate, SourceSlot, SourceSlots};
use crate::identity::PeerCertificate;
use crate::raw::RawSocket;
use crate::verify::{PeerAuthError, PeerIdentity, PeerPolicy};

/// Longest a handshake may take before it is abandoned and its permit freed.
///
/// Loopback and LAN handshakes take about a millisecond, intercontinental ones two round trips
/// of up to 300 ms. A lost flight is resent after quinn's probe timeout, about 1 s before the
/// first RTT sample (initial RTT estimate 333 ms), doubling each time: two lost flights in a
/// row cost 1 + 2 s. 5 s covers that on a 600 ms round trip and halves what the old 10 s let
/// a peer that stalls on purpose hold a permit for.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Application close codes: what a closed connection tells the peer, beside a reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// Normal end of a session.
    Done,
    /// The peer sent a malformed or oversized frame.
    Malformed,
    /// The peer's ticket does not allow this connection.
    Unauthorized,
    /// Over capacity (the `Busy` answer preceded the close).
    Busy,
    /// The peer's software version is refused.
    VersionRejected,
    /// This node is shutting down (a `Redirect` preceded the close).
    ShuttingDown,
    /// A local failure.
    Internal,
}

impl CloseCode {
    const TABLE: [(Self, u32); 7] = [
        (Self::Done, 0),
        (Self::Malformed, 1),
        (Self::Unauthorized, 2),
        (Self::Busy, 3),
        (Self::VersionRejected, 4),
        (Self::ShuttingDown, 5),
        (Self::Internal, 6),
    ];

    /// The code as QUIC carries it.
    pub fn code(self) -> VarInt {
        let raw = Self::TABLE
            .iter()
            .find(|(code, _)| *code == self)
            .map_or(6, |(_, raw)| *raw);
        VarInt::from_u32(raw)
    }

    /// The code a peer closed with, if it is one of ours.
    pub fn from_code(code: VarInt) -> Option<Self> {
        Self::TABLE
            .iter()
            .find(|(_, raw)| u64::from(*raw) == code.into_inner())
            .map(|(code, _)| *code)
    }
}

/// Current wall-clock time as protocol time. `net` is the IO layer: reading the clock is
/// allowed here and nowhere below.
pub fn now_unix() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// An established, authenticated connection.
#[derive(Debug, Clone)]
pub struct PeerConnection {
    /// The QUIC connection.
    pub connection: quinn::Connection,
    /// Who is at the other end.
    pub peer: PeerIdentity,
}

impl PeerConnection {
    /// Closes the connection with `code` and a reason text for the peer.
    pub fn close(&self, code: CloseCode, reason: &str) {
        self.connection.close(code.code(), reason.as_bytes());
    }
}

/// Why a connection could not be established.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The handshake did not finish in time.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// QUIC or TLS failed; a refused certificate shows here, with the reason text the refusing
    /// side sent.
    #[error("{0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The dial could not start (bad address, endpoint closed).
    #[error("cannot dial: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The handshake finished but the peer is not acceptable (checked after TLS: the expected
    /// node of a dial, or the ticket's window on a resumed session).
    #[error("peer refused: {0}")]
    Peer(#[from] PeerAuthError),
}

/// Applies `policy` to the certificate of an established connection. The certificate was
/// verified during the handshake; this re-checks what a resumed session would skip (see
/// [`PeerPolicy::recheck`]) and extracts the identity.
pub fn identify(
    connection: &quinn::Connection,
    policy: &PeerPolicy,
) -> Result<PeerIdentity, PeerAuthError> {
    policy.recheck(&peer_certificate(connection)?, now_unix())
}

/// The peer's certificate on an established connection, parsed.
///
/// For a server whose TLS policy accepted any key (the auth-server), this is how a request
/// that needs a ticket gets at the one the peer presented; check it with
/// [`PeerPolicy::check`], which verifies the signature.
pub fn peer_certificate(connection: &quinn::Connection) -> Result<PeerCertificate, PeerAuthError> {
    let certs = connection
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(PeerAuthError::NoCertificate)?;
    let first = certs.first().ok_or(PeerAuthError::NoCertificate)?;
    Ok(PeerCertificate::parse(first)?)
}

/// Accepts connections behind the handshake gate (see [`crate::gate`]).
#[derive(Debug)]
pub struct Listener {
    endpoint: quinn::Endpoint,
    gate: HandshakeGate,
    permits: Arc<Semaphore>,
    sources: Arc<SourceSlots>,
    policy: Arc<PeerPolicy>,
    stats: Arc<GateStats>,
    raw: RawSocket,
}

impl Listener {
    /// Binds a UDP socket at `addr` and serves `config`, whose client verifier enforces
    /// `policy`, behind `gate`.
    pub fn bind(
        addr: SocketAddr,
        config: quinn::ServerConfig,
        policy: PeerPolicy,
        gate: HandshakeGate,
    ) -> io::Result<Self> {
        let (socket, raw) = RawSocket::bind(addr)?;
        let endpoint = crate::raw::endpoint_on(socket, Some(config))?;
        let gate = HandshakeGate {
            max_in_flight: gate.max_in_flight.max(1),
            retry_above: gate.retry_above.min(gate.max_in_flight),
            per_source: gate.per_source.max(1),
        };
        Ok(Self {
            endpoint,
            gate,
            permits: Arc::new(Semaphore::new(gate.max_in_flight)),
            sources: Arc::new(SourceSlots::default()),
            policy: Arc::new(policy),
            stats: Arc::new(GateStats::default()),
            raw,
        })
    }

    /// A second handle on the listening socket, for punch and relay-bind datagrams.
    pub fn raw(&self) -> RawSocket {
        self.raw.clone()
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The underlying endpoint (for dialing out from the same socket, and for shutdown).
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// Handshakes refused so far by the gate, whatever the reason.
    pub fn refused_handshakes(&self) -> u64 {
        self.stats.refused()
    }

    /// The gate's counters, shared (a metrics renderer keeps the `Arc`).
    pub fn stats(&self) -> Arc<GateStats> {
        Arc::clone(&self.stats)
    }

    /// The next connection attempt that passed the gate and holds a handshake permit. Under
    /// load an unvalidated address is sent a Retry instead; attempts beyond the caps are
    /// refused at once; both are counted. `None` once the endpoint is closed.
    pub async fn accept(&self) -> Option<Handshake> {
        loop {
            let incoming = self.endpoint.accept().await?;
            let remote = incoming.remote_address();
            let in_flight = self
                .gate
                .max_in_flight
                .saturating_sub(self.permits.available_permits());
            let slot = if incoming.remote_address_validated() {
                match self.sources.take(remote.ip(), self.gate.per_source) {
                    Some(slot) => Some(slot),
                    None => {
                        self.stats
                            .refused_per_source
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%remote, "handshake refused: its source holds its share");
                        incoming.refuse();
                        continue;
                    }
                }
            } else if in_flight >= self.gate.retry_above {
                // Stateless: the sender must come back from the address it claims.
                match incoming.retry() {
                    Ok(()) => {
                        self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.stats
                            .refused_unvalidated
                            .fetch_add(1, Ordering::Relaxed);
                        e.into_incoming().refuse();
                    }
                }
                continue;
            } else {
                None
            };
            match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(permit) => {
                    return Some(Handshake {
                        incoming,
                        permit,
                        _slot: slot,
                        policy: Arc::clone(&self.policy),
                    })
                }
                Err(_) => {
                    self.stats.refused_full.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%remote, "handshake refused: too many in progress");
                    incoming.refuse();
                }
            }
        }
    }

    /// Closes the endpoint with `code` and waits (at most `deadline`) for peers to acknowledge.
    pub async fn shutdown(&self, code: CloseCode, reason: &str, deadline: Duration) {
        self.endpoint.close(code.code(), reason.as_bytes());
        if tokio::time::timeout(deadline, self.endpoint.wait_idle())
            .await
            .is_err()
        {
            tracing::debug!("endpoint not idle after {deadline:?}; closing anyway");
        }
    }
}

/// A connection attempt holding a handshake permit; drive it with [`Self::complete`], usually in
/// its own task so that handshakes proceed concurrently.
#[derive(Debug)]
pub struct Handshake {
    incoming: quinn::Incoming,
    permit: OwnedSemaphorePermit,
    /// The source's share, for validated addresses; released with the permit.
    _slot: Option<SourceSlot>,
    policy: Arc<PeerPolicy>,
}

impl Handshake {
    /// Where the attempt comes from.
    pub fn remote_address(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Refuses the attempt without a handshake (QUIC `CONNECTION_REFUSED`).
    pub fn refuse(self) {
        self.incoming.refuse();
    }

    /// Runs the handshake (the verifier checks the client's ticket) within `timeout`. The
    /// permit is released when this returns.
    pub async fn complete(self, timeout: Duration) -> Result<PeerConnection, HandshakeError> {
        let Self {
            incoming,
            permit,
            _slot: slot,
            policy,
        } = self;
        let connecting = incoming.accept()?;
        let connection = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| HandshakeError::Timeout(timeout))??;
        drop(permit);
        drop(slot);
        let peer = identify(&connection, &policy).inspect_err(|e| {
            connection.close(CloseCode::Unauthorized.code(), e.to_string().as_bytes());
        })?;
        Ok(PeerConnection { connection, peer })
    }
}

/// Opens authenticated connections from one endpoint with one client configuration.
#[derive(Debug, Clone)]
pub struct Dialer {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    policy: Arc<PeerPolicy>,
    raw: Option<RawSocket>,
}

/// The TLS server name we send. Our verifiers never look at names; rustls requires a valid one.
const SERVER_NAME: &str = "switchboard";

impl Dialer {
    /// A dialer on a fresh UDP socket bound to `bind` (port 0 for any).
    pub fn bind(
        bind: SocketAddr,
        config: quinn::ClientConfig,
        policy: PeerPolicy,
    ) -> io::Result<Self> {
        let (socket, raw) = RawSocket::bind(bind)?;
        let endpoint = crate::raw::endpoint_on(socket, None)?;
        Ok(Self::on_endpoint(endpoint, config, policy).with_raw(raw))
    }

    /// The same dialer, knowing a second handle on its endpoint's socket.
    pub fn with_raw(mut self, raw: RawSocket) -> Self {
        self.raw = Some(raw);
        self
    }

    /// A second handle on the endpoint's socket, when this dialer was given one.
    pub fn raw(&self) -> Option<&RawSocket> {
        self.raw.as_ref()
    }

    /// A dialer sharing an existing endpoint (a supernode dials its peers from its listening
    /// socket, so they see one address).
    pub fn on_endpoint(
        endpoint: quinn::Endpoint,
        config: quinn::ClientConfig,
        policy: PeerPolicy,
    ) -> Self {
        Self {
            endpoint,
            config,
            policy: Arc::new(policy),
            raw: None,
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The underlying endpoint.
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// Connects to `addr` within `timeout`; the verifier checks the server against the policy.
    ///
    /// In TLS 1.3 the server checks the *client's* certificate after the client has finished
    /// its side, so a server refusing our ticket shows as the connection closing right after
    /// this returns: the first exchange fails with [`quinn::ConnectionError`] carrying the
    /// server's reason ("ticket expired at ...; run `client login` again").
    pub async fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<PeerConnection, HandshakeError> {
        self.connect_checked(addr, None, timeout).await
    }

    /// Connects to `addr` and insists that the node there is `node` (a dial to a known peer:
    /// a record's endpoint, a supernode from the host cache). A different node is disconnected
    /// before anything is sent.
    pub async fn connect_to(
        &self,
        node: NodeId,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<PeerConnection, HandshakeError> {
        self.connect_checked(addr, Some(node), timeout).await
    }

    async fn connect_checked(
        &self,
        addr: SocketAddr,
        expect: Option<NodeId>,
        timeout: Duration,
    ) -> Result<PeerConnection, HandshakeError> {
        let connecting = self
            .endpoint
            .connect_with(self.config.clone(), addr, SERVER_NAME)?;
        let connection = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| HandshakeError::Timeout(timeout))??;
        let checked = identify(&connection, &self.policy).and_then(|peer| match expect {
            Some(expected) if expected != peer.node => Err(PeerAuthError::WrongPeer {
                expected,
                actual: peer.node,
            }),
            _ => Ok(peer),
        });
        match checked {
            Ok(peer) => Ok(PeerConnection { connection, peer }),
            Err(e) => {
                connection.close(CloseCode::Unauthorized.code(), e.to_string().as_bytes());
                Err(e.into())
            }
        }
    }

    /// Closes the endpoint and waits (at most `deadline`) for peers to acknowledge.
    pub async fn shutdown(&self, deadline: Duration) {
        self.endpoint.close(CloseCode::Done.code(), b"bye");
        let _ = tokio::time::timeout(deadline, self.endpoint.wait_idle()).await;
    }
}
