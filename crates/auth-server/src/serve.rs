//! `auth-server serve`: the QUIC server loop around [`Service`], and its shutdown sequence.
//!
//! Shutdown (SIGTERM or SIGINT), in order:
//! 1. stop accepting connections (the endpoint refuses new ones);
//! 2. wait, at most [`DRAIN_DEADLINE`], until no request is being answered (a running
//!    password check included, and the writing of its answer), so every login that was being
//!    checked gets its answer;
//! 3. close the endpoint and wait for peers to acknowledge, at most [`CLOSE_DEADLINE`];
//! 4. exit 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_net::config::Role as TransportRole;
use switchboard_net::framed::{self, REQUEST_TIMEOUT};
use switchboard_net::{
    peer_certificate, server_config, transport_config, CloseCode, GateStats, HandshakeGate,
    Identity, Listener, PeerConnection, PeerPolicy, HANDSHAKE_TIMEOUT,
};
use switchboard_proto::messages::{AuthRequest, AuthResponse};
use switchboard_proto::version::ALPN_AUTH;
use switchboard_proto::wire_error::WireError;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::Config;
use crate::password::Hasher;
use crate::service::{Caller, Service};
use crate::store::Store;

/// Longest wait for running password checks at shutdown. A check takes well under a second.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Longest wait for a peer to acknowledge an answer before the request stops counting as in
/// flight (a few round trips on any network a login crosses).
const ACK_WAIT: Duration = Duration::from_secs(2);

