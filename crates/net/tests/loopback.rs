//! Loopback tests of the transport: real QUIC on real sockets, both sides authenticating each
//! other by ticket in the TLS handshake, and framed exchanges on top.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_net::config::Role as TransportRole;
use switchboard_net::framed::{self, StreamError};
use switchboard_net::{
    client_config, server_config, transport_config, CloseCode, Dialer, HandshakeError,
    HandshakeGate, Identity, Listener, PeerAuthError, PeerConnection, PeerPolicy, Resumption,
    DEFAULT_MAX_CONCURRENT_HANDSHAKES, HANDSHAKE_TIMEOUT, REQUEST_TIMEOUT,
};
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::version::ALPN_DIRECTORY;
use switchboard_proto::{
    BoundedVec, InvalidFrame, Role, SecretKey, Ticket, TicketBody, TicketError, UnixTime, Username,
};

const LOCALHOST: &str = "127.0.0.1:0";

/// The auth-server key every test network trusts.
fn auth() -> SecretKey {
    SecretKey::from_seed([42; 32])
}

fn now() -> u64 {
    switchboard_net::now_unix().0
}

/// An identity for `name` whose ticket is signed by `signer` and valid from `issued` for
/// `lifetime` seconds.
fn identity_signed_by(
    signer: &SecretKey,
    seed: u8,
    name: &str,
    role: Role,
    issued: u64,
) -> Identity {
    let key = SecretKey::from_seed([seed; 32]);
    let ticket = Ticket::issue(
        signer,
        TicketBody {
            user: Username::new(name).unwrap(),
            node: key.node_id(),
            role,
            issued_at: UnixTime(issued),
            expires_at: UnixTime(issued + 3_600),
            serial: u64::from(seed),
        },
    )
    .unwrap();
    Identity::new(key, Some(ticket))
}

fn identity(seed: u8, name: &str, role: Role) -> Identity {
    identity_signed_by(&auth(), seed, name, role, now() - 10)
}

fn listener(identity: &Identity, max_handshakes: usize) -> Listener {
    let policy = PeerPolicy::any_ticket(auth().trust_anchor());
    let config = server_config(
        identity,
        policy.clone(),
        &[ALPN_DIRECTORY],
        transport_config(TransportRole::ClientFacing),
    )
    .unwrap();
    Listener::bind(
        LOCALHOST.parse().unwrap(),
        config,
        policy,
        HandshakeGate::with_max_in_flight(max_handshakes),
    )
    .unwrap()
}

fn dialer(identity: &Identity) -> Dialer {
    let policy = PeerPolicy::supernode(auth().trust_anchor());
    let config = client_config(
        identity,
        policy.clone(),
        &[ALPN_DIRECTORY],
        transport_config(TransportRole::Dialer),
        Resumption::Enabled,
    )
    .unwrap();
    Dialer::bind(LOCALHOST.parse().unwrap(), config, policy).unwrap()
}

/// Accepts one connection and returns what the handshake produced.
async fn accept_one(listener: &Listener) -> Result<PeerConnection, HandshakeError> {
    let handshake = listener.accept().await.expect("endpoint open");
    handshake.complete(HANDSHAKE_TIMEOUT).await
}

async fn dial_and_accept(
    listener: &Listener,
    dialer: &Dialer,
) -> (
    Result<PeerConnection, HandshakeError>,
    Result<PeerConnection, HandshakeError>,
) {
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::join!(
        dialer.connect(addr, HANDSHAKE_TIMEOUT),
        accept_one(listener)
    )
}

