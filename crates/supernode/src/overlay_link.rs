//! The daemon's side of the overlay: `engine`'s [`Overlay`] driven on tokio and QUIC.
//!
//! - One QUIC connection per pair of supernodes (ALPN `switchboard/1`, the peer's ticket must
//!   carry the `supernode` or `mega` role), dialed on first need from the listening socket or
//!   accepted by it, and used both ways.
//! - Every overlay message (membership packets included) travels as one frame on its own
//!   unidirectional stream: no head-of-line blocking between a lookup and a publish batch, and
//!   a lost connection loses only what SWIM and the re-publication already tolerate.
//! - Records arriving in `Publish` and `LookupResult` are verified here (ticket signed by the
//!   trusted auth key, record signed by the device, fresh) before the overlay sees them: a
//!   supernode never takes another's word for a record.
//! - The driver task sleeps until the overlay's next timeout or until a session or a peer
//!   reader kicks it, then sends what the overlay produced.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_engine::overlay::{LookupId, LookupsFull, Overlay, OverlayOutput};
use switchboard_net::framed::{read_frame, write_frame};
use switchboard_net::{now_unix, CloseCode, Dialer};
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::OverlayMessage;
use switchboard_proto::{NodeId, PeerAddr, Record, Role, Username};
use tokio::sync::{oneshot, Notify, Semaphore};
use tracing::Instrument;

use crate::server::{bump, lock, Shared};

/// Overlay sends in flight at once; past it a send is dropped and counted. Everything the
/// overlay sends is soft state that the next membership round or re-publication repeats, and a
/// wedged peer must not pile up tasks. 1,024 covers a full re-publication burst to dozens of
/// owners.
pub const MAX_INFLIGHT_SENDS: usize = 1024;

/// Overlay connections kept at once (accepted and dialed); one per other supernode, so this is
/// the largest overlay a supernode joins fully.
pub const MAX_PEER_CONNECTIONS: usize = 4096;

/// How long a dial to a peer may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// How often seeds are dialed again while this supernode is alone.
const SEED_RETRY: Duration = Duration::from_secs(2);

/// Counters of the overlay link, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct LinkMetrics {
    /// Overlay frames sent.
    pub sent_total: AtomicU64,
    /// Overlay frames received.
    pub received_total: AtomicU64,
    /// Sends dropped (no connection, too many in flight).
    pub send_dropped_total: AtomicU64,
    /// Frames refused as malformed.
    pub malformed_total: AtomicU64,
    /// Records refused because they did not verify.
    pub records_refused_total: AtomicU64,
    /// Lookups that went to the owners.
    pub remote_lookups_total: AtomicU64,
}

/// The overlay and its connections; see the module doc.
#[derive(Debug)]
pub struct OverlayLink {
    overlay: Mutex<Overlay>,
    kick: Notify,
    peers: Mutex<HashMap<NodeId, quinn::Connection>>,
    dialing: Mutex<HashSet<NodeId>>,
    lookups: Mutex<HashMap<LookupId, oneshot::Sender<Vec<Record>>>>,
    dialer: Mutex<Dialer>,
    inflight: Arc<Semaphore>,
    /// Counters.
    pub metrics: LinkMetrics,
}

impl OverlayLink {
    /// Wraps `overlay`; `dialer` opens connections to peers from the listening socket.
    pub fn new(overlay: Overlay, dialer: Dialer) -> Self {
        Self {
            overlay: Mutex::new(overlay),
            kick: Notify::new(),
            peers: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashSet::new()),
            lookups: Mutex::new(HashMap::new()),
            dialer: Mutex::new(dialer),
            inflight: Arc::new(Semaphore::new(MAX_INFLIGHT_SENDS)),
            metrics: LinkMetrics::default(),
        }
    }

    /// Runs `f` on the overlay and wakes the driver to send what it produced.
    pub fn with<R>(&self, f: impl FnOnce(&mut Overlay) -> R) -> R {
        let result = f(&mut lock(&self.overlay));
        self.kick.notify_one();
        result
    }

    /// Reads the overlay without waking the driver.
    pub fn read<R>(&self, f: impl FnOnce(&Overlay) -> R) -> R {
        f(&lock(&self.overlay))
    }

    /// Presents a refreshed ticket on the dials from now on.
    pub fn set_dialer(&self, dialer: Dialer) {
        *lock(&self.dialer) = dialer;
    }

    /// Looks `user` up at their owners; the first verified answer, or nothing after the
    /// overlay's lookup timeout.
    pub async fn lookup(
        &self,
        now: switchboard_engine::Time,
        user: Username,
    ) -> Result<Vec<Record>, LookupsFull> {
        let (tx, rx) = oneshot::channel();
        {
            let mut overlay = lock(&self.overlay);
            let id = overlay.lookup(now, user)?;
            lock(&self.lookups).insert(id, tx);
        }
        bump(&self.metrics.remote_lookups_total);
        self.kick.notify_one();
        // The overlay always answers (found, empty, or timed out); the outer timeout only
        // guards against a driver that stopped.
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(records)) => Ok(records),
            _ => Ok(Vec::new()),
        }
    }

    /// Live members as alternatives for `Busy` and `Redirect`, least loaded first, standby
    /// megas and this node excluded.
    pub fn alternatives(&self) -> Vec<PeerAddr> {
        let overlay = lock(&self.overlay);
        overlay
            .membership()
            .least_loaded()
            .into_iter()
            .map(|(_, m)| PeerAddr {
                node: m.node,
                addr: m.addr,
            })
            .collect()
    }
}

