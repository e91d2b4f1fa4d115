//! `testbed outage`: the December 2010 scenario on real processes (DESIGN.md sections 1 and 6).
//!
//! An auth-server, `--supernodes` supernodes and a standby mega run as real processes; the
//! clients are logical clients in this process (as in `testbed load`), each with the real
//! client's session code and failover (host cache order, capped full-jitter backoff, `Busy`
//! alternatives). After `--steady` seconds, at once: SIGKILL `--kill-permille` of the
//! supernodes and restart `--restart-permille` of the clients (a restart drops the client's
//! state and connection and starts again from its stored profile, reusing its ticket; with
//! `--relogin` it logs in with its password instead: a login storm). Every second it records the
//! clients registered, the success of lookups between online users, each supernode's load
//! against its capacity, `Busy` answers, refused handshakes and processes that exited on their
//! own; it writes `report.json` and `plot.svg` and prints the headline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rand::Rng;
use switchboard_client::profile::Profile;
use switchboard_client::session::{self, Context, SessionError};
use switchboard_engine::{Backoff, BackoffConfig};
use switchboard_proto::messages::{ClientMessage, Password, SupernodeMessage};
use switchboard_proto::Username;
use tokio::sync::{mpsc, Notify};

use crate::load::{prepare_profiles, register, Outcome};
use crate::network::{metric, Network, Scenario, Spec, CLIENTS_PER_ADDRESS, PASSWORD};
use crate::procs::Proc;

/// Options of `testbed outage`.
#[derive(Debug, clap::Args)]
pub struct OutageArgs {
    /// Supernodes (real processes).
    #[arg(long, default_value_t = 10)]
    pub supernodes: u32,
    /// Logical clients.
    #[arg(long, default_value_t = 5_000)]
    pub clients: u32,
    /// Share of the supernodes SIGKILLed at once, per mille.
    #[arg(long, default_value_t = 300)]
    pub kill_permille: u32,
    /// Share of the clients restarted at the same moment, per mille.
    #[arg(long, default_value_t = 200)]
    pub restart_permille: u32,
    /// Seconds of steady state recorded before the outage.
    #[arg(long, default_value_t = 10)]
    pub steady: u64,
    /// Seconds recorded after it.
    #[arg(long, default_value_t = 30)]
    pub after: u64,
    /// Lookups per second between online users.
    #[arg(long, default_value_t = 200)]
    pub lookups_per_sec: u32,
    /// Restarted clients log in with their passwords (a login storm) instead of reusing their
    /// tickets.
    #[arg(long)]
    pub relogin: bool,
    /// Run without the standby mega.
    #[arg(long)]
    pub no_mega: bool,
    /// The contrast: the same scenario with the protections switched off through their real
    /// configuration switches: no standby mega, supernodes with `admission_control = false`
    /// (no capacity limit, no `Busy`, no handshake rate) and clients retrying without jitter.
    /// Switches an operator must never use; they exist to show what they prevent.
    #[arg(long)]
    pub naive: bool,
    /// Where to write `report.json` and `plot.svg` (default: `outage-report`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The account and ticket cache (as for `testbed load`).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

/// Lookups queued per logical client at most (beyond, the scheduler skips one).
const LOOKUPS_QUEUED: usize = 2;
/// First sessions being opened at once during the set-up (a failover afterwards is each
/// client's own, as with real clients).
const OPENS_IN_FLIGHT: usize = 64;
/// A logical client re-registers this often (the real client: a third of its 60 s lease).
const REFRESH: Duration = Duration::from_secs(20);

/// One logical client's shared state.
#[derive(Debug, Default)]
struct ClientState {
    registered: AtomicBool,
    /// The supernode holding its registration (hex node id).
    home: Mutex<String>,
    restart: Notify,
}

/// Lookups per second: (asked, found).
#[derive(Debug, Default)]
struct Lookups {
    per_second: Vec<(u64, u64)>,
}

/// One second of the run.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    t: f64,
    registered: u64,
    lookups: u64,
    found: u64,
    /// Clients over capacity of each supernode alive (killed ones: none).
    loads: Vec<Option<f64>>,
    mega_active: bool,
    busy_total: u64,
    handshakes_refused_total: u64,
    exited_on_their_own: usize,
}

