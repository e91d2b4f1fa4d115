//! A client's session with a supernode: choosing one from the host cache, `Hello`, and the
//! request/answer exchange on the session stream.
//!
//! Whom to dial, in what order and what a refusal changes is the engine's
//! ([`switchboard_engine::session`], which the simulator drives too); this module does the
//! dialling and keeps the host cache's history in the profile.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_engine::session::{HostCache, HostEntry, Pass, PassEnd, MAX_HOSTS, STAGGER};

use switchboard_net::config::Role as TransportRole;
use switchboard_net::framed::{read_frame, write_frame, StreamError};
use switchboard_net::{
    client_config, transport_config, Dialer, HandshakeError, Identity, PeerConnection, PeerPolicy,
    Resumption,
};
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::version::{Hello, VersionRange, ALPN_DIRECTORY};
use switchboard_proto::wire_error::WireError;
use switchboard_proto::{AuthKey, NodeId, PeerAddr, SecretKey, Ticket, TrustAnchor, UnixTime};

use crate::login::software_version;
use crate::profile::{Host, Profile, ProfileError};

/// How long one dial may take before the next host is tried.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one request may wait for its answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What a session attempt can end in.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The profile is unusable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The ticket is refused: log in again.
    #[error("{0}")]
    Unauthorized(WireError),
    /// The supernode's TLS layer refused the ticket (forged, expired, for another key).
    #[error("the supernode refused this client's ticket: {0}")]
    TicketRefused(String),
    /// This build is refused by the network.
    #[error("{0}")]
    VersionRejected(WireError),
    /// The host cache names no supernode: nothing to try, now or later.
    #[error("no supernode known (the host cache is empty); run `client login` again to fetch the bootstrap list")]
    NoHosts,
    /// No supernode in the host cache admitted us now.
    #[error("no supernode admitted this client ({tried} tried)")]
    NoSupernode {
        /// Hosts tried.
        tried: usize,
        /// The longest `retry_after` any of them asked for.
        retry_after: Option<Duration>,
    },
    /// The exchange broke.
    #[error("session: {0}")]
    Stream(#[from] StreamError),
    /// A request was refused.
    #[error("{0}")]
    Refused(WireError),
    /// The answer made no sense.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// Setting up the transport failed.
    #[error("transport: {0}")]
    Transport(String),
}

/// What a client needs to talk to supernodes: its key and ticket, the trust anchor, the
/// profile, and a dialer.
#[derive(Debug)]
pub struct Context {
    /// The profile.
    pub profile: Profile,
    /// The node key.
    pub key: SecretKey,
    /// The ticket.
    pub ticket: Ticket,
    /// The auth-server's key.
    pub trust: AuthKey,
    /// The trust anchor.
    pub anchor: TrustAnchor,
    /// Dials supernodes.
    pub dialer: Dialer,
    /// How long one dial may take before the next host is tried ([`DIAL_TIMEOUT`]).
    pub dial_timeout: Duration,
    /// How long the answer to `Hello` may take before the next host is tried
    /// ([`ANSWER_TIMEOUT`]).
    pub hello_timeout: Duration,
    /// How long a dial may go unanswered before the next candidate is dialled beside it
    /// ([`STAGGER`]).
    pub stagger: Duration,
}

impl Context {
    /// Loads the profile and makes a dialer on `endpoint` (or on a fresh socket).
    pub fn load(profile: Profile, endpoint: Option<quinn::Endpoint>) -> Result<Self, SessionError> {
        // The ticket first: a missing one means "not logged in", the clearest message.
        let ticket = profile.ticket()?;
        let trust = profile.trust()?;
        let key = profile.node_key()?;
        Self::from_parts(profile, key, ticket, trust, endpoint)
    }