/// Whether a peer's ticket lets it speak the overlay.
pub fn is_peer_role(role: Role) -> bool {
    matches!(role, Role::Supernode | Role::Mega | Role::Promoted)
}

/// The driver: timers, then whatever the overlay wants sent.
pub async fn run(shared: Arc<Shared>) {
    let link = &shared.overlay;
    loop {
        let now = shared.now();
        let next = link.read(Overlay::next_timeout);
        let sleep = next.map_or(Duration::from_secs(1), |at| at.since(now));
        tokio::select! {
            () = tokio::time::sleep(sleep) => {
                let now = shared.now();
                lock(&link.overlay).handle_timeout(now);
            }
            () = link.kick.notified() => {}
        }
        flush(&shared);
    }
}

/// Takes the overlay's outputs and acts on them.
fn flush(shared: &Arc<Shared>) {
    let outputs: Vec<OverlayOutput> = {
        let mut overlay = lock(&shared.overlay.overlay);
        std::iter::from_fn(|| overlay.poll_output()).collect()
    };
    for output in outputs {
        match output {
            OverlayOutput::Send { to, addr, message } => send(shared, to, addr, message),
            OverlayOutput::LookupDone { id, records, .. } => {
                if let Some(waiter) = lock(&shared.overlay.lookups).remove(&id) {
                    let _ = waiter.send(records);
                }
            }
            // Delivered now, or held and batched while shedding.
            OverlayOutput::Presence(event) => crate::shedding::presence(shared, event),
            OverlayOutput::Member(event) => match event {
                switchboard_engine::membership::MemberEvent::Up(member) => {
                    tracing::info!(peer = %member.node.short(), addr = %member.addr, "supernode joined the overlay");
                    lock(&shared.status).member_up(&member);
                }
                switchboard_engine::membership::MemberEvent::Renewed(member) => {
                    tracing::info!(peer = %member.node.short(), addr = %member.addr, generation = member.generation, "supernode renewed its statement");
                    lock(&shared.status).member_up(&member);
                }
                switchboard_engine::membership::MemberEvent::Down(member) => {
                    tracing::info!(peer = %member.node.short(), addr = %member.addr, "supernode left the overlay");
                    lock(&shared.status).member_down(&member);
                    if let Some(connection) = lock(&shared.overlay.peers).remove(&member.node) {
                        connection.close(0u32.into(), b"declared down");
                    }
                }
            },
        }
    }
}

/// Sends one message on its own stream, dialing first if needed.
fn send(shared: &Arc<Shared>, to: NodeId, addr: SocketAddr, message: OverlayMessage) {
    let link = &shared.overlay;
    let Ok(permit) = Arc::clone(&link.inflight).try_acquire_owned() else {
        bump(&link.metrics.send_dropped_total);
        return;
    };
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let _permit = permit;
        let Some(connection) = connection_to(&shared, to, addr).await else {
            bump(&shared.overlay.metrics.send_dropped_total);
            return;
        };
        let sent = async {
            let mut stream = connection.open_uni().await.ok()?;
            write_frame(&mut stream, &message).await.ok()?;
            stream.finish().ok()
        };
        match tokio::time::timeout(DIAL_TIMEOUT, sent).await {
            Ok(Some(())) => bump(&shared.overlay.metrics.sent_total),
            _ => bump(&shared.overlay.metrics.send_dropped_total),
        }
    });
}

