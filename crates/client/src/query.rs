//! `client lookup`, `client send` and `client watch`: short sessions that ask a supernode and,
//! for `send`, talk to the peer directly.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_net::framed::{read_frame, write_frame};
use switchboard_net::PeerConnection;
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::{
    ClientMessage, DirectMessage, SupernodeMessage, Text, WatchList,
};
use switchboard_proto::version::{Hello, VersionRange};
use switchboard_proto::{NodeId, Record, Username};
use tokio::sync::mpsc;

use crate::login::software_version;
use crate::profile::Profile;
use crate::session::{self, Context, SessionError};
pub use crate::traverse::Path;

/// A verified record, as printed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Device {
    /// The user.
    pub user: String,
    /// The device's node id.
    pub node: String,
    /// Where it accepts direct connections: its own interface addresses.
    pub endpoints: Vec<SocketAddr>,
    /// Its reflexive address (where its home sees it come from, behind a NAT), reachable only
    /// through a punched hole.
    pub reflexive: Option<SocketAddr>,
    /// Its home supernode, which coordinates punches and relays towards it.
    pub home: Option<String>,
    /// When it signed its record (Unix seconds).
    pub issued_at: u64,
}

/// Looks `user` up and returns the records that verify (others are dropped and logged).
pub async fn lookup(
    context: &Context,
    user: &Username,
) -> Result<Vec<(Device, Record)>, SessionError> {
    let mut session = session::open(context, None).await?;
    let devices = lookup_on(context, &mut session, user).await;
    session.goodbye().await;
    devices
}

/// Looks `user` up on an open session and returns the records that verify (others are
/// dropped and logged): only what the auth-server and the record's owner signed is believed.
pub async fn lookup_on(
    context: &Context,
    session: &mut session::Session,
    user: &Username,
) -> Result<Vec<(Device, Record)>, SessionError> {
    let answer = session
        .ask(&ClientMessage::Lookup { user: user.clone() })
        .await?;
    let records = match answer {
        SupernodeMessage::LookupResult { records, .. } => records.into_inner(),
        SupernodeMessage::Error(e) => return Err(SessionError::Refused(e)),
        other => return Err(SessionError::Protocol(format!("{other:?}"))),
    };
    let now = switchboard_net::now_unix();
    let mut devices = Vec::new();
    for record in records {
        match record.verify(&context.anchor, now) {
            Ok(body) if body.ticket.body_unverified().user == *user => {
                devices.push((
                    Device {
                        user: user.to_string(),
                        node: body.ticket.body_unverified().node.to_string(),
                        endpoints: body.endpoints.to_vec(),
                        reflexive: body.reflexive,
                        home: body.home.map(|h| h.node.to_string()),
                        issued_at: body.issued_at.0,
                    },
                    record.clone(),
                ));
            }
            Ok(_) => tracing::warn!("a record for another user was returned; dropped"),
            Err(e) => tracing::warn!("a record that does not verify was returned ({e}); dropped"),
        }
    }
    Ok(devices)
}

/// Why a direct send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The lookup failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The user has no online device.
    #[error("{0} is not online")]
    Offline(Username),
    /// No endpoint accepted the message.
    #[error("could not deliver to {user}: {reasons}")]
    Undelivered {
        /// To whom.
        user: Username,
        /// What each attempt said.
        reasons: String,
    },
}

/// How long a delivery may take once connected, and a direct dial when nothing else can be
/// tried.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Looks `user` up and delivers `text` to one of their devices, end to end.
pub async fn send(
    context: &Context,
    user: &Username,
    text: Text,
) -> Result<(NodeId, Path), SendError> {
    let devices = lookup(context, user).await?;
    deliver_to(context, user, &devices, text).await
}

/// Delivers `text` to the first of `user`'s verified `devices` that takes it, each reached
/// directly, through a punched hole or through a relay ([`crate::traverse::reach`]); says which
/// device and which path.
pub async fn deliver_to(
    context: &Context,
    user: &Username,
    devices: &[(Device, Record)],
    text: Text,
) -> Result<(NodeId, Path), SendError> {
    if devices.is_empty() {
        return Err(SendError::Offline(user.clone()));
    }
    let mut reasons = Vec::new();
    for (device, record) in devices {
        let Ok(node) = device.node.parse::<NodeId>() else {
            continue;
        };
        let reached = match crate::traverse::reach(context, node, record.body_unverified()).await {
            Ok(reached) => reached,
            Err(reason) => {
                reasons.push(format!("device {}: {reason}", node.short()));
                continue;
            }
        };
        let path = reached.path;
        let delivered = deliver(&reached.connection, &text).await;
        reached.release().await;
        match delivered {
            Ok(()) => return Ok((node, path)),
            Err(reason) => reasons.push(format!("device {} ({path}): {reason}", node.short())),
        }
    }
    Err(SendError::Undelivered {
        user: user.clone(),
        reasons: reasons.join("; "),
    })
}

