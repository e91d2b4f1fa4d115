//! Transport benchmark: our framed protocol over ticket-authenticated connections next to raw
//! quinn doing the same exchange, in the same run, on loopback.
//!
//! Run: `cargo bench -p switchboard-net --bench transport` (optional args: seconds per round,
//! rounds; default 2 s x 3 rounds). The server runs on its own thread with a single-threaded
//! tokio runtime, the load generator on another, so on a 2-core machine each has a core.
//! Server CPU is read from `/proc/thread-self/schedstat` on the server thread, so "µs of server
//! CPU per operation" does not depend on how busy the client is.
//!
//! Scenarios, each alternating raw and ours round by round so that machine noise hits both:
//! - requests: 32 connections, each with one request in flight, a `Lookup` answered by a
//!   `LookupResult` carrying one signed record (raw: the same byte counts, no framing, no
//!   postcard), one bidirectional stream per request; plus ours on one long-lived stream per
//!   connection (the framing choice DESIGN.md section 4 asks to measure);
//! - handshakes: 8 dialers connecting and closing in a loop, full handshakes (no resumption);
//!   ours: mutual TLS with node-key certificates and ticket verification on both sides; raw:
//!   quinn with a self-signed server certificate the client trusts, no client certificate;
//!   ours with Retry: every address validated by a QUIC Retry first (the gate under load).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use switchboard_net::config::Role as TransportRole;
use switchboard_net::framed;
use switchboard_net::{
    client_config, server_config, transport_config, Dialer, HandshakeGate, Identity, Listener,
    PeerPolicy, Resumption, HANDSHAKE_TIMEOUT, REQUEST_TIMEOUT,
};
use switchboard_proto::codec::encode_frame;
use switchboard_proto::limits::MAX_FRAME_LEN;
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::version::ALPN_DIRECTORY;
use switchboard_proto::{
    BoundedVec, Record, RecordBody, Role, SecretKey, Ticket, TicketBody, UnixTime, Username,
};

const REQUEST_CONNECTIONS: usize = 32;
const HANDSHAKE_DIALERS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Plain quinn: a self-signed server certificate the client trusts, no client certificate.
    Raw,
    /// Plain quinn with standard mutual TLS: a CA, server and client certificates (ECDSA
    /// P-256, rcgen's default) verified by webpki on both sides.
    RawMutual,
    /// Ours, one bidirectional stream per request.
    Ours,
    /// Ours, one long-lived stream per connection.
    OursOneStream,
    /// Ours with every address validated by a QUIC Retry first (the handshake gate under
    /// load: `retry_above = 0`), for the cost of address validation.
    OursRetry,
}

impl Variant {
    fn is_raw(self) -> bool {
        matches!(self, Self::Raw | Self::RawMutual)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Requests(Variant),
    Handshakes(Variant),
}

/// What one round measured.
#[derive(Debug, Clone)]
struct RoundResult {
    ops: u64,
    elapsed: Duration,
    server_cpu: Duration,
    latency_us: Histogram<u64>,
}

impl RoundResult {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_per_op_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }
}

/// CPU time consumed so far by the calling thread.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

fn auth() -> SecretKey {
    SecretKey::from_seed([42; 32])
}

fn now() -> u64 {
    switchboard_net::now_unix().0
}

fn identity(seed: u8, name: &str, role: Role) -> Identity {
    let key = SecretKey::from_seed([seed; 32]);
    let ticket = Ticket::issue(
        &auth(),
        TicketBody {
            user: Username::new(name).unwrap(),
            node: key.node_id(),
            role,
            issued_at: UnixTime(now() - 10),
            expires_at: UnixTime(now() + 3_600),
            serial: u64::from(seed),
        },
    )
    .unwrap();
    Identity::new(key, Some(ticket))
}

/// The messages exchanged, and raw payloads of the same sizes.
struct Payloads {
    request: ClientMessage,
    answer: SupernodeMessage,
    raw_request: Vec<u8>,
    raw_answer: Vec<u8>,
}

