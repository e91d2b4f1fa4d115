//! `client login` and `client signup`: one exchange with the auth-server over QUIC, then the
//! profile on disk.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_net::config::Role as TransportRole;
use switchboard_net::framed;
use switchboard_net::{
    client_config, transport_config, Dialer, HandshakeError, Identity, PeerPolicy, Resumption,
    StreamError, REQUEST_TIMEOUT,
};
use switchboard_proto::messages::{AuthRequest, AuthResponse, Password};
use switchboard_proto::version::{Hello, VersionRange, ALPN_AUTH};
use switchboard_proto::wire_error::WireError;
use switchboard_proto::{AuthKey, SoftwareVersion, Ticket, TrustAnchor, Username};

use crate::profile::{Profile, ProfileError, Settings};

/// How long to wait for the auth-server's handshake before calling it unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a login failed. The texts are what the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No answer from the address.
    #[error("auth-server unreachable at {0}")]
    Unreachable(String),
    /// The handshake failed (wrong key, not an auth-server).
    #[error("cannot talk to the auth-server at {addr}: {reason}")]
    Handshake {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Wrong password or unknown user (deliberately indistinguishable).
    #[error("wrong username or password")]
    BadCredentials,
    /// The account is disabled.
    #[error("account disabled")]
    Disabled,
    /// Throttled.
    #[error("too many attempts, retry in {0} s")]
    Throttled(u64),
    /// The auth-server is overloaded.
    #[error("auth-server busy, retry in {0} s")]
    Busy(u64),
    /// Another refusal.
    #[error("refused: {0}")]
    Refused(WireError),
    /// The exchange broke.
    #[error("auth-server exchange failed: {0}")]
    Exchange(#[from] StreamError),
    /// The answer made no sense (wrong message, a ticket that does not verify).
    #[error("auth-server answered nonsense: {0}")]
    Protocol(String),
    /// The profile could not be written.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// What a login produced.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The ticket.
    pub ticket: Ticket,
    /// Supernodes in the host cache now.
    pub hosts: usize,
    /// Entries in the bootstrap list received.
    pub bootstrap: usize,
}

fn seconds(ms: u32) -> u64 {
    u64::from(ms).div_ceil(1000).max(1)
}

impl From<WireError> for LoginError {
    fn from(error: WireError) -> Self {
        match error {
            WireError::BadCredentials => Self::BadCredentials,
            WireError::AccountDisabled => Self::Disabled,
            WireError::Throttled { retry_after_ms } => Self::Throttled(seconds(retry_after_ms)),
            WireError::Busy { retry_after_ms, .. } => Self::Busy(seconds(retry_after_ms)),
            other => Self::Refused(other),
        }
    }
}

/// This build's version.
pub fn software_version() -> SoftwareVersion {
    env!("CARGO_PKG_VERSION").parse().unwrap_or_default()
}

/// Resolves `auth` (an address or `host:port`).
async fn resolve(auth: &str) -> Result<SocketAddr, LoginError> {
    tokio::net::lookup_host(auth)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| LoginError::Unreachable(auth.to_owned()))
}

/// An open, greeted connection to the auth-server (for logins, refreshes, and a supernode's
/// announcements).
#[derive(Debug)]
pub struct AuthConnection {
    dialer: Dialer,
    connection: switchboard_net::PeerConnection,
}

impl AuthConnection {
    /// Resolves `auth`, connects presenting `identity`, insists on the key `trust`, and says
    /// `Hello`.
    pub async fn open(auth: &str, trust: AuthKey, identity: &Identity) -> Result<Self, LoginError> {
        let addr = resolve(auth).await?;
        let policy = PeerPolicy::ExactKey(trust);
        let config = client_config(
            identity,
            policy.clone(),
            &[ALPN_AUTH],
            transport_config(TransportRole::Dialer),
            Resumption::Enabled,
        )
        .map_err(|e| LoginError::Protocol(e.to_string()))?;
        let bind: SocketAddr = if addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let dialer = Dialer::bind(bind, config, policy).map_err(|e| LoginError::Handshake {
            addr: auth.to_owned(),
            reason: e.to_string(),
        })?;
        let connection = match dialer.connect(addr, CONNECT_TIMEOUT).await {
            Ok(connection) => connection,
            Err(HandshakeError::Timeout(_))
            | Err(HandshakeError::Connection(quinn::ConnectionError::TimedOut)) => {
                return Err(LoginError::Unreachable(auth.to_owned()))
            }
            Err(e) => {
                return Err(LoginError::Handshake {
                    addr: auth.to_owned(),
                    reason: e.to_string(),
                })
            }
        };
        let link = Self { dialer, connection };
        let hello = AuthRequest::Hello(Hello {
            protocol: VersionRange::CURRENT,
            software: software_version(),
        });
        match link.ask(&hello).await? {
            AuthResponse::Welcome(_) => Ok(link),
            AuthResponse::Error(e) => Err(e.into()),
            other => Err(LoginError::Protocol(format!(
                "{other:?} instead of Welcome"
            ))),
        }
    }

    /// Sends one request and returns the answer.
    pub async fn ask(&self, request: &AuthRequest) -> Result<AuthResponse, LoginError> {
        Ok(framed::request(&self.connection.connection, request, REQUEST_TIMEOUT).await?)
    }

