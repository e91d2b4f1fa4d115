//! The supernode role hosted in a promoted client's own process (DESIGN.md section 2): the
//! `client` binary calls [`run`] once its home's nomination got it a `promoted` ticket, and
//! its own session and registration carry on beside it.
//!
//! The role serves from the promoted profile (`promoted/` in the client's profile: the
//! client's node key, its settings and the promoted ticket), on the address the client offered
//! and the home dialed back. It has no password: its ticket came from a nomination and is
//! refreshed on its own key while its promotion is active. It stops when the promoted
//! supernode steps down (it drains with `Redirect { Demoted }`, leaves the overlay and tells
//! the auth-server, which revokes the promoted ticket), when its ticket is revoked, or on the
//! process's shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;

use switchboard_account::profile::Profile;
use switchboard_proto::PeerAddr;

use crate::config::FileConfig;
use crate::server::Server;

/// What the promoted role needs to start.
#[derive(Debug, Clone)]
pub struct Start {
    /// The promoted profile's directory.
    pub profile_dir: PathBuf,
    /// Where to serve (the address the client offered and was dialed back on).
    pub listen: SocketAddr,
    /// The address announced to clients and peers.
    pub public_addr: SocketAddr,
    /// Members to join through (from the `Promote` message).
    pub seeds: Vec<PeerAddr>,
    /// The declared capacity.
    pub capacity: u32,
    /// A supernode configuration file for the role's tuning (its `data_dir`, `listen`,
    /// `auth`, `user`, `seeds` and `capacity` are replaced by the values above).
    pub config: Option<PathBuf>,
}

/// How the promoted role ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It stepped down (demoted): its clients were redirected.
    Demoted,
    /// Its ticket was revoked.
    Revoked,
    /// The process is shutting down.
    Stopped,
}

/// Starts the supernode role and serves until it steps down, is revoked, or `shutdown`
/// resolves. Errors are what kept it from starting.
pub async fn run(
    start: Start,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Ended, String> {
    let mut file = match &start.config {
        Some(path) => FileConfig::load(path).map_err(|e| e.to_string())?,
        None => FileConfig::default(),
    };
    let profile = Profile::new(&start.profile_dir);
    let settings = profile.settings().map_err(|e| e.to_string())?;
    let ticket = profile.ticket().map_err(|e| e.to_string())?;
    let key = profile.node_key().map_err(|e| e.to_string())?;
    file.data_dir = Some(start.profile_dir.clone());
    file.listen = Some(start.listen);
    file.public_addr = Some(start.public_addr);
    file.auth = Some(settings.auth.clone());
    file.trust = Some(settings.trust.clone());
    file.user = Some(ticket.body_unverified().user.to_string());
    // Never read: the promoted role has no password (see the module doc); the key is required
    // of an operator's configuration only.
    file.password_file = Some(start.profile_dir.join("no-password"));
    file.mega = Some(false);
    file.standby = Some(false);
    file.seeds = Some(start.seeds.iter().map(|p| p.addr).collect());
    file.capacity = Some(usize::try_from(start.capacity).unwrap_or(usize::MAX));
    let config = file
        .validate("the promoted role's configuration")
        .map_err(|e| e.to_string())?;
    let server = Server::bind(config, key, ticket, start.seeds.clone())
        .await
        .map_err(|e| e.to_string())?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, capacity = start.capacity, "promoted: serving as a supernode");
    let shared = std::sync::Arc::clone(server.shared());
    server.run(shutdown).await;
    if shared.was_demoted() {
        if let Err(e) = switchboard_account::promotion::step_down(&profile).await {
            // The auth-server may be down: the ticket lapses at its expiry instead.
            tracing::warn!("step-down not recorded at the auth-server: {e}");
        }
        return Ok(Ended::Demoted);
    }
    if shared.was_revoked() {
        return Ok(Ended::Revoked);
    }
    Ok(Ended::Stopped)
}
