//! Promotion by capability and need, and demotion (DESIGN.md section 6), driven on the
//! daemon: `engine`'s [`Nominator`] and [`Demotion`] decide; this module talks.
//!
//! On a home (an operator supernode or an active mega):
//!
//! 1. a client in session sends `OfferPromotion { addr, capacity }`: it is recorded if the
//!    client holds a user ticket and declares a capacity within `promote_max_capacity`;
//! 2. the home dials the offered address back **from a fresh socket** (not the listening one
//!    the client's session arrives on: a dial-back on the same path passes through the NAT
//!    state the session opened and proves nothing; rust-libp2p's AutoNAT had that bug over
//!    QUIC, libp2p/rust-libp2p#3900) and insists on the client's node key at the TLS layer;
//! 3. when the overlay runs hot (from the gossiped loads), the best reachable candidate that
//!    has been in session here at least `promote_min_session_secs` gets `Promote { seeds,
//!    nomination }`, a nomination signed by this supernode's key with its ticket. The client
//!    trades it at the auth-server for a `promoted` ticket and joins the overlay; one
//!    nomination at a time, then a cooldown; a nominee that does not join in time backs off.
//!
//! On a promoted supernode, [`Demotion`] decides when it steps down: it then drains like a
//! SIGTERM but with `Redirect { Demoted }`, leaves the overlay and tells the auth-server (see
//! [`crate::promoted`]). Operator supernodes and megas never run it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use switchboard_engine::promotion::{OfferRefused, Poll};
use switchboard_engine::{Demotion, Nominator, OverlayLoad, PromotionConfig, Time};
use switchboard_net::config::Role as TransportRole;
use switchboard_net::{client_config, transport_config, Dialer, Identity, PeerPolicy, Resumption};
use switchboard_proto::messages::SupernodeMessage;
use switchboard_proto::version::ALPN_DIRECTORY;
use switchboard_proto::wire_error::WireError;
use switchboard_proto::{
    BoundedVec, NodeId, Nomination, NominationBody, PeerAddr, Role, TicketBody, Username,
};

use crate::config::{ConfigError, FileConfig};
use crate::server::{lock, Shared};

/// How long a dial-back may take: a handshake over a WAN with a lost packet or two.
pub const DIAL_BACK_TIMEOUT: Duration = Duration::from_secs(3);

/// Dial-backs running at once: each is one handshake of this supernode's CPU; a flood of
/// offers waits its turn (the candidates stay `Checking` until their turn comes).
pub const MAX_DIAL_BACKS: usize = 8;

/// The dwell a promoted supernode draws (uniformly, once per promotion) before it steps down:
/// several promoted supernodes that see the same cold overlay do not leave on the same tick.
const DEMOTION_DWELL_MS: std::ops::RangeInclusive<u64> = 2_000..=8_000;

/// The promotion keys of the configuration, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromotionSettings {
    /// The policy's tuning.
    pub policy: PromotionConfig,
    /// Whether this supernode nominates.
    pub nominate: bool,
    /// Largest capacity a client may declare.
    pub max_capacity: u32,
}

impl Default for PromotionSettings {
    fn default() -> Self {
        Self {
            policy: PromotionConfig::default(),
            nominate: true,
            max_capacity: 1_000,
        }
    }
}

impl PromotionSettings {
    /// Reads the `promote_*` keys and `nominate` of `file`.
    pub(crate) fn from_file(file: &FileConfig, source_name: &str) -> Result<Self, ConfigError> {
        let invalid = |key, problem: &str| ConfigError::Invalid {
            source_name: source_name.to_owned(),
            key,
            problem: problem.to_owned(),
        };
        let d = PromotionConfig::default();
        let high = file
            .promote_high_water_permille
            .unwrap_or(d.high_water_permille);
        if !(1..=1000).contains(&high) {
            return Err(invalid(
                "promote_high_water_permille",
                "must be between 1 and 1000",
            ));
        }
        let low = file
            .promote_low_water_permille
            .unwrap_or(d.low_water_permille);
        if low >= high {
            return Err(invalid(
                "promote_low_water_permille",
                "must be below promote_high_water_permille",
            ));
        }
        let secs =
            |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_secs);
        let cooldown = secs(file.promote_cooldown_secs, d.cooldown);
        let join_deadline = secs(file.promote_join_deadline_secs, d.join_deadline);
        if cooldown.is_zero() {
            return Err(invalid("promote_cooldown_secs", "must be at least 1"));
        }
        if join_deadline.is_zero() {
            return Err(invalid("promote_join_deadline_secs", "must be at least 1"));
        }
        let max_capacity = file.promote_max_capacity.unwrap_or(1_000);
        if max_capacity == 0 {
            return Err(invalid("promote_max_capacity", "must be at least 1"));
        }
        Ok(Self {
            policy: PromotionConfig {
                high_water_permille: high,
                low_water_permille: low,
                clients_per_supernode: file
                    .promote_clients_per_supernode
                    .unwrap_or(d.clients_per_supernode),
                min_session: secs(file.promote_min_session_secs, d.min_session),
                min_in_role: secs(file.promote_min_in_role_secs, d.min_in_role),
                cooldown,
                join_deadline,
                renominate_after: secs(file.promote_renominate_after_secs, d.renominate_after),
            },
            nominate: file.nominate.unwrap_or(true),
            max_capacity,
        })
    }
}