/// Says `Hello` and the text on an end-to-end connection, and closes it once delivered.
async fn deliver(connection: &PeerConnection, text: &Text) -> Result<(), String> {
    let exchange = async {
        let (mut send, mut recv) = connection
            .connection
            .open_bi()
            .await
            .map_err(|e| e.to_string())?;
        let hello = DirectMessage::Hello(Hello {
            protocol: VersionRange::CURRENT,
            software: software_version(),
        });
        for message in [hello, DirectMessage::Text(text.clone())] {
            write_frame(&mut send, &message)
                .await
                .map_err(|e| e.to_string())?;
            match read_frame::<DirectMessage>(&mut recv, MAX_FRAME_LEN).await {
                Ok(Some(DirectMessage::Welcome(_) | DirectMessage::Delivered)) => {}
                Ok(Some(DirectMessage::Error(e))) => return Err(e.to_string()),
                Ok(other) => return Err(format!("unexpected answer {other:?}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        let _ = send.finish();
        Ok(())
    };
    let result = tokio::time::timeout(DELIVERY_TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r);
    connection
        .connection
        .close(switchboard_net::CloseCode::Done.code(), b"delivered");
    result
}

/// Watches `users` and prints `USER online` / `USER offline` lines until `shutdown`,
/// re-opening the session (and the watch) when it is lost.
pub async fn watch(
    context: &Context,
    users: WatchList,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SessionError> {
    tokio::pin!(shutdown);
    let mut failover: switchboard_engine::Failover<switchboard_proto::NodeId> =
        switchboard_engine::Failover::new(switchboard_engine::BackoffConfig {
            budget: None,
            ..Default::default()
        });
    loop {
        let opened = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            opened = session::open(context, failover.avoid().copied()) => opened,
        };
        let delay = match opened {
            Ok(mut session) => {
                match session
                    .ask(&ClientMessage::Watch {
                        users: users.clone(),
                    })
                    .await?
                {
                    SupernodeMessage::WatchAck { .. } => {}
                    SupernodeMessage::Error(e) => return Err(SessionError::Refused(e)),
                    other => return Err(SessionError::Protocol(format!("{other:?}"))),
                }
                failover.opened();
                eprintln!(
                    "watching {} users via {}",
                    users.len(),
                    session.node().short()
                );
                let (tx, mut pushes) = mpsc::channel(64);
                let reader = tokio::spawn(crate::online::read_pushes(
                    session.connection.connection.clone(),
                    tx,
                ));
                loop {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => {
                            reader.abort();
                            session.goodbye().await;
                            return Ok(());
                        }
                        push = pushes.recv() => match push {
                            Some(SupernodeMessage::Presence(event)) => {
                                let mut out = std::io::stdout().lock();
                                let _ = writeln!(out, "{} {}", event.user, if event.online { "online" } else { "offline" });
                                let _ = out.flush();
                            }
                            Some(_) => {}
                            None => break,
                        },
                    }
                }
                eprintln!("lost {}; re-watching elsewhere", session.node().short());
                let _ = session::mark_failure(&context.profile, session.node());
                failover.lost(session.node(), &mut rand::thread_rng())
            }
            Err(
                e @ (SessionError::Unauthorized(_)
                | SessionError::VersionRejected(_)
                | SessionError::Profile(_)
                | SessionError::NoHosts),
            ) => return Err(e),
            Err(SessionError::NoSupernode { retry_after, .. }) => {
                failover.none_admitted(retry_after, &mut rand::thread_rng())
            }
            Err(e) => {
                eprintln!("{e}");
                failover.none_admitted(None, &mut rand::thread_rng())
            }
        };
        tokio::time::sleep(delay).await;
    }
}

/// Loads a context for a one-shot command.
pub fn context(profile: &std::path::Path) -> Result<Context, SessionError> {
    Context::load(Profile::new(profile), None)
}
