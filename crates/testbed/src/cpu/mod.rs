//! `testbed cpu`: the load generator's per-operation mode. What one supernode process spends,
//! in CPU time read from `/proc`, on each kind of work:
//!
//! - per registration on an open session and per lookup, with 1,000, 10,000 and 100,000
//!   records stored in its index (the figures other directory services publish, DESIGN.md
//!   section 10);
//! - per second and in memory for 10,000 connected idle clients (the keep-alive cost);
//! - per new registration in a reconnect storm (new connections offered faster than it serves
//!   them).
//!
//! The measured supernode is a real process with its default admission control. Its index is
//! filled as a live network fills it: devices register at home supernodes (real processes, up
//! to [`FILL_BATCH`] devices each), which publish their records to the measured supernode as an
//! owner; each home is then SIGKILLed (a dead home's records stay with their owners until their
//! leases end, 10 minutes at most), so that 100,000 stored records do not need 100,000 open
//! sessions on this machine. The fill's devices carry tickets that the testbed signs with its
//! own auth-server's key (it holds the key in its cache directory): 100,000 logins would spend
//! 40 minutes in argon2 and measure the auth-server, not the supernode.
//!
//! CPU per operation = (the process's CPU over the operations - its idle CPU over as long) /
//! operations. The load generator runs in this process, on the same 2 cores: compare figures
//! as ratios within one run.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rand::{Rng, SeedableRng};
use switchboard_client::profile::{Host, Profile, Settings};
use switchboard_client::session::{self, Context, Session};
use switchboard_proto::messages::{ClientMessage, SupernodeMessage};
use switchboard_proto::{
    AuthKey, BoundedVec, Record, RecordBody, Role, SecretKey, Ticket, TicketBody, UnixTime,
    Username,
};
use tokio::task::JoinSet;

use crate::network::{metric, Network, Scenario, Spec, Started};
use crate::procs::Proc;
use procfs::{cpu_of, idle_rate, machine, rss_of};
use storm::{raw_storm, storm};

mod procfs;
pub mod relay;
mod storm;