/// The connection to `node`, dialing `addr` if there is none (one dial per node at a time).
async fn connection_to(
    shared: &Arc<Shared>,
    node: NodeId,
    addr: SocketAddr,
) -> Option<quinn::Connection> {
    if let Some(connection) = lock(&shared.overlay.peers).get(&node) {
        if connection.close_reason().is_none() {
            return Some(connection.clone());
        }
    }
    if !lock(&shared.overlay.dialing).insert(node) {
        return None;
    }
    let dialer = lock(&shared.overlay.dialer).clone();
    let dialed = dialer.connect_to(node, addr, DIAL_TIMEOUT).await;
    lock(&shared.overlay.dialing).remove(&node);
    match dialed {
        Ok(peer)
            if peer
                .peer
                .ticket
                .as_ref()
                .is_some_and(|t| shared.is_revoked(t)) =>
        {
            tracing::warn!(peer = %node.short(), "dialed an overlay peer whose ticket is revoked");
            peer.close(CloseCode::Unauthorized, "ticket revoked");
            None
        }
        Ok(peer) => {
            let connection = peer.connection.clone();
            adopt(shared, node, connection.clone());
            Some(connection)
        }
        Err(e) => {
            tracing::debug!(peer = %node.short(), %addr, "overlay dial failed: {e}");
            None
        }
    }
}

/// Keeps `connection` as the one to `node` and reads what the peer sends on it.
fn adopt(shared: &Arc<Shared>, node: NodeId, connection: quinn::Connection) {
    {
        let mut peers = lock(&shared.overlay.peers);
        if peers.len() >= MAX_PEER_CONNECTIONS && !peers.contains_key(&node) {
            connection.close(0u32.into(), b"too many overlay connections");
            return;
        }
        peers.insert(node, connection.clone());
    }
    // A connection a supernode accepted was set up as a client's (4 streams): now that the
    // peer is known to be a supernode, grant it an overlay peer's streams.
    connection.set_max_concurrent_uni_streams(quinn::VarInt::from_u32(
        switchboard_net::config::OVERLAY_MAX_UNI_STREAMS,
    ));
    let span = tracing::info_span!("peer", peer = %node.short());
    tokio::spawn(serve_peer(Arc::clone(shared), node, connection).instrument(span));
}

/// Closes overlay connections whose peer's ticket expired more than the clock-skew allowance
/// ago (the grace a new handshake grants too): a peer that refreshed its ticket dials again
/// and presents the new one; one that could not is an overlay member no longer. Returns how
/// many were closed.
pub fn close_expired_peers(shared: &Shared, now: switchboard_proto::UnixTime) -> usize {
    let grace = switchboard_proto::limits::CLOCK_SKEW_SECS;
    let mut peers = lock(&shared.overlay.peers);
    let before = peers.len();
    peers.retain(|node, connection| {
        let expires_at = switchboard_net::peer_certificate(connection)
            .ok()
            .and_then(|certificate| certificate.ticket)
            .map(|ticket| ticket.body_unverified().expires_at);
        let expired = expires_at.is_none_or(|at| now.0 >= at.0.saturating_add(grace));
        if expired {
            tracing::info!(peer = %node.short(), "overlay peer's ticket expired; closing");
            connection.close(
                CloseCode::Unauthorized.code(),
                b"ticket expired; refresh it and dial again",
            );
        }
        !expired
    });
    before - peers.len()
}

/// Closes overlay connections whose peer's ticket is revoked (its account disabled or its key
/// revoked): it is a member no longer, and its dials are refused from now on. Returns how many.
pub fn close_revoked_peers(shared: &Shared) -> usize {
    let mut peers = lock(&shared.overlay.peers);
    let before = peers.len();
    peers.retain(|node, connection| {
        let revoked = switchboard_net::peer_certificate(connection)
            .ok()
            .and_then(|certificate| certificate.ticket)
            .is_some_and(|ticket| shared.is_revoked(ticket.body_unverified()));
        if revoked {
            tracing::warn!(peer = %node.short(), "overlay peer's ticket is revoked; closing");
            connection.close(CloseCode::Unauthorized.code(), b"ticket revoked");
        }
        !revoked
    });
    before - peers.len()
}

/// Serves an accepted connection from a supernode (the session code hands it over).
pub async fn accepted(shared: Arc<Shared>, node: NodeId, connection: quinn::Connection) {
    adopt(&shared, node, connection);
}

/// Reads the streams a peer opens on `connection` until it closes.
async fn serve_peer(shared: Arc<Shared>, from: NodeId, connection: quinn::Connection) {
    while let Ok(mut stream) = connection.accept_uni().await {
        let message = match read_frame::<OverlayMessage>(&mut stream, MAX_FRAME_LEN).await {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(e) if e.is_malformed() => {
                bump(&shared.overlay.metrics.malformed_total);
                tracing::warn!(peer = %from.short(), "malformed overlay frame: {e}");
                connection.close(CloseCode::Malformed.code(), e.to_string().as_bytes());
                break;
            }
            Err(_) => continue,
        };
        bump(&shared.overlay.metrics.received_total);
        dispatch(&shared, from, message);
    }
    let mut peers = lock(&shared.overlay.peers);
    if peers
        .get(&from)
        .is_some_and(|c| c.stable_id() == connection.stable_id())
    {
        peers.remove(&from);
    }
}

