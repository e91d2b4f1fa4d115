//! The supernode daemon: accepts clients, runs `engine`'s directory and admission on their
//! requests, pushes presence, and drains on SIGTERM.
//!
//! Tasks, all owned by [`Server::run`]'s `JoinSet`:
//! - the accept loop (this function): handshake gate, then one task per connection;
//! - one task per client connection ([`crate::session`]), plus its push writer;
//! - the timer: lease expiry and presence delivery every [`TICK`];
//! - the auth link ([`crate::auth_link`]): announcements and revocations;
//! - the metrics endpoint.
//!
//! Shutdown (SIGTERM), in order: refuse new connections; send every client `Redirect
//! {Draining}` with other supernodes, in jittered batches; give the redirects a moment to
//! leave; close every connection and the endpoint; exit 0, all within `drain_deadline`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;
use switchboard_engine::records::DEFAULT_VERIFIED_RECORDS;
use switchboard_engine::standby::StandbyPolicy;
use switchboard_engine::{Admission, Directory, RevocationList, Time, VerifiedRecords};
use switchboard_net::config::Role as TransportRole;
use switchboard_net::{
    server_config, transport_config, CloseCode, GateStats, HandshakeGate, Identity, Listener,
    PeerPolicy,
};
use switchboard_proto::messages::{RedirectReason, SupernodeMessage};
use switchboard_proto::version::ALPN_DIRECTORY;
use switchboard_proto::{
    BoundedVec, NodeId, PeerAddr, SecretKey, Ticket, TicketBody, TrustAnchor, Username,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::Config;

mod metrics;
pub mod status;

/// How often leases are expired and presence notices delivered. Presence within a quarter
/// second is plenty for humans; lease expiry only needs to be within a lease's precision.
pub const TICK: Duration = Duration::from_millis(250);

/// Sessions one device (node key) may hold at once: `client online` plus a few one-shot
/// commands (`lookup`, `send`, `watch`) run from the same profile. Past it, the oldest session
/// of that device is closed.
pub const MAX_SESSIONS_PER_NODE: usize = 4;

/// Pushes queued per client before further ones are dropped (presence sheds first). A client
/// reads pushes as they come; 64 covers a burst of its contacts changing at once.
pub const PUSH_QUEUE: usize = 64;

/// Clients redirected per batch at shutdown, and the jitter between batches: 10,000 clients
/// leave over about a second instead of landing on the alternatives in the same millisecond.
const REDIRECT_BATCH: usize = 100;
const REDIRECT_JITTER_MS: u64 = 100;

/// The daemon's counters, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Registrations accepted.
    pub registrations_total: AtomicU64,
    /// Lookups answered.
    pub lookups_total: AtomicU64,
    /// `Busy` answers.
    pub busy_total: AtomicU64,
    /// Handshakes refused by the handshake gate.
    pub handshakes_refused_total: AtomicU64,
    /// Handshakes that failed (refused tickets included).
    pub handshakes_failed_total: AtomicU64,
    /// Clients refused as unauthorized (revoked tickets).
    pub unauthorized_total: AtomicU64,
    /// Clients refused for their software version.
    pub version_rejected_total: AtomicU64,
    /// Connections closed for a malformed frame.
    pub malformed_total: AtomicU64,
    /// Redirects sent.
    pub redirects_total: AtomicU64,
    /// Presence events dropped because a client's push queue was full.
    pub presence_dropped_total: AtomicU64,
    /// Connections closed for not saying `Hello` in time.
    pub hello_timeouts_total: AtomicU64,
    /// Sessions refused because their user held its share.
    pub user_sessions_refused_total: AtomicU64,
    /// Registrations withdrawn because the device's last session ended.
    pub withdrawn_on_close_total: AtomicU64,
    /// Times this standby mega stepped in.
    pub mega_activations_total: AtomicU64,
    /// Times it stepped back to standby.
    pub mega_returns_total: AtomicU64,
}

/// Bumps a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A live client session, as the rest of the daemon sees it.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Distinguishes a session from a later one of the same node.
    pub id: u64,
    /// The connection.
    pub connection: quinn::Connection,
    /// Its push queue.
    pub push: mpsc::Sender<SupernodeMessage>,
    /// Its ticket (checked against revocations and expiry while the session lasts).
    pub ticket: TicketBody,
}

