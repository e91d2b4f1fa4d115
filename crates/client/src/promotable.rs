//! `client online --promotable`: the client offers itself as a supernode, answers its home's
//! dial-back, and when nominated trades the nomination for a `promoted` ticket and starts the
//! supernode role in its own process (DESIGN.md sections 2 and 6).
//!
//! The role itself lives in the supernode crate, which this crate must not depend on (no role
//! crate depends on another): the `client` binary passes it in as a [`HostRole`]. Until it is
//! promoted, the client keeps a small responder on the address it offers (a QUIC endpoint that
//! completes handshakes with its own node key and closes them), so that the home's dial-back
//! from another socket proves the address reachable; on promotion the responder gives the
//! address to the supernode role.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use switchboard_net::config::Role as TransportRole;
use switchboard_net::{
    server_config, transport_config, HandshakeGate, Identity, Listener, PeerPolicy,
    HANDSHAKE_TIMEOUT,
};
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::version::ALPN_DIRECTORY;
use switchboard_proto::{Nomination, PeerAddr};
use tokio::sync::mpsc;

use crate::session::{Context, Session};

/// What the hosted supernode role needs to start.
#[derive(Debug, Clone)]
pub struct PromotedStart {
    /// The promoted profile (the client's key and settings, the promoted ticket).
    pub profile_dir: PathBuf,
    /// Where to serve: the offered address.
    pub listen: SocketAddr,
    /// The address to announce.
    pub public_addr: SocketAddr,
    /// Members to join through.
    pub seeds: Vec<PeerAddr>,
    /// The declared capacity.
    pub capacity: u32,
    /// A supernode configuration file for the role's tuning.
    pub config: Option<PathBuf>,
}

/// The hosted role's future: how it ended (a line for the user), or why it did not start.
pub type RoleFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Starts the supernode role; provided by the `client` binary.
pub type HostRole = Arc<dyn Fn(PromotedStart) -> RoleFuture + Send + Sync>;

/// `--promotable` and its companions.
#[derive(Clone)]
pub struct Promotable {
    /// The capacity declared.
    pub capacity: u32,
    /// Where to bind the address offered (port 0: any).
    pub serve: SocketAddr,
    /// The role's configuration file, if any.
    pub config: Option<PathBuf>,
    /// Starts the role.
    pub host: HostRole,
}

impl std::fmt::Debug for Promotable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Promotable")
            .field("capacity", &self.capacity)
            .field("serve", &self.serve)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Handshakes the responder completes at once: a dial-back or two, never a service.
const RESPONDER_HANDSHAKES: usize = 4;

/// How often, and for how long, the role retries binding the address the responder just
/// released (the socket closes once the responder's endpoint has wound down).
const REBIND_TRIES: u32 = 20;
const REBIND_PAUSE: Duration = Duration::from_millis(100);

/// The promotion state of one `client online`, across its sessions.
#[derive(Debug)]
pub struct Promotion {
    settings: Promotable,
    /// The bound address offered (the responder's, then the role's).
    bound: SocketAddr,
    responder: Option<(Arc<Listener>, tokio::task::JoinHandle<()>)>,
    /// Whether the role runs now.
    serving: bool,
    /// Whether the current session has had our offer.
    offered: bool,
    ended: mpsc::Sender<Result<String, String>>,
}

impl Promotion {
    /// Binds the responder; the role's ends are reported on the returned receiver.
    pub fn start(
        settings: Promotable,
        context: &Context,
    ) -> std::io::Result<(Self, mpsc::Receiver<Result<String, String>>)> {
        let (ended, events) = mpsc::channel(1);
        let mut promotion = Self {
            bound: settings.serve,
            settings,
            responder: None,
            serving: false,
            offered: false,
            ended,
        };
        promotion.bind_responder(context)?;
        Ok((promotion, events))
    }

