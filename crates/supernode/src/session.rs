//! One client connection: handshake, `Hello`, then requests on the session stream and pushes
//! on a stream the supernode opens.
//!
//! The client opens one bidirectional stream and sends `Hello` first; then request and answer
//! frames alternate on it (one long-lived stream: cheaper per request than a stream each,
//! BENCHMARKS.md). The supernode opens one unidirectional stream for pushes (presence,
//! redirects). A malformed frame closes the connection with `Malformed`; the supernode goes on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_engine::{Refused, RegisterError, RequestClass};
use switchboard_net::framed::{read_frame, write_frame, StreamError};
use switchboard_net::{now_unix, CloseCode, Handshake, PeerConnection, HANDSHAKE_TIMEOUT};
use switchboard_proto::limits::{MAX_FRAME_LEN, MAX_RECORDS_PER_USER, MAX_WATCHES_PER_CLIENT};
use switchboard_proto::messages::{ClientMessage, RecordKey, SupernodeMessage};
use switchboard_proto::version::{negotiate, Hello, VersionRange, Welcome};
use switchboard_proto::wire_error::{LimitKind, UnauthorizedReason, WireError};
use switchboard_proto::{BoundedVec, NodeId, SoftwareVersion, TicketBody, Username};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::server::{bump, lock, SessionHandle, Shared, MAX_SESSIONS_PER_NODE, PUSH_QUEUE};

/// How long a new connection may take, from the end of its handshake, to open its session
/// stream and say `Hello`. A real client sends `Hello` in the same flight as its handshake's
/// last packet, so this is one round trip plus a lost packet's retransmission (about a second
/// before an RTT sample); 2 s covers that on a WAN. Until then the connection holds one of
/// the capacity's places, so the deadline is what a connection that never says `Hello` costs.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// Sessions one user may hold at one supernode: as many devices as a lookup answer carries
/// records ([`MAX_RECORDS_PER_USER`], 8), each with its [`MAX_SESSIONS_PER_NODE`] (4). One
/// account with a farm of node keys fills at most these 32 places, not the supernode.
pub const MAX_SESSIONS_PER_USER: usize = MAX_RECORDS_PER_USER * MAX_SESSIONS_PER_NODE;

/// A client connection's place at this supernode: one of the capacity's places from the end of
/// its handshake (a connection that never says `Hello` is counted too), and once admitted, one
/// of its user's [`MAX_SESSIONS_PER_USER`]. Both are given back on drop.
struct Seat {
    shared: Arc<Shared>,
    user: Option<Username>,
}

impl Seat {
    /// A capacity place, or why there is none.
    fn take(shared: &Arc<Shared>) -> Result<Self, Refused> {
        lock(&shared.admission).open_session(&mut rand::thread_rng())?;
        Ok(Self {
            shared: Arc::clone(shared),
            user: None,
        })
    }

    /// One of `user`'s sessions; `false` when the user holds them all.
    fn claim_user(&mut self, user: &Username) -> bool {
        let mut sessions = lock(&self.shared.user_sessions);
        let held = sessions.entry(user.clone()).or_insert(0);
        if *held >= MAX_SESSIONS_PER_USER {
            return false;
        }
        *held += 1;
        self.user = Some(user.clone());
        true
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        lock(&self.shared.admission).close_session();
        if let Some(user) = self.user.take() {
            let mut sessions = lock(&self.shared.user_sessions);
            if let Some(held) = sessions.get_mut(&user) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    sessions.remove(&user);
                }
            }
        }
    }
}

