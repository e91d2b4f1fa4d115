//! proptest strategies for every wire type, shared by the property tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::collection::vec;
use proptest::prelude::*;
use switchboard_proto::messages::*;
use switchboard_proto::version::{Hello, SoftwareVersion, VersionRange, Welcome};
use switchboard_proto::wire_error::{LimitKind, UnauthorizedReason, WireError};
use switchboard_proto::*;

pub fn username() -> impl Strategy<Value = Username> {
    "[a-z0-9][a-z0-9._-]{0,31}".prop_map(|s| Username::new(&s).unwrap())
}

pub fn node_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 32]>().prop_map(NodeId::from_bytes)
}

pub fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

pub fn peer_addr() -> impl Strategy<Value = PeerAddr> {
    (node_id(), socket_addr()).prop_map(|(node, addr)| PeerAddr { node, addr })
}

pub fn bounded<T: std::fmt::Debug, const N: usize>(
    item: impl Strategy<Value = T>,
) -> impl Strategy<Value = BoundedVec<T, N>> {
    vec(item, 0..=N.min(4)).prop_map(|v| BoundedVec::try_from(v).unwrap())
}

pub fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

pub fn ticket() -> impl Strategy<Value = Ticket> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        username(),
        role(),
        0u64..1 << 40,
        1u64..=limits::MAX_TICKET_LIFETIME_SECS,
        any::<u64>(),
    )
        .prop_map(|(auth, node, user, role, issued, lifetime, serial)| {
            let auth = SecretKey::from_seed(auth);
            let node = SecretKey::from_seed(node).node_id();
            Ticket::issue(
                &auth,
                TicketBody {
                    user,
                    node,
                    role,
                    issued_at: UnixTime(issued),
                    expires_at: UnixTime(issued + lifetime),
                    serial,
                },
            )
            .unwrap()
        })
}

/// A nomination signed by a supernode key for its own (arbitrary) ticket.
pub fn nomination() -> impl Strategy<Value = Nomination> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        username(),
        socket_addr(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(|(auth, home, nominee, user, addr, capacity, issued)| {
            let auth = SecretKey::from_seed(auth);
            let home = SecretKey::from_seed(home);
            let ticket = Ticket::issue(
                &auth,
                TicketBody {
                    user: user.clone(),
                    node: home.node_id(),
                    role: Role::Supernode,
                    issued_at: UnixTime(issued),
                    expires_at: UnixTime(issued.saturating_add(60)),
                    serial: 1,
                },
            )
            .expect("a one-minute ticket is valid");
            let body = NominationBody {
                nominee: SecretKey::from_seed(nominee).node_id(),
                user,
                nominator: home.node_id(),
                addr,
                capacity,
                issued_at: UnixTime(issued),
            };
            Nomination::sign(&home, ticket, body).expect("a supernode ticket may nominate")
        })
}

pub fn record() -> impl Strategy<Value = Record> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        username(),
        bounded::<_, { limits::MAX_ENDPOINTS }>(socket_addr()),
        (
            prop::option::of(socket_addr()),
            prop::option::of(peer_addr()),
        ),
        any::<u64>(),
        any::<u64>(),
        1u32..=limits::MAX_RECORD_TTL_SECS,
    )
        .prop_map(
            |(auth, node, user, endpoints, (reflexive, home), seq, issued, ttl)| {
                let auth = SecretKey::from_seed(auth);
                let node = SecretKey::from_seed(node);
                let ticket = Ticket::issue(
                    &auth,
                    TicketBody {
                        user,
                        node: node.node_id(),
                        role: Role::User,
                        issued_at: UnixTime(1),
                        expires_at: UnixTime(2),
                        serial: 0,
                    },
                )
                .unwrap();
                Record::sign(
                    &node,
                    RecordBody {
                        ticket,
                        endpoints,
                        reflexive,
                        home,
                        seq,
                        issued_at: UnixTime(issued),
                        ttl_secs: ttl,
                    },
                )
                .unwrap()
            },
        )
}

pub fn software() -> impl Strategy<Value = SoftwareVersion> {
    (any::<u16>(), any::<u16>(), any::<u16>()).prop_map(|(major, minor, patch)| SoftwareVersion {
        major,
        minor,
        patch,
    })
}

pub fn hello() -> impl Strategy<Value = Hello> {
    (any::<u16>(), any::<u16>(), software()).prop_map(|(min, max, software)| Hello {
        protocol: VersionRange { min, max },
        software,
    })
}

pub fn welcome() -> impl Strategy<Value = Welcome> {
    (any::<u16>(), software()).prop_map(|(protocol, software)| Welcome { protocol, software })
}

pub fn text<const N: usize>() -> impl Strategy<Value = BoundedString<N>> {
    ".{0,40}".prop_map(|s| BoundedString::truncating(&s))
}