    /// A context whose key, ticket and trust are given rather than read from `profile` (which
    /// still supplies the host cache): many devices sharing one host cache, as the testbed's
    /// logical clients do.
    pub fn from_parts(
        profile: Profile,
        key: SecretKey,
        ticket: Ticket,
        trust: AuthKey,
        endpoint: Option<quinn::Endpoint>,
    ) -> Result<Self, SessionError> {
        let anchor = TrustAnchor::new(trust).map_err(|e| SessionError::Transport(e.to_string()))?;
        let policy = PeerPolicy::supernode(anchor.clone());
        let config = client_config(
            &Identity::new(key.clone(), Some(ticket.clone())),
            policy.clone(),
            &[ALPN_DIRECTORY],
            transport_config(TransportRole::Session),
            Resumption::Enabled,
        )
        .map_err(|e| SessionError::Transport(e.to_string()))?;
        let dialer = match endpoint {
            Some(endpoint) => Dialer::on_endpoint(endpoint, config, policy),
            None => Dialer::bind(SocketAddr::from(([0, 0, 0, 0], 0)), config, policy)
                .map_err(|e| SessionError::Transport(e.to_string()))?,
        };
        Ok(Self {
            profile,
            key,
            ticket,
            trust,
            anchor,
            dialer,
            dial_timeout: DIAL_TIMEOUT,
            hello_timeout: ANSWER_TIMEOUT,
            stagger: STAGGER,
        })
    }
}

/// An open session: the connection, the session stream, and the host it reached.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub connection: PeerConnection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// The supernode.
    pub host: PeerAddr,
}

impl Session {
    /// Sends `request` and returns the answer.
    pub async fn ask(&mut self, request: &ClientMessage) -> Result<SupernodeMessage, SessionError> {
        write_frame(&mut self.send, request).await?;
        let answer =
            tokio::time::timeout(ANSWER_TIMEOUT, read_frame(&mut self.recv, MAX_FRAME_LEN))
                .await
                .map_err(|_| SessionError::Stream(StreamError::Timeout(ANSWER_TIMEOUT)))??;
        answer.ok_or(SessionError::Stream(StreamError::Truncated))
    }

    /// The supernode's id.
    pub fn node(&self) -> NodeId {
        self.connection.peer.node
    }

    /// Says goodbye and closes.
    pub async fn goodbye(mut self) {
        let _ = write_frame(&mut self.send, &ClientMessage::Goodbye).await;
        let _ = self.send.finish();
        let _ = tokio::time::timeout(Duration::from_millis(300), self.send.stopped()).await;
        self.connection
            .connection
            .close(switchboard_net::CloseCode::Done.code(), b"goodbye");
    }
}

/// The profile's host cache as the engine's, keyed by authenticated address (entries whose
/// node id does not parse are left out: nothing could be dialled there).
fn host_cache(hosts: &[Host]) -> HostCache<PeerAddr> {
    let entries = hosts
        .iter()
        .filter_map(|h| {
            let entry = HostEntry::new(h.peer()?, h.mode == "mega", h.load_permille)
                .with_history(h.last_success.map(UnixTime), h.last_failure.map(UnixTime));
            Some(entry)
        })
        .collect();
    HostCache::new(entries, MAX_HOSTS)
}

/// Writes the engine's host cache back into the profile's entries: history and new
/// supernodes; entries the engine never saw (unparsable) are kept as they were.
fn store_cache(
    profile: &Profile,
    hosts: Vec<Host>,
    cache: HostCache<PeerAddr>,
) -> Result<(), ProfileError> {
    let mut entries = cache.into_entries();
    let mut merged: Vec<Host> = hosts
        .into_iter()
        .filter_map(|mut host| {
            let Some(peer) = host.peer() else {
                return Some(host);
            };
            let at = entries.iter().position(|e| e.host == peer)?;
            let entry = entries.swap_remove(at);
            host.last_success = entry.last_success().map(|t| t.0);
            host.last_failure = entry.last_failure().map(|t| t.0);
            Some(host)
        })
        .collect();
    merged.extend(entries.into_iter().map(|e| Host::named(e.host)));
    profile.save_hosts(merged)
}

