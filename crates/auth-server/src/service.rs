//! The auth service: answers [`AuthRequest`]s. Owns the account store, the password hasher,
//! the throttles, the bootstrap registry and the counters; the server loop in [`crate::serve`]
//! feeds it requests.
//!
//! Cost control, in the order a login meets it:
//! 1. throttles per source address (an IPv4 address or an IPv6 /64) and per (account, source
//!    address) pair: attempt rate, then growing lockouts after failures; `Throttled` answers
//!    cost microseconds. Failures against an account from anywhere only *slow* its checks
//!    down (up to [`ACCOUNT_DELAY_MAX`] each), never lock it: whoever knows a name could
//!    otherwise keep its owner out, and a supernode's service account name is in every ticket
//!    it presents;
//! 2. a bounded queue in front of the password checks: past `max_queued_logins` waiting, a
//!    login gets `Busy` at once instead of holding memory;
//! 3. at most `max_concurrent_logins` argon2 checks at a time, on blocking threads, so a storm
//!    cannot take more than that many cores or `memory_kib` buffers.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::RngCore;
use switchboard_engine::{Throttle, ThrottleConfig, Time};
use switchboard_net::gate::source_key;
use switchboard_net::{now_unix, PeerAuthError, PeerCertificate, PeerPolicy};
use switchboard_proto::limits::{MAX_BOOTSTRAP, MAX_REVOCATIONS_PAGE};
use switchboard_proto::messages::{
    AuthRequest, AuthResponse, BootstrapEntry, Password, RevocationPage, ServiceMode,
};
use switchboard_proto::version::{negotiate, VersionRange, Welcome};
use switchboard_proto::wire_error::{Alternatives, UnauthorizedReason, WireError};
use switchboard_proto::{
    BoundedVec, NodeId, Role, SecretKey, SoftwareVersion, Ticket, TicketBody, TrustAnchor, Username,
};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::Config;
use crate::issuance::{Issuance, MAX_ACCOUNTS_TRACKED};
use crate::password::Hasher;
use crate::registry::{Announcement, Registry};
use crate::store::{Account, Store, StoreError};

mod promotion;

/// What a `Busy` answer to a login asks the client to wait: about one password check per
/// waiting login ahead of it, rounded up to a second.
const BUSY_RETRY_MS: u32 = 1_000;

/// Delay added before a password check per failure against the account (from any address)
/// beyond the free ones: a guesser spread over many addresses is slowed, the owner is not
/// refused.
const ACCOUNT_DELAY_STEP: Duration = Duration::from_millis(100);

/// The most an account's failures delay one password check: a second is noticeable, never a
/// lockout, and with at most `max_queued_logins` waiting it caps what a distributed guesser
/// gets per account at about that many checks per second (the per-address lockouts bound it
/// further, by the number of addresses it controls).
pub const ACCOUNT_DELAY_MAX: Duration = Duration::from_secs(1);

/// A source address gets this many times an account's free failures before its own lockout:
/// one address may be a NAT with a whole office behind it, and one guesser there must not lock
/// every colleague out; a sprayer trying a few passwords on many accounts is still stopped.
const ADDRESS_FREE_FAILURES_FACTOR: u32 = 10;

/// This build's version, sent in `Welcome`.
pub fn software_version() -> SoftwareVersion {
    env!("CARGO_PKG_VERSION").parse().unwrap_or_default()
}

/// The service's counters, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Logins (and sign-ups) that got a ticket.
    pub logins_ok: AtomicU64,
    /// Logins refused for a wrong password, unknown user or disabled account.
    pub logins_failed: AtomicU64,
    /// Logins refused by a throttle.
    pub logins_throttled: AtomicU64,
    /// Logins whose password check was delayed by failures against the account.
    pub logins_delayed: AtomicU64,
    /// Logins refused because their account got its share of new tickets.
    pub tickets_limited: AtomicU64,
    /// Requests refused because the caller's ticket is revoked.
    pub revoked_callers: AtomicU64,
    /// Logins refused because too many were waiting.
    pub logins_busy: AtomicU64,
    /// Tickets issued (logins, sign-ups and refreshes).
    pub tickets_issued: AtomicU64,
    /// Supernode announcements accepted.
    pub announcements: AtomicU64,
    /// Connections closed for a malformed frame.
    pub malformed: AtomicU64,
    /// Nominations accepted (promoted tickets issued).
    pub promotions: AtomicU64,
    /// Nominations refused (bad signature, revoked nominator, over a limit, wrong caller).
    pub nominations_refused: AtomicU64,
    /// Promoted nodes that stepped down.
    pub step_downs: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Who sent a request: the connection's proven key, its certificate and its address.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key the peer proved it holds in the TLS handshake.
    pub node: NodeId,
    /// Its certificate (for requests that need the ticket it carries).
    pub certificate: PeerCertificate,
    /// Its source address.
    pub ip: IpAddr,
}