fn payloads() -> Payloads {
    let bob = identity(9, "bob", Role::User);
    let record = Record::sign(
        bob.key(),
        RecordBody {
            ticket: bob.ticket().unwrap().clone(),
            endpoints: BoundedVec::try_from(vec!["192.0.2.7:4433".parse().unwrap()]).unwrap(),
            reflexive: None,
            home: None,
            seq: 1,
            issued_at: UnixTime(now()),
            ttl_secs: 120,
        },
    )
    .unwrap();
    let request = ClientMessage::Lookup {
        user: Username::new("bob").unwrap(),
    };
    let answer = SupernodeMessage::LookupResult {
        user: Username::new("bob").unwrap(),
        records: BoundedVec::try_from(vec![record]).unwrap(),
    };
    let raw_request = vec![7u8; encode_frame(&request).unwrap().len()];
    let raw_answer = vec![7u8; encode_frame(&answer).unwrap().len()];
    Payloads {
        request,
        answer,
        raw_request,
        raw_answer,
    }
}

// ---------------------------------------------------------------- server side

enum ServerEndpoint {
    Raw(quinn::Endpoint),
    Ours(Listener),
}

/// Serves one connection's requests for the given variant.
async fn serve_connection(
    connection: quinn::Connection,
    variant: Variant,
    payloads: Arc<Payloads>,
) {
    match variant {
        Variant::Raw | Variant::RawMutual => {
            while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                if recv.read_to_end(MAX_FRAME_LEN).await.is_err() {
                    return;
                }
                let _ = send.write_all(&payloads.raw_answer).await;
                let _ = send.finish();
            }
        }
        Variant::Ours | Variant::OursRetry => {
            while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                let Ok(request) =
                    framed::read_request::<ClientMessage>(&mut recv, REQUEST_TIMEOUT).await
                else {
                    return;
                };
                assert!(matches!(request, ClientMessage::Lookup { .. }));
                let _ = framed::respond(&mut send, &payloads.answer).await;
            }
        }
        Variant::OursOneStream => {
            let Ok((mut send, mut recv)) = connection.accept_bi().await else {
                return;
            };
            while let Ok(Some(request)) =
                framed::read_frame::<ClientMessage>(&mut recv, MAX_FRAME_LEN).await
            {
                assert!(matches!(request, ClientMessage::Lookup { .. }));
                if framed::write_frame(&mut send, &payloads.answer)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Control of a server thread: measurement window start/stop, and its CPU report.
struct ServerHandle {
    addr: SocketAddr,
    start: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
    report: mpsc::Receiver<Duration>,
    thread: std::thread::JoinHandle<()>,
}

fn start_server(
    scenario: Scenario,
    payloads: Arc<Payloads>,
    raw: Option<quinn::ServerConfig>,
) -> ServerHandle {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (report_tx, report_rx) = mpsc::channel();
    let start = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(tokio::sync::Notify::new());
    let (start2, stop2) = (Arc::clone(&start), Arc::clone(&stop));
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let variant = match scenario {
                Scenario::Requests(v) | Scenario::Handshakes(v) => v,
            };
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let endpoint = if let Some(config) = raw {
                ServerEndpoint::Raw(quinn::Endpoint::server(config, any).unwrap())
            } else {
                let policy = PeerPolicy::any_ticket(auth().trust_anchor());
                let config = server_config(
                    &identity(1, "super1", Role::Supernode),
                    policy.clone(),
                    &[ALPN_DIRECTORY],
                    transport_config(TransportRole::ClientFacing),
                )
                .unwrap();
                let gate = if variant == Variant::OursRetry {
                    HandshakeGate {
                        retry_above: 0,
                        ..HandshakeGate::default()
                    }
                } else {
                    HandshakeGate::default()
                };
                ServerEndpoint::Ours(Listener::bind(any, config, policy, gate).unwrap())
            };
            let addr = match &endpoint {
                ServerEndpoint::Raw(e) => e.local_addr().unwrap(),
                ServerEndpoint::Ours(l) => l.local_addr().unwrap(),
            };
            ready_tx.send(addr).unwrap();

            let accept_loop = async {
                loop {
                    let connection = match &endpoint {
                        ServerEndpoint::Raw(e) => {
                            let Some(incoming) = e.accept().await else {
                                return;
                            };
                            let Ok(connecting) = incoming.accept() else {
                                continue;
                            };
                            tokio::task::spawn_local(async move { connecting.await.ok() })
                        }
                        ServerEndpoint::Ours(l) => {
                            let Some(handshake) = l.accept().await else {
                                return;
                            };
                            tokio::task::spawn_local(async move {
                                handshake
                                    .complete(HANDSHAKE_TIMEOUT)
                                    .await
                                    .ok()
                                    .map(|c| c.connection)
                            })
                        }
                    };
                    let payloads = Arc::clone(&payloads);
                    tokio::task::spawn_local(async move {
                        let Ok(Some(connection)) = connection.await else {
                            return;
                        };
                        match scenario {
                            Scenario::Requests(v) => {
                                serve_connection(connection, v, payloads).await
                            }
                            Scenario::Handshakes(_) => {
                                connection.closed().await;
                            }
                        }
                    });
                }
            };
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async {
                    let measure = async {
                        start2.notified().await;
                        let before = thread_cpu();
                        stop2.notified().await;
                        thread_cpu() - before
                    };
                    tokio::select! {
                        cpu = measure => report_tx.send(cpu).unwrap(),
                        () = accept_loop => {}
                    }
                })
                .await;
            match endpoint {
                ServerEndpoint::Raw(e) => e.close(0u32.into(), b"done"),
                ServerEndpoint::Ours(l) => l.endpoint().close(0u32.into(), b"done"),
            }
        });
    });
    let addr = ready_rx.recv().unwrap();
    ServerHandle {
        addr,
        start,
        stop,
        report: report_rx,
        thread,
    }
}

