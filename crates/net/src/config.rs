//! QUIC and TLS configuration: transport parameters sized for thousands of small clients, and
//! the rustls configs (ring provider, TLS 1.3 only, our [`PolicyVerifier`]) for each side.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};

use crate::identity::{Identity, IdentityError};
use crate::verify::{PeerPolicy, PolicyVerifier};

/// Per-stream receive window: one largest frame plus its header, so a maximal request is never
/// stalled on flow control, and no more, so 10,000 clients cannot pin 10,000 large buffers.
pub const STREAM_RECEIVE_WINDOW: u32 = 72 * 1024;

/// Per-connection receive window: four streams' worth. A client has a handful of requests in
/// flight at most; an overlay peer's bulk re-publish streams through it at line rate on a LAN.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 4 * STREAM_RECEIVE_WINDOW;

/// Per-connection send window (what we buffer unacknowledged towards one peer), same reasoning.
pub const SEND_WINDOW: u64 = 4 * STREAM_RECEIVE_WINDOW as u64;

/// Bidirectional streams a client may have open at once towards a supernode: each request is a
/// stream, and a well-behaved client has at most a few in flight (register, a lookup, a watch).
/// QUIC enforces this for us, so a client cannot queue unbounded work.
pub const CLIENT_MAX_BIDI_STREAMS: u32 = 16;

/// Unidirectional streams per connection: pushes (presence, redirects) use one long-lived uni
/// stream; 4 leaves room for a replacement while the old one drains.
pub const MAX_UNI_STREAMS: u32 = 4;

/// Unidirectional streams an overlay peer may have open at once. Every overlay message travels
/// on a stream of its own, and a home sends each newly registered client's record to its
/// owners at once: with [`MAX_UNI_STREAMS`] (4), a home taking a burst of 9,000 registrations
/// waited for streams past its 3 s send deadline and dropped up to 7% of its publications
/// (`testbed cpu`, BENCHMARKS.md), which left those users unfindable until their next refresh.
/// The receive windows still bound what a peer can make us buffer.
pub const OVERLAY_MAX_UNI_STREAMS: u32 = 256;

/// Bidirectional streams an overlay peer may have open at once: publishes and lookups for many
/// clients are multiplexed over one connection per pair of supernodes.
pub const PEER_MAX_BIDI_STREAMS: u32 = 256;

/// A connection with no traffic for this long is dead. Clients send keep-alives at a third of
/// it, so only a vanished peer reaches it; 30 s matches the shortest common NAT UDP timeout.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a dialer pings an idle connection: well under [`IDLE_TIMEOUT`] and under NAT
/// binding timeouts (30 s and up), so the path stays open without chatter.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How often a client pings its home supernode. Short, so that a supernode killed without a
/// goodbye is noticed within [`SESSION_IDLE_TIMEOUT`] and the client re-homed in well under
/// 5 s (DESIGN.md: heal in seconds). A PING is one small packet handled inside QUIC: 10,000
/// clients send 20,000 a second, about a tenth of a core at the measured per-packet costs.
pub const SESSION_KEEP_ALIVE: Duration = Duration::from_millis(500);

/// A home session silent this long is dead: three missed keep-alives. QUIC restarts the idle
/// timer when the first keep-alive after the last received packet goes out, so a supernode
/// killed without a goodbye is noticed after about twice this (3 s measured on loopback; the
/// failover test in `tests/tests/directory.rs` re-homes a client in about 3.1 s).
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Which side of which kind of connection a transport config is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A supernode (or auth-server) accepting clients.
    ClientFacing,
    /// A client (dialer) towards a supernode or the auth-server: sends keep-alives.
    Dialer,
    /// Supernode <-> supernode.
    Overlay,
    /// A client's session with its home supernode: fast keep-alives, short idle timeout.
    Session,
}

/// The transport parameters for `role`; see the constants for the reasons.
pub fn transport_config(role: Role) -> TransportConfig {
    let mut config = TransportConfig::default();
    let (bidi, uni) = match role {
        Role::ClientFacing | Role::Dialer | Role::Session => {
            (CLIENT_MAX_BIDI_STREAMS, MAX_UNI_STREAMS)
        }
        Role::Overlay => (PEER_MAX_BIDI_STREAMS, OVERLAY_MAX_UNI_STREAMS),
    };
    config
        .max_concurrent_bidi_streams(VarInt::from_u32(bidi))
        .max_concurrent_uni_streams(VarInt::from_u32(uni))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
        .send_window(SEND_WINDOW)
        // Datagrams are unused; not reserving their buffer saves memory per connection.
        .datagram_receive_buffer_size(None);
    let (idle, keep_alive) = match role {
        Role::ClientFacing => (IDLE_TIMEOUT, None),
        Role::Dialer | Role::Overlay => (IDLE_TIMEOUT, Some(KEEP_ALIVE_INTERVAL)),
        Role::Session => (SESSION_IDLE_TIMEOUT, Some(SESSION_KEEP_ALIVE)),
    };
    // These durations fit in a VarInt of milliseconds; the fallback is never taken.
    config.max_idle_timeout(IdleTimeout::try_from(idle).ok());
    config.keep_alive_interval(keep_alive);
    config
}

/// The TLS or QUIC configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The certificate could not be made.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// rustls refused the configuration.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// quinn refused the rustls configuration.
    #[error("quic crypto: {0}")]
    Quic(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A QUIC server configuration presenting `identity`, demanding `policy` of every client
/// (client certificates are mandatory: every Switchboard peer has a node key), speaking `alpn`.
pub fn server_config(
    identity: &Identity,
    policy: PeerPolicy,
    alpn: &[&[u8]],
    transport: TransportConfig,
) -> Result<quinn::ServerConfig, TlsConfigError> {
    let provider = provider();
    let (cert, key) = identity.certificate()?;
    let verifier = Arc::new(PolicyVerifier::new(policy));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let crypto = QuicServerConfig::try_from(Arc::new(tls))
        .map_err(|e| TlsConfigError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Whether a dialer keeps TLS sessions to resume later connections with.
///
/// Resumption saves the server a certificate verification and the client a key exchange
/// signature on reconnects (DESIGN.md section 10: "prefer resumption"); a resumed session skips
/// certificate checks, which is why [`crate::identify`] re-checks the ticket's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumption {
    /// Keep sessions in memory (rustls' default cache of 256 servers).
    Enabled,
    /// Always run a full handshake (benchmarks of the full handshake; tests).
    Disabled,
}

/// A QUIC client configuration presenting `identity` and demanding `policy` of the server.
pub fn client_config(
    identity: &Identity,
    policy: PeerPolicy,
    alpn: &[&[u8]],
    transport: TransportConfig,
    resumption: Resumption,
) -> Result<quinn::ClientConfig, TlsConfigError> {
    let provider = provider();
    let (cert, key) = identity.certificate()?;
    let verifier = Arc::new(PolicyVerifier::new(policy));
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert], key)?;
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if resumption == Resumption::Disabled {
        tls.resumption = rustls::client::Resumption::disabled();
    }
    let crypto = QuicClientConfig::try_from(Arc::new(tls))
        .map_err(|e| TlsConfigError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}