/// This build's version.
pub fn software_version() -> SoftwareVersion {
    env!("CARGO_PKG_VERSION").parse().unwrap_or_default()
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// Drives one connection from handshake to close.
pub async fn run(shared: Arc<Shared>, handshake: Handshake) {
    let remote = handshake.remote_address();
    let connection = match handshake.complete(HANDSHAKE_TIMEOUT).await {
        Ok(connection) => connection,
        Err(e) => {
            bump(&shared.metrics.handshakes_failed_total);
            tracing::debug!(%remote, "handshake failed: {e}");
            return;
        }
    };
    let span = tracing::info_span!("client", peer = %connection.peer.node.short(), %remote);
    serve(shared, connection).instrument(span).await;
}

async fn serve(shared: Arc<Shared>, connection: PeerConnection) {
    let node = connection.peer.node;
    let Some(ticket) = connection.peer.ticket.clone() else {
        connection.close(CloseCode::Unauthorized, "no ticket");
        return;
    };
    if crate::overlay_link::is_peer_role(ticket.role) && shared.is_revoked(&ticket) {
        // A revoked client is answered at `Hello`; a revoked peer gets nothing.
        bump(&shared.metrics.unauthorized_total);
        {
            tracing::warn!("overlay peer with a revoked ticket refused");
            connection.close(CloseCode::Unauthorized, "ticket revoked");
            return;
        }
    }
    if crate::overlay_link::is_peer_role(ticket.role) {
        // Another supernode: this connection carries the overlay.
        crate::overlay_link::accepted(Arc::clone(&shared), node, connection.connection).await;
        return;
    }
    let seat = Seat::take(&shared);
    let hello_by = tokio::time::Instant::now() + HELLO_TIMEOUT;
    let streams = tokio::time::timeout_at(hello_by, connection.connection.accept_bi()).await;
    let Ok(Ok((mut send, mut recv))) = streams else {
        bump(&shared.metrics.hello_timeouts_total);
        connection.close(CloseCode::Malformed, "no Hello in time");
        return;
    };
    let hello = match tokio::time::timeout_at(
        hello_by,
        read_frame::<ClientMessage>(&mut recv, MAX_FRAME_LEN),
    )
    .await
    {
        Ok(Ok(Some(ClientMessage::Hello(hello)))) => hello,
        Ok(Ok(Some(_))) => {
            refuse(
                &shared,
                &connection,
                &mut send,
                WireError::malformed("the first message must be Hello"),
                CloseCode::Malformed,
            )
            .await;
            return;
        }
        Ok(Err(e)) if e.is_malformed() => {
            refuse(
                &shared,
                &connection,
                &mut send,
                WireError::malformed(&e.to_string()),
                CloseCode::Malformed,
            )
            .await;
            return;
        }
        Err(_) => {
            bump(&shared.metrics.hello_timeouts_total);
            connection.close(CloseCode::Malformed, "no Hello in time");
            return;
        }
        _ => return,
    };
    let _seat = match admit(&shared, &ticket, &hello, seat) {
        Ok(seat) => seat,
        Err((error, code)) => {
            refuse(&shared, &connection, &mut send, error, code).await;
            return;
        }
    };
    let welcome = SupernodeMessage::Welcome(Welcome {
        protocol: negotiate(VersionRange::CURRENT, hello.protocol)
            .unwrap_or(VersionRange::CURRENT.max),
        software: software_version(),
    });
    if write_frame(&mut send, &welcome).await.is_err() {
        return;
    }
    tracing::debug!(user = %ticket.user, version = %hello.software, "session open");
    // When this session began, for the promotion's minimum time in session (measured here,
    // not taken from the client's word).
    let opened = shared.now();

    let (push_tx, push_rx) = mpsc::channel(PUSH_QUEUE);
    let pusher = tokio::spawn(push_writer(connection.connection.clone(), push_rx));
    let id = shared.session_id();
    let evicted = {
        let mut sessions = lock(&shared.sessions);
        let mine = sessions.entry(node).or_default();
        mine.push(SessionHandle {
            id,
            connection: connection.connection.clone(),
            push: push_tx,
            ticket: ticket.clone(),
        });
        // Too many sessions of one device: the oldest goes (a reconnect whose old connection
        // has not timed out yet, usually).
        (mine.len() > MAX_SESSIONS_PER_NODE).then(|| mine.remove(0))
    };
    if let Some(evicted) = evicted {
        evicted
            .connection
            .close(CloseCode::Done.code(), b"replaced by a newer session");
    }

    loop {
        let request = match read_frame::<ClientMessage>(&mut recv, MAX_FRAME_LEN).await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(e) if e.is_malformed() => {
                bump(&shared.metrics.malformed_total);
                tracing::warn!("malformed frame: {e}");
                let _ = write_frame(
                    &mut send,
                    &SupernodeMessage::Error(WireError::malformed(&e.to_string())),
                )
                .await;
                connection.close(CloseCode::Malformed, &e.to_string());
                break;
            }
            Err(e) => {
                log_stream_end(&e);
                break;
            }
        };
        let answer = match request {
            ClientMessage::OfferPromotion { addr, capacity, .. } => {
                crate::promotion::offer(&shared, node, &ticket, opened, addr, capacity)
            }
            request => {
                // Read at every request: quinn follows a client whose NAT rebinds.
                let seen = connection.connection.remote_address();
                match handle(&shared, node, &ticket, seen, request) {
                    Step::Answer(answer) => answer,
                    Step::Lookup(user) => remote_lookup(&shared, user).await,
                    Step::Relay(callee) => {
                        crate::relay::open(&shared, node, connection.connection.clone(), callee)
                            .await
                    }
                    Step::End => break,
                }
            }
        };
        if write_frame(&mut send, &answer).await.is_err() {
            break;
        }
    }

    // Cleanup: when the device's last session ends, its watches end, and (unless it comes
    // back within the grace, here or elsewhere) so does its registration: presence follows
    // the session. The lease stays the safety net for a home that dies.
    let (unwatched, last) = {
        let mut sessions = lock(&shared.sessions);
        let mut unwatched = Vec::new();
        let mut last = false;
        if let Some(mine) = sessions.get_mut(&node) {
            mine.retain(|s| s.id != id);
            if mine.is_empty() {
                sessions.remove(&node);
                last = true;
                let mut directory = lock(&shared.directory);
                unwatched = directory.watched_by(&node);
                directory.disconnected(&node);
            }
        }
        (unwatched, last)
    };
    if last {
        crate::promotion::session_ended(&shared, &node);
    }
    if !unwatched.is_empty() {
        shared
            .overlay
            .with(|o| unwatched.iter().for_each(|user| o.unwatch(user)));
    }
    // A drain moves its clients with `Redirect` and withdraws their records as it leaves the
    // overlay: nothing to do here then.
    // A client redirected away (overload, a standby handing back) is its new home's to
    // publish: its record stays.
    if last && !shared.is_draining() && !crate::shedding::moved_away(&shared, &node) {
        tokio::spawn(withdraw_unless_back(
            Arc::clone(&shared),
            node,
            ticket.user.clone(),
        ));
    }
    pusher.abort();
    tracing::debug!("session closed");
}