/// Reaches a supernode from the host cache and opens a session, the engine's [`Pass`]
/// deciding whom to dial: the running `online` session's home first, failed supernodes late,
/// a second dial raced beside one unanswered after [`STAGGER`], and the alternatives a `Busy`
/// supernode names next. Failures and successes are written to the host cache.
pub async fn open(context: &Context, avoid: Option<NodeId>) -> Result<Session, SessionError> {
    open_with(context, |cache, hosts, now| {
        let avoid = find(hosts, avoid);
        let home = find(hosts, context.profile.home());
        Pass::new(cache.order(avoid.as_ref(), home.as_ref(), now, &mut rand::thread_rng()))
    })
    .await
}

/// Opens a session elsewhere than `from`, which told this client to move: the supernodes its
/// `Redirect` named first, then the host cache's order; never `from` itself. The caller keeps
/// its session with `from` (and its lease) until the new one holds a registration: make
/// before break.
pub async fn open_redirected(
    context: &Context,
    from: NodeId,
    targets: &[PeerAddr],
) -> Result<Session, SessionError> {
    open_with(context, |cache, _, now| {
        let mut rng = rand::thread_rng();
        let order = cache
            .order(None, None, now, &mut rng)
            .into_iter()
            .filter(|p| p.node != from)
            .collect();
        let targets = targets.iter().copied().filter(|p| p.node != from);
        Pass::redirected(targets, order, &mut rng)
    })
    .await
}

/// The cache entry of `node`, if it is known.
fn find(hosts: &[Host], node: Option<NodeId>) -> Option<PeerAddr> {
    let node = node?;
    hosts.iter().filter_map(Host::peer).find(|p| p.node == node)
}

/// Runs the pass `plan` makes of the host cache, and stores what it learnt.
async fn open_with(
    context: &Context,
    plan: impl FnOnce(&HostCache<PeerAddr>, &[Host], UnixTime) -> Pass<PeerAddr>,
) -> Result<Session, SessionError> {
    let hosts = context.profile.hosts()?;
    let mut cache = host_cache(&hosts);
    if cache.is_empty() {
        return Err(SessionError::NoHosts);
    }
    let mut pass = plan(&cache, &hosts, switchboard_net::now_unix()).with_megas(cache.megas());
    let outcome = run_pass(context, &mut pass, &mut cache).await;
    if let Err(e) = store_cache(&context.profile, hosts, cache) {
        tracing::debug!("host cache not saved: {e}");
    }
    match outcome {
        Ok(session) => Ok(session),
        Err(Stopped::Fatal(fatal)) => Err(fatal),
        Err(Stopped::Ended(limited)) => match (pass.end(), limited) {
            (Some(PassEnd::Limited), Some(e)) => Err(SessionError::Refused(e)),
            (Some(PassEnd::NoneAdmitted { tried, retry_after }), _) => {
                Err(SessionError::NoSupernode { tried, retry_after })
            }
            _ => Err(SessionError::NoSupernode {
                tried: pass.tried(),
                retry_after: None,
            }),
        },
    }
}

/// Why a pass stopped without a session.
enum Stopped {
    /// A supernode refused this client for good.
    Fatal(SessionError),
    /// Nothing left to dial; the last `LimitExceeded` refusal, if any.
    Ended(Option<WireError>),
}

