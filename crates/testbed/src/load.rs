//! `testbed load`: thousands of logical clients in this one process, each with its own node
//! key, ticket, QUIC connection and registration, against a network of real processes; at a
//! chosen rate and mix of refreshes, lookups and direct messages, with a progress bar while it runs and
//! throughput and latency percentiles at the end (`--json` for a machine).
//!
//! Accounts are created in bulk (`auth-server user add-many`: one argon2 run for all) in a
//! cache directory that also keeps the auth-server's key and database and every logical
//! client's profile, so that a second run reuses the tickets instead of spending minutes in
//! password checks. The logical clients share sockets, 16 to a socket and to a loopback
//! address of their own (`network::client_endpoints`): a QUIC connection each, without a file
//! descriptor each, and many source addresses, as on the Internet.
//!
//! The mix holds lookups, refreshes and direct messages: a message is the real client's
//! `send` (a lookup, the records verified, an end-to-end QUIC connection with tickets checked
//! both ways) to one of the first [`RECEIVERS`] logical clients, which listen on sockets of
//! their own. The per-operation CPU figures are `testbed cpu` ([`crate::cpu`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use hdrhistogram::Histogram;
use rand::Rng;
use switchboard_client::profile::{Host, Profile, Settings};
use switchboard_client::session::{self, Context, Session};
use switchboard_proto::messages::{ClientMessage, Password, SupernodeMessage, Text};
use switchboard_proto::wire_error::WireError;
use switchboard_proto::{BoundedVec, Record, RecordBody, Username};
use tokio::sync::mpsc;

use crate::network::{Scenario, Spec, PASSWORD, PREFIX};
use crate::procs::Proc;

/// Options of `testbed load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Logical clients.
    #[arg(long, default_value_t = 1_000)]
    pub clients: u32,
    /// Supernodes (real processes).
    #[arg(long, default_value_t = 2)]
    pub supernodes: u32,
    /// Seconds of load after every client is registered.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Operations per second, over all clients.
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// Share of the operations that are lookups (per mille).
    #[arg(long, default_value_t = 750)]
    pub lookup_permille: u32,
    /// Share of the operations that are direct messages (per mille): a lookup on the sender's
    /// session, then the real client's end-to-end delivery (its own QUIC connection, tickets
    /// checked both ways) to one of the [`RECEIVERS`] clients that listen. The rest of the
    /// operations are refreshes.
    #[arg(long, default_value_t = 50)]
    pub message_permille: u32,
    /// Where accounts, the auth-server's key and database and the profiles are kept between
    /// runs (default: `switchboard-testbed-cache` in the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Logins in flight at once on a first run (the auth-server checks as many as it has cores).
const LOGINS_IN_FLIGHT: usize = 8;
/// Sessions being opened at once (handshakes and registrations).
const OPENS_IN_FLIGHT: usize = 64;
/// A cached ticket is reused while it has at least this long to live.
const TICKET_MARGIN_SECS: u64 = 600;
/// Operations queued per logical client at most; beyond, the scheduler counts them skipped.
const OPS_QUEUED: usize = 4;

/// How long the load waits, once it stops scheduling, for the operations already queued to
/// end (each is bounded by its own dial and answer timeouts, a few seconds). The receivers keep
/// listening until then: a receiver that stopped as soon as its own queue was empty aborted the
/// handshakes of messages still on their way to it (a flaky failure of the testbed's test).
const LAST_OPERATIONS: Duration = Duration::from_secs(15);

/// A logical client while the load runs.
struct Running {
    /// Its operations, in order.
    queue: mpsc::Sender<(Op, Option<Username>)>,
    /// What serves them; it ends when `queue` is dropped and emptied.
    worker: tokio::task::JoinHandle<()>,
    /// A receiver's direct listener, served until every worker has ended.
    inbox: Option<tokio::task::JoinHandle<()>>,
}

/// Logical clients that also accept direct messages, each on a socket and a loopback address
/// of its own (127.2.x.y) as a real client listens: one listener per device, so not all 5,000
/// (a file descriptor each); the messages go to these.
pub const RECEIVERS: usize = 256;

#[derive(Debug, Clone, Copy)]
enum Op {
    Lookup,
    Message,
    Refresh,
}