/// State shared by the daemon's tasks.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The auth-server's key.
    pub anchor: TrustAnchor,
    /// Records and tickets whose signatures this supernode checked (registrations, replicas
    /// and lookup answers): a refresh with the same ticket costs one check instead of two.
    pub records: VerifiedRecords,
    /// This supernode's id.
    pub node: NodeId,
    /// The address announced to the auth-server.
    pub public_addr: SocketAddr,
    started: Instant,
    /// The directory.
    pub directory: Mutex<Directory>,
    /// Admission control.
    pub admission: Mutex<Admission>,
    /// Live sessions by device (at most [`MAX_SESSIONS_PER_NODE`] each).
    pub sessions: Mutex<HashMap<NodeId, Vec<SessionHandle>>>,
    /// Sessions held per user (at most `session::MAX_SESSIONS_PER_USER` each; one entry per
    /// user in session, so bounded by the capacity).
    pub user_sessions: Mutex<HashMap<Username, usize>>,
    /// The revocation list, as fetched from the auth-server so far.
    pub revoked: Mutex<RevocationList>,
    /// A standby mega: whether it is active now (admitting clients).
    pub mega_active: AtomicBool,
    /// A standby mega's policy of when to step in and back.
    pub standby: Mutex<StandbyPolicy>,
    /// Woken when this supernode's own ticket is found revoked: the server drains and stops.
    stop: tokio::sync::Notify,
    /// Whether it stopped for that reason.
    revoked_self: AtomicBool,
    /// Other supernodes from the auth-server's bootstrap list, for `Busy` and `Redirect`
    /// while the overlay knows no member.
    pub alternatives: Mutex<Vec<PeerAddr>>,
    /// The overlay: membership, the one-hop index, remote lookups and watches.
    pub overlay: crate::overlay_link::OverlayLink,
    next_session: AtomicU64,
    draining: AtomicBool,
    /// Counters.
    pub metrics: Metrics,
    /// This supernode's node key (nominations and dial-backs are signed with it).
    pub key: SecretKey,
    /// The role of this supernode's own ticket (`promoted` on a promoted client).
    pub own_role: switchboard_proto::Role,
    /// Promotion offers, nominations and, on a promoted supernode, its demotion policy.
    pub promotions: Mutex<crate::promotion::Promotions>,
    /// Promotion counters.
    pub promotion_metrics: crate::promotion::PromotionMetrics,
    /// Whether it stopped because it stepped down (a promoted supernode).
    demoted: AtomicBool,
    /// Feature shedding and handoff under overload.
    pub shedding: Mutex<crate::shedding::Shedding>,
    /// Shedding counters.
    pub shed_metrics: crate::shedding::ShedMetrics,
    /// The listener's handshake gate counters (Retries, refusals by cap and by source).
    pub gate: Arc<GateStats>,
    /// What the status page shows of the recent past: membership events, members down.
    pub status: Mutex<status::StatusLog>,
    /// Relay sessions and their caps.
    pub relays: Mutex<switchboard_engine::Relays>,
    /// Punch and relay counters.
    pub relay_metrics: crate::relay::RelayMetrics,
}