/// How long a device whose last session ended keeps its registration, in case it comes back.
///
/// A device that lost its session through a network blip re-homes about as fast as its home
/// notices (both see the silence after the 1.5 s session idle timeout; it then waits at most
/// 250 ms and reconnects): within this grace its new registration (a newer record) reaches the
/// owners first, and the old home's withdrawal, which owners honour only from a record's
/// current home, changes nothing, so watchers see no flicker. A device that died is shown
/// offline about this much after its home noticed.
pub const PRESENCE_GRACE: Duration = Duration::from_secs(1);

/// After [`PRESENCE_GRACE`], ends `node`'s registration here and withdraws its record from its
/// owners, unless a session of it is open here again.
async fn withdraw_unless_back(shared: Arc<Shared>, node: NodeId, user: Username) {
    tokio::time::sleep(PRESENCE_GRACE).await;
    if lock(&shared.sessions).contains_key(&node) || shared.is_draining() {
        return;
    }
    let registered = {
        let mut directory = lock(&shared.directory);
        let registered = directory.is_registered(&node);
        directory.unregister(&node);
        registered
    };
    if registered {
        bump(&shared.metrics.withdrawn_on_close_total);
        tracing::debug!(device = %node.short(), "last session gone: registration withdrawn");
        let now = shared.now();
        shared
            .overlay
            .with(|o| o.unpublish(now, &RecordKey { user, node }));
    }
}

fn log_stream_end(error: &StreamError) {
    tracing::debug!("session stream ended: {error}");
}

/// Checks a `Hello` against revocation, versions, mode, capacity (the `seat` taken at the
/// handshake) and the user's share of sessions.
fn admit(
    shared: &Shared,
    ticket: &TicketBody,
    hello: &Hello,
    seat: Result<Seat, Refused>,
) -> Result<Seat, (WireError, CloseCode)> {
    if shared.is_revoked(ticket) {
        bump(&shared.metrics.unauthorized_total);
        return Err((
            WireError::Unauthorized {
                reason: UnauthorizedReason::Revoked,
            },
            CloseCode::Unauthorized,
        ));
    }
    let config = &shared.config;
    let too_old = config
        .minimum_version
        .is_some_and(|min| hello.software < min);
    if too_old || config.refuse_versions.contains(&hello.software) {
        bump(&shared.metrics.version_rejected_total);
        let minimum = config
            .minimum_version
            .unwrap_or_else(software_version)
            .max(software_version());
        return Err((
            WireError::VersionRejected { minimum },
            CloseCode::VersionRejected,
        ));
    }
    if negotiate(VersionRange::CURRENT, hello.protocol).is_err() {
        return Err((
            WireError::ProtocolUnsupported {
                min: VersionRange::CURRENT.min,
                max: VersionRange::CURRENT.max,
            },
            CloseCode::VersionRejected,
        ));
    }
    if !shared.admits_clients() {
        bump(&shared.metrics.busy_total);
        return Err((
            WireError::Busy {
                retry_after_ms: 5_000,
                alternatives: shared.alternatives(),
            },
            CloseCode::Busy,
        ));
    }
    match seat {
        Ok(mut seat) => {
            if seat.claim_user(&ticket.user) {
                Ok(seat)
            } else {
                bump(&shared.metrics.user_sessions_refused_total);
                Err((
                    WireError::LimitExceeded {
                        kind: LimitKind::Sessions,
                        max: u32::try_from(MAX_SESSIONS_PER_USER).unwrap_or(u32::MAX),
                    },
                    CloseCode::Busy,
                ))
            }
        }
        Err(Refused::Full(retry) | Refused::Overloaded(retry)) => {
            bump(&shared.metrics.busy_total);
            Err((
                WireError::Busy {
                    retry_after_ms: millis(retry),
                    alternatives: shared.alternatives(),
                },
                CloseCode::Busy,
            ))
        }
        Err(Refused::Handshake) => Err((WireError::Internal, CloseCode::Busy)),
    }
}