/// What a client offered, beside what the nominator tracks.
#[derive(Debug, Clone)]
struct Offer {
    user: Username,
    addr: SocketAddr,
}

/// Counters, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct PromotionMetrics {
    /// Offers recorded.
    pub offers_total: AtomicU64,
    /// Dial-backs that reached the client.
    pub dial_backs_ok_total: AtomicU64,
    /// Dial-backs that did not.
    pub dial_backs_failed_total: AtomicU64,
    /// Nominations sent.
    pub nominations_total: AtomicU64,
    /// Nominees that joined the overlay.
    pub promotions_joined_total: AtomicU64,
    /// Nominees that did not join in time.
    pub promotions_failed_total: AtomicU64,
    /// Times this (promoted) supernode stepped down.
    pub demotions_total: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The daemon's promotion state.
#[derive(Debug)]
pub struct Promotions {
    nominator: Nominator,
    offers: HashMap<NodeId, Offer>,
    /// On a promoted supernode: when to step down, and the dwell it drew.
    demotion: Option<(Demotion, Duration)>,
    dial_backs_running: usize,
}

impl Promotions {
    /// The state of a supernode whose own ticket has `role`, started at `now`.
    pub fn new(settings: &PromotionSettings, role: Role, now: Time) -> Self {
        let demotion = (role == Role::Promoted).then(|| {
            let dwell = Duration::from_millis(rand::thread_rng().gen_range(DEMOTION_DWELL_MS));
            (Demotion::new(settings.policy, now), dwell)
        });
        Self {
            nominator: Nominator::new(settings.policy),
            offers: HashMap::new(),
            demotion,
            dial_backs_running: 0,
        }
    }
}

/// Whether this supernode nominates now: configured to, allowed by its ticket (operator
/// supernodes and megas; never a promoted one), and serving clients (not a standby).
fn nominates(shared: &Shared) -> bool {
    shared.config.promotion.nominate && shared.own_role.may_nominate() && shared.admits_clients()
}

/// Answers a client's `OfferPromotion`.
pub fn offer(
    shared: &Shared,
    node: NodeId,
    ticket: &TicketBody,
    opened: Time,
    addr: SocketAddr,
    capacity: u32,
) -> SupernodeMessage {
    let refuse = |why: &str| SupernodeMessage::Error(WireError::unsupported(why));
    if !nominates(shared) {
        return refuse("this supernode does not nominate clients for promotion");
    }
    if ticket.role != Role::User {
        return refuse("only a user's device is promoted; this ticket already serves");
    }
    if addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return SupernodeMessage::Error(WireError::malformed(
            "the offered address must be a unicast address with a port",
        ));
    }
    let max = shared.config.promotion.max_capacity;
    if capacity > max {
        return refuse(&format!(
            "declared capacity {capacity} is above this network's limit of {max}"
        ));
    }
    let now = shared.now();
    let mut state = lock(&shared.promotions);
    match state.nominator.offer(now, node, capacity, opened) {
        Ok(()) => {
            state.offers.insert(
                node,
                Offer {
                    user: ticket.user.clone(),
                    addr,
                },
            );
            // The nominator bounds its candidates; keep only the offers it still tracks.
            if state.offers.len() > state.nominator.candidates() {
                let tracked: Vec<NodeId> = state
                    .offers
                    .keys()
                    .filter(|n| state.nominator.reach(n).is_some())
                    .copied()
                    .collect();
                state.offers.retain(|n, _| tracked.contains(n));
            }
            bump(&shared.promotion_metrics.offers_total);
            tracing::debug!(device = %node.short(), %addr, capacity, "promotion offer recorded");
            SupernodeMessage::OfferTaken
        }
        Err(e @ (OfferRefused::NoCapacity | OfferRefused::BackingOff)) => refuse(&e.to_string()),
    }
}

