//! Supernode benchmark: registrations and lookups per second with p50/p99, each next to raw
//! quinn doing the same handshakes and exchanges (same byte counts) in the same run, and the
//! supernode's memory per connected idle client.
//!
//! Run: `cargo bench -p switchboard-supernode --bench directory` (optional: seconds per round,
//! rounds, idle clients). The supernode runs in-process on its own thread with a
//! single-threaded runtime (its CPU is that thread's); the load runs on another. For memory,
//! the idle clients live in a child process (this binary re-executed), so the parent's RSS
//! growth is the supernode's alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use switchboard_client::profile::{Host, Profile, Settings};
use switchboard_client::session::{self, Context};
use switchboard_proto::codec::encode_frame;
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::version::{Hello, VersionRange};
use switchboard_proto::{
    BoundedVec, Record, RecordBody, Role, SecretKey, Ticket, TicketBody, UnixTime, Username,
};
use switchboard_supernode::config::FileConfig;
use switchboard_supernode::server::Server;

const REGISTER_DIALERS: usize = 8;
const LOOKUP_SESSIONS: usize = 32;

fn auth() -> SecretKey {
    SecretKey::from_seed([42; 32])
}

fn ticket_for(key: &SecretKey, user: &str, role: Role) -> Ticket {
    let now = switchboard_net::now_unix().0;
    Ticket::issue(
        &auth(),
        TicketBody {
            user: Username::new(user).unwrap(),
            node: key.node_id(),
            role,
            issued_at: UnixTime(now - 10),
            expires_at: UnixTime(now + 3_600),
            serial: now,
        },
    )
    .unwrap()
}

fn record_for(key: &SecretKey, ticket: &Ticket, seq: u64) -> Record {
    Record::sign(
        key,
        RecordBody {
            ticket: ticket.clone(),
            endpoints: BoundedVec::try_from(vec!["127.0.0.1:40000".parse().unwrap()]).unwrap(),
            reflexive: None,
            home: None,
            seq,
            issued_at: switchboard_net::now_unix(),
            ttl_secs: 60,
        },
    )
    .unwrap()
}