/// Outcome of a password check on a blocking thread.
enum Checked {
    Granted(Account),
    BadCredentials,
    Disabled,
    /// The device's key is revoked.
    NodeRevoked,
    Taken,
    Failed(StoreError),
}

/// The auth service; see the module doc.
#[derive(Debug)]
pub struct Service {
    config: Config,
    signing: SecretKey,
    anchor: TrustAnchor,
    hasher: Hasher,
    pub(crate) store: Mutex<Store>,
    /// Lockouts per (account, source): what a wrong password from one place costs there.
    pairs: Mutex<Throttle<(Username, IpAddr)>>,
    /// Attempt rate and lockouts per source, whatever the account (a sprayer).
    addresses: Mutex<Throttle<IpAddr>>,
    /// Failures per account from anywhere: only a delay (see [`ACCOUNT_DELAY_MAX`]).
    accounts: Mutex<Throttle<Username>>,
    pub(crate) registry: Mutex<Registry>,
    /// New tickets per account.
    issuance: Mutex<Issuance>,
    checks: Semaphore,
    queued: AtomicUsize,
    started: Instant,
    /// The counters.
    pub metrics: Metrics,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the state guarded
/// here (throttles, registry, a SQLite handle) stays consistent across a panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn millis(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

impl Service {
    /// Assembles the service.
    pub fn new(config: Config, signing: SecretKey, store: Store, hasher: Hasher) -> Self {
        Self {
            anchor: signing.trust_anchor(),
            pairs: Mutex::new(Throttle::new(config.throttle)),
            addresses: Mutex::new(Throttle::new(ThrottleConfig {
                free_failures: config
                    .throttle
                    .free_failures
                    .saturating_mul(ADDRESS_FREE_FAILURES_FACTOR),
                ..config.throttle
            })),
            accounts: Mutex::new(Throttle::new(config.throttle)),
            checks: Semaphore::new(config.max_concurrent_logins),
            issuance: Mutex::new(Issuance::new(
                config.tickets_per_account_per_min,
                config.ticket_burst_per_account,
                MAX_ACCOUNTS_TRACKED,
            )),

            config,
            signing,
            hasher,
            store: Mutex::new(store),
            registry: Mutex::new(Registry::default()),
            queued: AtomicUsize::new(0),
            started: Instant::now(),
            metrics: Metrics::default(),
        }
    }