/// Answers a refused `Hello` and closes once the answer is sent.
async fn refuse(
    shared: &Shared,
    connection: &PeerConnection,
    send: &mut quinn::SendStream,
    error: WireError,
    code: CloseCode,
) {
    if code == CloseCode::Malformed {
        bump(&shared.metrics.malformed_total);
        tracing::warn!("refused: {error}");
    } else {
        tracing::debug!("refused: {error}");
    }
    let reason = error.to_string();
    let _ = write_frame(send, &SupernodeMessage::Error(error)).await;
    let _ = send.finish();
    // Give the answer a moment to leave before the close overtakes it.
    let _ = tokio::time::timeout(Duration::from_millis(500), send.stopped()).await;
    connection.close(code, &reason);
}

fn busy(shared: &Shared, retry: Duration) -> SupernodeMessage {
    bump(&shared.metrics.busy_total);
    SupernodeMessage::Error(WireError::Busy {
        retry_after_ms: millis(retry),
        alternatives: shared.alternatives(),
    })
}

/// What a request needs.
enum Step {
    /// This answer.
    Answer(SupernodeMessage),
    /// A lookup at the user's owners in the overlay.
    Lookup(Username),
    /// A relay session towards this device, homed here.
    Relay(NodeId),
    /// Nothing: the session ends (the client said goodbye).
    End,
}

/// Asks the overlay and answers with what the owners had (verified records only).
async fn remote_lookup(shared: &Shared, user: Username) -> SupernodeMessage {
    match shared.overlay.lookup(shared.now(), user.clone()).await {
        Ok(records) => SupernodeMessage::LookupResult {
            user,
            records: BoundedVec::truncating(records),
        },
        Err(_) => busy(shared, Duration::from_millis(500)),
    }
}