/// Runs `testbed outage`; see the module doc.
pub async fn run(args: OutageArgs) -> ExitCode {
    let mut run = match Scenario::new("switchboard-outage-", args.cache.clone()) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("testbed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        outcome = outage(&args, &run.cache, run.scratch.path(), &mut run.procs) => Some(outcome),
        () = crate::demo::interrupted() => None,
    };
    run.finish("outage", outcome, |headline| println!("{headline}"))
        .await
}

async fn outage(
    args: &OutageArgs,
    cache: &Path,
    scratch: &Path,
    procs: &mut Vec<Proc>,
) -> anyhow::Result<String> {
    // Enough for everyone with 40% to spare; the survivors of a 30% loss are then nearly
    // full, which is when the standby mega matters.
    let capacity = (u64::from(args.clients) * 3 / 2 / u64::from(args.supernodes.max(1))).max(50);
    let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
    let extra = if args.naive {
        let naive = scratch.join("naive.toml");
        std::fs::write(
            &naive,
            "# testbed outage --naive: never in a deployment\nadmission_control = false\n",
        )?;
        vec!["--config".to_owned(), naive.display().to_string()]
    } else {
        Vec::new()
    };
    let mut specs: Vec<Spec> = (0..args.supernodes)
        .map(|i| Spec {
            name: format!("outsn{i}"),
            role: "supernode",
            extra: extra.clone(),
            capacity,
        })
        .collect();
    let mega = !args.no_mega && !args.naive;
    if mega {
        specs.push(Spec {
            name: "outmega".to_owned(),
            role: "mega",
            extra: crate::network::strings(&["--mega", "--standby"]),
            capacity: args.clients,
        });
    }
    let network = crate::network::start(cache, scratch, args.clients, &specs, &[], procs).await?;
    eprintln!(
        "network: {} supernodes of capacity {capacity}{}{}",
        args.supernodes,
        if mega { " and a standby mega" } else { "" },
        if args.naive {
            " (naive: no admission control, no jitter, no mega)"
        } else {
            ""
        }
    );
    let settings = switchboard_client::profile::Settings {
        user: String::new(),
        auth: network.auth_addr.clone(),
        trust: network.pubkey.clone(),
    };
    let (profiles, logged_in) =
        prepare_profiles(args.clients, cache, &settings, &network.hosts).await?;
    eprintln!("{} profiles ready ({logged_in} logged in)", profiles.len());
    let endpoints = crate::network::client_endpoints(profiles.len())?;
    let lookups = Arc::new(Mutex::new(Lookups::default()));
    let start = Instant::now();
    let mut states = Vec::new();
    let mut queues = Vec::new();
    let users: Vec<Username> = profiles.iter().map(|(u, _)| u.clone()).collect();
    let opening = Arc::new(tokio::sync::Semaphore::new(OPENS_IN_FLIGHT));
    for (i, (user, profile)) in profiles.into_iter().enumerate() {
        let state = Arc::new(ClientState::default());
        let (tx, rx) = mpsc::channel(LOOKUPS_QUEUED);
        let endpoint = endpoints
            .get(i / CLIENTS_PER_ADDRESS)
            .cloned()
            .ok_or_else(|| anyhow!("no endpoint for client {i}"))?;
        let local = endpoint.local_addr()?;
        tokio::spawn(client(
            user,
            profile,
            endpoint,
            local,
            Arc::clone(&state),
            rx,
            Arc::clone(&lookups),
            start,
            Behaviour {
                relogin: args.relogin,
                jitter: !args.naive,
            },
            Arc::clone(&opening),
        ));
        states.push(state);
        queues.push(tx);
    }
    // Registered on a live supernode: a client whose home died is not, whether or not it has
    // noticed yet.
    let registered = |states: &[Arc<ClientState>], dead: &[String]| {
        states
            .iter()
            .filter(|s| s.registered.load(Ordering::Relaxed))
            .filter(|s| s.home.lock().is_ok_and(|h| !dead.contains(&h)))
            .count() as u64
    };
    let mut dead: Vec<String> = Vec::new();
    // Steady state: everyone registered, then `steady` seconds recorded.
    let deadline = Instant::now() + Duration::from_secs(120);
    while registered(&states, &dead) < u64::from(args.clients) {
        if Instant::now() > deadline {
            return Err(anyhow!(
                "only {} of {} clients registered within 120 s",
                registered(&states, &dead),
                args.clients
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{} clients registered after {:.1} s",
        args.clients,
        start.elapsed().as_secs_f64()
    );
    let mut samples = Vec::new();
    let recording = Instant::now();
    let killed_at = Duration::from_secs(args.steady);
    let end = killed_at + Duration::from_secs(args.after);
    let mut killed = vec![false; network.supernodes.len()];
    let mut rng = rand::thread_rng();
    let mut next_sample = Duration::ZERO;
    let period = Duration::from_secs_f64(1.0 / f64::from(args.lookups_per_sec.max(1)));
    let mut outage_done = false;
    while recording.elapsed() < end {
        let now = recording.elapsed();
        if !outage_done && now >= killed_at {
            outage_done = true;
            let victims = victims(&network, args.kill_permille);
            for &i in &victims {
                if let Some(proc) = network
                    .supernodes
                    .get(i)
                    .and_then(|s| procs.get_mut(s.proc))
                {
                    proc.kill9();
                }
                if let Some(k) = killed.get_mut(i) {
                    *k = true;
                }
                if let Some(s) = network.supernodes.get(i) {
                    dead.push(s.node.clone());
                }
            }
            let restarts = (states.len() as u64 * u64::from(args.restart_permille) / 1000) as usize;
            for state in states.iter().take(restarts) {
                state.restart.notify_one();
            }
            eprintln!(
                "t={:.1} s: SIGKILL {} supernodes, restart {restarts} clients{}",
                now.as_secs_f64(),
                victims.len(),
                if args.relogin {
                    " (with a login each)"
                } else {
                    ""
                }
            );
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            samples.push(
                sample(
                    &network,
                    &killed,
                    procs,
                    registered(&states, &dead),
                    &lookups,
                    start,
                    now,
                )
                .await,
            );
        }
        // A lookup between two online users, asked by one of them.
        let asker = rng.gen_range(0..states.len());
        let target = rng.gen_range(0..users.len());
        let both_online = states
            .get(asker)
            .is_some_and(|s| s.registered.load(Ordering::Relaxed))
            && states
                .get(target)
                .is_some_and(|s| s.registered.load(Ordering::Relaxed))
            && asker != target;
        if both_online {
            if let (Some(queue), Some(user)) = (queues.get(asker), users.get(target)) {
                let _ = queue.try_send(user.clone());
            }
        }
        tokio::time::sleep(period).await;
    }
    drop(queues);
    let headline = headline(args, &samples, killed_at.as_secs_f64());
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if args.naive {
            "outage-report-naive"
        } else {
            "outage-report"
        })
    });
    std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
    let report = serde_json::json!({
        "args": {
            "supernodes": args.supernodes, "clients": args.clients,
            "kill_permille": args.kill_permille, "restart_permille": args.restart_permille,
            "relogin": args.relogin, "mega": mega, "naive": args.naive, "capacity": capacity,
        },
        "killed_at": killed_at.as_secs_f64(),
        "headline": headline.1,
        "samples": samples,
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let caption = format!(
        "outage: {}% of {} supernodes SIGKILLed, {}% of {} clients restarted{}",
        args.kill_permille / 10,
        args.supernodes,
        args.restart_permille / 10,
        args.clients,
        if args.naive {
            ", naive (no admission control, no jitter, no mega)"
        } else if !mega {
            ", no standby mega"
        } else {
            ""
        }
    );
    crate::plot::draw(
        &out.join("plot.svg"),
        &caption,
        &samples_for_plot(&samples, u64::from(args.clients)),
        killed_at.as_secs_f64(),
    )?;
    Ok(format!(
        "{}\nreport: {}/report.json, plot: {}/plot.svg",
        headline.0,
        out.display(),
        out.display()
    ))
}

/// Which supernodes die: `permille` of the ordinary ones, rounded down but at least one
/// (never the mega).
fn victims(network: &Network, permille: u32) -> Vec<usize> {
    let ordinary: Vec<usize> = (0..network.supernodes.len())
        .filter(|&i| network.supernodes.get(i).is_some_and(|s| !s.standby))
        .collect();
    let count = ((ordinary.len() as u64 * u64::from(permille)) / 1000).max(1) as usize;
    ordinary.into_iter().take(count).collect()
}

async fn sample(
    network: &Network,
    killed: &[bool],
    procs: &mut [Proc],
    registered: u64,
    lookups: &Mutex<Lookups>,
    start: Instant,
    now: Duration,
) -> Sample {
    let mut loads = Vec::new();
    let (mut busy, mut refused, mut mega_active) = (0, 0, false);
    for (i, s) in network.supernodes.iter().enumerate() {
        if killed.get(i).copied().unwrap_or(false) {
            loads.push(None);
            continue;
        }
        let clients = metric(s.metrics, "switchboard_supernode_clients_connected").await;
        loads.push(clients.map(|c| c as f64 / f64::from(s.capacity.max(1))));
        busy += metric(s.metrics, "switchboard_supernode_busy_total")
            .await
            .unwrap_or(0);
        refused += metric(s.metrics, "switchboard_supernode_handshakes_refused_total")
            .await
            .unwrap_or(0);
        if s.standby {
            mega_active = metric(s.metrics, "switchboard_supernode_mega_active").await == Some(1);
        }
    }
    let exited = procs
        .iter_mut()
        .filter_map(|p| (!p.killed()).then(|| p.exited()))
        .filter(|&gone| gone)
        .count();
    // Lookups of the second that just ended (seconds since the clients started).
    let second = start.elapsed().as_secs().saturating_sub(1) as usize;
    let (asked, found) = lookups
        .lock()
        .ok()
        .and_then(|l| l.per_second.get(second).copied())
        .unwrap_or((0, 0));
    Sample {
        t: now.as_secs_f64(),
        registered,
        lookups: asked,
        found,
        loads,
        mega_active,
        busy_total: busy,
        handshakes_refused_total: refused,
        exited_on_their_own: exited,
    }
}

fn samples_for_plot(samples: &[Sample], clients: u64) -> Vec<crate::plot::Point> {
    samples
        .iter()
        .map(|s| crate::plot::Point {
            t: s.t,
            registered: s.registered as f64 / clients.max(1) as f64,
            lookups: if s.lookups == 0 {
                None
            } else {
                Some(s.found as f64 / s.lookups as f64)
            },
            peak_load: s.loads.iter().flatten().copied().fold(0.0, f64::max),
        })
        .collect()
}

/// The headline as text and as JSON.
fn headline(args: &OutageArgs, samples: &[Sample], killed_at: f64) -> (String, serde_json::Value) {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t >= killed_at).collect();
    let target = (u64::from(args.clients) * 99).div_ceil(100);
    let rehomed = after
        .iter()
        .find(|s| s.registered >= target && s.t > killed_at)
        .map(|s| s.t - killed_at);
    // Lookup success back above 99.9%: the first second from which every second is.
    let good = |s: &&Sample| s.lookups == 0 || s.found * 1000 >= s.lookups * 999;
    let recovered = (0..after.len())
        .find(|&i| after.iter().skip(i).all(good) && after.get(i).is_some_and(|s| s.t > killed_at))
        .and_then(|i| after.get(i))
        .map(|s| s.t - killed_at);
    let peak = after
        .iter()
        .flat_map(|s| s.loads.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let exited = samples
        .iter()
        .map(|s| s.exited_on_their_own)
        .max()
        .unwrap_or(0);
    let fmt = |v: Option<f64>| v.map_or("never".to_owned(), |v| format!("{v:.0} s"));
    let text = format!(
        "headline: 99% of clients re-registered {} after the kill; lookup success above 99.9% {} after; \
         peak survivor load {:.0}% of capacity; {exited} processes exited on their own",
        fmt(rehomed),
        fmt(recovered),
        peak * 100.0
    );
    let json = serde_json::json!({
        "rehomed_99_secs": rehomed,
        "lookups_999_secs": recovered,
        "peak_survivor_load": peak,
        "exited_on_their_own": exited,
    });
    (text, json)
}

/// How a logical client behaves.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    /// A restart logs in with the password (`--relogin`).
    relogin: bool,
    /// Retries are jittered (false only with `--naive`).
    jitter: bool,
}

#[allow(clippy::too_many_arguments)]
async fn client(
    user: Username,
    profile: Profile,
    endpoint: quinn::Endpoint,
    local: std::net::SocketAddr,
    state: Arc<ClientState>,
    mut lookups_in: mpsc::Receiver<Username>,
    lookups: Arc<Mutex<Lookups>>,
    start: Instant,
    behaviour: Behaviour,
    opening: Arc<tokio::sync::Semaphore>,
) {
    let seq = AtomicU64::new(1);
    let mut restarted = false;
    let mut first_open = true;
    'life: loop {
        if restarted && behaviour.relogin {
            let _ = relogin_once(&profile, &user).await;
        }
        let Ok(context) = Context::load(profile.clone(), Some(endpoint.clone())) else {
            return;
        };
        let mut backoff = Backoff::new(BackoffConfig {
            budget: None,
            jitter: behaviour.jitter,
            ..BackoffConfig::default()
        });
        let mut avoid = None;
        loop {
            let permit = if first_open {
                opening.acquire().await.ok()
            } else {
                None
            };
            let opened = session::open(&context, avoid).await;
            let mut session = match opened {
                Ok(session) => session,
                Err(e) => {
                    drop(permit);
                    let retry = match e {
                        SessionError::NoSupernode { retry_after, .. } => retry_after,
                        _ => None,
                    };
                    let wait = backoff
                        .failed(&mut rand::thread_rng(), retry)
                        .unwrap_or(Duration::from_secs(1));
                    tokio::select! {
                        () = tokio::time::sleep(wait) => continue,
                        () = state.restart.notified() => { restarted = true; continue 'life; }
                    }
                }
            };
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let outcome = register(&context, &mut session, local, n).await;
            drop(permit);
            if outcome != Outcome::Done {
                avoid = Some(session.node());
                continue;
            }
            backoff.succeeded();
            first_open = false;
            if let Ok(mut home) = state.home.lock() {
                *home = session.node().to_string();
            }
            state.registered.store(true, Ordering::Relaxed);
            let mut refresh = tokio::time::interval(REFRESH);
            refresh.tick().await;
            let closed = session.connection.connection.clone();
            loop {
                tokio::select! {
                    () = state.restart.notified() => {
                        // A crash: no goodbye; the connection just goes.
                        state.registered.store(false, Ordering::Relaxed);
                        restarted = true;
                        continue 'life;
                    }
                    _ = closed.closed() => {
                        state.registered.store(false, Ordering::Relaxed);
                        avoid = Some(session.node());
                        break;
                    }
                    _ = refresh.tick() => {
                        let n = seq.fetch_add(1, Ordering::Relaxed);
                        if register(&context, &mut session, local, n).await != Outcome::Done {
                            state.registered.store(false, Ordering::Relaxed);
                            avoid = Some(session.node());
                            break;
                        }
                    }
                    whom = lookups_in.recv() => {
                        let Some(whom) = whom else { return };
                        let asked = start.elapsed().as_secs() as usize;
                        let found = matches!(
                            session.ask(&ClientMessage::Lookup { user: whom }).await,
                            Ok(SupernodeMessage::LookupResult { records, .. }) if !records.is_empty()
                        );
                        if let Ok(mut l) = lookups.lock() {
                            if l.per_second.len() <= asked {
                                l.per_second.resize(asked + 1, (0, 0));
                            }
                            if let Some(slot) = l.per_second.get_mut(asked) {
                                slot.0 += 1;
                                slot.1 += u64::from(found);
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn relogin_once(profile: &Profile, user: &Username) -> anyhow::Result<()> {
    let settings = profile.settings()?;
    let password = Password::new(PASSWORD).ok_or_else(|| anyhow!("password"))?;
    for _ in 0..10 {
        use switchboard_account::login::{login, LoginError};
        match login(
            profile,
            &settings.auth,
            settings.trust.parse()?,
            user.clone(),
            password.clone(),
            false,
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(LoginError::Throttled(secs) | LoginError::Busy(secs)) => {
                tokio::time::sleep(Duration::from_secs(secs)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(anyhow!("login of {user} kept being throttled"))
}