/// `node`'s last session here ended: it is no candidate any more.
pub fn session_ended(shared: &Shared, node: &NodeId) {
    let mut state = lock(&shared.promotions);
    state.nominator.withdraw(node);
    state.offers.remove(node);
}

/// The overlay as the gossip shows it, this supernode included.
fn overlay_load(shared: &Shared) -> OverlayLoad {
    let own = shared.admits_clients().then(|| {
        let admission = lock(&shared.admission);
        (admission.capacity() as u64, admission.clients() as u64)
    });
    shared
        .overlay
        .read(|o| OverlayLoad::of(o.membership(), own))
}

/// One round: dial-backs to start, a nomination to send, a demotion to decide.
pub fn tick(shared: &Arc<Shared>, now: Time) {
    let load = overlay_load(shared);
    let mut state = lock(&shared.promotions);
    if let Some((demotion, dwell)) = &mut state.demotion {
        let mine = lock(&shared.admission).capacity() as u64;
        if !shared.is_draining() && demotion.observe(now, &load, mine, *dwell) {
            tracing::info!(
                supernodes = load.supernodes,
                capacity = load.capacity,
                clients = load.clients,
                "overlay cold: this promoted supernode steps down"
            );
            bump(&shared.promotion_metrics.demotions_total);
            shared.stop_demoted();
        }
        return;
    }
    if !nominates(shared) {
        return;
    }
    if let Some(pending) = state.nominator.pending() {
        if shared.overlay.read(|o| o.membership().is_live(&pending)) {
            state.nominator.joined(&pending);
            bump(&shared.promotion_metrics.promotions_joined_total);
            tracing::info!(device = %pending.short(), "promoted client joined the overlay");
        }
    }
    let room = MAX_DIAL_BACKS.saturating_sub(state.dial_backs_running);
    for node in state.nominator.poll_dial_backs_up_to(room) {
        if let Some(addr) = state.offers.get(&node).map(|offer| offer.addr) {
            state.dial_backs_running += 1;
            tokio::spawn(dial_back(Arc::clone(shared), node, addr));
        }
    }
    let Poll { nominate, failed } = state.nominator.poll(now, &load);
    if let Some(node) = failed {
        bump(&shared.promotion_metrics.promotions_failed_total);
        tracing::warn!(device = %node.short(), "nominee did not join the overlay in time");
    }
    if let Some((node, capacity)) = nominate {
        let offer = state.offers.remove(&node);
        drop(state);
        if let Some(offer) = offer {
            send_nomination(shared, node, offer, capacity, &load);
        }
    }
}

/// Signs a nomination for `node` and pushes `Promote` on its session.
fn send_nomination(shared: &Shared, node: NodeId, offer: Offer, capacity: u32, load: &OverlayLoad) {
    let ticket = match switchboard_account::profile::Profile::new(&shared.config.data_dir).ticket()
    {
        Ok(ticket) => ticket,
        Err(e) => {
            tracing::error!("no ticket to nominate with: {e}");
            return;
        }
    };
    let body = NominationBody {
        nominee: node,
        user: offer.user,
        nominator: shared.node,
        addr: offer.addr,
        capacity,
        issued_at: switchboard_net::now_unix(),
    };
    let nomination = match Nomination::sign(&shared.key, ticket, body) {
        Ok(nomination) => nomination,
        Err(e) => {
            tracing::error!("nomination not signed: {e}");
            return;
        }
    };
    let me = PeerAddr {
        node: shared.node,
        addr: shared.public_addr,
    };
    let others = shared.alternatives();
    let seeds = BoundedVec::truncating(std::iter::once(me).chain(others.iter().copied()));
    let session = lock(&shared.sessions)
        .get(&node)
        .and_then(|sessions| sessions.last().cloned());
    let Some(session) = session else { return };
    let promote = SupernodeMessage::Promote {
        seeds,
        nomination: Box::new(nomination),
    };
    if session.push.try_send(promote).is_ok() {
        bump(&shared.promotion_metrics.nominations_total);
        lock(&shared.status).event(format!(
            "nominated client {} for promotion (capacity {capacity})",
            node.short()
        ));
        tracing::info!(
            device = %node.short(),
            capacity,
            utilization_permille = load.utilization_permille(),
            supernodes = load.supernodes,
            "overlay needs capacity: client nominated for promotion"
        );
    }
}

