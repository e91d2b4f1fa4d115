//! The auth protocol's other requests against a real `auth-server` process: sign-up, supernode
//! announcements feeding the bootstrap list, ticket refresh, the revocation list, and the
//! `Busy` answer of a login storm.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use switchboard_client::login::{login, LoginError};
use switchboard_client::profile::Profile;
use switchboard_net::config::Role as TransportRole;
use switchboard_net::framed;
use switchboard_net::{
    client_config, transport_config, Dialer, Identity, PeerConnection, PeerPolicy, Resumption,
    HANDSHAKE_TIMEOUT, REQUEST_TIMEOUT,
};
use switchboard_proto::messages::{AuthRequest, AuthResponse, Password, Revocation, ServiceMode};
use switchboard_proto::version::{Hello, VersionRange, ALPN_AUTH};
use switchboard_proto::wire_error::{UnauthorizedReason, WireError};
use switchboard_proto::{AuthKey, Role, SoftwareVersion, Username};
use switchboard_tests::{temp_dir, Binary, Daemon};

const PASSWORD: &str = "correct horse battery staple";

struct Setup {
    data: tempfile::TempDir,
    pubkey: AuthKey,
    server: Daemon,
}

fn setup(config: &str, users: &[(&str, &str)]) -> Setup {
    let data = temp_dir();
    let dir = data.path().to_str().unwrap().to_owned();
    let output = Binary::AuthServer
        .run(&["init", "--data-dir", &dir])
        .unwrap();
    let pubkey = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for (name, role) in users {
        let output = Binary::AuthServer
            .run_with_stdin(
                &["user", "add", name, "--role", role, "--data-dir", &dir],
                &format!("{PASSWORD}\n"),
            )
            .unwrap();
        assert!(output.status.success());
    }
    let config_path = data.path().join("test.toml");
    std::fs::write(&config_path, config).unwrap();
    let server = Binary::AuthServer
        .spawn_daemon(
            &[
                "serve",
                "--config",
                config_path.to_str().unwrap(),
                "--data-dir",
                &dir,
                "--listen",
                "127.0.0.1:0",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    Setup {
        data,
        pubkey,
        server,
    }
}

async fn log_in(
    profile: &Path,
    addr: SocketAddr,
    pubkey: AuthKey,
    user: &str,
    signup: bool,
) -> Result<switchboard_client::login::LoggedIn, LoginError> {
    login(
        &Profile::new(profile),
        &addr.to_string(),
        pubkey,
        Username::new(user).unwrap(),
        Password::new(PASSWORD).unwrap(),
        signup,
    )
    .await
}

/// An auth connection presenting the profile's key and ticket (as a supernode does).
async fn connect_with_ticket(profile: &Path, addr: SocketAddr, pubkey: AuthKey) -> PeerConnection {
    let profile = Profile::new(profile);
    let identity = Identity::new(profile.node_key().unwrap(), Some(profile.ticket().unwrap()));
    let policy = PeerPolicy::ExactKey(pubkey);
    let config = client_config(
        &identity,
        policy.clone(),
        &[ALPN_AUTH],
        transport_config(TransportRole::Dialer),
        Resumption::Disabled,
    )
    .unwrap();
    let dialer = Dialer::bind("127.0.0.1:0".parse().unwrap(), config, policy).unwrap();
    let connection = dialer.connect(addr, HANDSHAKE_TIMEOUT).await.unwrap();
    let hello = AuthRequest::Hello(Hello {
        protocol: VersionRange::CURRENT,
        software: SoftwareVersion::default(),
    });
    let answer: AuthResponse = framed::request(&connection.connection, &hello, REQUEST_TIMEOUT)
        .await
        .unwrap();
    assert!(matches!(answer, AuthResponse::Welcome(_)), "{answer:?}");
    connection
}

async fn ask(connection: &PeerConnection, request: &AuthRequest) -> AuthResponse {
    framed::request(&connection.connection, request, REQUEST_TIMEOUT)
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_up_works_only_where_it_is_open() {
    let closed = setup("", &[]);
    let profile = temp_dir();
    let refused = log_in(
        profile.path(),
        closed.server.addr(),
        closed.pubkey,
        "newbie",
        true,
    )
    .await;
    assert!(
        matches!(
            &refused,
            Err(LoginError::Refused(WireError::Unsupported { .. }))
        ),
        "{refused:?}"
    );

    let open = setup("open_signup = true\n", &[]);
    let done = log_in(
        profile.path(),
        open.server.addr(),
        open.pubkey,
        "newbie",
        true,
    )
    .await
    .unwrap();
    assert_eq!(done.ticket.body_unverified().role, Role::User);
    // The new account logs in normally afterwards, and its name cannot be taken twice.
    log_in(
        profile.path(),
        open.server.addr(),
        open.pubkey,
        "newbie",
        false,
    )
    .await
    .unwrap();
    let again = log_in(
        profile.path(),
        open.server.addr(),
        open.pubkey,
        "newbie",
        true,
    )
    .await;
    match again {
        Err(LoginError::Refused(WireError::Unsupported { detail })) => {
            assert!(
                detail.as_str().contains("that username is taken"),
                "{detail:?}"
            );
        }
        other => panic!("a second sign-up of the same name must be refused as taken: {other:?}"),
    }
    drop(open.data);
}

#[tokio::test]
async fn an_announced_supernode_reaches_the_bootstrap_list_and_refresh_and_revocations_work() {
    let s = setup(
        "",
        &[("sn1", "supernode"), ("alice", "user"), ("mallory", "user")],
    );
    let addr = s.server.addr();
    let supernode_profile = temp_dir();
    log_in(supernode_profile.path(), addr, s.pubkey, "sn1", false)
        .await
        .unwrap();
    let connection = connect_with_ticket(supernode_profile.path(), addr, s.pubkey).await;
    let announced_addr: SocketAddr = "127.0.0.1:7711".parse().unwrap();
    let answer = ask(
        &connection,
        &AuthRequest::Announce {
            addr: announced_addr,
            mode: ServiceMode::Normal,
            capacity: 100,
            clients: 10,
        },
    )
    .await;
    assert!(
        matches!(answer, AuthResponse::Announced { .. }),
        "{answer:?}"
    );
    // A supernode account may not claim to be a mega.
    let answer = ask(
        &connection,
        &AuthRequest::Announce {
            addr: announced_addr,
            mode: ServiceMode::Mega,
            capacity: 100,
            clients: 10,
        },
    )
    .await;
    assert!(
        matches!(answer, AuthResponse::Error(WireError::Unauthorized { .. })),
        "{answer:?}"
    );

    // A client logging in now learns about it.
    let alice = temp_dir();
    let done = log_in(alice.path(), addr, s.pubkey, "alice", false)
        .await
        .unwrap();
    assert_eq!(done.bootstrap, 1);
    let hosts = Profile::new(alice.path()).hosts().unwrap();
    assert_eq!(hosts[0].addr, announced_addr);

    // An ordinary user may not announce.
    let alice_connection = connect_with_ticket(alice.path(), addr, s.pubkey).await;
    let answer = ask(
        &alice_connection,
        &AuthRequest::Announce {
            addr: announced_addr,
            mode: ServiceMode::Normal,
            capacity: 100,
            clients: 0,
        },
    )
    .await;
    assert!(
        matches!(answer, AuthResponse::Error(WireError::Unauthorized { .. })),
        "{answer:?}"
    );

    // Ticket refresh without the password, on a connection holding the ticket's key.
    let ticket = Profile::new(alice.path()).ticket().unwrap();
    let answer = ask(
        &alice_connection,
        &AuthRequest::RefreshTicket {
            ticket: ticket.clone(),
        },
    )
    .await;
    let AuthResponse::TicketRefreshed { ticket: fresh } = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(fresh.body_unverified().user, ticket.body_unverified().user);
    assert_eq!(
        fresh.body_unverified().serial,
        ticket.body_unverified().serial,
        "a refresh keeps the serial, and so inherits a revocation of it"
    );
    assert!(fresh.body_unverified().issued_at >= ticket.body_unverified().issued_at);
    // Someone else's ticket cannot be refreshed from another key.
    let answer = ask(&connection, &AuthRequest::RefreshTicket { ticket }).await;
    assert!(
        matches!(answer, AuthResponse::Error(WireError::Unauthorized { .. })),
        "{answer:?}"
    );

    // Disabling an account puts it on the revocation list the supernode fetches, and stops
    // refreshes.
    let mallory = temp_dir();
    log_in(mallory.path(), addr, s.pubkey, "mallory", false)
        .await
        .unwrap();
    let disable = Binary::AuthServer
        .run(&[
            "user",
            "disable",
            "mallory",
            "--data-dir",
            s.data.path().to_str().unwrap(),
        ])
        .unwrap();
    assert!(disable.status.success());
    let answer = ask(&connection, &AuthRequest::FetchRevocations { cursor: 0 }).await;
    let AuthResponse::Revocations(page) = answer else {
        panic!("{answer:?}");
    };
    let revoked: Vec<&str> = page
        .entries
        .iter()
        .filter_map(|entry| match entry {
            Revocation::Account { user, .. } => Some(user.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(revoked, vec!["mallory"]);
    assert!(page.complete);
    // Asked again from where it ended: nothing new, the same cursor.
    let answer = ask(
        &connection,
        &AuthRequest::FetchRevocations {
            cursor: page.next_cursor,
        },
    )
    .await;
    assert!(
        matches!(&answer, AuthResponse::Revocations(again) if again.entries.is_empty() && again.next_cursor == page.next_cursor),
        "{answer:?}"
    );
    let mallory_connection = connect_with_ticket(mallory.path(), addr, s.pubkey).await;
    let ticket = Profile::new(mallory.path()).ticket().unwrap();
    let answer = ask(&mallory_connection, &AuthRequest::RefreshTicket { ticket }).await;
    assert_eq!(answer, AuthResponse::Error(WireError::AccountDisabled));
    // Users may not read the revocation list.
    let answer = ask(
        &alice_connection,
        &AuthRequest::FetchRevocations { cursor: 0 },
    )
    .await;
    assert!(
        matches!(answer, AuthResponse::Error(WireError::Unauthorized { .. })),
        "{answer:?}"
    );

    // A disabled supernode account is refused on its live connection: no more announcements,
    // no more revocation list.
    let disable = Binary::AuthServer
        .run(&[
            "user",
            "disable",
            "sn1",
            "--data-dir",
            s.data.path().to_str().unwrap(),
        ])
        .unwrap();
    assert!(disable.status.success());
    let revoked = AuthResponse::Error(WireError::Unauthorized {
        reason: UnauthorizedReason::Revoked,
    });
    let answer = ask(
        &connection,
        &AuthRequest::Announce {
            addr: announced_addr,
            mode: ServiceMode::Normal,
            capacity: 100,
            clients: 10,
        },
    )
    .await;
    assert_eq!(
        answer, revoked,
        "announcement of a disabled supernode account"
    );
    let answer = ask(&connection, &AuthRequest::FetchRevocations { cursor: 0 }).await;
    assert_eq!(answer, revoked);
}

#[tokio::test]
async fn a_revoked_device_key_cannot_log_in_but_the_same_account_on_another_device_can() {
    let s = setup("", &[("alice", "user")]);
    let addr = s.server.addr();
    let phone = temp_dir();
    log_in(phone.path(), addr, s.pubkey, "alice", false)
        .await
        .unwrap();
    let key = Profile::new(phone.path()).node_key().unwrap().node_id();
    let revoke = Binary::AuthServer
        .run(&[
            "revoke",
            "--node",
            &key.to_string(),
            "--data-dir",
            s.data.path().to_str().unwrap(),
        ])
        .unwrap();
    assert!(revoke.status.success(), "{revoke:?}");
    assert!(String::from_utf8_lossy(&revoke.stdout).contains("revoked node"));
    let again = log_in(phone.path(), addr, s.pubkey, "alice", false).await;
    assert!(
        matches!(&again, Err(e) if e.to_string().contains("revoked")),
        "{again:?}"
    );
    // Its ticket cannot be refreshed either.
    let connection = connect_with_ticket(phone.path(), addr, s.pubkey).await;
    let ticket = Profile::new(phone.path()).ticket().unwrap();
    let answer = ask(&connection, &AuthRequest::RefreshTicket { ticket }).await;
    assert!(
        matches!(answer, AuthResponse::Error(WireError::Unauthorized { .. })),
        "{answer:?}"
    );
    let laptop = temp_dir();
    log_in(laptop.path(), addr, s.pubkey, "alice", false)
        .await
        .expect("alice's other device logs in");
}

#[tokio::test]
async fn a_login_storm_beyond_the_queue_gets_busy_instead_of_waiting_forever() {
    let users: Vec<(String, &str)> = (0..12).map(|i| (format!("storm{i}"), "user")).collect();
    let refs: Vec<(&str, &str)> = users.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    let s = setup(
        "max_concurrent_logins = 1\nmax_queued_logins = 2\n[throttle]\nattempts_per_sec = 1000\nburst = 1000\n",
        &refs,
    );
    let mut tasks = Vec::new();
    for (name, _) in &users {
        let name = name.clone();
        let addr = s.server.addr();
        let pubkey = s.pubkey;
        tasks.push(tokio::spawn(async move {
            let profile = temp_dir();
            log_in(profile.path(), addr, pubkey, &name, false).await
        }));
    }
    let mut ok = 0;
    let mut busy = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(LoginError::Busy(_)) => busy += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    println!("{ok} logged in, {busy} told busy");
    assert!(busy > 0, "some logins beyond the queue are told Busy");
    assert!(ok >= 1, "the server keeps serving during the storm");
}
