//! The supernode's link to the auth-server: periodic announcements (so clients find it in the
//! bootstrap list) and revocation-list fetches (so revoked tickets are refused and their
//! sessions closed). The auth-server being down never stops the supernode: failures are
//! logged and retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use switchboard_client::login::AuthConnection;
use switchboard_client::profile::Profile;
use switchboard_engine::{Backoff, BackoffConfig};
use switchboard_net::config::Role as TransportRole;
use switchboard_net::{transport_config, Identity, PeerPolicy};
use switchboard_proto::messages::{AuthRequest, AuthResponse, ServiceMode};
use switchboard_proto::SecretKey;

use crate::config::Mode;
use crate::server::{lock, Shared};

/// Revocation pages fetched per poll at most: 64 x 1,024 entries.
const MAX_REVOCATION_PAGES: usize = 64;

/// Runs the link until the task is dropped. `endpoint` is the client-facing endpoint, whose
/// TLS identity is replaced when the ticket is refreshed.
pub async fn run(shared: Arc<Shared>, key: SecretKey, endpoint: quinn::Endpoint) {
    let mut backoff = Backoff::new(BackoffConfig {
        budget: None,
        ..BackoffConfig::default()
    });
    let mut last_revocation_poll: Option<tokio::time::Instant> = None;
    loop {
        match connect(&shared, &key).await {
            Ok(connection) => {
                backoff.succeeded();
                loop {
                    if let Err(e) = announce(&shared, &connection).await {
                        tracing::warn!("announcement failed: {e}");
                        break;
                    }
                    refresh_if_due(&shared, &key, &endpoint).await;
                    let due = last_revocation_poll
                        .is_none_or(|t| t.elapsed() >= shared.config.revocation_poll);
                    if due {
                        if let Err(e) = fetch_revocations(&shared, &connection).await {
                            tracing::warn!("revocation fetch failed: {e}");
                            break;
                        }
                        last_revocation_poll = Some(tokio::time::Instant::now());
                    }
                    tokio::time::sleep(
                        shared
                            .config
                            .announce_interval
                            .min(shared.config.revocation_poll),
                    )
                    .await;
                }
            }
            Err(e) => tracing::warn!("auth-server unreachable: {e}"),
        }
        let delay = backoff
            .failed(&mut rand::thread_rng(), None)
            .unwrap_or(Duration::from_secs(30));
        tokio::time::sleep(delay).await;
    }
}

async fn connect(shared: &Shared, key: &SecretKey) -> Result<AuthConnection, String> {
    let ticket = Profile::new(&shared.config.data_dir)
        .ticket()
        .map_err(|e| e.to_string())?;
    AuthConnection::open(
        &shared.config.auth,
        shared.config.trust,
        &Identity::new(key.clone(), Some(ticket)),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn announce(shared: &Arc<Shared>, connection: &AuthConnection) -> Result<(), String> {
    let (capacity, clients) = {
        let admission = lock(&shared.admission);
        (admission.capacity(), admission.clients())
    };
    let mode = match shared.config.mode {
        Mode::Normal => ServiceMode::Normal,
        Mode::Mega => ServiceMode::Mega,
        Mode::MegaStandby => ServiceMode::MegaStandby,
    };
    let message = AuthRequest::Announce {
        addr: shared.public_addr,
        mode,
        capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
        clients: u32::try_from(clients).unwrap_or(u32::MAX),
    };
    match connection.ask(&message).await {
        Ok(AuthResponse::Announced { peers, .. }) => {
            // Live alternatives for Busy and Redirect answers, least loaded first.
            let peers: Vec<_> = peers.iter().map(|entry| entry.peer).collect();
            *lock(&shared.alternatives) = peers.clone();
            // Supernodes the auth-server knows and the overlay does not: join through them.
            crate::overlay_link::join_known(shared, &peers);
            Ok(())
        }
        Ok(AuthResponse::Error(e)) => Err(e.to_string()),
        Ok(other) => Err(format!("unexpected answer: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

async fn fetch_revocations(shared: &Shared, connection: &AuthConnection) -> Result<(), String> {
    let mut cursor = 0;
    let mut users = std::collections::HashSet::new();
    let mut serials = std::collections::HashSet::new();
    for _ in 0..MAX_REVOCATION_PAGES {
        let message = AuthRequest::FetchRevocations { cursor };
        let page = match connection.ask(&message).await {
            Ok(AuthResponse::Revocations(page)) => page,
            Ok(AuthResponse::Error(e)) => return Err(e.to_string()),
            Ok(other) => return Err(format!("unexpected answer: {other:?}")),
            Err(e) => return Err(e.to_string()),
        };
        users.extend(page.users.iter().cloned());
        serials.extend(page.serials.iter().copied());
        cursor = page.next_cursor;
        if page.complete {
            break;
        }
    }
    {
        let mut revoked = lock(&shared.revoked);
        revoked.users = users;
        revoked.serials = serials;
    }
    shared.close_revoked();
    Ok(())
}

/// Refreshes the supernode's ticket in its last quarter and presents the new one to clients
/// connecting from then on. The current ticket keeps working if this fails.
async fn refresh_if_due(shared: &Shared, key: &SecretKey, endpoint: &quinn::Endpoint) {
    let profile = Profile::new(&shared.config.data_dir);
    let Ok(ticket) = profile.ticket() else { return };
    if !switchboard_client::login::needs_refresh(&ticket, switchboard_net::now_unix()) {
        return;
    }
    let fresh = match switchboard_client::login::refresh_ticket(&profile).await {
        Ok(fresh) => fresh,
        Err(e) => {
            tracing::warn!("ticket refresh failed: {e}");
            return;
        }
    };
    let config = switchboard_net::server_config(
        &Identity::new(key.clone(), Some(fresh.clone())),
        PeerPolicy::any_ticket(shared.anchor.clone()),
        &[switchboard_proto::version::ALPN_DIRECTORY],
        transport_config(TransportRole::ClientFacing),
    );
    if let Ok(dialer) = crate::server::overlay_dialer(key, &fresh, &shared.anchor, endpoint) {
        shared.overlay.set_dialer(dialer);
    }
    match config {
        Ok(config) if !shared.is_draining() => {
            endpoint.set_server_config(Some(config));
            tracing::info!("ticket refreshed");
        }
        Ok(_) => {}
        Err(e) => tracing::error!("refreshed ticket not applied: {e}"),
    }
}