/// Options of `testbed cpu`.
#[derive(Debug, clap::Args)]
pub struct CpuArgs {
    /// Records stored in the measured supernode's index, in steps; each step is measured.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub records: Vec<u32>,
    /// Operations of each kind measured per step (CPU time is counted in 10 ms ticks: 50,000
    /// lookups of ~15 µs are 75 ticks).
    #[arg(long, default_value_t = 50_000)]
    pub ops: u32,
    /// Connected idle clients for the keep-alive figures (0: skip).
    #[arg(long, default_value_t = 10_000)]
    pub idle: u32,
    /// Seconds over which the idle clients' cost is measured.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
    /// Seconds of the reconnect storm (0: skip).
    #[arg(long, default_value_t = 10)]
    pub storm_secs: u64,
    /// New connections the storm keeps in flight.
    #[arg(long, default_value_t = 256)]
    pub storm_in_flight: u32,
    /// Where the auth-server's key and database are kept (as for `testbed load`).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Devices homed at one fill supernode: 10,000 sessions (about 370 MB of QUIC state on each
/// side) are opened, published and dropped at a time.
pub const FILL_BATCH: u32 = 10_000;
/// Attempts per fill device beyond the first.
const FILL_TRIES: u32 = 4;
/// Fill sessions being opened at once.
const FILL_IN_FLIGHT: usize = 64;
/// Sessions at the measured supernode that carry the measured operations (one in flight each).
const SESSIONS: u32 = 32;
/// Sockets the fill and the storm share, 16 devices' worth each (`network::client_endpoints`).
const SOCKETS: usize = 256;
/// The records' time to live: the longest a record may ask (`MAX_RECORD_TTL_SECS`), so that
/// the first records filled are still held when the last step is measured.
const TTL_SECS: u32 = switchboard_proto::limits::MAX_RECORD_TTL_SECS;

/// Runs `testbed cpu`; see the module doc.
pub async fn run(args: CpuArgs) -> ExitCode {
    let mut run = match Scenario::new("switchboard-cpu-", args.cache.clone()) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("testbed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        outcome = measure(&args, &run.cache, run.scratch.path(), &mut run.procs) => Some(outcome),
        () = crate::demo::interrupted() => None,
    };
    run.finish("cpu", outcome, |report| {
        if args.json {
            println!("{report}");
        } else {
            print_report(&report);
        }
    })
    .await
}

/// Devices the testbed makes up: node keys from their index, tickets signed with the
/// auth-server's key.
struct Devices {
    auth: SecretKey,
    trust: AuthKey,
    serial: u64,
}

impl Devices {
    /// Device `i` of the set named `set`: its user (`{set}{i}`), key and ticket.
    fn device(&self, set: &str, i: u32) -> anyhow::Result<(Username, SecretKey, Ticket)> {
        let user = Username::new(&format!("{set}{i:06}")).map_err(|e| anyhow!("{e}"))?;
        let mut seed = [0u8; 32];
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            u64::from(i)
                ^ set
                    .bytes()
                    .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b))
                    << 32,
        );
        rng.fill(&mut seed);
        let key = SecretKey::from_seed(seed);
        let now = switchboard_net::now_unix().0;
        let ticket = Ticket::issue(
            &self.auth,
            TicketBody {
                user: user.clone(),
                node: key.node_id(),
                role: Role::User,
                issued_at: UnixTime(now.saturating_sub(60)),
                expires_at: UnixTime(now + 7_200),
                serial: self.serial + u64::from(i),
            },
        )?;
        Ok((user, key, ticket))
    }

    /// Opens a session for device `i` of `set` at the supernodes of `profile`'s host cache
    /// and registers it.
    async fn open(
        &self,
        set: &str,
        i: u32,
        profile: &Profile,
        endpoint: quinn::Endpoint,
    ) -> anyhow::Result<(Username, Context, Session)> {
        let (user, key, ticket) = self.device(set, i)?;
        let context =
            Context::from_parts(profile.clone(), key, ticket, self.trust, Some(endpoint))?;
        let mut session = session::open(&context, None).await?;
        // A device that comes back (the storm's) registers a newer record each time.
        let seq = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros(),
        )
        .unwrap_or(u64::MAX);
        register(&context, &mut session, seq).await?;
        Ok((user, context, session))
    }
}

/// Registers (again, with sequence `seq`) on an open session.
async fn register(context: &Context, session: &mut Session, seq: u64) -> anyhow::Result<()> {
    let local = context.dialer.local_addr()?;
    let record = Record::sign(
        &context.key,
        RecordBody {
            ticket: context.ticket.clone(),
            endpoints: BoundedVec::truncating([local]),
            reflexive: None,
            home: None,
            seq,
            issued_at: switchboard_net::now_unix(),
            ttl_secs: TTL_SECS,
        },
    )?;
    match session
        .ask(&ClientMessage::Register {
            record: Box::new(record),
        })
        .await?
    {
        SupernodeMessage::Registered { .. } => Ok(()),
        other => bail!("register answered {other:?}"),
    }
}

/// A profile whose host cache lists only `host`, shared by many made-up devices.
fn profile_at(
    scratch: &Path,
    name: &str,
    network: &Network,
    host: &Started,
) -> anyhow::Result<Profile> {
    let profile = Profile::new(&scratch.join("profiles").join(name));
    profile.create()?;
    profile.save_settings(&Settings {
        user: name.to_owned(),
        auth: network.auth_addr.clone(),
        trust: network.pubkey.clone(),
    })?;
    profile.save_hosts(vec![Host {
        node: host.node.clone(),
        addr: host.addr,
        mode: "normal".to_owned(),
        load_permille: 0,
        last_success: None,
        last_failure: None,
    }])?;
    Ok(profile)
}

