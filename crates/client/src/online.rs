//! `client online`: stay registered on a home supernode, fail over when it goes, and accept
//! direct messages from peers.
//!
//! The loop: open a session ([`crate::session::open`]), register a freshly signed record,
//! re-register every third of the lease (which keeps the record fresh for verifiers and the
//! lease alive), print pushes, and on loss or redirect wait a capped full-jitter delay
//! ([`switchboard_engine::Backoff`]) and go again, avoiding the supernode just lost. State
//! changes go to stderr; messages from peers to stdout as `from USER: TEXT`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_engine::session::{refresh_period, Failover};
use switchboard_engine::BackoffConfig;
use switchboard_net::config::Role as TransportRole;
use switchboard_net::framed::{read_frame, write_frame};
use switchboard_net::{
    server_config, transport_config, HandshakeGate, Identity, Listener, PeerPolicy,
    HANDSHAKE_TIMEOUT,
};
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::{ClientMessage, DirectMessage, SupernodeMessage, Text};
use switchboard_proto::version::{Welcome, ALPN_DIRECT};
use switchboard_proto::wire_error::WireError;
use switchboard_proto::{BoundedVec, NodeId, PeerAddr, Record, RecordBody};
use tokio::sync::mpsc;

use crate::profile::Profile;
use crate::promotable::{Promotable, Promotion};
use crate::session::{self, Context, Session, SessionError};

/// Lease (record TTL) asked for: a killed client vanishes from lookups within a minute.
pub const RECORD_TTL_SECS: u32 = 60;

/// Direct connections accepted at once: a client is not a server.
const MAX_DIRECT_HANDSHAKES: usize = 16;

/// Why `client online` stopped.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    /// Setting up failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The listening socket.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// How a session ended.
enum Ended {
    Lost(String),
    /// The home told us to move, naming supernodes with room.
    Redirected(Vec<PeerAddr>),
    TicketDue,
    Shutdown,
}

/// How often a session checks whether its ticket entered its last quarter.
const TICKET_CHECK: Duration = Duration::from_secs(60);