#[tokio::test]
async fn given_two_ticketed_nodes_when_they_connect_then_each_knows_the_other_and_frames_flow() {
    let server_identity = identity(1, "super1", Role::Supernode);
    let client_identity = identity(2, "alice", Role::User);
    let listener = listener(&server_identity, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let dialer = dialer(&client_identity);

    let (client_side, server_side) = dial_and_accept(&listener, &dialer).await;
    let client_side = client_side.unwrap();
    let server_side = server_side.unwrap();
    assert_eq!(client_side.peer.node, server_identity.node_id());
    assert_eq!(
        client_side.peer.ticket.as_ref().unwrap().user.as_str(),
        "super1"
    );
    assert_eq!(server_side.peer.node, client_identity.node_id());
    assert_eq!(server_side.peer.ticket.as_ref().unwrap().role, Role::User);

    let server = tokio::spawn(async move {
        let (mut send, mut recv) = server_side.connection.accept_bi().await.unwrap();
        let request: ClientMessage = framed::read_request(&mut recv, REQUEST_TIMEOUT)
            .await
            .unwrap();
        let ClientMessage::Lookup { user } = request else {
            panic!("unexpected {request:?}");
        };
        framed::respond(
            &mut send,
            &SupernodeMessage::LookupResult {
                user,
                records: BoundedVec::new(),
            },
        )
        .await
        .unwrap();
        server_side
    });
    let answer: SupernodeMessage = framed::request(
        &client_side.connection,
        &ClientMessage::Lookup {
            user: Username::new("bob").unwrap(),
        },
        REQUEST_TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(
        answer,
        SupernodeMessage::LookupResult {
            user: Username::new("bob").unwrap(),
            records: BoundedVec::new()
        }
    );
    let _server_side = server.await.unwrap();
}

/// The reason a refused handshake reports on the refusing side, as text.
fn refusal(result: Result<PeerConnection, HandshakeError>) -> String {
    match result {
        Ok(_) => panic!("handshake should have been refused"),
        Err(e) => e.to_string(),
    }
}

/// The reason a client learns when the server refuses the client's certificate. In TLS 1.3 the
/// client finishes its side of the handshake before the server has checked the client's
/// certificate, so the refusal arrives as the connection closing, with the server's reason.
async fn refusal_seen_by_client(result: Result<PeerConnection, HandshakeError>) -> String {
    match result {
        Ok(connection) => connection.connection.closed().await.to_string(),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn given_a_forged_ticket_when_a_client_connects_then_the_tls_layer_refuses_it() {
    let server_identity = identity(1, "super1", Role::Supernode);
    let forger = SecretKey::from_seed([66; 32]);
    let forged = identity_signed_by(&forger, 3, "mallory", Role::User, now() - 10);
    let listener = listener(&server_identity, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let (client_side, server_side) = dial_and_accept(&listener, &dialer(&forged)).await;

    let server_reason = refusal(server_side);
    assert!(
        server_reason.contains("not signed by the trusted auth-server"),
        "{server_reason}"
    );
    // The refusing side's reason travels to the client in the CONNECTION_CLOSE.
    let client_reason = refusal_seen_by_client(client_side).await;
    assert!(
        client_reason.contains("not signed by the trusted auth-server"),
        "{client_reason}"
    );
}

#[tokio::test]
async fn given_an_expired_ticket_when_a_client_connects_then_the_tls_layer_refuses_it() {
    let server_identity = identity(1, "super1", Role::Supernode);
    let expired = identity_signed_by(&auth(), 4, "oldtimer", Role::User, now() - 10 * 3_600);
    let listener = listener(&server_identity, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let (client_side, server_side) = dial_and_accept(&listener, &dialer(&expired)).await;

    let server_reason = refusal(server_side);
    assert!(server_reason.contains("ticket expired"), "{server_reason}");
    let client_reason = refusal_seen_by_client(client_side).await;
    assert!(client_reason.contains("client login"), "{client_reason}");
}

#[tokio::test]
async fn given_a_ticket_for_another_key_when_presented_then_the_tls_layer_refuses_the_mismatch() {
    let server_identity = identity(1, "super1", Role::Supernode);
    // A stolen ticket: bob's ticket presented with a key that is not bob's.
    let bob = identity(5, "bob", Role::User);
    let thief = Identity::new(SecretKey::from_seed([6; 32]), bob.ticket().cloned());
    let listener = listener(&server_identity, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let (client_side, server_side) = dial_and_accept(&listener, &dialer(&thief)).await;

    let server_reason = refusal(server_side);
    assert!(
        server_reason.contains("but the peer holds key"),
        "{server_reason}"
    );
    let client_reason = refusal_seen_by_client(client_side).await;
    assert!(
        client_reason.contains("but the peer holds key"),
        "{client_reason}"
    );
}

#[tokio::test]
async fn given_a_server_with_a_forged_ticket_when_a_client_dials_then_the_client_refuses_it() {
    let forger = SecretKey::from_seed([66; 32]);
    let fake_server = identity_signed_by(&forger, 7, "evilnode", Role::Supernode, now() - 10);
    let listener = listener(&fake_server, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let (client_side, server_side) =
        dial_and_accept(&listener, &dialer(&identity(2, "alice", Role::User))).await;

    let client_reason = refusal(client_side);
    assert!(
        client_reason.contains("not signed by the trusted auth-server"),
        "{client_reason}"
    );
    assert!(server_side.is_err());
}

#[tokio::test]
async fn given_a_server_with_a_user_ticket_when_a_client_dials_a_supernode_then_the_client_refuses_it(
) {
    // A valid ticket, but a user's: no account may run a rogue supernode for others.
    let rogue = identity(7, "mallory", Role::User);
    let listener = listener(&rogue, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let (client_side, server_side) =
        dial_and_accept(&listener, &dialer(&identity(2, "alice", Role::User))).await;
    let client_reason = refusal(client_side);
    assert!(client_reason.contains("role"), "{client_reason}");
    assert!(server_side.is_err());
}

#[tokio::test]
async fn given_a_client_without_a_ticket_then_a_supernode_refuses_it() {
    let server_identity = identity(1, "super1", Role::Supernode);
    let bare = Identity::new(SecretKey::from_seed([8; 32]), None);
    let listener = listener(&server_identity, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let (_, server_side) = dial_and_accept(&listener, &dialer(&bare)).await;
    assert!(refusal(server_side).contains("no ticket"));
}

#[tokio::test]
async fn given_an_admin_ticket_then_a_client_refuses_it_as_a_supernode() {
    let admin = identity(9, "root", Role::Admin);
    let listener = listener(&admin, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let (client_side, _) =
        dial_and_accept(&listener, &dialer(&identity(2, "alice", Role::User))).await;
    assert!(refusal(client_side).contains("role admin is not allowed"));
}

#[tokio::test]
async fn given_an_expected_node_when_another_answers_then_the_dial_fails_with_wrong_peer() {
    let server_identity = identity(1, "super1", Role::Supernode);
    let listener = listener(&server_identity, DEFAULT_MAX_CONCURRENT_HANDSHAKES);
    let dialer = dialer(&identity(2, "alice", Role::User));
    let someone_else = SecretKey::from_seed([77; 32]).node_id();
    let addr = listener.local_addr().unwrap();
    let (client_side, _server_side) = tokio::join!(
        dialer.connect_to(someone_else, addr, HANDSHAKE_TIMEOUT),
        accept_one(&listener)
    );
    assert!(matches!(
        client_side,
        Err(HandshakeError::Peer(PeerAuthError::WrongPeer { .. }))
    ));
}

#[tokio::test]
async fn given_a_garbage_frame_then_the_reader_reports_malformed_and_the_peer_sees_the_close() {
    let listener = listener(&identity(1, "super1", Role::Supernode), 8);
    let dialer = dialer(&identity(2, "alice", Role::User));
    let (client_side, server_side) = dial_and_accept(&listener, &dialer).await;
    let (client_side, server_side) = (client_side.unwrap(), server_side.unwrap());

    let server = tokio::spawn(async move {
        let (_send, mut recv) = server_side.connection.accept_bi().await.unwrap();
        let result: Result<ClientMessage, StreamError> =
            framed::read_request(&mut recv, REQUEST_TIMEOUT).await;
        let error = result.unwrap_err();
        assert!(error.is_malformed(), "{error}");
        server_side.close(CloseCode::Malformed, &error.to_string());
        error
    });
    let (mut send, _recv) = client_side.connection.open_bi().await.unwrap();
    // A valid header announcing 3 bytes, then a variant tag no message has.
    send.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0x01])
        .await
        .unwrap();
    send.finish().unwrap();
    let server_error = server.await.unwrap();
    assert!(matches!(
        server_error,
        StreamError::Invalid(InvalidFrame::Payload(_))
    ));
    let closed = client_side.connection.closed().await;
    let quinn::ConnectionError::ApplicationClosed(close) = closed else {
        panic!("unexpected {closed:?}");
    };
    assert_eq!(
        CloseCode::from_code(close.error_code),
        Some(CloseCode::Malformed)
    );
}

#[tokio::test]
async fn given_an_oversized_frame_header_then_it_is_refused_before_the_payload() {
    let listener = listener(&identity(1, "super1", Role::Supernode), 8);
    let dialer = dialer(&identity(2, "alice", Role::User));
    let (client_side, server_side) = dial_and_accept(&listener, &dialer).await;
    let (client_side, server_side) = (client_side.unwrap(), server_side.unwrap());

    let server = tokio::spawn(async move {
        let (_send, mut recv) = server_side.connection.accept_bi().await.unwrap();
        framed::read_frame::<ClientMessage>(&mut recv, switchboard_proto::limits::MAX_FRAME_LEN)
            .await
    });
    let (mut send, _recv) = client_side.connection.open_bi().await.unwrap();
    // Announce a 4 GiB frame and send nothing else: the reader must not wait for it.
    send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the reader answers at once")
        .unwrap();
    assert!(matches!(
        result,
        Err(StreamError::Invalid(InvalidFrame::TooLarge { .. }))
    ));
}

#[tokio::test]
async fn given_the_handshake_cap_is_reached_then_further_attempts_are_refused_and_counted() {
    let listener = listener(&identity(1, "super1", Role::Supernode), 1);
    let addr = listener.local_addr().unwrap();
    let first = dialer(&identity(2, "alice", Role::User));
    let second = dialer(&identity(3, "bob", Role::User));

    let first_dial = tokio::spawn({
        let first = first.clone();
        async move { first.connect(addr, HANDSHAKE_TIMEOUT).await }
    });
    // Hold the only permit without completing the handshake.
    let held = listener.accept().await.unwrap();
    let (second_result, _) = tokio::join!(second.connect(addr, HANDSHAKE_TIMEOUT), async {
        // The refused attempt never yields a handshake: accept() keeps waiting; bound it.
        tokio::time::timeout(Duration::from_millis(500), listener.accept()).await
    });
    assert!(
        matches!(
            second_result,
            Err(HandshakeError::Connection(
                quinn::ConnectionError::ConnectionClosed(_)
            ))
        ),
        "{second_result:?}"
    );
    assert_eq!(listener.refused_handshakes(), 1);

    // The held attempt still completes once driven.
    let server_side = held.complete(HANDSHAKE_TIMEOUT).await.unwrap();
    assert_eq!(server_side.peer.ticket.unwrap().user.as_str(), "alice");
    assert!(first_dial.await.unwrap().is_ok());
}

#[test]
fn ticket_errors_map_to_wire_reasons() {
    use switchboard_proto::wire_error::UnauthorizedReason;
    let expired = PeerAuthError::Ticket(TicketError::Expired {
        expires_at: UnixTime(1),
        now: UnixTime(2),
    });
    assert_eq!(
        expired.unauthorized_reason(),
        UnauthorizedReason::TicketExpired
    );
    assert_eq!(
        PeerAuthError::NoTicket.unauthorized_reason(),
        UnauthorizedReason::NoTicket
    );
}

/// A resumed TLS 1.3 session skips certificate verification; `identify` must check the
/// ticket's window again. The server's ticket is valid (within the clock-skew allowance) for
/// the first, full handshake and past it for the second, which the dialer resumes.
#[tokio::test]
async fn given_a_resumed_session_when_the_servers_ticket_has_expired_since_then_the_dial_is_refused(
) {
    use switchboard_proto::limits::CLOCK_SKEW_SECS;
    let key = SecretKey::from_seed([1; 32]);
    // Expired, but inside the skew allowance for about two more seconds.
    let expires = now() + 2 - CLOCK_SKEW_SECS;
    let ticket = Ticket::issue(
        &auth(),
        TicketBody {
            user: Username::new("super1").unwrap(),
            node: key.node_id(),
            role: Role::Supernode,
            issued_at: UnixTime(expires - 3_600),
            expires_at: UnixTime(expires),
            serial: 1,
        },
    )
    .unwrap();
    let listener = listener(&Identity::new(key, Some(ticket)), 8);
    let dialer = dialer(&identity(2, "alice", Role::User));
    let (first, server_first) = dial_and_accept(&listener, &dialer).await;
    let first = first.expect("the first, full handshake is inside the skew allowance");
    let _server_first = server_first.unwrap();
    // The first connection stays open meanwhile, so the session tickets it carries arrive.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (second, _) = dial_and_accept(&listener, &dialer).await;
    let reason = refusal(second);
    assert!(reason.contains("expired"), "{reason}");
    first.close(CloseCode::Done, "done");
}
