//! The auth-server on real processes: init, accounts, login over QUIC, throttling, durability
//! across `kill -9`, garbage on its port, metrics and SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use switchboard_auth_server::store::Store;
use switchboard_client::profile::Profile;
use switchboard_proto::{AuthKey, TrustAnchor};
use switchboard_tests::{http_get, temp_dir, Binary, Daemon};

const READY: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery staple";

/// A data directory made by `auth-server init`, and the public key it printed.
fn init(dir: &Path) -> String {
    let output = Binary::AuthServer
        .run(&["init", "--data-dir", dir.to_str().unwrap()])
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn add_user(dir: &Path, name: &str, role: &str, password: &str) -> std::process::Output {
    Binary::AuthServer
        .run_with_stdin(
            &[
                "user",
                "add",
                name,
                "--role",
                role,
                "--data-dir",
                dir.to_str().unwrap(),
            ],
            &format!("{password}\n"),
        )
        .unwrap()
}

fn serve(dir: &Path, extra: &[&str]) -> Daemon {
    let mut args = vec![
        "serve",
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Binary::AuthServer.spawn_daemon(&args, READY).unwrap()
}

/// Runs `client login` and returns (success, stdout, stderr).
fn login(
    profile: &Path,
    auth: SocketAddr,
    pubkey: &str,
    user: &str,
    password: &str,
) -> (bool, String, String) {
    let output = Binary::Client
        .run_with_stdin(
            &[
                "login",
                "--profile",
                profile.to_str().unwrap(),
                "--auth",
                &auth.to_string(),
                "--trust",
                pubkey,
                "--user",
                user,
            ],
            &format!("{password}\n"),
        )
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A config file for tests that log in many times from one address.
fn write_config(dir: &Path, throttle: &str) -> String {
    let path = dir.join("auth-test.toml");
    std::fs::write(&path, format!("[throttle]\n{throttle}\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn given_an_account_when_the_client_logs_in_then_its_ticket_verifies_with_the_servers_pubkey() {
    let data = temp_dir();
    let init_key = init(data.path());
    assert!(add_user(data.path(), "alice", "user", PASSWORD)
        .status
        .success());
    let server = serve(data.path(), &[]);

    let pubkey_output = Binary::AuthServer
        .run(&["pubkey", "--data-dir", data.path().to_str().unwrap()])
        .unwrap();
    let pubkey = String::from_utf8(pubkey_output.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(pubkey, init_key);

    let profile = temp_dir();
    let (ok, stdout, stderr) = login(profile.path(), server.addr(), &pubkey, "alice", PASSWORD);
    assert!(ok, "login failed: {stderr}");
    assert!(stdout.contains("logged in as alice"), "{stdout}");

    // The stored ticket verifies offline with the key `auth-server pubkey` printed, and names
    // the profile's node key.
    let stored = Profile::new(profile.path());
    let ticket = stored.ticket().unwrap();
    let anchor = TrustAnchor::new(pubkey.parse::<AuthKey>().unwrap()).unwrap();
    let node = stored.node_key().unwrap().node_id();
    let body = ticket
        .verify_for_peer(&anchor, switchboard_net::now_unix(), &node)
        .unwrap();
    assert_eq!(body.user.as_str(), "alice");
    // Profile files are private.
    use std::os::unix::fs::PermissionsExt;
    for file in ["node.key", "ticket", "profile.toml", "hosts.toml"] {
        let mode = std::fs::metadata(profile.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is readable by others");
    }
}

#[test]
fn wrong_password_unknown_user_and_disabled_account_each_get_their_clear_message() {
    let data = temp_dir();
    let pubkey = init(data.path());
    assert!(add_user(data.path(), "bob", "user", PASSWORD)
        .status
        .success());
    assert!(add_user(data.path(), "carol", "user", PASSWORD)
        .status
        .success());
    let disable = Binary::AuthServer
        .run(&[
            "user",
            "disable",
            "carol",
            "--data-dir",
            data.path().to_str().unwrap(),
        ])
        .unwrap();
    assert!(disable.status.success());
    let server = serve(data.path(), &[]);
    let profile = temp_dir();

    let (ok, _, stderr) = login(profile.path(), server.addr(), &pubkey, "bob", "wrong");
    assert!(!ok);
    assert!(stderr.contains("wrong username or password"), "{stderr}");

    let (ok, _, stderr) = login(profile.path(), server.addr(), &pubkey, "nobody", PASSWORD);
    assert!(!ok);
    assert!(stderr.contains("wrong username or password"), "{stderr}");

    let (ok, _, stderr) = login(profile.path(), server.addr(), &pubkey, "carol", PASSWORD);
    assert!(!ok);
    assert!(stderr.contains("account disabled"), "{stderr}");

    // A server that is not there is named as unreachable.
    let nothing = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = nothing.local_addr().unwrap();
    drop(nothing);
    let (ok, _, stderr) = login(profile.path(), dead, &pubkey, "bob", PASSWORD);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("auth-server unreachable at {dead}")),
        "{stderr}"
    );
}

#[test]
fn durability_every_account_reported_added_logs_in_after_a_kill_9() {
    let seed = switchboard_tests::test_seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let data = temp_dir();
    let pubkey = init(data.path());
    let config = write_config(data.path(), "attempts_per_sec = 1000\nburst = 1000");
    let server = serve(data.path(), &["--config", &config]);
    let kill_after = rng.gen_range(20..180);
    println!("kill -9 after {kill_after} accounts");

    // The script also SIGKILLs one `user add` in ten at a random moment of its work: an add
    // that did not report success may or may not exist, one that did must.
    let added = Arc::new(Mutex::new(Vec::new()));
    let killed_adds = Arc::new(Mutex::new(0u32));
    let script = {
        let added = Arc::clone(&added);
        let killed_adds = Arc::clone(&killed_adds);
        let dir = data.path().to_path_buf();
        let mut rng = SmallRng::seed_from_u64(seed ^ 1);
        std::thread::spawn(move || {
            for i in 0..200 {
                let name = format!("user{i:03}");
                let mut child = Binary::AuthServer
                    .command(&["user", "add", &name, "--data-dir", dir.to_str().unwrap()])
                    .unwrap()
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("pw-{name}\n").as_bytes())
                    .unwrap();
                if rng.gen_ratio(1, 10) {
                    std::thread::sleep(Duration::from_millis(rng.gen_range(0..80)));
                    let _ = child.kill();
                    *killed_adds.lock().unwrap() += 1;
                }
                if child.wait().unwrap().success() {
                    added.lock().unwrap().push(name);
                }
            }
        })
    };
    while added.lock().unwrap().len() < kill_after && !script.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    let server = serve(data.path(), &["--config", &config]);
    script.join().unwrap();

    let added = added.lock().unwrap().clone();
    println!(
        "{} adds reported success, {} adds were SIGKILLed",
        added.len(),
        killed_adds.lock().unwrap()
    );
    assert!(
        added.len() >= 150,
        "most adds succeed: the server's death does not affect them"
    );
    let failures = Arc::new(Mutex::new(Vec::new()));
    let chunks: Vec<Vec<String>> = added.chunks(50).map(<[String]>::to_vec).collect();
    let workers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let failures = Arc::clone(&failures);
            let pubkey = pubkey.clone();
            let addr = server.addr();
            std::thread::spawn(move || {
                let profile = temp_dir();
                for name in chunk {
                    let (ok, _, stderr) =
                        login(profile.path(), addr, &pubkey, &name, &format!("pw-{name}"));
                    if !ok {
                        failures.lock().unwrap().push(format!("{name}: {stderr}"));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "logins failed (SWITCHBOARD_TEST_SEED={seed}): {failures:?}"
    );
    drop(server);
    Store::open(data.path()).unwrap().integrity_check().unwrap();
}

/// Logs in through the client library (real QUIC to the real server process), for bursts.
fn login_in_process(
    runtime: &tokio::runtime::Runtime,
    profile: &Path,
    auth: SocketAddr,
    pubkey: &str,
    password: &str,
) -> Result<(), switchboard_client::login::LoginError> {
    runtime
        .block_on(switchboard_client::login::login(
            &Profile::new(profile),
            &auth.to_string(),
            pubkey.parse().unwrap(),
            switchboard_proto::Username::new("dave").unwrap(),
            switchboard_proto::messages::Password::new(password).unwrap(),
            false,
        ))
        .map(|_| ())
}

#[test]
fn a_burst_of_wrong_passwords_locks_the_account_until_the_lockout_ends() {
    use switchboard_client::login::LoginError;
    let data = temp_dir();
    let pubkey = init(data.path());
    assert!(add_user(data.path(), "dave", "user", PASSWORD)
        .status
        .success());
    // The first lockout (after 5 failures) lasts 10 s: long enough that the checks below run
    // inside it on a loaded machine, however slow the 50 tries were. Throttled tries do not
    // extend a lockout, so its length is what keeps this test honest.
    let config = write_config(
        data.path(),
        "free_failures = 5\nbase_lockout_ms = 10000\nmax_lockout_secs = 10\nattempts_per_sec = 1000\nburst = 1000",
    );
    let server = serve(data.path(), &["--config", &config]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let profile = temp_dir();

    let mut throttled = 0;
    let mut wrong = 0;
    let burst = Instant::now();
    for _ in 0..50 {
        match login_in_process(&runtime, profile.path(), server.addr(), &pubkey, "guess") {
            Err(LoginError::Throttled(_)) => throttled += 1,
            Err(LoginError::BadCredentials) => wrong += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    println!(
        "{wrong} refused as wrong, {throttled} throttled, in {:?}",
        burst.elapsed()
    );
    assert_eq!(
        wrong, 6,
        "the 5 free failures are checked, then the one that starts the lockout"
    );
    assert_eq!(throttled, 44, "every later attempt is throttled");

    // The right password is refused while the lockout lasts...
    let retry = match login_in_process(&runtime, profile.path(), server.addr(), &pubkey, PASSWORD) {
        Err(LoginError::Throttled(secs)) => secs,
        other => panic!("the right password must be refused during the lockout: {other:?}"),
    };
    assert!(retry <= 10, "retry in {retry} s, longer than the lockout");
    let (ok, _, stderr) = login(profile.path(), server.addr(), &pubkey, "dave", PASSWORD);
    assert!(!ok);
    assert!(stderr.contains("too many attempts, retry in"), "{stderr}");

    // ...and accepted after it.
    std::thread::sleep(Duration::from_secs(retry + 1));
    login_in_process(&runtime, profile.path(), server.addr(), &pubkey, PASSWORD)
        .expect("the right password is accepted after the lockout");
}

#[test]
fn garbage_on_the_auth_port_never_stops_the_server() {
    let seed = switchboard_tests::test_seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let data = temp_dir();
    let pubkey = init(data.path());
    assert!(add_user(data.path(), "erin", "user", PASSWORD)
        .status
        .success());
    let mut server = serve(data.path(), &["--metrics", "127.0.0.1:0"]);

    // 1. Random datagrams, some shaped like QUIC long headers.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..2_000 {
        let mut datagram = vec![0u8; rng.gen_range(1..1_400)];
        rng.fill_bytes(&mut datagram);
        if i % 2 == 0 {
            datagram[0] = 0xc0 | (datagram[0] & 0x0f);
        }
        socket.send_to(&datagram, server.addr()).unwrap();
    }

    // 2. A valid QUIC handshake followed by malformed and oversized frames.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use switchboard_net::config::Role;
        use switchboard_net::*;
        let key = switchboard_proto::SecretKey::from_seed([5; 32]);
        let policy = PeerPolicy::ExactKey(pubkey.parse().unwrap());
        let config = client_config(
            &Identity::new(key, None),
            policy.clone(),
            &[switchboard_proto::version::ALPN_AUTH],
            transport_config(Role::Dialer),
            Resumption::Disabled,
        )
        .unwrap();
        let dialer = Dialer::bind("127.0.0.1:0".parse().unwrap(), config, policy).unwrap();
        for garbage in [
            vec![0, 0, 0, 3, 0xff, 0xff, 0xff], // a frame no message decodes from
            u32::MAX.to_be_bytes().to_vec(),    // a 4 GiB frame announced
            vec![0, 0, 0, 1, 0, 9, 9, 9],       // trailing bytes
        ] {
            let connection = dialer
                .connect(server.addr(), HANDSHAKE_TIMEOUT)
                .await
                .unwrap();
            let (mut send, _recv) = connection.connection.open_bi().await.unwrap();
            send.write_all(&garbage).await.unwrap();
            let _ = send.finish();
            let closed =
                tokio::time::timeout(Duration::from_secs(10), connection.connection.closed())
                    .await
                    .expect("the server closes a connection that sent garbage");
            assert!(
                closed.to_string().to_lowercase().contains("malformed")
                    || matches!(closed, quinn::ConnectionError::ApplicationClosed(_)),
                "{closed}"
            );
        }
    });

    // 3. The server still serves: a login right after succeeds.
    assert!(server.is_running());
    let profile = temp_dir();
    let (ok, _, stderr) = login(profile.path(), server.addr(), &pubkey, "erin", PASSWORD);
    assert!(ok, "{stderr}");
    drop(server);
}

#[test]
fn metrics_count_logins_and_sigterm_exits_zero() {
    let data = temp_dir();
    let pubkey = init(data.path());
    assert!(add_user(data.path(), "frank", "user", PASSWORD)
        .status
        .success());
    let mut server = serve(data.path(), &["--metrics", "127.0.0.1:0"]);
    let metrics = server.metrics_addr().expect("a `metrics on ADDR` line");
    let profile = temp_dir();
    assert!(login(profile.path(), server.addr(), &pubkey, "frank", PASSWORD).0);
    assert!(!login(profile.path(), server.addr(), &pubkey, "frank", "nope").0);
    let text = http_get(metrics, "/metrics").unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("switchboard_auth_logins_ok_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("switchboard_auth_logins_failed_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("switchboard_auth_tickets_issued_total 1\n"),
        "{text}"
    );
    assert!(text.contains("switchboard_auth_accounts 1\n"), "{text}");
    assert!(http_get(metrics, "/healthz").unwrap().ends_with("ok\n"));
    let started = Instant::now();
    server.signal("TERM").unwrap();
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    println!("exited in {:?}", started.elapsed());
}

#[test]
fn sigterm_lets_a_running_password_check_finish_and_its_sign_up_is_kept() {
    let data = temp_dir();
    let pubkey = init(data.path());
    // A password check of about a second (argon2id at 60 iterations), so that SIGTERM
    // arrives while it runs.
    let config = write_config(data.path(), "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("open_signup = true\n{text}\n[argon2]\niterations = 60\n"),
    )
    .unwrap();
    let mut server = serve(
        data.path(),
        &["--config", &config, "--metrics", "127.0.0.1:0"],
    );
    let profile = temp_dir();
    let profile_path = profile.path().to_str().unwrap().to_owned();
    let auth = server.addr().to_string();
    let signup = std::thread::spawn(move || {
        Binary::Client
            .run_with_stdin(
                &[
                    "signup",
                    "--profile",
                    &profile_path,
                    "--auth",
                    &auth,
                    "--trust",
                    &pubkey,
                    "--user",
                    "grace",
                ],
                &format!("{PASSWORD}\n"),
            )
            .unwrap()
    });
    let running = |server: &Daemon| {
        http_get(server.metrics_addr().unwrap(), "/metrics")
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("switchboard_auth_password_checks_running ")?
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while running(&server) != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the sign-up's check never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let term = Instant::now();
    server.signal("TERM").unwrap();
    let output = signup.join().unwrap();
    assert!(
        output.status.success(),
        "the sign-up being checked at SIGTERM gets its answer: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    println!("exited {:?} after SIGTERM, the check done", term.elapsed());
    // The account it created is durable.
    let list = Binary::AuthServer
        .run(&["user", "list", "--data-dir", data.path().to_str().unwrap()])
        .unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("grace"),
        "{list:?}"
    );
}