/// Runs `client online` until `shutdown` resolves.
pub async fn run(
    profile: Profile,
    listen: SocketAddr,
    promotable: Option<Promotable>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), OnlineError> {
    // One endpoint for everything: direct connections in, supernode sessions out.
    let ticket = profile.ticket().map_err(SessionError::from)?;
    let trust = profile.trust().map_err(SessionError::from)?;
    let key = profile.node_key().map_err(SessionError::from)?;
    let listener = direct_listener(key, ticket, trust, listen)?;
    let local = listener
        .local_addr()
        .map_err(|source| OnlineError::Listen {
            addr: listen,
            source,
        })?;
    let mut context = Context::load(profile, Some(listener.endpoint().clone()))?;
    context.dialer = context.dialer.with_raw(listener.raw());
    eprintln!("listening for peers on {local}");
    let started = tokio::time::Instant::now();
    let (mut promotion, mut role_events) = match promotable {
        Some(settings) => {
            let serve = settings.serve;
            let (promotion, events) =
                Promotion::start(settings, &context).map_err(|source| OnlineError::Listen {
                    addr: serve,
                    source,
                })?;
            (Some(promotion), Some(events))
        }
        None => (None, None),
    };

    let listener = std::sync::Arc::new(listener);
    let inbox = tokio::spawn(serve_direct(
        std::sync::Arc::clone(&listener),
        |user: String, text: Text| {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "from {user}: {}", printable(text.as_str()));
            let _ = stdout.flush();
        },
    ));
    tokio::pin!(shutdown);
    let mut failover: Failover<NodeId> = Failover::new(BackoffConfig {
        budget: None,
        ..BackoffConfig::default()
    });
    let mut seq = switchboard_net::now_unix().0.saturating_mul(1000);
    // A handoff's sessions: the one opened elsewhere when the home redirected us (`carried`,
    // used next instead of a new pass), and the old home's (`leaving`), closed only once the
    // new one holds our registration: make before break.
    let mut carried: Option<Session> = None;
    let mut leaving: Option<Session> = None;
    let outcome = loop {
        if crate::login::needs_refresh(&context.ticket, switchboard_net::now_unix()) {
            match crate::login::refresh_ticket(&context.profile).await {
                Ok(_) => match renew(&context, &listener) {
                    Ok(renewed) => {
                        context = renewed;
                        eprintln!("ticket refreshed");
                    }
                    Err(e) => eprintln!("ticket refreshed but not applied: {e}"),
                },
                // The auth-server may be down: the current ticket still works until it expires.
                Err(e) => eprintln!("ticket refresh failed: {e}"),
            }
        }
        let opened = match carried.take() {
            Some(session) => Ok(session),
            None => tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                opened = session::open(&context, failover.avoid().copied()) => opened,
            },
        };
        let delay = match opened {
            Ok(mut session) => {
                failover.opened();
                if let Some(promotion) = promotion.as_mut() {
                    promotion.new_session();
                }
                let mut promoting = Promoting {
                    promotion: promotion.as_mut(),
                    events: role_events.as_mut(),
                    started,
                };
                let old = leaving.take();
                let ended = tokio::select! {
                    biased;
                    () = &mut shutdown => Ended::Shutdown,
                    ended = stay(&context, &mut session, local, &mut seq, &mut promoting, old) => ended,
                };
                let _ = context.profile.save_home(None);
                match ended {
                    Ended::Shutdown => {
                        let _ = session.ask(&ClientMessage::Unregister).await;
                        session.goodbye().await;
                        eprintln!("offline");
                        break Ok(());
                    }
                    Ended::TicketDue => {
                        session.goodbye().await;
                        Duration::ZERO
                    }
                    Ended::Redirected(targets) => {
                        let from = session.node();
                        eprintln!("redirected by {}", from.short());
                        let moved = tokio::select! {
                            biased;
                            () = &mut shutdown => None,
                            moved = session::open_redirected(&context, from, &targets) => Some(moved),
                        };
                        match moved {
                            None => {
                                let _ = session.ask(&ClientMessage::Unregister).await;
                                session.goodbye().await;
                                eprintln!("offline");
                                break Ok(());
                            }
                            Some(Ok(new)) => {
                                carried = Some(new);
                                leaving = Some(session);
                                Duration::ZERO
                            }
                            Some(Err(e)) => {
                                // Nowhere to go: stay, registered where we are, and listen
                                // for the next redirect after a back-off.
                                eprintln!("staying with {} ({e})", from.short());
                                carried = Some(session);
                                failover.lost(from, &mut rand::thread_rng())
                            }
                        }
                    }
                    Ended::Lost(reason) => {
                        eprintln!("lost {} ({reason}); failing over", session.node().short());
                        if let Err(e) = session::mark_failure(&context.profile, session.node()) {
                            eprintln!("host cache not saved: {e}");
                        }
                        failover.lost(session.node(), &mut rand::thread_rng())
                    }
                }
            }
            Err(
                e @ (SessionError::Unauthorized(_)
                | SessionError::VersionRejected(_)
                | SessionError::Profile(_)),
            ) => {
                break Err(e.into());
            }
            Err(e @ SessionError::NoHosts) => break Err(e.into()),
            Err(SessionError::NoSupernode { tried, retry_after }) => {
                let delay = failover.none_admitted(retry_after, &mut rand::thread_rng());
                eprintln!(
                    "no supernode admitted this client ({tried} tried); retrying in {delay:?}"
                );
                delay
            }
            Err(e) => {
                eprintln!("session failed: {e}");
                failover.none_admitted(None, &mut rand::thread_rng())
            }
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
    };
    inbox.abort();
    // A hosted supernode role drains on the same shutdown signal: let it finish.
    if let (Some(promotion), Some(events)) = (promotion.as_ref(), role_events.as_mut()) {
        if promotion.serving() {
            if let Ok(Some(outcome)) = tokio::time::timeout(ROLE_DRAIN, events.recv()).await {
                match outcome {
                    Ok(line) => eprintln!("{line}"),
                    Err(e) => eprintln!("the supernode role failed: {e}"),
                }
            }
        }
    }
    context
        .dialer
        .endpoint()
        .close(switchboard_net::CloseCode::Done.code(), b"offline");
    outcome
}

/// A context and direct-connection identity for the refreshed ticket now in the profile.
fn renew(context: &Context, listener: &Listener) -> Result<Context, SessionError> {
    let mut renewed = Context::load(context.profile.clone(), Some(listener.endpoint().clone()))?;
    renewed.dialer = renewed.dialer.with_raw(listener.raw());
    let direct = server_config(
        &Identity::new(renewed.key.clone(), Some(renewed.ticket.clone())),
        PeerPolicy::any_ticket(renewed.anchor.clone()),
        &[ALPN_DIRECT],
        transport_config(TransportRole::ClientFacing),
    )
    .map_err(|e| SessionError::Transport(e.to_string()))?;
    listener.endpoint().set_server_config(Some(direct));
    Ok(renewed)
}