pub fn wire_error() -> impl Strategy<Value = WireError> {
    let reason = prop::sample::select(vec![
        UnauthorizedReason::TicketExpired,
        UnauthorizedReason::TicketForged,
        UnauthorizedReason::KeyMismatch,
        UnauthorizedReason::Revoked,
        UnauthorizedReason::RoleNotAllowed,
        UnauthorizedReason::NoTicket,
    ]);
    let kind = prop::sample::select(vec![
        LimitKind::Watches,
        LimitKind::Devices,
        LimitKind::InFlight,
        LimitKind::Sessions,
        LimitKind::Promotions,
        LimitKind::Relays,
    ]);
    prop_oneof![
        (any::<u32>(), bounded(peer_addr())).prop_map(|(retry_after_ms, alternatives)| {
            WireError::Busy {
                retry_after_ms,
                alternatives,
            }
        }),
        bounded(peer_addr()).prop_map(|targets| WireError::Redirect { targets }),
        reason.prop_map(|reason| WireError::Unauthorized { reason }),
        software().prop_map(|minimum| WireError::VersionRejected { minimum }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(min, max)| WireError::ProtocolUnsupported { min, max }),
        Just(WireError::NotFound),
        text().prop_map(|detail| WireError::Malformed { detail }),
        Just(WireError::BadCredentials),
        Just(WireError::AccountDisabled),
        any::<u32>().prop_map(|retry_after_ms| WireError::Throttled { retry_after_ms }),
        (kind, any::<u32>()).prop_map(|(kind, max)| WireError::LimitExceeded { kind, max }),
        text().prop_map(|detail| WireError::Unsupported { detail }),
        Just(WireError::Internal),
    ]
}

pub fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        hello().prop_map(ClientMessage::Hello),
        record().prop_map(|record| ClientMessage::Register {
            record: Box::new(record)
        }),
        Just(ClientMessage::Refresh),
        Just(ClientMessage::Unregister),
        username().prop_map(|user| ClientMessage::Lookup { user }),
        bounded(username()).prop_map(|users| ClientMessage::Watch { users }),
        bounded(username()).prop_map(|users| ClientMessage::Unwatch { users }),
        (socket_addr(), any::<u32>(), any::<u64>()).prop_map(|(addr, capacity, uptime_secs)| {
            ClientMessage::OfferPromotion {
                addr,
                capacity,
                uptime_secs,
            }
        }),
        any::<[u8; 16]>().prop_map(|nonce| ClientMessage::DialBackEcho { nonce }),
        node_id().prop_map(|node| ClientMessage::Punch { node }),
        node_id().prop_map(|node| ClientMessage::Relay { node }),
        Just(ClientMessage::Goodbye),
    ]
}

pub fn presence() -> impl Strategy<Value = PresenceEvent> {
    (username(), any::<bool>()).prop_map(|(user, online)| PresenceEvent { user, online })
}

pub fn supernode_message() -> impl Strategy<Value = SupernodeMessage> {
    let reason = prop::sample::select(vec![
        RedirectReason::Draining,
        RedirectReason::Overloaded,
        RedirectReason::Demoted,
        RedirectReason::StandingDown,
    ]);
    prop_oneof![
        welcome().prop_map(SupernodeMessage::Welcome),
        (any::<u32>(), node_id(), socket_addr()).prop_map(|(lease_secs, home, observed)| {
            SupernodeMessage::Registered {
                lease_secs,
                home,
                observed,
            }
        }),
        Just(SupernodeMessage::PunchRequested),
        (any::<u16>(), any::<[u8; 16]>())
            .prop_map(|(port, token)| SupernodeMessage::RelayOpened { port, token }),
        (socket_addr(), node_id())
            .prop_map(|(peer, node)| SupernodeMessage::PunchTowards { peer, node }),
        (any::<u16>(), any::<[u8; 16]>(), node_id())
            .prop_map(|(port, token, node)| SupernodeMessage::RelayOffer { port, token, node }),
        any::<u32>().prop_map(|lease_secs| SupernodeMessage::Refreshed { lease_secs }),
        Just(SupernodeMessage::Unregistered),
        (username(), bounded(record()))
            .prop_map(|(user, records)| SupernodeMessage::LookupResult { user, records }),
        any::<u32>().prop_map(|watching| SupernodeMessage::WatchAck { watching }),
        presence().prop_map(SupernodeMessage::Presence),
        (reason, bounded(peer_addr()))
            .prop_map(|(reason, targets)| SupernodeMessage::Redirect { reason, targets }),
        any::<[u8; 16]>().prop_map(|nonce| SupernodeMessage::DialBack { nonce }),
        (bounded(peer_addr()), nomination()).prop_map(|(seeds, nomination)| {
            SupernodeMessage::Promote {
                seeds,
                nomination: Box::new(nomination),
            }
        }),
        Just(SupernodeMessage::Demote),
        Just(SupernodeMessage::OfferTaken),
        wire_error().prop_map(SupernodeMessage::Error),
        Just(SupernodeMessage::Goodbye),
    ]
}