/// Dials as the pass says, at most `MAX_DIALS_IN_FLIGHT` at once, until one admits us, one
/// refuses us for good, or the pass ends. A dial still in flight when another wins is
/// dropped, closing its connection.
async fn run_pass(
    context: &Context,
    pass: &mut Pass<PeerAddr>,
    cache: &mut HostCache<PeerAddr>,
) -> Result<Session, Stopped> {
    let mut limited = None;
    let mut dials = tokio::task::JoinSet::new();
    // The dials in flight, in the order they started.
    let mut started: Vec<PeerAddr> = Vec::new();
    let mut last_start = tokio::time::Instant::now();
    loop {
        let stagger_due = last_start.elapsed() >= context.stagger;
        if dials.is_empty() || stagger_due {
            if let Some(peer) = pass.next_dial() {
                let dialer = context.dialer.clone();
                let (dial_timeout, hello_timeout) = (context.dial_timeout, context.hello_timeout);
                dials.spawn(async move {
                    (
                        peer,
                        attempt(&dialer, dial_timeout, hello_timeout, peer).await,
                    )
                });
                started.push(peer);
                last_start = tokio::time::Instant::now();
            }
        }
        if dials.is_empty() {
            return Err(Stopped::Ended(limited));
        }
        let joined = tokio::select! {
            joined = dials.join_next() => joined,
            () = tokio::time::sleep_until(last_start + context.stagger), if pass.can_dial() => continue,
        };
        let Some(Ok((peer, outcome))) = joined else {
            // A dial task panicked or was cancelled: count it as a failed dial.
            pass.failed();
            continue;
        };
        let now = switchboard_net::now_unix();
        let earlier: Vec<PeerAddr> = started
            .iter()
            .take_while(|p| **p != peer)
            .copied()
            .collect();
        started.retain(|p| *p != peer);
        match outcome {
            Attempt::Open(session) => {
                // A dial that started earlier and is still unanswered was outrun by one
                // started at least a stagger later: it is remembered as failed, so the next
                // command does not wait on it first.
                for slow in &earlier {
                    cache.failed(slow, now);
                }
                cache.succeeded(&peer, now);
                return Ok(*session);
            }
            Attempt::Fatal(e) => return Err(Stopped::Fatal(e)),
            Attempt::Busy { wait, alternatives } => {
                cache.add_named(alternatives.iter().copied(), now);
                pass.busy(wait, alternatives.iter().copied(), &mut rand::thread_rng());
            }
            Attempt::Limited(e) => {
                tracing::debug!(host = %peer.addr, "refused: {e}");
                limited = Some(e);
                pass.limited();
            }
            Attempt::Failed => {
                cache.failed(&peer, now);
                pass.failed();
            }
        }
    }
}

/// Opens a session with exactly `peer` (a peer's home, for a hole punch or a relay towards
/// it), or says why not.
pub async fn open_to(context: &Context, peer: PeerAddr) -> Result<Session, SessionError> {
    match attempt(
        &context.dialer,
        context.dial_timeout,
        context.hello_timeout,
        peer,
    )
    .await
    {
        Attempt::Open(session) => Ok(*session),
        Attempt::Fatal(e) => Err(e),
        Attempt::Limited(e) => Err(SessionError::Refused(e)),
        Attempt::Busy { wait, .. } => Err(SessionError::NoSupernode {
            tried: 1,
            retry_after: Some(wait),
        }),
        Attempt::Failed => Err(SessionError::NoSupernode {
            tried: 1,
            retry_after: None,
        }),
    }
}

/// How one supernode answered a session attempt.
enum Attempt {
    /// It admitted us.
    Open(Box<Session>),
    /// It refused this client for good (ticket, version): no other will do better.
    Fatal(SessionError),
    /// It is busy and names others.
    Busy {
        wait: Duration,
        alternatives: switchboard_proto::BoundedVec<
            PeerAddr,
            { switchboard_proto::limits::MAX_ALTERNATIVES },
        >,
    },
    /// This account holds its share of sessions there; another may still admit it.
    Limited(WireError),
    /// Unreachable, or no sensible answer.
    Failed,
}