/// Longest wait for peers to acknowledge the close.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(2);

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory's key.
    #[error(transparent)]
    Key(#[from] switchboard_net::keyfile::KeyFileError),
    /// The database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// argon2 parameters.
    #[error(transparent)]
    Hash(#[from] crate::password::HashError),
    /// TLS or QUIC configuration.
    #[error(transparent)]
    Tls(#[from] switchboard_net::TlsConfigError),
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    service: Arc<Service>,
    listener: Listener,
    metrics: Option<tokio::net::TcpListener>,
}

impl Server {
    /// Loads the key and the database and binds the sockets; nothing is served yet.
    pub async fn bind(config: Config) -> Result<Self, ServeError> {
        let signing = switchboard_net::keyfile::load(&config.data_dir.join(crate::KEY_FILE))?;
        let store = Store::open(&config.data_dir)?;
        let hasher = Hasher::new(config.hash)?;
        let identity = Identity::new(signing.clone(), None);
        // Any key may connect: the login proves the password, the handshake proves the key
        // the ticket will name. Requests that need a ticket check the certificate themselves.
        let tls = server_config(
            &identity,
            PeerPolicy::AnyKey,
            &[ALPN_AUTH],
            transport_config(TransportRole::ClientFacing),
        )?;
        let listener = Listener::bind(
            config.listen,
            tls,
            PeerPolicy::AnyKey,
            HandshakeGate::default(),
        )
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let metrics = match config.metrics {
            Some(addr) => Some(
                switchboard_net::metrics::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
            None => None,
        };
        let service = Arc::new(Service::new(config, signing, store, hasher));
        Ok(Self {
            service,
            listener,
            metrics,
        })
    }

    /// The UDP address logins reach.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics address, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then runs the shutdown sequence.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let Self {
            service,
            listener,
            metrics,
        } = self;
        let mut tasks = JoinSet::new();
        // One clone per request being answered: the shutdown waits for the count to fall back.
        let in_flight = Arc::new(());
        if let Some(metrics) = metrics {
            let service = Arc::clone(&service);
            let gate = listener.stats();
            let status = Arc::clone(&service);
            tasks.spawn(switchboard_net::metrics::serve(
                metrics,
                switchboard_net::metrics::Pages {
                    metrics: Arc::new(move || {
                        let mut out = service.render_metrics();
                        gate_metrics(&mut out, &gate);
                        out
                    }),
                    status: Some(Arc::new(move || status.render_status())),
                },
            ));
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                handshake = listener.accept() => {
                    let Some(handshake) = handshake else { break };
                    let service = Arc::clone(&service);
                    let remote = handshake.remote_address();
                    // Weak: an idle connection is no request in flight.
                    let in_flight = Arc::downgrade(&in_flight);
                    tasks.spawn(async move {
                        match handshake.complete(HANDSHAKE_TIMEOUT).await {
                            Ok(connection) => {
                                let span = tracing::info_span!(
                                    "connection",
                                    peer = %connection.peer.node.short(),
                                    %remote
                                );
                                serve_connection(service, connection, in_flight)
                                    .instrument(span)
                                    .await;
                            }
                            Err(e) => tracing::debug!(%remote, "handshake failed: {e}"),
                        }
                    });
                }
                // Reap finished connection tasks so the set stays as small as the live ones.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tracing::info!("shutting down: refusing new connections, draining logins");
        listener.endpoint().set_server_config(None);
        let answered = async {
            // A check that finished still has its ticket to sign and its answer to write.
            while Arc::strong_count(&in_flight) > 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            service.drain().await;
        };
        if tokio::time::timeout(DRAIN_DEADLINE, answered)
            .await
            .is_err()
        {
            tracing::warn!("logins still running after {DRAIN_DEADLINE:?}; closing anyway");
        }
        listener
            .shutdown(
                CloseCode::ShuttingDown,
                "auth-server shutting down",
                CLOSE_DEADLINE,
            )
            .await;
        tasks.shutdown().await;
        tracing::info!("stopped");
    }
}

/// Serves one connection's requests in order: `Hello` first, then one request per stream.
async fn serve_connection(
    service: Arc<Service>,
    connection: PeerConnection,
    in_flight: std::sync::Weak<()>,
) {
    let caller = match peer_certificate(&connection.connection) {
        Ok(certificate) => Caller {
            node: connection.peer.node,
            certificate,
            ip: connection.connection.remote_address().ip(),
        },
        Err(e) => {
            tracing::warn!("no usable certificate: {e}");
            connection.close(CloseCode::Unauthorized, &e.to_string());
            return;
        }
    };
    let mut greeted = false;
    let mut acks = JoinSet::new();
    loop {
        let Ok((mut send, mut recv)) = connection.connection.accept_bi().await else {
            return;
        };
        let request = match framed::read_request::<AuthRequest>(&mut recv, REQUEST_TIMEOUT).await {
            Ok(request) => request,
            Err(e) if e.is_malformed() => {
                service
                    .metrics
                    .malformed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("malformed request: {e}");
                let answer = AuthResponse::Error(WireError::malformed(&e.to_string()));
                let _ = framed::respond(&mut send, &answer).await;
                connection.close(CloseCode::Malformed, &e.to_string());
                return;
            }
            Err(e) => {
                tracing::debug!("request stream failed: {e}");
                continue;
            }
        };
        let is_hello = matches!(request, AuthRequest::Hello(_));
        if !greeted && !is_hello {
            tracing::warn!("request before hello");
            let answer =
                AuthResponse::Error(WireError::malformed("the first request must be Hello"));
            let _ = framed::respond(&mut send, &answer).await;
            connection.close(CloseCode::Malformed, "the first request must be Hello");
            return;
        }
        let answering = in_flight.upgrade();
        let answer = service.handle(request, &caller).await;
        greeted |= is_hello && matches!(answer, AuthResponse::Welcome(_));
        if let Err(e) = framed::respond(&mut send, &answer).await {
            tracing::debug!("answer not delivered: {e}");
            continue;
        }
        // The request counts as in flight until the peer has acknowledged the answer: closing
        // the endpoint at shutdown discards stream data not yet acknowledged. Waited for
        // beside the loop, so the next request need not wait for this acknowledgement.
        while acks.try_join_next().is_some() {}
        acks.spawn(async move {
            let _ = tokio::time::timeout(ACK_WAIT, send.stopped()).await;
            drop(answering);
        });
    }
}

/// The handshake gate's counters, in the auth-server's names.
fn gate_metrics(out: &mut String, gate: &GateStats) {
    use switchboard_net::metrics::metric;
    metric(
        out,
        "switchboard_auth_handshakes_refused_total",
        "counter",
        "Handshakes refused: every permit taken, or the source's share taken.",
        gate.refused(),
    );
    metric(
        out,
        "switchboard_auth_handshakes_retried_total",
        "counter",
        "Initials answered with a Retry to validate the source address (under load).",
        gate.retried(),
    );
}
