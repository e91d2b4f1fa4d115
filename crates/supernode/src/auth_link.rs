//! The supernode's link to the auth-server: periodic announcements (so clients find it in the
//! bootstrap list) and revocation-list fetches (so revoked tickets are refused and their
//! sessions closed). The auth-server being down never stops the supernode: failures are
//! logged and retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use switchboard_account::login::AuthConnection;
use switchboard_account::profile::Profile;
use switchboard_engine::revocation::MAX_REVOCATIONS_HELD;
use switchboard_engine::{Applied, Backoff, BackoffConfig};
use switchboard_net::config::Role as TransportRole;
use switchboard_net::{transport_config, Identity, PeerPolicy};
use switchboard_proto::messages::{AuthRequest, AuthResponse};
use switchboard_proto::wire_error::{UnauthorizedReason, WireError};
use switchboard_proto::SecretKey;

use crate::server::{lock, Shared};

/// Revocation pages fetched per poll at most: 64 x 1,024 entries; a longer backlog continues
/// at the next poll from where this one stopped (nothing is skipped).
const MAX_REVOCATION_PAGES: usize = 64;

/// Runs the link until the task is dropped. `endpoint` is the client-facing endpoint, whose
/// TLS identity is replaced when the ticket is refreshed.
pub async fn run(shared: Arc<Shared>, key: SecretKey, endpoint: quinn::Endpoint) {
    let mut backoff = Backoff::new(BackoffConfig {
        budget: None,
        ..BackoffConfig::default()
    });
    let start = tokio::time::Instant::now();
    let mut schedule = Schedule::new(
        shared.config.announce_interval,
        shared.config.revocation_poll,
    );
    loop {
        match connect(&shared, &key).await {
            Ok(connection) => {
                backoff.succeeded();
                loop {
                    let now = start.elapsed();
                    if schedule.announce_due(now) {
                        if let Err(e) = announce(&shared, &connection).await {
                            tracing::warn!("announcement failed: {e}");
                            break;
                        }
                        refresh_if_due(&shared, &key, &endpoint).await;
                        schedule.announced(now);
                    }
                    if schedule.poll_due(now) {
                        if let Err(e) = fetch_revocations(&shared, &connection).await {
                            tracing::warn!("revocation fetch failed: {e}");
                            break;
                        }
                        schedule.polled(now);
                    }
                    tokio::time::sleep_until(start + schedule.next(start.elapsed())).await;
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
    let mode = shared.service_mode();
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
        Ok(AuthResponse::Error(e)) => Err(refused(shared, e)),
        Ok(other) => Err(format!("unexpected answer: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// An error answer from the auth-server, as text; a revoked ticket (the auth-server says so
/// over its authenticated connection) stops this supernode.
fn refused(shared: &Shared, error: WireError) -> String {
    if matches!(
        error,
        WireError::Unauthorized {
            reason: UnauthorizedReason::Revoked
        }
    ) {
        stop_revoked(shared);
    }
    error.to_string()
}

fn stop_revoked(shared: &Shared) {
    tracing::error!(
        "this supernode's ticket is revoked (its account disabled or its key revoked): \
         redirecting its clients and stopping"
    );
    shared.stop_revoked();
}

/// Fetches what was added to the revocation list since the last poll (every page of it, up
/// to [`MAX_REVOCATION_PAGES`]; the rest at the next poll, from where this one stopped), then
/// closes what it revokes: client sessions, overlay peers, and this supernode itself.
async fn fetch_revocations(shared: &Shared, connection: &AuthConnection) -> Result<(), String> {
    for _ in 0..MAX_REVOCATION_PAGES {
        let cursor = lock(&shared.revoked).cursor();
        let message = AuthRequest::FetchRevocations { cursor };
        let page = match connection.ask(&message).await {
            Ok(AuthResponse::Revocations(page)) => page,
            Ok(AuthResponse::Error(e)) => return Err(refused(shared, e)),
            Ok(other) => return Err(format!("unexpected answer: {other:?}")),
            Err(e) => return Err(e.to_string()),
        };
        let applied = lock(&shared.revoked).apply(&page);
        match applied {
            Applied::Taken { new } => {
                if new > 0 {
                    tracing::debug!(new, "revocations fetched");
                }
                if page.complete {
                    break;
                }
            }
            Applied::Reset => {
                tracing::warn!("the auth-server's revocation list restarted; fetching it again");
            }
            Applied::Overflow => {
                tracing::error!(
                    "revocation list over {MAX_REVOCATIONS_HELD} entries; newer ones are not applied"
                );
                break;
            }
        }
    }
    shared.close_revoked();
    crate::overlay_link::close_revoked_peers(shared);
    let own = Profile::new(&shared.config.data_dir).ticket();
    if let Ok(own) = own {
        if shared.is_revoked(own.body_unverified()) {
            stop_revoked(shared);
        }
    }
    Ok(())
}

/// Refreshes the supernode's ticket in its last quarter and presents the new one to clients
/// connecting from then on. The current ticket keeps working if this fails.
async fn refresh_if_due(shared: &Shared, key: &SecretKey, endpoint: &quinn::Endpoint) {
    let profile = Profile::new(&shared.config.data_dir);
    let Ok(ticket) = profile.ticket() else { return };
    if !switchboard_account::login::needs_refresh(&ticket, switchboard_net::now_unix()) {
        return;
    }
    let fresh = match switchboard_account::login::refresh_ticket(&profile).await {
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
    // The member statement carries the ticket: sign it anew with the fresh one.
    let now = shared.now();
    if let Err(e) = shared.overlay.with(|o| o.renew_ticket(now, fresh.clone())) {
        tracing::error!("member statement not renewed with the refreshed ticket: {e}");
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

/// When the next announcement and the next revocation poll are due, each on its own period
/// (a shared sleep of the shorter period would round the longer one up to a multiple of it:
/// 45 s announcements and 60 s polls would poll every 90 s). Times are offsets from the link's
/// start, so this is plain arithmetic and tested without a clock.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    announce_every: Duration,
    poll_every: Duration,
    next_announce: Duration,
    next_poll: Duration,
}

impl Schedule {
    /// Both due at once, at the start.
    fn new(announce_every: Duration, poll_every: Duration) -> Self {
        Self {
            announce_every,
            poll_every,
            next_announce: Duration::ZERO,
            next_poll: Duration::ZERO,
        }
    }

    fn announce_due(&self, now: Duration) -> bool {
        now >= self.next_announce
    }

    fn poll_due(&self, now: Duration) -> bool {
        now >= self.next_poll
    }

    /// An announcement went out at `now`.
    fn announced(&mut self, now: Duration) {
        self.next_announce = following(self.next_announce, self.announce_every, now);
    }

    /// The revocation list was fetched at `now`.
    fn polled(&mut self, now: Duration) {
        self.next_poll = following(self.next_poll, self.poll_every, now);
    }

    /// When to wake next: the earlier of the two, never in the past.
    fn next(&self, now: Duration) -> Duration {
        self.next_announce.min(self.next_poll).max(now)
    }
}

/// The next due time after one that was served at `now`: a period on, or, when the task woke
/// more than a period late, a period after `now` (missed periods are not made up in a burst).
fn following(due: Duration, every: Duration, now: Duration) -> Duration {
    let next = due + every;
    if next <= now {
        now + every
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the schedule on a virtual clock the way `run` does and returns when each
    /// action happened, in whole seconds, up to `until`.
    fn timeline(announce: u64, poll: u64, until: u64) -> (Vec<u64>, Vec<u64>) {
        let mut schedule = Schedule::new(Duration::from_secs(announce), Duration::from_secs(poll));
        let (mut announced, mut polled) = (Vec::new(), Vec::new());
        let mut now = Duration::ZERO;
        while now.as_secs() <= until {
            if schedule.announce_due(now) {
                announced.push(now.as_secs());
                schedule.announced(now);
            }
            if schedule.poll_due(now) {
                polled.push(now.as_secs());
                schedule.polled(now);
            }
            now = schedule.next(now);
        }
        (announced, polled)
    }

    #[test]
    fn announcements_every_45_s_and_polls_every_60_s_each_keep_their_own_period() {
        let (announced, polled) = timeline(45, 60, 180);
        assert_eq!(announced, [0, 45, 90, 135, 180]);
        assert_eq!(polled, [0, 60, 120, 180]);
    }

    #[test]
    fn equal_periods_announce_and_poll_together() {
        let (announced, polled) = timeline(1, 1, 3);
        assert_eq!(announced, [0, 1, 2, 3]);
        assert_eq!(polled, [0, 1, 2, 3]);
    }

    #[test]
    fn a_late_wake_up_does_not_make_up_missed_periods() {
        let mut schedule = Schedule::new(Duration::from_secs(10), Duration::from_secs(10));
        schedule.announced(Duration::ZERO);
        // Woken at 35 s (the runtime was stalled): one announcement, the next 10 s later.
        let late = Duration::from_secs(35);
        assert!(schedule.announce_due(late));
        schedule.announced(late);
        assert!(!schedule.announce_due(Duration::from_secs(36)));
    }
}