/// Dials `peer` and says `Hello`.
async fn attempt(
    dialer: &Dialer,
    dial_timeout: Duration,
    hello_timeout: Duration,
    peer: PeerAddr,
) -> Attempt {
    let connection = match dialer.connect_to(peer.node, peer.addr, dial_timeout).await {
        Ok(connection) => connection,
        Err(e) => {
            tracing::debug!(host = %peer.addr, "dial failed: {}", describe(&e));
            return Attempt::Failed;
        }
    };
    let refused_or_failed = |connection: &PeerConnection| {
        ticket_refusal(&connection.connection).map_or(Attempt::Failed, Attempt::Fatal)
    };
    let Ok((mut send, mut recv)) = connection.connection.open_bi().await else {
        return refused_or_failed(&connection);
    };
    let hello = ClientMessage::Hello(Hello {
        protocol: VersionRange::CURRENT,
        software: software_version(),
    });
    if write_frame(&mut send, &hello).await.is_err() {
        return refused_or_failed(&connection);
    }
    let answer = tokio::time::timeout(hello_timeout, read_frame(&mut recv, MAX_FRAME_LEN)).await;
    match answer {
        Ok(Ok(Some(SupernodeMessage::Welcome(_)))) => Attempt::Open(Box::new(Session {
            connection,
            send,
            recv,
            host: peer,
        })),
        Ok(Ok(Some(SupernodeMessage::Error(WireError::Busy {
            retry_after_ms,
            alternatives,
        })))) => {
            let wait = Duration::from_millis(u64::from(retry_after_ms));
            tracing::debug!(host = %peer.addr, "busy, retry after {wait:?}");
            Attempt::Busy { wait, alternatives }
        }
        Ok(Ok(Some(SupernodeMessage::Error(e @ WireError::Unauthorized { .. })))) => {
            Attempt::Fatal(SessionError::Unauthorized(e))
        }
        Ok(Ok(Some(SupernodeMessage::Error(e @ WireError::VersionRejected { .. })))) => {
            Attempt::Fatal(SessionError::VersionRejected(e))
        }
        Ok(Ok(Some(SupernodeMessage::Error(e @ WireError::LimitExceeded { .. })))) => {
            tracing::debug!(host = %peer.addr, "refused: {e}");
            Attempt::Limited(e)
        }
        Ok(Ok(other)) => {
            tracing::debug!(host = %peer.addr, "refused: {other:?}");
            Attempt::Failed
        }
        Ok(Err(e)) => {
            if let Some(refusal) = ticket_refusal(&connection.connection) {
                return Attempt::Fatal(refusal);
            }
            tracing::debug!(host = %peer.addr, "hello failed: {e}");
            Attempt::Failed
        }
        Err(_) => {
            tracing::debug!(host = %peer.addr, "hello timed out");
            Attempt::Failed
        }
    }
}

/// In TLS 1.3 a server refuses the client's certificate after the client has finished its
/// handshake, so a refused ticket shows as the connection closing with the server's reason.
fn ticket_refusal(connection: &quinn::Connection) -> Option<SessionError> {
    let reason = connection.close_reason()?.to_string();
    reason
        .contains("ticket")
        .then(|| SessionError::TicketRefused(reason))
}

fn describe(error: &HandshakeError) -> String {
    error.to_string()
}

/// Adds supernodes named by a `Busy` or `Redirect` to the host cache (a full cache gives up
/// its least useful entries for them, [`HostCache::add_named`]).
pub fn merge_alternatives(
    profile: &Profile,
    alternatives: &[switchboard_proto::PeerAddr],
) -> Result<(), ProfileError> {
    if alternatives.is_empty() {
        return Ok(());
    }
    let hosts = profile.hosts()?;
    let mut cache = host_cache(&hosts);
    cache.add_named(alternatives.iter().copied(), switchboard_net::now_unix());
    store_cache(profile, hosts, cache)
}

/// Records that `node` served this client now.
pub fn mark_success(profile: &Profile, node: NodeId) -> Result<(), ProfileError> {
    mark(profile, node, HostCache::succeeded)
}

/// Records that the session with `node` failed now: one-shot commands from this profile try
/// it after the others for a while.
pub fn mark_failure(profile: &Profile, node: NodeId) -> Result<(), ProfileError> {
    mark(profile, node, HostCache::failed)
}

fn mark(
    profile: &Profile,
    node: NodeId,
    how: fn(&mut HostCache<PeerAddr>, &PeerAddr, UnixTime),
) -> Result<(), ProfileError> {
    let hosts = profile.hosts()?;
    let mut cache = host_cache(&hosts);
    if let Some(peer) = hosts.iter().filter_map(Host::peer).find(|p| p.node == node) {
        how(&mut cache, &peer, switchboard_net::now_unix());
    }
    store_cache(profile, hosts, cache)
}