    fn bind_responder(&mut self, context: &Context) -> std::io::Result<()> {
        let policy = PeerPolicy::any_ticket(context.anchor.clone());
        let config = server_config(
            &Identity::new(context.key.clone(), Some(context.ticket.clone())),
            policy.clone(),
            &[ALPN_DIRECTORY],
            transport_config(TransportRole::ClientFacing),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let listener = Arc::new(Listener::bind(
            self.bound,
            config,
            policy,
            HandshakeGate::with_max_in_flight(RESPONDER_HANDSHAKES),
        )?);
        self.bound = listener.local_addr()?;
        let accepting = Arc::clone(&listener);
        let task = tokio::spawn(async move {
            while let Some(handshake) = accepting.accept().await {
                // Completing the handshake with our key is the proof; nothing more is said.
                tokio::spawn(async move {
                    if let Ok(connection) = handshake.complete(HANDSHAKE_TIMEOUT).await {
                        let _ = tokio::time::timeout(
                            Duration::from_secs(5),
                            connection.connection.closed(),
                        )
                        .await;
                    }
                });
            }
        });
        self.responder = Some((listener, task));
        Ok(())
    }

    async fn release_responder(&mut self) {
        if let Some((listener, task)) = self.responder.take() {
            task.abort();
            listener
                .endpoint()
                .close(switchboard_net::CloseCode::Done.code(), b"promoted");
            let _ =
                tokio::time::timeout(Duration::from_millis(500), listener.endpoint().wait_idle())
                    .await;
        }
    }

    /// The address to offer: the bound one, with `ip` (the address peers reach this client
    /// at) when bound to all interfaces.
    fn offer_addr(&self, ip: std::net::IpAddr) -> SocketAddr {
        if self.bound.ip().is_unspecified() {
            SocketAddr::new(ip, self.bound.port())
        } else {
            self.bound
        }
    }

    /// A new session: it has not had our offer yet.
    pub fn new_session(&mut self) {
        self.offered = false;
    }

    /// Offers this client on `session` unless it serves already or did so on this session.
    pub async fn offer(
        &mut self,
        session: &mut Session,
        ip: std::net::IpAddr,
        online_for: Duration,
    ) {
        if self.serving || self.offered || self.responder.is_none() {
            return;
        }
        self.offered = true;
        let offer = ClientMessage::OfferPromotion {
            addr: self.offer_addr(ip),
            capacity: self.settings.capacity,
            uptime_secs: online_for.as_secs(),
        };
        match session.ask(&offer).await {
            Ok(SupernodeMessage::OfferTaken) => {
                eprintln!("offered as a supernode at {}", self.offer_addr(ip));
            }
            Ok(SupernodeMessage::Error(e)) => eprintln!("promotion offer not taken: {e}"),
            Ok(other) => eprintln!("promotion offer answered with {other:?}"),
            Err(e) => eprintln!("promotion offer failed: {e}"),
        }
    }

    /// The home nominated this client: trade the nomination for a promoted ticket and start
    /// the role on the offered address.
    pub async fn promote(
        &mut self,
        context: &Context,
        seeds: Vec<PeerAddr>,
        nomination: Nomination,
        ip: std::net::IpAddr,
    ) {
        if self.serving {
            return;
        }
        if nomination.body_unverified().nominee != context.key.node_id() {
            eprintln!("ignored a nomination for another node");
            return;
        }
        let (promoted, _ticket) =
            match switchboard_account::promotion::redeem(&context.profile, nomination).await {
                Ok(done) => done,
                Err(e) => {
                    eprintln!("promotion refused by the auth-server: {e}");
                    return;
                }
            };
        let public_addr = self.offer_addr(ip);
        self.release_responder().await;
        let start = PromotedStart {
            profile_dir: promoted.dir().to_path_buf(),
            listen: self.bound,
            public_addr,
            seeds,
            capacity: self.settings.capacity,
            config: self.settings.config.clone(),
        };
        self.serving = true;
        let host = Arc::clone(&self.settings.host);
        let ended = self.ended.clone();
        tokio::spawn(async move {
            let mut outcome = Err("not started".to_owned());
            for _ in 0..REBIND_TRIES {
                outcome = host(start.clone()).await;
                // The responder's socket may linger for a moment: try the bind again.
                match &outcome {
                    Err(e) if e.contains("cannot listen") => tokio::time::sleep(REBIND_PAUSE).await,
                    _ => break,
                }
            }
            let _ = ended.send(outcome).await;
        });
        eprintln!("promoted: serving as a supernode at {public_addr}");
    }

    /// The role ended with `outcome`: serve as a client only, and offer again later.
    pub fn role_ended(&mut self, outcome: Result<String, String>, context: &Context) {
        self.serving = false;
        match outcome {
            Ok(line) => eprintln!("{line}"),
            Err(e) => eprintln!("the supernode role failed: {e}"),
        }
        if let Err(e) = self.bind_responder(context) {
            eprintln!(
                "no promotion offers from now on: cannot listen on {}: {e}",
                self.bound
            );
        }
        self.offered = false;
    }

    /// Whether the role runs now.
    pub fn serving(&self) -> bool {
        self.serving
    }
}