/// Verifies records as the overlay requires; refused ones are counted and dropped.
fn verified(shared: &Shared, records: Vec<Record>) -> Vec<Record> {
    let now = now_unix();
    records
        .into_iter()
        .filter(|record| match shared.records.verify(record, now) {
            Ok(_) => true,
            Err(e) => {
                bump(&shared.overlay.metrics.records_refused_total);
                tracing::warn!("refused a record from a peer: {e}");
                false
            }
        })
        .collect()
}

fn dispatch(shared: &Arc<Shared>, from: NodeId, message: OverlayMessage) {
    let now = shared.now();
    let link = &shared.overlay;
    match message {
        OverlayMessage::Membership(payload) => {
            let result = link.with(|o| o.handle_membership(now, payload.as_slice()));
            if let Err(e) = result {
                tracing::debug!(peer = %from.short(), "{e}");
            }
        }
        OverlayMessage::MembershipSync(payload) => {
            let result = link.with(|o| o.handle_membership_sync(now, from, payload.as_slice()));
            if let Err(e) = result {
                tracing::debug!(peer = %from.short(), "{e}");
            }
        }
        OverlayMessage::Publish { records } => {
            let records = verified(shared, records.into_inner());
            link.with(|o| o.handle_publish(now, from, records));
        }
        OverlayMessage::Withdraw { keys } => {
            link.with(|o| o.handle_withdraw(from, keys.into_inner()))
        }
        OverlayMessage::Lookup { user } => link.with(|o| o.handle_lookup_request(from, user)),
        OverlayMessage::LookupResult { user, records } => {
            let records = verified(shared, records.into_inner());
            link.with(|o| o.handle_lookup_result(from, &user, records));
        }
        OverlayMessage::Subscribe { users } => {
            link.with(|o| o.handle_subscribe(from, users.into_inner()))
        }
        OverlayMessage::Unsubscribe { users } => {
            link.with(|o| o.handle_unsubscribe(from, users.into_inner()));
        }
        OverlayMessage::Presence(event) => link.with(|o| o.handle_presence(from, event)),
        OverlayMessage::Hello(_)
        | OverlayMessage::Welcome(_)
        | OverlayMessage::Ack
        | OverlayMessage::Error(_)
        | OverlayMessage::Goodbye => {}
    }
}

/// Joins the overlay through the configured seeds: dials each (learning its node id from its
/// certificate) until one answers, and again whenever this supernode finds itself alone.
pub async fn join_seeds(shared: Arc<Shared>) {
    let seeds = shared.config.seeds.clone();
    if seeds.is_empty() {
        return;
    }
    loop {
        let alone = shared.overlay.read(|o| o.membership().live_count() <= 1);
        if alone {
            for addr in &seeds {
                join_at(&shared, *addr, None).await;
            }
        }
        tokio::time::sleep(SEED_RETRY).await;
    }
}

/// Joins through the supernodes of the auth-server's bootstrap list that this one does not
/// know as members yet.
pub fn join_known(shared: &Arc<Shared>, peers: &[PeerAddr]) {
    let unknown: Vec<PeerAddr> = shared.overlay.read(|o| {
        peers
            .iter()
            .filter(|p| p.node != shared.node && !o.membership().is_live(&p.node))
            .copied()
            .collect()
    });
    for peer in unknown {
        let shared = Arc::clone(shared);
        tokio::spawn(async move { join_at(&shared, peer.addr, Some(peer.node)).await });
    }
}

async fn join_at(shared: &Arc<Shared>, addr: SocketAddr, node: Option<NodeId>) {
    if addr == shared.public_addr {
        return;
    }
    let dialer = lock(&shared.overlay.dialer).clone();
    let dialed = match node {
        Some(node) => dialer.connect_to(node, addr, DIAL_TIMEOUT).await,
        None => dialer.connect(addr, DIAL_TIMEOUT).await,
    };
    match dialed {
        Ok(peer) if peer.peer.node == shared.node => {}
        Ok(peer) => {
            let node = peer.peer.node;
            adopt(shared, node, peer.connection);
            let now = shared.now();
            shared.overlay.with(|o| o.join(now, node, addr));
            tracing::info!(peer = %node.short(), %addr, "joining the overlay");
        }
        Err(e) => tracing::debug!(%addr, "seed not reachable: {e}"),
    }
}

/// Counter value helper for metrics.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