/// Answers one request from `node`, whose session comes from `seen`.
fn handle(
    shared: &Shared,
    node: NodeId,
    ticket: &TicketBody,
    seen: SocketAddr,
    request: ClientMessage,
) -> Step {
    let now = shared.now();
    let class = match &request {
        ClientMessage::Refresh | ClientMessage::Unregister | ClientMessage::Goodbye => {
            RequestClass::Refresh
        }
        // Re-registering keeps an admitted device's record fresh: a refresh, not a newcomer.
        ClientMessage::Register { .. } if lock(&shared.directory).is_registered(&node) => {
            RequestClass::Refresh
        }
        ClientMessage::Register { .. } => RequestClass::Register,
        _ => RequestClass::Lookup,
    };
    if let Err(Refused::Overloaded(retry) | Refused::Full(retry)) =
        lock(&shared.admission).request(now, class)
    {
        return Step::Answer(busy(shared, retry));
    }
    let answer = match request {
        ClientMessage::Hello(_) => SupernodeMessage::Error(WireError::malformed("Hello twice")),
        ClientMessage::Register { record } => match shared.records.verify(&record, now_unix()) {
            Ok(body) if body.ticket.body_unverified().user != ticket.user => {
                SupernodeMessage::Error(WireError::Unauthorized {
                    reason: UnauthorizedReason::KeyMismatch,
                })
            }
            Ok(_) => match lock(&shared.directory).register(now, node, (*record).clone()) {
                Ok(lease) => {
                    bump(&shared.metrics.registrations_total);
                    shared.overlay.with(|o| o.publish(now, *record, lease));
                    SupernodeMessage::Registered {
                        lease_secs: u32::try_from(lease.as_secs()).unwrap_or(u32::MAX),
                        home: shared.node,
                        observed: seen,
                    }
                }
                Err(RegisterError::TooManyDevices) => {
                    SupernodeMessage::Error(WireError::LimitExceeded {
                        kind: LimitKind::Devices,
                        max: MAX_RECORDS_PER_USER as u32,
                    })
                }
                Err(e) => SupernodeMessage::Error(WireError::unsupported(&e.to_string())),
            },
            Err(e) => {
                SupernodeMessage::Error(WireError::unsupported(&format!("record refused: {e}")))
            }
        },
        ClientMessage::Refresh => {
            let refreshed = {
                let mut directory = lock(&shared.directory);
                directory
                    .refresh(now, &node)
                    .and_then(|lease| Some((lease, directory.record_of(&node)?.clone())))
            };
            match refreshed {
                Some((lease, record)) => {
                    // The owners' leases are extended by publishing again.
                    shared.overlay.with(|o| o.publish(now, record, lease));
                    SupernodeMessage::Refreshed {
                        lease_secs: u32::try_from(lease.as_secs()).unwrap_or(u32::MAX),
                    }
                }
                None => SupernodeMessage::Error(WireError::NotFound),
            }
        }
        ClientMessage::Unregister => {
            lock(&shared.directory).unregister(&node);
            let key = RecordKey {
                user: ticket.user.clone(),
                node,
            };
            shared.overlay.with(|o| o.unpublish(now, &key));
            SupernodeMessage::Unregistered
        }
        ClientMessage::Lookup { user } => {
            bump(&shared.metrics.lookups_total);
            // This supernode's own clients first; everyone else at their owners.
            let records = lock(&shared.directory).lookup_at(now, &user);
            if records.is_empty() {
                return Step::Lookup(user);
            }
            SupernodeMessage::LookupResult {
                user,
                records: BoundedVec::truncating(records),
            }
        }
        ClientMessage::Watch { users } => {
            let watched = {
                let mut directory = lock(&shared.directory);
                let before = directory.watched_by(&node);
                directory
                    .watch(node, &users)
                    .map(|watching| (watching, before))
            };
            match watched {
                Ok((watching, before)) => {
                    let mut fresh: Vec<&Username> =
                        users.iter().filter(|u| !before.contains(u)).collect();
                    fresh.sort_unstable();
                    fresh.dedup();
                    shared
                        .overlay
                        .with(|o| fresh.iter().for_each(|user| o.watch(user)));
                    SupernodeMessage::WatchAck {
                        watching: u32::try_from(watching).unwrap_or(u32::MAX),
                    }
                }
                Err(_) => SupernodeMessage::Error(WireError::LimitExceeded {
                    kind: LimitKind::Watches,
                    max: MAX_WATCHES_PER_CLIENT as u32,
                }),
            }
        }
        ClientMessage::Unwatch { users } => {
            let (watching, gone) = {
                let mut directory = lock(&shared.directory);
                let before = directory.watched_by(&node);
                let watching = directory.unwatch(&node, &users);
                let after = directory.watched_by(&node);
                let gone: Vec<Username> =
                    before.into_iter().filter(|u| !after.contains(u)).collect();
                (watching, gone)
            };
            shared
                .overlay
                .with(|o| gone.iter().for_each(|user| o.unwatch(user)));
            SupernodeMessage::WatchAck {
                watching: u32::try_from(watching).unwrap_or(u32::MAX),
            }
        }
        // Offers are answered by the session loop (they need the session's start); the
        // dial-back proves reachability by the handshake itself, so no echo is expected.
        ClientMessage::OfferPromotion { .. } | ClientMessage::DialBackEcho { .. } => {
            SupernodeMessage::Error(WireError::unsupported(
                "unexpected promotion message on this session",
            ))
        }
        ClientMessage::Punch { node: callee } => crate::relay::punch(shared, node, seen, callee),
        ClientMessage::Relay { node: callee } => return Step::Relay(callee),
        // Leaving ends the session, not the lease: a one-shot command run from the profile of
        // an online device must not take that device offline. `Unregister` ends the lease.
        ClientMessage::Goodbye => return Step::End,
    };
    Step::Answer(answer)
}

/// Writes queued pushes on a unidirectional stream, in order.
async fn push_writer(connection: quinn::Connection, mut queue: mpsc::Receiver<SupernodeMessage>) {
    let Ok(mut stream) = connection.open_uni().await else {
        return;
    };
    while let Some(message) = queue.recv().await {
        if write_frame(&mut stream, &message).await.is_err() {
            return;
        }
    }
}