/// Locks a mutex, recovering from poisoning (the state stays consistent across a panic in
/// one connection's task, which is contained and does not stop the others).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// The engine's clock.
    pub fn now(&self) -> Time {
        Time(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// A fresh session id.
    pub fn session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the SIGTERM drain has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Whether this supernode admits clients now: always, but for a standby mega that has not
    /// stepped in.
    pub fn admits_clients(&self) -> bool {
        self.config.mode != crate::config::Mode::MegaStandby
            || self.mega_active.load(Ordering::Acquire)
    }

    /// How it serves now, as announced to the auth-server.
    pub fn service_mode(&self) -> switchboard_proto::messages::ServiceMode {
        use switchboard_proto::messages::ServiceMode;
        match self.config.mode {
            crate::config::Mode::Normal => ServiceMode::Normal,
            crate::config::Mode::Mega => ServiceMode::Mega,
            crate::config::Mode::MegaStandby if self.admits_clients() => ServiceMode::Mega,
            crate::config::Mode::MegaStandby => ServiceMode::MegaStandby,
        }
    }

    /// A promoted supernode steps down: drain with `Redirect { Demoted }` and stop.
    pub fn stop_demoted(&self) {
        self.demoted.store(true, Ordering::Release);
        self.stop.notify_one();
    }

    /// Whether the server stopped because it stepped down.
    pub fn was_demoted(&self) -> bool {
        self.demoted.load(Ordering::Acquire)
    }

    /// Drains and stops the server: its own ticket is revoked.
    pub fn stop_revoked(&self) {
        self.revoked_self.store(true, Ordering::Release);
        self.stop.notify_one();
    }

    /// Whether the server stopped because its own ticket was revoked.
    pub fn was_revoked(&self) -> bool {
        self.revoked_self.load(Ordering::Acquire)
    }

    /// Whether a ticket is revoked.
    pub fn is_revoked(&self, ticket: &TicketBody) -> bool {
        lock(&self.revoked).is_revoked(ticket)
    }

    /// Alternatives to offer, this node excluded: the overlay's live members, least loaded
    /// first; the auth-server's bootstrap list while the overlay knows nobody.
    pub fn alternatives(
        &self,
    ) -> BoundedVec<PeerAddr, { switchboard_proto::limits::MAX_ALTERNATIVES }> {
        let node = self.node;
        let members = self.overlay.alternatives();
        if !members.is_empty() {
            return BoundedVec::truncating(members.into_iter().filter(|p| p.node != node));
        }
        BoundedVec::truncating(
            lock(&self.alternatives)
                .iter()
                .filter(|p| p.node != node)
                .copied(),
        )
    }

    /// Closes the sessions whose tickets expired more than the clock-skew allowance ago (the
    /// grace the handshake grants too): a client that could not refresh its ticket is served
    /// no longer than a new connection with that ticket would be. Returns how many.
    pub fn close_expired(&self, now: switchboard_proto::UnixTime) -> usize {
        let grace = switchboard_proto::limits::CLOCK_SKEW_SECS;
        let mut closed = 0;
        for session in lock(&self.sessions).values().flatten() {
            if now.0 >= session.ticket.expires_at.0.saturating_add(grace) {
                bump(&self.metrics.unauthorized_total);
                session.connection.close(
                    CloseCode::Unauthorized.code(),
                    b"ticket expired; run `client login` again",
                );
                closed += 1;
            }
        }
        closed
    }

    /// Closes the sessions whose tickets are revoked now.
    pub fn close_revoked(&self) {
        let revoked = lock(&self.revoked);
        for session in lock(&self.sessions).values().flatten() {
            if revoked.is_revoked(&session.ticket) {
                bump(&self.metrics.unauthorized_total);
                session
                    .connection
                    .close(CloseCode::Unauthorized.code(), b"ticket revoked");
            }
        }
    }
}

/// The daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS configuration.
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
    /// The trust anchor is not a usable key.
    #[error("trust: {0}")]
    Trust(String),
}

/// The bound daemon.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    listener: Listener,
    metrics: Option<tokio::net::TcpListener>,
    key: SecretKey,
}