/// A client profile on disk for `user`, pointing at the supernode.
fn profile(dir: &std::path::Path, user: &str, server: SocketAddr, server_node: &str) -> Profile {
    let profile = Profile::new(dir);
    profile.create().unwrap();
    let key = profile.node_key().unwrap();
    profile
        .save_ticket(&ticket_for(&key, user, Role::User))
        .unwrap();
    profile
        .save_settings(&Settings {
            user: user.to_owned(),
            auth: "127.0.0.1:9".to_owned(),
            trust: auth().auth_key().to_string(),
        })
        .unwrap();
    profile
        .save_hosts(vec![Host {
            node: server_node.to_owned(),
            addr: server,
            mode: "normal".to_owned(),
            load_permille: 0,
            last_success: None,
            last_failure: None,
        }])
        .unwrap();
    profile
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A server thread: ours (the real supernode) or raw quinn echoing fixed answers.
struct ServerThread {
    addr: SocketAddr,
    node: String,
    start: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
    cpu: mpsc::Receiver<Duration>,
    thread: std::thread::JoinHandle<()>,
}

fn start_ours(data: &std::path::Path, capacity: usize) -> ServerThread {
    let key = SecretKey::from_seed([7; 32]);
    let ticket = ticket_for(&key, "sn1", Role::Supernode);
    let node = key.node_id().to_string();
    let file = FileConfig {
        data_dir: Some(data.to_path_buf()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        auth: Some("127.0.0.1:9".to_owned()),
        trust: Some(auth().auth_key().to_string()),
        user: Some("sn1".to_owned()),
        password_file: Some(data.join("none")),
        capacity: Some(capacity),
        handshakes_per_sec: Some(100_000),
        requests_per_sec: Some(10_000_000),
        ..FileConfig::default()
    };
    let config = file.validate("bench").unwrap();
    spawn_server(node, move |ready, start, stop, cpu| async move {
        let server = Server::bind(config, key, ticket, Vec::new()).await.unwrap();
        ready.send(server.local_addr().unwrap()).unwrap();
        server
            .run(async move {
                start.notified().await;
                let before = thread_cpu();
                stop.notified().await;
                cpu.send(thread_cpu() - before).unwrap();
            })
            .await;
    })
}

fn start_raw(answers: Arc<Vec<Vec<u8>>>) -> (ServerThread, quinn::ClientConfig) {
    let (server_config, client_config) = switchboard_net::testing::raw_quinn_configs(false);
    let thread = spawn_server(String::new(), move |ready, start, stop, cpu| async move {
        let endpoint =
            quinn::Endpoint::server(server_config, "127.0.0.1:0".parse().unwrap()).unwrap();
        ready.send(endpoint.local_addr().unwrap()).unwrap();
        let accept = async {
            while let Some(incoming) = endpoint.accept().await {
                let answers = Arc::clone(&answers);
                tokio::spawn(async move {
                    let Ok(connection) = incoming.await else {
                        return;
                    };
                    let Ok((mut send, mut recv)) = connection.accept_bi().await else {
                        return;
                    };
                    // The same exchange shape as ours: frames in, one canned answer per
                    // request, answers in order (hello, then register or lookup answers).
                    let mut header = [0u8; 4];
                    let mut index = 0;
                    while recv.read_exact(&mut header).await.is_ok() {
                        let len = u32::from_be_bytes(header) as usize;
                        let mut payload = vec![0u8; len.min(MAX_FRAME_LEN)];
                        if recv.read_exact(&mut payload).await.is_err() {
                            return;
                        }
                        let answer = &answers[index.min(answers.len() - 1)];
                        index += 1;
                        if send.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        };
        let measure = async {
            start.notified().await;
            let before = thread_cpu();
            stop.notified().await;
            cpu.send(thread_cpu() - before).unwrap();
        };
        tokio::select! {
            () = accept => {}
            () = measure => {}
        }
        endpoint.close(0u32.into(), b"done");
    });
    (thread, client_config)
}

fn spawn_server<F, Fut>(node: String, body: F) -> ServerThread
where
    F: FnOnce(
            mpsc::Sender<SocketAddr>,
            Arc<tokio::sync::Notify>,
            Arc<tokio::sync::Notify>,
            mpsc::Sender<Duration>,
        ) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (ready_tx, ready_rx) = mpsc::channel();
    let (cpu_tx, cpu_rx) = mpsc::channel();
    let start = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(tokio::sync::Notify::new());
    let (start2, stop2) = (Arc::clone(&start), Arc::clone(&stop));
    let thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body(ready_tx, start2, stop2, cpu_tx));
    });
    ServerThread {
        addr: ready_rx.recv().unwrap(),
        node,
        start,
        stop,
        cpu: cpu_rx,
        thread,
    }
}

struct Round {
    ops: u64,
    elapsed: Duration,
    cpu: Duration,
    latency: Histogram<u64>,
}

/// Runs `workers` loops of `op` for `window` against `server`.
fn drive<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    server: ServerThread,
    workers: usize,
    window: Duration,
    op: F,
) -> Round
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let op = Arc::new(op);
    let (ops, elapsed, latency) = runtime.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        server.start.notify_one();
        let started = Instant::now();
        let local = tokio::task::LocalSet::new();
        let latency = local
            .run_until(async {
                let mut tasks = Vec::new();
                for worker in 0..workers {
                    let (done, ops, op) = (Arc::clone(&done), Arc::clone(&ops), Arc::clone(&op));
                    tasks.push(tokio::task::spawn_local(async move {
                        let mut histogram =
                            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                        while !done.load(Ordering::Relaxed) {
                            let t0 = Instant::now();
                            op(worker).await;
                            histogram.record(t0.elapsed().as_micros() as u64).unwrap();
                            ops.fetch_add(1, Ordering::Relaxed);
                        }
                        histogram
                    }));
                }
                tokio::time::sleep(window).await;
                done.store(true, Ordering::Relaxed);
                let mut merged = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                for task in tasks {
                    merged.add(task.await.unwrap()).unwrap();
                }
                merged
            })
            .await;
        (ops.load(Ordering::Relaxed), started.elapsed(), latency)
    });
    server.stop.notify_one();
    let cpu = server.cpu.recv().unwrap();
    drop(server.thread);
    Round {
        ops,
        elapsed,
        cpu,
        latency,
    }
}

