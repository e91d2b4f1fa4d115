//! Login benchmark: full logins per second through the real server (QUIC handshake, Hello,
//! Login, argon2id check, ticket signing) at the chosen argon2 parameters, next to the bare
//! argon2id check on one core in the same run; and ticket verifications per second on one
//! core, the figure that bounds how fast a supernode can admit clients.
//!
//! Run: `cargo bench -p switchboard-auth-server --bench login` (optional: seconds per phase).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_account::login::login;
use switchboard_account::profile::Profile;
use switchboard_auth_server::config::FileConfig;
use switchboard_auth_server::password::{HashParams, Hasher};
use switchboard_auth_server::serve::Server;
use switchboard_auth_server::store::Store;
use switchboard_proto::messages::Password;
use switchboard_proto::{Role, SecretKey, Ticket, TicketBody, UnixTime, Username};

const CLIENTS: usize = 8;
const PASSWORD: &str = "correct horse battery staple";

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let window = Duration::from_secs(seconds);
    let params = HashParams::default();
    println!(
        "# login benchmark: argon2id m={} KiB, t={}, p={}; {CLIENTS} concurrent clients; {seconds} s per phase",
        params.memory_kib, params.iterations, params.parallelism
    );
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("machine: {cores} cores\n");

    // Bare argon2id verification on one core.
    let hasher = Hasher::new(params).unwrap();
    let hash = hasher.hash(PASSWORD).unwrap();
    let started = Instant::now();
    let mut checks = 0u64;
    while started.elapsed() < window {
        assert!(hasher.verify(PASSWORD, Some(&hash)));
        checks += 1;
    }
    let argon2_rate = checks as f64 / started.elapsed().as_secs_f64();

    // Ticket verification on one core.
    let auth = SecretKey::from_seed([1; 32]);
    let anchor = auth.trust_anchor();
    let now = switchboard_net::now_unix();
    let ticket = Ticket::issue(
        &auth,
        TicketBody {
            user: Username::new("alice").unwrap(),
            node: SecretKey::from_seed([2; 32]).node_id(),
            role: Role::User,
            issued_at: UnixTime(now.0 - 1),
            expires_at: UnixTime(now.0 + 3600),
            serial: 1,
        },
    )
    .unwrap();
    let started = Instant::now();
    let mut verified = 0u64;
    while started.elapsed() < window {
        ticket.verify(&anchor, now).unwrap();
        verified += 1;
    }
    let verify_rate = verified as f64 / started.elapsed().as_secs_f64();

    // Full logins through the server.
    let data = tempfile::tempdir().unwrap();
    let key = switchboard_net::keyfile::create(&data.path().join("auth.key")).unwrap();
    let store = Store::open(data.path()).unwrap();
    for i in 0..CLIENTS {
        let name = Username::new(&format!("bench{i}")).unwrap();
        store.add(&name, &hash, Role::User, now).unwrap();
    }
    drop(store);
    let config = FileConfig {
        data_dir: Some(data.path().to_path_buf()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..FileConfig::default()
    };
    let mut config = config.validate("bench").unwrap();
    config.throttle.attempts_per_sec = 1_000_000;
    config.throttle.burst = 1_000_000;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let logins = Arc::new(AtomicU64::new(0));
    let elapsed = runtime.block_on(async {
        let server = Server::bind(config).await.unwrap();
        let addr = server.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async {
            let _ = stop_rx.await;
        }));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..CLIENTS {
            let logins = Arc::clone(&logins);
            let trust = key.auth_key();
            tasks.push(tokio::spawn(async move {
                let profile_dir = tempfile::tempdir().unwrap();
                let profile = Profile::new(profile_dir.path());
                let user = Username::new(&format!("bench{i}")).unwrap();
                while started.elapsed() < window {
                    login(
                        &profile,
                        &addr.to_string(),
                        trust,
                        user.clone(),
                        Password::new(PASSWORD).unwrap(),
                        false,
                    )
                    .await
                    .unwrap();
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed();
        let _ = stop_tx.send(());
        serving.await.unwrap();
        elapsed
    });
    let login_rate = logins.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();

    println!("| what | per second | note |");
    println!("| --- | ---: | --- |");
    println!(
        "| argon2id verification, one core | {argon2_rate:.1} | the floor of a login's cost |"
    );
    println!(
        "| full logins through the server ({CLIENTS} clients, all {cores} cores shared with them) | {login_rate:.1} | ratio to {cores} x bare argon2: {:.2} |",
        login_rate / (argon2_rate * cores as f64)
    );
    println!("| ticket verification, one core | {verify_rate:.0} | what a supernode pays per admitted client |");
}