impl Server {
    /// Binds the sockets with `key` and `ticket` as the TLS identity.
    pub async fn bind(
        config: Config,
        key: SecretKey,
        ticket: Ticket,
        alternatives: Vec<PeerAddr>,
    ) -> Result<Self, StartError> {
        let anchor =
            TrustAnchor::new(config.trust).map_err(|e| StartError::Trust(e.to_string()))?;
        let policy = PeerPolicy::any_ticket(anchor.clone());
        let identity = Identity::new(key.clone(), Some(ticket.clone()));
        let tls = server_config(
            &identity,
            policy.clone(),
            &[ALPN_DIRECTORY],
            transport_config(TransportRole::ClientFacing),
        )?;
        let listener = Listener::bind(config.listen, tls, policy, HandshakeGate::default())
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let metrics = match config.metrics {
            Some(addr) => Some(
                switchboard_net::metrics::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let bound = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let public_addr = config.public_addr.unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], bound.port()))
            } else {
                bound
            }
        });
        let started = Instant::now();
        let overlay = build_overlay(
            &config,
            &key,
            &ticket,
            public_addr,
            &anchor,
            listener.endpoint(),
        )?;
        let shared = Arc::new(Shared {
            overlay,
            node: key.node_id(),
            public_addr,
            records: VerifiedRecords::new(anchor.clone(), DEFAULT_VERIFIED_RECORDS),
            anchor,
            started,
            directory: Mutex::new(Directory::new(config.directory)),
            admission: Mutex::new(Admission::new(Time::ZERO, config.admission)),
            sessions: Mutex::new(HashMap::new()),
            user_sessions: Mutex::new(HashMap::new()),
            revoked: Mutex::new(RevocationList::new()),
            stop: tokio::sync::Notify::new(),
            mega_active: AtomicBool::new(false),
            standby: Mutex::new(StandbyPolicy::new(config.standby)),
            revoked_self: AtomicBool::new(false),
            alternatives: Mutex::new(alternatives),
            next_session: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            metrics: Metrics::default(),
            key: key.clone(),
            own_role: ticket.body_unverified().role,
            promotions: Mutex::new(crate::promotion::Promotions::new(
                &config.promotion,
                ticket.body_unverified().role,
                Time::ZERO,
            )),
            promotion_metrics: crate::promotion::PromotionMetrics::default(),
            demoted: AtomicBool::new(false),
            shedding: Mutex::new(crate::shedding::Shedding::new(config.shedding)),
            shed_metrics: crate::shedding::ShedMetrics::default(),
            relays: Mutex::new(switchboard_engine::Relays::new(
                switchboard_engine::Time::ZERO,
                config.relay,
            )),
            relay_metrics: crate::relay::RelayMetrics::default(),
            gate: listener.stats(),
            status: Mutex::new(status::StatusLog::default()),
            config,
        });
        Ok(Self {
            shared,
            listener,
            metrics,
            key,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics address, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.local_addr().ok())
    }

    /// The state shared with the tasks.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let Self {
            shared,
            listener,
            metrics,
            key,
        } = self;
        let mut tasks = JoinSet::new();
        if let Some(metrics) = metrics {
            let (shared, status) = (Arc::clone(&shared), Arc::clone(&shared));
            tasks.spawn(switchboard_net::metrics::serve(
                metrics,
                switchboard_net::metrics::Pages {
                    metrics: Arc::new(move || shared.render_metrics()),
                    status: Some(Arc::new(move || status.render_status())),
                },
            ));
        }
        tasks.spawn(timer(Arc::clone(&shared)));
        tasks.spawn(crate::overlay_link::run(Arc::clone(&shared)));
        tasks.spawn(crate::overlay_link::join_seeds(Arc::clone(&shared)));
        tasks.spawn(crate::auth_link::run(
            Arc::clone(&shared),
            key,
            listener.endpoint().clone(),
        ));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = shared.stop.notified() => break,
                handshake = listener.accept() => {
                    let Some(handshake) = handshake else { break };
                    let now = shared.now();
                    if lock(&shared.admission).handshake(now).is_err() {
                        bump(&shared.metrics.handshakes_refused_total);
                        handshake.refuse();
                        continue;
                    }
                    tasks.spawn(crate::session::run(Arc::clone(&shared), handshake));
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        let deadline = shared.config.drain_deadline;
        if tokio::time::timeout(deadline, drain(&shared, &listener))
            .await
            .is_err()
        {
            tracing::warn!("drain took longer than {deadline:?}; closing anyway");
        }
        listener
            .shutdown(
                CloseCode::ShuttingDown,
                "supernode shutting down",
                Duration::from_secs(1),
            )
            .await;
        tasks.shutdown().await;
        tracing::info!("stopped");
    }
}

/// The SIGTERM drain: no new connections, jittered redirects, then closes.
async fn drain(shared: &Arc<Shared>, listener: &Listener) {
    shared.draining.store(true, Ordering::Release);
    // Leave the overlay first: tell the members, who spread it, instead of letting them time
    // us out. Our clients' records stay at their owners until their new homes publish newer
    // ones, so that no watcher sees a moved client go offline.
    let now = shared.now();
    let handed_off = shared.overlay.with(|o| {
        o.leave(now);
        o.stats().handed_off
    });
    tracing::info!(
        records = handed_off,
        "left the overlay; the records held here went to their next owners"
    );
    listener.endpoint().set_server_config(None);
    let sessions: Vec<SessionHandle> = lock(&shared.sessions).values().flatten().cloned().collect();
    let reason = if shared.was_demoted() {
        RedirectReason::Demoted
    } else {
        RedirectReason::Draining
    };
    tracing::info!(
        clients = sessions.len(),
        ?reason,
        "draining: redirecting clients"
    );
    let targets = shared.alternatives();
    // The plan is drawn before the loop: the thread's RNG must not live across an await.
    let plan = redirect_plan(sessions.len(), &mut rand::thread_rng());
    for (batch, pause) in plan {
        for session in sessions.get(batch).unwrap_or_default() {
            let redirect = SupernodeMessage::Redirect {
                reason,
                targets: targets.clone(),
            };
            if session.push.try_send(redirect).is_ok() {
                bump(&shared.metrics.redirects_total);
            }
        }
        tokio::time::sleep(pause).await;
    }
    // Let the push writers put the redirects on the wire before the connections close.
    let flushed = async {
        while sessions
            .iter()
            .any(|s| s.push.capacity() < s.push.max_capacity())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), flushed).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for session in &sessions {
        session
            .connection
            .close(CloseCode::ShuttingDown.code(), b"supernode draining");
    }
}