fn report(title: &str, raw: &[Round], ours: &[Round]) {
    let median = |rounds: &[Round], f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rate = |r: &Round| r.ops as f64 / r.elapsed.as_secs_f64();
    let cpu = |r: &Round| r.cpu.as_secs_f64() * 1e6 / r.ops.max(1) as f64;
    let quantiles = |rounds: &[Round]| {
        let mut merged = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for r in rounds {
            merged.add(&r.latency).unwrap();
        }
        (
            merged.value_at_quantile(0.5),
            merged.value_at_quantile(0.99),
        )
    };
    println!("## {title}\n");
    println!("| variant | ops/s (median) | server CPU µs/op | p50 µs | p99 µs |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, rounds) in [("raw quinn", raw), ("supernode", ours)] {
        let (p50, p99) = quantiles(rounds);
        println!(
            "| {name} | {:.0} | {:.1} | {p50} | {p99} |",
            median(rounds, &rate),
            median(rounds, &cpu)
        );
    }
    println!(
        "\nratio supernode/raw: rate {:.2}, server CPU per op (raw/ours) {:.2}\n",
        median(ours, &rate) / median(raw, &rate),
        median(raw, &cpu) / median(ours, &cpu)
    );
}

/// Child mode: open `n` idle sessions to the supernode at `addr`, say "ready", hold them until
/// stdin closes.
fn idle_clients(addr: SocketAddr, node: String, n: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let mut sessions = Vec::new();
        for i in 0..n {
            let profile = profile(
                &dir.path().join(format!("idle{i}")),
                &format!("idle{i}"),
                addr,
                &node,
            );
            let context = Context::load(profile, None).unwrap();
            let session = session::open(&context, None).await.unwrap();
            sessions.push((context, session));
        }
        println!("ready");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        drop(sessions);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--idle-child") {
        let addr = args[position + 1].parse().unwrap();
        let node = args[position + 2].clone();
        let n = args[position + 3].parse().unwrap();
        idle_clients(addr, node, n);
        return;
    }
    // One client runtime for everything, so that endpoints made during set-up keep being
    // driven during the measurements.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let numbers: Vec<u64> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let window = Duration::from_secs(numbers.first().copied().unwrap_or(3));
    let rounds = numbers.get(1).copied().unwrap_or(3) as usize;
    let idle = numbers.get(2).copied().unwrap_or(1000) as usize;
    println!(
        "# supernode benchmark: {rounds} rounds x {} s, {REGISTER_DIALERS} registering dialers, {LOOKUP_SESSIONS} lookup sessions\n",
        window.as_secs()
    );

    // Identities and messages, made before any clock starts.
    let dialers: Vec<(SecretKey, Ticket)> = (0..REGISTER_DIALERS)
        .map(|i| {
            let key = SecretKey::from_seed([100 + i as u8; 32]);
            let ticket = ticket_for(&key, &format!("reg{i}"), Role::User);
            (key, ticket)
        })
        .collect();
    let hello = ClientMessage::Hello(Hello {
        protocol: VersionRange::CURRENT,
        software: "0.1.0".parse().unwrap(),
    });
    let sample_register = ClientMessage::Register {
        record: Box::new(record_for(&dialers[0].0, &dialers[0].1, 1)),
    };
    let welcome_len = encode_frame(&SupernodeMessage::Welcome(switchboard_proto::Welcome {
        protocol: 1,
        software: "0.1.0".parse().unwrap(),
    }))
    .unwrap()
    .len();
    let registered_len = encode_frame(&SupernodeMessage::Registered {
        lease_secs: 60,
        home: SecretKey::from_seed([7; 32]).node_id(),
        observed: "203.0.113.7:4433".parse().unwrap(),
    })
    .unwrap()
    .len();
    let target_key = SecretKey::from_seed([200; 32]);
    let target_ticket = ticket_for(&target_key, "target", Role::User);
    let lookup = ClientMessage::Lookup {
        user: Username::new("target").unwrap(),
    };
    let lookup_answer_len = encode_frame(&SupernodeMessage::LookupResult {
        user: Username::new("target").unwrap(),
        records: BoundedVec::try_from(vec![record_for(&target_key, &target_ticket, 1)]).unwrap(),
    })
    .unwrap()
    .len();
    let hello_frame = encode_frame(&hello).unwrap();
    let register_frame_len = encode_frame(&sample_register).unwrap().len();
    let lookup_frame = encode_frame(&lookup).unwrap();

    let mut reg_raw = Vec::new();
    let mut reg_ours = Vec::new();
    let mut look_raw = Vec::new();
    let mut look_ours = Vec::new();
    for round in 0..rounds {
        // Registrations, raw: handshake + hello + register-sized exchange + close.
        let (server, client_config) = start_raw(Arc::new(vec![
            vec![7u8; welcome_len],
            vec![7u8; registered_len],
        ]));
        let addr = server.addr;
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let hello_frame2 = hello_frame.clone();
        let raw = drive(&rt, server, REGISTER_DIALERS, window, move |_| {
            let (endpoint, config, hello) = (
                endpoint.clone(),
                client_config.clone(),
                hello_frame2.clone(),
            );
            async move {
                let connection = endpoint
                    .connect_with(config, addr, "localhost")
                    .unwrap()
                    .await
                    .unwrap();
                let (mut send, mut recv) = connection.open_bi().await.unwrap();
                send.write_all(&hello).await.unwrap();
                let mut buf = vec![0u8; welcome_len];
                recv.read_exact(&mut buf).await.unwrap();
                let mut frame = vec![7u8; register_frame_len];
                frame[..4].copy_from_slice(&((register_frame_len - 4) as u32).to_be_bytes());
                send.write_all(&frame).await.unwrap();
                let mut buf = vec![0u8; registered_len];
                recv.read_exact(&mut buf).await.unwrap();
                connection.close(0u32.into(), b"done");
            }
        });
        eprintln!(
            "round {round} registrations raw: {:.0}/s",
            raw.ops as f64 / raw.elapsed.as_secs_f64()
        );
        reg_raw.push(raw);

        // Registrations, ours: full handshake with ticket checks, Hello, a signed Register.
        let data = tempfile::tempdir().unwrap();
        let server = start_ours(data.path(), 100_000);
        let (addr, node) = (server.addr, server.node.clone());
        let dirs = tempfile::tempdir().unwrap();
        let contexts: Vec<Arc<Context>> = dialers
            .iter()
            .enumerate()
            .map(|(i, (key, ticket))| {
                let dir = dirs.path().join(format!("reg{i}"));
                let p = profile(&dir, &format!("reg{i}"), addr, &node);
                switchboard_net::keyfile::write_private(
                    &dir.join("node.key"),
                    &key.to_pkcs8_der().unwrap(),
                )
                .unwrap();
                p.save_ticket(ticket).unwrap();
                Arc::new(Context::load(p, None).unwrap())
            })
            .collect();
        let seq = Arc::new(AtomicU64::new(1));
        let ours = drive(&rt, server, REGISTER_DIALERS, window, move |worker| {
            let context = Arc::clone(&contexts[worker]);
            let seq = seq.fetch_add(1, Ordering::Relaxed);
            async move {
                let mut session = session::open(&context, None).await.unwrap();
                let record = record_for(&context.key, &context.ticket, seq);
                let answer = session
                    .ask(&ClientMessage::Register {
                        record: Box::new(record),
                    })
                    .await
                    .unwrap();
                assert!(
                    matches!(answer, SupernodeMessage::Registered { .. }),
                    "{answer:?}"
                );
                session.connection.connection.close(0u32.into(), b"done");
            }
        });
        eprintln!(
            "round {round} registrations ours: {:.0}/s",
            ours.ops as f64 / ours.elapsed.as_secs_f64()
        );
        reg_ours.push(ours);

        // Lookups, raw: one stream per connection, lookup-sized frames.
        let (server, client_config) = start_raw(Arc::new(vec![
            vec![7u8; welcome_len],
            vec![7u8; lookup_answer_len],
        ]));
        let addr = server.addr;
        let lookup_len = lookup_frame.len();
        let streams: Vec<_> = rt.block_on(async {
            let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            let mut streams = Vec::new();
            for _ in 0..LOOKUP_SESSIONS {
                let connection = endpoint
                    .connect_with(client_config.clone(), addr, "localhost")
                    .unwrap()
                    .await
                    .unwrap();
                let (mut send, mut recv) = connection.open_bi().await.unwrap();
                send.write_all(&hello_frame).await.unwrap();
                let mut buf = vec![0u8; welcome_len];
                recv.read_exact(&mut buf).await.unwrap();
                streams.push(Arc::new(tokio::sync::Mutex::new((connection, send, recv))));
            }
            streams
        });
        let raw = drive(&rt, server, LOOKUP_SESSIONS, window, move |worker| {
            let stream = Arc::clone(&streams[worker]);
            async move {
                let mut guard = stream.lock().await;
                let (_, send, recv) = &mut *guard;
                let mut frame = vec![7u8; lookup_len];
                frame[..4].copy_from_slice(&((lookup_len - 4) as u32).to_be_bytes());
                send.write_all(&frame).await.unwrap();
                let mut buf = vec![0u8; lookup_answer_len];
                recv.read_exact(&mut buf).await.unwrap();
            }
        });
        eprintln!(
            "round {round} lookups raw: {:.0}/s",
            raw.ops as f64 / raw.elapsed.as_secs_f64()
        );
        look_raw.push(raw);

        // Lookups, ours: sessions on the real supernode, the target registered.
        let data = tempfile::tempdir().unwrap();
        let server = start_ours(data.path(), 100_000);
        let (addr, node) = (server.addr, server.node.clone());
        let dirs = tempfile::tempdir().unwrap();
        let sessions: Vec<_> = rt.block_on(async {
            let target_dir = dirs.path().join("target");
            let p = profile(&target_dir, "target", addr, &node);
            let target = Context::load(p, None).unwrap();
            let mut target_session = session::open(&target, None).await.unwrap();
            let record = record_for(&target.key, &target.ticket, 1);
            target_session
                .ask(&ClientMessage::Register {
                    record: Box::new(record),
                })
                .await
                .unwrap();
            let mut sessions = vec![];
            for i in 0..LOOKUP_SESSIONS {
                let p = profile(
                    &dirs.path().join(format!("look{i}")),
                    &format!("look{i}"),
                    addr,
                    &node,
                );
                let context = Context::load(p, None).unwrap();
                let session = session::open(&context, None).await.unwrap();
                sessions.push(Arc::new(tokio::sync::Mutex::new((context, session))));
            }
            sessions.push(Arc::new(tokio::sync::Mutex::new((target, target_session))));
            sessions
        });
        let lookup2 = lookup.clone();
        let ours = drive(&rt, server, LOOKUP_SESSIONS, window, move |worker| {
            let session = Arc::clone(&sessions[worker]);
            let lookup = lookup2.clone();
            async move {
                let mut guard = session.lock().await;
                let answer = guard.1.ask(&lookup).await.unwrap();
                let SupernodeMessage::LookupResult { records, .. } = answer else {
                    panic!("{answer:?}");
                };
                assert_eq!(records.len(), 1);
            }
        });
        eprintln!(
            "round {round} lookups ours: {:.0}/s",
            ours.ops as f64 / ours.elapsed.as_secs_f64()
        );
        look_ours.push(ours);
    }
    report(
        "registrations (new connection + ticket check + register)",
        &reg_raw,
        &reg_ours,
    );
    report(
        "lookups (one record, on an open session)",
        &look_raw,
        &look_ours,
    );

    // Memory per idle client: the supernode in this process, the clients in a child.
    let data = tempfile::tempdir().unwrap();
    let server = start_ours(data.path(), 100_000);
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--idle-child",
            &server.addr.to_string(),
            &server.node,
            &idle.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib();
    drop(child.stdin.take());
    let _ = child.wait();
    let per_client = (after.saturating_sub(before)) as f64 / idle as f64;
    println!("## memory per connected idle client\n");
    println!("| idle clients | supernode RSS before | after | per client |");
    println!("| ---: | ---: | ---: | ---: |");
    println!("| {idle} | {before} KiB | {after} KiB | {per_client:.1} KiB |");
    server.stop.notify_one();
}