    /// Closes the connection, waiting briefly for the peer to acknowledge.
    pub async fn close(self) {
        self.dialer.shutdown(Duration::from_millis(200)).await;
    }
}

/// Logs in (or signs up, then logs in) and stores the result in `profile`.
pub async fn login(
    profile: &Profile,
    auth: &str,
    trust: AuthKey,
    user: Username,
    password: Password,
    signup: bool,
) -> Result<LoggedIn, LoginError> {
    let anchor = TrustAnchor::new(trust).map_err(|e| LoginError::Protocol(e.to_string()))?;
    profile.create()?;
    let key = profile.node_key()?;
    let node = key.node_id();
    let link = AuthConnection::open(auth, trust, &Identity::new(key, None)).await?;
    let request = if signup {
        AuthRequest::Signup {
            user: user.clone(),
            password,
        }
    } else {
        AuthRequest::Login {
            user: user.clone(),
            password,
        }
    };
    let answer = link.ask(&request).await?;
    link.close().await;
    let (ticket, bootstrap) = match answer {
        AuthResponse::LoggedIn {
            ticket,
            auth_key,
            bootstrap,
        } => {
            if auth_key != trust {
                return Err(LoginError::Protocol("signed by another key".to_owned()));
            }
            (ticket, bootstrap)
        }
        AuthResponse::Error(e) => return Err(e.into()),
        other => {
            return Err(LoginError::Protocol(format!(
                "{other:?} instead of a ticket"
            )))
        }
    };
    let body = ticket
        .verify_for_peer(&anchor, switchboard_net::now_unix(), &node)
        .map_err(|e| LoginError::Protocol(format!("the ticket does not verify: {e}")))?;
    if body.user != user {
        return Err(LoginError::Protocol(format!("a ticket for {}", body.user)));
    }
    profile.save_settings(&Settings {
        user: user.to_string(),
        auth: auth.to_owned(),
        trust: trust.to_string(),
    })?;
    profile.save_ticket(&ticket)?;
    let hosts = profile.merge_bootstrap(&bootstrap)?;
    Ok(LoggedIn {
        ticket,
        hosts,
        bootstrap: bootstrap.len(),
    })
}

/// The profile's trusted auth key, as a key and an anchor, and the auth-server's address.
pub(crate) fn trust_of(profile: &Profile) -> Result<(AuthKey, TrustAnchor, String), LoginError> {
    let settings = profile.settings()?;
    let trust: AuthKey = settings
        .trust
        .parse()
        .map_err(|e| LoginError::Protocol(format!("trust: {e}")))?;
    let anchor = TrustAnchor::new(trust).map_err(|e| LoginError::Protocol(e.to_string()))?;
    Ok((trust, anchor, settings.auth))
}

/// Whether a ticket should be refreshed at `now`: in its last quarter.
pub fn needs_refresh(ticket: &Ticket, now: switchboard_proto::UnixTime) -> bool {
    refresh_due_in(ticket, now) == 0
}

/// Seconds from `now` until the ticket enters its last quarter (0: it has; `u64::MAX` for a
/// ticket too short to have one).
pub fn refresh_due_in(ticket: &Ticket, now: switchboard_proto::UnixTime) -> u64 {
    let body = ticket.body_unverified();
    let quarter = body.expires_at.since(body.issued_at) / 4;
    if quarter == 0 {
        return u64::MAX;
    }
    // Due once `remaining < quarter`, that is `remaining_secs(now) + 1 - quarter` from now.
    ticket
        .remaining_secs(now)
        .saturating_add(1)
        .saturating_sub(quarter)
}

/// Trades the profile's ticket for a fresh one (no password: the auth-server checks that the
/// account is still enabled and that this connection holds the ticket's key), and stores it.
pub async fn refresh_ticket(profile: &Profile) -> Result<Ticket, LoginError> {
    let (trust, anchor, auth) = trust_of(profile)?;
    let key = profile.node_key()?;
    let node = key.node_id();
    let ticket = profile.ticket()?;
    let link =
        AuthConnection::open(&auth, trust, &Identity::new(key, Some(ticket.clone()))).await?;
    let answer = link.ask(&AuthRequest::RefreshTicket { ticket }).await?;
    link.close().await;
    let fresh = match answer {
        AuthResponse::TicketRefreshed { ticket } => ticket,
        AuthResponse::Error(e) => return Err(e.into()),
        other => {
            return Err(LoginError::Protocol(format!(
                "{other:?} instead of a ticket"
            )))
        }
    };
    fresh
        .verify_for_peer(&anchor, switchboard_net::now_unix(), &node)
        .map_err(|e| LoginError::Protocol(format!("the ticket does not verify: {e}")))?;
    profile.save_ticket(&fresh)?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::{Role, SecretKey, TicketBody, UnixTime};

    #[test]
    fn a_ticket_is_refreshed_in_its_last_quarter() {
        let auth = SecretKey::from_seed([1; 32]);
        let ticket = Ticket::issue(
            &auth,
            TicketBody {
                user: Username::new("alice").unwrap(),
                node: SecretKey::from_seed([2; 32]).node_id(),
                role: Role::User,
                issued_at: UnixTime(1_000),
                expires_at: UnixTime(1_000 + 4_000),
                serial: 1,
            },
        )
        .unwrap();
        assert!(!needs_refresh(&ticket, UnixTime(3_999)));
        assert!(needs_refresh(&ticket, UnixTime(4_001)));
    }
}