async fn measure(
    args: &CpuArgs,
    cache: &Path,
    scratch: &Path,
    procs: &mut Vec<Proc>,
) -> anyhow::Result<serde_json::Value> {
    let mut steps = args.records.clone();
    steps.sort_unstable();
    steps.dedup();
    let largest = steps.last().copied().unwrap_or(0);
    let lease = format!("max_lease_secs = {TTL_SECS}\n");
    let config = scratch.join("cpu.toml");
    std::fs::write(&config, &lease)?;
    let config_arg = vec!["--config".to_owned(), config.display().to_string()];
    let measured = Spec {
        name: "cpusn".to_owned(),
        role: "supernode",
        extra: config_arg.clone(),
        capacity: args.idle + args.storm_in_flight + SESSIONS + 1_000,
    };
    let homes: Vec<Spec> = (0..largest.div_ceil(FILL_BATCH) + steps.len() as u32)
        .map(|k| Spec {
            name: format!("cpuhome{k}"),
            role: "supernode",
            extra: config_arg.clone(),
            capacity: FILL_BATCH + 100,
        })
        .collect();
    let mut network = crate::network::start(
        cache,
        scratch,
        1,
        std::slice::from_ref(&measured),
        &homes,
        procs,
    )
    .await?;
    let sn = network
        .supernodes
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("the measured supernode did not start"))?;
    let pid = procs
        .get(sn.proc)
        .and_then(Proc::pid)
        .ok_or_else(|| anyhow!("no pid for the measured supernode"))?;
    let devices = Devices {
        auth: switchboard_net::keyfile::load(&cache.join("auth").join("auth.key"))?,
        trust: network.pubkey.parse()?,
        serial: switchboard_net::now_unix().0.saturating_mul(1_000_000),
    };
    let endpoints =
        crate::network::client_endpoints(SOCKETS * crate::network::CLIENTS_PER_ADDRESS)?;
    let at_sn = profile_at(scratch, "measured", &network, &sn)?;
    eprintln!(
        "measured supernode {} (pid {pid}), machine: {}",
        sn.addr,
        machine()
    );

    // The measuring sessions, homed at the measured supernode.
    let mut sessions = Vec::new();
    for j in 0..SESSIONS {
        let endpoint = pick(&endpoints, j as usize)?;
        sessions.push(devices.open("cpum", j, &at_sn, endpoint).await?);
    }
    let mut filled = 0u32;
    let mut homes = homes.iter();
    let mut results = Vec::new();
    for &target in &steps {
        while filled < target {
            let batch = (target - filled).min(FILL_BATCH);
            let spec = homes
                .next()
                .ok_or_else(|| anyhow!("out of fill supernodes"))?;
            fill(
                &mut network,
                scratch,
                spec,
                procs,
                &devices,
                &endpoints,
                filled..filled + batch,
                &sn,
            )
            .await?;
            filled += batch;
        }
        // Let the membership settle on the dead homes before measuring.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let stored = metric(sn.metrics, "switchboard_overlay_index_records")
            .await
            .unwrap_or(0);
        let base = idle_rate(pid, Duration::from_secs(3)).await?;
        let among = filled.max(1);
        let lookups = operate(&mut sessions, args.ops, pid, base, move |rng| {
            Op::Lookup(rng.gen_range(0..among))
        })
        .await?;
        let refreshes = operate(&mut sessions, args.ops, pid, base, |_| Op::Register).await?;
        eprintln!(
            "{stored} records stored: lookup {:.1} µs, registration on an open session {:.1} µs of supernode CPU ({} lookups missed)",
            lookups.cpu_us, refreshes.cpu_us, lookups.missed
        );
        results.push(serde_json::json!({
            "records_target": target,
            "records_stored": stored,
            "idle_cpu_share": base,
            "lookup": lookups.json(),
            "register_on_session": refreshes.json(),
        }));
    }

    let idle = if args.idle > 0 {
        Some(idle_clients(args, &devices, &at_sn, &endpoints, pid).await?)
    } else {
        None
    };
    let storm = if args.storm_secs > 0 {
        let ours = storm(args, &devices, &at_sn, &endpoints, pid, &sn).await?;
        let raw = raw_storm(args, &devices, &endpoints, scratch, procs).await?;
        let ratio = number(&raw, "/server_cpu_us_per_registration")
            / number(&ours, "/supernode_cpu_us_per_registration").max(1e-9);
        eprintln!("storm: server CPU per registration, raw quinn / supernode: {ratio:.2}");
        Some(
            serde_json::json!({ "supernode": ours, "raw_quinn": raw, "cpu_ratio_raw_over_ours": ratio }),
        )
    } else {
        None
    };
    for (_, _, session) in sessions {
        session.goodbye().await;
    }
    Ok(serde_json::json!({
        "machine": machine(),
        "ops_per_step": args.ops,
        "steps": results,
        "idle": idle,
        "storm": storm,
    }))
}

