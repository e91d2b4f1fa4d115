//! A client's session with a supernode: choosing one from the host cache, `Hello`, and the
//! request/answer exchange on the session stream.
//!
//! Host choice: supernodes that served this client before first (most recent first), then the
//! least loaded; mega-supernodes last, as the fallback (DESIGN.md section 6). `Busy` answers
//! add their alternatives to the cache and their `retry_after` to the next wait.

use std::net::SocketAddr;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;

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
use switchboard_proto::{AuthKey, NodeId, PeerAddr, SecretKey, Ticket, TrustAnchor};

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
    pub host: Host,
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

/// The host cache in the order to try it:
///
/// 1. the supernode that served this client last (a brief disconnect comes back home), unless
///    it is `avoid` (the one just lost);
/// 2. the other ordinary supernodes, each next one the less loaded of two drawn at random from
///    those left ("the power of two choices", Mitzenmacher 2001): clients that share a host
///    cache and its load hints spread over it instead of all taking its first entry, yet lean
///    towards spare capacity. A deterministic order sent every client of a fresh network, and
///    every orphan of a dead supernode, to the same one;
/// 3. the mega-supernodes, least loaded first (the fallback, DESIGN.md section 6);
/// 4. `avoid` last.
pub fn candidates(hosts: &[Host], avoid: Option<NodeId>, rng: &mut impl Rng) -> Vec<Host> {
    let is_avoided = |h: &Host| avoid.is_some_and(|a| h.peer().is_some_and(|p| p.node == a));
    let (avoided, usable): (Vec<Host>, Vec<Host>) = hosts.iter().cloned().partition(is_avoided);
    let (mut megas, mut normals): (Vec<Host>, Vec<Host>) =
        usable.into_iter().partition(|h| h.mode == "mega");
    let mut ordered = Vec::with_capacity(hosts.len());
    let last_home = normals
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.last_success.map(|at| (at, i)))
        .max()
        .map(|(_, i)| i);
    if let Some(home) = last_home {
        ordered.push(normals.swap_remove(home));
    }
    while !normals.is_empty() {
        let first = rng.gen_range(0..normals.len());
        let second = rng.gen_range(0..normals.len());
        let pick = match (normals.get(first), normals.get(second)) {
            (Some(a), Some(b)) if b.load_permille < a.load_permille => second,
            _ => first,
        };
        ordered.push(normals.swap_remove(pick));
    }
    megas.sort_by_key(|h| h.load_permille);
    ordered.extend(megas);
    ordered.extend(avoided);
    ordered
}

/// Supernodes one `open` tries at most: the host cache's (at most 200) and the alternatives
/// `Busy` answers name. A bound on how long one attempt takes before the caller backs off.
pub const MAX_TRIES_PER_OPEN: usize = 32;

/// Reaches a supernode from the host cache and opens a session; the alternatives a `Busy`
/// supernode names are tried next in the same pass.
pub async fn open(context: &Context, avoid: Option<NodeId>) -> Result<Session, SessionError> {
    let hosts = context.profile.hosts()?;
    if !hosts.iter().any(|host| host.peer().is_some()) {
        return Err(SessionError::NoHosts);
    }
    let mut retry_after: Option<Duration> = None;
    let mut limited: Option<WireError> = None;
    let mut tried = 0;
    let mut order: std::collections::VecDeque<Host> =
        candidates(&hosts, avoid, &mut rand::thread_rng()).into();
    let mut queued: std::collections::HashSet<String> =
        order.iter().map(|h| h.node.clone()).collect();
    while let Some(host) = order.pop_front() {
        let Some(peer) = host.peer() else { continue };
        if tried >= MAX_TRIES_PER_OPEN {
            break;
        }
        tried += 1;
        match attempt(context, host, peer).await {
            Attempt::Open(session) => return Ok(*session),
            Attempt::Fatal(e) => return Err(e),
            Attempt::Busy { wait, alternatives } => {
                retry_after = Some(retry_after.map_or(wait, |r| r.max(wait)));
                merge_alternatives(&context.profile, &alternatives)?;
                // The less-loaded supernodes it names are tried next, in this same pass (in a
                // random order, so that the clients it turned away do not all take the first):
                // a host cache that does not list them yet (a new or promoted supernode) would
                // otherwise send the client back to the full ones after a back-off.
                let mut fresh: Vec<Host> = alternatives
                    .iter()
                    .filter(|p| queued.insert(p.node.to_string()))
                    .map(|p| Host::named(*p))
                    .collect();
                fresh.shuffle(&mut rand::thread_rng());
                for host in fresh.into_iter().rev() {
                    order.push_front(host);
                }
            }
            Attempt::Limited(e) => limited = Some(e),
            Attempt::Failed => {}
        }
    }
    match limited {
        Some(e) if retry_after.is_none() => Err(SessionError::Refused(e)),
        _ => Err(SessionError::NoSupernode { tried, retry_after }),
    }
}