// ---------------------------------------------------------------- client side

enum ClientSide {
    Raw(quinn::Endpoint, quinn::ClientConfig),
    Ours(Dialer),
}

impl ClientSide {
    fn new(variant: Variant, raw: Option<quinn::ClientConfig>) -> Self {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        match variant {
            Variant::Raw | Variant::RawMutual => {
                Self::Raw(quinn::Endpoint::client(any).unwrap(), raw.unwrap())
            }
            Variant::Ours | Variant::OursOneStream | Variant::OursRetry => {
                let policy = PeerPolicy::supernode(auth().trust_anchor());
                let config = client_config(
                    &identity(2, "alice", Role::User),
                    policy.clone(),
                    &[ALPN_DIRECTORY],
                    transport_config(TransportRole::Dialer),
                    Resumption::Disabled,
                )
                .unwrap();
                Self::Ours(Dialer::bind(any, config, policy).unwrap())
            }
        }
    }

    async fn connect(&self, addr: SocketAddr) -> quinn::Connection {
        match self {
            Self::Raw(endpoint, config) => endpoint
                .connect_with(config.clone(), addr, "localhost")
                .unwrap()
                .await
                .unwrap(),
            Self::Ours(dialer) => {
                dialer
                    .connect(addr, HANDSHAKE_TIMEOUT)
                    .await
                    .unwrap()
                    .connection
            }
        }
    }
}

async fn one_request(
    connection: &quinn::Connection,
    stream: Option<&mut (quinn::SendStream, quinn::RecvStream)>,
    variant: Variant,
    payloads: &Payloads,
) {
    match variant {
        Variant::Raw | Variant::RawMutual => {
            let (mut send, mut recv) = connection.open_bi().await.unwrap();
            send.write_all(&payloads.raw_request).await.unwrap();
            send.finish().unwrap();
            let answer = recv.read_to_end(MAX_FRAME_LEN).await.unwrap();
            assert_eq!(answer.len(), payloads.raw_answer.len());
        }
        Variant::Ours | Variant::OursRetry => {
            let answer: SupernodeMessage =
                framed::request(connection, &payloads.request, REQUEST_TIMEOUT)
                    .await
                    .unwrap();
            assert!(matches!(answer, SupernodeMessage::LookupResult { .. }));
        }
        Variant::OursOneStream => {
            let (send, recv) = stream.unwrap();
            framed::write_frame(send, &payloads.request).await.unwrap();
            let answer: SupernodeMessage = framed::read_frame(recv, MAX_FRAME_LEN)
                .await
                .unwrap()
                .unwrap();
            assert!(matches!(answer, SupernodeMessage::LookupResult { .. }));
        }
    }
}