/// Where this device is published: its own addresses, its reflexive one (when its home sees
/// it come from none of them) and its home.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Published {
    endpoints: Vec<SocketAddr>,
    reflexive: Option<SocketAddr>,
    home: PeerAddr,
}

impl Published {
    /// Takes the address the home saw this session come from; says whether it changed what is
    /// published (the first report behind a NAT, or a NAT rebinding).
    fn observed(&mut self, seen: SocketAddr) -> bool {
        let reflexive = (!self.endpoints.contains(&seen)).then_some(seen);
        if reflexive == self.reflexive {
            return false;
        }
        self.reflexive = reflexive;
        true
    }
}

/// A freshly signed record for this device as `published`.
fn record(context: &Context, published: &Published, seq: u64) -> Result<Record, SessionError> {
    let Published {
        endpoints,
        reflexive,
        home,
    } = published.clone();
    let home = Some(home);
    Record::sign(
        &context.key,
        RecordBody {
            ticket: context.ticket.clone(),
            endpoints: BoundedVec::truncating(endpoints),
            reflexive,
            home,
            seq,
            issued_at: switchboard_net::now_unix(),
            ttl_secs: RECORD_TTL_SECS,
        },
    )
    .map_err(|e| SessionError::Protocol(e.to_string()))
}

/// The endpoints peers should dial: the listening address; when listening on all interfaces,
/// the host's addresses, first the one this host sends from towards its supernode (the LAN's,
/// not a container bridge's; [`switchboard_net::interfaces::published`]).
fn published(session: &Session, local: SocketAddr) -> Vec<SocketAddr> {
    let connection = &session.connection.connection;
    let towards_supernode = connection.local_ip().or_else(|| {
        local
            .ip()
            .is_unspecified()
            .then(|| switchboard_net::interfaces::route_source(connection.remote_address()))
            .flatten()
    });
    switchboard_net::interfaces::published(
        local,
        towards_supernode,
        switchboard_proto::limits::MAX_ENDPOINTS,
    )
}

/// How long `client online` waits at shutdown for a hosted supernode role to drain (the
/// supernode's default drain deadline, and a little).
const ROLE_DRAIN: Duration = Duration::from_secs(12);

/// The promotion state a session works with (none without `--promotable`).
struct Promoting<'a> {
    promotion: Option<&'a mut Promotion>,
    events: Option<&'a mut mpsc::Receiver<Result<String, String>>>,
    started: tokio::time::Instant,
}