/// How `clients` sessions are redirected at shutdown: batches of [`REDIRECT_BATCH`] (index
/// ranges), each followed by a pause of up to [`REDIRECT_JITTER_MS`].
pub(crate) fn redirect_plan(
    clients: usize,
    rng: &mut impl Rng,
) -> Vec<(std::ops::Range<usize>, Duration)> {
    (0..clients)
        .step_by(REDIRECT_BATCH)
        .map(|start| {
            let pause = Duration::from_millis(rng.gen_range(0..=REDIRECT_JITTER_MS));
            (start..(start + REDIRECT_BATCH).min(clients), pause)
        })
        .collect()
}

/// Expires leases every [`TICK`] and reports the load to the overlay. Presence reaches
/// watchers through the overlay (the owners of each watched user), local users included, so
/// the directory's own notices are discarded here.
async fn timer(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = shared.now();
        {
            let mut directory = lock(&shared.directory);
            directory.handle_timeout(now);
            while directory.poll_notice().is_some() {}
        }
        let clients = u32::try_from(lock(&shared.admission).clients()).unwrap_or(u32::MAX);
        shared.overlay.with(|o| o.report_load(now, clients));
        if shared.config.mode == crate::config::Mode::MegaStandby {
            crate::standby::tick(&shared, now);
        }
        crate::promotion::tick(&shared, now);
        crate::shedding::tick(&shared, now);
        let unix = switchboard_net::now_unix();
        shared.close_expired(unix);
        crate::overlay_link::close_expired_peers(&shared, unix);
    }
}

/// The overlay of this supernode, and the dialer it reaches its peers with (from the
/// listening socket, presenting the same ticket).
fn build_overlay(
    config: &Config,
    key: &SecretKey,
    ticket: &Ticket,
    public_addr: SocketAddr,
    anchor: &TrustAnchor,
    endpoint: &quinn::Endpoint,
) -> Result<crate::overlay_link::OverlayLink, StartError> {
    use switchboard_engine::membership::{MemberInfo, MemberRole, Signer};
    let role = match config.mode {
        crate::config::Mode::Normal => MemberRole::Supernode,
        crate::config::Mode::Mega => MemberRole::Mega,
        crate::config::Mode::MegaStandby => MemberRole::Standby,
    };
    // A restarted supernode must win over its former self: its generation is its start time.
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let signer = Signer {
        key: key.clone(),
        ticket: ticket.clone(),
    };
    let me = MemberInfo::signed(
        &signer,
        public_addr,
        role,
        u32::try_from(config.admission.capacity).unwrap_or(u32::MAX),
        generation,
    )
    .map_err(|e| StartError::Trust(format!("this supernode's member statement: {e}")))?;
    let overlay = switchboard_engine::overlay::Overlay::new(
        Time::ZERO,
        me,
        signer,
        anchor.clone(),
        config.overlay.clone(),
        rand::random(),
    )
    .map_err(|e| StartError::Trust(format!("overlay configuration: {e}")))?;
    let dialer = overlay_dialer(key, ticket, anchor, endpoint)?;
    Ok(crate::overlay_link::OverlayLink::new(overlay, dialer))
}

/// A dialer for overlay connections presenting `ticket`.
pub fn overlay_dialer(
    key: &SecretKey,
    ticket: &Ticket,
    anchor: &TrustAnchor,
    endpoint: &quinn::Endpoint,
) -> Result<switchboard_net::Dialer, StartError> {
    // The peer dialed must be an overlay member: a user's ticket never is.
    let policy = PeerPolicy::overlay_peer(anchor.clone());
    let client = switchboard_net::client_config(
        &Identity::new(key.clone(), Some(ticket.clone())),
        policy.clone(),
        &[ALPN_DIRECTORY],
        transport_config(TransportRole::Overlay),
        switchboard_net::Resumption::Enabled,
    )?;
    Ok(switchboard_net::Dialer::on_endpoint(
        endpoint.clone(),
        client,
        policy,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_drain_of_250_clients_redirects_them_in_batches_of_100_with_jitter() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let plan = redirect_plan(250, &mut rng);
        let batches: Vec<_> = plan.iter().map(|(range, _)| range.clone()).collect();
        assert_eq!(batches, [0..100, 100..200, 200..250]);
        assert!(plan
            .iter()
            .all(|(_, pause)| *pause <= Duration::from_millis(REDIRECT_JITTER_MS)));
        assert!(redirect_plan(0, &mut rng).is_empty());
    }
}