fn run_round(scenario: Scenario, duration: Duration, payloads: &Arc<Payloads>) -> RoundResult {
    let variant = match scenario {
        Scenario::Requests(v) | Scenario::Handshakes(v) => v,
    };
    let (raw_server, raw_client) = if variant.is_raw() {
        let (server, client) =
            switchboard_net::testing::raw_quinn_configs(variant == Variant::RawMutual);
        (Some(server), Some(client))
    } else {
        (None, None)
    };
    let server = start_server(scenario, Arc::clone(payloads), raw_server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ops, elapsed, latency_us) = runtime.block_on(async {
        let (variant, workers) = match scenario {
            Scenario::Requests(v) => (v, REQUEST_CONNECTIONS),
            Scenario::Handshakes(v) => (v, HANDSHAKE_DIALERS),
        };
        let client = Arc::new(ClientSide::new(variant, raw_client));
        let addr = server.addr;
        // Set up the request connections before the window opens.
        let mut connections = Vec::new();
        if let Scenario::Requests(_) = scenario {
            for _ in 0..workers {
                let connection = client.connect(addr).await;
                let stream = if variant == Variant::OursOneStream {
                    Some(connection.open_bi().await.unwrap())
                } else {
                    None
                };
                connections.push((connection, stream));
            }
        }
        let done = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        server.start.notify_one();
        let started = Instant::now();
        let local = tokio::task::LocalSet::new();
        let histograms = local
            .run_until(async {
                let mut tasks = Vec::new();
                for worker in 0..workers {
                    let (client, done, ops, payloads) = (
                        Arc::clone(&client),
                        Arc::clone(&done),
                        Arc::clone(&ops),
                        Arc::clone(payloads),
                    );
                    let mut own = connections.pop();
                    tasks.push(tokio::task::spawn_local(async move {
                        let mut histogram =
                            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                        while !done.load(Ordering::Relaxed) {
                            let t0 = Instant::now();
                            match scenario {
                                Scenario::Requests(v) => {
                                    let (connection, stream) = own.as_mut().unwrap();
                                    one_request(connection, stream.as_mut(), v, &payloads).await;
                                }
                                Scenario::Handshakes(_) => {
                                    let connection = client.connect(addr).await;
                                    connection.close(0u32.into(), b"bench");
                                }
                            }
                            histogram.record(t0.elapsed().as_micros() as u64).unwrap();
                            ops.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = worker;
                        histogram
                    }));
                }
                tokio::time::sleep(duration).await;
                done.store(true, Ordering::Relaxed);
                let mut merged = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                for task in tasks {
                    merged.add(task.await.unwrap()).unwrap();
                }
                merged
            })
            .await;
        let elapsed = started.elapsed();
        (ops.load(Ordering::Relaxed), elapsed, histograms)
    });
    server.stop.notify_one();
    let server_cpu = server.report.recv().unwrap();
    server.thread.join().unwrap();
    RoundResult {
        ops,
        elapsed,
        server_cpu,
        latency_us,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Summary {
    rate: f64,
    cpu_us: f64,
    p50_us: u64,
    p99_us: u64,
}

fn summarize(rounds: &[RoundResult]) -> Summary {
    let mut merged = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for round in rounds {
        merged.add(&round.latency_us).unwrap();
    }
    Summary {
        rate: median(rounds.iter().map(RoundResult::rate).collect()),
        cpu_us: median(rounds.iter().map(RoundResult::cpu_per_op_us).collect()),
        p50_us: merged.value_at_quantile(0.5),
        p99_us: merged.value_at_quantile(0.99),
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown cpu", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cores} cores")
}

/// Median per-operation time of `op`, over `batches` interleaved batches of `n`.
fn crypto_costs() {
    use switchboard_proto::keys::verify_raw;
    let auth = auth();
    let anchor = auth.trust_anchor();
    let alice = identity(2, "alice", Role::User);
    let ticket = alice.ticket().unwrap().clone();
    let (cert, _) = alice.certificate().unwrap();
    let signer = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[2; 32]).unwrap();
    let message = [7u8; 130]; // the size of a TLS 1.3 CertificateVerify input
    let signature = signer.sign(&message);
    let dalek = ed25519_dalek::SigningKey::from_bytes(&[2; 32]).verifying_key();
    let dalek_sig = ed25519_dalek::Signature::from_slice(signature.as_ref()).unwrap();
    let now = switchboard_net::now_unix();
    let node = alice.node_id();
    type Op<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let ops: Vec<Op<'_>> = vec![
        (
            "ticket verify (ours: dalek verify + weak-key check)",
            Box::new(|| {
                ticket.verify(&anchor, now).unwrap();
            }),
        ),
        (
            "Ed25519 verify, dalek `verify` (ours, TLS CertificateVerify)",
            Box::new(|| {
                verify_raw(&node, &message, signature.as_ref()).unwrap();
            }),
        ),
        (
            "Ed25519 verify, dalek `verify_strict`",
            Box::new(|| {
                dalek.verify_strict(&message, &dalek_sig).unwrap();
            }),
        ),
        (
            "Ed25519 verify, ring (rustls' default)",
            Box::new(|| {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, node.as_bytes())
                    .verify(&message, signature.as_ref())
                    .unwrap();
            }),
        ),
        (
            "certificate parse (x509-parser + ticket decode)",
            Box::new(|| {
                std::hint::black_box(switchboard_net::PeerCertificate::parse(&cert).unwrap());
            }),
        ),
    ];
    let (batches, n) = (7, 2_000);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    for _ in 0..batches {
        for (i, (_, op)) in ops.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..n {
                op();
            }
            samples[i].push(start.elapsed().as_secs_f64() * 1e6 / f64::from(n));
        }
    }
    println!("## verification costs ({batches} interleaved batches of {n}, median)\n");
    println!("| operation | µs per op |");
    println!("| --- | ---: |");
    for ((name, _), samples) in ops.iter().zip(samples) {
        println!("| {name} | {:.1} |", median(samples));
    }
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; positional numbers are ours.
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = numbers.first().copied().unwrap_or(2);
    let rounds = numbers.get(1).copied().unwrap_or(3) as usize;
    let duration = Duration::from_secs(seconds);
    let payloads = Arc::new(payloads());
    println!("# transport benchmark: {rounds} rounds x {seconds} s per variant, alternating");
    println!("machine: {}", machine());
    println!(
        "request {} B, answer {} B (one signed record)\n",
        payloads.raw_request.len(),
        payloads.raw_answer.len()
    );

    crypto_costs();

    let groups: [(&str, Vec<Scenario>); 2] = [
        (
            "requests (32 connections, 1 in flight each)",
            vec![
                Scenario::Requests(Variant::Raw),
                Scenario::Requests(Variant::Ours),
                Scenario::Requests(Variant::OursOneStream),
            ],
        ),
        (
            "full handshakes (8 dialers, connect + close)",
            vec![
                Scenario::Handshakes(Variant::Raw),
                Scenario::Handshakes(Variant::Ours),
                Scenario::Handshakes(Variant::OursRetry),
                Scenario::Handshakes(Variant::RawMutual),
            ],
        ),
    ];
    for (title, scenarios) in groups {
        let mut results: Vec<Vec<RoundResult>> = vec![Vec::new(); scenarios.len()];
        for round in 0..rounds {
            for (i, scenario) in scenarios.iter().enumerate() {
                let result = run_round(*scenario, duration, &payloads);
                eprintln!(
                    "  round {round} {scenario:?}: {:.0}/s, {:.1} µs server CPU/op",
                    result.rate(),
                    result.cpu_per_op_us()
                );
                results[i].push(result);
            }
        }
        println!("## {title}\n");
        println!("| variant | ops/s (median) | server CPU µs/op (median) | p50 µs | p99 µs | rate ratio vs raw | CPU ratio raw/ours |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let raw = summarize(&results[0]);
        for (scenario, rounds) in scenarios.iter().zip(&results) {
            let s = summarize(rounds);
            println!(
                "| {scenario:?} | {:.0} | {:.1} | {} | {} | {:.2} | {:.2} |",
                s.rate,
                s.cpu_us,
                s.p50_us,
                s.p99_us,
                s.rate / raw.rate,
                raw.cpu_us / s.cpu_us
            );
        }
        let position = |v: Variant| {
            scenarios.iter().position(
                |s| matches!(s, Scenario::Handshakes(x) | Scenario::Requests(x) if *x == v),
            )
        };
        if let (Some(ours), Some(mutual)) = (position(Variant::Ours), position(Variant::RawMutual))
        {
            let (ours, mutual) = (summarize(&results[ours]), summarize(&results[mutual]));
            println!(
                "\nOurs against standard mutual TLS (RawMutual): rate ratio {:.2}, CPU ratio {:.2}",
                ours.rate / mutual.rate,
                mutual.cpu_us / ours.cpu_us
            );
        }
        println!();
    }
}