/// Dials `addr` from a fresh socket and insists on `node`'s key and a user ticket.
async fn dial_back(shared: Arc<Shared>, node: NodeId, addr: SocketAddr) {
    let reached = try_dial_back(&shared, node, addr).await;
    match &reached {
        Ok(()) => bump(&shared.promotion_metrics.dial_backs_ok_total),
        Err(e) => {
            bump(&shared.promotion_metrics.dial_backs_failed_total);
            tracing::debug!(device = %node.short(), %addr, "dial-back failed: {e}");
        }
    }
    let mut state = lock(&shared.promotions);
    state.dial_backs_running = state.dial_backs_running.saturating_sub(1);
    state.nominator.dial_back_done(&node, reached.is_ok());
}

async fn try_dial_back(shared: &Shared, node: NodeId, addr: SocketAddr) -> Result<(), String> {
    let ticket = switchboard_account::profile::Profile::new(&shared.config.data_dir)
        .ticket()
        .map_err(|e| e.to_string())?;
    let policy = PeerPolicy::Ticketed {
        auth: shared.anchor.clone(),
        roles: vec![Role::User],
        node: Some(node),
    };
    let config = client_config(
        &Identity::new(shared.key.clone(), Some(ticket)),
        policy.clone(),
        &[ALPN_DIRECTORY],
        transport_config(TransportRole::Dialer),
        Resumption::Disabled,
    )
    .map_err(|e| e.to_string())?;
    let bind = if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    // A fresh socket, never the listening one: see the module doc.
    let dialer = Dialer::bind(bind, config, policy).map_err(|e| e.to_string())?;
    let connected = dialer.connect_to(node, addr, DIAL_BACK_TIMEOUT).await;
    if let Ok(connection) = &connected {
        connection.close(switchboard_net::CloseCode::Done, "dial-back done");
    }
    dialer.shutdown(Duration::from_millis(200)).await;
    connected.map(|_| ()).map_err(|e| e.to_string())
}

/// Appends the promotion counters to `/metrics`.
pub fn render_metrics(shared: &Shared, out: &mut String) {
    use switchboard_net::metrics::metric;
    let m = &shared.promotion_metrics;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let candidates = lock(&shared.promotions).nominator.candidates() as u64;
    metric(
        out,
        "switchboard_supernode_promotion_candidates",
        "gauge",
        "Clients that offered themselves for promotion and are tracked.",
        candidates,
    );
    metric(
        out,
        "switchboard_supernode_promoted",
        "gauge",
        "1 on a promoted supernode (a client serving with a promoted ticket).",
        u64::from(shared.own_role == Role::Promoted),
    );
    for (name, help, counter) in [
        (
            "switchboard_supernode_promotion_offers_total",
            "Promotion offers recorded.",
            &m.offers_total,
        ),
        (
            "switchboard_supernode_dial_backs_ok_total",
            "Dial-backs (from a fresh socket) that reached the offering client.",
            &m.dial_backs_ok_total,
        ),
        (
            "switchboard_supernode_dial_backs_failed_total",
            "Dial-backs that did not reach the offering client.",
            &m.dial_backs_failed_total,
        ),
        (
            "switchboard_supernode_nominations_total",
            "Clients nominated for promotion.",
            &m.nominations_total,
        ),
        (
            "switchboard_supernode_promotions_joined_total",
            "Nominees that joined the overlay.",
            &m.promotions_joined_total,
        ),
        (
            "switchboard_supernode_promotions_failed_total",
            "Nominees that did not join the overlay in time.",
            &m.promotions_failed_total,
        ),
        (
            "switchboard_supernode_demotions_total",
            "Times this promoted supernode stepped down.",
            &m.demotions_total,
        ),
    ] {
        metric(out, name, "counter", help, get(counter));
    }
}