pub fn overlay_message() -> impl Strategy<Value = OverlayMessage> {
    let key = (username(), node_id()).prop_map(|(user, node)| RecordKey { user, node });
    prop_oneof![
        hello().prop_map(OverlayMessage::Hello),
        welcome().prop_map(OverlayMessage::Welcome),
        vec(any::<u8>(), 0..64).prop_map(|bytes| OverlayMessage::Membership(
            MembershipPayload::try_from(bytes).unwrap()
        )),
        bounded(record()).prop_map(|records| OverlayMessage::Publish { records }),
        bounded(key).prop_map(|keys| OverlayMessage::Withdraw { keys }),
        username().prop_map(|user| OverlayMessage::Lookup { user }),
        (username(), bounded(record()))
            .prop_map(|(user, records)| OverlayMessage::LookupResult { user, records }),
        bounded(username()).prop_map(|users| OverlayMessage::Subscribe { users }),
        bounded(username()).prop_map(|users| OverlayMessage::Unsubscribe { users }),
        presence().prop_map(OverlayMessage::Presence),
        Just(OverlayMessage::Ack),
        wire_error().prop_map(OverlayMessage::Error),
        Just(OverlayMessage::Goodbye),
    ]
}

pub fn service_mode() -> impl Strategy<Value = ServiceMode> {
    prop::sample::select(vec![
        ServiceMode::Normal,
        ServiceMode::Mega,
        ServiceMode::MegaStandby,
    ])
}

pub fn password() -> impl Strategy<Value = Password> {
    ".{0,64}".prop_filter_map("fits", |s| Password::new(&s))
}

pub fn auth_request() -> impl Strategy<Value = AuthRequest> {
    prop_oneof![
        hello().prop_map(AuthRequest::Hello),
        (username(), password()).prop_map(|(user, password)| AuthRequest::Login { user, password }),
        (username(), password())
            .prop_map(|(user, password)| AuthRequest::Signup { user, password }),
        ticket().prop_map(|ticket| AuthRequest::RefreshTicket { ticket }),
        (socket_addr(), service_mode(), any::<u32>(), any::<u32>()).prop_map(
            |(addr, mode, capacity, clients)| AuthRequest::Announce {
                addr,
                mode,
                capacity,
                clients
            }
        ),
        any::<u64>().prop_map(|cursor| AuthRequest::FetchRevocations { cursor }),
        nomination().prop_map(|nomination| AuthRequest::Nominated { nomination }),
        ticket().prop_map(|ticket| AuthRequest::StepDown { ticket }),
    ]
}

pub fn bootstrap_entry() -> impl Strategy<Value = BootstrapEntry> {
    (peer_addr(), service_mode(), 0u16..=1000).prop_map(|(peer, mode, load)| BootstrapEntry {
        peer,
        mode,
        load_permille: load,
    })
}

pub fn auth_response() -> impl Strategy<Value = AuthResponse> {
    let entry = bootstrap_entry();
    let revocation = prop_oneof![
        (username(), any::<u64>()).prop_map(|(user, before)| Revocation::Account {
            user,
            before: UnixTime(before),
        }),
        node_id().prop_map(Revocation::Node),
        any::<u64>().prop_map(Revocation::Serial),
    ];
    let page = (bounded(revocation), any::<u64>(), any::<bool>()).prop_map(
        |(entries, next_cursor, complete)| RevocationPage {
            entries,
            next_cursor,
            complete,
        },
    );
    prop_oneof![
        welcome().prop_map(AuthResponse::Welcome),
        (ticket(), any::<[u8; 32]>(), bounded(entry)).prop_map(|(ticket, key, bootstrap)| {
            AuthResponse::LoggedIn {
                ticket,
                auth_key: AuthKey::from_bytes(key),
                bootstrap,
            }
        }),
        ticket().prop_map(|ticket| AuthResponse::TicketRefreshed { ticket }),
        (any::<u64>(), bounded(bootstrap_entry())).prop_map(|(t, peers)| AuthResponse::Announced {
            expires_at: UnixTime(t),
            peers,
        }),
        page.prop_map(AuthResponse::Revocations),
        ticket().prop_map(|ticket| AuthResponse::Promoted { ticket }),
        Just(AuthResponse::SteppedDown),
        wire_error().prop_map(AuthResponse::Error),
    ]
}

pub fn direct_message() -> impl Strategy<Value = DirectMessage> {
    prop_oneof![
        hello().prop_map(DirectMessage::Hello),
        welcome().prop_map(DirectMessage::Welcome),
        text().prop_map(DirectMessage::Text),
        Just(DirectMessage::Delivered),
        wire_error().prop_map(DirectMessage::Error),
    ]
}