/// One of the shared sockets.
fn pick(endpoints: &[quinn::Endpoint], i: usize) -> anyhow::Result<quinn::Endpoint> {
    endpoints
        .get(i % endpoints.len().max(1))
        .cloned()
        .ok_or_else(|| anyhow!("no sockets"))
}

/// Starts the fill supernode of `spec`, registers devices `range` at it (it publishes them to
/// the measured supernode), waits until the measured one holds them, then SIGKILLs the home
/// and drops the sessions.
#[allow(clippy::too_many_arguments)]
async fn fill(
    network: &mut Network,
    scratch: &Path,
    spec: &Spec,
    procs: &mut Vec<Proc>,
    devices: &Devices,
    endpoints: &[quinn::Endpoint],
    range: std::ops::Range<u32>,
    measured: &Started,
) -> anyhow::Result<()> {
    let before = metric(measured.metrics, "switchboard_overlay_index_records")
        .await
        .unwrap_or(0);
    let home = network.start_supernode(scratch, spec, procs).await?;
    // The home must be a member before its clients register, or it publishes to itself only.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let profile = profile_at(scratch, &spec.name, network, &home)?;
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(u64::from(range.end - range.start));
    bar.set_style(
        indicatif::ProgressStyle::with_template("filling {bar:40} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut open = Vec::new();
    let mut opening = JoinSet::new();
    let failures = Arc::new(AtomicU64::new(0));
    let devices = Arc::new(Devices {
        auth: devices.auth.clone(),
        trust: devices.trust,
        serial: devices.serial,
    });
    for i in range.clone() {
        while opening.len() >= FILL_IN_FLIGHT {
            if let Some(Ok(done)) = opening.join_next().await {
                open.push(done);
                bar.inc(1);
            }
        }
        let endpoint = pick(endpoints, i as usize / crate::network::CLIENTS_PER_ADDRESS)?;
        let (devices, profile) = (Arc::clone(&devices), profile.clone());
        opening.spawn(async move {
            // A home past its handshake rate refuses some (as it should): those come back.
            let mut tries = 0;
            loop {
                match devices.open("cpu", i, &profile, endpoint.clone()).await {
                    Ok(done) => return Ok(done),
                    Err(e) if tries >= FILL_TRIES => return Err(e),
                    Err(_) => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
    }
    while let Some(done) = opening.join_next().await {
        if let Ok(done) = done {
            open.push(done);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let sessions: Vec<_> = open
        .into_iter()
        .filter_map(|r| r.map_err(|_| failures.fetch_add(1, Ordering::Relaxed)).ok())
        .collect();
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} fill registrations failed at {}", spec.name);
    }
    // Every record published reaches the measured supernode; wait for them, or until the count
    // has not moved for 3 s (a device whose registration was retried may count once where it
    // was tried twice): the step reports the count it measured at.
    let want = before + u64::from(range.end - range.start);
    let (mut last, mut still_since) = (0, Instant::now());
    loop {
        let held = metric(measured.metrics, "switchboard_overlay_index_records")
            .await
            .unwrap_or(0);
        if held >= want {
            break;
        }
        if held != last {
            (last, still_since) = (held, Instant::now());
        } else if still_since.elapsed() > Duration::from_secs(3) {
            eprintln!("the measured supernode holds {held} records of {want} published");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let dropped = metric(home.metrics, "switchboard_overlay_send_dropped_total")
        .await
        .unwrap_or(0);
    if let Some(proc) = procs.get_mut(home.proc) {
        proc.kill9();
    }
    drop(sessions);
    eprintln!(
        "{} devices registered at {} and published in {:.1} s ({dropped} overlay sends dropped); {} SIGKILLed",
        range.end - range.start,
        spec.name,
        started.elapsed().as_secs_f64(),
        spec.name
    );
    Ok(())
}

/// One measured operation.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Look up fill device `i`.
    Lookup(u32),
    /// Register again on the open session.
    Register,
}

/// What a batch of operations cost.
#[derive(Debug)]
struct Cost {
    ops: u64,
    missed: u64,
    seconds: f64,
    cpu_us: f64,
}

impl Cost {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ops": self.ops,
            "missed": self.missed,
            "seconds": self.seconds,
            "per_sec": self.ops as f64 / self.seconds.max(1e-9),
            "supernode_cpu_us_per_op": self.cpu_us,
        })
    }
}

/// Runs `ops` operations chosen by `choose`, one in flight per session, and charges the
/// supernode's CPU over them, less its idle rate `base`, to them.
async fn operate(
    sessions: &mut Vec<(Username, Context, Session)>,
    ops: u32,
    pid: u32,
    base: f64,
    choose: impl Fn(&mut rand::rngs::StdRng) -> Op + Copy + Send + 'static,
) -> anyhow::Result<Cost> {
    let per_session = ops / SESSIONS.max(1);
    let missed = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_of(pid)?;
    let started = Instant::now();
    let mut running = JoinSet::new();
    for (j, (user, context, mut session)) in sessions.drain(..).enumerate() {
        let missed = Arc::clone(&missed);
        running.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(j as u64);
            // Newer than the record the device opened with (a time in microseconds).
            let mut seq = switchboard_net::now_unix().0.saturating_add(1).saturating_mul(1_000_000);
            for _ in 0..per_session {
                let ok = match choose(&mut rng) {
                    Op::Lookup(i) => {
                        let whom = Username::new(&format!("cpu{i:06}")).ok();
                        match whom {
                            Some(whom) => matches!(
                                session.ask(&ClientMessage::Lookup { user: whom }).await,
                                Ok(SupernodeMessage::LookupResult { records, .. }) if !records.is_empty()
                            ),
                            None => false,
                        }
                    }
                    Op::Register => {
                        seq += 1;
                        register(&context, &mut session, seq).await.is_ok()
                    }
                };
                if !ok {
                    missed.fetch_add(1, Ordering::Relaxed);
                }
            }
            (user, context, session)
        });
    }
    while let Some(done) = running.join_next().await {
        sessions.push(done.context("a measuring session panicked")?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = (cpu_of(pid)? - cpu_before).as_secs_f64() - base * seconds;
    let done = u64::from(per_session) * u64::from(SESSIONS);
    Ok(Cost {
        ops: done,
        missed: missed.load(Ordering::Relaxed),
        seconds,
        cpu_us: cpu.max(0.0) * 1e6 / done.max(1) as f64,
    })
}

/// Opens `args.idle` sessions at the measured supernode and measures what they cost idle.
async fn idle_clients(
    args: &CpuArgs,
    devices: &Devices,
    profile: &Profile,
    endpoints: &[quinn::Endpoint],
    pid: u32,
) -> anyhow::Result<serde_json::Value> {
    let base = idle_rate(pid, Duration::from_secs(3)).await?;
    let rss_before = rss_of(pid)?;
    let devices = Arc::new(Devices {
        auth: devices.auth.clone(),
        trust: devices.trust,
        serial: devices.serial + 10_000_000,
    });
    let started = Instant::now();
    let mut opening = JoinSet::new();
    let mut open = Vec::new();
    for i in 0..args.idle {
        while opening.len() >= FILL_IN_FLIGHT {
            if let Some(Ok(Ok(done))) = opening.join_next().await {
                open.push(done);
            }
        }
        let endpoint = pick(endpoints, i as usize / crate::network::CLIENTS_PER_ADDRESS)?;
        let (devices, profile) = (Arc::clone(&devices), profile.clone());
        opening.spawn(async move { devices.open("cpui", i, &profile, endpoint).await });
    }
    while let Some(done) = opening.join_next().await {
        if let Ok(Ok(done)) = done {
            open.push(done);
        }
    }
    let connected = open.len();
    eprintln!(
        "{connected} idle clients connected and registered in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_of(pid)?;
    let rate = idle_rate(pid, Duration::from_secs(args.idle_secs)).await?;
    let per_client_us = (rate - base).max(0.0) * 1e6 / connected.max(1) as f64;
    let per_client_kib =
        rss_after.saturating_sub(rss_before) as f64 / 1024.0 / connected.max(1) as f64;
    eprintln!(
        "idle: {connected} clients cost the supernode {:.1}% of a core ({per_client_us:.2} µs per client per second) and {per_client_kib:.1} KiB each",
        rate * 100.0
    );
    for (_, _, session) in open {
        session.connection.connection.close(0u32.into(), b"done");
    }
    Ok(serde_json::json!({
        "clients": connected,
        "cpu_share_before": base,
        "cpu_share_with_clients": rate,
        "cpu_us_per_client_per_sec": per_client_us,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "kib_per_client": per_client_kib,
    }))
}

/// The number at `pointer` in `value` (0 when absent).
fn number(value: &serde_json::Value, pointer: &str) -> f64 {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

fn print_report(report: &serde_json::Value) {
    println!("supernode CPU per operation ({})", report["machine"]);
    println!(
        "  {:>9} {:>10} {:>12} {:>10} {:>14}",
        "records", "lookups/s", "lookup µs", "regs/s", "register µs"
    );
    for step in report["steps"].as_array().into_iter().flatten() {
        println!(
            "  {:>9} {:>10.0} {:>12.1} {:>10.0} {:>14.1}",
            number(step, "/records_stored"),
            number(step, "/lookup/per_sec"),
            number(step, "/lookup/supernode_cpu_us_per_op"),
            number(step, "/register_on_session/per_sec"),
            number(step, "/register_on_session/supernode_cpu_us_per_op"),
        );
    }
    let idle = &report["idle"];
    if !idle.is_null() {
        println!(
            "  {} idle clients: {:.2} µs of CPU per client per second, {:.1} KiB each",
            idle["clients"],
            idle["cpu_us_per_client_per_sec"].as_f64().unwrap_or(0.0),
            idle["kib_per_client"].as_f64().unwrap_or(0.0)
        );
    }
    let storm = &report["storm"];
    if !storm.is_null() {
        let (ours, raw) = (&storm["supernode"], &storm["raw_quinn"]);
        println!(
            "  reconnect storm ({} in flight): supernode {:.0} registrations/s, {:.0} µs of CPU each, {} handshakes refused; raw quinn {:.0}/s, {:.0} µs each; CPU ratio raw/ours {:.2}",
            ours["in_flight"],
            ours["per_sec"].as_f64().unwrap_or(0.0),
            ours["supernode_cpu_us_per_registration"].as_f64().unwrap_or(0.0),
            ours["handshakes_refused"],
            raw["per_sec"].as_f64().unwrap_or(0.0),
            raw["server_cpu_us_per_registration"].as_f64().unwrap_or(0.0),
            storm["cpu_ratio_raw_over_ours"].as_f64().unwrap_or(0.0),
        );
    }
}