/// Outcomes, per kind of operation.
#[derive(Debug)]
struct Tally {
    latency: BTreeMap<&'static str, Histogram<u64>>,
    busy: u64,
    errors: u64,
    /// Failures by kind of operation, so that a report says which operation failed.
    errors_by_kind: BTreeMap<&'static str, u64>,
    /// The first few failures' reasons, printed on stderr with the report.
    first_errors: Vec<String>,
    skipped: u64,
}

/// How many failures' reasons a run keeps for its report: enough to see a pattern, bounded so
/// a run where everything fails does not grow without end.
const ERRORS_KEPT: usize = 5;

impl Tally {
    fn new() -> anyhow::Result<Self> {
        let mut latency = BTreeMap::new();
        for kind in ["lookup", "message", "refresh", "register"] {
            latency.insert(kind, Histogram::new_with_bounds(1, 60_000_000, 3)?);
        }
        Ok(Self {
            latency,
            busy: 0,
            errors: 0,
            errors_by_kind: BTreeMap::new(),
            first_errors: Vec::new(),
            skipped: 0,
        })
    }

    fn record(&mut self, kind: &'static str, took: Duration) {
        if let Some(h) = self.latency.get_mut(kind) {
            let _ = h.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        }
    }

    fn failed(&mut self, kind: &'static str, why: String) {
        self.errors += 1;
        *self.errors_by_kind.entry(kind).or_default() += 1;
        if self.first_errors.len() < ERRORS_KEPT {
            self.first_errors.push(format!("{kind}: {why}"));
        }
    }
}

/// Runs `testbed load`; see the module doc.
pub async fn run(args: LoadArgs) -> ExitCode {
    let mut run = match Scenario::new("switchboard-load-", args.cache.clone()) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("testbed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        outcome = load(&args, &run.cache, run.scratch.path(), &mut run.procs) => Some(outcome),
        () = crate::demo::interrupted() => None,
    };
    run.finish("load", outcome, |report| {
        if args.json {
            println!("{report}");
        } else {
            print_report(&report);
        }
    })
    .await
}