    /// The engine's clock: milliseconds since the service started.
    fn now(&self) -> Time {
        Time(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Accounts in the store (for the `accounts` gauge).
    pub fn account_count(&self) -> u64 {
        lock(&self.store).count().unwrap_or(0)
    }

    /// Waits until no password check is running (for shutdown), then keeps them all.
    pub async fn drain(&self) {
        let all = u32::try_from(self.config.max_concurrent_logins).unwrap_or(u32::MAX);
        if let Ok(permits) = self.checks.acquire_many(all).await {
            permits.forget();
        }
    }

    /// Answers one request from `caller`.
    pub async fn handle(self: &Arc<Self>, request: AuthRequest, caller: &Caller) -> AuthResponse {
        match request {
            AuthRequest::Hello(hello) => match negotiate(VersionRange::CURRENT, hello.protocol) {
                Ok(protocol) => AuthResponse::Welcome(Welcome {
                    protocol,
                    software: software_version(),
                }),
                Err(_) => AuthResponse::Error(WireError::ProtocolUnsupported {
                    min: VersionRange::CURRENT.min,
                    max: VersionRange::CURRENT.max,
                }),
            },
            AuthRequest::Login { user, password } => {
                self.login(caller, user, password, false).await
            }
            AuthRequest::Signup { user, password } => {
                if !self.config.open_signup {
                    return AuthResponse::Error(WireError::unsupported(
                        "sign-up is closed on this server; ask an operator for an account",
                    ));
                }
                self.login(caller, user, password, true).await
            }
            AuthRequest::RefreshTicket { ticket } => self.refresh(caller, &ticket).await,
            AuthRequest::Announce {
                addr,
                mode,
                capacity,
                clients,
            } => self.announce(caller, addr, mode, capacity, clients),
            AuthRequest::FetchRevocations { cursor } => self.revocations(caller, cursor).await,
            AuthRequest::Nominated { nomination } => self.nominated(caller, nomination).await,
            AuthRequest::StepDown { ticket } => self.step_down(caller, &ticket).await,
        }
    }

    /// The throttles a login meets; on success, how long to delay its password check.
    fn throttle(&self, caller: &Caller, user: &Username) -> Result<Duration, WireError> {
        let now = self.now();
        let source = source_key(caller.ip);
        let verdict = lock(&self.addresses)
            .attempt(now, &source)
            .and_then(|()| lock(&self.pairs).attempt(now, &(user.clone(), source)));
        verdict.map_err(|throttled| {
            bump(&self.metrics.logins_throttled);
            WireError::Throttled {
                retry_after_ms: millis(throttled.retry_after()),
            }
        })?;
        let excess = lock(&self.accounts).excess_failures(now, user);
        Ok(ACCOUNT_DELAY_STEP
            .saturating_mul(excess)
            .min(ACCOUNT_DELAY_MAX))
    }

    /// Records a refused password for `user` from `ip` in every throttle.
    fn login_failed(&self, user: &Username, ip: IpAddr) {
        let now = self.now();
        let source = source_key(ip);
        lock(&self.pairs).failed(now, &(user.clone(), source));
        lock(&self.addresses).failed(now, &source);
        lock(&self.accounts).failed(now, user);
    }

    /// A place in the bounded queue, then a password-check permit; `None` when the queue is
    /// full.
    async fn admit(&self) -> Option<SemaphorePermit<'_>> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.config.max_queued_logins {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let permit = self.checks.acquire().await.ok();
        self.queued.fetch_sub(1, Ordering::AcqRel);
        permit
    }

    async fn login(
        self: &Arc<Self>,
        caller: &Caller,
        user: Username,
        password: Password,
        signup: bool,
    ) -> AuthResponse {
        match self.throttle(caller, &user) {
            Err(e) => return AuthResponse::Error(e),
            Ok(delay) if !delay.is_zero() => {
                bump(&self.metrics.logins_delayed);
                tokio::time::sleep(delay).await;
            }
            Ok(_) => {}
        }
        let Some(permit) = self.admit().await else {
            bump(&self.metrics.logins_busy);
            return AuthResponse::Error(WireError::Busy {
                retry_after_ms: BUSY_RETRY_MS,
                alternatives: Alternatives::new(),
            });
        };
        let service = Arc::clone(self);
        let name = user.clone();
        let node = caller.node;
        let checked =
            tokio::task::spawn_blocking(move || service.check(&name, &password, signup, &node))
                .await
                .unwrap_or_else(|e| {
                    Checked::Failed(StoreError::Corrupt {
                        what: "password check task",
                        value: e.to_string(),
                    })
                });
        drop(permit);
        match checked {
            Checked::Granted(account) => {
                // The pair's failures are forgotten; the account's stay until they age out,
                // so that the owner logging in does not reset a guesser's slow-down.
                lock(&self.pairs).succeeded(&(user.clone(), source_key(caller.ip)));
                if let Err(wait) = lock(&self.issuance).take(self.now(), &user) {
                    bump(&self.metrics.tickets_limited);
                    tracing::warn!(user = %user, "new tickets for this account over its rate");
                    return AuthResponse::Error(WireError::Throttled {
                        retry_after_ms: millis(wait),
                    });
                }
                match self.issue(&account, caller.node, None) {
                    Ok(ticket) => {
                        bump(&self.metrics.logins_ok);
                        tracing::info!(user = %user, node = %caller.node.short(), "login");
                        AuthResponse::LoggedIn {
                            ticket,
                            auth_key: self.anchor.key(),
                            bootstrap: self.bootstrap(),
                        }
                    }
                    Err(e) => AuthResponse::Error(e),
                }
            }
            Checked::NodeRevoked => {
                bump(&self.metrics.logins_failed);
                tracing::warn!(user = %user, node = %caller.node.short(), "login from a revoked device key");
                AuthResponse::Error(WireError::Unauthorized {
                    reason: UnauthorizedReason::Revoked,
                })
            }
            Checked::BadCredentials | Checked::Disabled | Checked::Taken => {
                self.login_failed(&user, caller.ip);
                bump(&self.metrics.logins_failed);
                tracing::debug!(user = %user, ip = %caller.ip, "login refused");
                AuthResponse::Error(match checked {
                    Checked::Disabled => WireError::AccountDisabled,
                    Checked::Taken => WireError::unsupported("that username is taken"),
                    _ => WireError::BadCredentials,
                })
            }
            Checked::Failed(e) => {
                tracing::error!("login of {user} failed: {e}");
                AuthResponse::Error(WireError::Internal)
            }
        }
    }

    /// The password check and the store writes around it; runs on a blocking thread.
    fn check(&self, user: &Username, password: &Password, signup: bool, node: &NodeId) -> Checked {
        match lock(&self.store).is_node_revoked(node) {
            Ok(false) => {}
            Ok(true) => return Checked::NodeRevoked,
            Err(e) => return Checked::Failed(e),
        }
        let now = now_unix();
        if signup {
            let hash = match self.hasher.hash(password.expose()) {
                Ok(hash) => hash,
                Err(e) => {
                    return Checked::Failed(StoreError::Corrupt {
                        what: "password hash",
                        value: e.to_string(),
                    })
                }
            };
            let store = lock(&self.store);
            return match store.add(user, &hash, Role::User, now) {
                Ok(()) => match store.get(user) {
                    Ok(Some(account)) => Checked::Granted(account),
                    Ok(None) => Checked::BadCredentials,
                    Err(e) => Checked::Failed(e),
                },
                Err(StoreError::Exists(_)) => Checked::Taken,
                Err(e) => Checked::Failed(e),
            };
        }
        let account = match lock(&self.store).get(user) {
            Ok(account) => account,
            Err(e) => return Checked::Failed(e),
        };
        // The lock is released during the (slow) hash check; an unknown user is checked
        // against the dummy hash so that both refusals take the same time.
        let hash = account.as_ref().map(|a| a.password_hash.as_str());
        if !self.hasher.verify(password.expose(), hash) {
            return Checked::BadCredentials;
        }
        let Some(account) = account else {
            return Checked::BadCredentials;
        };
        if account.disabled {
            return Checked::Disabled;
        }
        if let Err(e) = lock(&self.store).touch_login(user, now) {
            tracing::warn!("recording last login of {user}: {e}");
        }
        Checked::Granted(account)
    }

    /// Signs a ticket for `node`. A refresh passes its predecessor's serial, so that revoking
    /// the serial revokes every refresh of it; a login gets a fresh random one.
    fn issue(
        &self,
        account: &Account,
        node: NodeId,
        serial: Option<u64>,
    ) -> Result<Ticket, WireError> {
        self.sign_ticket(
            account,
            account.role,
            node,
            serial,
            self.config.ticket_lifetime,
        )
    }

    /// Signs a ticket of `role` for `node` on `account`, valid for `lifetime`.
    fn sign_ticket(
        &self,
        account: &Account,
        role: Role,
        node: NodeId,
        serial: Option<u64>,
        lifetime: Duration,
    ) -> Result<Ticket, WireError> {
        let now = now_unix();
        let body = TicketBody {
            user: account.username.clone(),
            node,
            role,
            issued_at: now,
            expires_at: now.plus(lifetime.as_secs()),
            serial: serial.unwrap_or_else(|| rand::rngs::OsRng.next_u64()),
        };
        match Ticket::issue(&self.signing, body) {
            Ok(ticket) => {
                bump(&self.metrics.tickets_issued);
                Ok(ticket)
            }
            Err(e) => {
                tracing::error!("issuing a ticket: {e}");
                Err(WireError::Internal)
            }
        }
    }

    async fn refresh(self: &Arc<Self>, caller: &Caller, ticket: &Ticket) -> AuthResponse {
        let unauthorized = |reason| AuthResponse::Error(WireError::Unauthorized { reason });
        let body = match ticket.verify_for_peer(&self.anchor, now_unix(), &caller.node) {
            Ok(body) => body.clone(),
            Err(e) => return unauthorized(PeerAuthError::from(e).unauthorized_reason()),
        };
        let service = Arc::clone(self);
        let user = body.user.clone();
        let predecessor = body.clone();
        let looked_up = tokio::task::spawn_blocking(move || {
            let store = lock(&service.store);
            Ok::<_, StoreError>((store.get(&user)?, store.is_revoked(&predecessor)?))
        })
        .await;
        match looked_up {
            Ok(Ok((Some(account), false))) if !account.disabled && body.role == Role::Promoted => {
                self.refresh_promoted(caller, &account, &body).await
            }
            Ok(Ok((Some(account), false))) if !account.disabled => {
                // The refreshed ticket inherits the serial, and with it any revocation of it.
                match self.issue(&account, caller.node, Some(body.serial)) {
                    Ok(ticket) => AuthResponse::TicketRefreshed { ticket },
                    Err(e) => AuthResponse::Error(e),
                }
            }
            Ok(Ok((Some(account), _))) if account.disabled => {
                AuthResponse::Error(WireError::AccountDisabled)
            }
            Ok(Ok(_)) => unauthorized(UnauthorizedReason::Revoked),
            Ok(Err(e)) => {
                tracing::error!("ticket refresh: {e}");
                AuthResponse::Error(WireError::Internal)
            }
            Err(e) => {
                tracing::error!("ticket refresh task: {e}");
                AuthResponse::Error(WireError::Internal)
            }
        }
    }

    /// The bootstrap list, without supernodes whose announcing ticket has been revoked since
    /// (a disabled account's node is handed to no client, whether or not it stopped).
    fn bootstrap(&self) -> BoundedVec<BootstrapEntry, MAX_BOOTSTRAP> {
        let mut registry = lock(&self.registry);
        let forgotten = {
            let store = lock(&self.store);
            registry.forget_revoked(|ticket| store.is_revoked(ticket).unwrap_or(false))
        };
        if forgotten > 0 {
            tracing::info!(forgotten, "revoked supernodes left the bootstrap list");
        }
        registry.bootstrap(now_unix())
    }

    /// Checks that the caller's certificate carries a valid ticket of one of `roles`.
    fn require(&self, caller: &Caller, roles: &[Role]) -> Result<TicketBody, WireError> {
        let policy = PeerPolicy::Ticketed {
            auth: self.anchor.clone(),
            roles: roles.to_vec(),
            node: None,
        };
        let ticket = policy
            .check(&caller.certificate, now_unix())
            .ok()
            .and_then(|identity| identity.ticket)
            .ok_or(WireError::Unauthorized {
                reason: UnauthorizedReason::RoleNotAllowed,
            })?;
        // A disabled account, a revoked device or serial: refused here as everywhere else.
        match lock(&self.store).is_revoked(&ticket) {
            Ok(false) => Ok(ticket),
            Ok(true) => {
                bump(&self.metrics.revoked_callers);
                tracing::warn!(user = %ticket.user, node = %caller.node.short(), "request with a revoked ticket refused");
                Err(WireError::Unauthorized {
                    reason: UnauthorizedReason::Revoked,
                })
            }
            Err(e) => {
                tracing::error!("revocation check: {e}");
                Err(WireError::Internal)
            }
        }
    }

    fn announce(
        &self,
        caller: &Caller,
        addr: std::net::SocketAddr,
        mode: ServiceMode,
        capacity: u32,
        clients: u32,
    ) -> AuthResponse {
        let roles: &[Role] = match mode {
            ServiceMode::Normal => &[Role::Supernode, Role::Mega, Role::Promoted],
            ServiceMode::Mega | ServiceMode::MegaStandby => &[Role::Mega],
        };
        let ticket = match self.require(caller, roles) {
            Ok(ticket) => ticket,
            Err(e) => return AuthResponse::Error(e),
        };
        let announced = lock(&self.registry).announce(
            now_unix(),
            caller.node,
            Announcement {
                ticket,
                addr,
                mode,
                capacity,
                clients,
            },
            self.config.announce_ttl,
        );
        match announced {
            Ok(expires_at) => {
                bump(&self.metrics.announcements);
                let peers = self.bootstrap();
                AuthResponse::Announced {
                    expires_at,
                    peers: BoundedVec::truncating(
                        peers
                            .into_inner()
                            .into_iter()
                            .filter(|e| e.peer.node != caller.node),
                    ),
                }
            }
            Err(e) => {
                tracing::warn!("announcement from {} refused: {e}", caller.node.short());
                AuthResponse::Error(WireError::Busy {
                    retry_after_ms: millis(self.config.announce_ttl),
                    alternatives: Alternatives::new(),
                })
            }
        }
    }

    async fn revocations(self: &Arc<Self>, caller: &Caller, cursor: u64) -> AuthResponse {
        if let Err(e) = self.require(
            caller,
            &[Role::Supernode, Role::Mega, Role::Promoted, Role::Admin],
        ) {
            return AuthResponse::Error(e);
        }
        let service = Arc::clone(self);
        let page = tokio::task::spawn_blocking(move || {
            lock(&service.store).revocations(cursor, MAX_REVOCATIONS_PAGE)
        })
        .await;
        match page {
            Ok(Ok((entries, next_cursor, complete))) => AuthResponse::Revocations(RevocationPage {
                entries: BoundedVec::truncating(entries),
                next_cursor,
                complete,
            }),
            Ok(Err(e)) => {
                tracing::error!("revocation list: {e}");
                AuthResponse::Error(WireError::Internal)
            }
            Err(e) => {
                tracing::error!("revocation list task: {e}");
                AuthResponse::Error(WireError::Internal)
            }
        }
    }

    /// Prometheus text of the counters.
    pub fn render_metrics(&self) -> String {
        use switchboard_net::metrics::metric;
        let m = &self.metrics;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        metric(
            &mut out,
            "switchboard_auth_logins_ok_total",
            "counter",
            "Logins that got a ticket.",
            get(&m.logins_ok),
        );
        metric(
            &mut out,
            "switchboard_auth_logins_failed_total",
            "counter",
            "Logins refused: wrong password, unknown user or disabled account.",
            get(&m.logins_failed),
        );
        metric(
            &mut out,
            "switchboard_auth_logins_throttled_total",
            "counter",
            "Logins refused by a throttle.",
            get(&m.logins_throttled),
        );
        metric(
            &mut out,
            "switchboard_auth_logins_delayed_total",
            "counter",
            "Logins slowed down by failures against their account from elsewhere.",
            get(&m.logins_delayed),
        );
        metric(
            &mut out,
            "switchboard_auth_tickets_limited_total",
            "counter",
            "Logins refused because their account had its share of new tickets.",
            get(&m.tickets_limited),
        );
        metric(
            &mut out,
            "switchboard_auth_revoked_callers_total",
            "counter",
            "Requests (announcements, refreshes of the list) refused for a revoked ticket.",
            get(&m.revoked_callers),
        );
        metric(
            &mut out,
            "switchboard_auth_logins_busy_total",
            "counter",
            "Logins refused because too many were waiting.",
            get(&m.logins_busy),
        );
        metric(
            &mut out,
            "switchboard_auth_tickets_issued_total",
            "counter",
            "Tickets issued.",
            get(&m.tickets_issued),
        );
        metric(
            &mut out,
            "switchboard_auth_announcements_total",
            "counter",
            "Supernode announcements accepted.",
            get(&m.announcements),
        );
        for (name, help, value) in [
            (
                "switchboard_auth_promotions_total",
                "Nominations accepted: promoted tickets issued.",
                &m.promotions,
            ),
            (
                "switchboard_auth_nominations_refused_total",
                "Nominations refused (signature, revocation, caller, limits).",
                &m.nominations_refused,
            ),
            (
                "switchboard_auth_step_downs_total",
                "Promoted nodes that stepped down (their tickets revoked).",
                &m.step_downs,
            ),
        ] {
            metric(&mut out, name, "counter", help, get(value));
        }
        metric(
            &mut out,
            "switchboard_auth_malformed_total",
            "counter",
            "Connections closed for a malformed frame.",
            get(&m.malformed),
        );
        metric(
            &mut out,
            "switchboard_auth_accounts",
            "gauge",
            "Accounts in the database.",
            self.account_count(),
        );
        metric(
            &mut out,
            "switchboard_auth_password_checks_running",
            "gauge",
            "Password checks running now (at most max_concurrent_logins).",
            u64::try_from(
                self.config
                    .max_concurrent_logins
                    .saturating_sub(self.checks.available_permits()),
            )
            .unwrap_or(0),
        );
        metric(
            &mut out,
            "switchboard_auth_supernodes_announced",
            "gauge",
            "Supernodes in the bootstrap registry.",
            u64::try_from(lock(&self.registry).len()).unwrap_or(0),
        );
        out
    }
}