/// The next end of the hosted role, or never.
async fn role_end(
    events: &mut Option<&mut mpsc::Receiver<Result<String, String>>>,
) -> Result<String, String> {
    match events {
        Some(events) => match events.recv().await {
            Some(outcome) => outcome,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Registers and keeps the registration alive until the session ends.
async fn stay(
    context: &Context,
    session: &mut Session,
    local: SocketAddr,
    seq: &mut u64,
    promoting: &mut Promoting<'_>,
    leaving: Option<Session>,
) -> Ended {
    let mut published = Published {
        endpoints: published(session, local),
        reflexive: None,
        home: PeerAddr {
            node: session.node(),
            addr: session.host.addr,
        },
    };
    // Where a promotion's dial-back should reach this host: the first published address.
    let reachable = published
        .endpoints
        .first()
        .map_or(local.ip(), SocketAddr::ip);
    let lease = match register_seen(context, session, &mut published, seq).await {
        Ok(lease) => lease,
        Err(e) => return Ended::Lost(e.to_string()),
    };
    let node = session.node();
    eprintln!(
        "online via {} at {} (lease {lease} s)",
        node.short(),
        session.host.addr
    );
    if let Some(old) = leaving {
        // The new home holds our registration (a newer record than the old home's, so the
        // old home's withdrawal cannot remove it): now the old one may let go.
        eprintln!("moved from {}", old.node().short());
        old.goodbye().await;
    }
    if let Err(e) = session::mark_success(&context.profile, node)
        .and_then(|()| context.profile.save_home(Some(node)))
    {
        eprintln!("host cache not saved: {e}");
    }
    let (push_tx, mut pushes) = mpsc::channel(64);
    let reader = tokio::spawn(read_pushes(session.connection.connection.clone(), push_tx));
    let mut period = tokio::time::interval(refresh_period(Duration::from_secs(u64::from(lease))));
    period.tick().await;
    // Checked at least every TICKET_CHECK, and right when the last quarter begins (a short
    // ticket would otherwise expire between two checks).
    let next_check = || {
        let due_in = crate::login::refresh_due_in(&context.ticket, switchboard_net::now_unix());
        tokio::time::Instant::now() + TICKET_CHECK.min(Duration::from_secs(due_in.max(1)))
    };
    let ticket_check = tokio::time::sleep_until(next_check());
    tokio::pin!(ticket_check);
    if let Some(promotion) = promoting.promotion.as_deref_mut() {
        promotion
            .offer(session, reachable, promoting.started.elapsed())
            .await;
    }
    let ended = loop {
        tokio::select! {
            _ = period.tick() => {
                if let Err(e) = register_seen(context, session, &mut published, seq).await {
                    break Ended::Lost(e.to_string());
                }
                if let Some(promotion) = promoting.promotion.as_deref_mut() {
                    promotion.offer(session, reachable, promoting.started.elapsed()).await;
                }
            }
            outcome = role_end(&mut promoting.events) => {
                if let Some(promotion) = promoting.promotion.as_deref_mut() {
                    promotion.role_ended(outcome, context);
                }
            }
            () = &mut ticket_check => {
                if crate::login::needs_refresh(&context.ticket, switchboard_net::now_unix()) {
                    break Ended::TicketDue;
                }
                ticket_check.as_mut().reset(next_check());
            }
            push = pushes.recv() => match push {
                Some(SupernodeMessage::Redirect { targets, .. }) => {
                    let _ = session::merge_alternatives(&context.profile, &targets);
                    break Ended::Redirected(targets.into_inner());
                }
                Some(SupernodeMessage::Promote { seeds, nomination }) => {
                    if let Some(promotion) = promoting.promotion.as_deref_mut() {
                        let seeds = seeds.iter().copied().collect();
                        promotion.promote(context, seeds, *nomination, reachable).await;
                    }
                }
                Some(SupernodeMessage::PunchTowards { peer, node }) => {
                    if let Some(raw) = context.dialer.raw() {
                        tracing::debug!(%peer, caller = %node.short(), "punching");
                        crate::traverse::punch(raw, peer);
                    }
                }
                Some(SupernodeMessage::RelayOffer { port, token, node }) => {
                    if let Some(raw) = context.dialer.raw() {
                        let relay = SocketAddr::new(session.host.addr.ip(), port);
                        tracing::debug!(%relay, caller = %node.short(), "joining a relay");
                        let raw = raw.clone();
                        tokio::spawn(async move {
                            crate::traverse::bind_relay(&raw, relay, &token).await;
                        });
                    }
                }
                Some(SupernodeMessage::Presence(event)) => {
                    eprintln!("{} is {}", event.user, if event.online { "online" } else { "offline" });
                }
                Some(_) => {}
                None => {
                    let reason = session.connection.connection.closed().await;
                    break Ended::Lost(reason.to_string());
                }
            },
        }
    };
    reader.abort();
    ended
}

/// Registers `published` and, when the home saw this session come from elsewhere than what
/// was published (the first registration behind a NAT, or the NAT rebinding since), registers
/// again at once with the new reflexive address. Returns the lease.
async fn register_seen(
    context: &Context,
    session: &mut Session,
    published: &mut Published,
    seq: &mut u64,
) -> Result<u32, SessionError> {
    *seq += 1;
    let (lease, seen) = register(context, session, published, *seq).await?;
    let before = published.reflexive;
    if !published.observed(seen) {
        return Ok(lease);
    }
    match (before, published.reflexive) {
        (None, Some(now)) => eprintln!("reflexive address {now} (behind a NAT)"),
        (Some(was), Some(now)) => {
            eprintln!(
                "reflexive address changed from {was} to {now} (NAT rebinding); re-registering"
            );
        }
        (Some(was), None) => eprintln!("reflexive address {was} gone (no NAT now)"),
        (None, None) => {}
    }
    *seq += 1;
    register(context, session, published, *seq)
        .await
        .map(|(lease, _)| lease)
}

/// Registers a record of `published`; returns the lease and where the home saw us come from.
async fn register(
    context: &Context,
    session: &mut Session,
    published: &Published,
    seq: u64,
) -> Result<(u32, SocketAddr), SessionError> {
    let record = record(context, published, seq)?;
    match session
        .ask(&ClientMessage::Register {
            record: Box::new(record),
        })
        .await?
    {
        SupernodeMessage::Registered {
            lease_secs,
            observed,
            ..
        } => Ok((lease_secs, observed)),
        SupernodeMessage::Error(e) => Err(SessionError::Refused(e)),
        other => Err(SessionError::Protocol(format!("{other:?}"))),
    }
}

/// Reads the supernode's push stream into `pushes`; ends (dropping the sender) when the
/// connection does.
pub async fn read_pushes(connection: quinn::Connection, pushes: mpsc::Sender<SupernodeMessage>) {
    let Ok(mut stream) = connection.accept_uni().await else {
        return;
    };
    while let Ok(Some(message)) = read_frame::<SupernodeMessage>(&mut stream, MAX_FRAME_LEN).await {
        if pushes.send(message).await.is_err() {
            return;
        }
    }
}

/// The listener for direct connections of the device whose `key` and `ticket` these are, on
/// `listen`: any ticketed peer may connect (the message, not the connection, is what a
/// user receives), at most [`MAX_DIRECT_HANDSHAKES`] handshakes in flight.
pub fn direct_listener(
    key: switchboard_proto::SecretKey,
    ticket: switchboard_proto::Ticket,
    trust: switchboard_proto::AuthKey,
    listen: std::net::SocketAddr,
) -> Result<Listener, OnlineError> {
    let anchor = switchboard_proto::TrustAnchor::new(trust)
        .map_err(|e| SessionError::Transport(e.to_string()))?;
    let direct_policy = PeerPolicy::any_ticket(anchor);
    let direct = server_config(
        &Identity::new(key, Some(ticket)),
        direct_policy.clone(),
        &[ALPN_DIRECT],
        transport_config(TransportRole::ClientFacing),
    )
    .map_err(|e| SessionError::Transport(e.to_string()))?;
    Listener::bind(
        listen,
        direct,
        direct_policy,
        HandshakeGate::with_max_in_flight(MAX_DIRECT_HANDSHAKES),
    )
    .map_err(|source| OnlineError::Listen {
        addr: listen,
        source,
    })
}

/// Accepts direct connections and hands each text to `receive` with its sender's user name
/// (from the sender's verified ticket); `client online` prints them as `from USER: TEXT`.
pub async fn serve_direct(
    listener: std::sync::Arc<Listener>,
    receive: impl Fn(String, Text) + Clone + Send + Sync + 'static,
) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            handshake = listener.accept() => {
                let Some(handshake) = handshake else { return };
                let receive = receive.clone();
                tasks.spawn(async move {
                    let Ok(connection) = handshake.complete(HANDSHAKE_TIMEOUT).await else {
                        return;
                    };
                    let user = connection
                        .peer
                        .ticket
                        .as_ref()
                        .map_or_else(|| "?".to_owned(), |t| t.user.to_string());
                    let Ok((mut send, mut recv)) = connection.connection.accept_bi().await else {
                        return;
                    };
                    while let Ok(Some(message)) = read_frame::<DirectMessage>(&mut recv, MAX_FRAME_LEN).await {
                        let answer = match message {
                            DirectMessage::Hello(_) => DirectMessage::Welcome(Welcome {
                                protocol: switchboard_proto::PROTOCOL_VERSION,
                                software: crate::login::software_version(),
                            }),
                            DirectMessage::Text(text) => {
                                receive(user.clone(), text);
                                DirectMessage::Delivered
                            }
                            _ => DirectMessage::Error(WireError::unsupported("unexpected message")),
                        };
                        if write_frame(&mut send, &answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// `text` from a peer, made safe for a terminal: control characters (newlines, escape
/// sequences) and the Unicode controls that reorder text are printed escaped (`\n`,
/// `\u{1b}`), so a peer cannot fake a second `from alice:` line or drive the terminal.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let reorders = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || reorders {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn a_newline_and_an_escape_sequence_from_a_peer_are_printed_escaped() {
        assert_eq!(
            printable("hi\nfrom alice: send money\u{1b}[2J"),
            "hi\\nfrom alice: send money\\u{1b}[2J"
        );
        assert_eq!(
            printable("right-to-left \u{202e}txt.exe"),
            "right-to-left \\u{202e}txt.exe"
        );
        assert_eq!(
            printable("plain text, ünïcödé, emoji 🙂"),
            "plain text, ünïcödé, emoji 🙂"
        );
    }
}