async fn load(
    args: &LoadArgs,
    cache: &Path,
    scratch: &Path,
    procs: &mut Vec<Proc>,
) -> anyhow::Result<serde_json::Value> {
    let capacity = (args.clients / args.supernodes.max(1))
        .saturating_mul(2)
        .max(100);
    let specs: Vec<Spec> = (0..args.supernodes)
        .map(|i| Spec {
            name: format!("loadsn{i}"),
            role: "supernode",
            extra: Vec::new(),
            capacity,
        })
        .collect();
    let network = crate::network::start(cache, scratch, args.clients, &specs, &[], procs).await?;
    let (auth_addr, pubkey, hosts) = (network.auth_addr, network.pubkey, network.hosts);
    eprintln!(
        "network: auth-server {auth_addr}, {} supernodes of capacity {capacity}",
        hosts.len()
    );

    // Profiles: a cached ticket is reused; otherwise one login each.
    let settings = Settings {
        user: String::new(),
        auth: auth_addr.clone(),
        trust: pubkey.clone(),
    };
    let started = Instant::now();
    let profiles = prepare_profiles(args.clients, cache, &settings, &hosts).await?;
    eprintln!(
        "{} profiles ready in {:.1} s ({} logged in, the rest reused cached tickets)",
        profiles.0.len(),
        started.elapsed().as_secs_f64(),
        profiles.1
    );

    // Sessions: one QUIC connection each, 16 clients to a socket and a loopback address.
    let endpoints = crate::network::client_endpoints(profiles.0.len())?;
    let tally = Arc::new(Mutex::new(Tally::new()?));
    let bar = indicatif::ProgressBar::new(u64::from(args.clients));
    bar.set_style(
        indicatif::ProgressStyle::with_template("registering {bar:40} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let users: Vec<Username> = profiles.0.iter().map(|(u, _)| u.clone()).collect();
    let receivers: Vec<Username> = users.iter().take(RECEIVERS).cloned().collect();
    let delivered = Arc::new(AtomicU64::new(0));
    let mut queues = Vec::new();
    let mut opening = tokio::task::JoinSet::new();
    let registered = Instant::now();
    for (i, (user, profile)) in profiles.0.into_iter().enumerate() {
        while opening.len() >= OPENS_IN_FLIGHT {
            if let Some(Ok(Some(queue))) = opening.join_next().await {
                queues.push(queue);
            }
            bar.set_position(queues.len() as u64);
        }
        let endpoint = endpoints
            .get(i / crate::network::CLIENTS_PER_ADDRESS)
            .cloned()
            .ok_or_else(|| anyhow!("no socket for client {i}"))?;
        let listener = if i < RECEIVERS {
            Some(receiver(&profile, i)?)
        } else {
            None
        };
        let local = match &listener {
            Some(listener) => listener.local_addr()?,
            None => endpoint.local_addr()?,
        };
        let (tally, delivered) = (Arc::clone(&tally), Arc::clone(&delivered));
        opening.spawn(async move {
            open_client(user, profile, endpoint, local, listener, tally, delivered).await
        });
    }
    while let Some(done) = opening.join_next().await {
        if let Ok(Some(queue)) = done {
            queues.push(queue);
        }
        bar.set_position(queues.len() as u64);
    }
    bar.finish_and_clear();
    let connected = queues.len();
    let setup = registered.elapsed();
    eprintln!(
        "{connected} clients registered in {:.1} s",
        setup.as_secs_f64()
    );
    if connected == 0 {
        bail!("no client could register");
    }

    // The load: `rate` operations per second for `duration` seconds.
    let bar = indicatif::ProgressBar::new(args.duration);
    bar.set_style(
        indicatif::ProgressStyle::with_template("load {bar:40} {pos}/{len} s {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let load_started = Instant::now();
    let end = load_started + Duration::from_secs(args.duration);
    let mut sent = 0u64;
    let mut rng = rand::thread_rng();
    while Instant::now() < end {
        ticker.tick().await;
        let Some(Running { queue, .. }) = queues.get(rng.gen_range(0..queues.len())) else {
            continue;
        };
        let draw = rng.gen_range(0..1000);
        let op = if draw < args.lookup_permille {
            let whom = users.get(rng.gen_range(0..users.len())).cloned();
            whom.map(|u| (Op::Lookup, Some(u)))
        } else if draw < args.lookup_permille.saturating_add(args.message_permille) {
            let whom = receivers
                .get(rng.gen_range(0..receivers.len().max(1)))
                .cloned();
            whom.map(|u| (Op::Message, Some(u)))
        } else {
            Some((Op::Refresh, None))
        };
        let Some(op) = op else { continue };
        if queue.try_send(op).is_err() {
            if let Ok(mut t) = tally.lock() {
                t.skipped += 1;
            }
        } else {
            sent += 1;
        }
        let secs = load_started.elapsed().as_secs();
        if secs != bar.position() {
            bar.set_position(secs);
            bar.set_message(format!("{sent} ops"));
        }
    }
    bar.finish_and_clear();
    let took = load_started.elapsed();
    // Let the last operations finish, every receiver still listening.
    let deadline = tokio::time::Instant::now() + LAST_OPERATIONS;
    let mut inboxes = Vec::new();
    let mut workers = Vec::new();
    for running in queues {
        drop(running.queue);
        workers.push(running.worker);
        inboxes.extend(running.inbox);
    }
    for worker in workers {
        if tokio::time::timeout_at(deadline, worker).await.is_err() {
            break;
        }
    }
    for inbox in inboxes {
        inbox.abort();
    }
    let t = tally.lock().map_err(|_| anyhow!("tally poisoned"))?;
    let mut kinds = serde_json::Map::new();
    for (kind, h) in &t.latency {
        kinds.insert(
            (*kind).to_owned(),
            serde_json::json!({
                "count": h.len(),
                "per_sec": if *kind == "register" { h.len() as f64 / setup.as_secs_f64() } else { h.len() as f64 / took.as_secs_f64() },
                "p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0,
                "p90_ms": h.value_at_quantile(0.9) as f64 / 1000.0,
                "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
                "max_ms": h.max() as f64 / 1000.0,
            }),
        );
    }
    Ok(serde_json::json!({
        "clients": args.clients,
        "connected": connected,
        "supernodes": args.supernodes,
        "rate": args.rate,
        "seconds": took.as_secs_f64(),
        "operations": kinds,
        "busy": t.busy,
        "errors": t.errors,
        "errors_by_kind": t.errors_by_kind,
        "first_errors": t.first_errors,
        "skipped": t.skipped,
        "messages_received": delivered.load(Ordering::Relaxed),
    }))
}

/// Every logical client's profile, with this run's auth-server and supernodes; logs in those
/// without a ticket that lives long enough. Returns the profiles and how many logged in.
pub(crate) async fn prepare_profiles(
    clients: u32,
    cache: &Path,
    settings: &Settings,
    hosts: &[Host],
) -> anyhow::Result<(Vec<(Username, Profile)>, usize)> {
    let trust = settings.trust.parse()?;
    let mut ready = Vec::new();
    let mut logins = tokio::task::JoinSet::new();
    let mut logged_in = 0;
    for i in 0..clients {
        let name = format!("{PREFIX}{i:05}");
        let user = Username::new(&name).map_err(|e| anyhow!("{name}: {e}"))?;
        let profile = Profile::new(&cache.join("profiles").join(&name));
        profile.create()?;
        let fresh = profile
            .ticket()
            .is_ok_and(|t| t.remaining_secs(switchboard_net::now_unix()) > TICKET_MARGIN_SECS)
            && profile.trust().is_ok_and(|k| k == trust);
        profile.save_settings(&Settings {
            user: name.clone(),
            ..settings.clone()
        })?;
        profile.save_hosts(hosts.to_vec())?;
        if fresh {
            ready.push((user, profile));
            continue;
        }
        while logins.len() >= LOGINS_IN_FLIGHT {
            if let Some(done) = logins.join_next().await {
                ready.push(done??);
                logged_in += 1;
            }
        }
        let auth = settings.auth.clone();
        logins.spawn(async move {
            let password = Password::new(PASSWORD).ok_or_else(|| anyhow!("password"))?;
            let mut tries = 0;
            loop {
                use switchboard_account::login::{login, LoginError};
                match login(
                    &profile,
                    &auth,
                    trust,
                    user.clone(),
                    password.clone(),
                    false,
                )
                .await
                {
                    Ok(_) => break,
                    Err(LoginError::Throttled(secs) | LoginError::Busy(secs)) if tries < 10 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                    }
                    Err(e) => return Err(anyhow!(e).context(format!("login of {user}"))),
                }
            }
            // The login merged the bootstrap list; keep exactly this run's supernodes.
            Ok::<_, anyhow::Error>((user, profile))
        });
    }
    while let Some(done) = logins.join_next().await {
        ready.push(done??);
        logged_in += 1;
    }
    Ok((ready, logged_in))
}

/// The direct listener of receiver `i`, on a loopback address of its own (127.2.x.y).
fn receiver(profile: &Profile, i: usize) -> anyhow::Result<Arc<switchboard_net::Listener>> {
    let third = u8::try_from(i / 250).context("too many receivers for 127.2.0.0/16")?;
    let fourth = u8::try_from(i % 250 + 1).unwrap_or(u8::MAX);
    let addr = SocketAddr::from((std::net::Ipv4Addr::new(127, 2, third, fourth), 0));
    let listener = switchboard_client::online::direct_listener(
        profile.node_key()?,
        profile.ticket()?,
        profile.trust()?,
        addr,
    )?;
    Ok(Arc::new(listener))
}

/// Opens one logical client's session and registers it (with `local` as its endpoint; a
/// receiver's is its `listener`, served until the load ends); then serves its operations until
/// the scheduler drops its queue (its [`Running`]).
async fn open_client(
    user: Username,
    profile: Profile,
    endpoint: quinn::Endpoint,
    local: SocketAddr,
    listener: Option<Arc<switchboard_net::Listener>>,
    tally: Arc<Mutex<Tally>>,
    delivered: Arc<AtomicU64>,
) -> Option<Running> {
    let context = Context::load(profile, Some(endpoint)).ok()?;
    let inbox = listener.map(|listener| {
        tokio::spawn(switchboard_client::online::serve_direct(
            listener,
            move |_from: String, _text: Text| {
                delivered.fetch_add(1, Ordering::Relaxed);
            },
        ))
    });
    let started = Instant::now();
    let mut session = session::open(&context, None).await.ok()?;
    let mut seq = 1;
    if register(&context, &mut session, local, seq).await != Outcome::Done {
        return None;
    }
    if let Ok(mut t) = tally.lock() {
        t.record("register", started.elapsed());
    }
    let (tx, mut rx) = mpsc::channel(OPS_QUEUED);
    let worker = tokio::spawn(async move {
        while let Some((op, whom)) = rx.recv().await {
            let started = Instant::now();
            let (kind, outcome) = match (op, whom) {
                (Op::Lookup, Some(whom)) => (
                    "lookup",
                    outcome_of(session.ask(&ClientMessage::Lookup { user: whom }).await),
                ),
                (Op::Message, Some(whom)) => (
                    "message",
                    message(&context, &mut session, &user, &whom).await,
                ),
                _ => {
                    seq += 1;
                    (
                        "refresh",
                        register(&context, &mut session, local, seq).await,
                    )
                }
            };
            let Ok(mut t) = tally.lock() else { return };
            match outcome {
                Outcome::Done => t.record(kind, started.elapsed()),
                Outcome::Busy => t.busy += 1,
                Outcome::Failed(why) => t.failed(kind, why),
            }
        }
        session.goodbye().await;
    });
    Some(Running {
        queue: tx,
        worker,
        inbox,
    })
}

/// A direct message from `from` to `to`, as `client send` makes it: a lookup (on the open
/// session here), the records verified, then an end-to-end QUIC connection to `to`'s device.
async fn message(
    context: &Context,
    session: &mut Session,
    from: &Username,
    to: &Username,
) -> Outcome {
    use switchboard_client::query::{deliver_to, lookup_on};
    let devices = match lookup_on(context, session, to).await {
        Ok(devices) => devices,
        Err(session::SessionError::Refused(WireError::Busy { .. })) => return Outcome::Busy,
        Err(e) => return Outcome::Failed(format!("lookup of {to}: {e}")),
    };
    let Ok(text) = Text::try_from(format!("load test message from {from}").as_str()) else {
        return Outcome::Failed("the message text".to_owned());
    };
    match deliver_to(context, to, &devices, text).await {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Failed(format!("delivery to {to}: {e}")),
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered.
    Done,
    /// `Busy`.
    Busy,
    /// Refused otherwise, or the session broke; why.
    Failed(String),
}

fn outcome_of(answer: Result<SupernodeMessage, session::SessionError>) -> Outcome {
    match answer {
        Ok(SupernodeMessage::Error(WireError::Busy { .. })) => Outcome::Busy,
        Ok(SupernodeMessage::Error(e)) => Outcome::Failed(format!("refused: {e}")),
        Err(e) => Outcome::Failed(e.to_string()),
        Ok(_) => Outcome::Done,
    }
}

/// Registers (or refreshes, with a newer record) this logical client.
pub(crate) async fn register(
    context: &Context,
    session: &mut Session,
    local: SocketAddr,
    seq: u64,
) -> Outcome {
    let Ok(record) = Record::sign(
        &context.key,
        RecordBody {
            ticket: context.ticket.clone(),
            endpoints: BoundedVec::truncating([local]),
            reflexive: None,
            home: None,
            seq,
            issued_at: switchboard_net::now_unix(),
            ttl_secs: 120,
        },
    ) else {
        return Outcome::Failed("signing the record".to_owned());
    };
    let answer = session
        .ask(&ClientMessage::Register {
            record: Box::new(record),
        })
        .await;
    match answer {
        Ok(SupernodeMessage::Registered { .. }) => Outcome::Done,
        other => match outcome_of(other) {
            Outcome::Done => Outcome::Failed("an answer other than Registered".to_owned()),
            failed => failed,
        },
    }
}

fn print_report(report: &serde_json::Value) {
    println!(
        "{} of {} clients connected and registered on {} supernodes; {:.0} s at {} ops/s",
        report["connected"],
        report["clients"],
        report["supernodes"],
        report["seconds"].as_f64().unwrap_or(0.0),
        report["rate"]
    );
    if let Some(kinds) = report["operations"].as_object() {
        println!(
            "  {:<9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "operation", "count", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for (kind, k) in kinds {
            println!(
                "  {:<9} {:>8} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                kind,
                k["count"],
                k["per_sec"].as_f64().unwrap_or(0.0),
                k["p50_ms"].as_f64().unwrap_or(0.0),
                k["p90_ms"].as_f64().unwrap_or(0.0),
                k["p99_ms"].as_f64().unwrap_or(0.0),
                k["max_ms"].as_f64().unwrap_or(0.0),
            );
        }
    }
    println!(
        "  busy {}  errors {}  skipped (a client's queue full) {}  messages received {}",
        report["busy"], report["errors"], report["skipped"], report["messages_received"]
    );
    for why in report["first_errors"].as_array().into_iter().flatten() {
        println!("  failed: {}", why.as_str().unwrap_or_default());
    }
}