/// Opens a session with exactly `peer` (a peer's home, for a hole punch or a relay towards
/// it), or says why not.
pub async fn open_to(context: &Context, peer: PeerAddr) -> Result<Session, SessionError> {
    match attempt(context, Host::named(peer), peer).await {
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

/// Dials `peer` (from the cache entry `host`) and says `Hello`.
async fn attempt(context: &Context, host: Host, peer: PeerAddr) -> Attempt {
    let connection = match context
        .dialer
        .connect_to(peer.node, peer.addr, context.dial_timeout)
        .await
    {
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
    let answer =
        tokio::time::timeout(context.hello_timeout, read_frame(&mut recv, MAX_FRAME_LEN)).await;
    match answer {
        Ok(Ok(Some(SupernodeMessage::Welcome(_)))) => Attempt::Open(Box::new(Session {
            connection,
            send,
            recv,
            host,
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

/// Adds supernodes named by a `Busy` or `Redirect` to the host cache.
pub fn merge_alternatives(
    profile: &Profile,
    alternatives: &[switchboard_proto::PeerAddr],
) -> Result<(), ProfileError> {
    if alternatives.is_empty() {
        return Ok(());
    }
    let mut hosts = profile.hosts()?;
    for peer in alternatives {
        let node = peer.node.to_string();
        if !hosts.iter().any(|h| h.node == node) {
            hosts.push(Host {
                node,
                addr: peer.addr,
                mode: "normal".to_owned(),
                load_permille: 500,
                last_success: None,
            });
        }
    }
    profile.save_hosts(hosts)
}

/// Records that `node` served this client now.
pub fn mark_success(profile: &Profile, node: NodeId) -> Result<(), ProfileError> {
    let mut hosts = profile.hosts()?;
    let id = node.to_string();
    let now = switchboard_net::now_unix().0;
    for host in &mut hosts {
        if host.node == id {
            host.last_success = Some(now);
        }
    }
    profile.save_hosts(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn host(seed: u8, mode: &str, load: u16, last_success: Option<u64>) -> Host {
        let node = switchboard_proto::SecretKey::from_seed([seed; 32]).node_id();
        Host {
            node: node.to_string(),
            addr: SocketAddr::from(([127, 0, 0, 1], 7000 + u16::from(seed))),
            mode: mode.to_owned(),
            load_permille: load,
            last_success,
        }
    }

    fn first_choices(hosts: &[Host], clients: usize, seed: u64) -> Vec<usize> {
        println!("seed {seed}");
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0; hosts.len()];
        for _ in 0..clients {
            let first = candidates(hosts, None, &mut rng).remove(0);
            if let Some(i) = hosts.iter().position(|h| h.node == first.node) {
                counts[i] += 1;
            }
        }
        counts
    }

    #[test]
    fn fresh_clients_with_the_same_host_cache_spread_over_it() {
        let hosts: Vec<Host> = (1..=6).map(|i| host(i, "normal", 0, None)).collect();
        let counts = first_choices(&hosts, 600, 7);
        println!("first choices of 600 clients: {counts:?}");
        assert!(counts.iter().all(|&c| c > 50 && c < 200), "{counts:?}");
    }

    #[test]
    fn spare_capacity_draws_more_clients_than_a_loaded_supernode() {
        let hosts = vec![
            host(1, "normal", 900, None),
            host(2, "normal", 100, None),
            host(3, "normal", 500, None),
        ];
        let counts = first_choices(&hosts, 900, 11);
        println!("first choices by load 900/100/500: {counts:?}");
        assert!(counts[1] > counts[2] && counts[2] > counts[0], "{counts:?}");
    }

    #[test]
    fn the_last_home_comes_first_megas_after_the_others_and_the_lost_one_last() {
        let mut rng = StdRng::seed_from_u64(3);
        let lost = host(1, "normal", 0, Some(200));
        let home = host(2, "normal", 900, Some(100));
        let mega = host(3, "mega", 0, None);
        let other = host(4, "normal", 500, None);
        let hosts = vec![lost.clone(), mega.clone(), other.clone(), home.clone()];
        let avoid = lost.peer().map(|p| p.node);
        let order: Vec<String> = candidates(&hosts, avoid, &mut rng)
            .into_iter()
            .map(|h| h.node)
            .collect();
        assert_eq!(order, vec![home.node, other.node, mega.node, lost.node]);
    }
}
